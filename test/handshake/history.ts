/**
 * Random money histories for the handshake property tests: fast-check generates abstract
 * operations; `play` turns them into a valid event list by recording each through recordEvent
 * (as the pipeline would, with Map-backed projections), checking the split invariants against an
 * independent model at every step, and checking that invalid attempts are refused with a code.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { AMOUNT_MINOR_MAX, accumulatorKeyOf, accumulatorKeyString, recordEvent } from "../../src/core/handshake/index.ts";
import type {
  Balance,
  MoneyEvent,
  Original,
  SeenEvent,
  SplitAccumulator,
  SplitClass,
  StatementEntry,
} from "../../src/core/handshake/index.ts";
import { isNexusError } from "../../src/core/errors.ts";

/** The currencies of the property: 2, 0 and 3 fraction digits. */
export const CURRENCIES = ["USD", "JPY", "KWD"] as const;
const CLASSES: readonly SplitClass[] = ["imvu", "mini-platform"];
// The constitution's percentages, written here independently of the code under test.
const CREATOR_PERCENT: Readonly<Record<SplitClass, bigint>> = { imvu: 55n, "mini-platform": 80n };

/** An abstract operation; `play` resolves picks and fractions against the state reached. */
export type Op =
  | { readonly t: "revenue"; readonly cur: number; readonly cls: number; readonly amount: bigint }
  | { readonly t: "refund"; readonly pick: number; readonly permille: number; readonly chargeback: boolean }
  | { readonly t: "payout"; readonly cur: number; readonly permille: number }
  | { readonly t: "replay"; readonly pick: number }
  | { readonly t: "over-refund"; readonly pick: number; readonly extra: bigint }
  | { readonly t: "over-payout"; readonly cur: number; readonly extra: bigint };

const amount = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt(1n, 10n) },
  { weight: 4, arbitrary: fc.bigInt(1n, 100_000n) },
  { weight: 1, arbitrary: fc.bigInt(1n, 10n ** 31n - 1n) },
);

/** One operation, mostly revenue and refunds. */
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant("revenue" as const), cur: fc.nat(2), cls: fc.nat(1), amount }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("refund" as const), pick: fc.nat(), permille: fc.integer({ min: 1, max: 1000 }), chargeback: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("payout" as const), cur: fc.nat(2), permille: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("replay" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("over-refund" as const), pick: fc.nat(), extra: fc.bigInt(0n, 1000n) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("over-payout" as const), cur: fc.nat(2), extra: fc.bigInt(0n, 1000n) }) },
);

/** The projections a pipeline would keep for one unit, as Maps. */
export class Model {
  readonly unit: string;
  readonly accumulators = new Map<string, SplitAccumulator>();
  readonly originals = new Map<string, Original>();
  readonly balances = new Map<string, Balance>();
  readonly seen = new Map<string, SeenEvent>();
  readonly events: MoneyEvent[] = [];
  readonly entries: StatementEntry[] = [];
  readonly revenues: string[] = [];
  /** Independent sums per currency: gross, refunds, payouts. */
  readonly sums = new Map<string, { gross: bigint; refunds: bigint; payouts: bigint }>();
  private next = 0;

  constructor(unit: string) {
    this.unit = unit;
  }

  /** Ledger position of the next event: index and a millisecond time, both increasing. */
  position(): { index: bigint; time: string } {
    this.next += 1;
    return { index: BigInt(this.next) * 3n, time: new Date(Date.UTC(2026, 0, 1) + this.next * 60_000).toISOString() };
  }

  available(currency: string): bigint {
    const b = this.balances.get(currency);
    return b === undefined ? 0n : b.accrued - b.paid;
  }

  /** Records through recordEvent with this model's rows, applies the writes, checks the invariants. */
  record(e: MoneyEvent): StatementEntry {
    const original = e.kind === "refund" || e.kind === "chargeback" ? this.originals.get(e.refOf) : undefined;
    const key = accumulatorKeyOf(e, original);
    const accumulator = key === undefined ? undefined : this.accumulators.get(accumulatorKeyString(key));
    const before = accumulator ?? { gross: 0n, creator: 0n };
    const r = recordEvent({ seen: this.seen.get(e.eventId), original, accumulator, balance: this.balances.get(e.currency) }, e);
    if (r.kind === "duplicate") return r.entry;
    const w = r.writes;
    this.seen.set(e.eventId, w.seen);
    if (w.accumulator !== undefined) this.accumulators.set(accumulatorKeyString(w.accumulator.key), w.accumulator.value);
    if (w.original !== undefined) this.originals.set(w.original.eventId, w.original.value);
    this.balances.set(e.currency, w.balance);
    this.events.push(e);
    this.entries.push(r.entry);
    this.check(e, r.entry, before);
    return r.entry;
  }

  private check(e: MoneyEvent, entry: StatementEntry, before: SplitAccumulator): void {
    const s = this.sums.get(e.currency) ?? { gross: 0n, refunds: 0n, payouts: 0n };
    this.sums.set(e.currency, s);
    if (entry.kind === "payout") {
      s.payouts += e.amount;
      assert.ok(this.available(e.currency) >= 0n, "a payout never takes the balance below zero");
      return;
    }
    const signed = entry.kind === "revenue" ? e.amount : -e.amount;
    if (entry.kind === "revenue") s.gross += e.amount;
    else s.refunds += e.amount;
    // Parts add up to the amount, and share its sign.
    assert.equal(entry.creator + entry.platform, signed);
    assert.ok(signed > 0n ? entry.creator >= 0n && entry.platform >= 0n : entry.creator <= 0n && entry.platform <= 0n);
    // Cumulative gross and share follow the model; 0 ≤ C×100 − G×p < 100 (exact rational comparison).
    assert.equal(entry.grossAfter, before.gross + signed);
    assert.equal(entry.creatorAfter, before.creator + entry.creator);
    const excess = entry.creatorAfter * 100n - entry.grossAfter * CREATOR_PERCENT[entry.class];
    assert.ok(excess >= 0n && excess < 100n, `creator − exact share out of [0, 1): ${excess}/100`);
  }
}

function expectCode(fn: () => unknown, want: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isNexusError(e, want), `want ${want}, got ${String(e)}`);
    return;
  }
  assert.fail(`want ${want}, got success`);
}

/** Plays the operations on a model; returns it with the valid events recorded. */
export function play(ops: readonly Op[], unit = "unit-1"): Model {
  const m = new Model(unit);
  for (const op of ops) step(m, op);
  return m;
}

function step(m: Model, op: Op): void {
  const id = `evt-${m.events.length}-${op.t}`;
  switch (op.t) {
    case "revenue": {
      const c = CURRENCIES[op.cur] ?? "USD";
      const cls = CLASSES[op.cls] ?? "imvu";
      m.revenues.push(id);
      m.record({ kind: "revenue", eventId: id, ...m.position(), unit: m.unit, source: `src-${op.cur + op.cls}`, currency: c, amount: op.amount, class: cls, version: 1 });
      return;
    }
    case "refund": {
      const ref = pickRefundable(m, op.pick);
      if (ref === undefined) return;
      const amount = 1n + ((ref.remaining - 1n) * BigInt(op.permille)) / 1000n;
      m.record({ kind: op.chargeback ? "chargeback" : "refund", eventId: id, ...m.position(), unit: m.unit, source: "src-refunds", currency: ref.currency, amount, refOf: ref.eventId });
      return;
    }
    case "payout": {
      const c = CURRENCIES[op.cur] ?? "USD";
      const avail = m.available(c);
      if (avail <= 0n) return;
      // One payout moves at most AMOUNT_MINOR_MAX; a larger balance takes several.
      const want = 1n + ((avail - 1n) * BigInt(op.permille)) / 1000n;
      m.record({ kind: "payout", eventId: id, ...m.position(), unit: m.unit, source: "bank", currency: c, amount: want < AMOUNT_MINOR_MAX ? want : AMOUNT_MINOR_MAX });
      return;
    }
    case "replay": {
      const e = m.events[op.pick % Math.max(1, m.events.length)];
      if (e === undefined) return;
      const first = m.entries[m.events.indexOf(e)];
      const n = m.events.length;
      assert.deepEqual(m.record({ ...e, ...m.position() }), first, "a replay returns the first entry");
      assert.equal(m.events.length, n, "a replay records nothing");
      expectCode(() => m.record({ ...e, ...m.position(), source: `${e.source}-other` }), "HANDSHAKE_EVENT_CONFLICT");
      return;
    }
    case "over-refund": {
      const ref = pickRefundable(m, op.pick);
      if (ref === undefined) return;
      if (ref.remaining + 1n + op.extra > AMOUNT_MINOR_MAX) return;
      const e: MoneyEvent = { kind: "refund", eventId: id, ...m.position(), unit: m.unit, source: "src-refunds", currency: ref.currency, amount: ref.remaining + 1n + op.extra, refOf: ref.eventId };
      expectCode(() => m.record(e), "HANDSHAKE_REFUND_EXCEEDS_ORIGINAL");
      return;
    }
    case "over-payout": {
      const c = CURRENCIES[op.cur] ?? "USD";
      const amount = (m.available(c) > 0n ? m.available(c) : 0n) + 1n + op.extra;
      if (amount > AMOUNT_MINOR_MAX) return;
      expectCode(() => m.record({ kind: "payout", eventId: id, ...m.position(), unit: m.unit, source: "bank", currency: c, amount }), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
      return;
    }
  }
}

function pickRefundable(m: Model, pick: number): (Original & { eventId: string }) | undefined {
  if (m.revenues.length === 0) return undefined;
  const eventId = m.revenues[pick % m.revenues.length] ?? "";
  const o = m.originals.get(eventId);
  return o === undefined || o.remaining === 0n ? undefined : { ...o, eventId };
}
