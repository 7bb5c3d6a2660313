/**
 * The property of the issue: fast-check, 100k random revenue/refund events in 3 currencies
 * (USD, 0-decimal JPY, 3-decimal KWD): parts always add up to the amount, 0 ≤ creator − exact
 * share < 1 minor unit at every step, statements recompute offline. Also payouts never above
 * the balance and idempotent replays (checked at every step by history.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildStatement,
  formatAmount,
  parseAmount,
  parseStatementJson,
  recomputeStatement,
  statementToJson,
} from "../../src/core/handshake/index.ts";
import type { Statement } from "../../src/core/handshake/index.ts";
import { CURRENCIES, opArb, play } from "./history.ts";

const EVENTS_WANTED = 100_000;
const OPS_PER_RUN = 1250;
const RUNS = 100;

function checkOk(st: Statement, label: string): void {
  const r = recomputeStatement(st);
  assert.ok(r.ok, `${label}: ${JSON.stringify(r.issues.slice(0, 3))}`);
}

test(`property: ${EVENTS_WANTED} random revenue/refund/payout events in USD, JPY, KWD split exactly and recompute offline`, () => {
  let events = 0;
  fc.assert(
    fc.property(fc.array(opArb, { minLength: OPS_PER_RUN, maxLength: OPS_PER_RUN }), fc.nat(1000), (ops, cutPermille) => {
      const m = play(ops);
      events += m.events.length;
      // Exact display round trip of every figure in its currency.
      for (const e of m.entries) assert.equal(parseAmount(formatAmount(e.amount, e.currency), e.currency), e.amount);
      // A whole-history statement and two period statements cut at a random event.
      const first = m.events[0];
      const last = m.events[m.events.length - 1];
      if (first === undefined || last === undefined) return;
      const from = "2025-01-01T00:00:00Z";
      const to = "2027-01-01T00:00:00Z";
      const cut = m.events[Math.floor((m.events.length * cutPermille) / 1001)]?.time ?? last.time;
      const whole = buildStatement({ unit: m.unit, period: { from, to }, events: m.events });
      assert.equal(whole.entries.length, m.events.length);
      checkOk(whole, "whole");
      for (const c of CURRENCIES) {
        const t = whole.totals.find((x) => x.currency === c);
        const s = m.sums.get(c);
        assert.equal(t?.gross ?? 0n, s?.gross ?? 0n);
        assert.equal((t?.refunds ?? 0n) + (t?.chargebacks ?? 0n), s?.refunds ?? 0n);
        assert.equal(t?.payouts ?? 0n, s?.payouts ?? 0n);
        assert.equal((t?.creator ?? 0n) + (t?.platform ?? 0n), (s?.gross ?? 0n) - (s?.refunds ?? 0n));
        assert.equal(t?.closingBalance ?? 0n, m.available(c));
      }
      const p1 = buildStatement({ unit: m.unit, period: { from, to: cut }, events: m.events });
      const p2 = buildStatement({ unit: m.unit, period: { from: cut, to }, events: m.events });
      assert.deepEqual(p2.opening.accumulators, p1.closing.accumulators);
      assert.deepEqual(p2.opening.paid, p1.closing.paid);
      assert.equal(p1.entries.length + p2.entries.length, m.events.length);
      checkOk(p1, "p1");
      checkOk(p2, "p2");
      // Offline: the JSON alone (no earlier period) recomputes.
      checkOk(parseStatementJson(JSON.parse(JSON.stringify(statementToJson(p2)))), "p2 from JSON");
    }),
    { numRuns: RUNS },
  );
  assert.ok(events >= EVENTS_WANTED, `only ${events} events were recorded`);
});
