/**
 * Kernel shaping of IMVU container networks (docs/net.md, "Kernel shaping"): each IMVU's bridge is
 * held, in both directions, to the bandwidth its slice declares, so traffic that bypasses the
 * gateway (a container talking to the host or the Internet directly) is held too. The plan is pure
 * (`planShaping`: what is wanted, what this process holds and what the kernel shows → what to apply
 * and clear); `KernelShaper` runs passes of it with tc.ts and turns the kernel's own throttling
 * counters into throttling episodes (gate 15: no silent throttling). What is wanted comes from an
 * injected function (the platform adapter: the ledger projection and compute's networks).
 */
import { EpisodeTracker, type ThrottleEpisode } from "./slice.ts";
import {
  ifbName, listLinks, listQdiscs, redirectPort, shapeBridge, sweepIfbs, unshapeBridge, type InterfaceAddresses, type LinkInfo, type QdiscInfo,
} from "./tc.ts";

/** Highest rate handed to tc, in bytes/s (8 Tbit/s: keeps rate × 8 a safe integer). */
export const SHAPING_RATE_MAX = 10 ** 12;
/** Most bridges one pass shapes (bounds the tc calls of a pass). */
export const SHAPING_BRIDGES_MAX = 10_000;
/** What an episode's `version` says for the kernel's throttling (it has no route table). */
export const KERNEL_EPISODE_VERSION = "kernel";

/** One IMVU's bridge and the rate its slice declares. */
export interface ShapeWant {
  readonly imvu: string;
  readonly bridge: string;
  readonly bridgeIndex: number;
  readonly bytesPerSec: number;
}

/** What the kernel shows of one bridge (pure reading of `ip link` and `tc qdisc`). */
export interface BridgeObserved {
  /** The bridge's root TBF rate (toward its containers), bytes/s. */
  readonly toContainers: number | undefined;
  /** The root TBF rate of the bridge's ifb (from its containers), bytes/s. */
  readonly ifbRate: number | undefined;
  /** The bridge's ports (host sides of its containers' veths), and those without an ingress redirect. */
  readonly ports: readonly string[];
  readonly unredirected: readonly string[];
}

/** One bridge to shape: all of it (`full`: the rates) or only ports not redirected yet. */
export interface ShapeAction {
  readonly want: ShapeWant;
  readonly full: boolean;
  /** Ports to redirect to the ifb. */
  readonly ports: readonly string[];
}

/** What a pass does: bridges to shape (again) and bridges to release. */
export interface ShapePlan {
  readonly apply: readonly ShapeAction[];
  readonly clear: readonly ShapeWant[];
  /** Wants refused: a bridge named by two IMVUs, or an IMVU with two bridges (neither is shaped). */
  readonly conflicts: readonly ShapeWant[];
}

/**
 * The tc rate for a declared bandwidth: 0 B/s (nothing may pass) becomes 1 B/s, the least TBF
 * takes (with its minimum burst a few frames still pass); rates above SHAPING_RATE_MAX are capped.
 */
export function sliceRate(declared: bigint | number | string): number {
  const b = typeof declared === "bigint" ? declared : BigInt(declared);
  if (b <= 0n) return 1;
  return b > BigInt(SHAPING_RATE_MAX) ? SHAPING_RATE_MAX : Number(b);
}

const same = (a: ShapeWant, b: ShapeWant): boolean => a.bridge === b.bridge && a.bridgeIndex === b.bridgeIndex;

/**
 * Pure: what the kernel shows of `bridge`. A port counts as redirected when it has an ingress
 * qdisc: only this scheme puts one on container veths (podman's CNI plugins do not).
 */
export function observeBridge(links: readonly LinkInfo[], qdiscs: readonly QdiscInfo[], bridge: string, bridgeIndex: number): BridgeObserved {
  const rootTbf = (dev: string): number | undefined => qdiscs.find((q) => q.dev === dev && q.root && q.kind === "tbf")?.rate;
  const ports = links.filter((l) => l.master === bridge).map((l) => l.name);
  const ingress = new Set(qdiscs.filter((q) => q.kind === "ingress").map((q) => q.dev));
  const ifb = ifbName(bridgeIndex);
  return { toContainers: rootTbf(bridge), ifbRate: links.some((l) => l.name === ifb) ? rootTbf(ifb) : undefined, ports, unredirected: ports.filter((p) => !ingress.has(p)) };
}

/**
 * Pure: what to apply and clear so the kernel holds exactly `want`. A wanted bridge is shaped
 * whole when the kernel does not show both rates (the bridge's and its ifb's) at the wanted value,
 * and otherwise only its ports that are not redirected yet (a new container); a held bridge is
 * released when its IMVU is no longer wanted or moved to another bridge (recreated).
 */
export function planShaping(want: readonly ShapeWant[], held: ReadonlyMap<string, ShapeWant>, observed: ReadonlyMap<string, BridgeObserved>): ShapePlan {
  const byImvu = new Map<string, number>();
  const byBridge = new Map<number, number>();
  for (const w of want) {
    byImvu.set(w.imvu, (byImvu.get(w.imvu) ?? 0) + 1);
    byBridge.set(w.bridgeIndex, (byBridge.get(w.bridgeIndex) ?? 0) + 1);
  }
  const conflicts = want.filter((w) => byImvu.get(w.imvu) !== 1 || byBridge.get(w.bridgeIndex) !== 1);
  const ok = want.filter((w) => !conflicts.includes(w));
  const wanted = new Map(ok.map((w) => [w.imvu, w]));
  const clear = [...held.values()].filter((h) => {
    const w = wanted.get(h.imvu);
    return w === undefined || !same(w, h);
  });
  const apply: ShapeAction[] = [];
  for (const w of ok) {
    const o = observed.get(w.bridge) ?? { toContainers: undefined, ifbRate: undefined, ports: [], unredirected: [] };
    if (o.toContainers !== w.bytesPerSec || o.ifbRate !== w.bytesPerSec) apply.push({ want: w, full: true, ports: o.ports });
    else if (o.unredirected.length > 0) apply.push({ want: w, full: false, ports: o.unredirected });
  }
  return { apply, clear, conflicts };
}

function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return (((o[0] ?? 0) << 24) | ((o[1] ?? 0) << 16) | ((o[2] ?? 0) << 8) | (o[3] ?? 0)) >>> 0;
}

/**
 * Pure: the interface that carries `subnet` (an IPv4 CIDR) — the one holding an address of it with
 * its prefix length: the network's bridge holds its gateway address. Undefined when none or several do.
 */
export function bridgeForSubnet(ifaces: readonly InterfaceAddresses[], subnet: string): { name: string; index: number } | undefined {
  const m = /^([\d.]{7,15})\/(\d{1,2})$/.exec(subnet);
  const base = m ? ipv4(m[1] ?? "") : undefined;
  const len = Number(m?.[2]);
  if (base === undefined || !(len >= 8 && len <= 30)) return undefined;
  const mask = (0xffffffff << (32 - len)) >>> 0;
  const found = ifaces.filter((i) => i.addresses.some((a) => {
    const x = ipv4(a.local);
    return x !== undefined && a.prefixLength === len && (x & mask) >>> 0 === (base & mask) >>> 0;
  }));
  const only = found.length === 1 ? found[0] : undefined;
  return only ? { name: only.name, index: only.index } : undefined;
}

/** Options of a kernel shaper. */
export interface KernelShaperOptions {
  /** What should be held now (the adapter: the projection's envelopes and compute's networks). */
  readonly want: () => Promise<readonly ShapeWant[]>;
  /** A kernel throttling episode has ended (limit bandwidthBytesPerSec; count: times TBF held packets back). */
  readonly onThrottle?: (episode: ThrottleEpisode) => void;
  readonly onEvent?: (message: string) => void;
  /** Without packets held back for this long an episode ends (checked at each pass). */
  readonly quietMs: number;
  readonly now?: () => number;
}

/** What one pass did. */
export interface ShapingPass {
  readonly applied: readonly ShapeWant[];
  readonly cleared: readonly ShapeWant[];
  readonly conflicts: readonly ShapeWant[];
  readonly swept: readonly string[];
}

/** Runs shaping passes one at a time (a pass asked for during one runs once after it). */
export class KernelShaper {
  readonly #o: KernelShaperOptions;
  readonly #held = new Map<string, ShapeWant>();
  readonly #counters = new Map<string, number>();
  readonly #episodes: EpisodeTracker;
  #running: Promise<ShapingPass> | undefined;
  #next: Promise<ShapingPass> | undefined;

  constructor(o: KernelShaperOptions) {
    this.#o = o;
    this.#episodes = new EpisodeTracker(o.quietMs);
  }

  /** The bridges this process holds, by IMVU. */
  held(): ReadonlyMap<string, ShapeWant> {
    return this.#held;
  }

  /** Runs a pass (or joins the one queued behind the running pass). */
  pass(): Promise<ShapingPass> {
    if (this.#running === undefined) {
      this.#running = this.#pass().finally(() => (this.#running = undefined));
      return this.#running;
    }
    this.#next ??= this.#running.catch(() => undefined).then(() => {
      this.#next = undefined;
      return this.pass();
    });
    return this.#next;
  }

  /** Waits for passes in flight and reports open episodes; the kernel keeps its shaping (limits hold while no gateway runs). */
  async close(): Promise<void> {
    await this.#next?.catch(() => undefined);
    await this.#running?.catch(() => undefined);
    for (const e of this.#episodes.sweep(this.#now(), true)) this.#report(e);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  async #pass(): Promise<ShapingPass> {
    const want = (await this.#o.want()).slice(0, SHAPING_BRIDGES_MAX);
    // Two reads show the whole kernel side: every link (bridges, ports, ifbs) and every qdisc.
    const links = await listLinks();
    const qdiscs = await listQdiscs();
    const observed = new Map(want.map((w) => [w.bridge, observeBridge(links, qdiscs, w.bridge, w.bridgeIndex)]));
    const plan = planShaping(want, this.#held, observed);
    for (const c of plan.conflicts) this.#event(`${c.bridge} of ${c.imvu} not shaped: a bridge per IMVU and an IMVU per bridge`);
    const cleared: ShapeWant[] = [];
    for (const h of plan.clear) {
      try {
        await unshapeBridge({ dev: h.bridge, index: h.bridgeIndex }, links.filter((l) => l.master === h.bridge).map((l) => l.name));
        this.#held.delete(h.imvu);
        cleared.push(h);
      } catch (e) {
        this.#event(`${h.bridge} of ${h.imvu} not released: ${(e as Error).message}`);
      }
    }
    const applied: ShapeWant[] = [];
    const failed = new Set<ShapeWant>();
    for (const a of plan.apply) {
      try {
        if (a.full) await shapeBridge({ dev: a.want.bridge, index: a.want.bridgeIndex }, a.want.bytesPerSec, a.ports);
        else for (const p of a.ports) await redirectPort({ dev: p }, ifbName(a.want.bridgeIndex));
        applied.push(a.want);
      } catch (e) {
        failed.add(a.want);
        this.#event(`${a.want.bridge} of ${a.want.imvu} not shaped: ${(e as Error).message}`);
      }
    }
    for (const w of want) if (!plan.conflicts.includes(w) && !failed.has(w)) this.#held.set(w.imvu, w);
    const swept = await sweepIfbs(undefined, links).catch((e: unknown) => {
      this.#event(`ifb devices not swept: ${(e as Error).message}`);
      return [] as string[];
    });
    this.#count(qdiscs);
    return { applied, cleared, conflicts: plan.conflicts, swept };
  }

  /** Feeds the episodes from the TBF counters of every held bridge (both directions). */
  #count(qdiscs: readonly QdiscInfo[]): void {
    const now = this.#now();
    const seen = new Set<string>();
    for (const h of this.#held.values()) {
      let held = 0;
      for (const dev of [h.bridge, ifbName(h.bridgeIndex)]) {
        const key = `${h.imvu}\u0000${dev}\u0000${h.bridgeIndex}`;
        const c = qdiscs.find((q) => q.dev === dev && q.root && q.kind === "tbf");
        if (c === undefined) continue;
        seen.add(key);
        const last = this.#counters.get(key);
        // A replaced qdisc starts its counters again from zero.
        if (last !== undefined) held += c.overlimits >= last ? c.overlimits - last : c.overlimits;
        this.#counters.set(key, c.overlimits);
      }
      if (held > 0) this.#episodes.hit(h.imvu, "bandwidthBytesPerSec", h.bytesPerSec, now, KERNEL_EPISODE_VERSION, held);
    }
    for (const k of [...this.#counters.keys()]) if (!seen.has(k)) this.#counters.delete(k);
    for (const e of this.#episodes.sweep(now)) this.#report(e);
  }

  #report(e: ThrottleEpisode): void {
    try {
      this.#o.onThrottle?.(e);
    } catch (err) {
      this.#event(`throttling episode of ${e.imvu} not handed on: ${(err as Error).message}`);
    }
  }

  #event(message: string): void {
    try {
      this.#o.onEvent?.(message);
    } catch {
      // A fault in a callback is not the shaper's.
    }
  }
}
