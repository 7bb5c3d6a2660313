/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): two-octet length framing, pipelined queries answered
 * in order, and bounds on everything a client controls: open connections (more are refused at
 * accept), idle time, query size, queries read ahead, and output held for a client that does not
 * read (writes wait for 'drain', and a connection idle while blocked is closed).
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { dnsErrors } from "./errors.ts";

/** Open TCP connections, at most; more are closed at once (RFC 7766 §6.2.2). */
export const TCP_CONNECTIONS_MAX = 256;
/** A TCP connection idle this long is closed (RFC 7766 §6.2.3 suggests seconds, not minutes). */
export const TCP_IDLE_MS = 10_000;
/** A query over TCP longer than this closes the connection (queries are small; 65,535 is the framing bound). */
export const TCP_QUERY_OCTETS_MAX = 16_384;
/** Queries read ahead on one connection while an answer is written (RFC 7766 §6.2.1.1 pipelining). */
export const TCP_PIPELINE_MAX = 32;

/** How a TCP DNS endpoint behaves. */
export interface TcpDnsOptions {
  /** Answers one query with zero or more messages (a transfer sends many). */
  readonly handle: (query: Buffer, peer: string) => Promise<readonly Buffer[]> | readonly Buffer[];
  readonly connectionsMax?: number;
  readonly idleMs?: number;
  /** Called when a connection is cut for breaking a bound, or a handler throws. */
  readonly onReject?: (why: string) => void;
}

/** Frames a message with its two-octet length. */
export function frame(m: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(m.length + 2);
  out.writeUInt16BE(m.length, 0);
  out.set(m, 2);
  return out;
}

/** A TCP server speaking framed DNS; call `listen` on it. */
export function createTcpDnsServer(o: TcpDnsOptions): { server: Server; connections: Set<Socket> } {
  const connections = new Set<Socket>();
  const idleMs = o.idleMs ?? TCP_IDLE_MS;
  const reject = (why: string): void => o.onReject?.(why);
  const server = createServer({ noDelay: true }, (sock) => {
    connections.add(sock);
    sock.on("close", () => connections.delete(sock));
    sock.on("error", () => {});
    sock.setTimeout(idleMs, () => sock.destroy());
    const peer = `${sock.remoteAddress ?? "?"}:${sock.remotePort ?? 0}`;
    let pending: Buffer = Buffer.alloc(0);
    const queue: Buffer[] = [];
    let busy = false;
    const write = (m: Buffer): Promise<void> =>
      new Promise((resolve) => {
        if (sock.destroyed) return resolve();
        if (sock.write(frame(m))) return resolve();
        const done = (): void => {
          sock.off("drain", done);
          sock.off("close", done);
          resolve();
        };
        sock.on("drain", done);
        sock.on("close", done);
      });
    const pump = async (): Promise<void> => {
      busy = true;
      try {
        for (let q = queue.shift(); q !== undefined && !sock.destroyed; q = queue.shift()) {
          for (const m of await o.handle(q, peer)) await write(m);
        }
      } catch (e) {
        reject(`handler: ${e instanceof Error ? e.message : String(e)}`);
        sock.destroy();
      } finally {
        busy = false;
      }
    };
    sock.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const n = pending.readUInt16BE(0);
        // A length shorter than a header, or longer than any query accepted, ends the connection.
        if (n < 12 || n > TCP_QUERY_OCTETS_MAX) {
          reject(`query length ${n}`);
          sock.destroy();
          return;
        }
        if (pending.length < n + 2) break;
        queue.push(Buffer.from(pending.subarray(2, n + 2)));
        pending = pending.subarray(n + 2);
        if (queue.length > TCP_PIPELINE_MAX) {
          reject("too many pipelined queries");
          sock.destroy();
          return;
        }
      }
      if (!busy) void pump();
    });
  });
  server.maxConnections = o.connectionsMax ?? TCP_CONNECTIONS_MAX;
  server.on("drop", () => reject("connection limit"));
  return { server, connections };
}

/** Listens on host:port (exclusively). */
export function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Sends one query over TCP and reads one framed answer (used by the resolver after TC=1). */
export function tcpExchange(host: string, port: number, query: Uint8Array, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, noDelay: true });
    let buf: Buffer = Buffer.alloc(0);
    const fail = (why: string): void => {
      sock.destroy();
      reject(dnsErrors.make("DNS_UPSTREAM_FAILED", `${host}:${port} over TCP: ${why}`));
    };
    const timer = setTimeout(() => fail("timeout"), timeoutMs);
    sock.on("error", (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
    sock.on("connect", () => sock.write(frame(query)));
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length > 65_537) return fail("oversized answer");
      if (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        clearTimeout(timer);
        const n = buf.readUInt16BE(0);
        sock.destroy();
        resolve(Buffer.from(buf.subarray(2, n + 2)));
      }
    });
    sock.on("close", () => {
      clearTimeout(timer);
      fail("closed before an answer");
    });
  });
}
