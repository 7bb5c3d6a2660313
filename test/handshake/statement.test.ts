import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildStatement,
  parseStatementJson,
  recomputeStatement,
  statementToJson,
} from "../../src/core/handshake/index.ts";
import type { MoneyEvent, Statement } from "../../src/core/handshake/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { opArb, play } from "./history.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isNexusError(e)) return e.code;
    throw e;
  }
  return "OK";
}

const U = "acme";
const base = { unit: U, source: "stripe" } as const;
// The worked example of docs/handshake.md.
const EVENTS: readonly MoneyEvent[] = [
  { ...base, kind: "revenue", eventId: "ch_1", index: 1n, time: "2026-01-20T10:00:00.000Z", currency: "USD", amount: 999n, class: "imvu", version: 1 },
  { ...base, kind: "revenue", eventId: "ch_2", index: 4n, time: "2026-02-02T10:00:00.000Z", currency: "USD", amount: 1n, class: "imvu", version: 1 },
  { ...base, kind: "revenue", eventId: "ch_3", index: 5n, time: "2026-02-03T10:00:00.000Z", currency: "JPY", amount: 1000n, class: "imvu", version: 1 },
  { ...base, kind: "refund", eventId: "re_1", index: 7n, time: "2026-02-10T10:00:00.000Z", currency: "USD", amount: 500n, refOf: "ch_1" },
  { ...base, source: "payouts", kind: "payout", eventId: "po_1", index: 8n, time: "2026-02-20T10:00:00.000Z", currency: "USD", amount: 200n },
  { ...base, kind: "revenue", eventId: "ch_4", index: 9n, time: "2026-03-01T00:00:00.000Z", currency: "USD", amount: 5n, class: "imvu", version: 1 },
];
const FEB = { from: "2026-02-01T00:00:00Z", to: "2026-03-01T00:00:00Z" };

test("worked example: a February statement with its opening carried from January", () => {
  const st = buildStatement({ unit: U, period: FEB, events: EVENTS });
  assert.deepEqual(st.opening, {
    accumulators: [{ class: "imvu", currency: "USD", version: 1, gross: 999n, creator: 550n }],
    paid: [],
    refundable: [{ eventId: "ch_1", class: "imvu", currency: "USD", version: 1, remaining: 999n }],
  });
  assert.deepEqual(
    st.entries.map((e) => [e.eventId, e.kind === "payout" ? null : [e.creator, e.platform, e.grossAfter, e.creatorAfter], e.balanceAfter]),
    [
      ["ch_2", [0n, 1n, 1000n, 550n], 550n], // G 1000 → C ceil(550.00) = 550
      ["ch_3", [550n, 450n, 1000n, 550n], 550n], // JPY has its own accumulator and balance
      ["re_1", [-275n, -225n, 500n, 275n], 275n], // G 500 → C 275
      ["po_1", null, 75n],
    ],
  );
  assert.deepEqual(st.totals, [
    { currency: "JPY", gross: 1000n, refunds: 0n, chargebacks: 0n, creator: 550n, platform: 450n, payouts: 0n, openingBalance: 0n, closingBalance: 550n },
    { currency: "USD", gross: 1n, refunds: 500n, chargebacks: 0n, creator: -275n, platform: -224n, payouts: 200n, openingBalance: 550n, closingBalance: 75n },
  ]);
  assert.deepEqual(st.bySource, [
    { source: "payouts", currency: "USD", gross: 0n, refunds: 0n, chargebacks: 0n, creator: 0n, platform: 0n, payouts: 200n },
    { source: "stripe", currency: "JPY", gross: 1000n, refunds: 0n, chargebacks: 0n, creator: 550n, platform: 450n, payouts: 0n },
    { source: "stripe", currency: "USD", gross: 1n, refunds: 500n, chargebacks: 0n, creator: -275n, platform: -224n, payouts: 0n },
  ]);
  assert.deepEqual(st.closing, {
    accumulators: [
      { class: "imvu", currency: "JPY", version: 1, gross: 1000n, creator: 550n },
      { class: "imvu", currency: "USD", version: 1, gross: 500n, creator: 275n },
    ],
    paid: [{ currency: "USD", paid: 200n }],
  });
  assert.deepEqual(recomputeStatement(st), { ok: true, issues: [], truncated: 0 });
});

test("consecutive periods chain: each closing is the next opening, each recomputes alone", () => {
  const jan = buildStatement({ unit: U, period: { from: "2026-01-01T00:00:00Z", to: FEB.from }, events: EVENTS });
  const feb = buildStatement({ unit: U, period: FEB, events: EVENTS });
  const mar = buildStatement({ unit: U, period: { from: FEB.to, to: "2026-04-01T00:00:00Z" }, events: EVENTS });
  assert.deepEqual(jan.closing.accumulators, feb.opening.accumulators);
  assert.deepEqual(feb.closing, { accumulators: mar.opening.accumulators, paid: mar.opening.paid });
  assert.deepEqual(mar.entries.map((e) => e.eventId), ["ch_4"]);
  for (const st of [jan, feb, mar]) assert.ok(recomputeStatement(st).ok);
  // An empty period carries the state through unchanged.
  const later = buildStatement({ unit: U, period: { from: "2027-01-01T00:00:00Z", to: "2027-02-01T00:00:00Z" }, events: EVENTS });
  assert.deepEqual(later.entries, []);
  assert.deepEqual(later.opening.accumulators, later.closing.accumulators);
  assert.ok(recomputeStatement(later).ok);
});

test("buildStatement refuses bad input with codes", () => {
  const build = (events: readonly MoneyEvent[], period = FEB, unit = U) => () => buildStatement({ unit, period, events });
  const [a, b] = EVENTS;
  if (a === undefined || b === undefined) throw new Error("fixture");
  assert.equal(code(build([b, a])), "HANDSHAKE_EVENTS_UNORDERED");
  assert.equal(code(build([a, { ...b, index: a.index }])), "HANDSHAKE_EVENTS_UNORDERED");
  assert.equal(code(build([a, { ...b, time: "2026-01-01T00:00:00Z" }])), "HANDSHAKE_EVENTS_UNORDERED");
  assert.equal(code(build([a, { ...b, unit: "other" }])), "HANDSHAKE_UNIT_MISMATCH");
  assert.equal(code(build(EVENTS, { from: FEB.to, to: FEB.from })), "HANDSHAKE_PERIOD_INVALID");
  assert.equal(code(build(EVENTS, { from: FEB.from, to: FEB.from })), "HANDSHAKE_PERIOD_INVALID");
  assert.equal(code(build(EVENTS, { from: "2026-02-01", to: FEB.to })), "HANDSHAKE_PERIOD_INVALID");
  assert.equal(code(build([a, { ...b, kind: "refund", refOf: "ch_1", amount: 1000n }])), "HANDSHAKE_REFUND_EXCEEDS_ORIGINAL");
  assert.equal(code(build([a, { ...b, kind: "payout", amount: 551n }])), "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE");
  assert.equal(code(build([a, { ...a, index: 2n, amount: 1n }])), "HANDSHAKE_EVENT_CONFLICT");
});

test("buildStatement skips identical replays of an event id, across periods too", () => {
  const [a, b] = EVENTS;
  if (a === undefined || b === undefined) throw new Error("fixture");
  const st = buildStatement({ unit: U, period: FEB, events: [a, b, { ...a, index: 5n, time: "2026-02-05T00:00:00Z" }, { ...b, index: 6n, time: "2026-02-06T00:00:00Z" }] });
  assert.deepEqual(st.entries.map((e) => e.eventId), ["ch_2"]);
  assert.ok(recomputeStatement(st).ok);
});

const FEB_STATEMENT = buildStatement({ unit: U, period: FEB, events: EVENTS });

/** Every bigint figure of a statement, with a setter that returns a tampered copy (indices excluded). */
function figures(st: Statement): { path: string; tamper: (delta: bigint) => Statement }[] {
  const out: { path: string; tamper: (delta: bigint) => Statement }[] = [];
  const walk = (v: unknown, path: readonly (string | number)[]): void => {
    if (typeof v === "bigint") {
      if (path[path.length - 1] !== "index") out.push({ path: path.join("."), tamper: (d) => setAt(st, path, v + d) as Statement });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(st, []);
  return out;
}

function setAt(v: unknown, path: readonly (string | number)[], value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (Array.isArray(v)) return v.map((x, i) => (i === head ? setAt(x, rest, value) : x));
  const o = v as Record<string, unknown>;
  return { ...o, [head]: setAt(o[head], rest, value) };
}

test("tampering any single figure of the worked statement is caught by recomputeStatement", () => {
  const list = figures(FEB_STATEMENT);
  assert.ok(list.length > 60, `${list.length} figures`);
  for (const f of list) {
    for (const d of [1n, -1n, 1000n]) {
      const r = recomputeStatement(f.tamper(d));
      assert.ok(!r.ok && r.issues.length > 0, `${f.path} ${d > 0n ? "+" : ""}${d} went unnoticed`);
    }
  }
});

test("dropping, duplicating, reordering entries, and changing class, version, kind or source are caught", () => {
  const st = FEB_STATEMENT;
  const e = st.entries;
  const variants: Statement[] = [
    { ...st, entries: e.slice(1) },
    { ...st, entries: [...e, ...e.slice(-1)] },
    { ...st, entries: [e[1], e[0], ...e.slice(2)].filter((x) => x !== undefined) },
    setAt(st, ["entries", 0, "class"], "mini-platform") as Statement,
    setAt(st, ["entries", 0, "version"], 2) as Statement,
    setAt(st, ["entries", 2, "kind"], "chargeback") as Statement,
    setAt(st, ["entries", 0, "kind"], "payout") as Statement,
    setAt(st, ["entries", 0, "source"], "paypal") as Statement,
    setAt(st, ["entries", 2, "refOf"], "ch_2") as Statement,
    setAt(st, ["entries", 0, "time"], "2026-03-01T00:00:00Z") as Statement,
    setAt(st, ["opening", "refundable"], []) as Statement,
    setAt(st, ["opening", "accumulators", 0, "currency"], "EUR") as Statement,
    setAt(st, ["totals"], st.totals.slice(1)) as Statement,
    setAt(st, ["period", "from"], "2026-02-05T00:00:00Z") as Statement,
  ];
  for (const [i, v] of variants.entries()) assert.ok(!recomputeStatement(v).ok, `variant ${i} went unnoticed`);
  const r = recomputeStatement(setAt(st, ["entries", 0, "creator"], 5n) as Statement);
  assert.ok(r.issues.some((x) => x.path === "entries[0].creator" && x.code === "HANDSHAKE_STATEMENT_MISMATCH"), JSON.stringify(r.issues));
});

test("property: tampering any single figure of random statements is caught", () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 5, maxLength: 40 }), fc.nat(100), fc.bigInt(1n, 10n ** 12n), (ops, cut, delta) => {
      const m = play(ops);
      const at = m.events[Math.floor((m.events.length * cut) / 101)]?.time ?? "2026-06-01T00:00:00.000Z";
      const st = buildStatement({ unit: m.unit, period: { from: at, to: "2030-01-01T00:00:00Z" }, events: m.events });
      assert.ok(recomputeStatement(st).ok);
      for (const f of figures(st)) {
        assert.ok(!recomputeStatement(f.tamper(delta)).ok, `${f.path} +${delta}`);
        assert.ok(!recomputeStatement(f.tamper(-delta)).ok, `${f.path} -${delta}`);
      }
    }),
    { numRuns: 40 },
  );
});

test("JSON: integers as decimal strings, exact round trip, strict decoding", () => {
  const json = statementToJson(FEB_STATEMENT);
  const text = JSON.stringify(json);
  assert.ok(!/"(amount|creator|platform|gross|index)":\d/.test(text), "no JSON numbers for money or indices");
  const back = parseStatementJson(JSON.parse(text));
  assert.deepEqual(back, FEB_STATEMENT);
  assert.ok(recomputeStatement(back).ok);
  const j = JSON.parse(text) as Record<string, unknown>;
  const bad: readonly [unknown, string][] = [
    [setAt(j, ["entries", 0, "amount"], 1), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "amount"], "1.5"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "amount"], "01"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "amount"], "-0"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "amount"], "1e3"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "amount"], "9".repeat(41)), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "index"], "-1"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "version"], 2), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "kind"], "gift"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "extra"], "x"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries", 0, "time"], "2026-02-30T00:00:00Z"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["format"], "other/1"), "HANDSHAKE_STATEMENT_MALFORMED"],
    [setAt(j, ["entries"], Array.from({ length: 1_000_001 }, () => 0)), "HANDSHAKE_STATEMENT_TOO_LARGE"],
    [null, "HANDSHAKE_STATEMENT_MALFORMED"],
    ["{}", "HANDSHAKE_STATEMENT_MALFORMED"],
  ];
  for (const [v, want] of bad) assert.equal(code(() => parseStatementJson(v)), want);
});

test("recomputeStatement reports rule violations in a forged statement, not only mismatches", () => {
  // A forged payout above the balance, with figures made consistent by hand.
  const forged = setAt(setAt(FEB_STATEMENT, ["opening", "paid"], [{ currency: "USD", paid: 500n }]), ["totals", 1, "openingBalance"], 50n) as Statement;
  const r = recomputeStatement(forged);
  assert.ok(r.issues.some((i) => i.code === "HANDSHAKE_PAYOUT_EXCEEDS_BALANCE" && i.path === "entries[3]"), JSON.stringify(r.issues));
  const overRefund = setAt(FEB_STATEMENT, ["opening", "refundable", 0, "remaining"], 400n) as Statement;
  assert.ok(recomputeStatement(overRefund).issues.some((i) => i.code === "HANDSHAKE_REFUND_EXCEEDS_ORIGINAL"));
  const badOpening = setAt(FEB_STATEMENT, ["opening", "accumulators", 0, "creator"], 549n) as Statement;
  assert.ok(recomputeStatement(badOpening).issues.some((i) => i.code === "HANDSHAKE_ACCUMULATOR_INVALID"));
});
