/** The gateway against real clients (undici, curl, node:http2, ws) and a real upstream: routing, kinds, TLS/SNI/HTTP/2, WebSocket, metering. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { connect as h2connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import WebSocket from "ws";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { buildRegionTable, startGateway, type Gateway, type UsageReport } from "../../src/services/net/index.ts";
import { newIdentity, signedHeaders, startUpstream, table, waitFor, type Upstream } from "./support.ts";

const sh = promisify(execFile);
/** Runs a client program asynchronously (the gateway shares this event loop). */
const run = async (cmd: string, args: string[]): Promise<string> => (await sh(cmd, args, { encoding: "utf8" })).stdout;

/** `s` with the character at `i` replaced by a different base64url character. */
const flipChar = (s: string, i: number): string => `${s.slice(0, i)}${s[i] === "A" ? "B" : "A"}${s.slice(i + 1)}`;

const alice = newIdentity();
const mallory = newIdentity();

describe("gateway: routing, kinds, TLS and HTTP/2, WebSocket, metering", () => {
  let up: Upstream;
  let api: Upstream;
  let gw: Gateway;
  let certDir: string;
  const usage: UsageReport[] = [];
  let base = "";

  before(async () => {
    up = await startUpstream("web");
    api = await startUpstream("api");
    certDir = mkdtempSync(join(tmpdir(), "nexus-net-certs-"));
    const routes = table(41, [
      { id: "r-web", imvu: "imvu-a", host: "Stage.Nexus.Test", kind: "public", upstream: { host: "127.0.0.1", port: up.port } },
      { id: "r-api", imvu: "imvu-a", host: "stage.nexus.test", pathPrefix: "/api", kind: "public", upstream: { host: "127.0.0.1", port: api.port } },
      { id: "r-priv", imvu: "imvu-b", host: "private.nexus.test", kind: "private", grants: [alice.id], upstream: { host: "127.0.0.1", port: up.port } },
      { id: "r-fr", imvu: "imvu-c", host: "fr.nexus.test", kind: "restricted", allowRegions: ["FR"], upstream: { host: "127.0.0.1", port: up.port } },
      { id: "r-de", imvu: "imvu-c", host: "de.nexus.test", kind: "restricted", allowRegions: ["DE"], upstream: { host: "127.0.0.1", port: up.port } },
      { id: "r-idn", imvu: "imvu-d", host: "bücher.nexus.test", kind: "public", upstream: { host: "127.0.0.1", port: api.port } },
    ]);
    const keys = new Map([[alice.id, alice.keys.publicKey], [mallory.id, mallory.keys.publicKey]]);
    const sessionKey = generateEd25519();
    gw = await startGateway({
      port: 0,
      tls: { port: 0, certDir },
      routes,
      regions: buildRegionTable([{ cidr: "127.0.0.0/8", region: "FR" }, { cidr: "::1/128", region: "FR" }]),
      resolveKey: (id) => keys.get(id),
      session: { signer: { keyId: "gw1", ...sessionKey } },
      onUsage: (u) => usage.push(u),
      usageIntervalMs: 200,
    });
    base = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw.close();
    await up.close();
    await api.close();
    rmSync(certDir, { recursive: true, force: true });
  });

  it("serves a public route by Host (case, port, final dot folded) with nexus-route-version", async () => {
    for (const host of ["stage.nexus.test", "STAGE.nexus.TEST", `stage.nexus.test:${gw.port}`, "stage.nexus.test."]) {
      const r = await request(`${base}/index.html?q=1`, { headers: { host } });
      assert.equal(r.statusCode, 200, host);
      assert.equal(r.headers["nexus-route-version"], "41");
      const body = (await r.body.json()) as { upstream: string; url: string; host: string };
      assert.equal(body.upstream, "web");
      assert.equal(body.url, "/index.html?q=1");
      assert.equal(body.host, "stage.nexus.test");
    }
  });

  it("picks the longest path prefix at a segment boundary and forwards the normalised path", async () => {
    const ask = async (path: string): Promise<{ upstream: string; url: string }> => {
      const r = await request(`${base}${path}`, { headers: { host: "stage.nexus.test" } });
      assert.equal(r.statusCode, 200, path);
      return (await r.body.json()) as { upstream: string; url: string };
    };
    assert.equal((await ask("/api")).upstream, "api");
    assert.equal((await ask("/api/v1/x")).upstream, "api");
    assert.equal((await ask("/apix")).upstream, "web");
    const merged = await ask("//api///v1//%7Euser");
    assert.deepEqual(merged, { ...merged, upstream: "api", url: "/api/v1/~user" });
  });

  it("answers an unknown host 404 with a body that names nothing", async () => {
    const r = await request(`${base}/`, { headers: { host: "nope.nexus.test" } });
    assert.equal(r.statusCode, 404);
    const text = await r.body.text();
    assert.equal(text, '{"error":{"code":"NET_NOT_FOUND"}}');
    assert.equal(r.headers["x-up"], undefined);
  });

  it("routes an IDN host configured in Unicode by its A-label only", async () => {
    const ok = await request(`${base}/`, { headers: { host: "xn--bcher-kva.nexus.test" } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  });

  it("serves curl over HTTP/1.1", async () => {
    const out = await run("curl", ["-s", "-i", "-H", "Host: stage.nexus.test", `${base}/api/hello`]);
    assert.match(out, /^HTTP\/1\.1 200/);
    assert.match(out, /nexus-route-version: 41/i);
    assert.match(out, /"upstream":"api"/);
  });

  it("serves HTTP/2 over TLS with a per-host certificate chosen by SNI (curl and node:http2)", async () => {
    const out = await run(
      "curl",
      ["-s", "-i", "-k", "--http2", "--resolve", `stage.nexus.test:${gw.tlsPort}:127.0.0.1`, "-w", "\n%{http_version} %{certs}", `https://stage.nexus.test:${gw.tlsPort}/api/x`],
    );
    assert.match(out, /^HTTP\/2 200/);
    assert.match(out, /nexus-route-version: 41/);
    const certInfo = await run("sh", ["-c", `curl -s -k -v --resolve stage.nexus.test:${gw.tlsPort}:127.0.0.1 https://stage.nexus.test:${gw.tlsPort}/ -o /dev/null 2>&1 | grep -i 'subject:'`]);
    assert.match(certInfo, /CN=stage\.nexus\.test/);
    assert.equal(statSync(join(certDir, "stage.nexus.test.key.pem")).mode & 0o777, 0o600);

    const session = h2connect(`https://127.0.0.1:${gw.tlsPort}`, { servername: "stage.nexus.test", rejectUnauthorized: false });
    const s = session.request({ ":path": "/x", ":authority": "stage.nexus.test" });
    const headers = await new Promise<Record<string, unknown>>((r) => s.on("response", (h) => r(h)));
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString()));
    await new Promise((r) => s.on("end", r));
    session.close();
    assert.equal(headers[":status"], 200);
    assert.equal(headers["nexus-route-version"], "41");
    assert.match(text, /"upstream":"web"/);

    const http1 = await run("curl", ["-s", "-i", "-k", "--http1.1", "--resolve", `stage.nexus.test:${gw.tlsPort}:127.0.0.1`, `https://stage.nexus.test:${gw.tlsPort}/`]);
    assert.match(http1, /^HTTP\/1\.1 200/);
  });

  it("refuses a private route without credentials, with a non-granted signer, with a forged signature; accepts a granted one", async () => {
    const url = `http://private.nexus.test:${gw.port}/secret`;
    const send = (headers: Record<string, string>) => request(`${base}/secret`, { headers: { host: `private.nexus.test:${gw.port}`, ...headers } });
    const before = up.seen.length;
    const none = await send({});
    assert.equal(none.statusCode, 401);
    assert.match(await none.body.text(), /NET_AUTH_REQUIRED/);
    const notGranted = await send(signedHeaders(mallory, "GET", url));
    assert.equal(notGranted.statusCode, 403);
    assert.match(await notGranted.body.text(), /NET_NOT_GRANTED/);
    const forged = signedHeaders(mallory, "GET", url);
    forged["signature-input"] = forged["signature-input"]!.replace(mallory.id, alice.id);
    const f = await send(forged);
    assert.equal(f.statusCode, 401);
    assert.match(await f.body.text(), /NET_SIGNATURE_INVALID/);
    const otherPath = await send(signedHeaders(alice, "GET", `http://private.nexus.test:${gw.port}/elsewhere`));
    assert.equal(otherPath.statusCode, 401, "a signature covers the path");
    await otherPath.body.dump();
    const old = await send(signedHeaders(alice, "GET", url, Math.floor(Date.now() / 1000) - 3600));
    assert.equal(old.statusCode, 401, "too old");
    await old.body.dump();
    assert.equal(up.seen.length, before, "nothing refused reached the upstream");
    const ok = await send(signedHeaders(alice, "GET", url));
    assert.equal(ok.statusCode, 200);
    const body = (await ok.body.json()) as { identity: string };
    assert.equal(body.identity, alice.id, "the upstream learns the identity from the gateway");
    const seen = up.seen.at(-1);
    assert.equal(seen?.headers.signature, undefined, "signature fields stop at the gateway");
  });

  it("strips a client's own nexus-identity and forwarding fields", async () => {
    const r = await request(`${base}/x`, { headers: { host: "stage.nexus.test", "nexus-identity": alice.id, "x-forwarded-for": "203.0.113.9" } });
    const body = (await r.body.json()) as { identity: string | null };
    assert.equal(body.identity, null);
    assert.equal(up.seen.at(-1)?.headers["x-forwarded-for"], "127.0.0.1");
  });

  it("issues a session token on POST /.nexus/session to a granted signer, then accepts it (header or cookie)", async () => {
    const url = `http://private.nexus.test:${gw.port}/.nexus/session`;
    const r = await request(`${base}/.nexus/session`, { method: "POST", headers: { host: `private.nexus.test:${gw.port}`, ...signedHeaders(alice, "POST", url) } });
    assert.equal(r.statusCode, 200);
    const { token } = (await r.body.json()) as { token: string };
    assert.match(String(r.headers["set-cookie"]), /^nexus-session=nxs1\./);
    const byHeader = await request(`${base}/a`, { headers: { host: "private.nexus.test", authorization: `Bearer ${token}` } });
    assert.equal(byHeader.statusCode, 200);
    assert.equal(((await byHeader.body.json()) as { identity: string }).identity, alice.id);
    const byCookie = await request(`${base}/a`, { headers: { host: "private.nexus.test", cookie: `theme=dark; nexus-session=${token}` } });
    assert.equal(byCookie.statusCode, 200);
    await byCookie.body.dump();
    assert.equal(up.seen.at(-1)?.headers.cookie, "theme=dark", "the session cookie stops at the gateway");
    const otherHost = await request(`${base}/a`, { headers: { host: "stage.nexus.test", authorization: `Bearer ${token}` } });
    assert.equal(otherHost.statusCode, 200, "a public route ignores it");
    await otherHost.body.dump();
    const tampered = await request(`${base}/a`, { headers: { host: "private.nexus.test", authorization: `Bearer ${flipChar(token, token.length - 10)}` } });
    assert.equal(tampered.statusCode, 401);
    assert.match(await tampered.body.text(), /NET_SESSION_INVALID/);
    const mal = await request(`${base}/.nexus/session`, { method: "POST", headers: { host: "private.nexus.test", ...signedHeaders(mallory, "POST", "http://private.nexus.test/.nexus/session") } });
    assert.equal(mal.statusCode, 403);
    await mal.body.dump();
  });

  it("enforces restricted routes' region policy: 451 outside the allowed regions", async () => {
    const fr = await request(`${base}/`, { headers: { host: "fr.nexus.test" } });
    assert.equal(fr.statusCode, 200);
    await fr.body.dump();
    const de = await request(`${base}/`, { headers: { host: "de.nexus.test" } });
    assert.equal(de.statusCode, 451);
    assert.match(await de.body.text(), /NET_REGION_REFUSED/);
  });

  it("passes a WebSocket upgrade through to the upstream, with the route version on the 101", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/chat`, { headers: { host: "stage.nexus.test" } });
    let version: string | undefined;
    ws.on("upgrade", (res) => (version = String(res.headers["nexus-route-version"])));
    const msgs: string[] = [];
    ws.on("message", (m: Buffer) => msgs.push(m.toString()));
    await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)));
    ws.send("ping");
    await waitFor(() => msgs.length >= 2);
    ws.close();
    assert.equal(version, "41");
    assert.deepEqual(JSON.parse(msgs[0]!), { hello: "web", url: "/chat", identity: null });
    assert.equal(msgs[1], "web:ping");
    const tls = new WebSocket(`wss://127.0.0.1:${gw.tlsPort}/secure`, { headers: { host: "stage.nexus.test" }, rejectUnauthorized: false, ...({ servername: "stage.nexus.test" } as object) });
    const tlsMsgs: string[] = [];
    tls.on("message", (m: Buffer) => tlsMsgs.push(m.toString()));
    await new Promise((r, j) => (tls.once("open", r), tls.once("error", j)));
    await waitFor(() => tlsMsgs.length >= 1);
    tls.close();
    assert.equal(JSON.parse(tlsMsgs[0]!).url, "/secure", "over TLS (HTTP/1.1 by ALPN) too");
    const refused = new WebSocket(`ws://127.0.0.1:${gw.port}/chat`, { headers: { host: "private.nexus.test" } });
    const status = await new Promise<number>((r) => refused.on("unexpected-response", (_q, res) => r(res.statusCode ?? 0)));
    assert.equal(status, 401);
  });

  it("meters requests, bytes and status classes per route and reports usage deltas", async () => {
    const r = await request(`${base}/big?n=5000`, { method: "POST", body: "x".repeat(300), headers: { host: "stage.nexus.test" } });
    await r.body.dump();
    const m = await gw.meter();
    const web = m.routes["r-web"]!;
    assert.ok(web.requests >= 1 && web.s2xx >= 1);
    assert.ok(web.bytesIn >= 300 && web.bytesOut >= 5000);
    assert.ok((m.routes["r-priv"]?.denied ?? 0) >= 3);
    assert.ok(m.gateway.notFound >= 1);
    await waitFor(() => usage.some((u) => (u.routes["r-web"]?.bytesOut ?? 0) >= 5000));
    assert.equal(usage[0]?.version, "41");
  });

  it("adopts a new table atomically: version header follows, removed hosts 404", async () => {
    const prev = gw.routes();
    gw.setRoutes(table(42, [{ id: "r-web", imvu: "imvu-a", host: "stage.nexus.test", kind: "public", upstream: { host: "127.0.0.1", port: up.port } }]));
    const r = await request(`${base}/`, { headers: { host: "stage.nexus.test" } });
    assert.equal(r.headers["nexus-route-version"], "42");
    await r.body.dump();
    const gone = await request(`${base}/`, { headers: { host: "fr.nexus.test" } });
    assert.equal(gone.statusCode, 404);
    await gone.body.dump();
    gw.setRoutes(prev);
  });
});
