/** Shared pieces of the gateway tests: a real upstream (HTTP + WebSocket echo), identities, tables, raw sockets. */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { connect } from "node:net";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";
import { generateEd25519, type Ed25519KeyPair } from "../../src/core/crypto/ed25519.ts";
import { base32LowerNoPad } from "../../src/core/identity/id.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { buildRouteTable, type RouteInput, type RouteTable, type SliceInput } from "../../src/services/net/index.ts";

/** What the upstream saw of one request. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly bodyBytes: number;
}

/** A real upstream: answers JSON describing the request; `/big?n=` sends n bytes; `/slow?ms=` waits; WebSocket echo. */
export interface Upstream {
  readonly port: number;
  readonly name: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** Starts an upstream on a free loopback port. */
export async function startUpstream(name = "up"): Promise<Upstream> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let n = 0;
    req.on("data", (d: Buffer) => (n += d.length));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, bodyBytes: n });
      const u = new URL(req.url ?? "/", "http://x");
      if (u.pathname.endsWith("/big")) {
        const size = Number(u.searchParams.get("n") ?? "0");
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(size) });
        res.end(Buffer.alloc(size, 0x61));
        return;
      }
      const reply = (): void => {
        const body = JSON.stringify({ upstream: name, method: req.method, url: req.url, host: req.headers.host, identity: req.headers["nexus-identity"] ?? null, bodyBytes: n });
        res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), connection: "keep-alive", "x-up": name });
        res.end(body);
      };
      if (u.pathname.endsWith("/slow")) setTimeout(reply, Number(u.searchParams.get("ms") ?? "100"));
      else reply();
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws, req) => {
    ws.send(JSON.stringify({ hello: name, url: req.url, identity: req.headers["nexus-identity"] ?? null }));
    ws.on("message", (m: Buffer) => ws.send(`${name}:${m.toString()}`));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const a = server.address();
  const port = typeof a === "object" && a ? a.port : 0;
  return {
    port,
    name,
    seen,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A test identity: a syntactically valid id and an Ed25519 key pair. */
export interface TestIdentity {
  readonly id: string;
  readonly keys: Ed25519KeyPair;
}

/** A fresh identity. */
export function newIdentity(): TestIdentity {
  return { id: `nx1${base32LowerNoPad(randomBytes(32))}`, keys: generateEd25519() };
}

/** RFC 9421 headers signing `method url` (covering method, authority, path) as `who`. */
export function signedHeaders(who: TestIdentity, method: string, url: string, createdS = Math.floor(Date.now() / 1000)): Record<string, string> {
  const host = new URL(url).host;
  const s = signRequest(
    { method, url, headers: { host } },
    { components: ["@method", "@authority", "@path"], params: { created: createdS, keyid: who.id, alg: "ed25519" }, privateKey: who.keys.privateKey },
  );
  return { "signature-input": s.signatureInput, signature: s.signature };
}

/** The slices tests use unless they say otherwise. */
export const ROOMY: SliceInput = { bandwidthBytesPerSec: "104857600", requestsPerSec: 100_000, connections: 10_000, qos: "silver" };

/** A table of `routes` with roomy slices for every IMVU they name (overridable). */
export function table(version: number, routes: RouteInput[], slices: Record<string, SliceInput> = {}): RouteTable {
  const all: Record<string, SliceInput> = {};
  for (const r of routes) all[r.imvu] = slices[r.imvu] ?? ROOMY;
  return buildRouteTable({ version, routes, slices: { ...all, ...slices } });
}

/** Sends raw bytes on a fresh TCP connection and collects everything until close or `timeoutMs`. */
export async function rawExchange(port: number, data: string | Buffer, timeoutMs = 3_000): Promise<string> {
  const s = connect(port, "127.0.0.1");
  let out = "";
  s.on("data", (d: Buffer) => (out += d.toString("latin1")));
  s.on("error", () => undefined);
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  await Promise.race([once(s, "connect"), closed]);
  if (!s.destroyed) s.write(data);
  // A reset (the gateway closing with unread bytes) is an ordinary end here, not a failure.
  await Promise.race([closed, new Promise((r) => setTimeout(r, timeoutMs))]);
  s.destroy();
  return out;
}

/** The status code of the first response in raw HTTP text, or 0. */
export function rawStatus(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

/** Waits until `cond` holds (polling), failing after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
