/**
 * Revenue math end to end (CONSTITUTION.md, "Hostile actors: Revenue math"): random revenue,
 * refund and payout sequences in four currencies (EUR, USD, JPY with 0 decimals, KWD with 3) on
 * a 55/45 IMVU and an 80/20 mini-platform, posted over HTTP to a running stack as commands signed
 * by the platform's revenue-source identity. An independent model (cumulative ceiling, written
 * here from ARCHITECTURE.md "Money") predicts every verdict and every figure; the owner's CLI then
 * fetches each unit's proven statement, `revenue verify-statement` recomputes it offline from its
 * entries alone, and each entry's parts must equal the model's, exactly, at every step.
 * (The pure split's 100k-event property is test/handshake/property.test.ts; the same sequences
 * through the in-process pipeline are test/pipeline/revenue-property.test.ts.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { cleanup, cli, must, person, post, signAs, startSite, tempDir, type Site } from "./support.ts";

const RUNS = 2;
const OPS = 30;
const CURRENCIES = ["EUR", "USD", "JPY", "KWD"] as const;
const UNITS = [["site", "imvu", 55n], ["stream", "mini-platform", 80n]] as const;

/** ceil(a / b) for a ≥ 0, b > 0. */
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** The model's account of one (unit, currency). */
interface Account {
  gross: bigint;
  creator: bigint;
  paid: bigint;
}

/** What the model expects of one statement entry. */
interface Expected {
  readonly eventId: string;
  readonly kind: "revenue" | "refund" | "payout";
  readonly amount: bigint;
  readonly creator?: bigint;
  readonly platform?: bigint;
  readonly grossAfter?: bigint;
  readonly creatorAfter?: bigint;
  readonly balanceAfter: bigint;
}

const opArb = fc.record({
  kind: fc.constantFrom("revenue", "revenue", "revenue", "refund", "payout"),
  unit: fc.nat(1),
  cur: fc.nat(CURRENCIES.length - 1),
  amount: fc.bigInt({ min: 1n, max: 10n ** 12n }),
  pick: fc.nat(1000),
});

const day = (offsetDays: number): string => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

describe("revenue math through the running stack", () => {
  let site: Site;
  let owner: Record<string, string>;
  let run = 0;

  before(async () => {
    site = await startSite("nexus-hostile-revenue-");
    owner = person(site.api, "owner");
    await must(["id", "register"], owner);
  });

  after(async () => {
    await site?.done();
    cleanup();
  });

  test("property: random revenue, refund and payout sequences in EUR, USD, JPY and KWD split exactly at every step, parts add up, and each statement recomputes offline from its entries", async () => {
    const source = signerOf(site.stack.platform.serviceIdentity("revenue-source"));
    const asSource = async (draft: CommandDraft): Promise<"applied" | "denied"> => {
      const r = await post(site, signCommand(draft, source).json);
      assert.ok(r.receipt, `${draft.type}: HTTP ${r.status} ${r.code ?? ""}`);
      return r.receipt.outcome;
    };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: OPS, maxLength: OPS }), async (ops) => {
        run += 1;
        const names = UNITS.map(([n]) => `${n}${run}`);
        for (const [i, [, cls]] of UNITS.entries()) {
          const name = names[i] ?? "";
          const r = await post(site, signAs(owner, { type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: cls, envelope: envelopeToWire(ENVELOPE_PROFILES.small) } }).json);
          assert.equal(r.receipt?.outcome, "applied", `imvu.create ${name}: HTTP ${r.status} ${r.code ?? ""}`);
        }
        const accounts = new Map<string, Account>();
        const expected = new Map<string, Expected[]>(names.map((n) => [n, []]));
        const revenues: { id: string; unit: number; cur: string; left: bigint }[] = [];
        for (const [n, op] of ops.entries()) {
          const [, cls, pct] = UNITS[op.unit] ?? UNITS[0];
          const unit = names[op.unit] ?? "";
          const cur = CURRENCIES[op.cur] ?? "EUR";
          const eventId = `e${run}_${n}`;
          /** Applies a signed change of gross to (unit, currency) and records the figures the entry must show. */
          const split = (currency: string, delta: bigint, kind: "revenue" | "refund"): void => {
            const a = accounts.get(`${unit}/${currency}`) ?? { gross: 0n, creator: 0n, paid: 0n };
            const grossAfter = a.gross + delta;
            const creatorAfter = ceilDiv(grossAfter * pct, 100n);
            const creator = creatorAfter - a.creator;
            accounts.set(`${unit}/${currency}`, { gross: grossAfter, creator: creatorAfter, paid: a.paid });
            const amount = delta < 0n ? -delta : delta;
            expected.get(unit)?.push({ eventId, kind, amount, creator, platform: delta - creator, grossAfter, creatorAfter, balanceAfter: creatorAfter - a.paid });
          };
          if (op.kind === "revenue") {
            assert.equal(await asSource({ type: "revenue.record", imvu: unit, body: { class: cls, currency: cur, amount: op.amount.toString(), source: "checkout", eventId } }), "applied");
            revenues.push({ id: eventId, unit: op.unit, cur, left: op.amount });
            split(cur, op.amount, "revenue");
          } else if (op.kind === "refund") {
            const mine = revenues.filter((x) => x.unit === op.unit && x.left > 0n);
            const orig = mine[op.pick % Math.max(1, mine.length)];
            if (!orig) continue;
            // Sometimes more than is left: the gate must refuse exactly those.
            const amount = op.pick % 7 === 0 ? orig.left + 1n : 1n + (op.amount % orig.left);
            const okay = amount <= orig.left;
            const ref = { type: "revenue.refund", imvu: unit, body: { currency: orig.cur, amount: amount.toString(), refOf: orig.id, eventId, source: "checkout" } };
            assert.equal(await asSource(ref), okay ? "applied" : "denied");
            if (!okay) continue;
            orig.left -= amount;
            split(orig.cur, -amount, "refund");
          } else {
            const a = accounts.get(`${unit}/${cur}`) ?? { gross: 0n, creator: 0n, paid: 0n };
            const balance = a.creator - a.paid;
            const amount = op.pick % 5 === 0 ? balance + 1n : 1n + (op.amount % (balance > 0n ? balance : 1n));
            const okay = amount <= balance;
            assert.equal(await asSource({ type: "revenue.payout", imvu: unit, body: { currency: cur, amount: amount.toString(), eventId } }), okay ? "applied" : "denied", "never beyond the balance");
            if (!okay) continue;
            accounts.set(`${unit}/${cur}`, { ...a, paid: a.paid + amount });
            expected.get(unit)?.push({ eventId, kind: "payout", amount, balanceAfter: a.creator - a.paid - amount });
          }
        }
        // The owner's CLI fetches each proven statement; verify-statement recomputes it offline.
        for (const unit of names) {
          const file = join(tempDir("nexus-stmt-"), `${unit}.json`);
          await must(["revenue", "statement", "--imvu", unit, "--from", day(-1), "--to", day(1), "--out", file], owner);
          const offline = await cli(["revenue", "verify-statement", file, "--verifier-key", site.stack.platform.verifierKey], {});
          assert.equal(offline.code, 0, offline.stdout + offline.stderr);
          const st = (JSON.parse(readFileSync(file, "utf8")) as { statement: { entries: Record<string, string>[]; closing: { accumulators: Record<string, string>[]; paid: Record<string, string>[] } } }).statement;
          const want = expected.get(unit) ?? [];
          assert.equal(st.entries.length, want.length, `${unit}: one statement entry per applied event`);
          for (const [i, w] of want.entries()) {
            const got = st.entries[i] ?? {};
            const pick = (k: keyof Expected): string | undefined => (w[k] === undefined ? undefined : String(w[k]));
            for (const k of ["eventId", "kind", "amount", "creator", "platform", "grossAfter", "creatorAfter", "balanceAfter"] as const) {
              assert.equal(got[k], pick(k), `${unit} entry ${i} (${w.kind} ${w.eventId}) ${k}`);
            }
            if (w.kind !== "payout") {
              // As served: the parts add up to the signed amount, and the creator holds its exact share and less than one unit more.
              const [c, p, amt] = [BigInt(got.creator ?? "x"), BigInt(got.platform ?? "x"), BigInt(got.amount ?? "x")];
              assert.equal(c + p, w.kind === "revenue" ? amt : -amt);
              const excess = BigInt(got.creatorAfter ?? "x") * 100n - BigInt(got.grossAfter ?? "x") * (UNITS[names.indexOf(unit)]?.[2] ?? 0n);
              assert.ok(excess >= 0n && excess < 100n, `${unit} entry ${i}: creator − exact share = ${excess}/100`);
            }
          }
          for (const cur of CURRENCIES) {
            const m = accounts.get(`${unit}/${cur}`);
            const acc = st.closing.accumulators.find((a) => a.currency === cur);
            assert.equal(acc?.gross ?? "0", String(m?.gross ?? 0n), `${unit} ${cur} closing gross`);
            assert.equal(acc?.creator ?? "0", String(m?.creator ?? 0n), `${unit} ${cur} closing creator`);
            assert.equal(st.closing.paid.find((p) => p.currency === cur)?.paid ?? "0", String(m?.paid ?? 0n), `${unit} ${cur} paid out`);
            const live = site.stack.platform.state.get("revenue-account", `${unit}/${UNITS[names.indexOf(unit)]?.[1] ?? "imvu"}/${cur}`);
            assert.equal(live?.gross ?? "0", String(m?.gross ?? 0n), `${unit} ${cur}: the projection agrees`);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
