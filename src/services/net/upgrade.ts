/**
 * WebSocket upgrades (RFC 6455 §4) passed through: after the same admission as any request, the
 * gateway opens a TCP connection to the upstream, sends the handshake with the normalised target
 * and the gateway's forwarding fields, inserts `nexus-route-version` into the upstream's answer
 * head, then relays bytes both ways until either side closes. Raw refusals for sockets that have
 * no ServerResponse (upgrades, parse errors) live here too.
 */
import type { IncomingMessage } from "node:http";
import { STATUS_CODES } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { netErrors, type NetErrorCode } from "./errors.ts";
import type { RouteCounters } from "./meter.ts";
import { forwardHeaders, type ProxyTarget } from "./proxy.ts";
import type { Route } from "./route.ts";

/** Writes a complete refusal on a raw socket and closes it. */
export function refuseRaw(socket: Duplex, code: NetErrorCode, version: string, extra: Readonly<Record<string, string>>): void {
  const status = netErrors.specs[code].http;
  const body = `{"error":{"code":"${code}"}}`;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nnexus-route-version: ${version}\r\nconnection: close\r\n`;
  for (const [k, v] of Object.entries(extra)) head += `${k}: ${v}\r\n`;
  if (socket.writable) socket.end(`${head}\r\n${body}`);
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/** What an upgrade needs. */
export interface UpgradeTarget {
  readonly req: IncomingMessage;
  readonly socket: Duplex;
  readonly head: Buffer;
  readonly route: Route;
  readonly host: string;
  readonly target: string;
  readonly identity: string | undefined;
  readonly scheme: "http" | "https";
  readonly version: string;
}


/** Relays an admitted upgrade; `done` runs once when both sides are closed. */
export function proxyUpgrade(
  t: UpgradeTarget,
  e: { readonly counters: RouteCounters; readonly timeoutMs: number; readonly headerBytesMax: number; readonly done: () => void },
): void {
  const fields = forwardHeaders({ ...t, res: undefined as never } satisfies Omit<ProxyTarget, "res"> & { res: never });
  let head = `GET ${t.target} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(fields)) for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  // The hop-by-hop pair the handshake needs (RFC 6455 §4.1); Sec-WebSocket-* pass as end-to-end fields.
  head += "upgrade: websocket\r\nconnection: Upgrade\r\n\r\n";
  const up = connect({ host: t.route.upstream.host, port: t.route.upstream.port });
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    up.destroy();
    t.socket.destroy();
    e.done();
  };
  const timer = setTimeout(() => {
    if (!t.socket.writableEnded) refuseRaw(t.socket, "NET_UPSTREAM_TIMEOUT", t.version, {});
    finish();
  }, e.timeoutMs);
  up.once("connect", () => {
    up.write(head);
    if (t.head.length > 0) up.write(t.head);
  });
  up.on("error", () => {
    clearTimeout(timer);
    if (!answered && t.socket.writable) refuseRaw(t.socket, "NET_UPSTREAM_FAILED", t.version, {});
    finish();
  });
  let answered = false;
  let buf = Buffer.alloc(0);
  const onHead = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) {
      if (buf.length > e.headerBytesMax) up.emit("error", new Error("upstream answer head too large"));
      return;
    }
    clearTimeout(timer);
    answered = true;
    up.off("data", onHead);
    const eol = buf.indexOf("\r\n");
    e.counters.bytesOut += buf.length;
    t.socket.write(Buffer.concat([buf.subarray(0, eol + 2), Buffer.from(`nexus-route-version: ${t.version}\r\n`), buf.subarray(eol + 2)]));
    up.on("data", (d: Buffer) => {
      e.counters.bytesOut += d.length;
      if (!t.socket.write(d)) up.pause();
    });
    t.socket.on("drain", () => up.resume());
    t.socket.on("data", (d: Buffer) => {
      e.counters.bytesIn += d.length;
      if (!up.write(d)) t.socket.pause();
    });
    up.on("drain", () => t.socket.resume());
  };
  up.on("data", onHead);
  up.once("close", finish);
  t.socket.once("close", finish);
  t.socket.on("error", finish);
}
