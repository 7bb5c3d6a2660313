/**
 * The compute part of the exit bundle on podman: a workload writes into its volume and a snapshot
 * is recorded; the bundle carries the workload spec, the Kubernetes manifests, the volume as tar
 * (holding what the container wrote) and the snapshot archive under its content address, and the
 * whole bundle verifies once the owner countersigned it. Skipped where podman cannot run.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parseDsse } from "../../src/core/crypto/index.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { slug } from "../../src/services/compute/names.ts";
import { podmanAvailable } from "../../src/services/compute/podman.ts";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { countersign, PATHS, verifyBundle, writeBundle } from "../../src/imvu/index.ts";
import { busyboxRootfs, waitFor } from "../compute/support.ts";
import { applied, createImvu, openSite, person, type Site } from "../compute/integration-support.ts";

const podman = podmanAvailable();
const skip = podman.available ? false : podman.message;
const work = mkdtempSync(join(tmpdir(), "nexus-exit-compute-"));
let site: Site | undefined;
let owner: LocalIdentity;

before(async () => {
  if (skip !== false) return;
  site = await openSite();
  owner = await person(site, "owner");
  await createImvu(site, owner, "stage");
});
after(async () => {
  await site?.done();
  rmSync(work, { recursive: true, force: true });
});

test("the bundle carries the workload, its manifests, the volume it wrote and its snapshot", { skip }, async () => {
  const s = site as Site;
  const sha256 = (await stageSourceDir(s.home, "stage", busyboxRootfs(join(work, "rootfs")))).sha256;
  const cmd = ["sh", "-c", "echo persisted by the workload > /data/state.txt && exec httpd -f -p 8080 -h /www"];
  await applied(s, owner, { type: "compute.workload.deploy", imvu: "stage", body: { name: "web", source: { kind: "rootfs", sha256 }, cmd, port: 8080 } });
  await s.compute.settle();
  const written = join(s.home, "compute", s.fabric, "volumes", slug("stage"), "data", "state.txt");
  await waitFor("the workload to write its volume", async () => {
    await s.compute.reconcileNow();
    return existsSync(written) ? true : undefined;
  }, 30_000, 200);
  await applied(s, owner, { type: "compute.snapshot.create", imvu: "stage", body: {} });
  await s.compute.settle();
  const snap = await waitFor("the snapshot to be recorded", async () => s.platform.state.list("compute-snapshot", "stage/")[0]?.[1], 30_000, 100);
  await applied(s, owner, { type: "imvu.exit.request", imvu: "stage", body: {} });
  const dir = join(work, "bundle");
  await writeBundle(s.platform, { imvu: "stage", passphrase: "a passphrase for the test", ownerKel: owner.kel, seenSizes: [], fabric: s.fabric, scryptLog2N: 10 }, dir);
  const env = parseDsse(readFileSync(join(dir, "manifest.json"), "utf8"));
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(countersign(env, owner.id, owner.current.privateKey)));
  const r = verifyBundle(dir, { verifierKey: s.platform.verifierKey });
  assert.deepEqual(r.problems, []);
  const workloads = JSON.parse(readFileSync(join(dir, PATHS.workloads), "utf8")) as { name: string; cmd: string[] }[];
  assert.deepEqual(workloads.map((w) => [w.name, w.cmd]), [["web", cmd]]);
  const kinds = (JSON.parse(readFileSync(join(dir, PATHS.k8s), "utf8")) as { items: { kind: string }[] }).items.map((i) => i.kind);
  for (const k of ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service"]) assert.ok(kinds.includes(k), k);
  const data = spawnSync("tar", ["-xOf", join(dir, PATHS.volume), "state.txt"], { encoding: "utf8" });
  assert.equal(data.status, 0, data.stderr);
  assert.equal(data.stdout, "persisted by the workload\n");
  const hex = snap.sha256.replace(/^sha256:/, "");
  const snapFile = join(dir, "compute", "snapshots", `${hex}.tar`);
  assert.ok(existsSync(snapFile), "the snapshot archive is in the bundle");
  assert.equal(spawnSync("sha256sum", [snapFile], { encoding: "utf8" }).stdout.split(" ")[0], hex, "under its content address");
  const source = join(dir, "compute", "sources", `${sha256}.tar`);
  assert.ok(existsSync(source), "the root file system the workload runs from is in the bundle");
  assert.equal(spawnSync("sha256sum", [source], { encoding: "utf8" }).stdout.split(" ")[0], sha256);
});
