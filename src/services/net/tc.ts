/**
 * Kernel shaping of a slice's bandwidth (Linux tc): a token bucket filter (tc-tbf(8)) as the root
 * queueing discipline of an interface, so traffic that bypasses the gateway is held to the same
 * declared rate. On an IMVU's container bridge both directions are held (`shapeBridge`): traffic
 * toward the IMVU's containers by TBF on the bridge's egress, traffic from them by redirecting the
 * ingress of every container port of the bridge (the host side of each veth, tc-mirred(8)) to one
 * ifb device whose egress has the same TBF, so all the IMVU's containers share the rate — the
 * layout of the CNI bandwidth plugin. (The bridge's own ingress cannot be redirected: the kernel
 * loses what ifb hands back to a bridge master device.) Runs `tc` and `ip` (iproute2), optionally inside a
 * network namespace (`ip netns exec`). Root only; every failure is NET_TC_FAILED.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { netErrors } from "./errors.ts";

const run = promisify(execFile);

/** Queueing delay TBF may add before dropping (tc-tbf "latency"). */
export const TBF_LATENCY_MS = 50;
/** Smallest burst: a few full-size frames, or TBF cannot send at all (tc-tbf(8) "burst"). */
export const TBF_BURST_BYTES_MIN = 16 * 1514;

const DEV_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Where a tc command runs. */
export interface TcTarget {
  /** Interface name (IFNAMSIZ: at most 15 characters). */
  readonly dev: string;
  /** Network namespace name (`ip netns`), or the current one. */
  readonly netns?: string;
}

async function tc(t: TcTarget, args: readonly string[]): Promise<string> {
  if (!DEV_RE.test(t.dev)) throw netErrors.make("NET_TC_FAILED", `bad interface name ${t.dev}`);
  return iproute(t.netns, "tc", args);
}

/** Runs `tc` or `ip` (inside `netns` when named); stdout, or NET_TC_FAILED with the tool's stderr. */
async function iproute(netns: string | undefined, tool: "tc" | "ip", args: readonly string[]): Promise<string> {
  if (netns !== undefined && !NETNS_RE.test(netns)) throw netErrors.make("NET_TC_FAILED", `bad namespace name ${netns}`);
  const [file, argv] = netns === undefined ? [tool, [...args]] : ["ip", ["netns", "exec", netns, tool, ...args]];
  try {
    return (await run(file, argv, { encoding: "utf8", timeout: 10_000 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    throw netErrors.make("NET_TC_FAILED", `${file} ${argv.join(" ")}: ${(err.stderr ?? err.message ?? "").trim()}`);
  }
}

/** The TBF parameters for a rate in bytes/s: burst of 1/10 s (at least TBF_BURST_BYTES_MIN). */
export function tbfParams(bytesPerSec: number): { rateBits: number; burstBytes: number } {
  if (!Number.isSafeInteger(bytesPerSec) || bytesPerSec <= 0) throw netErrors.make("NET_TC_FAILED", "the rate must be a positive whole number of bytes/s");
  return { rateBits: bytesPerSec * 8, burstBytes: Math.max(TBF_BURST_BYTES_MIN, Math.ceil(bytesPerSec / 10)) };
}

/** Holds the interface's egress to `bytesPerSec` (replaces any root qdisc). */
export async function applyRate(t: TcTarget, bytesPerSec: number): Promise<void> {
  const p = tbfParams(bytesPerSec);
  await tc(t, ["qdisc", "replace", "dev", t.dev, "root", "tbf", "rate", `${p.rateBits}bit`, "burst", String(p.burstBytes), "latency", `${TBF_LATENCY_MS}ms`]);
}

/** Removes the shaping (back to the default qdisc); a missing qdisc is not an error. */
export async function clearRate(t: TcTarget): Promise<void> {
  try {
    await tc(t, ["qdisc", "del", "dev", t.dev, "root"]);
  } catch (e) {
    if (!String((e as Error).message).includes("No such file") && !String((e as Error).message).includes("Cannot delete qdisc with handle of zero")) throw e;
  }
}

/** The TBF rate on the interface in bytes/s, or undefined when it is not shaped by TBF. */
export async function currentRate(t: TcTarget): Promise<number | undefined> {
  const out = await tc(t, ["-j", "qdisc", "show", "dev", t.dev]);
  let rows: unknown;
  try {
    rows = JSON.parse(out);
  } catch {
    throw netErrors.make("NET_TC_FAILED", "tc -j printed output that is not JSON");
  }
  for (const r of Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []) {
    const opts = r.options as Record<string, unknown> | undefined;
    if (r.kind === "tbf" && r.root === true && typeof opts?.rate === "number") return Math.round(opts.rate);
  }
  return undefined;
}

/** Name prefix of the ifb devices that carry bridges' container traffic; the bridge's interface index follows. */
export const IFB_PREFIX = "nxifb";
/** The u32 filter handle of the ingress redirect (one filter, matching every packet). */
const REDIRECT_HANDLE = "800::1";

/** A bridge as the kernel names it: its name and interface index (the index names its ifb). */
export interface BridgeTarget extends TcTarget {
  readonly index: number;
}

/** The ifb device that carries the container traffic of the bridge with interface index `bridgeIndex`. */
export function ifbName(bridgeIndex: number): string {
  if (!Number.isSafeInteger(bridgeIndex) || bridgeIndex <= 0 || bridgeIndex >= 2 ** 31) throw netErrors.make("NET_TC_FAILED", `bad interface index ${bridgeIndex}`);
  return `${IFB_PREFIX}${bridgeIndex}`;
}

const missing = (e: unknown): boolean => /No such file|Cannot find device|does not exist|Cannot delete qdisc with handle of zero|Invalid handle/.test(String((e as Error).message));
const inNs = (netns: string | undefined): { netns?: string } => (netns === undefined ? {} : { netns });

async function ignoreMissing(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!missing(e)) throw e;
  }
}

/** Redirects everything a port receives (what its container sends) to `ifb`. Idempotent. */
export async function redirectPort(port: TcTarget, ifb: string): Promise<void> {
  if (!DEV_RE.test(ifb)) throw netErrors.make("NET_TC_FAILED", `bad interface name ${ifb}`);
  await tc(port, ["qdisc", "replace", "dev", port.dev, "handle", "ffff:", "ingress"]);
  await tc(port, [
    "filter", "replace", "dev", port.dev, "parent", "ffff:", "prio", "1", "handle", REDIRECT_HANDLE, "protocol", "all",
    "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb,
  ]);
}

/**
 * Holds both directions of a bridge to `bytesPerSec`: TBF on the bridge (toward its containers)
 * and on its ifb, to which each of `ports` (from its containers) is redirected. The ifb is shaped
 * before any port is redirected, so no packet passes unshaped. Idempotent.
 */
export async function shapeBridge(t: BridgeTarget, bytesPerSec: number, ports: readonly string[]): Promise<void> {
  const ifb = ifbName(t.index);
  tbfParams(bytesPerSec);
  try {
    await iproute(t.netns, "ip", ["link", "add", ifb, "type", "ifb"]);
  } catch (e) {
    if (!/File exists/.test(String((e as Error).message))) throw e;
  }
  await iproute(t.netns, "ip", ["link", "set", ifb, "up"]);
  await applyRate({ dev: ifb, ...inNs(t.netns) }, bytesPerSec);
  await applyRate(t, bytesPerSec);
  for (const p of ports) await redirectPort({ dev: p, ...inNs(t.netns) }, ifb);
}

/** Removes a bridge's shaping, its ports' redirects and then its ifb; what is already gone is not an error. */
export async function unshapeBridge(t: BridgeTarget, ports: readonly string[]): Promise<void> {
  for (const p of ports) await ignoreMissing(tc({ dev: p, ...inNs(t.netns) }, ["qdisc", "del", "dev", p, "handle", "ffff:", "ingress"]));
  await ignoreMissing(tc(t, ["qdisc", "del", "dev", t.dev, "root"]));
  await ignoreMissing(iproute(t.netns, "ip", ["link", "del", ifbName(t.index)]));
}

function parseJson(out: string, what: string): unknown {
  try {
    return JSON.parse(out === "" ? "[]" : out);
  } catch {
    throw netErrors.make("NET_TC_FAILED", `${what} printed output that is not JSON`);
  }
}

const rowsOf = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? (v as unknown[]).filter((r): r is Record<string, unknown> => typeof r === "object" && r !== null) : []);
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** One network interface (`ip -d link`): its kind (bridge, veth, ifb...) and the bridge it is a port of. */
export interface LinkInfo {
  readonly name: string;
  readonly index: number;
  readonly kind: string | undefined;
  readonly master: string | undefined;
}

/** Every interface (one `ip -j -d link show`). */
export async function listLinks(netns?: string): Promise<LinkInfo[]> {
  const out: LinkInfo[] = [];
  for (const l of rowsOf(parseJson(await iproute(netns, "ip", ["-j", "-d", "link", "show"]), "ip link show"))) {
    if (typeof l.ifname !== "string" || !DEV_RE.test(l.ifname) || typeof l.ifindex !== "number") continue;
    const kind = (l.linkinfo as Record<string, unknown> | undefined)?.info_kind;
    out.push({ name: l.ifname, index: l.ifindex, kind: typeof kind === "string" ? kind : undefined, master: typeof l.master === "string" ? l.master : undefined });
  }
  return out;
}

/** One queueing discipline (`tc -s qdisc`): the root TBF's rate and counters, or an ingress qdisc. */
export interface QdiscInfo {
  readonly dev: string;
  readonly kind: string;
  readonly root: boolean;
  /** TBF rate in bytes/s. */
  readonly rate: number | undefined;
  /** Times TBF held packets back for tokens; drops; bytes sent. */
  readonly overlimits: number;
  readonly drops: number;
  readonly bytes: number;
}

/** Every queueing discipline of every interface (one `tc -s -j qdisc show`). */
export async function listQdiscs(netns?: string): Promise<QdiscInfo[]> {
  const out: QdiscInfo[] = [];
  for (const r of rowsOf(parseJson(await iproute(netns, "tc", ["-s", "-j", "qdisc", "show"]), "tc -s qdisc show"))) {
    if (typeof r.dev !== "string" || typeof r.kind !== "string") continue;
    const rate = (r.options as Record<string, unknown> | undefined)?.rate;
    out.push({
      dev: r.dev, kind: r.kind, root: r.root === true, rate: typeof rate === "number" ? Math.round(rate) : undefined,
      overlimits: num(r.overlimits), drops: num(r.drops), bytes: num(r.bytes),
    });
  }
  return out;
}

/** The device a port's ingress is redirected to (its u32 mirred filter), if any. */
export async function portRedirect(port: TcTarget): Promise<string | undefined> {
  for (const f of rowsOf(parseJson(await tc(port, ["-j", "filter", "show", "dev", port.dev, "parent", "ffff:"]).catch((e: unknown) => {
    if (missing(e) || /Invalid argument|Parent Qdisc doesn't exists/.test(String((e as Error).message))) return "[]";
    throw e;
  }), "tc filter show"))) {
    const actions = rowsOf((f.options as Record<string, unknown> | undefined)?.actions);
    const to = actions.find((a) => a.kind === "mirred" && a.mirred_action === "redirect")?.to_dev;
    if (typeof to === "string" && DEV_RE.test(to)) return to;
  }
  return undefined;
}

/** What holds a bridge now, read back from the kernel (each direction's TBF rate in bytes/s). */
export interface BridgeShaping {
  readonly toContainers: number | undefined;
  /** The rate of the ifb every container port is redirected to; undefined if a port is not, or ports disagree. */
  readonly fromContainers: number | undefined;
  readonly ifb: string | undefined;
  readonly ports: readonly string[];
}

/** Reads back a bridge's shaping: its root TBF, each port's redirect and the ifb's TBF. */
export async function bridgeShaping(t: TcTarget): Promise<BridgeShaping> {
  const ns = inNs(t.netns);
  const ports = (await listLinks(t.netns)).filter((l) => l.master === t.dev).map((l) => l.name);
  const qdiscs = await listQdiscs(t.netns);
  const rateOf = (dev: string): number | undefined => qdiscs.find((q) => q.dev === dev && q.root && q.kind === "tbf")?.rate;
  const targets = new Set<string | undefined>();
  for (const p of ports) targets.add(await portRedirect({ dev: p, ...ns }));
  const [ifb] = targets.size === 1 ? [...targets] : [undefined];
  return { toContainers: rateOf(t.dev), fromContainers: ifb === undefined ? undefined : rateOf(ifb), ifb, ports };
}

/** One interface and its IPv4 addresses (`ip -j -4 addr`). */
export interface InterfaceAddresses {
  readonly name: string;
  readonly index: number;
  readonly addresses: readonly { readonly local: string; readonly prefixLength: number }[];
}

/** Every interface with an IPv4 address (in `netns`, or the current namespace). */
export async function interfaceAddresses(netns?: string): Promise<InterfaceAddresses[]> {
  const out: InterfaceAddresses[] = [];
  for (const r of rowsOf(parseJson(await iproute(netns, "ip", ["-j", "-4", "addr", "show"]), "ip addr show"))) {
    if (typeof r.ifname !== "string" || !DEV_RE.test(r.ifname) || typeof r.ifindex !== "number") continue;
    const addresses = rowsOf(r.addr_info)
      .filter((a) => typeof a.local === "string" && typeof a.prefixlen === "number")
      .map((a) => ({ local: a.local as string, prefixLength: a.prefixlen as number }));
    out.push({ name: r.ifname, index: r.ifindex, addresses });
  }
  return out;
}

/** The ifb devices of this scheme whose bridge is gone (its index no longer names a bridge). */
export function orphanIfbs(links: readonly LinkInfo[]): string[] {
  const bridges = new Set(links.filter((l) => l.kind === "bridge").map((l) => l.index));
  const re = new RegExp(`^${IFB_PREFIX}(\\d{1,10})$`);
  return links.filter((l) => l.kind === "ifb" && re.test(l.name) && !bridges.has(Number(re.exec(l.name)?.[1]))).map((l) => l.name);
}

/** Deletes orphan ifb devices (what a bridge removed while no gateway ran leaves behind); returns their names. */
export async function sweepIfbs(netns?: string, links?: readonly LinkInfo[]): Promise<string[]> {
  const deleted: string[] = [];
  for (const name of orphanIfbs(links ?? (await listLinks(netns)))) {
    await ignoreMissing(iproute(netns, "ip", ["link", "del", name]));
    deleted.push(name);
  }
  return deleted;
}
