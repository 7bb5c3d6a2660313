/**
 * Forwarding one request to its route's upstream over pooled keep-alive connections (undici
 * Pool, one per upstream address), with hop-by-hop fields removed (RFC 9110 §7.6.1), forwarding
 * fields set by the gateway alone, bodies bounded, and the response paced by the IMVU's
 * bandwidth bucket (shaping: bytes wait, nothing is dropped).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Readable } from "node:stream";
import { Pool, type Dispatcher } from "undici";
type DispatchController = Dispatcher.DispatchController;
import type { NetErrorCode } from "./errors.ts";
import type { Meter, RouteCounters } from "./meter.ts";
import type { Route, RouteTable } from "./route.ts";
import { cookieWithoutSession } from "./session.ts";
import type { SliceState } from "./slice.ts";

/** Request fields never forwarded: hop-by-hop (RFC 9110 §7.6.1), framing the gateway redoes, and fields only the gateway sets. */
export const REQUEST_FIELDS_DROPPED: ReadonlySet<string> = new Set([
  "connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "te", "trailer", "upgrade", "host",
  "expect", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "http2-settings", "signature", "signature-input",
]);
/** Response fields never passed back (hop-by-hop, and connection-specific in HTTP/2, RFC 9113 §8.2.2). */
export const RESPONSE_FIELDS_DROPPED: ReadonlySet<string> = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "nexus-route-version",
]);

/** The pools of the upstreams the current table names. */
export class Upstreams {
  private readonly pools = new Map<string, Pool>();
  private readonly limits: { readonly upstreamConnectionsMax: number; readonly upstreamTimeoutMs: number; readonly keepAliveTimeoutMs: number };
  constructor(limits: { readonly upstreamConnectionsMax: number; readonly upstreamTimeoutMs: number; readonly keepAliveTimeoutMs: number }) {
    this.limits = limits;
  }

  private static key(u: Route["upstream"]): string {
    return u.host.includes(":") ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`;
  }

  /** The pool of an upstream address, created on first use. */
  get(u: Route["upstream"]): Pool {
    const k = Upstreams.key(u);
    let p = this.pools.get(k);
    if (p === undefined) {
      p = new Pool(`http://${k}`, {
        connections: this.limits.upstreamConnectionsMax,
        pipelining: 1,
        keepAliveTimeout: this.limits.keepAliveTimeoutMs,
        headersTimeout: this.limits.upstreamTimeoutMs,
        bodyTimeout: this.limits.upstreamTimeoutMs,
        connectTimeout: Math.min(10_000, this.limits.upstreamTimeoutMs),
      });
      this.pools.set(k, p);
    }
    return p;
  }

  /** Closes the pools of upstreams the new table no longer names (after their requests finish). */
  adopt(table: RouteTable): void {
    const keep = new Set(table.routes.map((r) => Upstreams.key(r.upstream)));
    for (const [k, p] of this.pools) {
      if (!keep.has(k)) {
        this.pools.delete(k);
        void p.close().catch(() => undefined);
      }
    }
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** What the request is and where it goes. */
export interface ProxyTarget {
  readonly req: IncomingMessage | Http2ServerRequest;
  readonly res: ServerResponse | Http2ServerResponse;
  readonly route: Route;
  /** Canonical host and normalised target (what was matched is what the upstream gets). */
  readonly host: string;
  readonly target: string;
  readonly identity: string | undefined;
  readonly scheme: "http" | "https";
  readonly version: string;
}

/** What forwarding needs from the gateway. */
export interface ProxyEnv {
  readonly upstreams: Upstreams;
  readonly limits: { readonly bodyBytesMax: number; readonly upstreamTimeoutMs: number };
  readonly counters: RouteCounters;
  readonly meter: Meter;
  readonly slice: SliceState;
  readonly now: () => number;
  readonly onShaped: () => void;
  readonly refuse: (code: NetErrorCode) => void;
  readonly fault: (where: string, message: string) => void;
}

/** The fields sent upstream. */
export function forwardHeaders(p: ProxyTarget): Record<string, string | string[]> {
  const h = p.req.headers;
  const out: Record<string, string | string[]> = {};
  const listed = typeof h.connection === "string" && h.connection !== "keep-alive" && h.connection !== "close" ? h.connection.toLowerCase().split(/\s*,\s*/) : [];
  for (const k in h) {
    const v = h[k];
    if (v === undefined || k.charCodeAt(0) === 58 || REQUEST_FIELDS_DROPPED.has(k) || k.startsWith("nexus-") || listed.includes(k)) continue;
    out[k] = v;
  }
  out.host = p.host;
  out["x-forwarded-for"] = p.req.socket?.remoteAddress ?? "";
  out["x-forwarded-proto"] = p.scheme;
  if (p.route.kind === "private") {
    if (typeof out.authorization === "string" && out.authorization.startsWith("Bearer nxs1.")) delete out.authorization;
    if (typeof out.cookie === "string") {
      const c = cookieWithoutSession(out.cookie);
      if (c === undefined) delete out.cookie;
      else out.cookie = c;
    }
  }
  if (p.identity !== undefined) out["nexus-identity"] = p.identity;
  return out;
}

function responseHeaders(h: Readonly<Record<string, string | string[] | undefined>>, version: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined && !RESPONSE_FIELDS_DROPPED.has(k)) out[k] = v;
  }
  out["nexus-route-version"] = version;
  return out;
}

/** Counts request body bytes and stops past the limit. */
async function* countedBody(req: AsyncIterable<Buffer>, c: RouteCounters, max: number, over: () => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of req) {
    n += chunk.length;
    if (n > max) {
      over();
      throw new Error("request body over the limit");
    }
    c.bytesIn += chunk.length;
    yield chunk;
  }
}

const TIMEOUTS = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

/** Forwards the request and streams the answer back; resolves when the exchange is over (never rejects). */
export function proxyRequest(p: ProxyTarget, e: ProxyEnv): Promise<void> {
  const { req, res } = p;
  const cl = req.headers["content-length"];
  if (cl !== undefined && Number(cl) > e.limits.bodyBytesMax) {
    e.meter.status(e.counters, 413);
    e.refuse("NET_BODY_TOO_LARGE");
    return Promise.resolve();
  }
  const hasBody =
    req.httpVersionMajor === 2
      ? !(req as Http2ServerRequest).stream.endAfterHeaders
      : (cl !== undefined && cl !== "0") || req.headers["transfer-encoding"] !== undefined;
  let tooLarge = false;
  const body = hasBody ? Readable.from(countedBody(req, e.counters, e.limits.bodyBytesMax, () => (tooLarge = true)), { objectMode: false }) : null;
  return new Promise<void>((resolve) => {
    let controller: DispatchController | undefined;
    let started = false;
    let over = false;
    // Reasons the upstream is paused (client backpressure, bandwidth shaping): resume when none is left.
    let holds = 0;
    let pending: Buffer | undefined;
    const release = (): void => {
      if (--holds === 0 && !over) controller?.resume();
    };
    const finish = (): void => {
      if (over) return;
      over = true;
      res.off("close", onClose);
      resolve();
    };
    const onClose = (): void => {
      if (!res.writableFinished) controller?.abort(new Error("the client went away"));
      finish();
    };
    res.once("close", onClose);
    const w = res as ServerResponse;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (c) => void (controller = c),
      onResponseStart: (c, status, headers) => {
        started = true;
        if (res.destroyed) return c.abort(new Error("the client went away"));
        w.writeHead(status, responseHeaders(headers, p.version));
        e.meter.status(e.counters, status);
      },
      onResponseData: (c, chunk) => {
        if (res.destroyed) return c.abort(new Error("the client went away"));
        e.counters.bytesOut += chunk.length;
        const wait = e.slice.bandwidth.take(chunk.length, e.now());
        if (wait > 0) {
          // Shaping (gate 15: the declared bandwidthBytesPerSec): the upstream waits, nothing is dropped.
          e.onShaped();
          holds++;
          c.pause();
          setTimeout(release, Math.min(wait, 60_000));
        }
        // One chunk is held back so that a one-chunk answer leaves in one write with its end.
        const prev = pending;
        pending = chunk;
        if (prev !== undefined && !w.write(prev)) {
          holds++;
          c.pause();
          w.once("drain", release);
        }
      },
      onResponseEnd: () => {
        if (res.destroyed) return finish();
        if (pending !== undefined) w.end(pending);
        else w.end();
        finish();
      },
      onResponseError: (_c, err) => {
        if (!started && !res.destroyed) {
          const code: NetErrorCode = tooLarge ? "NET_BODY_TOO_LARGE" : TIMEOUTS.has((err as { code?: string }).code ?? "") ? "NET_UPSTREAM_TIMEOUT" : "NET_UPSTREAM_FAILED";
          e.meter.status(e.counters, code === "NET_BODY_TOO_LARGE" ? 413 : 502);
          e.refuse(code);
        } else if (!res.writableFinished) res.destroy();
        finish();
      },
    };
    e.upstreams.get(p.route.upstream).dispatch({ path: p.target, method: (req.method ?? "GET") as "GET", headers: forwardHeaders(p), body }, handler);
  });
}
