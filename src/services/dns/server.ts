/**
 * The authoritative DNS server: UDP and TCP on one port (RFC 1035 §4.2, RFC 7766), answers from a
 * ZoneStore through the wire cache, AXFR/IXFR over TCP with TSIG, NOTIFY to secondaries on every
 * change, per-zone counters, and optional worker threads sharing the UDP port (SO_REUSEPORT).
 * Every resource is bounded: TCP connections, their idle time, queued queries and message sizes.
 */
import type { Server } from "node:net";
import { Worker } from "node:worker_threads";
import { dnsErrors } from "./errors.ts";
import { Meter, sumMeters, type MeterSnapshot } from "./meter.ts";
import { Notifier, type NotifyOutcome, type NotifyTarget } from "./notify.ts";
import type { Name } from "./name.ts";
import { Responder } from "./responder.ts";
import type { ZoneStore } from "./store.ts";
import { transferAnswer, type TransferStyle } from "./transfer.ts";
import { keyring, nowSeconds, type TsigKeyConfig } from "./tsig.ts";
import { createTcpDnsServer, listenTcp, TCP_CONNECTIONS_MAX, TCP_IDLE_MS } from "./tcp.ts";
import { serveUdpEndpoint, type UdpEndpoint, type UdpTransportChoice } from "./udp.ts";
import type { ToWorker, WorkerInit } from "./udp-worker.ts";
import { WireCache } from "./wire-cache.ts";
import { zoneToInput } from "./zone.ts";

/** The port of the embedded default (ARCHITECTURE.md); `--public` uses 53. */
export const DNS_PORT_DEFAULT = 1053;
/** UDP serving threads, at most. */
export const WORKERS_MAX = 16;
/** Attempts to find a port free for both UDP and TCP when port 0 is asked. */
const PORT_ATTEMPTS_MAX = 20;

/** Something the server reports (transfers, notifications, internal faults). */
export type DnsServerEvent =
  | { readonly type: "transfer"; readonly zone: Name; readonly style: TransferStyle; readonly serial: number; readonly peer: string; readonly messages: number }
  | ({ readonly type: "notify" } & NotifyOutcome)
  | { readonly type: "fault"; readonly where: string; readonly message: string };

/** How to start the server. */
export interface DnsServerOptions {
  /** Address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Port for UDP and TCP (default 1053; 0 picks a free one). */
  readonly port?: number;
  readonly zones: ZoneStore;
  /** TSIG keys (hmac-sha256); transfers need one of them. */
  readonly tsig?: readonly TsigKeyConfig[];
  /** Secondaries told of every change. */
  readonly notify?: readonly NotifyTarget[];
  /** UDP serving threads including this one (default 1). */
  readonly workers?: number;
  /** UDP transport: "batch" (the addon; fails when it cannot be built), "dgram", or "auto" (default: batch where available). */
  readonly udp?: UdpTransportChoice;
  readonly onEvent?: (e: DnsServerEvent) => void;
  /** First NOTIFY retry interval (tests shorten it). */
  readonly notifyRetryMs?: number;
  readonly tcpConnectionsMax?: number;
  readonly tcpIdleMs?: number;
}

/** A running server. */
export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** How UDP is served: batched by the addon (native/udp_batch.c) or by node:dgram where it cannot be built. */
  readonly udpTransport: "batch" | "dgram";
  /** Counters summed over every serving thread. */
  meter(): Promise<MeterSnapshot>;
  /** Stops everything this server started. */
  close(): Promise<void>;
}

/** Binds UDP and TCP on one port number; with port 0 tries free ports until both bind. */
async function bindShared(tcp: Server, host: string, port: number, serve: (port: number) => Promise<UdpEndpoint>): Promise<UdpEndpoint> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (port === 0 ? PORT_ATTEMPTS_MAX : 1); attempt++) {
    let u: UdpEndpoint | undefined;
    try {
      u = await serve(port);
      await listenTcp(tcp, host, u.port);
      return u;
    } catch (e) {
      lastError = e;
      await u?.close();
    }
  }
  throw dnsErrors.make("DNS_BIND_FAILED", `${host}:${port}: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

/** Starts the authoritative server. Throws DNS_CONFIG_INVALID or DNS_BIND_FAILED. */
export async function startDnsServer(o: DnsServerOptions): Promise<DnsServer> {
  const host = o.host ?? "127.0.0.1";
  const workers = o.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > WORKERS_MAX) throw dnsErrors.make("DNS_CONFIG_INVALID", `workers must be 1..${WORKERS_MAX}`);
  const keys = keyring(o.tsig ?? []);
  const emit = (e: DnsServerEvent): void => {
    try {
      o.onEvent?.(e);
    } catch {
      // A listener's fault must not stop the server.
    }
  };
  const meter = new Meter();
  const cache = new WireCache(o.zones, meter);
  cache.rebuildAll(o.zones.all());
  const responder = new Responder({ zones: o.zones, keys, meter });
  const notifier = new Notifier({
    targets: o.notify ?? [], keys, onOutcome: (n) => emit({ type: "notify", ...n }), ...(o.notifyRetryMs === undefined ? {} : { retryMs: o.notifyRetryMs }),
  });

  const { server: tcp, connections: conns } = createTcpDnsServer({
    connectionsMax: o.tcpConnectionsMax ?? TCP_CONNECTIONS_MAX,
    idleMs: o.tcpIdleMs ?? TCP_IDLE_MS,
    onReject: () => void meter.server.dropped++,
    handle: (q, peer) => {
      const fast = cache.answer(q, true);
      if (fast !== undefined) return [fast];
      const h = responder.handle(q, "tcp");
      if (h.kind === "drop") return [];
      if (h.kind === "reply") {
        if (h.lookup !== undefined) cache.remember(h.lookup.question, h.lookup.result);
        return [h.message];
      }
      const t = transferAnswer(h, (origin, from) => o.zones.journal(origin, from), nowSeconds());
      emit({ type: "transfer", zone: h.zone.origin, style: t.style, serial: h.zone.soa.data.serial, peer, messages: t.messages.length });
      return t.messages;
    },
  });

  let udp: UdpEndpoint;
  try {
    udp = await bindShared(tcp, host, o.port ?? DNS_PORT_DEFAULT, (p) => serveUdpEndpoint({ host, port: p, reusePort: workers > 1, transport: o.udp ?? "auto" }, cache, responder, meter));
  } catch (e) {
    notifier.close();
    throw e;
  }
  const port = udp.port;

  const threads: Worker[] = [];
  const meterWaits = new Map<number, (s: MeterSnapshot) => void>();
  let meterReq = 0;
  const init: WorkerInit = { host, port, transport: udp.transport, keys: o.tsig ?? [], zones: o.zones.all().map(zoneToInput) };
  try {
    for (let i = 1; i < workers; i++) threads.push(await startWorker(init, meterWaits));
  } catch (e) {
    for (const t of threads) await t.terminate();
    await udp.close();
    tcp.close();
    notifier.close();
    throw dnsErrors.make("DNS_BIND_FAILED", `worker: ${e instanceof Error ? e.message : String(e)}`);
  }
  const post = (m: ToWorker): void => {
    for (const t of threads) t.postMessage(m);
  };

  const unsubscribe = o.zones.on((c) => {
    try {
      if (c.type === "put") {
        cache.zoneChanged(c.zone.origin);
        post({ type: "put", zone: zoneToInput(c.zone) });
        notifier.notify(c.zone);
      } else {
        cache.zoneChanged(c.origin);
        post({ type: "remove", origin: c.origin });
      }
    } catch (e) {
      emit({ type: "fault", where: "zone-change", message: e instanceof Error ? e.message : String(e) });
    }
  });

  return {
    host,
    port,
    udpTransport: udp.transport,
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
      cache.flush();
      return sumMeters([meter.snapshot(), ...parts]);
    },
    async close(): Promise<void> {
      unsubscribe();
      notifier.close();
      for (const s of conns) s.destroy();
      await Promise.all([
        new Promise<void>((r) => tcp.close(() => r())),
        udp.close(),
        ...threads.map((t) => t.terminate()),
      ]);
    },
  };
}

function startWorker(init: WorkerInit, meterWaits: Map<number, (s: MeterSnapshot) => void>): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./udp-worker.ts", import.meta.url), { workerData: init });
    const onMessage = (m: { type: string; req?: number; snapshot?: MeterSnapshot; message?: string }): void => {
      if (m.type === "ready") resolve(w);
      else if (m.type === "error") reject(new Error(m.message ?? "worker failed"));
      else if (m.type === "meter" && m.req !== undefined && m.snapshot !== undefined) {
        meterWaits.get(m.req)?.(m.snapshot);
        meterWaits.delete(m.req);
      }
    };
    w.on("message", onMessage);
    w.once("error", reject);
    w.unref();
  });
}
