/** Each of the seventeen gates passes the lawful case and denies the hostile one, with a reason. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { GATES, evaluateGates, ENTRY_BYTES_MAX } from "../../src/core/policy/gates.ts";
import { CATALOGUE, gatesFor, GATE_NAMES, UNIVERSAL_GATES, type GateNumber } from "../../src/core/policy/constitution.ts";
import type { GateContext } from "../../src/core/policy/context.ts";
import { put } from "../../src/core/pipeline/state.ts";
import { ADMIN, DELEGATE, DNS_SVC, OTHER, OWNER, REVENUE, baseState, cmd, ctxFor, envelope } from "./fixtures.ts";

function run(g: GateNumber, ctx: GateContext): { pass: boolean; reason: string } {
  const r = GATES[g](ctx);
  assert.ok(r.reason.length > 5, `gate ${g} gives a reason`);
  return r;
}

describe("gate registry", () => {
  test("all seventeen gates are registered and named", () => {
    for (let g = 1; g <= 17; g++) {
      assert.equal(typeof GATES[g as GateNumber], "function");
      assert.ok(GATE_NAMES[g as GateNumber].length > 3);
    }
  });
  test("gates 1, 11 and 17 apply to every command type", () => {
    for (const t of Object.keys(CATALOGUE) as (keyof typeof CATALOGUE)[]) {
      for (const u of UNIVERSAL_GATES) assert.ok(gatesFor(t).includes(u), `${t} carries gate ${u}`);
    }
  });
});

describe("gate 1 identity binding", () => {
  test("owner may change its envelope", () => {
    const s = baseState();
    assert.equal(run(1, ctxFor(s, cmd("imvu.envelope.change", OWNER, { envelope: envelope() }, "stage"))).pass, true);
  });
  test("an unregistered actor is denied", () => {
    const s = baseState();
    const c = cmd("imvu.exit.request", "nx1" + "z".repeat(52), {}, "stage");
    assert.equal(run(1, ctxFor(s, c)).pass, false);
  });
  test("a creator cannot record its own revenue", () => {
    const s = baseState();
    const c = cmd("revenue.record", OWNER, { class: "imvu", currency: "EUR", amount: "100", source: "shop", eventId: "e1" }, "stage");
    assert.equal(run(1, ctxFor(s, c)).pass, false);
  });
  test("a delegate outside its scope is denied", () => {
    const s = baseState();
    const c = cmd("imvu.exit.request", DELEGATE, {}, "stage");
    assert.equal(run(1, ctxFor(s, c)).pass, false);
  });
  test("a delegate inside its scope passes gate 1", () => {
    const s = baseState();
    const c = cmd("imvu.envelope.change", DELEGATE, { envelope: envelope() }, "stage");
    assert.equal(run(1, ctxFor(s, c)).pass, true);
  });
  test("a service cannot create an IMVU", () => {
    const s = baseState();
    const c = cmd("imvu.create", DNS_SVC, { name: "svc", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "svc");
    assert.equal(run(1, ctxFor(s, c)).pass, false);
  });
  test("a command naming a missing IMVU is denied", () => {
    const s = baseState();
    assert.equal(run(1, ctxFor(s, cmd("imvu.exit.request", OWNER, {}, "ghost"))).pass, false);
  });
});

describe("gate 2 IMVU isolation", () => {
  test("refund of this IMVU's revenue passes; of another's is denied", () => {
    const s = baseState();
    s.apply([
      put("revenue-event", "e-other", { eventId: "e-other", kind: "revenue", imvu: "other", class: "imvu", currency: "EUR", amount: "100", creator: "55", platform: "45", source: "shop", refunded: "0", index: "9", digest: "0".repeat(64) }),
      put("revenue-event", "e-stage", { eventId: "e-stage", kind: "revenue", imvu: "stage", class: "imvu", currency: "EUR", amount: "100", creator: "55", platform: "45", source: "shop", refunded: "0", index: "10", digest: "0".repeat(64) }),
    ]);
    const bad = cmd("revenue.refund", REVENUE, { currency: "EUR", amount: "10", refOf: "e-other", eventId: "r1", source: "shop" }, "stage");
    assert.equal(run(2, ctxFor(s, bad)).pass, false);
    const good = cmd("revenue.refund", REVENUE, { currency: "EUR", amount: "10", refOf: "e-stage", eventId: "r2", source: "shop" }, "stage");
    assert.equal(run(2, ctxFor(s, good)).pass, true);
  });
  test("revoking a delegation that is not on this IMVU is denied", () => {
    const s = baseState();
    assert.equal(run(2, ctxFor(s, cmd("delegation.revoke", OTHER, { delegate: DELEGATE }, "other"))).pass, false);
    assert.equal(run(2, ctxFor(s, cmd("delegation.revoke", OWNER, { delegate: DELEGATE }, "stage"))).pass, true);
  });
});

describe("gate 3 domain ownership", () => {
  test("a free label passes, a taken one is denied", () => {
    const s = baseState();
    const free = cmd("imvu.create", OTHER, { name: "fresh", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "fresh");
    assert.equal(run(3, ctxFor(s, free)).pass, true);
    const taken = cmd("imvu.create", OTHER, { name: "stage", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "stage");
    assert.equal(run(3, ctxFor(s, taken)).pass, false);
  });
});

describe("gate 6 revenue metering", () => {
  const rec = (eventId: string, cls = "imvu") =>
    cmd("revenue.record", REVENUE, { class: cls, currency: "EUR", amount: "100", source: "shop", eventId }, "stage");
  test("a revenue source records new events; a replayed event id is denied", () => {
    const s = baseState();
    assert.equal(run(6, ctxFor(s, rec("e1"))).pass, true);
    s.apply([put("revenue-event", "e1", { eventId: "e1", kind: "revenue", imvu: "stage", class: "imvu", currency: "EUR", amount: "100", creator: "55", platform: "45", source: "shop", refunded: "0", index: "9", digest: "0".repeat(64) })]);
    assert.equal(run(6, ctxFor(s, rec("e1"))).pass, false);
  });
  test("the split class must be the IMVU's", () => {
    assert.equal(run(6, ctxFor(baseState(), rec("e2", "mini-platform"))).pass, false);
  });
  test("a payout above the accrued balance is denied; within it passes", () => {
    const s = baseState();
    s.apply([put("revenue-account", "stage/imvu/EUR", { imvu: "stage", class: "imvu", currency: "EUR", gross: "100", creator: "55", platform: "45", paidOut: "20" })]);
    const over = cmd("revenue.payout", REVENUE, { currency: "EUR", amount: "36", eventId: "p1" }, "stage");
    assert.equal(run(6, ctxFor(s, over)).pass, false);
    const within = cmd("revenue.payout", REVENUE, { currency: "EUR", amount: "35", eventId: "p2" }, "stage");
    assert.equal(run(6, ctxFor(s, within)).pass, true);
  });
  test("a refund above what is left of the original is denied", () => {
    const s = baseState();
    s.apply([put("revenue-event", "e9", { eventId: "e9", kind: "revenue", imvu: "stage", class: "imvu", currency: "EUR", amount: "100", creator: "55", platform: "45", source: "shop", refunded: "90", index: "9", digest: "0".repeat(64) })]);
    assert.equal(run(6, ctxFor(s, cmd("revenue.refund", REVENUE, { currency: "EUR", amount: "11", refOf: "e9", eventId: "r9", source: "shop" }, "stage"))).pass, false);
    assert.equal(run(6, ctxFor(s, cmd("revenue.refund", REVENUE, { currency: "EUR", amount: "10", refOf: "e9", eventId: "r10", source: "shop" }, "stage"))).pass, true);
  });
});

describe("gate 7 resource quotas", () => {
  test("an envelope above the platform ceiling is denied at creation", () => {
    const s = baseState();
    const c = cmd("imvu.create", OTHER, { name: "huge", jurisdiction: "DE", class: "imvu", envelope: envelope({ cpuMillis: 64_000 }) }, "huge");
    assert.equal(run(7, ctxFor(s, c)).pass, false);
  });
  test("an admin raising an envelope without consent is denied; the owner may", () => {
    const s = baseState();
    const raise = envelope({ cpuMillis: 2000 });
    assert.equal(run(7, ctxFor(s, cmd("imvu.envelope.change", ADMIN, { envelope: raise }, "stage"))).pass, false);
    assert.equal(run(7, ctxFor(s, cmd("imvu.envelope.change", OWNER, { envelope: raise }, "stage"))).pass, true);
  });
  test("lowering memory below the reported peak is denied", () => {
    const s = baseState();
    s.apply([put("usage", "stage/compute/2026-11-23T00:00:00.000Z", { imvu: "stage", service: "compute", intervalStart: "2026-11-23T00:00:00.000Z", intervalEnd: "2026-11-23T00:01:00.000Z", metrics: { memPeakBytes: String(200 * 1024 * 1024) }, index: "11" })]);
    const low = envelope({ memoryBytes: String(100 * 1024 * 1024) });
    assert.equal(run(7, ctxFor(s, cmd("imvu.envelope.change", OWNER, { envelope: low }, "stage"))).pass, false);
    const ok = envelope({ memoryBytes: String(220 * 1024 * 1024) });
    assert.equal(run(7, ctxFor(s, cmd("imvu.envelope.change", OWNER, { envelope: ok }, "stage"))).pass, true);
  });
});

describe("gate 9 jurisdiction tagging", () => {
  test("an ISO 3166-1 code passes, an unknown one is denied", () => {
    const s = baseState();
    const good = cmd("imvu.create", OTHER, { name: "eu", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "eu");
    assert.equal(run(9, ctxFor(s, good)).pass, true);
    const bad = cmd("imvu.create", OTHER, { name: "qq", jurisdiction: "QQ", class: "imvu", envelope: envelope() }, "qq");
    assert.equal(run(9, ctxFor(s, bad)).pass, false);
  });
});

describe("gate 10 consent logging", () => {
  test("an admin acting on an IMVU without consent is denied; with the owner's consent to the digest it passes", () => {
    const s = baseState();
    const c = cmd("imvu.envelope.change", ADMIN, { envelope: envelope() }, "stage");
    assert.equal(run(10, ctxFor(s, c, { digest: "d".repeat(64) })).pass, false);
    s.apply([put("consent", "d".repeat(64), { imvu: "stage", owner: OWNER, digest: "d".repeat(64), index: "12" })]);
    assert.equal(run(10, ctxFor(s, c, { digest: "d".repeat(64) })).pass, true);
  });
  test("a consent given by someone other than the owner does not count, nor a used one", () => {
    const s = baseState();
    s.apply([put("consent", "e".repeat(64), { imvu: "stage", owner: OTHER, digest: "e".repeat(64), index: "12" })]);
    s.apply([put("consent", "f".repeat(64), { imvu: "stage", owner: OWNER, digest: "f".repeat(64), index: "12", usedIndex: "13" })]);
    const c = cmd("imvu.envelope.change", ADMIN, { envelope: envelope() }, "stage");
    assert.equal(run(10, ctxFor(s, c, { digest: "e".repeat(64) })).pass, false);
    assert.equal(run(10, ctxFor(s, c, { digest: "f".repeat(64) })).pass, false);
  });
  test("an emergency suspension with a public reason needs no consent", () => {
    const s = baseState();
    const c = cmd("imvu.suspend", ADMIN, { reason: "phishing kit reported by CERT", emergency: true }, "stage");
    assert.equal(run(10, ctxFor(s, c)).pass, true);
  });
  test("a suspension without a reason does not even pass the schema", () => {
    assert.throws(() => cmd("imvu.suspend", ADMIN, { reason: "", emergency: true }, "stage"));
  });
});

describe("gate 11 audit logging", () => {
  test("an entry within the limit passes, an oversized one is denied", () => {
    const s = baseState();
    const c = cmd("imvu.exit.request", OWNER, {}, "stage");
    assert.equal(run(11, ctxFor(s, c)).pass, true);
    assert.equal(run(11, ctxFor(s, c, { entryBytes: ENTRY_BYTES_MAX + 1 })).pass, false);
  });
});

describe("gate 13 exit portability", () => {
  test("an exit request always passes, suspended or not", () => {
    const s = baseState();
    s.apply([put("imvu", "stage", { ...s.get("imvu", "stage")!, status: "suspended", suspension: { reason: "abuse report pending", by: ADMIN, index: "14" } })]);
    assert.equal(run(13, ctxFor(s, cmd("imvu.exit.request", OWNER, {}, "stage"))).pass, true);
    const all = evaluateGates(ctxFor(s, cmd("imvu.exit.request", OWNER, {}, "stage")));
    assert.ok(all.every((v) => v.pass), JSON.stringify(all));
  });
  test("departure without an exit request is denied", () => {
    assert.equal(run(13, ctxFor(baseState(), cmd("imvu.depart", OWNER, {}, "stage"))).pass, false);
  });
});

describe("gate 15 no silent throttling", () => {
  test("a throttle report must name a declared limit with its declared value", () => {
    const s = baseState();
    const good = cmd("throttle.report", DNS_SVC, { service: "dns", limit: "requestsPerSec", declared: "200", episodeId: "ep1", startedAt: "2026-11-23T00:00:00.000Z", count: 3 }, "stage");
    assert.equal(run(15, ctxFor(s, good)).pass, true);
    const silent = cmd("throttle.report", DNS_SVC, { service: "dns", limit: "secretLimit", declared: "5", episodeId: "ep2", startedAt: "2026-11-23T00:00:00.000Z", count: 3 }, "stage");
    assert.equal(run(15, ctxFor(s, silent)).pass, false);
    const wrong = cmd("throttle.report", DNS_SVC, { service: "dns", limit: "requestsPerSec", declared: "50", episodeId: "ep3", startedAt: "2026-11-23T00:00:00.000Z", count: 3 }, "stage");
    assert.equal(run(15, ctxFor(s, wrong)).pass, false);
  });
});

describe("gate 16 no cross-IMVU leakage", () => {
  test("a delegation may only scope IMVU commands, never delegation or consent itself", () => {
    const s = baseState();
    assert.equal(run(16, ctxFor(s, cmd("delegation.grant", OWNER, { delegate: OTHER, scope: ["imvu.envelope.change"] }, "stage"))).pass, true);
    assert.equal(run(16, ctxFor(s, cmd("delegation.grant", OWNER, { delegate: OTHER, scope: ["admin.add"] }, "stage"))).pass, false);
    assert.equal(run(16, ctxFor(s, cmd("delegation.grant", OWNER, { delegate: OTHER, scope: ["consent.give"] }, "stage"))).pass, false);
  });
});

describe("gate 17 platform non-repudiation", () => {
  test("a signature attributed to another key id is denied", () => {
    const s = baseState();
    const c = cmd("imvu.suspend", ADMIN, { reason: "phishing kit reported by CERT", emergency: true }, "stage");
    assert.equal(run(17, ctxFor(s, c)).pass, true);
    assert.equal(run(17, ctxFor(s, c, { signerKeyIds: [`${OWNER}#0`] })).pass, false);
  });
});

describe("gates whose services attach later pass commands outside their scope", () => {
  test("gates 4, 5, 8, 12, 14 pass a command that touches no DNS, mail, route or data", () => {
    const s = baseState();
    const c = cmd("imvu.exit.request", OWNER, {}, "stage");
    for (const g of [4, 5, 8, 12, 14] as GateNumber[]) assert.equal(run(g, ctxFor(s, c)).pass, true);
  });
});
