/**
 * Without podman the compute service starts degraded: it says so in its endpoints, the stack keeps
 * running, and every compute command is answered in the ledger with COMPUTE_PODMAN_MISSING (a
 * rejected workload, a failed operation) instead of silently doing nothing.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { computeRoutes } from "../../src/api/routes/compute.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { hasSource } from "../../src/services/compute/sources.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { computeOpKey } from "../../src/core/pipeline/compute-state.ts";
import { DEGRADED_ENDPOINT } from "../../src/platform/services/compute.ts";
import { applied, createImvu, openSite, person, type Site } from "./integration-support.ts";

let site: Site;
let owner: LocalIdentity;

before(async () => {
  site = await openSite({ podman: () => ({ available: false, version: undefined, message: "podman is not installed" }) });
  owner = await person(site, "owner");
  await createImvu(site, owner, "stage");
});
after(() => site.done());

test("the endpoint says podman is missing and how to install it", () => {
  assert.equal(site.compute.degraded, "podman is not installed");
  assert.deepEqual(site.compute.endpoints, [DEGRADED_ENDPOINT]);
  assert.equal(site.compute.fabric, undefined);
  assert.ok(site.logs.some((l) => l.includes("COMPUTE_PODMAN_MISSING")));
});

test("a deploy is rejected and an operation fails, both recorded with COMPUTE_PODMAN_MISSING", async () => {
  await applied(site, owner, { type: "compute.workload.deploy", imvu: "stage", body: { name: "web", source: { kind: "image", ref: "localhost/x:1" } } });
  const snap = await applied(site, owner, { type: "compute.snapshot.create", imvu: "stage", body: {} });
  await site.compute.settle();
  const rejected = site.platform.state.list("compute-event", "stage/rejected-web-").map(([, e]) => e.code);
  assert.deepEqual(rejected, ["COMPUTE_PODMAN_MISSING"]);
  const op = site.platform.state.get("compute-op", computeOpKey("stage", snap.index));
  assert.equal(op?.status, "failed");
  assert.equal(op.code, "COMPUTE_PODMAN_MISSING");
  await assert.rejects(site.compute.status("stage"), (e: unknown) => (e as { code?: string }).code === "COMPUTE_PODMAN_MISSING");
});

test("a remove whose snapshot cannot be taken does not remove the workload (gate 12)", async () => {
  const r = await applied(site, owner, { type: "compute.workload.remove", imvu: "stage", body: { name: "web" } });
  await site.compute.settle();
  assert.equal(site.platform.state.get("compute-op", computeOpKey("stage", r.index))?.status, "failed");
  const w = site.platform.state.get("compute-workload", "stage/web");
  assert.ok(w, "still declared");
  assert.equal(w.removingIndex, undefined);
});

describe("the compute API module (computeRoutes)", () => {
  const get = async (app: FastifyInstance, path: string, who?: LocalIdentity, method: "GET" | "PUT" = "GET", body?: Buffer) => {
    const url = `http://localhost${path}`;
    const headers: Record<string, string> = { host: "localhost", ...(body ? { "content-type": "application/x-tar" } : {}) };
    if (who) {
      const sig = signRequest({ method, url, headers }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: who.id, alg: "ed25519" }, privateKey: who.current.privateKey });
      headers["signature-input"] = sig.signatureInput;
      headers.signature = sig.signature;
    }
    const r = await app.inject({ method, url: path, headers, ...(body ? { payload: body } : {}) });
    return { status: r.statusCode, json: r.json() as Record<string, unknown> & { error?: { code: string } } };
  };

  test("reads are signed and filtered to the caller's IMVUs; uploads are bound by their SHA-256; degraded runtime reads say why", async () => {
    const rival = await person(site, "rival");
    const app = await buildApi({ ledger: site.platform.ledger, modules: [computeRoutes({ platform: site.platform, compute: site.compute })] });
    try {
      assert.equal((await get(app, "/v1/compute/status")).json.available, false);
      assert.equal((await get(app, "/v1/compute/imvus/stage/workloads")).status, 401);
      assert.equal((await get(app, "/v1/compute/imvus/stage/workloads", rival)).status, 404, "another's IMVU answers as if absent");
      assert.equal((await get(app, "/v1/compute/imvus/nope/workloads", owner)).status, 404);
      const mine = await get(app, "/v1/compute/imvus/stage/workloads", owner);
      assert.equal(mine.status, 200);
      assert.deepEqual((mine.json.workloads as { name: string }[]).map((w) => w.name), ["web"]);
      const logs = await get(app, "/v1/compute/imvus/stage/workloads/web/logs", owner);
      assert.equal(logs.status, 503);
      assert.equal(logs.json.error?.code, "COMPUTE_PODMAN_MISSING");
      const m = await get(app, "/v1/compute/imvus/stage/manifests", owner);
      assert.equal(m.status, 200);
      assert.ok((m.json.items as { kind: string }[]).some((i) => i.kind === "Deployment"));
      const tar = Buffer.alloc(1024);
      const sha = createHash("sha256").update(tar).digest("hex");
      assert.equal((await get(app, `/v1/compute/imvus/stage/sources/${sha}`, owner, "PUT", tar)).status, 201);
      assert.ok(hasSource(site.home, "stage", sha));
      assert.equal((await get(app, `/v1/compute/imvus/stage/sources/${sha}`, owner, "PUT", tar)).status, 200, "idempotent");
      const wrong = await get(app, `/v1/compute/imvus/stage/sources/${"0".repeat(64)}`, owner, "PUT", tar);
      assert.equal(wrong.json.error?.code, "COMPUTE_SOURCE_MISMATCH");
      assert.equal(hasSource(site.home, "stage", "0".repeat(64)), false);
      assert.equal((await get(app, `/v1/compute/imvus/stage/sources/${sha}`, rival, "PUT", tar)).status, 404, "no upload into another's IMVU");
    } finally {
      await app.close();
    }
  });
});
