/**
 * Recording one money event, purely: the caller reads a few projection rows (the event id's
 * earlier recording, the refunded original, the accumulator, the balance), and gets back the
 * statement entry and the rows to write. The pipeline runs it inside the command's transaction;
 * statements fold it over a list of events. Same code, same figures.
 */
import { handshakeErrors } from "./errors.ts";
import { assertNever, checkEvent, eventFingerprint, throwSink } from "./event.ts";
import type { MoneyEvent, PayoutEvent, RefundEvent, RevenueEvent, Sink } from "./event.ts";
import {
  EMPTY_ACCUMULATOR,
  EMPTY_BALANCE,
  availableOf,
  checkAccumulator,
  isConstitutionVersion,
  isSplitClass,
  splitRatio,
  splitStep,
} from "./split.ts";
import type { Balance, ConstitutionVersion, SplitAccumulator, SplitClass } from "./split.ts";

/** The split accumulator's key within a unit. */
export interface AccumulatorKey {
  readonly class: SplitClass;
  readonly currency: string;
  readonly version: ConstitutionVersion;
}

/** A revenue as refunds see it: its split key and what is left to refund. */
export interface Original extends AccumulatorKey {
  readonly remaining: bigint;
}

/** What every statement entry shows. */
interface EntryCommon {
  readonly eventId: string;
  readonly index: bigint;
  readonly time: string;
  readonly source: string;
  readonly currency: string;
  /** The event's amount (positive). */
  readonly amount: bigint;
  /** The creator's available balance (accrued − paid) in this currency after the entry. */
  readonly balanceAfter: bigint;
}

/** What a split entry (revenue, refund, chargeback) shows besides the common figures. */
interface SplitFigures extends EntryCommon {
  readonly class: SplitClass;
  readonly version: ConstitutionVersion;
  /** Signed parts; creator + platform = +amount for revenue, −amount for refunds. */
  readonly creator: bigint;
  readonly platform: bigint;
  /** The accumulator after the entry. */
  readonly grossAfter: bigint;
  readonly creatorAfter: bigint;
  /** What remains refundable of the revenue (its own for revenue, its original's for refunds). */
  readonly remainingAfter: bigint;
}

/** A revenue entry. */
export interface RevenueEntry extends SplitFigures {
  readonly kind: "revenue";
}

/** A refund or chargeback entry (class and version are its original's). */
export interface RefundEntry extends SplitFigures {
  readonly kind: "refund" | "chargeback";
  readonly refOf: string;
}

/** A payout entry. */
export interface PayoutEntry extends EntryCommon {
  readonly kind: "payout";
  /** Cumulative payouts in this currency after the entry. */
  readonly paidAfter: bigint;
}

/** One line of a statement: the event and every figure it produced. */
export type StatementEntry = RevenueEntry | RefundEntry | PayoutEntry;

/** An event id's first recording: what idempotency compares against and returns. */
export interface SeenEvent {
  readonly fingerprint: string;
  readonly entry: StatementEntry;
}

/** The projection rows recordEvent needs (absent = no row yet). */
export interface EventReads {
  /** The earlier recording under event.eventId, from the platform-wide seen set. */
  readonly seen?: SeenEvent | undefined;
  /** Refunds: the revenue event.refOf of the same unit. */
  readonly original?: Original | undefined;
  /** Revenue and refunds: the accumulator of accumulatorKeyOf(event, original). */
  readonly accumulator?: SplitAccumulator | undefined;
  /** The unit's balance in event.currency. */
  readonly balance?: Balance | undefined;
}

/** The rows to write after an applied event. */
export interface EventWrites {
  /** Store under event.eventId in the seen set. */
  readonly seen: SeenEvent;
  /** Store under (unit, key). */
  readonly accumulator?: { readonly key: AccumulatorKey; readonly value: SplitAccumulator };
  /** Store under (unit, eventId): a new revenue, or a refunded original's new remaining. */
  readonly original?: { readonly eventId: string; readonly value: Original };
  /** Store under (unit, currency). */
  readonly balance: Balance;
}

/** The outcome of recording an event. */
export type RecordResult =
  | { readonly kind: "applied"; readonly entry: StatementEntry; readonly writes: EventWrites }
  | { readonly kind: "duplicate"; readonly entry: StatementEntry };

/** Whether an event id is new, or a replay of an identical event (with the first entry). */
export type ReplayCheck = { readonly kind: "new" } | { readonly kind: "duplicate"; readonly entry: StatementEntry };

/** Idempotency: new, or identical replay (no-op, first entry); throws HANDSHAKE_EVENT_CONFLICT if it differs. */
export function checkReplay(seen: SeenEvent | undefined, event: MoneyEvent): ReplayCheck {
  if (seen === undefined) return { kind: "new" };
  if (seen.fingerprint !== eventFingerprint(event)) {
    throw handshakeErrors.make("HANDSHAKE_EVENT_CONFLICT", `event ${event.eventId} was recorded at index ${seen.entry.index} with other content`);
  }
  return { kind: "duplicate", entry: seen.entry };
}

/** The accumulator an event splits into: its own key for revenue, its original's for refunds, none for payouts. */
export function accumulatorKeyOf(event: MoneyEvent, original: Original | undefined): AccumulatorKey | undefined {
  switch (event.kind) {
    case "revenue":
      return { class: event.class, currency: event.currency, version: event.version };
    case "refund":
    case "chargeback":
      return original === undefined ? undefined : { class: original.class, currency: original.currency, version: original.version };
    case "payout":
      return undefined;
    default:
      return assertNever(event);
  }
}

/** A stable string for an accumulator key (map keys, SQL keys). */
export function accumulatorKeyString(key: AccumulatorKey): string {
  return `${key.class}/${key.currency}/v${key.version}`;
}

/**
 * Records one event under the rules: idempotency (checkReplay), refunds within their original,
 * payouts within the balance, the split of ARCHITECTURE.md. Throws the first violation.
 */
export function recordEvent(reads: EventReads, event: MoneyEvent): RecordResult {
  checkEvent(event, throwSink);
  const replay = checkReplay(reads.seen, event);
  if (replay.kind === "duplicate") return replay;
  if (reads.accumulator !== undefined) {
    const key = accumulatorKeyOf(event, reads.original);
    if (key !== undefined) checkAccumulator(reads.accumulator, splitRatio(key.version, key.class));
  }
  const computed = computeEntry(reads, event, throwSink);
  // throwSink throws on every violation, so an entry always exists here.
  if (computed === undefined) throw new Error("recordEvent: no entry without a violation");
  return { kind: "applied", ...computed };
}

/**
 * The entry and writes of a new event, reporting violations to `sink` and going on where the
 * figures are still defined; undefined when they are not (unknown constitution or original).
 */
export function computeEntry(reads: EventReads, event: MoneyEvent, sink: Sink): { entry: StatementEntry; writes: EventWrites } | undefined {
  checkEvent(event, sink);
  const balance = reads.balance ?? EMPTY_BALANCE;
  switch (event.kind) {
    case "revenue":
      return revenueEntry(reads, event, balance);
    case "refund":
    case "chargeback":
      return refundEntry(reads, event, balance, sink);
    case "payout":
      return payoutEntry(event, balance, sink);
    default:
      return assertNever(event);
  }
}

function revenueEntry(reads: EventReads, e: RevenueEvent, balance: Balance): { entry: StatementEntry; writes: EventWrites } | undefined {
  if (!isConstitutionVersion(e.version) || !isSplitClass(e.class)) return undefined;
  const key: AccumulatorKey = { class: e.class, currency: e.currency, version: e.version };
  const s = splitStep(reads.accumulator ?? EMPTY_ACCUMULATOR, e.amount, splitRatio(e.version, e.class));
  const next: Balance = { accrued: balance.accrued + s.creator, paid: balance.paid };
  const entry: RevenueEntry = {
    kind: "revenue",
    ...common(e, next),
    class: e.class,
    version: e.version,
    creator: s.creator,
    platform: s.platform,
    grossAfter: s.next.gross,
    creatorAfter: s.next.creator,
    remainingAfter: e.amount,
  };
  return {
    entry,
    writes: {
      seen: { fingerprint: eventFingerprint(e), entry },
      accumulator: { key, value: s.next },
      original: { eventId: e.eventId, value: { ...key, remaining: e.amount } },
      balance: next,
    },
  };
}

function refundEntry(reads: EventReads, e: RefundEvent, balance: Balance, sink: Sink): { entry: StatementEntry; writes: EventWrites } | undefined {
  const orig = reads.original;
  if (orig === undefined) {
    sink("HANDSHAKE_REFUND_ORIGINAL_UNKNOWN", `${e.refOf} is no recorded revenue of ${e.unit}`);
    return undefined;
  }
  if (orig.currency !== e.currency) sink("HANDSHAKE_REFUND_MISMATCH", `refund in ${e.currency}, original in ${orig.currency}`);
  if (e.amount > orig.remaining) sink("HANDSHAKE_REFUND_EXCEEDS_ORIGINAL", `refund ${e.amount}, refundable ${orig.remaining}`);
  if (!isConstitutionVersion(orig.version) || !isSplitClass(orig.class)) return undefined;
  const acc = reads.accumulator ?? EMPTY_ACCUMULATOR;
  if (acc.gross < e.amount) sink("HANDSHAKE_REFUND_EXCEEDS_ORIGINAL", `refund ${e.amount}, cumulative gross ${acc.gross}`);
  const key: AccumulatorKey = { class: orig.class, currency: orig.currency, version: orig.version };
  const s = splitStep(acc, -e.amount, splitRatio(orig.version, orig.class));
  const next: Balance = { accrued: balance.accrued + s.creator, paid: balance.paid };
  const remaining = orig.remaining - e.amount;
  const entry: RefundEntry = {
    kind: e.kind,
    ...common(e, next),
    refOf: e.refOf,
    class: orig.class,
    version: orig.version,
    creator: s.creator,
    platform: s.platform,
    grossAfter: s.next.gross,
    creatorAfter: s.next.creator,
    remainingAfter: remaining,
  };
  return {
    entry,
    writes: {
      seen: { fingerprint: eventFingerprint(e), entry },
      accumulator: { key, value: s.next },
      original: { eventId: e.refOf, value: { ...orig, remaining } },
      balance: next,
    },
  };
}

function payoutEntry(e: PayoutEvent, balance: Balance, sink: Sink): { entry: StatementEntry; writes: EventWrites } {
  if (e.amount > availableOf(balance)) {
    sink("HANDSHAKE_PAYOUT_EXCEEDS_BALANCE", `payout ${e.amount}, available ${availableOf(balance)} ${e.currency}`);
  }
  const next: Balance = { accrued: balance.accrued, paid: balance.paid + e.amount };
  const entry: PayoutEntry = { kind: "payout", ...common(e, next), paidAfter: next.paid };
  return { entry, writes: { seen: { fingerprint: eventFingerprint(e), entry }, balance: next } };
}

function common(e: MoneyEvent, next: Balance): EntryCommon {
  return {
    eventId: e.eventId,
    index: e.index,
    time: e.time,
    source: e.source,
    currency: e.currency,
    amount: e.amount,
    balanceAfter: availableOf(next),
  };
}
