/**
 * Compute wired to the ledger, with real containers: signed commands through Platform.open's
 * pipeline, the compute service module acting on what was recorded and reporting back with its
 * own signed commands. Hostile commands are denied and recorded with their gates, and leave
 * podman untouched; the reconciler heals a container killed by hand and adopts containers after
 * the module restarts; usage is reported once per interval across a restart.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { computeOpKey } from "../../src/core/pipeline/compute-state.ts";
import { ledgerEntries, replay } from "../../src/core/pipeline/replay.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { busyboxRootfs, exec, httpGet, waitFor } from "./support.ts";
import { act, allCommands, applied, commandAt, containers, createImvu, deniedBy, inspect, openSite, person, sign, type Site } from "./integration-support.ts";

const MiB = 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), "nexus-compute-int-work-"));
let site: Site;
let owner: LocalIdentity;
let rival: LocalIdentity;
let admin: LocalIdentity;
let rootfsSha: string;

before(async () => {
  site = await openSite();
  owner = await person(site, "owner");
  rival = await person(site, "rival");
  admin = await person(site, "admin");
  const r = await site.platform.submitAsPlatform({ type: "admin.add", body: { identity: admin.id } });
  assert.equal(r.outcome, "applied");
  await createImvu(site, owner, "stage");
  await createImvu(site, rival, "rival");
  rootfsSha = (await stageSourceDir(site.home, "stage", busyboxRootfs(join(work, "rootfs")))).sha256;
});
after(async () => {
  await site.done();
  rmSync(work, { recursive: true, force: true });
});

const httpd = (name: string, over: Record<string, unknown> = {}) => ({
  type: "compute.workload.deploy",
  imvu: "stage",
  body: { name, source: { kind: "rootfs", sha256: rootfsSha }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080, ...over },
});

async function answer(imvu: string, name: string): Promise<string> {
  await site.compute.settle();
  return waitFor(`${imvu}/${name} to answer`, async () => {
    const a = site.compute.address(imvu, name);
    if (!a) {
      await site.compute.reconcileNow();
      return undefined;
    }
    return (await httpGet(a.port)).body;
  }, 20_000);
}

function containerOf(name: string): Promise<string> {
  return waitFor(`container of ${name}`, async () => (await site.compute.status("stage")).find((w) => w.name === name && w.state === "running")?.containerId);
}

test("deploy by signed command: the container runs with the IMVU's limits and answers HTTP on 127.0.0.1", async () => {
  await applied(site, owner, httpd("web", { resources: { cpuMillis: 250, memoryBytes: String(64 * MiB), pids: 64 } }));
  assert.match(await answer("stage", "web"), /hello from busybox/);
  const addr = site.compute.address("stage", "web");
  assert.equal(addr?.host, "127.0.0.1");
  const c = inspect(await containerOf("web"));
  assert.equal(c.HostConfig.Memory, 64 * MiB);
  assert.equal(c.HostConfig.PidsLimit, 64);
  assert.equal(c.HostConfig.NanoCpus, 250_000_000);
  assert.equal(c.HostConfig.ReadonlyRootfs, true);
  const w = site.platform.state.get("compute-workload", "stage/web");
  assert.equal(w?.jurisdiction, "DE", "gate 9: the workload inherits the IMVU's jurisdiction");
});

test("hostile commands are denied and recorded with their gates; podman is untouched", async () => {
  const before = await containers(site);
  const size = site.platform.ledger.size;
  deniedBy(await act(site, owner, httpd("big", { resources: { memoryBytes: String(512 * MiB) } })), [7]);
  deniedBy(await act(site, owner, httpd("thief", { volume: "rival" })), [2]);
  deniedBy(await act(site, rival, httpd("intruder")), [1, 10]);
  // An admin lowering the envelope below the declared use, even with the owner's consent to that exact command.
  const low = { ...envelopeToWire(ENVELOPE_PROFILES.small), diskBytes: String(32 * MiB), memoryBytes: String(32 * MiB) };
  const shrink = sign(admin, { type: "imvu.envelope.change", imvu: "stage", body: { envelope: low } });
  await applied(site, owner, { type: "consent.give", imvu: "stage", body: { digest: shrink.digest } });
  deniedBy(await site.platform.pipeline.submit(shrink.json), [7]);
  // An admin deleting a snapshot (one is taken for the purpose).
  const snap = await applied(site, owner, { type: "compute.snapshot.create", imvu: "stage", body: {} });
  await site.compute.settle();
  const sha = site.platform.state.get("compute-op", computeOpKey("stage", snap.index))?.recorded;
  assert.ok(sha, "the snapshot was recorded");
  deniedBy(await act(site, admin, { type: "compute.snapshot.delete", imvu: "stage", body: { snapshot: sha } }), [1, 10, 12]);
  deniedBy(await act(site, rival, { type: "compute.snapshot.restore", imvu: "rival", body: { snapshot: sha } }), [2]);
  await site.compute.settle();
  assert.equal(site.platform.state.get("compute-snapshot", `stage/${sha}`)?.deletedIndex, undefined);
  assert.ok(site.compute.fabric?.listSnapshots("stage").some((s) => s.digest === `sha256:${sha}`), "the snapshot file is still there");
  assert.deepEqual(await containers(site), before, "no container changed");
  const recorded = (await allCommands(site)).slice(Number(size));
  const denied = recorded.filter((c) => c.outcome === "denied").map((c) => c.type);
  assert.deepEqual(denied, [
    "compute.workload.deploy", "compute.workload.deploy", "compute.workload.deploy", "imvu.envelope.change", "compute.snapshot.delete", "compute.snapshot.restore",
  ]);
});

test("snapshot → digest recorded by the compute service; restore takes a snapshot first; the owner deletes one", async () => {
  const id = await containerOf("web");
  assert.equal((await exec(id, ["sh", "-c", "echo v1 > /data/f"])).code, 0);
  const snap = await applied(site, owner, { type: "compute.snapshot.create", imvu: "stage", body: {} });
  await site.compute.settle();
  const op = site.platform.state.get("compute-op", computeOpKey("stage", snap.index));
  assert.equal(op?.status, "done");
  const first = op.recorded ?? "";
  const rec = site.platform.state.get("compute-snapshot", `stage/${first}`);
  assert.ok(rec, "the snapshot is in the projection");
  const by = await commandAt(site, rec.recordedIndex);
  assert.equal(by.type, "compute.snapshot.record");
  assert.equal(by.actor, site.platform.serviceIdentity("compute").id, "recorded by service:compute");
  assert.equal(by.body.snapshot, first);
  assert.ok(site.compute.fabric?.listSnapshots("stage").some((s) => s.digest === `sha256:${first}` && String(s.sizeBytes) === rec.bytes));

  assert.equal((await exec(id, ["sh", "-c", "echo v2 > /data/f"])).code, 0);
  const restore = await applied(site, owner, { type: "compute.snapshot.restore", imvu: "stage", body: { snapshot: first } });
  await site.compute.settle();
  const rop = site.platform.state.get("compute-op", computeOpKey("stage", restore.index));
  assert.equal(rop?.status, "done");
  const pre = site.platform.state.get("compute-snapshot", `stage/${rop.recorded ?? ""}`);
  assert.equal(pre?.kind, "pre-restore");
  assert.notEqual(pre.sha256, first);
  assert.ok(BigInt(pre.recordedIndex) < BigInt(rop.doneIndex ?? "0"), "the pre-restore digest is in the ledger before the restore completes");
  const after = await containerOf("web");
  assert.equal((await exec(after, ["cat", "/data/f"])).out.trim(), "v1");

  await applied(site, owner, { type: "compute.snapshot.delete", imvu: "stage", body: { snapshot: pre.sha256 } });
  await site.compute.settle();
  assert.ok(!site.compute.fabric?.listSnapshots("stage").some((s) => s.digest === `sha256:${pre.sha256}`), "the file is gone");
  deniedBy(await act(site, owner, { type: "compute.snapshot.restore", imvu: "stage", body: { snapshot: pre.sha256 } }), [2]);
});

test("the reconciler recovers after a container is killed by hand and adopts containers after the module restarts", async () => {
  const id = await containerOf("web");
  spawnSync("podman", ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "kill", id], { stdio: "ignore" });
  await waitFor("the killed container to be seen exited", async () => ((await site.compute.status("stage")).find((w) => w.name === "web")?.state === "exited" ? true : undefined));
  await site.compute.reconcileNow();
  assert.match(await answer("stage", "web"), /hello from busybox/);
  await site.compute.settle();
  const events = site.platform.state.list("compute-event", "stage/").map(([, e]) => e.kind);
  assert.ok(events.includes("restarted"), `a restart was reported: ${events.join(",")}`);
  const running = await containerOf("web");
  await site.restartCompute();
  await site.compute.settle();
  assert.equal(await containerOf("web"), running, "adopted, not replaced");
  assert.match(await answer("stage", "web"), /hello from busybox/);
});

test("usage is reported per interval by service:compute, once per interval across a restart; a repeat is denied by gate 7", async () => {
  const reports = () => site.platform.state.list("usage", "stage/compute/");
  await waitFor("a usage report", async () => (reports().length > 0 ? true : undefined), 15_000, 200);
  await site.restartCompute();
  const seen = reports().length;
  await waitFor("a report after the restart", async () => (reports().length > seen ? true : undefined), 15_000, 200);
  await site.compute.settle();
  const applied = (await allCommands(site)).filter((c) => c.type === "usage.report" && c.imvu === "stage" && c.outcome === "applied");
  const starts = applied.map((c) => String(c.body.intervalStart));
  assert.equal(new Set(starts).size, starts.length, `each interval once: ${starts.join(" ")}`);
  for (const c of applied) assert.equal(c.actor, site.platform.serviceIdentity("compute").id);
  const [, last] = reports()[reports().length - 1] ?? [];
  assert.ok(last && Number(last.metrics["workloads"]) >= 1 && last.metrics["memPeakBytes"] !== undefined);
  const svc = site.platform.serviceIdentity("compute").id;
  const deniedReports = (await allCommands(site)).filter((c) => c.actor === svc && c.outcome === "denied");
  assert.deepEqual(deniedReports, [], "no report of the compute service was ever denied");
  const again = await site.platform.submitAsService("compute", { type: "usage.report", imvu: "stage", body: { service: "compute", intervalStart: last.intervalStart, intervalEnd: last.intervalEnd, metrics: { cpuMs: "1" } } });
  deniedBy(again, [7]);
});

test("an app directory bound by its SHA-256 runs on the base image; stop keeps the container, remove snapshots first", async () => {
  const app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "server.js"), "require('http').createServer((q, r) => r.end('app ' + process.env.GREETING)).listen(process.env.PORT);\n");
  const { sha256 } = await stageSourceDir(site.home, "stage", app);
  await applied(site, owner, { type: "compute.workload.deploy", imvu: "stage", body: { name: "api", source: { kind: "app", sha256 }, port: 3000, env: { GREETING: "hi" } } });
  assert.equal(await answer("stage", "api"), "app hi");
  await applied(site, owner, { type: "compute.workload.stop", imvu: "stage", body: { name: "api" } });
  await site.compute.settle();
  await waitFor("api stopped", async () => ((await site.compute.status("stage")).find((w) => w.name === "api")?.state === "exited" ? true : undefined));
  const removal = await applied(site, owner, { type: "compute.workload.remove", imvu: "stage", body: { name: "api" } });
  await site.compute.settle();
  const op = site.platform.state.get("compute-op", computeOpKey("stage", removal.index));
  assert.equal(op?.status, "done");
  assert.equal(site.platform.state.get("compute-snapshot", `stage/${op.recorded ?? ""}`)?.kind !== undefined, true, "a pre-remove snapshot is recorded");
  assert.equal(site.platform.state.get("compute-workload", "stage/api"), undefined);
  await site.compute.reconcileNow();
  assert.equal((await site.compute.status("stage")).some((w) => w.name === "api"), false, "the container is gone");
  // A source uploaded by nobody (or into another IMVU's area) does not resolve: rejected, reported, nothing runs.
  await applied(site, owner, { type: "compute.workload.deploy", imvu: "stage", body: { name: "ghost", source: { kind: "app", sha256: "e".repeat(64) }, port: 3000 } });
  await site.compute.settle();
  const ev = site.platform.state.list("compute-event", "stage/rejected-ghost-").map(([, e]) => e.code);
  assert.deepEqual(ev, ["COMPUTE_SOURCE_MISSING"]);
  await applied(site, owner, { type: "compute.workload.remove", imvu: "stage", body: { name: "ghost" } });
  await site.compute.settle();
});

test("an OOM kill and a fork bomb at the pids limit are reported by service:compute as compute.event", async () => {
  const sh = (name: string, script: string, resources: Record<string, unknown>) => ({
    type: "compute.workload.deploy", imvu: "stage", body: { name, source: { kind: "rootfs", sha256: rootfsSha }, cmd: ["sh", "-c", script], resources },
  });
  await applied(site, owner, sh("hog", "tail /dev/zero", { memoryBytes: String(32 * MiB) }));
  // Forks past its pids limit every 200 ms and keeps running (Node reports each refused fork as an
  // 'error' event instead of dying), so every metering interval sees refused forks.
  const bombDir = join(work, "bomb");
  mkdirSync(bombDir);
  writeFileSync(join(bombDir, "index.js"), "const { spawn } = require('child_process');\nsetInterval(() => { for (let i = 0; i < 20; i++) spawn('/bin/sleep', ['2']).on('error', () => {}); }, 200);\n");
  const bombSha = (await stageSourceDir(site.home, "stage", bombDir)).sha256;
  await applied(site, owner, { type: "compute.workload.deploy", imvu: "stage", body: { name: "bomb", source: { kind: "app", sha256: bombSha }, resources: { pids: 24 } } });
  const kinds = (kind: string, workload: string) => site.platform.state.list("compute-event", "stage/").filter(([, e]) => e.kind === kind && e.workload === workload);
  await waitFor("the OOM kill reported", async () => {
    await site.compute.reconcileNow();
    return kinds("oom-killed", "hog").length > 0 ? true : undefined;
  }, 30_000, 300);
  await waitFor("the pids limit reported", async () => (kinds("pids-limit", "bomb").length > 0 ? true : undefined), 30_000, 300);
  const [, pids] = kinds("pids-limit", "bomb")[0] ?? [];
  assert.ok(pids && (pids.count ?? 0) > 0);
  assert.equal((await commandAt(site, pids.index)).actor, site.platform.serviceIdentity("compute").id);
  for (const name of ["hog", "bomb"]) await applied(site, owner, { type: "compute.workload.remove", imvu: "stage", body: { name } });
  await site.compute.settle();
  await site.compute.reconcileNow();
  assert.deepEqual((await site.compute.status("stage")).map((w) => w.name).filter((n) => n === "hog" || n === "bomb"), []);
});

test("replaying the ledger reproduces every compute verdict and the projection, byte for byte in its digest", async () => {
  await site.compute.settle();
  const r = await replay(ledgerEntries(site.platform.ledger), identityVerifiers);
  assert.deepEqual(r.mismatches, []);
  assert.equal(r.digest, site.platform.pipeline.stateDigest());
  assert.ok(r.state.list("compute-snapshot").length >= 2 && r.state.list("compute-event").length >= 1);
});
