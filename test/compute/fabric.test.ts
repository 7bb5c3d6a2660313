/**
 * The fabric end to end on podman: apps on the base image answer over 127.0.0.1, the reconciler
 * recovers from a container killed or removed by hand and after Nexus restarts, the disk envelope
 * holds, snapshots restore, and OCI archives load.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { PROFILES, type Envelope } from "../../src/services/compute/envelope.ts";
import { ComputeFabric } from "../../src/services/compute/fabric.ts";
import type { DesiredState, WorkloadSpec } from "../../src/services/compute/reconciler.ts";
import { writeTarSync } from "../../src/services/compute/tar.ts";
import { busyboxRootfs, exec, httpGet, podmanFabric, waitFor } from "./support.ts";

const work = mkdtempSync(join(tmpdir(), "nexus-compute-fab-"));
const env = podmanFabric();
const { fabric, driver } = env;
const loadedRef = `localhost/nexus-test-load-${fabric.fabric}:1`;
after(async () => {
  await env.done();
  spawnSync("podman", ["rmi", "-f", loadedRef], { stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
});

const env1: Envelope = { ...PROFILES.small, diskBytes: 32n * 1024n * 1024n };

function appDir(name: string, files: Record<string, string>): string {
  const d = join(work, name);
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(join(d, f, ".."), { recursive: true });
    writeFileSync(join(d, f), body);
  }
  return d;
}

async function converge(state: DesiredState): Promise<void> {
  const r = await fabric.reconcile(state);
  assert.deepEqual(r.results.filter((x) => !x.ok), []);
  assert.deepEqual(r.rejected, []);
}

async function answer(imvu: string, name: string, path = "/"): Promise<{ status: number; body: string }> {
  const w = (await fabric.list(imvu)).find((x) => x.name === name);
  assert.ok(w?.hostPort, `${imvu}/${name} has a published port`);
  const port = w.hostPort;
  return waitFor(`${imvu}/${name} to answer`, async () => httpGet(port, path));
}

test("a Node.js app and a static site run on the base image out of the box", async () => {
  const node = appDir("node-app", {
    "package.json": JSON.stringify({ name: "x", scripts: { start: "node server.js" } }),
    "server.js": "require('http').createServer((q, r) => r.end('node ' + process.version + ' ' + process.env.GREETING)).listen(process.env.PORT, () => console.log('listening'));",
  });
  const site = appDir("site", { "public/index.html": "<h1>static</h1>\n", "public/css/a.css": "h1{}" });
  const workloads: WorkloadSpec[] = [
    { name: "api", source: { kind: "app", dir: node }, port: 3000, env: { GREETING: "hi" } },
    { name: "site", source: { kind: "app", dir: site }, port: 8080 },
  ];
  await converge({ imvus: [{ imvu: "apps", envelope: env1, workloads }] });
  const api = await answer("apps", "api");
  assert.equal(api.body, `node ${process.version} hi`);
  const page = await answer("apps", "site");
  assert.equal(page.body, "<h1>static</h1>\n");
  assert.equal((await answer("apps", "site", "/css/a.css")).status, 200);
  assert.equal((await answer("apps", "site", "/../../etc/passwd")).status, 404);
  assert.match(await fabric.logs("apps", "api", 10), /listening/);
  await assert.rejects(fabric.logs("apps", "nope", 10), (e: unknown) => (e as { code?: string }).code === "COMPUTE_WORKLOAD_NOT_FOUND");
  await converge({ imvus: [] });
});

test("the reconciler recovers after a container is killed or removed by hand, and after Nexus restarts", async () => {
  const rootfs = busyboxRootfs(join(work, "rootfs"));
  const w: WorkloadSpec = { name: "web", source: { kind: "rootfs", dir: rootfs }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 };
  const state: DesiredState = { imvus: [{ imvu: "heal", envelope: env1, workloads: [w] }] };
  await converge(state);
  assert.match((await answer("heal", "web")).body, /hello from busybox/);
  const first = (await fabric.list("heal"))[0];
  assert.ok(first);
  spawnSync("podman", ["kill", first.containerId], { stdio: "ignore" });
  await waitFor("the kill", async () => ((await fabric.list("heal"))[0]?.state === "exited" ? true : undefined));
  let r = await fabric.reconcile(state);
  assert.deepEqual(r.results.map((x) => [x.action.type, x.ok]), [["start", true]]);
  assert.equal((await fabric.list("heal"))[0]?.containerId, first.containerId);
  await answer("heal", "web");
  spawnSync("podman", ["rm", "-f", first.containerId], { stdio: "ignore" });
  r = await fabric.reconcile(state);
  assert.deepEqual(r.results.map((x) => [x.action.type, x.ok]), [["run", true]]);
  const second = (await fabric.list("heal"))[0];
  assert.notEqual(second?.containerId, first.containerId);
  await answer("heal", "web");
  // Nexus restarts: a new fabric object over the same home and fabric id adopts what runs.
  const restarted = new ComputeFabric({ home: env.home, fabric: fabric.fabric, driver });
  r = await restarted.reconcile(state);
  assert.deepEqual(r.results.map((x) => [x.action.type, x.containerId]), [["adopt", second?.containerId]]);
  assert.deepEqual((await restarted.reconcile(state)).results, []);
  await converge({ imvus: [] });
});

test("the disk envelope holds inside the container, and snapshots restore the volume", async () => {
  const rootfs = busyboxRootfs(join(work, "rootfs2"));
  const w: WorkloadSpec = { name: "db", source: { kind: "rootfs", dir: rootfs }, cmd: ["sleep", "100000"] };
  const small: Envelope = { ...env1, diskBytes: 16n * 1024n * 1024n };
  await converge({ imvus: [{ imvu: "disk", envelope: small, workloads: [w] }] });
  const id = (await fabric.list("disk"))[0]?.containerId ?? "";
  const fill = await exec(id, ["sh", "-c", "dd if=/dev/zero of=/data/big bs=1M count=64 2>&1; echo rc=$?"]);
  const usage = fabric.volumes.usage("disk", small.diskBytes);
  if (fabric.volumes.mode === "loop") {
    assert.match(fill.out, /No space left on device/);
    assert.ok(usage.usedBytes <= small.diskBytes, `${usage.usedBytes} within ${small.diskBytes}`);
  } else {
    assert.ok(usage.overQuota, "dir mode reports the overshoot");
  }
  await exec(id, ["sh", "-c", "rm -f /data/big; mkdir -p /data/db && echo v1 > /data/db/state"]);
  const v1 = await fabric.snapshot("disk");
  assert.equal((await fabric.list("disk"))[0]?.state, "running", "unpaused after the snapshot");
  await exec(id, ["sh", "-c", "echo v2 > /data/db/state; echo junk > /data/junk"]);
  const r = await fabric.restore("disk", v1.digest);
  assert.notEqual(r.preRestore.digest, v1.digest);
  await waitFor("the workload back", async () => ((await fabric.list("disk"))[0]?.state === "running" ? true : undefined));
  const after = await exec(id, ["sh", "-c", "cat /data/db/state; ls /data"]);
  assert.match(after.out, /^v1\n/);
  assert.doesNotMatch(after.out, /junk/);
  // The pre-restore snapshot holds v2: restoring it undoes the restore.
  await fabric.restore("disk", r.preRestore.digest);
  assert.match((await exec(id, ["cat", "/data/db/state"])).out, /v2/);
  await converge({ imvus: [] });
});

test("an OCI archive a creator brings is loaded and runs", async () => {
  const rootfs = busyboxRootfs(join(work, "rootfs3"));
  const tar = join(work, "rootfs3.tar");
  writeTarSync(rootfs, tar);
  await driver.importRootfs(tar, loadedRef, { PATH: "/bin" });
  const archive = join(work, "image.oci.tar");
  assert.equal(spawnSync("podman", ["save", "--format", "oci-archive", "-o", archive, loadedRef]).status, 0);
  spawnSync("podman", ["rmi", "-f", loadedRef], { stdio: "ignore" });
  assert.equal(await driver.imageExists(loadedRef), false);
  const refs = await fabric.load(archive);
  assert.ok(refs.some((r) => r.includes(loadedRef.replace(/^localhost\//, ""))), refs.join(","));
  const w: WorkloadSpec = { name: "oci", source: { kind: "image", ref: loadedRef }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 };
  await converge({ imvus: [{ imvu: "oci", envelope: env1, workloads: [w] }] });
  assert.match((await answer("oci", "oci")).body, /hello from busybox/);
  await converge({ imvus: [] });
  writeFileSync(join(work, "not-an-image.tar"), "garbage");
  await assert.rejects(fabric.load(join(work, "not-an-image.tar")), (e: unknown) => (e as { code?: string }).code === "COMPUTE_IMAGE_LOAD_FAILED");
});
