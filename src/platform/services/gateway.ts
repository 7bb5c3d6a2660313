/**
 * The edge gateway's adapter (docs/net.md, "Ledger wiring"): builds the gateway's route table
 * from the projection (routes and grants of `net.*` commands, each IMVU's envelope as its slice,
 * upstreams at the addresses compute published for the IMVU's own workloads), swaps it in on
 * every recorded command and whenever a workload's address changes, and reports each throttling
 * episode and each interval's usage as signed commands of the gateway service identity.
 *
 * Keys and configuration under `<home>/gateway/`: `session.key` (the gateways' session signing
 * key, Ed25519 seed, 0600: copy it to every gateway that must accept the same sessions),
 * `regions.json` (optional: `[{"cidr":"192.0.2.0/24","region":"DE"}, …]` for restricted routes),
 * `certs/` (per-host self-signed certificates, generated on first use).
 *
 * It also holds each IMVU's container bridge to the envelope's bandwidth in the kernel
 * (gateway-shaping.ts), so traffic that bypasses the gateway keeps to the slice too.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { fromBase64, toBase64 } from "../../core/crypto/bytes.ts";
import { ed25519FromSeed, ed25519Seed, generateEd25519, type Ed25519KeyPair } from "../../core/crypto/ed25519.ts";
import { isNexusError } from "../../core/errors.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import {
  buildRegionTable, buildRouteTable, startGateway, type Gateway, type RegionRange, type RouteInput, type RouteTable, type SliceInput,
  type ThrottleEpisode, type UsageReport,
} from "../../services/net/index.ts";
import type { Platform } from "../platform.ts";
import type { RunningService, ServiceContext, ServiceModule } from "../service.ts";
import { computeOf, type RunningCompute } from "./compute.ts";
import { startShaping, type GatewayShaping, type ShapingOptions } from "./gateway-shaping.ts";

/** How often the table is rebuilt even without a recorded command (workload addresses move). */
export const ROUTE_REFRESH_MS = 500;
/** How often usage is reported (one `usage.report` per IMVU per interval). */
export const GATEWAY_USAGE_INTERVAL_MS = 60_000;

const SEED_PREFIX = "ed25519-seed:";
const RegionsSchema = z.array(z.object({ cidr: z.string().max(64), region: z.string().regex(/^[A-Z]{2}$/) }).strict()).max(100_000);

/** The running gateway module. */
export interface RunningGateway extends RunningService {
  readonly name: "gateway";
  readonly gateway: Gateway;
  /** Rebuilds the table now from the projection and compute's addresses. */
  refresh(): void;
  /** The kernel shaping of the IMVUs' container networks. */
  readonly shaping: GatewayShaping;
}

/** Options of the gateway module (tests: shorter shaping intervals). */
export interface GatewayServiceOptions {
  readonly shaping?: ShapingOptions;
}

/** The running gateway among a stack's services. */
export function gatewayOf(services: readonly RunningService[]): RunningGateway | undefined {
  return services.find((s): s is RunningGateway => s.name === "gateway" && "refresh" in s);
}

/** Loads `<dir>/session.key`, creating it (0600) on first use; a key readable by others is refused. */
export function loadSessionKey(dir: string): Ed25519KeyPair {
  const path = join(dir, "session.key");
  if (!existsSync(path)) {
    const kp = generateEd25519();
    writeFileSync(path, `${SEED_PREFIX}${toBase64(ed25519Seed(kp.privateKey))}\n`, { mode: 0o600, flag: "wx" });
    return kp;
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path} must not be readable by group or others (chmod 600)`);
  const text = readFileSync(path, "utf8").trim();
  const seed = text.startsWith(SEED_PREFIX) ? fromBase64(text.slice(SEED_PREFIX.length)) : undefined;
  if (seed?.length !== 32) throw new Error(`${path} is not an Ed25519 seed file`);
  return ed25519FromSeed(seed);
}

/**
 * The route table the projection implies (pure but for the address lookup): every route of every
 * IMVU that is not departed, whose upstream workload has a published address; each IMVU's
 * envelope as its slice; the version is the ledger size it was built at.
 */
export function routeTableFromState(state: StateReader, version: bigint, address: (imvu: string, workload: string) => { host: string; port: number } | undefined): RouteTable {
  const routes: RouteInput[] = [];
  const slices: Record<string, SliceInput> = {};
  for (const [, r] of state.list("net-route")) {
    const imvu = state.get("imvu", r.imvu);
    if (!imvu || imvu.exit?.departedIndex !== undefined) continue;
    const up = address(r.imvu, r.upstream.workload);
    if (!up) continue;
    const grants = r.kind === "private" ? state.list("net-grant", `${r.imvu}/${r.route}/`).map(([, g]) => g.identity) : [];
    routes.push({
      id: `${r.imvu}:${r.route}`,
      imvu: r.imvu,
      host: r.host,
      pathPrefix: r.pathPrefix,
      kind: r.kind,
      ...(r.allowRegions === undefined ? {} : { allowRegions: [...r.allowRegions] }),
      upstream: { host: up.host, port: up.port },
      grants,
    });
    slices[r.imvu] = {
      bandwidthBytesPerSec: imvu.envelope.bandwidthBytesPerSec,
      requestsPerSec: imvu.envelope.requestsPerSec,
      connections: imvu.envelope.connections,
      qos: imvu.envelope.qos,
    };
  }
  return buildRouteTable({ version, routes, slices });
}

/** The declared envelope value behind a throttling limit, or undefined for a gateway-wide limit. */
function declaredInEnvelope(platform: Platform, e: ThrottleEpisode): string | undefined {
  if (e.limit === "gatewayCapacity") return undefined;
  const env = platform.state.get("imvu", e.imvu)?.envelope;
  return env === undefined ? undefined : String(env[e.limit]);
}

function usageByImvu(u: UsageReport): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, bigint>>();
  for (const c of Object.values(u.routes)) {
    const m = out.get(c.imvu) ?? {};
    const add = (k: string, v: number): void => void (m[k] = (m[k] ?? 0n) + BigInt(v));
    add("requests", c.requests);
    add("bytesIn", c.bytesIn);
    add("bytesOut", c.bytesOut);
    add("status2xx", c.s2xx);
    add("status3xx", c.s3xx);
    add("status4xx", c.s4xx);
    add("status5xx", c.s5xx);
    add("throttled", c.throttled);
    add("denied", c.denied);
    out.set(c.imvu, m);
  }
  return new Map([...out].map(([k, m]) => [k, Object.fromEntries(Object.entries(m).map(([n, v]) => [n, v.toString()]))]));
}

/** A `throttle.report` draft for an episode of an envelope limit, or undefined for a gateway-wide limit. */
function throttleDraft(platform: Platform, e: ThrottleEpisode, idPrefix: string): { type: "throttle.report"; imvu: string; body: Record<string, unknown> } | undefined {
  const declared = declaredInEnvelope(platform, e);
  if (declared === undefined) return undefined;
  const body = { service: "gateway", limit: e.limit, declared, episodeId: `${idPrefix}${e.limit}-${e.startedAtMs}`, startedAt: new Date(e.startedAtMs).toISOString(), count: Math.max(1, e.count) };
  return { type: "throttle.report", imvu: e.imvu, body };
}

/** The gateway as a service of the stack, with options. */
export function createGatewayService(opts: GatewayServiceOptions = {}): ServiceModule {
  return { name: "gateway", start: (ctx) => startGatewayModule(ctx, opts) };
}

/** The gateway module of `nexus up`. */
export const gatewayService: ServiceModule = createGatewayService();

async function startGatewayModule(ctx: ServiceContext, opts: GatewayServiceOptions): Promise<RunningGateway> {
  const { platform, config, log } = ctx;
  const dir = join(platform.home, "gateway");
  mkdirSync(join(dir, "certs"), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const key = loadSessionKey(dir);
  const regionsFile = join(dir, "regions.json");
  const regions: RegionRange[] = existsSync(regionsFile) ? RegionsSchema.parse(JSON.parse(readFileSync(regionsFile, "utf8"))) : [];
  const compute: RunningCompute | undefined = computeOf(ctx.services ?? []);
  const address = (imvu: string, workload: string) => compute?.address(imvu, workload);
  const report = (what: string, p: Promise<unknown>): void =>
    void p.catch((e: unknown) => log(`${what} not recorded: ${isNexusError(e) ? e.code : e instanceof Error ? e.message : String(e)}`));
  const gateway = await startGateway({
    host: config.host,
    port: config.ports.gateway,
    tls: { port: config.ports.gatewayTls, certDir: join(dir, "certs") },
    regions: buildRegionTable(regions),
    resolveKey: (id) => {
      const rec = platform.state.get("identity", id);
      return rec ? fromBase64(rec.publicKey) : undefined;
    },
    session: { signer: { keyId: "gateway-1", privateKey: key.privateKey, publicKey: key.publicKey } },
    usageIntervalMs: GATEWAY_USAGE_INTERVAL_MS,
    onThrottle: (e) => {
      const draft = throttleDraft(platform, e, "");
      if (draft === undefined) {
        log(`gateway-wide limit ${e.limit}=${e.declared} shed ${e.count} requests of ${e.imvu} (not an envelope limit: logged, not reported)`);
        return;
      }
      report(`throttle.report of ${e.imvu}`, platform.submitAsService("gateway", draft));
    },
    onUsage: (u) => {
      for (const [imvu, metrics] of usageByImvu(u)) {
        if (!platform.state.get("imvu", imvu)) continue;
        const body = { service: "gateway", intervalStart: new Date(u.fromMs).toISOString(), intervalEnd: new Date(u.toMs).toISOString(), metrics };
        report(`usage.report of ${imvu}`, platform.submitAsService("gateway", { type: "usage.report", imvu, body }));
      }
    },
    onEvent: (e) => log(`${e.where}: ${e.message}`),
  });
  let lastKey = "";
  const refresh = (): void => {
    try {
      const table = routeTableFromState(platform.state, platform.ledger.size, address);
      const shape = JSON.stringify(table.routes);
      // Swap only when something a request could see changed (routes, grants, addresses, slices).
      const keyNow = `${shape}|${JSON.stringify([...table.slices])}`;
      if (keyNow === lastKey) return;
      lastKey = keyNow;
      gateway.setRoutes(table);
    } catch (e) {
      log(`route table not rebuilt: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  refresh();
  const off = platform.pipeline.onRecorded((r) => {
    if (r.entry.outcome === "applied") refresh();
  });
  const timer = setInterval(refresh, ROUTE_REFRESH_MS);
  timer.unref();
  // Episodes of the kernel's shaping are the same envelope limit, reported under their own ids.
  const shaping = startShaping({
    platform, compute, log, ...(opts.shaping === undefined ? {} : { options: opts.shaping }),
    onThrottle: (e) => {
      const draft = throttleDraft(platform, e, "kernel-");
      if (draft !== undefined) report(`throttle.report (kernel) of ${e.imvu}`, platform.submitAsService("gateway", draft));
    },
  });
  const endpoints = [`http ${config.host}:${String(gateway.port)}`, `https (HTTP/2, SNI) ${config.host}:${String(gateway.tlsPort)}`, shaping.status];
  if (!compute || compute.degraded !== undefined) endpoints.push("no workloads to route to: compute is not running");
  return {
    name: "gateway",
    gateway,
    refresh,
    shaping,
    endpoints,
    listens: { http: `${config.host}:${String(gateway.port)}`, https: `${config.host}:${String(gateway.tlsPort)}` },
    async stop() {
      clearInterval(timer);
      off();
      await shaping.stop();
      await gateway.close();
    },
  };
}
