import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PROFILES, type Envelope } from "../../src/services/compute/envelope.ts";
import { LABEL_SPEC, networkName } from "../../src/services/compute/names.ts";
import {
  plan, Reconciler, runSpecFor, specHash, type DesiredState, type DesiredWorkload, type Observed, type PlanContext, type WorkloadSpec,
} from "../../src/services/compute/reconciler.ts";
import { ComputeFabric } from "../../src/services/compute/fabric.ts";
import { Volumes } from "../../src/services/compute/volumes.ts";
import type { ContainerInfo } from "../../src/services/compute/driver.ts";
import { FakeDriver } from "./fake-driver.ts";
import { driverConformance } from "./driver-conformance.ts";

const home = mkdtempSync(join(tmpdir(), "nexus-compute-rec-"));
after(() => rmSync(home, { recursive: true, force: true }));

driverConformance("fake driver", () => {
  const driver = new FakeDriver();
  return {
    driver,
    labels: { "nexus.fabric": "conf" },
    prefix: "fake",
    spec: (name, network, labels) => ({
      ...runSpecFor("i", PROFILES.small, { name: "w", source: { kind: "image", ref: "localhost/fake:1" } }, ctx()),
      name, network, labels,
    }),
  };
});

function ctx(over: Partial<Parameters<typeof runSpecFor>[3]> = {}): Parameters<typeof runSpecFor>[3] {
  return { fabric: "f", baseImage: "localhost/base:1", volumePath: "/vol/i", volumeReadOnly: false, appCommand: () => ["node", "/app/server.js"], ...over };
}

const web: WorkloadSpec = { name: "web", source: { kind: "image", ref: "localhost/fake:1" }, port: 8080 };

function desired(imvu: string, w: WorkloadSpec, envelope: Envelope = PROFILES.small, state: "running" | "stopped" = "running"): DesiredWorkload {
  return { imvu, name: w.name, state, spec: runSpecFor(imvu, envelope, w, ctx()) };
}

function container(d: DesiredWorkload, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    id: over.id ?? "c1", name: d.spec.name, labels: d.spec.labels, state: "running", exitCode: 0, pid: 10,
    startedAtMs: 1000, finishedAtMs: 0, hostPort: 40001, oomKilled: false, ...over,
  };
}

const pctx = (over: Partial<PlanContext> = {}): PlanContext => ({ fabric: "f", nowMs: 10_000, known: new Set(), notBefore: new Map(), ...over });
const netOf = (imvu: string) => ({ name: networkName("f", imvu), subnet: "10.213.0.0/24", labels: { "nexus.fabric": "f", "nexus.imvu": imvu } });

test("run specs carry the envelope, the volume, the labels and a stable hash", () => {
  const d = desired("alpha", web);
  assert.equal(d.spec.cpuMillis, 500);
  assert.equal(d.spec.memoryBytes, PROFILES.small.memoryBytes);
  assert.equal(d.spec.pids, 128);
  assert.equal(d.spec.network, "nx-f-alpha");
  assert.equal(d.spec.group, "/nexus/f/alpha");
  assert.deepEqual(d.spec.mounts, [{ hostPath: "/vol/i", containerPath: "/data", readOnly: false }]);
  assert.equal(d.spec.env.PORT, "8080");
  assert.equal(d.spec.user, "10000:10000");
  assert.equal(d.spec.labels[LABEL_SPEC], specHash(d.spec));
  assert.equal(desired("alpha", web).spec.labels[LABEL_SPEC], d.spec.labels[LABEL_SPEC]);
  assert.notEqual(desired("alpha", web, PROFILES.medium).spec.labels[LABEL_SPEC], d.spec.labels[LABEL_SPEC]);
  assert.notEqual(desired("alpha", { ...web, env: { A: "1" } }).spec.labels[LABEL_SPEC], d.spec.labels[LABEL_SPEC]);
  const app = runSpecFor("alpha", PROFILES.small, { name: "site", source: { kind: "app", dir: "/srv/site" } }, ctx());
  assert.deepEqual(app.root, { kind: "image", ref: "localhost/base:1" });
  assert.deepEqual(app.cmd, ["/usr/local/bin/node", "/app/server.js"]);
  assert.ok(app.mounts.some((m) => m.containerPath === "/app" && m.readOnly));
  const ro = runSpecFor("alpha", PROFILES.small, web, ctx({ volumeReadOnly: true }));
  assert.equal(ro.mounts[0]?.readOnly, true);
});

test("plan: nothing observed → network then run", () => {
  const d = desired("alpha", web);
  const { actions } = plan([d], ["alpha"], { containers: [], networks: [] }, pctx());
  assert.deepEqual(actions.map((a) => a.type), ["create-network", "run"]);
});

test("plan: a running match is adopted once, then left alone", () => {
  const d = desired("alpha", web);
  const obs: Observed = { containers: [container(d)], networks: [netOf("alpha")] };
  assert.deepEqual(plan([d], ["alpha"], obs, pctx()).actions.map((a) => a.type), ["adopt"]);
  assert.deepEqual(plan([d], ["alpha"], obs, pctx({ known: new Set(["c1"]) })).actions, []);
});

test("plan: a changed spec replaces the container (remove before run)", () => {
  const old = desired("alpha", web);
  const now = desired("alpha", { ...web, env: { X: "2" } });
  const { actions } = plan([now], ["alpha"], { containers: [container(old)], networks: [netOf("alpha")] }, pctx());
  assert.deepEqual(actions.map((a) => [a.type, "reason" in a ? a.reason : ""]), [["remove", "spec-changed"], ["run", ""]]);
});

test("plan: exited → start; OOM-killed → event and start; back-off → wait", () => {
  const d = desired("alpha", web);
  const exited = container(d, { state: "exited", exitCode: 1, finishedAtMs: 9000, pid: 0 });
  let r = plan([d], ["alpha"], { containers: [exited], networks: [netOf("alpha")] }, pctx());
  assert.deepEqual(r.actions.map((a) => [a.type, "reason" in a ? a.reason : ""]), [["start", "exited"]]);
  assert.deepEqual(r.events, [{ type: "exited", imvu: "alpha", workload: "web", containerId: "c1", atMs: 9000, exitCode: 1 }]);
  const oom = { ...exited, exitCode: 137, oomKilled: true };
  r = plan([d], ["alpha"], { containers: [oom], networks: [netOf("alpha")] }, pctx());
  assert.deepEqual(r.actions.map((a) => [a.type, "reason" in a ? a.reason : ""]), [["start", "oom-killed"]]);
  assert.deepEqual(r.events.map((e) => e.type), ["oom-killed"]);
  r = plan([d], ["alpha"], { containers: [oom], networks: [netOf("alpha")] }, pctx({ notBefore: new Map([["alpha/web", 12_000]]) }));
  assert.deepEqual(r.actions.map((a) => a.type), ["wait"]);
});

test("plan: undesired containers and networks go; duplicates go; stopped is stopped", () => {
  const d = desired("alpha", web);
  const gone = desired("beta", web);
  const obs: Observed = {
    containers: [container(d, { id: "c1", startedAtMs: 1 }), container(d, { id: "c2", startedAtMs: 2 }), container(gone, { id: "c3" })],
    networks: [netOf("alpha"), netOf("beta"), { ...netOf("zeta"), labels: { "nexus.fabric": "other" } }],
  };
  const { actions } = plan([d], ["alpha"], obs, pctx({ known: new Set(["c2"]) }));
  assert.deepEqual(
    actions.map((a) => `${a.type}:${"containerId" in a ? a.containerId : "network" in a ? a.network : ""}`).sort(),
    ["remove-network:nx-f-beta", "remove:c1", "remove:c3"],
  );
  const stop = plan([desired("alpha", web, PROFILES.small, "stopped")], ["alpha"], { containers: [container(d)], networks: [netOf("alpha")] }, pctx());
  assert.deepEqual(stop.actions.map((a) => a.type), ["stop"]);
});

test("plan ignores containers of other fabrics", () => {
  const d = desired("alpha", web);
  const foreign = container(d, { id: "x", labels: { ...d.spec.labels, "nexus.fabric": "other" } });
  const { actions } = plan([], [], { containers: [foreign], networks: [] }, pctx());
  assert.deepEqual(actions, []);
});

function fabricWith(driver: FakeDriver, now?: () => number): ComputeFabric {
  return new ComputeFabric({ home, fabric: "fk", driver, volumeMode: "dir", ...(now ? {} : {}) });
}

const state = (workloads: WorkloadSpec[], envelope: Envelope = PROFILES.small): DesiredState => ({ imvus: [{ imvu: "alpha", envelope, workloads }] });

test("reconciler converges, is idempotent, and recovers from a crash and a removal", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  const r1 = await f.reconcile(state([web]));
  assert.deepEqual(r1.results.map((r) => [r.action.type, r.ok]), [["create-network", true], ["run", true]]);
  assert.equal(r1.running, 1);
  assert.equal(driver.groups.get("/nexus/fk/alpha")?.memoryBytes, PROFILES.small.memoryBytes);
  const r2 = await f.reconcile(state([web]));
  assert.deepEqual(r2.results, []);
  const [c] = await driver.list({});
  driver.crash(c?.id ?? "", { oom: true });
  const r3 = await f.reconcile(state([web]));
  assert.deepEqual(r3.results.map((r) => r.action.type), ["start"]);
  assert.deepEqual(r3.events.map((e) => e.type), ["oom-killed"]);
  const r4 = await f.reconcile(state([web]));
  assert.deepEqual(r4.events, [], "an event is reported once");
  await driver.remove(c?.id ?? "");
  const r5 = await f.reconcile(state([web]));
  assert.deepEqual(r5.results.map((r) => r.action.type), ["run"]);
  const r6 = await f.reconcile({ imvus: [] });
  assert.deepEqual(r6.results.map((r) => r.action.type).sort(), ["remove", "remove-network"]);
  assert.equal(driver.groups.size, 0);
});

test("a new reconciler (Nexus restarted) adopts what runs and changes nothing", async () => {
  const driver = new FakeDriver();
  await fabricWith(driver).reconcile(state([web]));
  const before = (await driver.list({}))[0]?.id;
  const again = fabricWith(driver);
  const r = await again.reconcile(state([web]));
  assert.deepEqual(r.results.map((x) => [x.action.type, x.containerId]), [["adopt", before]]);
  assert.deepEqual((await again.reconcile(state([web]))).results, []);
});

test("restarts back off when a workload keeps crashing", async () => {
  let now = 1_000_000;
  const driver = new FakeDriver(() => now);
  const volumes = new Volumes({ root: join(home, "bo"), mode: "dir" });
  const rec = new Reconciler({ driver, volumes, fabric: "bo", baseImage: async () => "localhost/base:1", now: () => now });
  await rec.reconcile(state([web]));
  const id = (await driver.list({}))[0]?.id ?? "";
  const types: string[] = [];
  for (let i = 0; i < 4; i++) {
    driver.crash(id);
    now += 500;
    types.push(...(await rec.reconcile(state([web]))).results.map((r) => r.action.type));
  }
  // First crash restarts at once; later ones wait out 1 s, 2 s, ... (only 500 ms pass per round).
  assert.deepEqual(types, ["start", "wait", "start", "wait"]);
});

test("invalid declarations are rejected per workload; the rest still runs", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  const bad = { name: "Bad_Name", source: { kind: "image", ref: "localhost/fake:1" } } as unknown as WorkloadSpec;
  const noEntry = mkdtempSync(join(home, "app-"));
  const app: WorkloadSpec = { name: "app", source: { kind: "app", dir: noEntry } };
  const r = await f.reconcile(state([web, bad, app]));
  assert.deepEqual(r.rejected.map((x) => x.code).sort(), ["COMPUTE_APP_INVALID", "COMPUTE_SPEC_INVALID"]);
  assert.equal(r.running, 1);
  await f.teardown();
});

test("dir-mode volumes over the envelope are mounted read-only and reported", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  const small: Envelope = { ...PROFILES.small, diskBytes: 64n * 1024n };
  await f.reconcile(state([web], small));
  mkdirSync(f.volumes.pathOf("alpha"), { recursive: true });
  writeFileSync(join(f.volumes.pathOf("alpha"), "fill"), Buffer.alloc(256 * 1024, 1));
  const r = await f.reconcile(state([web], small));
  assert.deepEqual(r.events.map((e) => e.type), ["disk-over-envelope"]);
  assert.deepEqual(r.results.map((x) => x.action.type), ["remove", "run"]);
  const c = [...driver.containers.values()][0];
  assert.equal(c?.spec.mounts[0]?.readOnly, true);
  await f.teardown({ volumes: true });
});

test("snapshot pauses running workloads; restore snapshots first and restarts them", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  await f.reconcile(state([web]));
  const vol = f.volumes.pathOf("alpha");
  writeFileSync(join(vol, "a.txt"), "one");
  const s1 = await f.snapshot("alpha");
  writeFileSync(join(vol, "a.txt"), "two");
  const r = await f.restore("alpha", s1.digest);
  assert.notEqual(r.preRestore.digest, s1.digest);
  assert.deepEqual(f.listSnapshots("alpha").map((s) => s.digest).sort(), [s1.digest, r.preRestore.digest].sort());
  assert.equal((await driver.list({}))[0]?.state, "running");
  assert.ok(driver.calls.some((c) => c.startsWith("stop ")));
  await f.teardown({ volumes: true });
});

test("a declaration that stops resolving leaves the running container alone", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  await f.reconcile(state([web]));
  const id = (await driver.list({}))[0]?.id;
  const broken: WorkloadSpec = { name: "web", source: { kind: "app", dir: join(home, "no-such-app") }, port: 8080 };
  const r = await f.reconcile(state([broken]));
  assert.deepEqual(r.rejected.map((x) => [x.workload, x.code]), [["web", "COMPUTE_APP_INVALID"]]);
  assert.deepEqual(r.results, []);
  assert.equal((await driver.list({}))[0]?.id, id);
  await f.teardown({ volumes: true });
});

test("the reconcile loop runs from a desired-state source until stopped", async () => {
  const driver = new FakeDriver();
  const f = fabricWith(driver);
  const reports: number[] = [];
  let calls = 0;
  f.reconciler.start({ desired: async () => (calls++, state([web])) }, 20, (r) => reports.push(r.running));
  for (let i = 0; i < 200 && reports.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  await f.reconciler.stop();
  const seen = calls;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(calls, seen, "no pass after stop");
  assert.ok(reports.length >= 3);
  assert.deepEqual([...new Set(reports)], [1]);
  await f.teardown({ volumes: true });
});

test("snapshot and restore refuse an IMVU without a volume", async () => {
  const f = fabricWith(new FakeDriver());
  await assert.rejects(f.snapshot("ghost"), (e: unknown) => (e as { code?: string }).code === "COMPUTE_VOLUME_FAILED");
  await assert.rejects(f.restore("ghost", `sha256:${"0".repeat(64)}`), (e: unknown) => (e as { code?: string }).code === "COMPUTE_VOLUME_FAILED");
});
