/**
 * Hostile input over raw TCP (and HTTP/2): Host and :authority spoofing, request smuggling
 * (conflicting Content-Length / Transfer-Encoding, obs-fold), path tricks, oversized headers,
 * slowloris on headers and body, too many connections, garbage. Each is refused with its code,
 * none reaches an upstream it should not, and the gateway keeps serving.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { connect as h2connect } from "node:http2";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { request } from "undici";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { startGateway, type Gateway } from "../../src/services/net/index.ts";
import { newIdentity, rawExchange, rawStatus, startUpstream, table, waitFor, type Upstream } from "./support.ts";

const alice = newIdentity();
/** Resolves when the socket closes (events.once would reject on a reset). */
const closed = (s: Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once("close", () => r())));

describe("gateway: hostile input", () => {
  let pub: Upstream;
  let priv: Upstream;
  let gw: Gateway;
  let certDir: string;
  let port = 0;

  before(async () => {
    pub = await startUpstream("public");
    priv = await startUpstream("private");
    certDir = mkdtempSync(join(tmpdir(), "nexus-net-hostile-"));
    gw = await startGateway({
      port: 0,
      tls: { port: 0, certDir },
      routes: table(7, [
        { id: "pub", imvu: "imvu-a", host: "stage.nexus.test", kind: "public", upstream: { host: "127.0.0.1", port: pub.port } },
        { id: "priv", imvu: "imvu-b", host: "private.nexus.test", kind: "private", grants: [alice.id], upstream: { host: "127.0.0.1", port: priv.port } },
      ]),
      resolveKey: (id) => (id === alice.id ? alice.keys.publicKey : undefined),
      session: { signer: { keyId: "gw", ...generateEd25519() } },
      limits: { headersTimeoutMs: 400, requestTimeoutMs: 800, headerBytesMax: 4096, connectionsMax: 40 },
    });
    port = gw.port ?? 0;
  });
  after(async () => {
    await gw.close();
    await pub.close();
    await priv.close();
    rmSync(certDir, { recursive: true, force: true });
  });

  const privateUntouched = (): void => assert.equal(priv.seen.length, 0, "the private upstream was never reached");
  const expectCode = (text: string, status: number, code: string): void => {
    assert.equal(rawStatus(text), status, text.slice(0, 200));
    assert.ok(text.includes(code), `${code} in ${text.slice(0, 300)}`);
  };

  it("refuses two Host fields, a Host-less HTTP/1.1 request, and an absolute URI naming another host", async () => {
    expectCode(await rawExchange(port, "GET / HTTP/1.1\r\nHost: stage.nexus.test\r\nHost: private.nexus.test\r\n\r\n"), 400, "NET_REQUEST_INVALID");
    expectCode(await rawExchange(port, "GET / HTTP/1.1\r\nHost: private.nexus.test\r\nHost: stage.nexus.test\r\n\r\n"), 400, "NET_REQUEST_INVALID");
    assert.equal(rawStatus(await rawExchange(port, "GET / HTTP/1.1\r\n\r\n")), 400);
    expectCode(await rawExchange(port, "GET http://private.nexus.test/x HTTP/1.1\r\nHost: stage.nexus.test\r\n\r\n"), 400, "NET_REQUEST_INVALID");
    const same = await rawExchange(port, "GET http://stage.nexus.test/abs HTTP/1.1\r\nHost: stage.nexus.test\r\nConnection: close\r\n\r\n");
    assert.equal(rawStatus(same), 200, "an absolute URI that agrees with Host is served");
    assert.equal(pub.seen.at(-1)?.url, "/abs");
    expectCode(await rawExchange(port, "GET / HTTP/1.1\r\nHost: private.nexus.test@stage.nexus.test\r\n\r\n"), 400, "NET_HOST_INVALID");
    expectCode(await rawExchange(port, "GET / HTTP/1.1\r\nHost: stage.nexus.test..\r\n\r\n"), 400, "NET_HOST_INVALID");
    expectCode(await rawExchange(port, "GET / HTTP/1.1\r\nHost: stage.nexus.test:99999\r\n\r\n"), 400, "NET_HOST_INVALID");
    privateUntouched();
  });

  it("refuses HTTP/2 requests whose :authority and Host differ", async () => {
    const session = h2connect(`https://127.0.0.1:${gw.tlsPort}`, { servername: "stage.nexus.test", rejectUnauthorized: false });
    const s = session.request({ ":path": "/", ":authority": "stage.nexus.test", host: "private.nexus.test" });
    const h = await new Promise<Record<string, unknown>>((r) => s.on("response", (x) => r(x)));
    s.resume();
    await once(s, "end");
    session.close();
    assert.equal(h[":status"], 400);
    privateUntouched();
  });

  it("refuses smuggling: Content-Length with Transfer-Encoding, two Content-Lengths, obs-fold, bad chunking", async () => {
    const smuggled = "GET /admin HTTP/1.1\r\nHost: private.nexus.test\r\n\r\n";
    const cases = [
      `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nContent-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello${smuggled}`,
      `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${smuggled}`,
      `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${smuggled}`,
      `GET / HTTP/1.1\r\nHost: stage.nexus.test\r\nX-Folded: a\r\n b\r\n\r\n${smuggled}`,
      `GET / HTTP/1.1\r\nHost: stage.nexus.test\r\n Host: private.nexus.test\r\n\r\n`,
      `GET / HTTP/1.1\nHost: stage.nexus.test\n\n${smuggled}`,
    ];
    for (const c of cases) {
      const out = await rawExchange(port, c);
      assert.equal(rawStatus(out), 400, JSON.stringify(c.slice(0, 120)));
      assert.ok(!out.includes('"upstream":"private"'), c);
    }
    // A chunk-size error is found after the head was admitted: the exchange is cut (no answer at
    // all), the upstream's half-sent request aborted, and the bytes after it never parsed.
    const badChunk = await rawExchange(port, `POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhi\r\n0\r\n\r\n${smuggled}`);
    assert.ok([0, 400].includes(rawStatus(badChunk)), badChunk);
    assert.ok(!badChunk.includes("200 OK"));
    privateUntouched();
  });

  it("refuses path traversal, encoded slashes, double encoding, NUL and non-ASCII before any upstream", async () => {
    const seenBefore = pub.seen.length;
    const paths = [
      "/../etc/passwd", "/a/../../b", "/a/./b", "/%2e%2e/x", "/%2E%2e/x", "/.%2e/x", "/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/%252e%252e/x",
      "/%25", "/a%00b", "/a?x=%00", "/\u00e9t\u00e9", "/%C0%AE%C0%AE/x", "/a%zz", "/a b",
    ];
    for (const p of paths) {
      const out = await rawExchange(port, Buffer.from(`GET ${p} HTTP/1.1\r\nHost: stage.nexus.test\r\nConnection: close\r\n\r\n`, "utf8"));
      assert.equal(rawStatus(out), 400, p);
    }
    assert.equal(pub.seen.length, seenBefore, "no refused path reached the upstream");
  });

  it("answers oversized header sections 431 (NET_HEADERS_TOO_LARGE) and stays up", async () => {
    const big = `GET / HTTP/1.1\r\nHost: stage.nexus.test\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`;
    expectCode(await rawExchange(port, big), 431, "NET_HEADERS_TOO_LARGE");
    const many = `GET / HTTP/1.1\r\nHost: stage.nexus.test\r\n${Array.from({ length: 300 }, (_, i) => `X-${i}: 1\r\n`).join("")}\r\n`;
    assert.ok([400, 431].includes(rawStatus(await rawExchange(port, many))));
    const ok = await request(`http://127.0.0.1:${port}/`, { headers: { host: "stage.nexus.test" } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  });

  it("closes slowloris connections: header section and body each get their deadline (408)", async () => {
    const slowHead = connect(port, "127.0.0.1");
    slowHead.on("error", () => undefined);
    let headOut = "";
    slowHead.on("data", (d: Buffer) => (headOut += d.toString()));
    await once(slowHead, "connect");
    slowHead.write("GET / HTTP/1.1\r\nHost: stage.nexus.test\r\n");
    const t0 = Date.now();
    const tick = setInterval(() => slowHead.writable && slowHead.write("X-a: b\r\n"), 100);
    await closed(slowHead);
    clearInterval(tick);
    assert.ok(Date.now() - t0 < 5_000, "closed within the header deadline and the check interval");
    assert.ok(headOut === "" || rawStatus(headOut) === 408, headOut);

    const slowBody = connect(port, "127.0.0.1");
    slowBody.on("error", () => undefined);
    let bodyOut = "";
    slowBody.on("data", (d: Buffer) => (bodyOut += d.toString()));
    await once(slowBody, "connect");
    slowBody.write("POST / HTTP/1.1\r\nHost: stage.nexus.test\r\nContent-Length: 1000\r\n\r\nabc");
    const t1 = Date.now();
    const drip = setInterval(() => slowBody.writable && slowBody.write("x"), 100);
    await closed(slowBody);
    clearInterval(drip);
    assert.ok(Date.now() - t1 < 6_000, "closed within the request deadline");
    assert.ok(bodyOut === "" || [408, 502].includes(rawStatus(bodyOut)), bodyOut.slice(0, 100));
  });

  it("closes connections beyond connectionsMax at accept, and serves again once they go", async () => {
    const seenBefore = pub.seen.length;
    let closedCount = 0;
    let answered = 0;
    const held = Array.from({ length: 60 }, () => {
      const s = connect(port, "127.0.0.1");
      s.on("error", () => undefined);
      s.on("close", () => closedCount++);
      s.on("data", () => answered++);
      return s;
    });
    try {
      await waitFor(() => closedCount >= 20, 8_000);
      assert.equal(answered, 0);
      assert.equal(pub.seen.length, seenBefore);
    } finally {
      for (const s of held) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
    const ok = await request(`http://127.0.0.1:${port}/`, { headers: { host: "stage.nexus.test" } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    assert.ok((await gw.meter()).gateway.connectionsRefused >= 1);
  });

  it("survives random garbage on raw sockets and keeps serving", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.boolean(), async (bytes, asRequest) => {
        const data = asRequest ? Buffer.concat([Buffer.from("GET /"), bytes, Buffer.from(" HTTP/1.1\r\nHost: stage.nexus.test\r\n\r\n")]) : Buffer.from(bytes);
        const out = await rawExchange(port, data, 300);
        assert.ok(!out.includes('"upstream":"private"'));
      }),
      { numRuns: 40 },
    );
    const ok = await request(`http://127.0.0.1:${port}/`, { headers: { host: "stage.nexus.test" } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    privateUntouched();
  });
});
