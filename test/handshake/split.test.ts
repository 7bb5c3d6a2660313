import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  EMPTY_ACCUMULATOR,
  EMPTY_BALANCE,
  SPLITS,
  SPLITS_V1,
  accrue,
  applyPayout,
  availableOf,
  ceilDiv,
  payoutAllowed,
  splitEntry,
} from "../../src/core/handshake/index.ts";
import type { ConstitutionVersion, SplitAccumulator, SplitClass } from "../../src/core/handshake/index.ts";
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

// The constitution's percentages, written here independently of the code under test.
const CREATOR_PERCENT: Readonly<Record<SplitClass, bigint>> = { imvu: 55n, "mini-platform": 80n };

function run(cls: SplitClass, amounts: readonly bigint[]): { creator: bigint[]; platform: bigint[]; acc: SplitAccumulator } {
  let acc = EMPTY_ACCUMULATOR;
  const creator: bigint[] = [];
  const platform: bigint[] = [];
  for (const a of amounts) {
    const r = splitEntry(acc, a, cls, 1);
    creator.push(r.creator);
    platform.push(r.platform);
    acc = r.next;
  }
  return { creator, platform, acc };
}

const sum = (xs: readonly bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);

test("constitution v1 splits are 55/45 and 80/20, frozen, keyed by version", () => {
  assert.deepEqual(SPLITS_V1.imvu, { creatorPercent: 55n, platformPercent: 45n });
  assert.deepEqual(SPLITS_V1["mini-platform"], { creatorPercent: 80n, platformPercent: 20n });
  assert.equal(SPLITS[1], SPLITS_V1);
  assert.ok(Object.isFrozen(SPLITS) && Object.isFrozen(SPLITS_V1) && Object.isFrozen(SPLITS_V1.imvu));
  assert.throws(() => {
    (SPLITS_V1.imvu as { creatorPercent: bigint }).creatorPercent = 99n;
  }, TypeError);
  for (const r of Object.values(SPLITS_V1)) assert.equal(r.creatorPercent + r.platformPercent, 100n);
});

test("100 revenues of 1 minor unit at 55%: creator gets 1,1,0,1,0,1,0,1,0,1,1,... and 55/45 exactly", () => {
  const { creator, platform, acc } = run("imvu", Array.from({ length: 100 }, () => 1n));
  // G=1: ceil(0.55)=1; G=2: ceil(1.10)=2; G=3: ceil(1.65)=2; G=4: ceil(2.20)=3; G=5: ceil(2.75)=3;
  // G=6: ceil(3.30)=4; G=7: ceil(3.85)=4; G=8: ceil(4.40)=5; G=9: ceil(4.95)=5; G=10: ceil(5.50)=6;
  // G=11: ceil(6.05)=7; G=12: ceil(6.60)=7.
  assert.deepEqual(creator.slice(0, 12), [1n, 1n, 0n, 1n, 0n, 1n, 0n, 1n, 0n, 1n, 1n, 0n]);
  assert.deepEqual(platform.slice(0, 12), [0n, 0n, 1n, 0n, 1n, 0n, 1n, 0n, 1n, 0n, 0n, 1n]);
  // Every 20 units the pattern repeats with exactly 11 to the creator (55% of 20).
  for (let k = 0; k < 5; k++) assert.equal(sum(creator.slice(20 * k, 20 * k + 20)), 11n);
  assert.equal(sum(creator), 55n);
  assert.equal(sum(platform), 45n);
  assert.deepEqual(acc, { gross: 100n, creator: 55n });
});

test("100 revenues of 1 minor unit at 80% (mini-platform): 1,1,1,1,0 repeating, 80/20 exactly", () => {
  const { creator, platform } = run("mini-platform", Array.from({ length: 100 }, () => 1n));
  assert.deepEqual(creator.slice(0, 10), [1n, 1n, 1n, 1n, 0n, 1n, 1n, 1n, 1n, 0n]);
  assert.equal(sum(creator), 80n);
  assert.equal(sum(platform), 20n);
});

test("worked example of docs/handshake.md: 9.99, 0.01, 0.05, refund 0.05, 20.00 (USD, 55%)", () => {
  const r = run("imvu", [999n, 1n, 5n, -5n, 2000n]);
  // G: 999 → C = ceil(549.45) = 550; 1000 → 550; 1005 → ceil(552.75) = 553; 1000 → 550; 3000 → 1650.
  assert.deepEqual(r.creator, [550n, 0n, 3n, -3n, 1100n]);
  assert.deepEqual(r.platform, [449n, 1n, 2n, -2n, 900n]);
  assert.deepEqual(r.acc, { gross: 3000n, creator: 1650n });
});

test("negative steps at the ceiling: the refund's parts follow the cumulative share", () => {
  // G=3, C=ceil(1.65)=2. Refund 1 → G=2, C=ceil(1.10)=2: the platform gives back the unit.
  const three = run("imvu", [3n]).acc;
  assert.deepEqual(three, { gross: 3n, creator: 2n });
  const a = splitEntry(three, -1n, "imvu", 1);
  assert.deepEqual([a.creator, a.platform], [0n, -1n]);
  // Then refund 1 again → G=1, C=ceil(0.55)=1: the creator gives back one unit.
  const b = splitEntry(a.next, -1n, "imvu", 1);
  assert.deepEqual([b.creator, b.platform], [-1n, 0n]);
  // Refunding all → G=0, C=0: everything is returned, nothing is left over.
  const c = splitEntry(b.next, -1n, "imvu", 1);
  assert.deepEqual([c.creator, c.platform, c.next.gross, c.next.creator], [-1n, 0n, 0n, 0n]);
});

test("splitEntry rejects impossible states and amounts with codes", () => {
  const acc = run("imvu", [3n]).acc;
  assert.equal(code(() => splitEntry({ gross: 3n, creator: 1n }, 1n, "imvu", 1)), "HANDSHAKE_ACCUMULATOR_INVALID");
  assert.equal(code(() => splitEntry({ gross: 3n, creator: 3n }, 1n, "imvu", 1)), "HANDSHAKE_ACCUMULATOR_INVALID");
  assert.equal(code(() => splitEntry({ gross: -1n, creator: 0n }, 1n, "imvu", 1)), "HANDSHAKE_ACCUMULATOR_INVALID");
  // An IMVU accumulator handed in as mini-platform: C = 2 is not ceil(3 × 0.8) = 3.
  assert.equal(code(() => splitEntry(acc, 1n, "mini-platform", 1)), "HANDSHAKE_ACCUMULATOR_INVALID");
  assert.equal(code(() => splitEntry(acc, 0n, "imvu", 1)), "HANDSHAKE_AMOUNT_OUT_OF_RANGE");
  assert.equal(code(() => splitEntry(acc, -4n, "imvu", 1)), "HANDSHAKE_REFUND_EXCEEDS_ORIGINAL");
  assert.equal(code(() => splitEntry(acc, 1n, "imvu", 2 as unknown as ConstitutionVersion)), "HANDSHAKE_CONSTITUTION_UNKNOWN");
  assert.equal(code(() => splitEntry(acc, 1n, "stream" as unknown as SplitClass, 1)), "HANDSHAKE_CONSTITUTION_UNKNOWN");
});

test("ceilDiv rounds up for positive numerators and toward zero for negative ones", () => {
  const cases: readonly [bigint, bigint, bigint][] = [
    [0n, 100n, 0n], [1n, 100n, 1n], [100n, 100n, 1n], [101n, 100n, 2n], [199n, 100n, 2n], [200n, 100n, 2n],
    [-1n, 100n, 0n], [-99n, 100n, 0n], [-100n, 100n, -1n], [-101n, 100n, -1n], [-199n, 100n, -1n], [-200n, 100n, -2n],
  ];
  for (const [n, d, want] of cases) assert.equal(ceilDiv(n, d), want, `${n}/${d}`);
  assert.throws(() => ceilDiv(1n, 0n), RangeError);
});

/** A signed entry sequence whose cumulative gross never goes below zero. */
const entries = fc.array(
  fc.tuple(fc.oneof(fc.bigInt(1n, 10n), fc.bigInt(1n, 1_000_000n), fc.bigInt(1n, 10n ** 31n - 1n)), fc.nat(99), fc.boolean()),
  { maxLength: 60 },
);

test("property: parts add up, share the amount's sign, and 0 ≤ C×100 − G×p < 100 at every step", () => {
  fc.assert(
    fc.property(entries, fc.constantFrom<SplitClass>("imvu", "mini-platform"), (steps, cls) => {
      const p = CREATOR_PERCENT[cls];
      let acc = EMPTY_ACCUMULATOR;
      for (const [size, pct, refund] of steps) {
        // A refund takes back at most the cumulative gross.
        const amount = refund && acc.gross > 0n ? -(1n + ((acc.gross - 1n) * BigInt(pct)) / 99n) : size;
        const r = splitEntry(acc, amount, cls, 1);
        assert.equal(r.creator + r.platform, amount);
        if (amount > 0n) assert.ok(r.creator >= 0n && r.platform >= 0n);
        else assert.ok(r.creator <= 0n && r.platform <= 0n);
        assert.equal(r.next.gross, acc.gross + amount);
        const excess = r.next.creator * 100n - r.next.gross * p;
        assert.ok(excess >= 0n && excess < 100n, `excess ${excess}`);
        assert.equal(r.next.creator, acc.creator + r.creator);
        acc = r.next;
      }
    }),
    { numRuns: 500 },
  );
});

test("payouts: allowed up to the accrued balance, never beyond, never zero or negative", () => {
  const b = accrue(EMPTY_BALANCE, 550n);
  assert.equal(availableOf(b), 550n);
  assert.ok(payoutAllowed(b, 550n));
  assert.ok(payoutAllowed(b, 1n));
  assert.ok(!payoutAllowed(b, 551n));
  assert.ok(!payoutAllowed(b, 0n));
  assert.ok(!payoutAllowed(b, -1n));
  const after = applyPayout(b, 500n);
  assert.deepEqual(after, { accrued: 550n, paid: 500n });
  assert.equal(code(() => applyPayout(after, 51n)), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
  assert.equal(code(() => applyPayout(after, 0n)), "HANDSHAKE_AMOUNT_OUT_OF_RANGE");
  // A refund after a payout can leave the balance negative; then nothing can be paid out.
  const owed = accrue(after, -100n);
  assert.equal(availableOf(owed), -50n);
  assert.ok(!payoutAllowed(owed, 1n));
});

test("property: a run of payout attempts never takes the balance below zero", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.bigInt(1n, 10_000n)), { maxLength: 100 }), (ops) => {
      let b = EMPTY_BALANCE;
      for (const [isRevenue, x] of ops) {
        if (isRevenue) b = accrue(b, x);
        else if (payoutAllowed(b, x)) b = applyPayout(b, x);
        else assert.equal(code(() => applyPayout(b, x)), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
        assert.ok(availableOf(b) >= 0n);
      }
    }),
    { numRuns: 300 },
  );
});
