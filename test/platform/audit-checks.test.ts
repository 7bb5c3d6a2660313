/**
 * The pure checks of the stack audit on crafted states: a correct revenue history passes, and each
 * way a split can be wrong (parts not adding up, another ratio, a payout beyond the balance, an
 * account that is not the sum of its entries, a refund beyond its original) is named; an IMVU
 * beyond its envelope is named by resource; the real catalogue carries every gate the
 * constitution requires, and a doctored one (a redirect without gate 14, a destructive type
 * without gate 12, gate 17 dropped) is caught, as is a recorded entry lacking a verdict.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkGates, checkQuotas, checkSplits, CONSTITUTION_CATALOGUE, entryGateProblem, entryRequirements, requiredGates,
  type GateCatalogue,
} from "../../src/core/audit/index.ts";
import { AuditReportSchema, PROBLEMS_PER_CHECK_MAX, ProblemList, reportOf } from "../../src/core/audit/report.ts";
import { MemoryState, type RevenueEventRecord } from "../../src/core/pipeline/state.ts";
import { CATALOGUE, gatesFor, type CatalogueEntry } from "../../src/core/policy/constitution.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";

const IMVU = "stage";

function imvuRow(cls: "imvu" | "mini-platform" = "imvu", over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: IMVU, owner: "nx1owner", jurisdiction: "DE", class: cls, status: "active", createdIndex: "3",
    envelope: { ...envelopeToWire(ENVELOPE_PROFILES.small), ...over },
  };
}

function event(id: string, kind: RevenueEventRecord["kind"], index: number, amount: string, creator: string, platform: string, extra: Partial<RevenueEventRecord> = {}): RevenueEventRecord {
  return { eventId: id, kind, imvu: IMVU, class: "imvu", currency: "EUR", amount, creator, platform, source: "checkout", refunded: "0", index: String(index), digest: "d", ...extra };
}

/**
 * 1001 → creator ceil(1001×0.55) = 551; +250 → ceil(1251×0.55) = 689 (138); refund 100 of evt_1 →
 * ceil(1151×0.55) = 634 (−55); payout 300 within 634.
 */
function goodRevenue(): MemoryState {
  const s = new MemoryState();
  s.load("platform", "genesis", { platformId: "p", baseDomain: "nexus.test", constitutionVersion: 1, constitutionHash: "h", genesisIndex: "0" });
  s.load("imvu", IMVU, imvuRow());
  s.load("revenue-event", "evt_1", event("evt_1", "revenue", 10, "1001", "551", "450", { refunded: "100" }));
  s.load("revenue-event", "evt_2", event("evt_2", "revenue", 11, "250", "138", "112"));
  s.load("revenue-event", "ref_1", event("ref_1", "refund", 12, "-100", "-55", "-45", { refOf: "evt_1" }));
  s.load("revenue-event", "pay_1", event("pay_1", "payout", 13, "-300", "-300", "0", { source: "payout" }));
  s.load("revenue-account", `${IMVU}/imvu/EUR`, { imvu: IMVU, class: "imvu", currency: "EUR", gross: "1151", creator: "634", platform: "517", paidOut: "300" });
  return s;
}

test("splits: a correct history with a refund and a payout passes", () => {
  const c = checkSplits(goodRevenue());
  assert.deepEqual(c.problems, []);
  assert.equal(c.ok, true);
  assert.equal(c.checked, 5, "four entries and one account");
});

test("splits: creator + platform ≠ the amount is caught and named by ledger index", () => {
  const s = goodRevenue();
  s.load("revenue-event", "evt_2", event("evt_2", "revenue", 11, "250", "138", "111"));
  const c = checkSplits(s);
  assert.equal(c.ok, false);
  assert.ok(c.problems.some((p) => /revenue entry 11 of stage .*creator part \+ platform part ≠ the amount/.test(p)), c.problems.join("\n"));
  assert.ok(c.problems.every((p) => !/\b1001\b|\b250\b/.test(p)), "no amounts in the public report");
});

test("splits: another ratio (50/50 instead of 55/45) is caught even when the parts add up", () => {
  const s = goodRevenue();
  s.load("revenue-event", "evt_1", event("evt_1", "revenue", 10, "1001", "501", "500", { refunded: "100" }));
  const c = checkSplits(s);
  assert.ok(c.problems.some((p) => /entry 10 .*not the cumulative-rounding share/.test(p)), c.problems.join("\n"));
});

test("splits: a mini-platform unit is held to 80/20", () => {
  const s = new MemoryState();
  s.load("imvu", IMVU, imvuRow("mini-platform"));
  s.load("revenue-event", "e", event("e", "revenue", 5, "999", "800", "199", { class: "mini-platform" }));
  s.load("revenue-account", `${IMVU}/mini-platform/EUR`, { imvu: IMVU, class: "mini-platform", currency: "EUR", gross: "999", creator: "800", platform: "199", paidOut: "0" });
  assert.deepEqual(checkSplits(s).problems, []);
  s.load("revenue-event", "e", event("e", "revenue", 5, "999", "550", "449", { class: "mini-platform" }));
  assert.ok(checkSplits(s).problems.some((p) => /entry 5 .*cumulative-rounding/.test(p)));
});

test("splits: a payout beyond the balance at its time, and account totals off the entries, are caught", () => {
  const s = goodRevenue();
  s.load("revenue-event", "pay_1", event("pay_1", "payout", 13, "-700", "-700", "0", { source: "payout" }));
  s.load("revenue-account", `${IMVU}/imvu/EUR`, { imvu: IMVU, class: "imvu", currency: "EUR", gross: "1151", creator: "634", platform: "517", paidOut: "700" });
  const c = checkSplits(s);
  assert.ok(c.problems.some((p) => /entry 13 .*exceeds the creator's balance/.test(p)), c.problems.join("\n"));
  const t = goodRevenue();
  t.load("revenue-account", `${IMVU}/imvu/EUR`, { imvu: IMVU, class: "imvu", currency: "EUR", gross: "1151", creator: "600", platform: "551", paidOut: "300" });
  assert.ok(checkSplits(t).problems.some((p) => /account stage\/imvu\/EUR: the totals differ from the recomputation/.test(p)));
});

test("splits: a refund beyond its original, or of a revenue that does not exist, is caught", () => {
  const s = goodRevenue();
  s.load("revenue-event", "ref_1", event("ref_1", "refund", 12, "-100", "-55", "-45", { refOf: "nope" }));
  assert.ok(checkSplits(s).problems.some((p) => /entry 12 .*references no revenue/.test(p)));
  const t = goodRevenue();
  t.load("revenue-event", "evt_1", event("evt_1", "revenue", 10, "1001", "551", "450", { refunded: "0" }));
  assert.ok(checkSplits(t).problems.some((p) => /entry 10 .*refunded total differs/.test(p)));
});

test("quotas: an IMVU within its envelope passes; beyond it, the resource is named without figures", () => {
  const s = new MemoryState();
  s.load("imvu", IMVU, imvuRow("imvu", { mailboxes: 1, routes: 1 }));
  s.load("mail-mailbox", `${IMVU}/a@stage.nexus.test`, { imvu: IMVU, address: "a@stage.nexus.test" });
  assert.deepEqual(checkQuotas(s).problems, []);
  s.load("mail-mailbox", `${IMVU}/b@stage.nexus.test`, { imvu: IMVU, address: "b@stage.nexus.test" });
  s.load("net-route", `${IMVU}/r1`, { imvu: IMVU, route: "r1" });
  s.load("net-route", `${IMVU}/r2`, { imvu: IMVU, route: "r2" });
  s.load("compute-workload", `${IMVU}/w`, { imvu: IMVU, name: "w", resources: { memoryBytes: String(1n << 40n) } });
  s.load("usage", `${IMVU}/compute/2026-01-01T00:00:00.000Z`, { imvu: IMVU, service: "compute", metrics: { diskBytes: String(1n << 40n) } });
  const c = checkQuotas(s);
  assert.equal(c.ok, false);
  for (const what of ["mailboxes", "routes", "memory claimed by the workloads", "disk measured by compute"]) {
    assert.ok(c.problems.includes(`IMVU stage: ${what} beyond its envelope`), `${what}: ${c.problems.join("\n")}`);
  }
});

test("gates: the constitution in force carries every gate it requires of every type", () => {
  const c = checkGates(CONSTITUTION_CATALOGUE, [], 0);
  assert.deepEqual(c.problems, []);
  assert.equal(c.checked, Object.keys(CATALOGUE).length);
  const need = requiredGates("dns.rrset.set", CATALOGUE["dns.rrset.set"]).flatMap((r) => r.gates);
  for (const g of [1, 2, 4, 10, 11, 14, 17]) assert.ok(need.includes(g as never), `dns.rrset.set requires ${g}`);
});

function doctored(type: keyof typeof CATALOGUE, entry: CatalogueEntry, effective?: (t: string) => number[]): GateCatalogue {
  const catalogue: Record<string, CatalogueEntry> = { ...CATALOGUE, [type]: entry };
  return {
    catalogue,
    gatesFor: effective ?? ((t) => [...new Set([1, 11, 17, ...(catalogue[t]?.gates ?? [])])].sort((a, b) => a - b)),
  };
}

test("gates: a doctored catalogue is caught — a redirect without 14, a destructive type without 12, gate 17 dropped", () => {
  const rr = CATALOGUE["dns.rrset.set"];
  const c1 = checkGates(doctored("dns.rrset.set", { ...rr, gates: rr.gates.filter((g) => g !== 14) }), [], 0);
  assert.equal(c1.ok, false);
  assert.ok(c1.problems.some((p) => /^dns\.rrset\.set lacks gate 14: it redirects an IMVU's traffic/.test(p)), c1.problems.join("\n"));
  const rm = CATALOGUE["compute.workload.remove"];
  const c2 = checkGates(doctored("compute.workload.remove", { ...rm, gates: rm.gates.filter((g) => g !== 12) }), [], 0);
  assert.ok(c2.problems.some((p) => /^compute\.workload\.remove lacks gate 12: it is destructive/.test(p)), c2.problems.join("\n"));
  const c3 = checkGates(doctored("revenue.payout", CATALOGUE["revenue.payout"], (t) => gatesFor(t as keyof typeof CATALOGUE).filter((g) => t !== "revenue.payout" || g !== 17)), [], 0);
  assert.ok(c3.problems.some((p) => /^revenue\.payout lacks gate 17: gates 1, 11 and 17 apply to every command/.test(p)), c3.problems.join("\n"));
  const mb = CATALOGUE["mail.mailbox.add"];
  const c4 = checkGates(doctored("mail.mailbox.add", { ...mb, actors: ["owner", "admin"], gates: mb.gates.filter((g) => g !== 10) }), [], 0);
  assert.ok(c4.problems.some((p) => /^mail\.mailbox\.add lacks gate 10/.test(p)), c4.problems.join("\n"));
});

test("gates: a recorded entry without a verdict of a required gate is named", () => {
  const need = entryRequirements();
  assert.equal(entryGateProblem("7", "revenue.record", [1, 2, 6, 11, 17], need), undefined);
  assert.equal(entryGateProblem("7", "revenue.record", [1, 2, 11, 17], need), "entry 7 (revenue.record): no verdict of gate 6");
  assert.match(entryGateProblem("8", "money.print", [1], need) ?? "", /unknown command type money\.print/);
});

test("the report: bounded problem lists, and the shape the console reads", () => {
  const p = new ProblemList();
  for (let i = 0; i < PROBLEMS_PER_CHECK_MAX + 5; i++) p.add(`problem ${i}`);
  assert.equal(p.count, PROBLEMS_PER_CHECK_MAX + 5);
  assert.equal(p.list().length, PROBLEMS_PER_CHECK_MAX + 1);
  assert.equal(p.list().at(-1), "… and 5 more");
  const r = reportOf([checkSplits(goodRevenue()), checkQuotas(new MemoryState())], 42n, "ab".repeat(32), new Date("2026-01-02T03:04:05.000Z"));
  assert.deepEqual(Object.keys(r), ["version", "at", "treeSize", "root", "ok", "checks"]);
  assert.equal(AuditReportSchema.parse(JSON.parse(JSON.stringify(r))).treeSize, "42");
  assert.equal(r.ok, true);
  assert.throws(() => AuditReportSchema.parse({ ...r, extra: 1 }), "strict: the console can rely on the shape");
});
