/**
 * The gateway wired to the ledger, with a real workload: a route recorded by a signed command is
 * served within a refresh by the gateway module, in front of the IMVU's own container, with the
 * route-table version; hostile route commands (a host the IMVU does not own, another IMVU's
 * workload, an admin repointing a route without consent) are denied and recorded and change
 * nothing served; private routes need a granted identity's signature; throttling by the slice
 * is visible and reported to the ledger signed by the gateway identity.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { request } from "undici";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { gatewayService, type RunningGateway } from "../../src/platform/services/gateway.ts";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { sweepIfbs } from "../../src/services/net/tc.ts";
import { busyboxRootfs, waitFor } from "../compute/support.ts";
import { act, applied, commandAt, createImvu, deniedBy, openSite, person, type Site } from "../compute/integration-support.ts";

const work = mkdtempSync(join(tmpdir(), "nexus-net-int-"));
let site: Site;
let gw: RunningGateway;
let owner: LocalIdentity;
let rival: LocalIdentity;
let admin: LocalIdentity;
let friend: LocalIdentity;

before(async () => {
  site = await openSite();
  owner = await person(site, "owner");
  rival = await person(site, "rival");
  admin = await person(site, "admin");
  friend = await person(site, "friend");
  assert.equal((await site.platform.submitAsPlatform({ type: "admin.add", body: { identity: admin.id } })).outcome, "applied");
  await createImvu(site, owner, "stage", { requestsPerSec: 5 });
  await createImvu(site, rival, "rival");
  const sha = (await stageSourceDir(site.home, "stage", busyboxRootfs(join(work, "rootfs")))).sha256;
  await applied(site, owner, {
    type: "compute.workload.deploy",
    imvu: "stage",
    body: { name: "web", source: { kind: "rootfs", sha256: sha }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 },
  });
  await site.compute.settle();
  await waitFor("the workload's address", async () => {
    await site.compute.reconcileNow();
    return site.compute.address("stage", "web");
  }, 30_000);
  const ports = { ...DEFAULT_PORTS, gateway: 0, gatewayTls: 0 };
  gw = (await gatewayService.start({ platform: site.platform, config: { host: "127.0.0.1", ports, public: false }, log: () => {}, services: [site.compute] })) as RunningGateway;
});

after(async () => {
  await gw.stop();
  await site.done();
  // The gateway shaped the IMVUs' bridges (docs/net.md, "Kernel shaping"); their ifbs go with them.
  if (process.getuid?.() === 0) await sweepIfbs();
  rmSync(work, { recursive: true, force: true });
});

async function get(host: string, path = "/", headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const r = await request(`http://127.0.0.1:${String(gw.gateway.port)}${path}`, { headers: { host, ...headers } });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}

const route = (over: Record<string, unknown> = {}) => ({
  type: "net.route.add",
  imvu: "stage",
  body: { route: "site", host: "stage.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 8080 }, ...over },
});

test("a public route recorded in the ledger serves the IMVU's workload, with the route-table version", async () => {
  assert.equal((await get("stage.nexus.test")).status, 404, "nothing routed yet");
  const r = await applied(site, owner, route());
  const res = await waitFor("the route to be served", async () => {
    const x = await get("stage.nexus.test");
    return x.status === 200 ? x : undefined;
  }, 10_000);
  assert.match(res.body, /hello from busybox/);
  assert.ok(BigInt(String(res.headers["nexus-route-version"])) > BigInt(r.index), "the table reflects the entry that added the route");
  const unknown = await get("nowhere.nexus.test");
  assert.equal(unknown.status, 404);
  assert.doesNotMatch(unknown.body, /stage|busybox/);
});

test("hostile route commands are denied, recorded, and change nothing served", async () => {
  const before = await get("stage.nexus.test");
  deniedBy(await act(site, owner, route({ route: "steal", host: "rival.nexus.test" })), [8]);
  deniedBy(await act(site, owner, route({ route: "ext", host: "example.org" })), [8]);
  deniedBy(await act(site, rival, { ...route({ route: "x", host: "rival.nexus.test" }), imvu: "rival" }), [2]);
  const silent = await act(site, admin, route({ upstream: { workload: "web", port: 9999 } }));
  deniedBy(silent, [10, 14]);
  const rec = await commandAt(site, silent.index);
  assert.equal(rec.outcome, "denied");
  assert.ok(site.platform.state.list("feed", "stage/").some(([, f]) => f.index === silent.index && f.redirect), "the attempt is in the IMVU's feed as a redirect");
  gw.refresh();
  const after = await get("stage.nexus.test");
  assert.equal(after.status, 200);
  assert.equal(after.body, before.body);
  assert.equal(site.platform.state.get("net-route", "stage/site")?.upstream.port, 8080);
});

test("a private route admits only a granted identity's signed request", async () => {
  await applied(site, owner, route({ route: "admin", host: "stage.nexus.test", pathPrefix: "/admin", kind: "private" }));
  await applied(site, owner, { type: "net.grant.add", imvu: "stage", body: { route: "admin", identity: friend.id } });
  gw.refresh();
  assert.equal((await get("stage.nexus.test", "/admin/")).status, 401);
  const signed = (id: LocalIdentity): Record<string, string> => {
    const url = `http://stage.nexus.test/admin/`;
    const s = signRequest({ method: "GET", url, headers: {} }, { components: ["@method", "@authority", "@path"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey });
    return { "signature-input": s.signatureInput, signature: s.signature };
  };
  assert.equal((await get("stage.nexus.test", "/admin/", signed(rival))).status, 403, "an identity without a grant");
  const ok = await get("stage.nexus.test", "/admin/", signed(friend));
  assert.notEqual(ok.status, 401);
  assert.notEqual(ok.status, 403);
});

test("throttling by the declared slice is visible and reported to the ledger by the gateway identity", async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push((await get("stage.nexus.test")).status);
  assert.ok(statuses.includes(429), `some requests throttled: ${statuses.join(",")}`);
  const refused = await get("stage.nexus.test");
  if (refused.status === 429) {
    assert.equal(refused.headers["nexus-limit"], "requestsPerSec=5");
    assert.ok(refused.headers["retry-after"]);
  }
  await gw.stop();
  const gatewayId = site.platform.serviceIdentity("gateway").id;
  const report = await waitFor("the throttle report", async () => site.platform.state.list("throttle", "stage/gateway/requestsPerSec-")[0]?.[1], 10_000);
  assert.equal(report.limit, "requestsPerSec");
  assert.equal(report.declared, "5");
  const entry = await commandAt(site, report.index);
  assert.equal(entry.actor, gatewayId);
  assert.equal(entry.outcome, "applied");
  // Restart for the hooks that close it again.
  gw = (await gatewayService.start({ platform: site.platform, config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, gateway: 0, gatewayTls: 0 }, public: false }, log: () => {}, services: [site.compute] })) as RunningGateway;
});
