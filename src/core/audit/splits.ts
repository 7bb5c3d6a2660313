/**
 * The `splits` check: every revenue entry of the projection recomputed from the entries alone
 * with the constitution's cumulative rounding (ARCHITECTURE.md, Money; docs/handshake.md).
 * Per (unit, class, currency), in ledger order: each part adds up to its amount, the creator's
 * cumulative share is ceil(G × creator% / 100) after every revenue or refund, payouts take only
 * from the creator and never beyond the balance at their time, accumulators never go negative,
 * and the stored account equals the recomputation. Problem lines name ledger indices and units,
 * never amounts (the report is public).
 */
import { creatorShareOf, isSplitClass, splitRatio } from "../handshake/split.ts";
import type { RevenueAccountRecord, RevenueEventRecord, StateReader } from "../pipeline/state.ts";
import { checkOf, ProblemList, type AuditCheck } from "./report.ts";

/** Title of the check. */
export const SPLITS_TITLE = "revenue splits: parts add up, 55/45 and 80/20 with cumulative rounding, payouts within the balance";

const DECIMAL = /^-?(0|[1-9][0-9]{0,37})$/;

interface Running {
  gross: bigint;
  creator: bigint;
  paidOut: bigint;
}

function amounts(e: RevenueEventRecord): { amount: bigint; creator: bigint; platform: bigint } | undefined {
  if (!DECIMAL.test(e.amount) || !DECIMAL.test(e.creator) || !DECIMAL.test(e.platform)) return undefined;
  return { amount: BigInt(e.amount), creator: BigInt(e.creator), platform: BigInt(e.platform) };
}

function byIndex(a: RevenueEventRecord, b: RevenueEventRecord): number {
  const x = BigInt(a.index);
  const y = BigInt(b.index);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Checks one event against the running accumulator of its account; returns the next one. */
function stepEvent(e: RevenueEventRecord, run: Running, version: 1, p: ProblemList): Running {
  const at = `revenue entry ${e.index} of ${e.imvu} (${e.class}/${e.currency}, ${e.kind})`;
  const a = amounts(e);
  if (a === undefined) {
    p.add(`${at}: an amount is not a decimal integer`);
    return run;
  }
  if (a.creator + a.platform !== a.amount) p.add(`${at}: creator part + platform part ≠ the amount`);
  if (e.kind === "payout") {
    if (a.amount >= 0n) p.add(`${at}: a payout must reduce the balance`);
    if (a.platform !== 0n || a.creator !== a.amount) p.add(`${at}: a payout takes from the creator's share only`);
    if (-a.amount > run.creator - run.paidOut) p.add(`${at}: the payout exceeds the creator's balance at its time`);
    return { ...run, paidOut: run.paidOut - a.amount };
  }
  if (e.kind === "revenue" && a.amount <= 0n) p.add(`${at}: revenue must be positive`);
  if (e.kind === "refund" && a.amount >= 0n) p.add(`${at}: a refund must be negative`);
  const gross = run.gross + a.amount;
  if (gross < 0n) p.add(`${at}: the cumulative gross goes below zero`);
  const creator = creatorShareOf(gross < 0n ? 0n : gross, splitRatio(version, e.class));
  if (a.creator !== creator - run.creator) p.add(`${at}: the creator part is not the cumulative-rounding share of the constitution`);
  return { ...run, gross, creator };
}

function checkRefunds(events: readonly RevenueEventRecord[], byId: ReadonlyMap<string, RevenueEventRecord>, p: ProblemList): void {
  const refunded = new Map<string, bigint>();
  for (const e of events) {
    if (e.kind !== "refund") continue;
    const orig = e.refOf === undefined ? undefined : byId.get(e.refOf);
    if (orig === undefined || orig.kind !== "revenue" || orig.imvu !== e.imvu || orig.currency !== e.currency) {
      p.add(`revenue entry ${e.index} of ${e.imvu}: the refund references no revenue of the same unit and currency`);
      continue;
    }
    if (DECIMAL.test(e.amount)) refunded.set(orig.eventId, (refunded.get(orig.eventId) ?? 0n) - BigInt(e.amount));
  }
  for (const [id, sum] of refunded) {
    const orig = byId.get(id);
    if (orig === undefined || !DECIMAL.test(orig.amount) || !DECIMAL.test(orig.refunded)) continue;
    if (sum > BigInt(orig.amount)) p.add(`revenue entry ${orig.index} of ${orig.imvu}: refunded beyond its amount`);
    if (BigInt(orig.refunded) !== sum) p.add(`revenue entry ${orig.index} of ${orig.imvu}: its refunded total differs from its refunds`);
  }
}

function checkAccount(key: string, acct: RevenueAccountRecord | undefined, run: Running, p: ProblemList): void {
  if (acct === undefined) {
    p.add(`account ${key}: entries exist but no account`);
    return;
  }
  const fields = [acct.gross, acct.creator, acct.platform, acct.paidOut];
  if (!fields.every((f) => DECIMAL.test(f))) {
    p.add(`account ${key}: a total is not a decimal integer`);
    return;
  }
  const [gross, creator, platform, paidOut] = fields.map(BigInt) as [bigint, bigint, bigint, bigint];
  if (gross < 0n || creator < 0n || platform < 0n || paidOut < 0n) p.add(`account ${key}: a total is negative`);
  if (creator + platform !== gross) p.add(`account ${key}: creator + platform totals ≠ the gross`);
  if (gross !== run.gross || creator !== run.creator || paidOut !== run.paidOut) p.add(`account ${key}: the totals differ from the recomputation over its entries`);
}

/** The `splits` check over a state (the stored or replayed projection). */
export function checkSplits(state: StateReader, id = "splits"): AuditCheck {
  const p = new ProblemList();
  const version = state.get("platform", "genesis")?.constitutionVersion ?? 1;
  const events = state.list("revenue-event").map(([, e]) => e).sort(byIndex);
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const accounts = new Map<string, RevenueEventRecord[]>();
  for (const e of events) {
    const imvu = state.get("imvu", e.imvu);
    if (version !== 1 || !isSplitClass(e.class)) {
      p.add(`revenue entry ${e.index} of ${e.imvu}: no split table for constitution v${version}, class ${String(e.class)}`);
      continue;
    }
    if (imvu !== undefined && imvu.class !== e.class) p.add(`revenue entry ${e.index} of ${e.imvu}: split as ${e.class}, the unit is ${imvu.class}`);
    const key = `${e.imvu}/${e.class}/${e.currency}`;
    accounts.set(key, [...(accounts.get(key) ?? []), e]);
  }
  for (const [key, list] of accounts) {
    let run: Running = { gross: 0n, creator: 0n, paidOut: 0n };
    for (const e of list) run = stepEvent(e, run, 1, p);
    checkAccount(key, state.get("revenue-account", key), run, p);
  }
  for (const [key] of state.list("revenue-account")) if (!accounts.has(key)) p.add(`account ${key}: totals without any entry`);
  checkRefunds(events, byId, p);
  return checkOf(id, SPLITS_TITLE, p, events.length + accounts.size);
}
