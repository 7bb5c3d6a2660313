/**
 * The DNS service module of the stack (`nexus up`): the authoritative server (ports.dns, UDP and
 * TCP) and the caching resolver (ports.resolver), fed by a ZoneStore kept equal to the ledger
 * projection (services/dns/projection.ts) by following `pipeline.onRecorded` — a change is served
 * before its receipt is answered. It also acts for the DNS service identity: it observes custom
 * domain challenges through the resolver and submits `domain.verify`, and reports query metering
 * per IMVU as `usage.report` (one per IMVU and interval, idempotent by interval start).
 *
 * Operator configuration (docs/dns.md, "Service module"): `$NEXUS_DNS_CONFIG` or `<home>/dns.json`
 * with optional `tsig` keys, `notify` targets (secondaries), `upstreams`, `workers` and `udp`
 * ("auto", "batch" or "dgram": the UDP transport);
 * `$NEXUS_DNS_UPSTREAMS` ("host[:port],…") overrides the upstreams; without either, the resolver
 * forwards to the name servers of /etc/resolv.conf.
 */
import { existsSync, readFileSync } from "node:fs";
import { promises as dnsPromises } from "node:dns";
import { isIP } from "node:net";
import { join } from "node:path";
import { z } from "zod";
import type { Receipt } from "../../core/pipeline/pipeline.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { CHALLENGE_LABEL } from "../../core/policy/dns-zones.ts";
import { dnsErrors } from "../../services/dns/errors.ts";
import { meterDelta, sumMeters, type MeterSnapshot, type ZoneCounters } from "../../services/dns/meter.ts";
import { affectedOrigins, syncZones, touchesZones, type SyncReport } from "../../services/dns/projection.ts";
import { startResolver, type Resolver, type Upstream } from "../../services/dns/resolver.ts";
import { startDnsServer, type DnsServer, type DnsServerEvent } from "../../services/dns/server.ts";
import { udpBatchStatus } from "../../services/dns/native/udp-batch.ts";
import { ZoneStore } from "../../services/dns/store.ts";
import type { Platform } from "../platform.ts";
import type { RunningService, ServiceContext, ServiceModule } from "../service.ts";

/** How often query counters become usage reports. */
export const METER_INTERVAL_MS_DEFAULT = 60_000;
/** How often pending domain claims are looked up. */
export const VERIFY_INTERVAL_MS_DEFAULT = 15_000;
/** Age after which the periodic check leaves a pending claim alone (`domain verify` still checks it). */
export const VERIFY_CLAIM_AGE_MAX_MS = 7 * 24 * 3600 * 1000;
/** Claims looked up per round, at most. */
export const VERIFY_CLAIMS_PER_ROUND_MAX = 64;
/** Time limit of one challenge lookup through the resolver. */
export const VERIFY_LOOKUP_TIMEOUT_MS = 3_000;
/** Upstreams read from /etc/resolv.conf, at most (as the stub resolver does). */
export const RESOLV_CONF_SERVERS_MAX = 3;
/** Largest configuration file read. */
export const DNS_CONFIG_OCTETS_MAX = 64 * 1024;
/** Name of the configuration file in the data directory. */
export const DNS_CONFIG_FILE = "dns.json";

const HostPort = z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65_535) }).strict();
/** The operator's DNS configuration (`<home>/dns.json` or `$NEXUS_DNS_CONFIG`). */
export const DnsConfigSchema = z
  .object({
    tsig: z.array(z.object({ name: z.string().min(1).max(255), secret: z.string().min(1).max(1024), algorithm: z.string().max(64).optional() }).strict()).max(64).optional(),
    notify: z.array(HostPort.extend({ key: z.string().max(255).optional() }).strict()).max(64).optional(),
    upstreams: z.array(HostPort).max(8).optional(),
    workers: z.number().int().min(0).max(16).optional(),
    udp: z.enum(["auto", "batch", "dgram"]).optional(),
  })
  .strict();
/** The operator's DNS configuration. */
export type DnsConfig = z.infer<typeof DnsConfigSchema>;

/** Options of `createDnsService` (tests pass them; `nexus up` uses the defaults). */
export interface DnsServiceOptions {
  /** Configuration instead of the file and environment. */
  readonly config?: DnsConfig;
  readonly meterIntervalMs?: number;
  readonly verifyIntervalMs?: number;
  /** NOTIFY retry interval (tests shorten it). */
  readonly notifyRetryMs?: number;
  /** Hears the server's transfer, NOTIFY and fault events (tests wait on them). */
  readonly onEvent?: (e: DnsServerEvent) => void;
}

/** What a challenge check found. */
export interface VerifyOutcome {
  readonly imvu: string;
  readonly domain: string;
  /** The name whose TXT records are looked up. */
  readonly challenge: string;
  readonly status: "bound" | "pending" | "no-claim";
  /** The TXT strings the resolver returned (each record's strings joined). */
  readonly observed: readonly string[];
  /** The token to publish, while the claim is pending. */
  readonly token?: string;
  /** The receipt of the `domain.verify` this check submitted, if any. */
  readonly receipt?: Receipt;
}

/** Checks one claim now (the API's `domain verify` calls this). */
export interface DomainVerifier {
  verifyNow(imvu: string, domain: string): Promise<VerifyOutcome>;
}

/** The running DNS service. */
export interface DnsRunning extends RunningService, DomainVerifier {
  readonly store: ZoneStore;
  readonly server: DnsServer;
  /** Undefined when no upstream is configured or found (the service then runs degraded). */
  readonly resolver: Resolver | undefined;
  /** Turns the query counters since the last report into usage reports now; returns how many were submitted. */
  reportUsage(): Promise<number>;
}

/** Reads the operator configuration: `$NEXUS_DNS_CONFIG`, else `<home>/dns.json`, else none. Throws DNS_CONFIG_INVALID. */
export function loadDnsConfig(home: string, env: NodeJS.ProcessEnv = process.env): DnsConfig {
  const path = env.NEXUS_DNS_CONFIG ?? join(home, DNS_CONFIG_FILE);
  let cfg: DnsConfig = {};
  if (existsSync(path)) {
    const text = readFileSync(path, "utf8");
    if (text.length > DNS_CONFIG_OCTETS_MAX) throw dnsErrors.make("DNS_CONFIG_INVALID", `${path} is larger than ${DNS_CONFIG_OCTETS_MAX} octets`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw dnsErrors.make("DNS_CONFIG_INVALID", `${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const r = DnsConfigSchema.safeParse(json);
    if (!r.success) throw dnsErrors.make("DNS_CONFIG_INVALID", `${path}: ${r.error.issues[0]?.path.join(".") ?? ""} ${r.error.issues[0]?.message ?? ""}`);
    cfg = r.data;
  } else if (env.NEXUS_DNS_CONFIG !== undefined) {
    throw dnsErrors.make("DNS_CONFIG_INVALID", `NEXUS_DNS_CONFIG names ${path}, which does not exist`);
  }
  const ups = env.NEXUS_DNS_UPSTREAMS;
  if (ups !== undefined && ups.trim() !== "") cfg = { ...cfg, upstreams: parseUpstreams(ups) };
  return cfg;
}

/** Parses "host[:port],…" ("[v6]:port" for IPv6 with a port). Throws DNS_CONFIG_INVALID. */
export function parseUpstreams(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter((s) => s !== "").slice(0, 8)) {
    const m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(part) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(part) ?? /^([0-9a-fA-F:]+)()$/.exec(part);
    const host = m?.[1];
    const port = m?.[2] ? Number(m[2]) : 53;
    if (host === undefined || isIP(host) === 0 || port < 1 || port > 65_535) throw dnsErrors.make("DNS_CONFIG_INVALID", `upstream ${part}: use an IP address with an optional :port`);
    out.push({ host, port });
  }
  return out;
}

/** The name servers of /etc/resolv.conf (port 53), the resolver's default upstreams. */
export function resolvConfUpstreams(path = "/etc/resolv.conf"): Upstream[] {
  if (!existsSync(path)) return [];
  const out: Upstream[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m?.[1] !== undefined && isIP(m[1]) !== 0 && out.length < RESOLV_CONF_SERVERS_MAX) out.push({ host: m[1], port: 53 });
  }
  return out;
}

/** Where to reach a listener bound at `host` from this machine. */
function reachable(host: string, port: number): string {
  const h = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return isIP(h) === 6 ? `[${h}]:${port}` : `${h}:${port}`;
}

/** The TXT strings at `name` through the resolver at `server` (none on NXDOMAIN, NODATA or failure). */
async function lookupTxt(server: string, name: string): Promise<string[]> {
  const r = new dnsPromises.Resolver({ timeout: VERIFY_LOOKUP_TIMEOUT_MS, tries: 1 });
  r.setServers([server]);
  try {
    return (await r.resolveTxt(name)).map((chunks) => chunks.join(""));
  } catch {
    return [];
  }
}

/** Query counters of one interval summed per IMVU (zones of no IMVU, like the platform's, are not reported). */
export function usageByImvu(state: StateReader, delta: Readonly<Record<string, ZoneCounters>>): Map<string, ZoneCounters & { zones: number }> {
  const out = new Map<string, ZoneCounters & { zones: number }>();
  for (const [origin, c] of Object.entries(delta)) {
    const imvu = state.get("dns-zone", origin)?.imvu;
    if (imvu === undefined) continue;
    const sum = out.get(imvu) ?? { queries: 0, nxdomain: 0, nodata: 0, referrals: 0, transfers: 0, zones: 0 };
    out.set(imvu, {
      queries: sum.queries + c.queries, nxdomain: sum.nxdomain + c.nxdomain, nodata: sum.nodata + c.nodata,
      referrals: sum.referrals + c.referrals, transfers: sum.transfers + c.transfers, zones: sum.zones + 1,
    });
  }
  return out;
}

class DnsServiceRun {
  readonly store = new ZoneStore();
  private readonly platform: Platform;
  private readonly log: (line: string) => void;
  private readonly inflight = new Set<string>();
  private lastMeter: MeterSnapshot = { zones: {}, server: { refused: 0, formerr: 0, notimp: 0, notauth: 0, dropped: 0 } };
  private intervalStart: Date;
  server!: DnsServer;
  resolver: Resolver | undefined;

  constructor(ctx: ServiceContext) {
    this.platform = ctx.platform;
    this.log = ctx.log;
    this.intervalStart = new Date();
  }

  report(r: SyncReport): void {
    for (const f of r.failed) this.log(`zone ${f.origin} not updated: ${f.code} ${f.message}`);
  }

  /** Follows one recorded command: re-derives the zones it touched. */
  follow(changes: Parameters<typeof affectedOrigins>[1]): void {
    if (!touchesZones(changes)) return;
    this.report(syncZones(this.store, this.platform.state, affectedOrigins(this.platform.state, changes)));
  }

  async verifyNow(imvu: string, domain: string): Promise<VerifyOutcome> {
    const state = this.platform.state;
    const challenge = `${CHALLENGE_LABEL}.${domain}`;
    if (state.get("domain", domain)?.imvu === imvu) return { imvu, domain, challenge, status: "bound", observed: [] };
    const claim = state.get("domain-claim", `${domain} ${imvu}`);
    if (claim === undefined) return { imvu, domain, challenge, status: "no-claim", observed: [] };
    const observed = this.resolver === undefined ? [] : await lookupTxt(reachable(this.resolver.host, this.resolver.port), challenge);
    const base = { imvu, domain, challenge, observed, token: claim.token };
    const key = `${domain} ${imvu}`;
    if (!observed.includes(claim.token) || this.inflight.has(key)) return { ...base, status: "pending" };
    this.inflight.add(key);
    try {
      const receipt = await this.platform.submitAsService("dns", { type: "domain.verify", imvu, body: { domain, observed: observed.slice(0, 32) } });
      this.log(`domain ${domain} ${receipt.outcome === "applied" ? "bound to" : "not bound to"} ${imvu} (ledger index ${receipt.index})`);
      return { ...base, status: receipt.outcome === "applied" ? "bound" : "pending", receipt };
    } finally {
      this.inflight.delete(key);
    }
  }

  /** One round over the pending claims. */
  async verifyRound(): Promise<void> {
    const fresh = Date.now() - VERIFY_CLAIM_AGE_MAX_MS;
    const claims = this.platform.state
      .list("domain-claim")
      .filter(([, c]) => Date.parse(c.claimedAt) >= fresh)
      .slice(0, VERIFY_CLAIMS_PER_ROUND_MAX);
    for (const [, c] of claims) {
      try {
        await this.verifyNow(c.imvu, c.domain);
      } catch (e) {
        this.log(`verification of ${c.domain} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  async reportUsage(): Promise<number> {
    const now = this.server.meter();
    const snap = sumMeters([await now, ...(this.resolver === undefined ? [] : [this.resolver.stats().authoritative])]);
    const delta = meterDelta(this.lastMeter, snap);
    this.lastMeter = snap;
    const start = this.intervalStart;
    const end = new Date(Math.max(Date.now(), start.getTime() + 1));
    this.intervalStart = end;
    const state = this.platform.state;
    let n = 0;
    for (const [imvu, u] of usageByImvu(state, delta)) {
      if (u.queries === 0 && u.transfers === 0) continue;
      if (state.get("usage", `${imvu}/dns/${start.toISOString()}`) !== undefined) continue; // idempotent by interval
      const metrics = Object.fromEntries(Object.entries(u).map(([k, v]) => [k, String(v)]));
      await this.platform.submitAsService("dns", {
        type: "usage.report",
        imvu,
        body: { service: "dns", intervalStart: start.toISOString(), intervalEnd: end.toISOString(), metrics },
      });
      n += 1;
    }
    return n;
  }
}

/** How UDP is served, for the endpoint line: batched, or node:dgram and why. */
function udpLine(server: DnsServer, asked: string | undefined): string {
  if (server.udpTransport === "batch") return "UDP batched (recvmmsg/sendmmsg)";
  return asked === "dgram" ? "UDP by node:dgram, as dns.json asks" : `UDP by node:dgram: ${udpBatchStatus().detail}`;
}

/** The DNS service module with options (tests); `dnsService` is it with the defaults. */
export function createDnsService(opts: DnsServiceOptions = {}): ServiceModule {
  return {
    name: "dns",
    async start(ctx: ServiceContext): Promise<DnsRunning> {
      const cfg = opts.config ?? loadDnsConfig(ctx.platform.home);
      const run = new DnsServiceRun(ctx);
      run.report(syncZones(run.store, ctx.platform.state));
      const host = ctx.config.host;
      run.server = await startDnsServer({
        host, port: ctx.config.ports.dns, zones: run.store,
        ...(cfg.tsig ? { tsig: cfg.tsig.map((k) => ({ name: k.name, secret: k.secret, ...(k.algorithm === undefined ? {} : { algorithm: k.algorithm }) })) } : {}),
        ...(cfg.notify ? { notify: cfg.notify.map((t) => ({ host: t.host, port: t.port, ...(t.key === undefined ? {} : { key: t.key }) })) } : {}),
        ...(cfg.workers === undefined ? {} : { workers: cfg.workers }), ...(cfg.udp === undefined ? {} : { udp: cfg.udp }), ...(opts.notifyRetryMs === undefined ? {} : { notifyRetryMs: opts.notifyRetryMs }),
        onEvent: (e) => {
          opts.onEvent?.(e);
          if (e.type === "fault") ctx.log(`fault in ${e.where}: ${e.message}`);
        },
      });
      const upstreams = cfg.upstreams ?? resolvConfUpstreams();
      try {
        if (upstreams.length > 0) run.resolver = await startResolver({ host, port: ctx.config.ports.resolver, zones: run.store, upstreams });
      } catch (e) {
        await run.server.close();
        throw e;
      }
      const unfollow = ctx.platform.pipeline.onRecorded((r) => {
        run.follow(r.changes);
        if (r.entry.outcome === "applied" && r.changes.some((c) => c.table === "domain-claim" && c.value !== undefined)) {
          setTimeout(() => void run.verifyRound(), 0).unref();
        }
      });
      const verifyTimer = setInterval(() => void run.verifyRound(), opts.verifyIntervalMs ?? VERIFY_INTERVAL_MS_DEFAULT);
      verifyTimer.unref();
      const meterTimer = setInterval(() => {
        run.reportUsage().catch((e: unknown) => ctx.log(`usage report failed: ${e instanceof Error ? e.message : String(e)}`));
      }, opts.meterIntervalMs ?? METER_INTERVAL_MS_DEFAULT);
      meterTimer.unref();
      const endpoints = [
        `dns udp+tcp ${reachable(run.server.host, run.server.port)} (${run.store.origins().length} zones; ${udpLine(run.server, cfg.udp)})`,
        run.resolver === undefined
          ? "resolver: not started (no upstream in $NEXUS_DNS_UPSTREAMS, dns.json or /etc/resolv.conf); custom domains cannot be verified"
          : `resolver udp+tcp ${reachable(run.resolver.host, run.resolver.port)}`,
      ];
      return {
        name: "dns",
        endpoints,
        listens: {
          dns: reachable(run.server.host, run.server.port),
          ...(run.resolver === undefined ? {} : { resolver: reachable(run.resolver.host, run.resolver.port) }),
        },
        store: run.store,
        server: run.server,
        resolver: run.resolver,
        verifyNow: (imvu, domain) => run.verifyNow(imvu, domain),
        reportUsage: () => run.reportUsage(),
        async stop() {
          unfollow();
          clearInterval(verifyTimer);
          clearInterval(meterTimer);
          try {
            await run.reportUsage();
          } catch (e) {
            ctx.log(`final usage report failed: ${e instanceof Error ? e.message : String(e)}`);
          }
          await run.resolver?.close();
          await run.server.close();
        },
      };
    },
  };
}

/** The DNS service module of `nexus up`. */
export const dnsService: ServiceModule = createDnsService();

/** The running DNS service among a stack's services (for the API's `domain verify`), if started. */
export function dnsServiceOf(services: readonly RunningService[]): DnsRunning | undefined {
  return services.find((s): s is DnsRunning => s.name === "dns" && "verifyNow" in s);
}
