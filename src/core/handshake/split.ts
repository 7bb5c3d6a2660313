/**
 * The constitution's revenue splits with cumulative rounding (ARCHITECTURE.md, Money), and the
 * creator's balance. Pure bigint arithmetic; see docs/handshake.md for the proofs.
 *
 * Per (unit, split class, currency, constitution version) an accumulator holds the cumulative
 * gross G and the cumulative creator share C. After each signed entry of amount a:
 *   G' = G + a,  C' = ceil(G' × creator% / 100),  creator part = C' − C,  platform part = a − (C' − C).
 * So the parts add up to a by construction and 0 ≤ C'×100 − G'×creator% < 100 at every step.
 */
import { handshakeErrors } from "./errors.ts";

/** Split classes of the constitution: an IMVU's own revenue, or a mini-platform's (stream, OTT, custom). */
export type SplitClass = "imvu" | "mini-platform";

/** Every split class. */
export const SPLIT_CLASSES: readonly SplitClass[] = Object.freeze(["imvu", "mini-platform"] as const);

/** Constitution versions that have a split table. */
export type ConstitutionVersion = 1;

/** Every constitution version with a split table. */
export const CONSTITUTION_VERSIONS: readonly ConstitutionVersion[] = Object.freeze([1] as const);

/** A split ratio in whole percent; creatorPercent + platformPercent = 100. */
export interface SplitRatio {
  readonly creatorPercent: bigint;
  readonly platformPercent: bigint;
}

/** The denominator of every ratio (percent). */
export const PERCENT = 100n;

/** Constitution v1 ("Handshake 55-45-17"): IMVU 55/45, mini-platform 80/20. Never configuration. */
export const SPLITS_V1: Readonly<Record<SplitClass, SplitRatio>> = Object.freeze({
  imvu: Object.freeze({ creatorPercent: 55n, platformPercent: 45n }),
  "mini-platform": Object.freeze({ creatorPercent: 80n, platformPercent: 20n }),
});

/** The split tables keyed by constitution version. A version's table never changes once released. */
export const SPLITS: Readonly<Record<ConstitutionVersion, Readonly<Record<SplitClass, SplitRatio>>>> = Object.freeze({
  1: SPLITS_V1,
});

/** True when `v` is a constitution version with a split table. */
export function isConstitutionVersion(v: unknown): v is ConstitutionVersion {
  return v === 1;
}

/** True when `c` is a split class. */
export function isSplitClass(c: unknown): c is SplitClass {
  return c === "imvu" || c === "mini-platform";
}

/** The ratio of a class under a constitution version; throws HANDSHAKE_CONSTITUTION_UNKNOWN. */
export function splitRatio(version: ConstitutionVersion, cls: SplitClass): SplitRatio {
  if (!isConstitutionVersion(version) || !isSplitClass(cls)) {
    throw handshakeErrors.make("HANDSHAKE_CONSTITUTION_UNKNOWN", `version ${String(version)}, class ${String(cls)}`);
  }
  return SPLITS[version][cls];
}

/** Cumulative state of one (unit, class, currency, version): gross G and creator share C = ceil(G×p/100). */
export interface SplitAccumulator {
  readonly gross: bigint;
  readonly creator: bigint;
}

/** The accumulator before any entry. */
export const EMPTY_ACCUMULATOR: SplitAccumulator = Object.freeze({ gross: 0n, creator: 0n });

/** One entry's split: the signed parts (creator + platform = amount) and the next accumulator. */
export interface SplitResult {
  readonly creator: bigint;
  readonly platform: bigint;
  readonly next: SplitAccumulator;
}

/** ceil(n / d) for d > 0 and any sign of n (BigInt division truncates toward zero). */
export function ceilDiv(n: bigint, d: bigint): bigint {
  if (d <= 0n) throw new RangeError("ceilDiv: the divisor must be positive");
  const q = n / d;
  return n > 0n && q * d !== n ? q + 1n : q;
}

/** The creator's cumulative share of a cumulative gross: ceil(gross × creator% / 100). */
export function creatorShareOf(gross: bigint, ratio: SplitRatio): bigint {
  return ceilDiv(gross * ratio.creatorPercent, PERCENT);
}

/** Throws HANDSHAKE_ACCUMULATOR_INVALID unless gross ≥ 0 and creator = ceil(gross × creator% / 100). */
export function checkAccumulator(state: SplitAccumulator, ratio: SplitRatio): void {
  if (typeof state.gross !== "bigint" || typeof state.creator !== "bigint" || state.gross < 0n) {
    throw handshakeErrors.make("HANDSHAKE_ACCUMULATOR_INVALID", "gross must be a non-negative bigint");
  }
  const want = creatorShareOf(state.gross, ratio);
  if (state.creator !== want) {
    throw handshakeErrors.make("HANDSHAKE_ACCUMULATOR_INVALID", `creator ${state.creator} for gross ${state.gross}, want ${want}`);
  }
}

/**
 * The cumulative step without checks (statement recomputation continues past violations with
 * it). Callers that enforce the rules use splitEntry.
 */
export function splitStep(state: SplitAccumulator, amount: bigint, ratio: SplitRatio): SplitResult {
  const gross = state.gross + amount;
  const creatorCum = creatorShareOf(gross, ratio);
  const creator = creatorCum - state.creator;
  return { creator, platform: amount - creator, next: { gross, creator: creatorCum } };
}

/**
 * Splits one signed entry (revenue > 0, refund or chargeback < 0) of a (unit, class, currency)
 * under a constitution version. Throws HANDSHAKE_ACCUMULATOR_INVALID for a state the formula
 * cannot produce, HANDSHAKE_AMOUNT_OUT_OF_RANGE for 0, and HANDSHAKE_REFUND_EXCEEDS_ORIGINAL
 * when the cumulative gross would go below zero. Both parts have the amount's sign.
 */
export function splitEntry(state: SplitAccumulator, amount: bigint, cls: SplitClass, version: ConstitutionVersion): SplitResult {
  const ratio = splitRatio(version, cls);
  checkAccumulator(state, ratio);
  if (typeof amount !== "bigint" || amount === 0n) {
    throw handshakeErrors.make("HANDSHAKE_AMOUNT_OUT_OF_RANGE", "a split entry moves a non-zero bigint amount");
  }
  if (state.gross + amount < 0n) {
    throw handshakeErrors.make("HANDSHAKE_REFUND_EXCEEDS_ORIGINAL", `cumulative gross ${state.gross} cannot take ${amount}`);
  }
  return splitStep(state, amount, ratio);
}

/** The creator's money in one (unit, currency): accrued creator share (all classes) and payouts so far. */
export interface Balance {
  readonly accrued: bigint;
  readonly paid: bigint;
}

/** The balance before any entry. */
export const EMPTY_BALANCE: Balance = Object.freeze({ accrued: 0n, paid: 0n });

/** What the creator may still be paid: accrued − paid (negative after a refund that followed a payout). */
export function availableOf(balance: Balance): bigint {
  return balance.accrued - balance.paid;
}

/** The balance after a split entry's creator part (signed). */
export function accrue(balance: Balance, creatorPart: bigint): Balance {
  return { accrued: balance.accrued + creatorPart, paid: balance.paid };
}

/** True when a payout of `amount` (> 0) stays within the creator's accrued balance. */
export function payoutAllowed(balance: Balance, amount: bigint): boolean {
  return typeof amount === "bigint" && amount > 0n && amount <= availableOf(balance);
}

/** The balance after a payout; throws HANDSHAKE_AMOUNT_OUT_OF_RANGE (≤ 0) or HANDSHAKE_PAYOUT_EXCEEDS_BALANCE. */
export function applyPayout(balance: Balance, amount: bigint): Balance {
  if (typeof amount !== "bigint" || amount <= 0n) {
    throw handshakeErrors.make("HANDSHAKE_AMOUNT_OUT_OF_RANGE", "a payout is a positive bigint amount");
  }
  if (!payoutAllowed(balance, amount)) {
    throw handshakeErrors.make("HANDSHAKE_PAYOUT_EXCEEDS_BALANCE", `payout ${String(amount)}, available ${availableOf(balance)}`);
  }
  return { accrued: balance.accrued, paid: balance.paid + amount };
}
