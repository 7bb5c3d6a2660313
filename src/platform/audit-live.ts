/**
 * The live checks of the stack audit (docs/operations.md, "The stack audit"): the running
 * services against the projection they follow. Each asks the service the way its clients do —
 * real DNS queries over UDP (TCP after TC=1), real HTTP requests to the gateway, the compute
 * driver's own container listing and the kernel's control groups — and compares with what the
 * projection implies, derived by the same pure functions the services use (servedZoneInputs,
 * routeTableFromState, runSpecFor). A service that is not running is skipped, with the reason.
 */
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { request } from "undici";
import { toHex } from "../core/crypto/bytes.ts";
import { checkOf, ProblemList, skippedCheck, type AuditCheck } from "../core/audit/report.ts";
import type { StateReader } from "../core/pipeline/state.ts";
import { servedZoneInputs } from "../core/policy/dns-zones.ts";
import { readGroupLimits, readLayout, parseProcCgroup, type CgroupLayout, type GroupLimits } from "../services/compute/cgroup.ts";
import type { ContainerInfo } from "../services/compute/driver.ts";
import { groupPath, LABEL_FABRIC, LABEL_IMVU, LABEL_WORKLOAD } from "../services/compute/names.ts";
import { runSpecFor } from "../services/compute/reconciler.ts";
import { FLAG, writeHeader, writeOpt } from "../services/dns/message.ts";
import { isSubdomain, type Name } from "../services/dns/name.ts";
import { rdataText, rdataWire, readRData, typeCode, type RData, type RecordType } from "../services/dns/rdata.ts";
import { decodeMessage } from "../services/dns/reader.ts";
import { tcpExchange } from "../services/dns/tcp.ts";
import { WireWriter } from "../services/dns/writer.ts";
import { buildZone, type Zone } from "../services/dns/zone.ts";
import { GATEWAY_LIMITS, type Route, type RouteTable } from "../services/net/index.ts";
import type { RunningService } from "./service.ts";
import { computeOf, type RunningCompute } from "./services/compute.ts";
import { dnsServiceOf } from "./services/dns.ts";
import { gatewayOf, routeTableFromState, type RunningGateway } from "./services/gateway.ts";

/** Time limit of one DNS query (each is tried twice over UDP). */
export const AUDIT_DNS_TIMEOUT_MS = 2_000;
/** RRsets queried at most per audit (beyond that, the rest are counted as not checked). */
export const AUDIT_DNS_RRSETS_MAX = 20_000;
/** Queries or requests in flight at once. */
export const AUDIT_PARALLEL_MAX = 16;
/** Routes probed over HTTP at most per audit (every route is still compared with the live table). */
export const AUDIT_GATEWAY_PROBES_MAX = 256;
/**
 * Time limit of one gateway probe: beyond the gateway's own upstream time limit, so a route whose
 * workload hangs is still answered by the gateway (504, with its table version) and counts as
 * routed; only a gateway that does not answer at all fails the probe.
 */
export const AUDIT_HTTP_TIMEOUT_MS = GATEWAY_LIMITS.upstreamTimeoutMs + 5_000;
/** Containers inspected at most per audit. */
export const AUDIT_CONTAINERS_MAX = 4_096;
/** The kernel rounds a memory limit to its page size. */
const PAGE_BYTES = 4096n;

/** Titles of the live checks. */
export const LIVE_TITLES = {
  dns: "live DNS: every RRset of the projection answered the same, authoritatively, over UDP",
  gateway: "live gateway: the route table equals the projection's; every route answers with a table version, an unknown host is 404",
  compute: "live compute: every running workload's container exists with the envelope's cpu, memory and pids limits",
} as const;

/** What the live checks look at. */
export interface LiveTargets {
  /** The projection the services follow. */
  readonly state: StateReader;
  /** The ledger size now (a change during a check makes it look again before it reports). */
  readonly size: () => bigint;
  readonly services: readonly RunningService[];
  /** Reads a container's limits from the kernel (tests of other drivers inject theirs). */
  readonly containerLimits?: (c: ContainerInfo) => GroupLimits | undefined;
  /** Reads an IMVU's parent group limits (default: the kernel's cgroup file system). */
  readonly groupLimits?: (path: string) => GroupLimits | undefined;
}

/** Runs `fn` over `items`, at most AUDIT_PARALLEL_MAX at once. */
async function parallel<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(AUDIT_PARALLEL_MAX, items.length) }, worker));
}

/** Runs a live check, once more when the ledger moved during a run that found problems. */
async function stable(size: () => bigint, run: () => Promise<AuditCheck>): Promise<AuditCheck> {
  const before = size();
  const first = await run();
  if (first.ok || size() === before) return first;
  return run();
}

// ---------------------------------------------------------------------------------------------
// DNS

/** One RRset the server should answer. */
interface ExpectedRRset {
  readonly name: Name;
  readonly type: RecordType;
  readonly ttl: number;
  readonly rdata: readonly RData[];
}

function dnsQuery(name: Name, type: number, id: number): Buffer {
  const w = new WireWriter(512);
  writeHeader(w, id, 0, [1, 0, 0, 1]);
  w.name(name, true);
  w.u16(type);
  w.u16(1);
  writeOpt(w, { do: false, extRcode: 0 });
  return w.finish();
}

function udpOnce(host: string, port: number, query: Buffer, id: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(isIP(host) === 6 ? "udp6" : "udp4");
    const finish = (m: Buffer | undefined): void => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    };
    const timer = setTimeout(() => finish(undefined), AUDIT_DNS_TIMEOUT_MS);
    s.on("error", () => finish(undefined));
    s.on("message", (m, rinfo) => {
      if (rinfo.port === port && m.length >= 12 && m.readUInt16BE(0) === id) finish(m);
    });
    s.send(query, port, host);
  });
}

/** Asks the server for (name, type): UDP twice, then TCP if the answer was truncated. */
async function ask(host: string, port: number, name: Name, type: number): Promise<Buffer | string> {
  const id = randomBytes(2).readUInt16BE(0);
  const q = dnsQuery(name, type, id);
  let answer: Buffer | undefined;
  for (let i = 0; i < 2 && answer === undefined; i++) answer = await udpOnce(host, port, q, id);
  if (answer === undefined) return "no answer over UDP";
  if ((answer.readUInt16BE(2) & FLAG.TC) !== 0) {
    try {
      answer = await tcpExchange(host, port, q, AUDIT_DNS_TIMEOUT_MS);
    } catch (e) {
      return `truncated over UDP, and TCP failed: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  return answer;
}

const wireHex = (r: RData): string => toHex(rdataWire(r));

/** Compares one answer with the expected RRset; returns the problem, if any. */
function compareAnswer(e: ExpectedRRset, buf: Buffer | string): string | undefined {
  const what = `${e.name} ${e.type}`;
  if (typeof buf === "string") return `${what}: ${buf}`;
  let msg;
  try {
    msg = decodeMessage(buf);
  } catch (err) {
    return `${what}: the answer does not decode (${err instanceof Error ? err.message : String(err)})`;
  }
  if (!msg.qr || msg.rcode !== 0) return `${what}: the server answers rcode ${msg.rcode}, the projection holds the RRset`;
  if (!msg.aa) return `${what}: the answer is not authoritative`;
  const code = typeCode(e.type);
  const got = msg.answers.filter((r) => r.type === code && r.name.toLowerCase() === e.name.toLowerCase());
  const values: RData[] = [];
  for (const r of got) {
    try {
      values.push(readRData(r.type, buf, r.rdataStart, r.rdataEnd));
    } catch (err) {
      return `${what}: a record of the answer does not decode (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  const want = e.rdata.map(wireHex).sort();
  const have = values.map(wireHex).sort();
  if (want.join() !== have.join()) {
    const text = (rs: readonly RData[]): string => (rs.length === 0 ? "nothing" : rs.map((r) => rdataText(r)).join(" | "));
    return `${what}: the server answers ${text(values)}; the projection holds ${text(e.rdata)}`;
  }
  const ttls = new Set(got.map((r) => r.ttl));
  if (ttls.size !== 1 || !ttls.has(e.ttl)) return `${what}: TTL ${[...ttls].join(",")} served, ${e.ttl} in the projection`;
  return undefined;
}

/** The RRsets the state says are served, each under the zone that answers for its name. */
function expectedRRsets(state: StateReader, p: ProblemList): ExpectedRRset[] {
  const zones: Zone[] = [];
  for (const input of servedZoneInputs(state)) {
    try {
      zones.push(buildZone(input));
    } catch (e) {
      p.add(`zone ${input.origin}: the projection's zone does not build (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  const origins = zones.map((z) => z.origin);
  // The answering zone is the deepest served origin at or above the name.
  const answering = (name: Name): Name | undefined =>
    origins.filter((o) => isSubdomain(name, o)).sort((a, b) => b.length - a.length)[0];
  const out: ExpectedRRset[] = [];
  for (const z of zones) {
    for (const [name, node] of z.nodes) {
      if (answering(name) !== z.origin) continue; // a child zone answers (the parent holds only the delegation)
      for (const rr of node.rrsets.values()) out.push({ name, type: rr.type, ttl: rr.ttl, rdata: rr.rdata });
    }
  }
  return out;
}

async function dnsOnce(state: StateReader, host: string, port: number): Promise<AuditCheck> {
  const p = new ProblemList();
  const all = expectedRRsets(state, p);
  const sets = all.slice(0, AUDIT_DNS_RRSETS_MAX);
  if (all.length > sets.length) p.add(`only the first ${sets.length} of ${all.length} RRsets were queried`);
  await parallel(sets, async (e) => {
    const problem = compareAnswer(e, await ask(host, port, e.name, typeCode(e.type)));
    if (problem !== undefined) p.add(problem);
  });
  return checkOf("live.dns", LIVE_TITLES.dns, p, sets.length);
}

/** live.dns: every RRset the projection serves, asked of the running DNS service. */
export async function checkLiveDns(t: LiveTargets): Promise<AuditCheck> {
  const dns = dnsServiceOf(t.services);
  if (dns === undefined) return skippedCheck("live.dns", LIVE_TITLES.dns, "the DNS service is not running in this process");
  const host = dns.server.host === "0.0.0.0" ? "127.0.0.1" : dns.server.host === "::" ? "::1" : dns.server.host;
  return stable(t.size, () => dnsOnce(t.state, host, dns.server.port));
}

// ---------------------------------------------------------------------------------------------
// Gateway

function routeShape(r: Route): string {
  return JSON.stringify([r.imvu, r.host, r.pathPrefix, r.kind, [...(r.allowRegions ?? [])].sort(), r.upstream.host, r.upstream.port, [...r.grants].sort()]);
}

function compareTables(want: RouteTable, live: RouteTable, p: ProblemList): void {
  const liveById = new Map(live.routes.map((r) => [r.id, r]));
  const wantIds = new Set(want.routes.map((r) => r.id));
  for (const r of want.routes) {
    const l = liveById.get(r.id);
    if (l === undefined) p.add(`route ${r.id} (${r.host}${r.pathPrefix}) is in the projection but not in the gateway's table`);
    else if (routeShape(l) !== routeShape(r)) p.add(`route ${r.id} (${r.host}${r.pathPrefix}) differs in the gateway's table (host, path, kind, upstream or grants)`);
  }
  for (const l of live.routes) if (!wantIds.has(l.id)) p.add(`the gateway routes ${l.id} (${l.host}${l.pathPrefix}), which the projection does not hold`);
  for (const [imvu, s] of want.slices) {
    const l = live.slices.get(imvu);
    if (l !== undefined && JSON.stringify(l, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) !== JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) {
      p.add(`the gateway's slice of ${imvu} differs from its envelope`);
    }
  }
}

const NOT_FOUND_BODY = /"code":"NET_NOT_FOUND"/;

async function probe(host: string, port: number, hostHeader: string, path: string): Promise<{ status: number; version: string | undefined; notFound: boolean } | string> {
  try {
    const authority = isIP(host) === 6 ? `[${host}]` : host;
    const r = await request(`http://${authority}:${port}${path}`, {
      headers: { host: hostHeader, "user-agent": "nexus-audit" },
      headersTimeout: AUDIT_HTTP_TIMEOUT_MS,
      bodyTimeout: AUDIT_HTTP_TIMEOUT_MS,
    });
    const body = (await r.body.text()).slice(0, 256);
    const v = r.headers["nexus-route-version"];
    return { status: r.statusCode, version: typeof v === "string" ? v : undefined, notFound: r.statusCode === 404 && NOT_FOUND_BODY.test(body) };
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

async function gatewayOnce(t: LiveTargets, gw: RunningGateway, compute: RunningCompute | undefined): Promise<AuditCheck> {
  const p = new ProblemList();
  const want = routeTableFromState(t.state, t.size(), (imvu, w) => compute?.address(imvu, w));
  compareTables(want, gw.gateway.routes(), p);
  const port = gw.gateway.port;
  if (port === undefined) {
    p.add("the gateway does not listen on HTTP");
    return checkOf("live.gateway", LIVE_TITLES.gateway, p, want.routes.length);
  }
  const raw = gw.gateway.host;
  const host = raw === "0.0.0.0" || raw === "" ? "127.0.0.1" : raw === "::" ? "::1" : raw;
  const probes = want.routes.slice(0, AUDIT_GATEWAY_PROBES_MAX);
  await parallel(probes, async (r) => {
    const res = await probe(host, port, r.host, r.pathPrefix);
    if (typeof res === "string") p.add(`route ${r.id} (${r.host}${r.pathPrefix}): no answer from the gateway (${res})`);
    else if (res.notFound) p.add(`route ${r.id} (${r.host}${r.pathPrefix}): the gateway answers 404 unknown host`);
    else if (res.version === undefined) p.add(`route ${r.id} (${r.host}${r.pathPrefix}): the answer carries no nexus-route-version`);
  });
  const unknown = `audit-${randomBytes(6).toString("hex")}.invalid`;
  const res = await probe(host, port, unknown, "/");
  if (typeof res === "string") p.add(`an unknown host: no answer from the gateway (${res})`);
  else if (!res.notFound || res.version === undefined) p.add(`an unknown host is answered ${res.status}${res.version === undefined ? " without a table version" : ""}, not 404 unknown host`);
  return checkOf("live.gateway", LIVE_TITLES.gateway, p, want.routes.length + 1);
}

/** live.gateway: the gateway's table against the projection's, and each route asked over HTTP. */
export async function checkLiveGateway(t: LiveTargets): Promise<AuditCheck> {
  const gw = gatewayOf(t.services);
  if (gw === undefined) return skippedCheck("live.gateway", LIVE_TITLES.gateway, "the gateway is not running in this process");
  const compute = computeOf(t.services);
  return stable(t.size, () => gatewayOnce(t, gw, compute));
}

// ---------------------------------------------------------------------------------------------
// Compute

/** A container's limits as the kernel enforces them (its memory cgroup's files), or undefined. */
export function kernelContainerLimits(layout: CgroupLayout | undefined, c: ContainerInfo): GroupLimits | undefined {
  if (layout === undefined || c.pid <= 0) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${c.pid}/cgroup`, "utf8");
  } catch {
    return undefined;
  }
  const groups = parseProcCgroup(text);
  const path = layout.version === 1 ? groups.get("memory") : groups.get("");
  return path === undefined ? undefined : readGroupLimits(layout, path);
}

/** True when `kernel` is `want` as the kernel stores it (memory rounded to a page). */
function sameLimits(kernel: GroupLimits, want: GroupLimits): boolean {
  const memDiff = kernel.memoryBytes - want.memoryBytes;
  return kernel.cpuMillis === want.cpuMillis && kernel.pids === want.pids && memDiff > -PAGE_BYTES && memDiff < PAGE_BYTES;
}

const limitsText = (l: GroupLimits): string => `cpu ${l.cpuMillis}m, memory ${l.memoryBytes} bytes, pids ${l.pids}`;

/** The spec context runSpecFor needs; limits do not depend on it (only names, mounts and the image do). */
const LIMITS_ONLY_CONTEXT = { baseImage: "audit", volumePath: "/audit", volumeReadOnly: false, appCommand: () => ["audit"] };

async function computeOnce(t: LiveTargets, compute: RunningCompute): Promise<AuditCheck> {
  const p = new ProblemList();
  const fabric = compute.fabric;
  if (fabric === undefined) return skippedCheck("live.compute", LIVE_TITLES.compute, "compute has no fabric");
  const layout = readLayout();
  const limitsOf = t.containerLimits ?? ((c: ContainerInfo) => kernelContainerLimits(layout, c));
  const groupOf = t.groupLimits ?? ((path: string) => (layout === undefined ? undefined : readGroupLimits(layout, path)));
  const containers = (await fabric.driver.list({ [LABEL_FABRIC]: fabric.fabric })).slice(0, AUDIT_CONTAINERS_MAX);
  const desiredRunning = new Set<string>();
  const imvus = [...new Set(t.state.list("compute-workload").map(([, w]) => w.imvu))].sort();
  let checked = 0;
  for (const imvu of imvus) {
    const d = compute.desired(imvu);
    if (d === undefined) continue;
    const group = groupOf(groupPath(fabric.fabric, imvu));
    const envelopeLimits = { cpuMillis: d.envelope.cpuMillis, memoryBytes: d.envelope.memoryBytes, pids: d.envelope.pids };
    if (group !== undefined && !sameLimits(group, envelopeLimits)) {
      p.add(`IMVU ${imvu}: its control group enforces ${limitsText(group)}; the envelope gives ${limitsText(envelopeLimits)}`);
    }
    for (const w of d.workloads) {
      if (w.state === "stopped") continue;
      checked += 1;
      desiredRunning.add(`${imvu}/${w.name}`);
      const spec = runSpecFor(imvu, d.envelope, w, { fabric: fabric.fabric, ...LIMITS_ONLY_CONTEXT });
      const want = { cpuMillis: spec.cpuMillis, memoryBytes: spec.memoryBytes, pids: spec.pids };
      const mine = containers.filter((c) => c.labels[LABEL_IMVU] === imvu && c.labels[LABEL_WORKLOAD] === w.name && c.state === "running");
      if (mine.length === 0) {
        p.add(`workload ${imvu}/${w.name}: no running container`);
        continue;
      }
      if (mine.length > 1) p.add(`workload ${imvu}/${w.name}: ${mine.length} running containers`);
      for (const c of mine) {
        const have = limitsOf(c);
        if (have === undefined) p.add(`workload ${imvu}/${w.name}: the limits of container ${c.id.slice(0, 12)} cannot be read`);
        else if (!sameLimits(have, want)) p.add(`workload ${imvu}/${w.name}: container ${c.id.slice(0, 12)} runs with ${limitsText(have)}; the envelope gives ${limitsText(want)}`);
      }
    }
  }
  for (const c of containers) {
    const key = `${c.labels[LABEL_IMVU] ?? "?"}/${c.labels[LABEL_WORKLOAD] ?? "?"}`;
    if (c.state === "running" && !desiredRunning.has(key)) p.add(`container ${c.id.slice(0, 12)} (${key}) runs, but the projection declares no running workload for it`);
  }
  return checkOf("live.compute", LIVE_TITLES.compute, p, checked);
}

/** live.compute: the containers podman runs against the workloads and envelopes of the projection. */
export async function checkLiveCompute(t: LiveTargets): Promise<AuditCheck> {
  const compute = computeOf(t.services);
  if (compute === undefined) return skippedCheck("live.compute", LIVE_TITLES.compute, "the compute service is not running in this process");
  if (compute.degraded !== undefined) return skippedCheck("live.compute", LIVE_TITLES.compute, `compute runs degraded: ${compute.degraded}`);
  await compute.settle();
  return stable(t.size, () => computeOnce(t, compute));
}

/** Every live check, in report order. */
export async function liveChecks(t: LiveTargets): Promise<AuditCheck[]> {
  return [await checkLiveDns(t), await checkLiveGateway(t), await checkLiveCompute(t)];
}

/** The live checks skipped, each with `reason` (an audit without running services). */
export function liveSkipped(reason: string): AuditCheck[] {
  return [
    skippedCheck("live.dns", LIVE_TITLES.dns, reason),
    skippedCheck("live.gateway", LIVE_TITLES.gateway, reason),
    skippedCheck("live.compute", LIVE_TITLES.compute, reason),
  ];
}
