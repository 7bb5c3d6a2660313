/**
 * Revenue reducers: money commands are split in the same transaction that records them, with the
 * handshake's cumulative rounding per (unit, class, currency). Gate 6 has already checked the
 * event id, the refund's original and the payout's balance.
 */
import { splitEntry } from "../handshake/split.ts";
import type { Command } from "../policy/schemas.ts";
import type { EntryFacts } from "./reducer.ts";
import { put, type Change, type RevenueAccountRecord, type StateReader } from "./state.ts";

type MoneyCommand = Extract<Command, { type: "revenue.record" | "revenue.refund" | "revenue.payout" }>;

function account(state: StateReader, imvu: string, cls: "imvu" | "mini-platform", currency: string): RevenueAccountRecord {
  return (
    state.get("revenue-account", `${imvu}/${cls}/${currency}`) ?? {
      imvu, class: cls, currency, gross: "0", creator: "0", platform: "0", paidOut: "0",
    }
  );
}

/** The changes of an applied revenue, refund or payout. */
export function reduceRevenue(state: StateReader, cmd: MoneyCommand, facts: EntryFacts): Change[] {
  const imvuName = cmd.imvu ?? "";
  const imvu = state.get("imvu", imvuName);
  if (!imvu) throw new Error(`invariant: IMVU ${imvuName} vanished between gates and reducer`);
  const index = facts.index.toString();
  const common = { imvu: imvuName, index, digest: facts.digest, refunded: "0" };
  switch (cmd.type) {
    case "revenue.record": {
      const acct = account(state, imvuName, cmd.body.class, cmd.body.currency);
      const r = splitEntry({ gross: BigInt(acct.gross), creator: BigInt(acct.creator) }, BigInt(cmd.body.amount), cmd.body.class, 1);
      return [
        put("revenue-account", `${imvuName}/${cmd.body.class}/${cmd.body.currency}`, {
          ...acct, gross: r.next.gross.toString(), creator: r.next.creator.toString(), platform: (r.next.gross - r.next.creator).toString(),
        }),
        put("revenue-event", cmd.body.eventId, {
          ...common, eventId: cmd.body.eventId, kind: "revenue", class: cmd.body.class, currency: cmd.body.currency,
          amount: cmd.body.amount, creator: r.creator.toString(), platform: r.platform.toString(), source: cmd.body.source,
        }),
      ];
    }
    case "revenue.refund": {
      const orig = state.get("revenue-event", cmd.body.refOf);
      if (!orig) throw new Error(`invariant: refunded event ${cmd.body.refOf} vanished`);
      const acct = account(state, imvuName, orig.class, orig.currency);
      const r = splitEntry({ gross: BigInt(acct.gross), creator: BigInt(acct.creator) }, -BigInt(cmd.body.amount), orig.class, 1);
      return [
        put("revenue-account", `${imvuName}/${orig.class}/${orig.currency}`, {
          ...acct, gross: r.next.gross.toString(), creator: r.next.creator.toString(), platform: (r.next.gross - r.next.creator).toString(),
        }),
        put("revenue-event", cmd.body.refOf, { ...orig, refunded: (BigInt(orig.refunded) + BigInt(cmd.body.amount)).toString() }),
        put("revenue-event", cmd.body.eventId, {
          ...common, eventId: cmd.body.eventId, kind: "refund", class: orig.class, currency: orig.currency,
          amount: (-BigInt(cmd.body.amount)).toString(), creator: r.creator.toString(), platform: r.platform.toString(),
          source: cmd.body.source, refOf: cmd.body.refOf,
        }),
      ];
    }
    case "revenue.payout": {
      const acct = account(state, imvuName, imvu.class, cmd.body.currency);
      return [
        put("revenue-account", `${imvuName}/${imvu.class}/${cmd.body.currency}`, {
          ...acct, paidOut: (BigInt(acct.paidOut) + BigInt(cmd.body.amount)).toString(),
        }),
        put("revenue-event", cmd.body.eventId, {
          ...common, eventId: cmd.body.eventId, kind: "payout", class: imvu.class, currency: cmd.body.currency,
          amount: (-BigInt(cmd.body.amount)).toString(), creator: (-BigInt(cmd.body.amount)).toString(), platform: "0", source: "payout",
        }),
      ];
    }
  }
}
