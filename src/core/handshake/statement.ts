/**
 * Statements: a unit's money over a period, built by folding its events in ledger order, and
 * recomputed offline from the statement alone (`nexus revenue verify-statement`).
 *
 * A period statement carries its opening state (the accumulators, cumulative payouts, and what
 * remains refundable of the earlier revenues its refunds take back), so it recomputes without
 * any earlier period: every figure follows from the opening and the entries' own fields.
 */
import { isKnownCurrency } from "./currency.ts";
import { handshakeErrors, type HandshakeErrorCode } from "./errors.ts";
import { assertNever, isEventId, throwSink, timeKey } from "./event.ts";
import type { MoneyEvent, Sink } from "./event.ts";
import { accumulatorKeyOf, accumulatorKeyString, checkReplay, computeEntry } from "./record.ts";
import type { AccumulatorKey, EventWrites, Original, SeenEvent, StatementEntry } from "./record.ts";
import { checkAccumulator, isConstitutionVersion, isSplitClass, splitRatio } from "./split.ts";
import type { Balance, SplitAccumulator } from "./split.ts";

/** The format tag of statements. */
export const STATEMENT_FORMAT = "nexus-handshake-statement/1";
/** Most events a statement is built from, and most entries a statement holds. */
export const STATEMENT_EVENTS_MAX = 1_000_000;
/** Most issues recomputeStatement lists (the rest are counted as truncated). */
export const STATEMENT_ISSUES_MAX = 1000;

/** A half-open period [from, to) of ledger entry times (RFC 3339 UTC). */
export interface Period {
  readonly from: string;
  readonly to: string;
}

/** One accumulator with its key. */
export interface AccumulatorRecord extends AccumulatorKey, SplitAccumulator {}

/** Cumulative payouts in one currency. */
export interface PaidRecord {
  readonly currency: string;
  readonly paid: bigint;
}

/** What remains refundable of an earlier revenue that a refund of the period takes back. */
export interface RefundableRecord extends Original {
  readonly eventId: string;
}

/** The cumulative state of a unit at a moment (records with all-zero figures are omitted). */
export interface StatementState {
  /** Sorted by class, currency, version. */
  readonly accumulators: readonly AccumulatorRecord[];
  /** Sorted by currency. */
  readonly paid: readonly PaidRecord[];
}

/** The state at the period's start, plus the earlier originals the period's refunds reference. */
export interface StatementOpening extends StatementState {
  /** Sorted by event id. */
  readonly refundable: readonly RefundableRecord[];
}

/** The period's figures in one currency. Balance = accrued creator share − payouts, all time. */
export interface CurrencyTotals {
  readonly currency: string;
  readonly gross: bigint;
  /** Refunds and chargebacks, each positive; creator + platform = gross − refunds − chargebacks. */
  readonly refunds: bigint;
  readonly chargebacks: bigint;
  readonly creator: bigint;
  readonly platform: bigint;
  readonly payouts: bigint;
  readonly openingBalance: bigint;
  readonly closingBalance: bigint;
}

/** The period's figures of one source in one currency. */
export interface SourceTotals {
  readonly source: string;
  readonly currency: string;
  readonly gross: bigint;
  readonly refunds: bigint;
  readonly chargebacks: bigint;
  readonly creator: bigint;
  readonly platform: bigint;
  readonly payouts: bigint;
}

/** A unit's statement for a period. */
export interface Statement {
  readonly format: typeof STATEMENT_FORMAT;
  readonly unit: string;
  readonly period: Period;
  readonly opening: StatementOpening;
  /** In ledger order. */
  readonly entries: readonly StatementEntry[];
  /** Sorted by currency. */
  readonly totals: readonly CurrencyTotals[];
  /** Sorted by source, then currency. */
  readonly bySource: readonly SourceTotals[];
  readonly closing: StatementState;
}

/** What to build a statement from: the unit's events in ledger order, from its first up to at least the period's end. */
export interface StatementInput {
  readonly unit: string;
  readonly period: Period;
  readonly events: readonly MoneyEvent[];
}

/** A violation or a mismatch found by recomputeStatement. */
export interface StatementIssue {
  /** Where: "entries[3].creator", "opening.accumulators[0]", "totals[1].closingBalance"... */
  readonly path: string;
  readonly code: HandshakeErrorCode;
  readonly detail: string;
}

/** The result of recomputeStatement. */
export interface StatementCheck {
  readonly ok: boolean;
  readonly issues: readonly StatementIssue[];
  /** Issues found beyond STATEMENT_ISSUES_MAX (not listed). */
  readonly truncated: number;
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The unit's cumulative state while folding events (local mutation only; inputs are never changed). */
class Fold {
  readonly accumulators = new Map<string, AccumulatorRecord>();
  readonly balances = new Map<string, Balance>();
  readonly originals = new Map<string, Original>();
  readonly seen = new Map<string, SeenEvent>();

  static fromOpening(opening: StatementOpening): Fold {
    const f = new Fold();
    for (const a of opening.accumulators) {
      f.accumulators.set(accumulatorKeyString(a), a);
      const b = f.balance(a.currency);
      f.balances.set(a.currency, { accrued: b.accrued + a.creator, paid: b.paid });
    }
    for (const p of opening.paid) {
      const b = f.balance(p.currency);
      f.balances.set(p.currency, { accrued: b.accrued, paid: b.paid + p.paid });
    }
    for (const r of opening.refundable) {
      f.originals.set(r.eventId, { class: r.class, currency: r.currency, version: r.version, remaining: r.remaining });
    }
    return f;
  }

  balance(currency: string): Balance {
    return this.balances.get(currency) ?? { accrued: 0n, paid: 0n };
  }

  /** Computes and applies a new event; undefined when its figures are undefined (violation reported). */
  apply(event: MoneyEvent, sink: Sink): StatementEntry | undefined {
    const original = event.kind === "refund" || event.kind === "chargeback" ? this.originals.get(event.refOf) : undefined;
    const key = accumulatorKeyOf(event, original);
    const accumulator = key === undefined ? undefined : this.accumulators.get(accumulatorKeyString(key));
    const r = computeEntry({ original, accumulator, balance: this.balances.get(event.currency) }, event, sink);
    if (r === undefined) return undefined;
    this.write(event, r.writes);
    return r.entry;
  }

  private write(event: MoneyEvent, w: EventWrites): void {
    this.seen.set(event.eventId, w.seen);
    if (w.accumulator !== undefined) {
      this.accumulators.set(accumulatorKeyString(w.accumulator.key), { ...w.accumulator.key, ...w.accumulator.value });
    }
    if (w.original !== undefined) this.originals.set(w.original.eventId, w.original.value);
    this.balances.set(event.currency, w.balance);
  }

  state(): StatementState {
    const accumulators = [...this.accumulators.values()].filter((a) => a.gross !== 0n || a.creator !== 0n);
    const paid = [...this.balances.entries()].filter(([, b]) => b.paid !== 0n).map(([currency, b]) => ({ currency, paid: b.paid }));
    return { accumulators: sortAccumulators(accumulators), paid: paid.sort((a, b) => compareStrings(a.currency, b.currency)) };
  }

  opening(refs: ReadonlySet<string>): StatementOpening {
    const refundable: RefundableRecord[] = [];
    for (const id of refs) {
      const o = this.originals.get(id);
      if (o !== undefined) refundable.push({ eventId: id, ...o });
    }
    return { ...this.state(), refundable: refundable.sort((a, b) => compareStrings(a.eventId, b.eventId)) };
  }
}

function sortAccumulators(list: readonly AccumulatorRecord[]): AccumulatorRecord[] {
  return [...list].sort(
    (a, b) => compareStrings(a.class, b.class) || compareStrings(a.currency, b.currency) || a.version - b.version,
  );
}

/** The period's time keys, or HANDSHAKE_PERIOD_INVALID to `sink` unless from < to, both RFC 3339 UTC. */
function periodKeys(period: Period, sink: Sink): { from: string; to: string } | undefined {
  const from = timeKey(period.from);
  const to = timeKey(period.to);
  if (from === undefined || to === undefined || from >= to) {
    sink("HANDSHAKE_PERIOD_INVALID", `${String(period.from).slice(0, 40)} .. ${String(period.to).slice(0, 40)}`);
    return undefined;
  }
  return { from, to };
}

/** Checks an event's place in the list: its unit, strictly increasing index, non-decreasing time. */
function checkPlace(event: MoneyEvent, prev: MoneyEvent | undefined, unit: string, sink: Sink): void {
  if (event.unit !== unit) sink("HANDSHAKE_UNIT_MISMATCH", `event ${event.eventId} belongs to ${String(event.unit).slice(0, 40)}`);
  if (prev === undefined) return;
  const t = timeKey(event.time);
  const pt = timeKey(prev.time);
  if (!(event.index > prev.index) || (t !== undefined && pt !== undefined && t < pt)) {
    sink("HANDSHAKE_EVENTS_UNORDERED", `index ${String(event.index)} at ${event.time} after index ${String(prev.index)} at ${prev.time}`);
  }
}

/**
 * Builds the statement of `unit` for `period` from all its events in ledger order (those before
 * the period make the opening state; those at or after its end are ignored). Identical replays
 * of an event id are skipped. Throws the first violation (HANDSHAKE_*).
 */
export function buildStatement(input: StatementInput): Statement {
  const { unit, period, events } = input;
  if (events.length > STATEMENT_EVENTS_MAX) {
    throw handshakeErrors.make("HANDSHAKE_STATEMENT_TOO_LARGE", `${events.length} events, at most ${STATEMENT_EVENTS_MAX}`);
  }
  const keys = periodKeys(period, throwSink);
  if (keys === undefined) throw new Error("buildStatement: unreachable, periodKeys throws");
  const refs = new Set<string>();
  for (const e of events) {
    const t = timeKey(e.time) ?? "";
    if ((e.kind === "refund" || e.kind === "chargeback") && t >= keys.from && t < keys.to) refs.add(e.refOf);
  }
  const fold = new Fold();
  const entries: StatementEntry[] = [];
  let opening: StatementOpening | undefined;
  let prev: MoneyEvent | undefined;
  for (const e of events) {
    checkPlace(e, prev, unit, throwSink);
    prev = e;
    const t = timeKey(e.time);
    if (t === undefined) throwSink("HANDSHAKE_EVENT_MALFORMED", `time ${String(e.time).slice(0, 40)} is not RFC 3339 UTC`);
    if (t === undefined || t >= keys.to) break;
    if (t >= keys.from && opening === undefined) opening = fold.opening(refs);
    if (checkReplay(fold.seen.get(e.eventId), e).kind === "duplicate") continue;
    const entry = fold.apply(e, throwSink);
    if (entry !== undefined && t >= keys.from) entries.push(entry);
  }
  return assemble(unit, period, opening ?? fold.opening(refs), entries, fold.state());
}

/** Sums a list of entries into per-currency and per-source totals and puts the statement together. */
function assemble(unit: string, period: Period, opening: StatementOpening, entries: readonly StatementEntry[], closing: StatementState): Statement {
  const totals = new Map<string, Mutable<CurrencyTotals>>();
  const bySource = new Map<string, Mutable<SourceTotals>>();
  const total = (currency: string): Mutable<CurrencyTotals> => {
    let t = totals.get(currency);
    if (t === undefined) {
      t = { currency, ...zeroFigures(), openingBalance: balanceOf(opening, currency), closingBalance: balanceOf(closing, currency) };
      totals.set(currency, t);
    }
    return t;
  };
  for (const a of [...opening.accumulators, ...closing.accumulators, ...opening.paid, ...closing.paid]) total(a.currency);
  for (const e of entries) {
    const key = JSON.stringify([e.source, e.currency]);
    let s = bySource.get(key);
    if (s === undefined) {
      s = { source: e.source, currency: e.currency, ...zeroFigures() };
      bySource.set(key, s);
    }
    addEntry(total(e.currency), e);
    addEntry(s, e);
  }
  return {
    format: STATEMENT_FORMAT,
    unit,
    period: { from: period.from, to: period.to },
    opening,
    entries,
    totals: [...totals.values()].sort((a, b) => compareStrings(a.currency, b.currency)),
    bySource: [...bySource.values()].sort((a, b) => compareStrings(a.source, b.source) || compareStrings(a.currency, b.currency)),
    closing,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Figures {
  gross: bigint;
  refunds: bigint;
  chargebacks: bigint;
  creator: bigint;
  platform: bigint;
  payouts: bigint;
}

function zeroFigures(): Figures {
  return { gross: 0n, refunds: 0n, chargebacks: 0n, creator: 0n, platform: 0n, payouts: 0n };
}

function addEntry(f: Figures, e: StatementEntry): void {
  switch (e.kind) {
    case "revenue":
      f.gross += e.amount;
      f.creator += e.creator;
      f.platform += e.platform;
      return;
    case "refund":
    case "chargeback":
      if (e.kind === "refund") f.refunds += e.amount;
      else f.chargebacks += e.amount;
      f.creator += e.creator;
      f.platform += e.platform;
      return;
    case "payout":
      f.payouts += e.amount;
      return;
    default:
      assertNever(e);
  }
}

/** The creator's available balance in a currency of a state: Σ accumulated creator shares − payouts. */
export function balanceOf(state: StatementState, currency: string): bigint {
  let b = 0n;
  for (const a of state.accumulators) if (a.currency === currency) b += a.creator;
  for (const p of state.paid) if (p.currency === currency) b -= p.paid;
  return b;
}

/** The event a statement entry records (its input fields; every other figure is derived). */
export function eventOfEntry(entry: StatementEntry, unit: string): MoneyEvent {
  const base = { eventId: entry.eventId, index: entry.index, time: entry.time, unit, source: entry.source, currency: entry.currency, amount: entry.amount };
  switch (entry.kind) {
    case "revenue":
      return { ...base, kind: "revenue", class: entry.class, version: entry.version };
    case "refund":
    case "chargeback":
      return { ...base, kind: entry.kind, refOf: entry.refOf };
    case "payout":
      return { ...base, kind: "payout" };
    default:
      return assertNever(entry);
  }
}

/**
 * Recomputes every figure of a statement from its opening state and its entries' own fields
 * (event id, index, time, source, currency, amount, kind; class and version of revenue; refOf),
 * checks every rule on the way, and lists each violation and each figure that differs. Pure and
 * offline: it needs no earlier period and no ledger (the proof checks are the CLI's).
 */
export function recomputeStatement(statement: Statement): StatementCheck {
  const issues: StatementIssue[] = [];
  let truncated = 0;
  let where = "";
  const report = (path: string, code: HandshakeErrorCode, detail: string): void => {
    if (issues.length < STATEMENT_ISSUES_MAX) issues.push({ path, code, detail });
    else truncated += 1;
  };
  const sink: Sink = (code, detail) => report(where, code, detail);
  if (statement.format !== STATEMENT_FORMAT) report("format", "HANDSHAKE_STATEMENT_MALFORMED", `not ${STATEMENT_FORMAT}`);
  where = "period";
  const keys = periodKeys(statement.period, sink);
  checkOpening(statement, report);
  const fold = Fold.fromOpening(statement.opening);
  const entries: StatementEntry[] = [];
  let prev: MoneyEvent | undefined;
  statement.entries.forEach((stated, i) => {
    where = `entries[${i}]`;
    const e = eventOfEntry(stated, statement.unit);
    checkPlace(e, prev, statement.unit, sink);
    prev = e;
    const t = timeKey(e.time);
    if (keys !== undefined && t !== undefined && (t < keys.from || t >= keys.to)) sink("HANDSHAKE_EVENT_OUTSIDE_PERIOD", e.time);
    if (fold.seen.has(e.eventId) || (e.kind === "revenue" && fold.originals.has(e.eventId))) {
      sink("HANDSHAKE_EVENT_CONFLICT", `event id ${e.eventId} appears twice`);
    }
    // Where the figures are undefined (unknown original or constitution) the stated entry stands in.
    entries.push(fold.apply(e, sink) ?? stated);
  });
  const opening: StatementOpening = {
    accumulators: sortAccumulators(statement.opening.accumulators),
    paid: [...statement.opening.paid].sort((a, b) => compareStrings(a.currency, b.currency)),
    refundable: [...statement.opening.refundable].sort((a, b) => compareStrings(a.eventId, b.eventId)),
  };
  const rebuilt = assemble(statement.unit, statement.period, opening, entries, fold.state());
  diff(statement, rebuilt, "", (path, detail) => report(path, "HANDSHAKE_STATEMENT_MISMATCH", detail));
  return { ok: issues.length === 0 && truncated === 0, issues, truncated };
}

/** The opening is the statement's input: each record must be one the fold can produce. */
function checkOpening(st: Statement, report: (path: string, code: HandshakeErrorCode, detail: string) => void): void {
  const seenKeys = new Set<string>();
  st.opening.accumulators.forEach((a, i) => {
    const path = `opening.accumulators[${i}]`;
    if (!isKnownCurrency(a.currency)) report(path, "HANDSHAKE_CURRENCY_UNKNOWN", a.currency);
    if (!isSplitClass(a.class) || !isConstitutionVersion(a.version)) {
      report(path, "HANDSHAKE_CONSTITUTION_UNKNOWN", `version ${String(a.version)}, class ${String(a.class)}`);
      return;
    }
    try {
      checkAccumulator(a, splitRatio(a.version, a.class));
    } catch (e) {
      report(path, "HANDSHAKE_ACCUMULATOR_INVALID", e instanceof Error ? e.message : String(e));
    }
    if (a.gross === 0n) report(path, "HANDSHAKE_STATEMENT_MISMATCH", "an all-zero accumulator is omitted");
    const k = accumulatorKeyString(a);
    if (seenKeys.has(k)) report(path, "HANDSHAKE_STATEMENT_MISMATCH", `accumulator ${k} listed twice`);
    seenKeys.add(k);
  });
  const currencies = new Set<string>();
  st.opening.paid.forEach((p, i) => {
    const path = `opening.paid[${i}]`;
    if (!isKnownCurrency(p.currency)) report(path, "HANDSHAKE_CURRENCY_UNKNOWN", p.currency);
    if (p.paid <= 0n) report(path, "HANDSHAKE_STATEMENT_MISMATCH", "cumulative payouts are positive (zero is omitted)");
    if (currencies.has(p.currency)) report(path, "HANDSHAKE_STATEMENT_MISMATCH", `${p.currency} listed twice`);
    currencies.add(p.currency);
  });
  checkRefundable(st, report);
}

function checkRefundable(st: Statement, report: (path: string, code: HandshakeErrorCode, detail: string) => void): void {
  const referenced = new Set<string>();
  const ids = new Set<string>();
  for (const e of st.entries) {
    ids.add(e.eventId);
    if (e.kind === "refund" || e.kind === "chargeback") referenced.add(e.refOf);
  }
  const listed = new Set<string>();
  st.opening.refundable.forEach((r, i) => {
    const path = `opening.refundable[${i}]`;
    if (!isEventId(r.eventId)) report(path, "HANDSHAKE_EVENT_MALFORMED", "event id");
    if (!isKnownCurrency(r.currency)) report(path, "HANDSHAKE_CURRENCY_UNKNOWN", r.currency);
    if (!isSplitClass(r.class) || !isConstitutionVersion(r.version)) {
      report(path, "HANDSHAKE_CONSTITUTION_UNKNOWN", `version ${String(r.version)}, class ${String(r.class)}`);
    }
    if (r.remaining < 0n) report(path, "HANDSHAKE_STATEMENT_MISMATCH", "negative remaining");
    if (!referenced.has(r.eventId)) report(path, "HANDSHAKE_STATEMENT_MISMATCH", `${r.eventId} is referenced by no refund of the period`);
    if (ids.has(r.eventId)) report(path, "HANDSHAKE_EVENT_CONFLICT", `${r.eventId} is also an entry of the period`);
    if (listed.has(r.eventId)) report(path, "HANDSHAKE_STATEMENT_MISMATCH", `${r.eventId} listed twice`);
    listed.add(r.eventId);
  });
}

/** Reports every leaf where `stated` and `recomputed` differ (arrays by position, objects by key). */
function diff(stated: unknown, recomputed: unknown, path: string, report: (path: string, detail: string) => void): void {
  if (Array.isArray(stated) && Array.isArray(recomputed)) {
    if (stated.length !== recomputed.length) report(`${path}.length`, `stated ${stated.length}, recomputed ${recomputed.length}`);
    const n = Math.min(stated.length, recomputed.length);
    for (let i = 0; i < n; i++) diff(stated[i], recomputed[i], `${path}[${i}]`, report);
    return;
  }
  if (isRecord(stated) && isRecord(recomputed)) {
    const keys = new Set([...Object.keys(stated), ...Object.keys(recomputed)]);
    for (const k of keys) diff(stated[k], recomputed[k], path === "" ? k : `${path}.${k}`, report);
    return;
  }
  if (stated !== recomputed) report(path, `stated ${show(stated)}, recomputed ${show(recomputed)}`);
}

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
