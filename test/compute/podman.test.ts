/**
 * The podman driver against real containers: conformance, the isolation flags, the kernel's limits
 * (memory → OOM kill reported, pids → fork bomb stopped, CPU quota), and isolation between IMVUs
 * (network and volumes).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PROFILES, type Envelope } from "../../src/services/compute/envelope.ts";
import { PodmanDriver } from "../../src/services/compute/podman.ts";
import { runSpecFor, type DesiredState, type WorkloadSpec } from "../../src/services/compute/reconciler.ts";
import { driverConformance } from "./driver-conformance.ts";
import { busyboxRootfs, exec, fabricId, podmanFabric, waitFor } from "./support.ts";

const rootfs = busyboxRootfs(mkdtempSync(join(tmpdir(), "nexus-compute-rootfs-")));
const env = podmanFabric();
const { fabric, driver } = env;
const confFabric = fabricId();
const confWork = mkdtempSync(join(tmpdir(), "nexus-compute-conf-"));
const confDriver = new PodmanDriver({ workDir: confWork });

after(async () => {
  for (const c of await confDriver.list({ "nexus.fabric": confFabric })) await confDriver.remove(c.id);
  for (const n of await confDriver.listNetworks({ "nexus.fabric": confFabric })) await confDriver.removeNetwork(n.name);
  await env.done();
  rmSync(rootfs, { recursive: true, force: true });
  rmSync(confWork, { recursive: true, force: true });
});

driverConformance("podman driver", () => ({
  driver: confDriver,
  labels: { "nexus.fabric": confFabric },
  prefix: `nx-${confFabric}`,
  spec: (name, network, labels) => ({
    ...runSpecFor("conf", PROFILES.small, { name: "w", source: { kind: "rootfs", dir: rootfs }, cmd: ["/bin/sh", "-c", "echo hello; exec sleep 100000"] }, {
      fabric: confFabric, baseImage: undefined, volumePath: rootfs + "/www", volumeReadOnly: true, appCommand: () => [],
    }),
    name, network, labels, group: undefined,
  }),
}));

const sh = (name: string, script: string, extra: Partial<WorkloadSpec> = {}): WorkloadSpec => ({
  name, source: { kind: "rootfs", dir: rootfs }, cmd: ["/bin/sh", "-c", script], ...extra,
});

async function converge(state: DesiredState): Promise<void> {
  const r = await fabric.reconcile(state);
  const failed = r.results.filter((x) => !x.ok);
  assert.deepEqual(failed, [], JSON.stringify(failed));
  assert.deepEqual(r.rejected, []);
}

async function idOf(imvu: string, name: string): Promise<string> {
  const w = (await fabric.list(imvu)).find((x) => x.name === name);
  assert.ok(w, `${imvu}/${name} is listed`);
  return w.containerId;
}

test("the doctor finds what compute needs on this machine", async () => {
  const { computeDoctor } = await import("../../src/services/compute/doctor.ts");
  const r = computeDoctor();
  assert.equal(r.ok, true, JSON.stringify(r.checks));
  assert.deepEqual(r.checks.map((c) => c.name), ["podman", "cgroups", "iptables", "catatonit", "loop volumes", "kernel log"]);
});

const tiny: Envelope = { ...PROFILES.small, cpuMillis: 250, memoryBytes: 64n * 1024n * 1024n, pids: 32, diskBytes: 16n * 1024n * 1024n };

test("containers run read-only, unprivileged, without capabilities, with their limits", async () => {
  await converge({ imvus: [{ imvu: "sec", envelope: tiny, workloads: [sh("probe", "exec sleep 100000")] }] });
  const id = await idOf("sec", "probe");
  const status = await exec(id, ["cat", "/proc/1/status"]);
  assert.match(status.out, /CapEff:\s+0000000000000000/);
  assert.match(status.out, /NoNewPrivs:\s+1/);
  assert.equal((await exec(id, ["id", "-u"])).out.trim(), "10000");
  const ro = await exec(id, ["touch", "/etc/x"]);
  assert.notEqual(ro.code, 0);
  assert.match(ro.out, /Read-only file system/);
  assert.equal((await exec(id, ["sh", "-c", "echo ok > /data/f && cat /data/f"])).out.trim(), "ok");
  const cg = await exec(id, ["cat", "/proc/1/cgroup"]);
  assert.match(cg.out, new RegExp(`/nexus/${fabric.fabric}/sec/libpod-${id}`));
  // The container's own limits and the IMVU's parent group both carry the envelope.
  const mem = await exec(id, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
  if (mem.code === 0) assert.equal(mem.out.trim(), String(64 * 1024 * 1024));
});

test("a workload allocating past its memory is OOM-killed and the event reported", async () => {
  const state: DesiredState = { imvus: [{ imvu: "oom", envelope: tiny, workloads: [sh("hog", "tail /dev/zero")] }] };
  await converge(state);
  const id = await idOf("oom", "hog");
  await waitFor("the OOM kill", async () => ((await fabric.list("oom")).find((w) => w.containerId === id && w.state === "exited" && w.oomKilled) ? true : undefined));
  const r = await fabric.reconcile(state);
  assert.ok(r.events.some((e) => e.type === "oom-killed" && e.imvu === "oom" && e.workload === "hog" && e.containerId === id), JSON.stringify(r.events));
  assert.ok(r.results.some((x) => x.action.type === "start" && x.action.reason === "oom-killed"));
  await converge({ imvus: [] });
});

test("a fork bomb stops at the pids limit", async () => {
  const bomb = "b() { b | b & }; b; sleep 100000";
  await converge({ imvus: [{ imvu: "bomb", envelope: tiny, workloads: [sh("bomb", bomb)] }] });
  const [c] = await driver.list({ "nexus.fabric": fabric.fabric, "nexus.imvu": "bomb" });
  assert.ok(c);
  const u = await waitFor("the pids limit to be hit", async () => {
    const s = await driver.stats(c);
    return s !== undefined && s.pidsLimitHits > 0 ? s : undefined;
  });
  assert.ok(u.pids <= tiny.pids, `pids ${u.pids} within ${tiny.pids}`);
  await converge({ imvus: [] });
});

test("measured CPU seconds stay within the quota", async () => {
  await converge({ imvus: [{ imvu: "cpu", envelope: tiny, workloads: [sh("spin", "while :; do :; done & while :; do :; done")] }] });
  const [c] = await driver.list({ "nexus.fabric": fabric.fabric, "nexus.imvu": "cpu" });
  assert.ok(c);
  const a = await driver.stats(c);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 2500));
  const b = await driver.stats(c);
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  assert.ok(a && b);
  const cpuSec = Number(b.cpuNanos - a.cpuNanos) / 1e9;
  // 250 millicores: at most a quarter of a core per period, whatever the machine's speed.
  assert.ok(cpuSec > 0, "the loop ran");
  assert.ok(cpuSec <= 0.25 * wallSec * 1.1 + 0.05, `${cpuSec.toFixed(3)} s of CPU in ${wallSec.toFixed(3)} s wall`);
  // The sampler's per-interval records hold the same bound, interval by interval.
  const sampler = fabric.sampler(1000);
  const records = [];
  for (let i = 0; i < 60 && records.length < 2; i++) {
    records.push(...(await sampler.tick()).filter((r) => r.imvu === "cpu"));
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(records.length >= 2, "two intervals metered");
  for (const r of records) {
    const sec = (r.intervalEnd - r.intervalStart) / 1000;
    assert.ok(r.cpuSeconds > 0 && r.cpuSeconds <= 0.25 * sec * 1.1 + 0.06, `${r.cpuSeconds} s in ${sec} s`);
    assert.ok(r.memPeakBytes > 0n);
    assert.equal(r.intervalStart % 1000, 0);
  }
  await converge({ imvus: [] });
});

test("an IMVU reaches neither another IMVU's containers nor its volume", async () => {
  const serve = sh("web", "echo secret-a > /data/secret-a; exec httpd -f -p 8080 -h /data", { port: 8080 });
  const probe = sh("probe", "exec sleep 100000");
  await converge({
    imvus: [
      { imvu: "iso-a", envelope: tiny, workloads: [serve, probe] },
      { imvu: "iso-b", envelope: tiny, workloads: [probe] },
    ],
  });
  const web = await idOf("iso-a", "web");
  const insp = JSON.parse((await driver.podman(["inspect", web, "--format", "json"])).stdout) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[];
  const ip = Object.values(insp[0]?.NetworkSettings.Networks ?? {})[0]?.IPAddress;
  assert.ok(ip);
  const fetch = `printf 'GET /secret-a HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 8080`;
  // Positive control: the same IMVU's other container gets the file.
  const sameImvu = await waitFor("the server", async () => {
    const r = await exec(await idOf("iso-a", "probe"), ["sh", "-c", fetch]);
    return r.out.includes("secret-a") ? r : undefined;
  });
  assert.match(sameImvu.out, /200 OK/);
  const other = await exec(await idOf("iso-b", "probe"), ["sh", "-c", fetch]);
  assert.doesNotMatch(other.out, /secret-a/);
  // The gateway's path: the published port on 127.0.0.1 of the host.
  const port = (await fabric.list("iso-a")).find((w) => w.name === "web")?.hostPort;
  assert.ok(port);
  // Volumes: B's /data is B's own; A's file is nowhere in B's file systems.
  const find = await exec(await idOf("iso-b", "probe"), ["sh", "-c", "ls -a /data; find / -path /proc -prune -o -path /sys -prune -o -name secret-a -print"]);
  assert.doesNotMatch(find.out, /secret-a/);
  const mounts = await exec(await idOf("iso-b", "probe"), ["cat", "/proc/self/mountinfo"]);
  assert.doesNotMatch(mounts.out, /iso-a/);
  await converge({ imvus: [] });
});
