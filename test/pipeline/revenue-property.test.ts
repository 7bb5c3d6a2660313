/**
 * The handshake through the real pipeline: random revenue, refund and payout sequences in EUR,
 * JPY (0 decimals) and KWD (3 decimals) on a 55/45 IMVU and an 80/20 mini-platform, submitted as
 * signed commands. After every step each account's parts add up and the creator holds at least
 * its exact share and less than one minor unit more; at the end the projection equals the
 * handshake's own fold of the recorded events (buildStatement), which recomputes offline.
 * (The 100k-event property of the pure split is test/handshake/property.test.ts.)
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildStatement, recomputeStatement, type MoneyEvent } from "../../src/core/handshake/index.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { parseEntry } from "../../src/core/pipeline/pipeline.ts";
import { act, imvu, install, person, service, type Installation } from "./support.ts";

const RUNS = 4;
const OPS = 60;
const CURRENCIES = ["EUR", "JPY", "KWD"] as const;
const UNITS = [["propsite", "imvu", 55n], ["propstream", "mini-platform", 80n]] as const;

let inst: Installation;
let owner: LocalIdentity;
let run = 0;
before(async () => {
  inst = await install("sqlite");
  owner = await person(inst, "prop-owner");
});
after(async () => {
  await inst.cleanup();
});

const opArb = fc.record({
  kind: fc.constantFrom("revenue", "revenue", "revenue", "refund", "payout"),
  unit: fc.nat(1),
  cur: fc.nat(2),
  amount: fc.bigInt({ min: 1n, max: 10n ** 9n }),
  pick: fc.nat(1000),
});

test(`property: ${RUNS}×${OPS} random money commands through the pipeline split exactly and match the handshake's fold`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: OPS, maxLength: OPS }), async (ops) => {
      run += 1;
      const names = UNITS.map(([n]) => `${n}${run}`);
      for (const [i, [, cls]] of UNITS.entries()) await imvu(inst, owner, names[i] ?? "", cls);
      const rev = service(inst, "revenue-source");
      const revenues: { id: string; unit: number; cur: string }[] = [];
      for (const [n, op] of ops.entries()) {
        const unit = names[op.unit] ?? "";
        const [, cls] = UNITS[op.unit] ?? UNITS[0];
        const cur = CURRENCIES[op.cur] ?? "EUR";
        const eventId = `p${run}_${n}`;
        if (op.kind === "revenue") {
          const r = await act(inst, rev, { type: "revenue.record", imvu: unit, body: { class: cls, currency: cur, amount: op.amount.toString(), source: "prop", eventId } });
          assert.equal(r.outcome, "applied");
          revenues.push({ id: eventId, unit: op.unit, cur });
        } else if (op.kind === "refund") {
          const mine = revenues.filter((x) => x.unit === op.unit);
          const orig = mine[op.pick % Math.max(1, mine.length)];
          if (!orig) continue;
          const left = (() => {
            const e = inst.platform.state.get("revenue-event", orig.id);
            return e ? BigInt(e.amount) - BigInt(e.refunded) : 0n;
          })();
          const amount = 1n + (op.amount % (left > 0n ? left : 1n));
          const r = await act(inst, rev, { type: "revenue.refund", imvu: unit, body: { currency: orig.cur, amount: amount.toString(), refOf: orig.id, eventId, source: "prop" } });
          assert.equal(r.outcome, left >= amount ? "applied" : "denied", JSON.stringify(r.gates.filter((g) => !g.pass)));
        } else {
          const acct = inst.platform.state.get("revenue-account", `${unit}/${cls}/${cur}`);
          const balance = acct ? BigInt(acct.creator) - BigInt(acct.paidOut) : 0n;
          const amount = 1n + (op.amount % 1000n);
          const r = await act(inst, rev, { type: "revenue.payout", imvu: unit, body: { currency: cur, amount: amount.toString(), eventId } });
          assert.equal(r.outcome, amount <= balance ? "applied" : "denied");
        }
        // Every account after every step: parts add up; 0 ≤ C×100 − G×p < 100.
        for (const [i, [, c, p]] of UNITS.entries()) {
          for (const cur2 of CURRENCIES) {
            const a = inst.platform.state.get("revenue-account", `${names[i]}/${c}/${cur2}`);
            if (!a) continue;
            const [g, cr, pl] = [BigInt(a.gross), BigInt(a.creator), BigInt(a.platform)];
            assert.equal(cr + pl, g);
            const excess = cr * 100n - g * p;
            assert.ok(excess >= 0n && excess < 100n, `${names[i]} ${cur2}: creator − exact share = ${excess}/100`);
          }
        }
      }
      // The projection equals the handshake's fold of the recorded events, and it recomputes offline.
      for (const [i, [, cls]] of UNITS.entries()) {
        const unit = names[i] ?? "";
        const events: MoneyEvent[] = [];
        const recs = inst.platform.state.list("revenue-event").map(([, r]) => r).filter((r) => r.imvu === unit).sort((a, b) => Number(BigInt(a.index) - BigInt(b.index)));
        for (const r of recs) {
          const time = parseEntry(await inst.platform.ledger.entry(BigInt(r.index))).time;
          const base = { eventId: r.eventId, index: BigInt(r.index), time, unit, source: r.source, currency: r.currency };
          const amount = BigInt(r.amount) < 0n ? -BigInt(r.amount) : BigInt(r.amount);
          if (r.kind === "revenue") events.push({ ...base, kind: "revenue", class: r.class, version: 1, amount });
          else if (r.kind === "refund") events.push({ ...base, kind: "refund", refOf: r.refOf ?? "", amount });
          else events.push({ ...base, kind: "payout", amount });
        }
        const st = buildStatement({ unit, period: { from: "2000-01-01T00:00:00Z", to: "2100-01-01T00:00:00Z" }, events });
        assert.ok(recomputeStatement(st).ok);
        for (const cur of CURRENCIES) {
          const a = inst.platform.state.get("revenue-account", `${unit}/${cls}/${cur}`);
          const acc = st.closing.accumulators.find((x) => x.currency === cur);
          assert.equal(acc?.gross ?? 0n, BigInt(a?.gross ?? "0"), `${unit} ${cur} gross`);
          assert.equal(acc?.creator ?? 0n, BigInt(a?.creator ?? "0"), `${unit} ${cur} creator`);
          assert.equal(st.closing.paid.find((x) => x.currency === cur)?.paid ?? 0n, BigInt(a?.paidOut ?? "0"), `${unit} ${cur} paid`);
        }
      }
    }),
    { numRuns: RUNS },
  );
});
