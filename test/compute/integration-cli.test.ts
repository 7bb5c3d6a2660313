/**
 * The compute CLI verbs against a real API (commands, ledger and the compute routes) and the compute
 * service on podman: `--rootfs DIR` is uploaded as its deterministic tar and bound by SHA-256,
 * reads are signed and filtered to the caller's IMVUs (another creator gets 404), a deploy beyond
 * the envelope exits 1 with GATE_DENIED naming gate 7.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { commandRoutes } from "../../src/api/routes/commands.ts";
import { computeRoutes } from "../../src/api/routes/compute.ts";
import { createIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { busyboxRootfs, httpGet, waitFor } from "./support.ts";
import { applied, createImvu, openSite, type Site } from "./integration-support.ts";

const work = mkdtempSync(join(tmpdir(), "nexus-compute-cli-"));
let site: Site;
let api: FastifyInstance;
let url: string;
let owner: LocalIdentity;

async function register(keyring: string, name: string): Promise<LocalIdentity> {
  mkdirSync(join(keyring, ".."), { recursive: true, mode: 0o700 });
  const id = createIdentity(keyring, { name, makeDefault: true });
  await applied(site, id, { type: "identity.inception", body: { inception: id.kel[0] } });
  return id;
}

before(async () => {
  site = await openSite();
  api = await buildApi({ ledger: site.platform.ledger, modules: [commandRoutes({ pipeline: site.platform.pipeline }), computeRoutes({ platform: site.platform, compute: site.compute })] });
  await api.listen({ host: "127.0.0.1", port: 0 });
  const addr = api.server.address();
  url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  owner = await register(join(work, "owner", "keyring"), "owner");
  await register(join(work, "rival", "keyring"), "rival");
  await createImvu(site, owner, "stage");
});
after(async () => {
  await api.close();
  await site.done();
  rmSync(work, { recursive: true, force: true });
});

function nexus(who: "owner" | "rival", args: string[]): Promise<{ code: number; out: string; err: string }> {
  const env = {
    ...process.env,
    NEXUS_API: url,
    NEXUS_KEYRING: join(work, who, "keyring"),
    NEXUS_TRUST_DIR: join(work, who, "trust"),
    NEXUS_VERIFIER_KEY: site.platform.verifierKey,
  };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], { env });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

test("deploy --rootfs uploads the tar, binds its SHA-256 and runs; list, logs, snapshot, manifests read back", async () => {
  const dir = busyboxRootfs(join(work, "rootfs"));
  const d = await nexus("owner", ["compute", "deploy", "--imvu", "stage", "--name", "web", "--rootfs", dir, "--port", "8080", "--memory", "64M", "--json", "--", "httpd", "-f", "-p", "8080", "-h", "/www"]);
  assert.equal(d.code, 0, d.err);
  assert.equal(JSON.parse(d.out).outcome, "applied");
  const w = site.platform.state.get("compute-workload", "stage/web");
  assert.equal(w?.source.kind, "rootfs");
  assert.deepEqual(w.cmd, ["httpd", "-f", "-p", "8080", "-h", "/www"]);
  await site.compute.settle();
  const port = await waitFor("the workload's address", async () => {
    await site.compute.reconcileNow();
    return site.compute.address("stage", "web")?.port;
  }, 20_000, 200);
  assert.match((await waitFor("an answer", async () => httpGet(port))).body, /hello from busybox/);
  const l = await nexus("owner", ["compute", "list", "--imvu", "stage", "--json"]);
  const v = JSON.parse(l.out) as { workloads: { name: string; runtime: { state: string; address?: string } | null }[] };
  assert.equal(v.workloads.find((x) => x.name === "web")?.runtime?.address, `127.0.0.1:${port}`);
  const logs = await nexus("owner", ["compute", "logs", "--imvu", "stage", "--name", "web"]);
  assert.equal(logs.code, 0, logs.err);
  const snap = await nexus("owner", ["compute", "snapshot", "--imvu", "stage", "--json"]);
  assert.equal(snap.code, 0, snap.err);
  const digest = (JSON.parse(snap.out) as { snapshot: string }).snapshot;
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(site.platform.state.get("compute-snapshot", `stage/${digest.slice(7)}`));
  const m = await nexus("owner", ["compute", "manifests", "--imvu", "stage"]);
  assert.equal(m.code, 0, m.err);
  const kinds = (JSON.parse(m.out) as { items: { kind: string }[] }).items.map((i) => i.kind);
  for (const k of ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "PersistentVolumeClaim", "Deployment", "Service"]) assert.ok(kinds.includes(k), k);
});

test("another creator sees nothing (404) and a deploy beyond the envelope exits 1 with GATE_DENIED (gate 7)", async () => {
  const peek = await nexus("rival", ["compute", "list", "--imvu", "stage"]);
  assert.notEqual(peek.code, 0);
  assert.match(peek.err, /NOT_FOUND/);
  const big = await nexus("owner", ["compute", "deploy", "--imvu", "stage", "--name", "big", "--image", "localhost/none:1", "--memory", "1G"]);
  assert.equal(big.code, 1, big.err);
  assert.match(big.err, /GATE_DENIED.*gate 7/);
  const bad = await nexus("owner", ["compute", "deploy", "--imvu", "stage", "--name", "x", "--image", "a", "--app", work]);
  assert.equal(bad.code, 2, "two sources is bad input");
});
