/**
 * Kernel shaping of the IMVUs' container networks, driven by the ledger projection (docs/net.md,
 * "Kernel shaping"): every IMVU that has not departed and whose podman network (compute's) has a
 * bridge on this host gets that bridge held, both directions, to its envelope's
 * `bandwidthBytesPerSec`; a changed envelope is re-applied; a departed IMVU, or one whose network
 * is gone, is released. Part of the gateway adapter because the slice is the gateway's (gate 15:
 * its throttling episodes are reported signed by the gateway identity); compute owns the networks
 * and this only reads them through its driver.
 */
import { spawnSync } from "node:child_process";
import type { RecordedCommand } from "../../core/pipeline/pipeline.ts";
import { LABEL_FABRIC, LABEL_IMVU } from "../../services/compute/names.ts";
import type { NetworkInfo } from "../../services/compute/driver.ts";
import {
  bridgeForSubnet, interfaceAddresses, KernelShaper, sliceRate, type ShapeWant, type ShapingPass, type ThrottleEpisode,
} from "../../services/net/index.ts";
import type { Platform } from "../platform.ts";
import type { RunningCompute } from "./compute.ts";

/** How often the kernel is checked against the projection and its throttling counters are read. */
export const SHAPING_PASS_MS = 5_000;
/** A kernel throttling episode ends after this long without packets held back (checked at each pass). */
export const SHAPING_QUIET_MS = 4_000;
/** compute's networks are listed again at least this often, and whenever workload addresses change. */
export const NETWORKS_REFRESH_MS = 30_000;
/** Quiet time after a recorded command before a pass (commands arrive in bursts). */
const KICK_DEBOUNCE_MS = 200;

/** Options of the kernel shaping (tests shorten the intervals). */
export interface ShapingOptions {
  readonly passMs?: number;
  readonly quietMs?: number;
  /** false: never shape (the gateway's own shaping still holds traffic through it). */
  readonly enabled?: boolean;
}

/** The kernel shaping as the gateway module runs it. */
export interface GatewayShaping {
  /** Undefined when the machine does not allow it (status says why). */
  readonly shaper: KernelShaper | undefined;
  readonly status: string;
  /** Runs a pass now (networks listed again) and waits for it. */
  pass(): Promise<ShapingPass | undefined>;
  stop(): Promise<void>;
}

/** Why kernel shaping cannot run here, or undefined when it can (root, `tc` and `ip` present). */
export function kernelShapingUnavailable(): string | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "not root";
  for (const tool of ["tc", "ip"]) {
    const r = spawnSync(tool, ["-V"], { encoding: "utf8", timeout: 5_000 });
    if (r.error !== undefined || r.status !== 0) return `${tool} (iproute2) is not installed`;
  }
  return undefined;
}

/** Starts the shaping passes (timer, recorded commands); `onThrottle` gets the kernel's episodes. */
export function startShaping(o: {
  readonly platform: Platform;
  readonly compute: RunningCompute | undefined;
  readonly log: (line: string) => void;
  readonly onThrottle: (e: ThrottleEpisode) => void;
  readonly options?: ShapingOptions;
}): GatewayShaping {
  const { platform, compute, log } = o;
  const why = o.options?.enabled === false ? "disabled" : compute?.fabric === undefined ? "no compute fabric" : kernelShapingUnavailable();
  if (why !== undefined) {
    return { shaper: undefined, status: `kernel shaping of IMVU networks off: ${why}`, pass: () => Promise.resolve(undefined), stop: () => Promise.resolve() };
  }
  let nets: NetworkInfo[] | undefined;
  let listedAtMs = 0;
  let addressesKey = "";
  let relist = true;
  const said = new Set<string>();
  const want = async (): Promise<ShapeWant[]> => {
    const fabric = compute?.fabric;
    if (fabric === undefined || compute === undefined || compute.degraded !== undefined) return [];
    // Bridges appear with a network's first container: list again when workload addresses move.
    const key = compute.addresses().map((a) => `${a.imvu}/${a.workload}:${String(a.port)}`).sort().join(",");
    if (nets === undefined || relist || key !== addressesKey || Date.now() - listedAtMs > NETWORKS_REFRESH_MS) {
      nets = await fabric.driver.listNetworks({ [LABEL_FABRIC]: fabric.fabric });
      listedAtMs = Date.now();
      addressesKey = key;
      relist = false;
    }
    const ifaces = await interfaceAddresses();
    const out: ShapeWant[] = [];
    for (const n of nets) {
      const imvu = n.labels[LABEL_IMVU];
      const rec = imvu === undefined ? undefined : platform.state.get("imvu", imvu);
      if (imvu === undefined || !rec || rec.exit?.departedIndex !== undefined) continue;
      const bridge = bridgeForSubnet(ifaces, n.subnet);
      if (bridge !== undefined) out.push({ imvu, bridge: bridge.name, bridgeIndex: bridge.index, bytesPerSec: sliceRate(rec.envelope.bandwidthBytesPerSec) });
    }
    return out;
  };
  const shaper = new KernelShaper({
    want,
    quietMs: o.options?.quietMs ?? SHAPING_QUIET_MS,
    onThrottle: o.onThrottle,
    onEvent: (m) => {
      // The same fault every pass is said once.
      if (said.size < 1000 && !said.has(m)) log(`kernel shaping: ${m}`);
      said.add(m);
    },
  });
  const run = (): Promise<ShapingPass | undefined> =>
    shaper.pass().catch((e: unknown) => {
      log(`kernel shaping pass failed: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    });
  let kick: NodeJS.Timeout | undefined;
  const off = platform.pipeline.onRecorded((r: RecordedCommand) => {
    if (r.entry.outcome !== "applied" || !r.changes.some((c) => c.table === "imvu" || c.table === "compute-workload")) return;
    relist = true;
    kick ??= setTimeout(() => {
      kick = undefined;
      void run();
    }, KICK_DEBOUNCE_MS);
  });
  const timer = setInterval(() => void run(), o.options?.passMs ?? SHAPING_PASS_MS);
  timer.unref();
  void run();
  return {
    shaper,
    status: "kernel shaping of IMVU networks: tc tbf on each IMVU bridge, both directions, at the envelope's bandwidth",
    pass: () => {
      relist = true;
      return run();
    },
    async stop() {
      clearInterval(timer);
      if (kick !== undefined) clearTimeout(kick);
      off();
      await shaper.close();
    },
  };
}
