/**
 * Money events as core/handshake sees them: a revenue, a refund or chargeback of one revenue,
 * or a payout to the creator, each recorded at a ledger index. The pipeline builds them from
 * `revenue.*` commands; statements are folds over them.
 */
import { AMOUNT_MINOR_MAX, isKnownCurrency } from "./currency.ts";
import { handshakeErrors, type HandshakeErrorCode } from "./errors.ts";
import { isConstitutionVersion, isSplitClass, type ConstitutionVersion, type SplitClass } from "./split.ts";

/** Most characters of an event id (printable ASCII, as the command schema's EventId). */
export const EVENT_ID_CHARS_MAX = 200;
/** Most characters of a unit (IMVU) name. */
export const UNIT_CHARS_MAX = 200;
/** Most characters of a source name. */
export const SOURCE_CHARS_MAX = 200;

/** What every money event carries. */
export interface EventCommon {
  /** The processor's event id: the idempotency key (platform-wide, see docs/handshake.md). */
  readonly eventId: string;
  /** Ledger index of the entry that recorded the event. */
  readonly index: bigint;
  /** Time of that ledger entry: RFC 3339 in UTC ("Z"), 0 to 9 fraction digits, no leap second. */
  readonly time: string;
  /** The unit (IMVU) the money belongs to. */
  readonly unit: string;
  /** Where the money came from or went: processor, mini-platform checkout, payout rail. */
  readonly source: string;
  /** ISO 4217 code. */
  readonly currency: string;
  /** Minor units, always positive: the kind gives the direction. */
  readonly amount: bigint;
}

/** Revenue: split under the class of the unit and the constitution version in force. */
export interface RevenueEvent extends EventCommon {
  readonly kind: "revenue";
  readonly class: SplitClass;
  readonly version: ConstitutionVersion;
}

/** A refund or chargeback: a negative entry of its original's (class, currency, version). */
export interface RefundEvent extends EventCommon {
  readonly kind: "refund" | "chargeback";
  /** Event id of the revenue it takes back. */
  readonly refOf: string;
}

/** A payout of the creator's balance in one currency (no split class: the balance spans classes). */
export interface PayoutEvent extends EventCommon {
  readonly kind: "payout";
}

/** Any money event. */
export type MoneyEvent = RevenueEvent | RefundEvent | PayoutEvent;

/** The kinds of money events. */
export type MoneyEventKind = MoneyEvent["kind"];

/** Where checks report a violation: throw it (recording), or collect it and go on (verifying). */
export type Sink = (code: HandshakeErrorCode, detail: string) => void;

/** The sink that throws the violation as a NexusError. */
export const throwSink: Sink = (code, detail) => {
  throw handshakeErrors.make(code, detail);
};

/** Called on a value that the types say cannot exist (exhaustive switches). */
export function assertNever(x: never): never {
  throw new TypeError(`unexpected value ${String(x)}`);
}

// RFC 3339 section 5.6 date-time restricted to UTC "Z"; leap seconds (:60) are not accepted.
const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/**
 * A key that orders times by string comparison (the fraction padded to 9 digits), or undefined
 * when `time` is not a valid RFC 3339 UTC time (Feb 30 and hour 24 are rejected).
 */
export function timeKey(time: string): string | undefined {
  if (typeof time !== "string") return undefined;
  const m = TIME.exec(time);
  if (m === null) return undefined;
  const [, y = "", mo = "", d = "", h = "", mi = "", s = "", frac = ""] = m;
  const year = parseInt(y, 10);
  const month = parseInt(mo, 10);
  const day = parseInt(d, 10);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : (DAYS[month - 1] ?? 0);
  if (day < 1 || day > days || parseInt(h, 10) > 23 || parseInt(mi, 10) > 59 || parseInt(s, 10) > 59) return undefined;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${frac.padEnd(9, "0")}`;
}

const EVENT_ID = /^[\x21-\x7e]+$/;
// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** True when `id` is a valid event id: 1..EVENT_ID_CHARS_MAX printable ASCII characters. */
export function isEventId(id: unknown): id is string {
  return typeof id === "string" && id.length > 0 && id.length <= EVENT_ID_CHARS_MAX && EVENT_ID.test(id);
}

function isName(v: unknown, max: number): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= max && !CONTROL.test(v);
}

/** Reports every malformed field of `e` to `sink` (throwSink: the first one throws). */
export function checkEvent(e: MoneyEvent, sink: Sink): void {
  const bad = (detail: string): void => sink("HANDSHAKE_EVENT_MALFORMED", detail);
  if (!isEventId(e.eventId)) bad(`event id must be 1..${EVENT_ID_CHARS_MAX} printable ASCII characters`);
  if (typeof e.index !== "bigint" || e.index < 0n) bad("index must be a non-negative bigint");
  if (timeKey(e.time) === undefined) bad(`time ${JSON.stringify(String(e.time).slice(0, 40))} is not RFC 3339 UTC`);
  if (!isName(e.unit, UNIT_CHARS_MAX)) bad(`unit must be 1..${UNIT_CHARS_MAX} characters without controls`);
  if (!isName(e.source, SOURCE_CHARS_MAX)) bad(`source must be 1..${SOURCE_CHARS_MAX} characters without controls`);
  if (!isKnownCurrency(e.currency)) sink("HANDSHAKE_CURRENCY_UNKNOWN", JSON.stringify(String(e.currency).slice(0, 16)));
  if (typeof e.amount !== "bigint" || e.amount <= 0n || e.amount > AMOUNT_MINOR_MAX) {
    sink("HANDSHAKE_AMOUNT_OUT_OF_RANGE", `an event amount is a bigint in 1..${AMOUNT_MINOR_MAX}`);
  }
  switch (e.kind) {
    case "revenue":
      if (!isSplitClass(e.class) || !isConstitutionVersion(e.version)) {
        sink("HANDSHAKE_CONSTITUTION_UNKNOWN", `version ${String(e.version)}, class ${String(e.class)}`);
      }
      return;
    case "refund":
    case "chargeback":
      if (!isEventId(e.refOf) || e.refOf === e.eventId) bad("refOf must be the event id of another event");
      return;
    case "payout":
      return;
    default:
      bad(`unknown kind ${JSON.stringify(String((e as { kind: unknown }).kind))}`);
  }
}

/**
 * The content that makes two recordings of one event id "the same event": everything but the
 * ledger position (index, time), which differs when a webhook is delivered twice.
 */
export function eventFingerprint(e: MoneyEvent): string {
  const common = [e.kind, e.unit, e.source, e.currency, String(e.amount)];
  switch (e.kind) {
    case "revenue":
      return JSON.stringify([...common, e.class, e.version]);
    case "refund":
    case "chargeback":
      return JSON.stringify([...common, e.refOf]);
    case "payout":
      return JSON.stringify(common);
    default:
      return assertNever(e);
  }
}
