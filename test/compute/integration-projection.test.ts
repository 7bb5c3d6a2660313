/** The pure half of the wiring: compute reducers over the projection, and `desiredFromState`. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { reduceCompute, type ComputeCommand } from "../../src/core/pipeline/compute-reducer.ts";
import { computeOpKey } from "../../src/core/pipeline/compute-state.ts";
import { put, type MemoryState } from "../../src/core/pipeline/state.ts";
import { desiredFromState } from "../../src/services/compute/projection.ts";
import { OWNER, baseState, cmd } from "../policy/fixtures.ts";

const SVC = "nx1" + "c".repeat(52);
const SHA = "a".repeat(64);
let index = 100n;

function apply(s: MemoryState, type: Parameters<typeof cmd>[0], actor: string, body: unknown, imvu = "stage"): string {
  index += 1n;
  s.apply(reduceCompute(s, cmd(type, actor, body, imvu) as ComputeCommand, { index }));
  return index.toString();
}

const sourceDir = (imvu: string, sha: string): string => `/src/${imvu}/${sha}`;

describe("compute reducers", () => {
  test("deploy declares; a remove waits for its pre-remove snapshot, then the workload goes", () => {
    const s = baseState();
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "rootfs", sha256: SHA }, port: 8080, resources: { memoryBytes: "1000000" } });
    assert.equal(s.get("compute-workload", "stage/web")?.jurisdiction, "DE");
    const rm = apply(s, "compute.workload.remove", OWNER, { name: "web" });
    assert.equal(s.get("compute-workload", "stage/web")?.removingIndex, rm);
    assert.equal(s.get("compute-op", computeOpKey("stage", rm))?.status, "pending");
    apply(s, "compute.snapshot.record", SVC, { snapshot: SHA, bytes: "10240", of: rm, kind: "pre-remove" });
    assert.equal(s.get("compute-workload", "stage/web"), undefined);
    assert.equal(s.get("compute-op", computeOpKey("stage", rm))?.status, "done");
    assert.equal(s.get("compute-snapshot", `stage/${SHA}`)?.kind, "pre-remove");
  });
  test("a redeploy while a remove is pending is a new declaration the remove does not take", () => {
    const s = baseState();
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "image", ref: "a" } });
    const rm = apply(s, "compute.workload.remove", OWNER, { name: "web" });
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "image", ref: "b" } });
    apply(s, "compute.snapshot.record", SVC, { snapshot: SHA, bytes: "1", of: rm, kind: "pre-remove" });
    assert.deepEqual(s.get("compute-workload", "stage/web")?.source, { kind: "image", ref: "b" });
  });
  test("a failed remove leaves the workload declared; a recorded snapshot is never altered", () => {
    const s = baseState();
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "image", ref: "a" } });
    const rm = apply(s, "compute.workload.remove", OWNER, { name: "web" });
    apply(s, "compute.event", SVC, { kind: "op-failed", eventId: `op-${rm}`, at: "2026-11-23T00:00:00.000Z", of: rm, code: "COMPUTE_VOLUME_FAILED" });
    assert.equal(s.get("compute-workload", "stage/web")?.removingIndex, undefined);
    assert.equal(s.get("compute-op", computeOpKey("stage", rm))?.code, "COMPUTE_VOLUME_FAILED");
    const snap = apply(s, "compute.snapshot.create", OWNER, {});
    apply(s, "compute.snapshot.record", SVC, { snapshot: SHA, bytes: "5", of: snap, kind: "requested" });
    const first = s.get("compute-snapshot", `stage/${SHA}`);
    const again = apply(s, "compute.snapshot.create", OWNER, {});
    apply(s, "compute.snapshot.record", SVC, { snapshot: SHA, bytes: "5", of: again, kind: "requested" });
    assert.deepEqual(s.get("compute-snapshot", `stage/${SHA}`), first);
  });
});

describe("desiredFromState", () => {
  test("declared workloads become the reconciler's declarations, sources resolved to their unpacked trees", () => {
    const s = baseState();
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "app", sha256: SHA }, port: 3000, env: { A: "1" }, resources: { memoryBytes: "67108864", pids: 32 } });
    const d = desiredFromState(s, { sourceDir });
    assert.equal(d.imvus.length, 1, "IMVUs without workloads are not desired");
    const [i] = d.imvus;
    assert.equal(i?.imvu, "stage");
    assert.equal(i.envelope.memoryBytes, 256n * 1024n * 1024n);
    assert.deepEqual(i.workloads, [{ name: "web", source: { kind: "app", dir: `/src/stage/${SHA}` }, port: 3000, env: { A: "1" }, resources: { memoryBytes: 67108864n, pids: 32 }, state: "running" }]);
  });
  test("stopped and suspended mean stopped; departed means not desired", () => {
    const s = baseState();
    apply(s, "compute.workload.deploy", OWNER, { name: "web", source: { kind: "image", ref: "x" } });
    apply(s, "compute.workload.deploy", OWNER, { name: "db", source: { kind: "image", ref: "y" } });
    apply(s, "compute.workload.stop", OWNER, { name: "db" });
    assert.deepEqual(desiredFromState(s, { sourceDir }).imvus[0]?.workloads.map((w) => `${w.name}:${w.state ?? ""}`), ["db:stopped", "web:running"]);
    const rec = s.get("imvu", "stage");
    assert.ok(rec);
    s.apply([put("imvu", "stage", { ...rec, status: "suspended" })]);
    assert.deepEqual(desiredFromState(s, { sourceDir }).imvus[0]?.workloads.map((w) => w.state), ["stopped", "stopped"]);
    s.apply([put("imvu", "stage", { ...rec, exit: { requestedIndex: "1", departedIndex: "2" } })]);
    assert.deepEqual(desiredFromState(s, { sourceDir }).imvus, []);
  });
});
