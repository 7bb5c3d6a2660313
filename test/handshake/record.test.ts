import { test } from "node:test";
import assert from "node:assert/strict";
import {
  accumulatorKeyOf,
  checkReplay,
  eventFingerprint,
  recordEvent,
  timeKey,
} from "../../src/core/handshake/index.ts";
import type { EventReads, MoneyEvent, PayoutEvent, RefundEvent, RevenueEvent } from "../../src/core/handshake/index.ts";
import { isNexusError } from "../../src/core/errors.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isNexusError(e)) return e.code;
    throw e;
  }
  return "OK";
}

const REV: RevenueEvent = {
  kind: "revenue",
  eventId: "stripe:evt_1",
  index: 10n,
  time: "2026-01-02T03:04:05.000Z",
  unit: "acme",
  source: "stripe",
  currency: "USD",
  amount: 999n,
  class: "imvu",
  version: 1,
};

function applied(reads: EventReads, e: MoneyEvent) {
  const r = recordEvent(reads, e);
  assert.equal(r.kind, "applied");
  if (r.kind !== "applied") throw new Error("unreachable");
  return r;
}

test("a revenue yields its entry and the rows to write", () => {
  const r = applied({}, REV);
  assert.deepEqual(r.entry, {
    kind: "revenue",
    eventId: "stripe:evt_1",
    index: 10n,
    time: "2026-01-02T03:04:05.000Z",
    source: "stripe",
    currency: "USD",
    amount: 999n,
    balanceAfter: 550n,
    class: "imvu",
    version: 1,
    creator: 550n,
    platform: 449n,
    grossAfter: 999n,
    creatorAfter: 550n,
    remainingAfter: 999n,
  });
  assert.deepEqual(r.writes.accumulator, { key: { class: "imvu", currency: "USD", version: 1 }, value: { gross: 999n, creator: 550n } });
  assert.deepEqual(r.writes.original, { eventId: "stripe:evt_1", value: { class: "imvu", currency: "USD", version: 1, remaining: 999n } });
  assert.deepEqual(r.writes.balance, { accrued: 550n, paid: 0n });
  assert.equal(r.writes.seen.fingerprint, eventFingerprint(REV));
});

test("idempotency: the same event id twice is a no-op returning the first entry, even at another index and time", () => {
  const first = applied({}, REV);
  const again = recordEvent({ seen: first.writes.seen }, { ...REV, index: 99n, time: "2026-02-01T00:00:00.000Z" });
  assert.deepEqual(again, { kind: "duplicate", entry: first.entry });
  assert.deepEqual(checkReplay(first.writes.seen, REV), { kind: "duplicate", entry: first.entry });
  assert.deepEqual(checkReplay(undefined, REV), { kind: "new" });
});

test("idempotency: the same event id with any differing content is HANDSHAKE_EVENT_CONFLICT", () => {
  const seen = applied({}, REV).writes.seen;
  const variants: MoneyEvent[] = [
    { ...REV, amount: 1000n },
    { ...REV, currency: "EUR" },
    { ...REV, source: "paypal" },
    { ...REV, unit: "other" },
    { ...REV, class: "mini-platform" },
    { kind: "payout", eventId: REV.eventId, index: 11n, time: REV.time, unit: "acme", source: "stripe", currency: "USD", amount: 999n },
    { kind: "refund", eventId: REV.eventId, index: 11n, time: REV.time, unit: "acme", source: "stripe", currency: "USD", amount: 999n, refOf: "x" },
  ];
  for (const v of variants) assert.equal(code(() => recordEvent({ seen }, v)), "HANDSHAKE_EVENT_CONFLICT", JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x)));
});

const REFUND: RefundEvent = { ...REV, kind: "refund", eventId: "stripe:re_1", index: 11n, amount: 5n, refOf: "stripe:evt_1" };

test("refunds: split in the original's accumulator, bounded by what remains refundable", () => {
  const rev = applied({}, REV);
  const reads: EventReads = {
    original: rev.writes.original?.value,
    accumulator: rev.writes.accumulator?.value,
    balance: rev.writes.balance,
  };
  assert.deepEqual(accumulatorKeyOf(REFUND, reads.original), { class: "imvu", currency: "USD", version: 1 });
  const r = applied(reads, REFUND);
  assert.equal(r.entry.kind, "refund");
  if (r.entry.kind !== "refund") return;
  // G: 999 → 994, C: 550 → ceil(546.70) = 547.
  assert.deepEqual([r.entry.creator, r.entry.platform, r.entry.grossAfter, r.entry.creatorAfter], [-3n, -2n, 994n, 547n]);
  assert.deepEqual(r.writes.original, { eventId: "stripe:evt_1", value: { class: "imvu", currency: "USD", version: 1, remaining: 994n } });
  assert.equal(r.entry.remainingAfter, 994n);
  const cb = applied(reads, { ...REFUND, kind: "chargeback", amount: 999n });
  assert.equal(cb.entry.kind, "chargeback");
  assert.equal(code(() => recordEvent(reads, { ...REFUND, amount: 1000n })), "HANDSHAKE_REFUND_EXCEEDS_ORIGINAL");
  assert.equal(code(() => recordEvent({ ...reads, original: undefined }, REFUND)), "HANDSHAKE_REFUND_ORIGINAL_UNKNOWN");
  assert.equal(code(() => recordEvent(reads, { ...REFUND, currency: "EUR" })), "HANDSHAKE_REFUND_MISMATCH");
  assert.equal(code(() => recordEvent(reads, { ...REFUND, refOf: REFUND.eventId })), "HANDSHAKE_EVENT_MALFORMED");
  // The projection's accumulator is checked before use.
  assert.equal(code(() => recordEvent({ ...reads, accumulator: { gross: 999n, creator: 549n } }, REFUND)), "HANDSHAKE_ACCUMULATOR_INVALID");
});

test("payouts: bounded by the balance (accrued − paid) of the currency", () => {
  const PAY: PayoutEvent = { kind: "payout", eventId: "payout:1", index: 12n, time: REV.time, unit: "acme", source: "bank", currency: "USD", amount: 550n };
  const r = applied({ balance: { accrued: 550n, paid: 0n } }, PAY);
  assert.deepEqual(r.entry, {
    kind: "payout",
    eventId: "payout:1",
    index: 12n,
    time: REV.time,
    source: "bank",
    currency: "USD",
    amount: 550n,
    balanceAfter: 0n,
    paidAfter: 550n,
  });
  assert.deepEqual(r.writes, { seen: r.writes.seen, balance: { accrued: 550n, paid: 550n } });
  assert.equal(code(() => recordEvent({ balance: { accrued: 550n, paid: 1n } }, PAY)), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
  assert.equal(code(() => recordEvent({}, PAY)), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
});

test("malformed events are rejected with codes before anything else", () => {
  const bad: readonly [Partial<RevenueEvent> | Record<string, unknown>, string][] = [
    [{ eventId: "" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ eventId: "has space" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ eventId: "x".repeat(201) }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ index: -1n }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ time: "2026-02-30T00:00:00Z" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ time: "2026-01-02 03:04:05Z" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ time: "2026-01-02T03:04:05+01:00" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ unit: "" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ source: "a\nb" }, "HANDSHAKE_EVENT_MALFORMED"],
    [{ currency: "XAU" }, "HANDSHAKE_CURRENCY_UNKNOWN"],
    [{ amount: 0n }, "HANDSHAKE_AMOUNT_OUT_OF_RANGE"],
    [{ amount: -5n }, "HANDSHAKE_AMOUNT_OUT_OF_RANGE"],
    [{ amount: 10n ** 31n }, "HANDSHAKE_AMOUNT_OUT_OF_RANGE"],
    [{ version: 2 }, "HANDSHAKE_CONSTITUTION_UNKNOWN"],
    [{ class: "stream" }, "HANDSHAKE_CONSTITUTION_UNKNOWN"],
    [{ kind: "gift" }, "HANDSHAKE_EVENT_MALFORMED"],
  ];
  for (const [patch, want] of bad) {
    assert.equal(code(() => recordEvent({}, { ...REV, ...patch } as MoneyEvent)), want, JSON.stringify(Object.keys(patch)));
  }
});

test("timeKey orders RFC 3339 UTC times and rejects impossible dates", () => {
  assert.ok((timeKey("2026-01-02T03:04:05Z") ?? "") < (timeKey("2026-01-02T03:04:05.000000001Z") ?? ""));
  assert.equal(timeKey("2026-01-02T03:04:05.5Z"), timeKey("2026-01-02T03:04:05.500Z"));
  assert.notEqual(timeKey("2024-02-29T00:00:00Z"), undefined);
  for (const t of ["2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00.1234567890Z", "2026-01-01t00:00:00z"]) {
    assert.equal(timeKey(t), undefined, t);
  }
});
