/**
 * The edge gateway: HTTP/1.1 (node:http) and, with TLS, HTTP/2 with HTTP/1.1 fallback
 * (node:http2, ALPN, SNI from per-host certificates), WebSocket upgrades passed through, pooled
 * keep-alive upstreams (undici Pool). Every answer carries `nexus-route-version`. Routes come only
 * from `setRoutes` (the ledger projection); throttling episodes and usage leave only through the
 * `onThrottle` and `onUsage` callbacks (the platform adapter signs them as commands).
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from "node:http";
import type { Http2SecureServer } from "node:http2";
import type { Duplex } from "node:stream";
import { netErrors, type NetErrorCode } from "./errors.ts";
import { CertStore } from "./certs.ts";
import { decide, identify, type Decision, type DecideContext, type RequestView } from "./decide.ts";
import { Meter, type MeterSnapshot, meterDelta, sumMeters, type RouteCounters } from "./meter.ts";
import type { Worker } from "node:worker_threads";
import { closeWorker, startWorker, type ThreadHooks, type ToWorker } from "./threads.ts";
import type { RegionTable } from "./region.ts";
import { emptyRouteTable, type RouteTable } from "./route.ts";
import { issueSession, SESSION_TTL_S_DEFAULT, type SessionSigner } from "./session.ts";
import { EpisodeTracker, SliceBook, type SliceRefusal, type SliceState, type ThrottleEpisode } from "./slice.ts";
import { Capacity } from "./capacity.ts";
import { Upstreams, proxyRequest } from "./proxy.ts";
import { proxyUpgrade, refuseRaw } from "./upgrade.ts";
import { listen, plainServer, tlsServer, type AnyReq, type AnyRes, type ServerHandlers } from "./servers.ts";

/** The port of the embedded default (ARCHITECTURE.md); `--public` uses 80 and 443. */
export const GATEWAY_PORT_DEFAULT = 8080;

/** Every bound of the gateway, by name (docs/net.md "Limits"). */
export interface GatewayLimits {
  /** Bytes of a request header section (HTTP/1.1) or header list (HTTP/2); beyond: 431. */
  readonly headerBytesMax: number;
  /** Header fields per request. */
  readonly headersCountMax: number;
  /** Time for a request's header section to arrive (slowloris); beyond: 408 and close. */
  readonly headersTimeoutMs: number;
  /** Time for a whole request, body included; beyond: 408 and close. */
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connection lifetime (HTTP/1.1) and idle HTTP/2 session lifetime. */
  readonly keepAliveTimeoutMs: number;
  /** Client connections open at once per listening socket; beyond: closed at accept. */
  readonly connectionsMax: number;
  /** Request body bytes; beyond: 413. */
  readonly bodyBytesMax: number;
  /** Time for an upstream to answer headers, and between body chunks: 504. */
  readonly upstreamTimeoutMs: number;
  /** Pooled connections per upstream address. */
  readonly upstreamConnectionsMax: number;
  /** Requests in flight at once across all IMVUs (the shared capacity QoS arbitrates). */
  readonly capacityMax: number;
  /** Requests waiting for capacity per QoS class, and how long one waits at most. */
  readonly capacityQueueMax: number;
  readonly capacityWaitMs: number;
  /** A throttling episode ends after this long without a throttled request. */
  readonly episodeQuietMs: number;
  /** HTTP/2 streams per session. */
  readonly h2StreamsMax: number;
}

/** The defaults of every limit. */
export const GATEWAY_LIMITS: GatewayLimits = {
  headerBytesMax: 16_384,
  headersCountMax: 100,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  connectionsMax: 10_000,
  bodyBytesMax: 16 * 1024 * 1024,
  upstreamTimeoutMs: 30_000,
  upstreamConnectionsMax: 256,
  capacityMax: 4096,
  capacityQueueMax: 1024,
  capacityWaitMs: 1_000,
  episodeQuietMs: 2_000,
  h2StreamsMax: 128,
};

/** A usage report: per-route counter growth since the previous report. */
export interface UsageReport {
  readonly version: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly routes: Readonly<Record<string, RouteCounters>>;
}

/** Something the gateway reports besides throttling and usage (faults of its own). */
export type GatewayEvent = { readonly type: "fault"; readonly where: string; readonly message: string };

/** How to start a gateway. */
export interface GatewayOptions {
  /** Address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Plain HTTP port (default 8080; 0 picks a free one; null for none). */
  readonly port?: number | null;
  /** TLS (HTTP/2 + HTTP/1.1): its port and where per-host certificates live. */
  readonly tls?: { readonly port: number; readonly certDir: string };
  /** The initial route table (default: empty at version 0). */
  readonly routes?: RouteTable;
  /** The configured address-range table for restricted routes. */
  readonly regions?: RegionTable;
  /** The raw Ed25519 public key of an identity (from the identity projection). */
  readonly resolveKey: (identity: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** The gateways' session key, and every key whose tokens are accepted (default: the signer's). */
  readonly session: { readonly signer: SessionSigner; readonly accept?: ReadonlyMap<string, Uint8Array>; readonly ttlS?: number };
  readonly onThrottle?: (e: ThrottleEpisode) => void;
  readonly onUsage?: (u: UsageReport) => void;
  /** How often usage is reported (default 60 s). */
  readonly usageIntervalMs?: number;
  readonly onEvent?: (e: GatewayEvent) => void;
  readonly limits?: Partial<GatewayLimits>;
  /** The clock (tests); epoch ms. */
  readonly now?: () => number;
  /**
   * Serving threads including this one (default 1, at most WORKERS_MAX): worker threads listen on
   * the same ports (SO_REUSEPORT) and each enforces 1/workers of every slice.
   */
  readonly workers?: number;
  /** @internal Set by the worker threads: bind with SO_REUSEPORT and enforce 1/share of each slice. */
  readonly shared?: { readonly share: number };
}

/** Serving threads, at most. */
export const WORKERS_MAX = 16;

/** A running gateway. */
export interface Gateway {
  readonly host: string;
  /** The plain HTTP port (undefined when not listening). */
  readonly port: number | undefined;
  /** The TLS port (undefined without TLS). */
  readonly tlsPort: number | undefined;
  /** Adopts a new route table (atomically: a request sees the old or the new one). */
  setRoutes(table: RouteTable): void;
  /** The table being served. */
  routes(): RouteTable;
  /** A copy of every counter, summed over the serving threads. */
  meter(): Promise<MeterSnapshot>;
  /** Reports open episodes and unreported usage, then stops everything this gateway started. */
  close(): Promise<void>;
}


/** The JSON body of a refusal: the code only, so a refusal reveals nothing else. */
export function refusalBody(code: NetErrorCode): string {
  return `{"error":{"code":"${code}"}}`;
}

/** Extra headers naming the declared limit of a slice refusal (gate 15: visible throttling). */
export function limitHeaders(r: SliceRefusal | { limit: string; declared: number; retryAfterS: number }): Record<string, string> {
  return { "retry-after": String(r.retryAfterS), "nexus-limit": `${r.limit}=${r.declared}` };
}

function hostLines(req: AnyReq): number | undefined {
  if (req.httpVersionMajor === 2) return undefined;
  const raw = req.rawHeaders;
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] ?? "").length === 4 && raw[i]?.toLowerCase() === "host") n++;
  return n;
}

/** Starts the gateway. Throws NET_CONFIG_INVALID, NET_BIND_FAILED or NET_TLS_FAILED. */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const limits: GatewayLimits = { ...GATEWAY_LIMITS, ...o.limits };
  for (const [k, v] of Object.entries(limits)) if (!Number.isInteger(v) || v <= 0) throw netErrors.make("NET_CONFIG_INVALID", `${k} must be a positive integer`);
  const host = o.host ?? "127.0.0.1";
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > WORKERS_MAX) throw netErrors.make("NET_CONFIG_INVALID", `workers must be 1..${WORKERS_MAX}`);
  const share = o.shared?.share ?? workers;
  const reusePort = workers > 1 || o.shared !== undefined;
  const now = o.now ?? Date.now;
  const emit = (e: GatewayEvent): void => {
    try {
      o.onEvent?.(e);
    } catch {
      // A listener's fault must not stop the gateway.
    }
  };
  let table = o.routes ?? emptyRouteTable();
  const slices = new SliceBook(share);
  slices.update(table.slices, now());
  const meter = new Meter();
  const episodes = new EpisodeTracker(limits.episodeQuietMs);
  const capacity = new Capacity(limits.capacityMax, limits.capacityQueueMax, limits.capacityWaitMs);
  const upstreams = new Upstreams(limits);
  upstreams.adopt(table);
  const certs = o.tls === undefined ? undefined : new CertStore(o.tls.certDir);
  certs?.setHosts(table.byHost.keys());
  const sessionKeys = o.session.accept ?? new Map([[o.session.signer.keyId, o.session.signer.publicKey]]);
  const ctx = (): DecideContext => ({ table, regions: o.regions, sessionKeys, resolveKey: o.resolveKey, nowMs: now });

  const report = (eps: ThrottleEpisode[]): void => {
    for (const e of eps) {
      try {
        o.onThrottle?.(e);
      } catch (err) {
        emit({ type: "fault", where: "onThrottle", message: String(err) });
      }
    }
  };
  let lastUsage = meter.snapshot();
  let lastUsageMs = now();
  const reportUsage = (): void => {
    const snap = meter.snapshot();
    const routes = meterDelta(lastUsage, snap);
    const toMs = now();
    if (Object.keys(routes).length > 0) {
      try {
        o.onUsage?.({ version: table.version, fromMs: lastUsageMs, toMs, routes });
      } catch (err) {
        emit({ type: "fault", where: "onUsage", message: String(err) });
      }
    }
    lastUsage = snap;
    lastUsageMs = toMs;
  };
  const sweepTimer = setInterval(() => report(episodes.sweep(now())), Math.max(50, Math.floor(limits.episodeQuietMs / 4)));
  sweepTimer.unref();
  const usageTimer = setInterval(reportUsage, o.usageIntervalMs ?? 60_000);
  usageTimer.unref();

  const view = (req: AnyReq, scheme: "http" | "https"): RequestView => ({
    method: req.method ?? "GET",
    target: req.url ?? "",
    headers: req.headers,
    hostLines: hostLines(req),
    http2: req.httpVersionMajor === 2,
    scheme,
    peer: req.socket?.remoteAddress ?? "",
  });

  /** Counts a slice or capacity refusal and feeds the episode tracker. */
  const throttled = (imvu: string, c: RouteCounters, limit: SliceRefusal["limit"] | "gatewayCapacity", declared: number): void => {
    c.throttled++;
    episodes.hit(imvu, limit, declared, now(), table.version);
  };

  const refuse = (res: AnyRes, code: NetErrorCode, extra?: Record<string, string>): void => {
    const body = refusalBody(code);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(body.length),
      "nexus-route-version": table.version,
      ...extra,
    };
    // After a malformed or ambiguous request the connection is not trusted further (HTTP/1.1).
    if (netErrors.specs[code].http === 400 && "shouldKeepAlive" in res) headers.connection = "close";
    (res as ServerResponse).writeHead(netErrors.specs[code].http, headers);
    res.end(body);
  };

  const admit = (
    d: Extract<Decision, { type: "serve" }>,
  ): { state: SliceState; c: RouteCounters } | { refusal: { code: NetErrorCode; headers: Record<string, string> } } => {
    const c = meter.route(d.route.id, d.route.imvu);
    c.requests++;
    const state = slices.get(d.route.imvu);
    if (state === undefined) return { refusal: { code: "NET_NOT_FOUND", headers: {} } };
    const r = state.admit(now());
    if (r !== undefined) {
      throttled(d.route.imvu, c, r.limit, r.declared);
      return { refusal: { code: r.status === 429 ? "NET_RATE_LIMITED" : "NET_CONNECTIONS_LIMITED", headers: limitHeaders(r) } };
    }
    return { state, c };
  };

  const onRequest = (req: AnyReq, res: AnyRes, scheme: "http" | "https"): void => {
    let d: Decision | Promise<Decision>;
    try {
      d = decide(view(req, scheme), ctx());
    } catch (e) {
      emit({ type: "fault", where: "decide", message: String(e) });
      d = { type: "refuse", code: "NET_REQUEST_INVALID" };
    }
    if (d instanceof Promise) d.then((x) => guarded(res, () => serve(req, res, scheme, x)), () => guarded(res, () => refuse(res, "NET_REQUEST_INVALID")));
    else guarded(res, () => serve(req, res, scheme, d));
  };

  /** Runs `f`; a throw (a client gone mid-answer, a bug) ends this exchange only, never the process. */
  const guarded = (target: AnyRes | Duplex, f: () => void): void => {
    try {
      f();
    } catch (e) {
      emit({ type: "fault", where: "request", message: e instanceof Error ? e.message : String(e) });
      try {
        target.destroy();
      } catch {
        // already gone
      }
    }
  };

  const serve = (req: AnyReq, res: AnyRes, scheme: "http" | "https", d: Decision): void => {
    if (d.type === "refuse") {
      if (d.route !== undefined) meter.route(d.route.id, d.route.imvu).denied++;
      else if (d.code === "NET_NOT_FOUND") meter.gateway.notFound++;
      else meter.gateway.badRequest++;
      refuse(res, d.code);
      return;
    }
    if (d.type === "session") {
      sessionEndpoint(req, res, scheme, d).catch((e: unknown) => guarded(res, () => {
        throw e;
      }));
      return;
    }
    const a = admit(d);
    if ("refusal" in a) {
      refuse(res, a.refusal.code, a.refusal.headers);
      return;
    }
    const qos = a.state.slice.qos;
    const go = (ok: boolean): void => {
      if (!ok) {
        a.state.release();
        throttled(d.route.imvu, a.c, "gatewayCapacity", limits.capacityMax);
        refuse(res, "NET_CAPACITY_EXCEEDED", limitHeaders({ limit: "gatewayCapacity", declared: limits.capacityMax, retryAfterS: 1 }));
        return;
      }
      const done = (): void => {
        a.state.release();
        capacity.release();
      };
      proxyRequest({ req, res, route: d.route, host: d.host, target: `${d.path}${d.query}`, identity: d.identity, scheme, version: table.version },
        { upstreams, limits, counters: a.c, meter, slice: a.state, now,
          onShaped: () => episodes.hit(d.route.imvu, "bandwidthBytesPerSec", a.state.slice.bandwidthBytesPerSec, now(), table.version),
          refuse: (code) => refuse(res, code), fault: (where, message) => emit({ type: "fault", where, message }) },
      ).finally(done);
    };
    const got = capacity.acquire(qos);
    if (got === true) go(true);
    else void got.then(go);
  };

  const sessionEndpoint = async (req: AnyReq, res: AnyRes, scheme: "http" | "https", d: Extract<Decision, { type: "session" }>): Promise<void> => {
    if (req.method !== "POST") return refuse(res, "NET_NOT_FOUND");
    const grants = new Set<string>();
    for (const r of table.byHost.get(d.host) ?? []) if (r.kind === "private") for (const g of r.grants) grants.add(g);
    if (grants.size === 0) return refuse(res, "NET_NOT_FOUND");
    const id = await identify(view(req, scheme), ctx(), d.host, d.authority, `${d.path}${d.query}`, [...grants]);
    if (typeof id === "string") return refuse(res, id === "NET_AUTH_REQUIRED" ? "NET_AUTH_REQUIRED" : id);
    const { token, exp } = issueSession(o.session.signer, id.identity, d.host, Math.floor(now() / 1000), o.session.ttlS ?? SESSION_TTL_S_DEFAULT);
    const body = JSON.stringify({ token, identity: id.identity, host: d.host, expiresAt: new Date(exp * 1000).toISOString() });
    (res as ServerResponse).writeHead(200, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      "cache-control": "no-store",
      "set-cookie": `nexus-session=${token}; Path=/; HttpOnly; SameSite=Lax${scheme === "https" ? "; Secure" : ""}; Max-Age=${exp - Math.floor(now() / 1000)}`,
      "nexus-route-version": table.version,
    });
    res.end(body);
  };

  const upgraded = new Set<Duplex>();
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, scheme: "http" | "https"): void => {
    socket.on("error", () => socket.destroy());
    // Upgraded sockets leave the HTTP server's bookkeeping: close() must end them itself.
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    const isWs = String(req.headers.upgrade ?? "").toLowerCase() === "websocket";
    let d0: Decision | Promise<Decision> = { type: "refuse", code: "NET_REQUEST_INVALID" };
    if (isWs) guarded(socket, () => void (d0 = decide(view(req, scheme), ctx())));
    const go = (d: Decision): void => {
      if (d.type !== "serve") {
        if (d.type === "refuse" && d.route !== undefined) meter.route(d.route.id, d.route.imvu).denied++;
        refuseRaw(socket, d.type === "refuse" ? d.code : "NET_NOT_FOUND", table.version, {});
        return;
      }
      const a = admit(d);
      if ("refusal" in a) {
        refuseRaw(socket, a.refusal.code, table.version, a.refusal.headers);
        return;
      }
      a.c.upgrades++;
      proxyUpgrade({ req, socket, head, route: d.route, host: d.host, target: `${d.path}${d.query}`, identity: d.identity, scheme, version: table.version },
        { counters: a.c, timeoutMs: limits.upstreamTimeoutMs, headerBytesMax: limits.headerBytesMax, done: () => a.state.release() });
    };
    const d1 = d0 as Decision | Promise<Decision>;
    if (d1 instanceof Promise) d1.then((d) => guarded(socket, () => go(d)), () => socket.destroy());
    else guarded(socket, () => go(d1));
  };

  const clientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    meter.gateway.badRequest++;
    const code: NetErrorCode =
      err.code === "HPE_HEADER_OVERFLOW" ? "NET_HEADERS_TOO_LARGE" : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "NET_TIMEOUT" : "NET_REQUEST_INVALID";
    if (socket.writable && !(socket as unknown as { _httpMessage?: unknown })._httpMessage) refuseRaw(socket, code, table.version, {});
    else socket.destroy();
  };

  const threads: Worker[] = [];
  const meterWaits = new Map<number, (s: MeterSnapshot) => void>();
  let meterReq = 0;
  const threadHooks: ThreadHooks = {
    throttle: (e) => report([e]),
    usage: (u) => {
      try {
        o.onUsage?.(u);
      } catch (err) {
        emit({ type: "fault", where: "onUsage", message: String(err) });
      }
    },
    event: emit,
    meter: (req, snap) => {
      meterWaits.get(req)?.(snap);
      meterWaits.delete(req);
    },
  };
  const servers: (HttpServer | Http2SecureServer)[] = [];
  const tlsSockets = new Set<Duplex>();
  let port: number | undefined;
  let tlsPort: number | undefined;
  try {
    const handlers: ServerHandlers = {
      request: onRequest, upgrade: onUpgrade, clientError,
      drop: () => void meter.gateway.connectionsRefused++,
      fault: (where, message) => emit({ type: "fault", where, message }),
    };
    if (o.port !== null) {
      const s = plainServer(limits, handlers);
      port = await listen(s, host, o.port ?? GATEWAY_PORT_DEFAULT, reusePort);
      servers.push(s);
    }
    if (o.tls !== undefined && certs !== undefined) {
      const s = tlsServer(limits, certs, handlers, tlsSockets);
      tlsPort = await listen(s, host, o.tls.port, reusePort);
      servers.push(s);
    }
    for (let i = 1; i < workers; i++) threads.push(await startWorker(o, { port, tlsPort, share, table }, threadHooks));
  } catch (e) {
    for (const s of servers) s.close();
    for (const t of threads) await t.terminate();
    clearInterval(sweepTimer);
    clearInterval(usageTimer);
    throw e;
  }

  return {
    host,
    port,
    tlsPort,
    setRoutes(next: RouteTable): void {
      table = next;
      slices.update(next.slices, now());
      upstreams.adopt(next);
      certs?.setHosts(next.byHost.keys());
      for (const t of threads) t.postMessage({ type: "routes", table: next } satisfies ToWorker);
    },
    routes: () => table,
    async meter(): Promise<MeterSnapshot> {
      const parts = await Promise.all(
        threads.map(
          (t) =>
            new Promise<MeterSnapshot>((resolve) => {
              const req = ++meterReq;
              meterWaits.set(req, resolve);
              t.postMessage({ type: "meter", req } satisfies ToWorker);
            }),
        ),
      );
      return sumMeters([meter.snapshot(), ...parts]);
    },
    async close(): Promise<void> {
      clearInterval(sweepTimer);
      clearInterval(usageTimer);
      await Promise.all(threads.map((t) => closeWorker(t)));
      const closing = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      for (const s of servers) if ("closeAllConnections" in s) s.closeAllConnections();
      for (const s of upgraded) s.destroy();
      for (const s of tlsSockets) s.destroy();
      await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 1_000).unref())]);
      report(episodes.sweep(now(), true));
      reportUsage();
      capacity.close();
      await upstreams.close();
    },
  };
}
