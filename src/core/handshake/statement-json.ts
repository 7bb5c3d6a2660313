/**
 * The JSON form of statements: money and ledger indices as decimal strings of integers (minor
 * units; no floats), everything else as is. One zod codec is the source of both directions and
 * of the JSON type; recomputeStatement then checks the meaning.
 */
import { z } from "zod";
import { handshakeErrors } from "./errors.ts";
import { EVENT_ID_CHARS_MAX, SOURCE_CHARS_MAX, UNIT_CHARS_MAX, timeKey } from "./event.ts";
import { STATEMENT_EVENTS_MAX, STATEMENT_FORMAT } from "./statement.ts";
import type { Statement } from "./statement.ts";

/** Most digits of a figure in JSON: cumulative sums of up to STATEMENT_EVENTS_MAX amounts of 31 digits fit. */
export const FIGURE_DIGITS_MAX = 40;
/** Most records in a statement's per-currency and per-key lists (accumulators, paid, totals). */
export const STATEMENT_RECORDS_MAX = 10_000;

const FIGURE = new RegExp(`^(0|-?[1-9][0-9]{0,${FIGURE_DIGITS_MAX - 1}})$`);
const INDEX = /^(0|[1-9][0-9]{0,19})$/;
// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]+$/;

const bigintString = (pattern: RegExp, what: string) =>
  z.codec(z.string().max(FIGURE_DIGITS_MAX + 1).regex(pattern, what), z.bigint(), {
    decode: (s) => BigInt(s),
    encode: (b) => b.toString(),
  });

const figure = bigintString(FIGURE, "an integer of minor units as a decimal string");
const ledgerIndex = bigintString(INDEX, "a ledger index as a decimal string");
const currency = z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 code");
const eventId = z.string().min(1).max(EVENT_ID_CHARS_MAX).regex(/^[\x21-\x7e]+$/, "printable ASCII");
const name = (max: number) => z.string().min(1).max(max).regex(NO_CONTROL, "no control characters");
const time = z.string().max(40).refine((t) => timeKey(t) !== undefined, "an RFC 3339 UTC time");
const splitClass = z.enum(["imvu", "mini-platform"]);
const version = z.literal(1);

const entryCommon = {
  eventId,
  index: ledgerIndex,
  time,
  source: name(SOURCE_CHARS_MAX),
  currency,
  amount: figure,
  balanceAfter: figure,
};
const splitFigures = {
  class: splitClass,
  version,
  creator: figure,
  platform: figure,
  grossAfter: figure,
  creatorAfter: figure,
  remainingAfter: figure,
};

const entry = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("revenue"), ...entryCommon, ...splitFigures }),
  z.strictObject({ kind: z.enum(["refund", "chargeback"]), ...entryCommon, refOf: eventId, ...splitFigures }),
  z.strictObject({ kind: z.literal("payout"), ...entryCommon, paidAfter: figure }),
]);

const accumulators = z
  .array(z.strictObject({ class: splitClass, currency, version, gross: figure, creator: figure }))
  .max(STATEMENT_RECORDS_MAX);
const paid = z.array(z.strictObject({ currency, paid: figure })).max(STATEMENT_RECORDS_MAX);
const figures = { gross: figure, refunds: figure, chargebacks: figure, creator: figure, platform: figure, payouts: figure };

/** The statement codec: JSON (strings for integers) ⇄ Statement (bigint). */
export const statementCodec = z.strictObject({
  format: z.literal(STATEMENT_FORMAT),
  unit: name(UNIT_CHARS_MAX),
  period: z.strictObject({ from: time, to: time }),
  opening: z.strictObject({
    accumulators,
    paid,
    refundable: z
      .array(z.strictObject({ eventId, class: splitClass, currency, version, remaining: figure }))
      .max(STATEMENT_EVENTS_MAX),
  }),
  entries: z.array(entry).max(STATEMENT_EVENTS_MAX),
  totals: z
    .array(z.strictObject({ currency, ...figures, openingBalance: figure, closingBalance: figure }))
    .max(STATEMENT_RECORDS_MAX),
  bySource: z.array(z.strictObject({ source: name(SOURCE_CHARS_MAX), currency, ...figures })).max(STATEMENT_EVENTS_MAX),
  closing: z.strictObject({ accumulators, paid }),
});

/** A statement as JSON carries it. */
export type StatementJson = z.input<typeof statementCodec>;

// The codec and the Statement interface describe the same data: each is assignable to the other.
type Decoded = z.output<typeof statementCodec>;
const _decodedIsStatement = (s: Decoded): Statement => s;
const _statementIsDecoded = (s: Statement): DeepReadonly<Decoded> => s;
type DeepReadonly<T> = T extends bigint | string | number | boolean
  ? T
  : T extends readonly (infer E)[]
    ? readonly DeepReadonly<E>[]
    : { readonly [K in keyof T]: DeepReadonly<T[K]> };

/** Decodes and validates a statement's JSON value; throws HANDSHAKE_STATEMENT_MALFORMED (or _TOO_LARGE). */
export function parseStatementJson(value: unknown): Statement {
  const r = statementCodec.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue === undefined ? "" : issue.path.map(String).join(".");
    const code = issue?.code === "too_big" && path === "entries" ? "HANDSHAKE_STATEMENT_TOO_LARGE" : "HANDSHAKE_STATEMENT_MALFORMED";
    throw handshakeErrors.make(code, `${path || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}

/** Encodes a statement as its JSON value (integers as decimal strings); throws HANDSHAKE_STATEMENT_MALFORMED. */
export function statementToJson(statement: Statement): StatementJson {
  // Decoded differs from Statement only by readonly (checked above); encoding does not mutate.
  const r = statementCodec.safeEncode(statement as Decoded);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw handshakeErrors.make("HANDSHAKE_STATEMENT_MALFORMED", `${issue?.path.map(String).join(".") ?? ""}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}
