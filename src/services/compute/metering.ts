/**
 * Metering: CPU seconds, memory peak, block and network bytes per workload per interval, from the
 * cgroup counters the driver reads. Intervals are aligned to multiples of the interval length, and a
 * record is emitted once per (workload, intervalStart): that pair is the idempotency key the ledger
 * records usage under, so a retried report never counts twice. `meterStep` is the pure core.
 */
import type { ContainerDriver, ContainerUsage } from "./driver.ts";
import { LABEL_FABRIC, LABEL_IMVU, LABEL_WORKLOAD } from "./names.ts";

/** The shortest interval metering accepts. */
export const METER_INTERVAL_MS_MIN = 1000;
/** Bound on workloads tracked by one sampler. */
export const METERED_WORKLOADS_MAX = 100_000;

/** Usage of one workload over one interval. */
export interface UsageRecord {
  /** "imvu/name". */
  readonly workload: string;
  readonly imvu: string;
  readonly name: string;
  readonly containerId: string;
  /** Interval bounds in ms since the epoch, aligned to the interval length; end exclusive. */
  readonly intervalStart: number;
  readonly intervalEnd: number;
  readonly cpuSeconds: number;
  readonly memPeakBytes: bigint;
  readonly blkReadBytes: bigint;
  readonly blkWriteBytes: bigint;
  readonly netRxBytes: bigint;
  readonly netTxBytes: bigint;
  /** OOM kills and refused forks inside the interval (throttling episodes, gate 15). */
  readonly oomKills: number;
  readonly pidsLimitHits: number;
}

/** One reading of a workload's counters. */
export interface Reading {
  readonly workload: string;
  readonly imvu: string;
  readonly name: string;
  readonly containerId: string;
  /** When the container started (decides whether its counters so far belong to this interval). */
  readonly startedAtMs: number;
  readonly usage: ContainerUsage;
}

interface Baseline {
  readonly containerId: string;
  readonly intervalStart: number;
  readonly usage: ContainerUsage;
  readonly peak: bigint;
}

/** The sampler's memory between steps. */
export interface MeterState {
  readonly baselines: ReadonlyMap<string, Baseline>;
}

/** A state with nothing seen yet. */
export function emptyMeterState(): MeterState {
  return { baselines: new Map() };
}

function delta(now: bigint, then: bigint): bigint {
  // A counter that went down belongs to a new group (restarted container): count from zero.
  return now >= then ? now - then : now;
}

function deltaN(now: number, then: number): number {
  return now >= then ? now - then : now;
}

/**
 * Folds readings taken at `nowMs` into the state. A workload first seen starts its baseline; when
 * `nowMs` lies in a later interval than the baseline's, the record for [baseline interval start,
 * current interval start) is emitted and the baseline moves on. The memory peak is the highest
 * reading of the interval; where the sampler can reset the kernel's peak at each boundary (cgroup
 * v1), that is the interval's own peak, else the peak since the container started.
 */
export function meterStep(state: MeterState, readings: readonly Reading[], nowMs: number, intervalMs: number): { state: MeterState; records: UsageRecord[] } {
  const intervalStart = Math.floor(nowMs / intervalMs) * intervalMs;
  const next = new Map<string, Baseline>();
  const records: UsageRecord[] = [];
  for (const r of readings.slice(0, METERED_WORKLOADS_MAX)) {
    const prev = state.baselines.get(r.workload);
    const fresh = { containerId: r.containerId, intervalStart, usage: r.usage, peak: r.usage.memoryPeakBytes };
    if (prev === undefined) {
      // Counters are cumulative since the container started: when it started in this interval they
      // all belong here (baseline zero); when earlier, an earlier process may have reported them,
      // so this process counts from now (the part of the interval before it looked is not billed).
      next.set(r.workload, r.startedAtMs >= intervalStart ? { ...fresh, usage: zeroLike(r.usage) } : fresh);
      continue;
    }
    const sameGroup = prev.containerId === r.containerId;
    const base = sameGroup ? prev.usage : zeroLike(r.usage);
    const peak = r.usage.memoryPeakBytes > prev.peak || !sameGroup ? r.usage.memoryPeakBytes : prev.peak;
    if (intervalStart <= prev.intervalStart) {
      next.set(r.workload, { ...prev, containerId: r.containerId, usage: base, peak });
      continue;
    }
    records.push({
      workload: r.workload, imvu: r.imvu, name: r.name, containerId: r.containerId,
      intervalStart: prev.intervalStart, intervalEnd: intervalStart,
      cpuSeconds: Number(delta(r.usage.cpuNanos, base.cpuNanos)) / 1e9,
      memPeakBytes: peak,
      blkReadBytes: delta(r.usage.blkReadBytes, base.blkReadBytes),
      blkWriteBytes: delta(r.usage.blkWriteBytes, base.blkWriteBytes),
      netRxBytes: delta(r.usage.netRxBytes, base.netRxBytes),
      netTxBytes: delta(r.usage.netTxBytes, base.netTxBytes),
      oomKills: deltaN(r.usage.oomKills, base.oomKills),
      pidsLimitHits: deltaN(r.usage.pidsLimitHits, base.pidsLimitHits),
    });
    next.set(r.workload, { ...fresh, peak: r.usage.memoryBytes });
  }
  return { state: { baselines: next }, records };
}

function zeroLike(u: ContainerUsage): ContainerUsage {
  return { ...u, cpuNanos: 0n, blkReadBytes: 0n, blkWriteBytes: 0n, netRxBytes: 0n, netTxBytes: 0n, oomKills: 0, pidsLimitHits: 0 };
}

/** Samples a fabric's running workloads; `tick` emits the records of intervals that closed. */
export class Sampler {
  readonly #driver: ContainerDriver;
  readonly #fabric: string;
  readonly #intervalMs: number;
  readonly #emitted = new Set<string>();
  readonly #resetPeak: ((c: { pid: number }) => void) | undefined;
  #state: MeterState = emptyMeterState();

  constructor(opts: { driver: ContainerDriver; fabric: string; intervalMs: number; resetPeak?: (c: { pid: number }) => void }) {
    if (!(opts.intervalMs >= METER_INTERVAL_MS_MIN)) throw new RangeError(`intervalMs must be at least ${METER_INTERVAL_MS_MIN}`);
    this.#driver = opts.driver;
    this.#fabric = opts.fabric;
    this.#intervalMs = opts.intervalMs;
    this.#resetPeak = opts.resetPeak;
  }

  /** Reads every running workload now and returns the records of the intervals that closed. */
  async tick(nowMs: number = Date.now()): Promise<UsageRecord[]> {
    const containers = await this.#driver.list({ [LABEL_FABRIC]: this.#fabric });
    const readings: Reading[] = [];
    for (const c of containers) {
      if (c.state !== "running") continue;
      const usage = await this.#driver.stats(c);
      if (usage === undefined) continue;
      const imvu = c.labels[LABEL_IMVU] ?? "";
      const name = c.labels[LABEL_WORKLOAD] ?? "";
      readings.push({ workload: `${imvu}/${name}`, imvu, name, containerId: c.id, startedAtMs: c.startedAtMs, usage });
    }
    const { state, records } = meterStep(this.#state, readings, nowMs, this.#intervalMs);
    this.#state = state;
    const out = records.filter((r) => {
      const k = `${r.workload}@${r.intervalStart}`;
      if (this.#emitted.has(k)) return false;
      this.#emitted.add(k);
      return true;
    });
    if (out.length > 0 && this.#resetPeak !== undefined) {
      for (const c of containers) if (c.state === "running" && out.some((r) => r.containerId === c.id)) this.#resetPeak(c);
    }
    return out;
  }
}
