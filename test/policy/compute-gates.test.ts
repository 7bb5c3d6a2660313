/** The compute rules of the gates (docs/compute.md, "Gates"): a lawful case and a hostile one for each. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { evaluateGates, GATES } from "../../src/core/policy/gates.ts";
import type { GateNumber } from "../../src/core/policy/constitution.ts";
import type { GateContext } from "../../src/core/policy/context.ts";
import { computeOpKey, type ComputeWorkloadRecord } from "../../src/core/pipeline/compute-state.ts";
import { put, type MemoryState } from "../../src/core/pipeline/state.ts";
import { ADMIN, DELEGATE, DNS_SVC, OTHER, OWNER, baseState, cmd, ctxFor, envelope } from "./fixtures.ts";

const COMPUTE_SVC = "nx1" + "c".repeat(52);
const MiB = 1024 * 1024;
const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);
const key = { publicKey: "AAAA", nextKeyDigest: "0".repeat(64), seq: 0, lastEventDigest: "0".repeat(64) };

function state(): MemoryState {
  const s = baseState();
  s.apply([put("identity", COMPUTE_SVC, { id: COMPUTE_SVC, kind: "service", roles: ["compute"], ...key })]);
  return s;
}

function workload(imvu: string, name: string, over: Partial<ComputeWorkloadRecord> = {}): ComputeWorkloadRecord {
  return { imvu, name, source: { kind: "image", ref: "localhost/x:1" }, state: "running", jurisdiction: "DE", deployedIndex: "20", ...over };
}

function run(g: GateNumber, ctx: GateContext): boolean {
  const r = GATES[g](ctx);
  assert.ok(r.reason.length > 5, `gate ${g} gives a reason`);
  return r.pass;
}

const deploy = (actor: string, body: Record<string, unknown>, imvu = "stage") =>
  cmd("compute.workload.deploy", actor, { name: "web", source: { kind: "image", ref: "localhost/web:1" }, ...body }, imvu);

describe("gate 2: a workload names only its own IMVU's volume and snapshots", () => {
  test("its own volume passes; another IMVU's volume is denied", () => {
    const s = state();
    assert.equal(run(2, ctxFor(s, deploy(OWNER, { volume: "stage" }))), true);
    assert.equal(run(2, ctxFor(s, deploy(OWNER, { volume: "other" }))), false);
  });
  test("restoring its own snapshot passes; another IMVU's snapshot is denied", () => {
    const s = state();
    s.apply([
      put("compute-snapshot", `stage/${SHA_A}`, { imvu: "stage", sha256: SHA_A, bytes: "10240", kind: "requested", of: "21", jurisdiction: "DE", recordedIndex: "22" }),
      put("compute-snapshot", `other/${SHA_B}`, { imvu: "other", sha256: SHA_B, bytes: "10240", kind: "requested", of: "23", jurisdiction: "FR", recordedIndex: "24" }),
    ]);
    assert.equal(run(2, ctxFor(s, cmd("compute.snapshot.restore", OWNER, { snapshot: SHA_A }, "stage"))), true);
    assert.equal(run(2, ctxFor(s, cmd("compute.snapshot.restore", OWNER, { snapshot: SHA_B }, "stage"))), false);
  });
  test("stopping its own workload passes; a workload it does not have is denied", () => {
    const s = state();
    s.apply([put("compute-workload", "other/db", workload("other", "db"))]);
    s.apply([put("compute-workload", "stage/web", workload("stage", "web"))]);
    assert.equal(run(2, ctxFor(s, cmd("compute.workload.stop", OWNER, { name: "web" }, "stage"))), true);
    assert.equal(run(2, ctxFor(s, cmd("compute.workload.stop", OWNER, { name: "db" }, "stage"))), false);
  });
  test("a snapshot record for an operation of this IMVU passes; for none is denied", () => {
    const s = state();
    s.apply([put("compute-op", computeOpKey("stage", "30"), { imvu: "stage", index: "30", type: "snapshot", status: "pending" })]);
    assert.equal(run(2, ctxFor(s, cmd("compute.snapshot.record", COMPUTE_SVC, { snapshot: SHA_A, bytes: "10240", of: "30", kind: "requested" }, "stage"))), true);
    assert.equal(run(2, ctxFor(s, cmd("compute.snapshot.record", COMPUTE_SVC, { snapshot: SHA_A, bytes: "10240", of: "30", kind: "requested" }, "other"))), false);
  });
});

describe("gate 7: the workloads' claims stay within the envelope", () => {
  test("a claim within the small envelope passes; beyond its memory is denied", () => {
    const s = state();
    assert.equal(run(7, ctxFor(s, deploy(OWNER, { resources: { memoryBytes: String(128 * MiB), cpuMillis: 250 } }))), true);
    assert.equal(run(7, ctxFor(s, deploy(OWNER, { resources: { memoryBytes: String(512 * MiB) } }))), false);
  });
  test("the sum over workloads counts; redeploying the same name replaces its claim", () => {
    const s = state();
    s.apply([put("compute-workload", "stage/db", workload("stage", "db", { resources: { cpuMillis: 400, pids: 100 } }))]);
    assert.equal(run(7, ctxFor(s, deploy(OWNER, { resources: { cpuMillis: 200 } }))), false, "400m + 200m > 500m");
    assert.equal(run(7, ctxFor(s, deploy(OWNER, { resources: { cpuMillis: 100 } }))), true);
    assert.equal(run(7, ctxFor(s, deploy(OWNER, { resources: { pids: 29 } }))), false, "100 + 29 > 128 pids");
    const redeploy = cmd("compute.workload.deploy", OWNER, { name: "db", source: { kind: "image", ref: "x" }, resources: { cpuMillis: 500 } }, "stage");
    assert.equal(run(7, ctxFor(s, redeploy)), true);
  });
  test("an envelope without compute is denied a workload", () => {
    const s = state();
    s.apply([put("imvu", "tiny", { name: "tiny", owner: OWNER, jurisdiction: "DE", class: "imvu", envelope: envelope({ cpuMillis: 0 }) as never, status: "active", createdIndex: "8" })]);
    assert.equal(run(7, ctxFor(s, deploy(OWNER, {}, "tiny"))), false);
  });
  test("lowering an envelope below the declared claims or the latest measured peak is denied", () => {
    const s = state();
    s.apply([put("compute-workload", "stage/db", workload("stage", "db", { resources: { memoryBytes: String(200 * MiB) } }))]);
    const change = (mem: number, actor = OWNER) => cmd("imvu.envelope.change", actor, { envelope: envelope({ memoryBytes: String(mem * MiB) }) }, "stage");
    assert.equal(run(7, ctxFor(s, change(220))), true);
    assert.equal(run(7, ctxFor(s, change(150))), false);
    assert.equal(run(7, ctxFor(s, change(150, ADMIN))), false, "an admin shrinking below use is denied too");
    s.apply([
      put("usage", "stage/compute/2026-11-23T00:00:00.000Z", { imvu: "stage", service: "compute", intervalStart: "2026-11-23T00:00:00.000Z", intervalEnd: "2026-11-23T00:01:00.000Z", metrics: { memPeakBytes: String(250 * MiB) }, index: "31" }),
      put("usage", "stage/compute/2026-11-23T00:01:00.000Z", { imvu: "stage", service: "compute", intervalStart: "2026-11-23T00:01:00.000Z", intervalEnd: "2026-11-23T00:02:00.000Z", metrics: { memPeakBytes: String(230 * MiB) }, index: "32" }),
    ]);
    assert.equal(run(7, ctxFor(s, change(240))), true, "only the latest interval is current use");
    assert.equal(run(7, ctxFor(s, change(220))), false);
  });
  test("usage is idempotent by interval: a repeated interval is denied, the next one passes", () => {
    const s = state();
    const report = (start: string, end: string) =>
      cmd("usage.report", COMPUTE_SVC, { service: "compute", intervalStart: start, intervalEnd: end, metrics: { cpuMs: "12" } }, "stage");
    s.apply([put("usage", "stage/compute/2026-11-23T00:00:00.000Z", { imvu: "stage", service: "compute", intervalStart: "2026-11-23T00:00:00.000Z", intervalEnd: "2026-11-23T00:01:00.000Z", metrics: {}, index: "31" })]);
    assert.equal(run(7, ctxFor(s, report("2026-11-23T00:00:00.000Z", "2026-11-23T00:01:00.000Z"))), false);
    assert.equal(run(7, ctxFor(s, report("2026-11-23T00:01:00.000Z", "2026-11-23T00:02:00.000Z"))), true);
    assert.equal(run(7, ctxFor(s, report("2026-11-23T00:03:00.000Z", "2026-11-23T00:02:00.000Z"))), false, "an interval ending before it starts");
  });
  test("gate 1: a service reports usage only for its own role", () => {
    const s = state();
    const asDns = cmd("usage.report", DNS_SVC, { service: "compute", intervalStart: "2026-11-23T00:05:00.000Z", intervalEnd: "2026-11-23T00:06:00.000Z", metrics: {} }, "stage");
    assert.equal(run(1, ctxFor(s, asDns)), false);
    const asCompute = cmd("usage.report", COMPUTE_SVC, { service: "compute", intervalStart: "2026-11-23T00:05:00.000Z", intervalEnd: "2026-11-23T00:06:00.000Z", metrics: {} }, "stage");
    assert.equal(run(1, ctxFor(s, asCompute)), true);
  });
});

describe("gate 9: compute inherits the IMVU's jurisdiction", () => {
  test("the IMVU's own tag passes; another is denied", () => {
    const s = state();
    assert.equal(run(9, ctxFor(s, deploy(OWNER, { jurisdiction: "DE" }))), true);
    assert.equal(run(9, ctxFor(s, deploy(OWNER, { jurisdiction: "US" }))), false);
  });
  test("restoring a snapshot taken under another jurisdiction is denied", () => {
    const s = state();
    s.apply([put("compute-snapshot", `stage/${SHA_A}`, { imvu: "stage", sha256: SHA_A, bytes: "1", kind: "requested", of: "1", jurisdiction: "FR", recordedIndex: "2" })]);
    s.apply([put("compute-snapshot", `stage/${SHA_B}`, { imvu: "stage", sha256: SHA_B, bytes: "1", kind: "requested", of: "1", jurisdiction: "DE", recordedIndex: "3" })]);
    assert.equal(run(9, ctxFor(s, cmd("compute.snapshot.restore", OWNER, { snapshot: SHA_B }, "stage"))), true);
    assert.equal(run(9, ctxFor(s, cmd("compute.snapshot.restore", OWNER, { snapshot: SHA_A }, "stage"))), false);
  });
});

describe("gate 10: a non-owner needs the owner's consent", () => {
  test("the owner deploys; an admin without consent is denied; with consent passes", () => {
    const s = state();
    assert.equal(run(10, ctxFor(s, deploy(OWNER, {}))), true);
    const byAdmin = deploy(ADMIN, {});
    assert.equal(run(10, ctxFor(s, byAdmin)), false);
    s.apply([put("consent", "c".repeat(64), { imvu: "stage", owner: OWNER, digest: "c".repeat(64), index: "40" })]);
    assert.equal(run(10, ctxFor(s, byAdmin)), true);
  });
});

describe("gate 12: snapshots first, immutable, deleted only by the owner", () => {
  const snap = (s: MemoryState) =>
    s.apply([put("compute-snapshot", `stage/${SHA_A}`, { imvu: "stage", sha256: SHA_A, bytes: "10240", kind: "requested", of: "21", jurisdiction: "DE", recordedIndex: "22" })]);
  test("the owner deletes a snapshot; an admin, even with consent, and a delegate cannot", () => {
    const s = state();
    snap(s);
    s.apply([put("delegation", `stage/${DELEGATE}`, { imvu: "stage", delegate: DELEGATE, scope: ["compute.snapshot.delete"], grantedIndex: "7" })]);
    s.apply([put("consent", "c".repeat(64), { imvu: "stage", owner: OWNER, digest: "c".repeat(64), index: "40" })]);
    assert.equal(run(12, ctxFor(s, cmd("compute.snapshot.delete", OWNER, { snapshot: SHA_A }, "stage"))), true);
    const byAdmin = cmd("compute.snapshot.delete", ADMIN, { snapshot: SHA_A }, "stage");
    assert.equal(run(12, ctxFor(s, byAdmin)), false);
    assert.deepEqual(evaluateGates(ctxFor(s, byAdmin)).filter((v) => !v.pass).map((v) => v.gate), [1, 12]);
    assert.equal(run(12, ctxFor(s, cmd("compute.snapshot.delete", DELEGATE, { snapshot: SHA_A }, "stage"))), false);
  });
  test("the same snapshot recorded again passes; the same digest with other bytes is denied", () => {
    const s = state();
    snap(s);
    assert.equal(run(12, ctxFor(s, cmd("compute.snapshot.record", COMPUTE_SVC, { snapshot: SHA_A, bytes: "10240", of: "21", kind: "requested" }, "stage"))), true);
    assert.equal(run(12, ctxFor(s, cmd("compute.snapshot.record", COMPUTE_SVC, { snapshot: SHA_A, bytes: "20480", of: "21", kind: "requested" }, "stage"))), false);
  });
  test("remove and restore declare gate 12 and pass it with the pre-snapshot duty stated", () => {
    const s = state();
    s.apply([put("compute-workload", "stage/web", workload("stage", "web"))]);
    assert.equal(run(12, ctxFor(s, cmd("compute.workload.remove", OWNER, { name: "web" }, "stage"))), true);
  });
});

describe("gate 13: compute creates only exportable resources", () => {
  test("deploy creates a workload and a volume, both exportable", () => {
    const s = state();
    const v = GATES[13](ctxFor(s, deploy(OWNER, {})));
    assert.equal(v.pass, true);
    assert.match(v.reason, /workload, volume/);
  });
});

describe("gate 16: compute reports stay inside the IMVU", () => {
  test("an event about this IMVU's workload passes; about another IMVU's workload is denied", () => {
    const s = state();
    s.apply([put("compute-workload", "stage/web", workload("stage", "web")), put("compute-workload", "other/db", workload("other", "db"))]);
    const ev = (w: string) => cmd("compute.event", COMPUTE_SVC, { kind: "oom-killed", eventId: `c1@${w}`, at: "2026-11-23T00:00:00.000Z", workload: w }, "stage");
    assert.equal(run(16, ctxFor(s, ev("web"))), true);
    assert.equal(run(16, ctxFor(s, ev("db"))), false);
  });
  test("only the compute service reports compute events (gate 1)", () => {
    const s = state();
    const ev = cmd("compute.event", OTHER, { kind: "restarted", eventId: "x@1", at: "2026-11-23T00:00:00.000Z" }, "stage");
    assert.equal(run(1, ctxFor(s, ev)), false);
  });
});
