/**
 * The compute service in the stack (docs/compute.md, "Service module"). It never writes state:
 * it follows the pipeline (`onRecorded`), converges podman to the projection (`desiredFromState`,
 * debounced, plus a periodic pass that heals containers killed by hand), carries out the
 * operations owners queued (snapshot, restore, remove, delete a snapshot) and reports back with
 * signed commands of the compute service identity: `compute.snapshot.record` (every snapshot's
 * digest is in the ledger), `compute.event` (OOM kills, exits, restarts, pids-limit hits,
 * rejections, failed operations) and `usage.report` (one per IMVU per metering interval, skipped
 * when the ledger already has that interval: a restart neither loses nor double-counts).
 * After a restart it adopts the running containers (spec-hash labels) and resumes pending
 * operations from the projection. Without podman it starts degraded and says so; every compute
 * command is then answered in the ledger with COMPUTE_PODMAN_MISSING, and the other services run.
 */
import { isNexusError } from "../../core/errors.ts";
import type { Receipt, RecordedCommand } from "../../core/pipeline/pipeline.ts";
import type { CommandDraft } from "../../core/pipeline/sign.ts";
import type { ComputeOpRecord, ComputeWorkloadRecord } from "../../core/pipeline/compute-state.ts";
import type { ContainerDriver } from "../../services/compute/driver.ts";
import type { Envelope } from "../../services/compute/envelope.ts";
import { computeErrors } from "../../services/compute/errors.ts";
import { ComputeFabric, type WorkloadStatus } from "../../services/compute/fabric.ts";
import { FABRIC_ENV, fabricForHome } from "../../services/compute/names.ts";
import type { UsageRecord } from "../../services/compute/metering.ts";
import type { Sampler } from "../../services/compute/metering.ts";
import { podmanAvailable, type PodmanStatus } from "../../services/compute/podman.ts";
import { computeEnvelope, desiredFromState, desiredImvu } from "../../services/compute/projection.ts";
import type { ComputeEvent, ImvuDesired, ReconcileReport } from "../../services/compute/reconciler.ts";
import type { SnapshotInfo } from "../../services/compute/snapshot.ts";
import { ensureSourceTree, sourceTreePath } from "../../services/compute/sources.ts";
import type { VolumeMode } from "../../services/compute/volumes.ts";
import type { Platform } from "../platform.ts";
import type { RunningService, ServiceContext, ServiceModule } from "../service.ts";

/** Length of a metering interval unless configured. */
export const METER_INTERVAL_MS_DEFAULT = 60_000;
/** Quiet time after a recorded command before a reconcile pass (commands arrive in bursts). */
export const RECONCILE_DEBOUNCE_MS = 100;
/** A full pass at least this often (heals what changed behind Nexus's back). */
export const RESYNC_MS_DEFAULT = 15_000;
/** What a degraded compute service shows as its endpoint. */
export const DEGRADED_ENDPOINT = "compute: podman not installed (apt-get install podman runc)";
/** Overrides the fabric id (an installation moved to another directory keeps its containers). */
export { FABRIC_ENV, fabricForHome };
/** Longest detail carried by a reported event. */
const DETAIL_CHARS_MAX = 1000;

/** Options of the compute service. */
export interface ComputeServiceOptions {
  /** Labels everything compute creates; default $NEXUS_COMPUTE_FABRIC, else derived from the data directory. */
  readonly fabric?: string;
  /** Default: podman. */
  readonly driver?: ContainerDriver;
  readonly volumeMode?: VolumeMode | "auto";
  readonly meterIntervalMs?: number;
  readonly resyncMs?: number;
  readonly debounceMs?: number;
  /** How podman's presence is checked (tests force the degraded mode). */
  readonly podman?: () => PodmanStatus;
}

/** Where the gateway reaches a workload: its port published on 127.0.0.1. */
export interface WorkloadAddress {
  readonly imvu: string;
  readonly workload: string;
  readonly host: "127.0.0.1";
  readonly port: number;
}

/** The running compute service (what the API routes and the gateway adapter use). */
export interface RunningCompute extends RunningService {
  readonly name: "compute";
  /** Why compute cannot run here, or undefined. */
  readonly degraded: string | undefined;
  readonly fabric: ComputeFabric | undefined;
  readonly platform: Platform;
  /** The workload's published address as last observed (refreshed after every pass). */
  address(imvu: string, workload: string): WorkloadAddress | undefined;
  /** Every published address as last observed. */
  addresses(): readonly WorkloadAddress[];
  /** The workloads of an IMVU as the runtime shows them now. */
  status(imvu: string): Promise<WorkloadStatus[]>;
  /** The last lines a workload printed. */
  logs(imvu: string, workload: string, tailLines: number): Promise<string>;
  /** Live counters of an IMVU's running workloads and its volume. */
  liveUsage(imvu: string): Promise<Awaited<ReturnType<ComputeFabric["usage"]>>>;
  /** The desired state of one IMVU (what `compute manifests` renders). */
  desired(imvu: string): ImvuDesired | undefined;
  /** Runs a pass now (ops, sources, reconcile) and waits for it. */
  reconcileNow(): Promise<void>;
  /** Waits until no recorded command is waiting to be acted on. */
  settle(): Promise<void>;
}

/** The running compute service among a stack's services. */
export function computeOf(services: readonly RunningService[]): RunningCompute | undefined {
  return services.find((s): s is RunningCompute => s.name === "compute" && "settle" in s);
}

const iso = (ms: number): string => new Date(ms).toISOString();

function errorCode(e: unknown): { code: string; detail: string } {
  const detail = (e instanceof Error ? e.message : String(e)).slice(0, DETAIL_CHARS_MAX);
  return { code: isNexusError(e) && /^[A-Z][A-Z0-9_]{0,63}$/.test(e.code) ? e.code : "INTERNAL", detail };
}

class ComputeRuntime implements RunningCompute {
  readonly name = "compute" as const;
  readonly endpoints: readonly string[];
  readonly degraded: string | undefined;
  readonly fabric: ComputeFabric | undefined;
  readonly platform: Platform;
  readonly #ctx: ServiceContext;
  readonly #opts: ComputeServiceOptions;
  readonly #attempted = new Set<string>();
  readonly #submitted = new Set<string>();
  readonly #timers: NodeJS.Timeout[] = [];
  #addresses = new Map<string, WorkloadAddress>();
  #chain: Promise<void> = Promise.resolve();
  #debounce: NodeJS.Timeout | undefined;
  #queued = 0;
  #unsubscribe: (() => void) | undefined;
  #sampler: Sampler | undefined;
  #stopped = false;
  #metering: Promise<void> | undefined;

  constructor(ctx: ServiceContext, opts: ComputeServiceOptions, fabric: ComputeFabric | undefined, degraded: string | undefined) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.platform = ctx.platform;
    this.fabric = fabric;
    this.degraded = degraded;
    this.endpoints = degraded !== undefined
      ? [DEGRADED_ENDPOINT]
      : [`fabric ${fabric?.fabric ?? "?"} on ${fabric?.driver.kind ?? "?"}; workload ports published on 127.0.0.1 for the gateway`];
  }

  /** Subscribes, resumes pending work, starts the resync and metering timers. */
  begin(): void {
    this.#unsubscribe = this.platform.pipeline.onRecorded((r) => this.#onRecorded(r));
    this.#enqueue(() => this.#cycle());
    const resync = this.#opts.resyncMs ?? RESYNC_MS_DEFAULT;
    this.#timers.push(setInterval(() => this.#schedule(), resync).unref());
    if (this.fabric !== undefined) {
      const intervalMs = this.#opts.meterIntervalMs ?? METER_INTERVAL_MS_DEFAULT;
      this.#sampler = this.fabric.sampler(intervalMs);
      const tickMs = Math.max(500, Math.min(5000, Math.floor(intervalMs / 4)));
      // Metering runs beside the passes (reads only), one tick at a time, so a long pass does not
      // push a reading past an interval boundary.
      this.#timers.push(setInterval(() => this.#tick(), tickMs).unref());
    }
  }

  #onRecorded(r: RecordedCommand): void {
    if (this.#stopped) return;
    // An IMVU's record matters only once it has workloads (envelope, suspension, departure): a new
    // IMVU's creation must not queue a pass ahead of its first deploy.
    const relevant = r.changes.some(
      (c) => c.table === "compute-workload" || c.table === "compute-op" || (c.table === "imvu" && this.platform.state.list("compute-workload", `${c.key}/`).length > 0),
    );
    if (relevant) this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.#debounce !== undefined) return;
    this.#queued += 1;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#queued -= 1;
      this.#enqueue(() => this.#cycle());
    }, this.#opts.debounceMs ?? RECONCILE_DEBOUNCE_MS);
  }

  #enqueue(work: () => Promise<void>): Promise<void> {
    this.#queued += 1;
    const run = this.#chain.then(async () => {
      try {
        if (!this.#stopped) await work();
      } catch (e) {
        this.#ctx.log(`pass failed: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        this.#queued -= 1;
      }
    });
    this.#chain = run;
    return run;
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 1000 && this.#queued > 0; i++) {
      await this.#chain;
      if (this.#queued > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  reconcileNow(): Promise<void> {
    return this.#enqueue(() => this.#cycle());
  }

  async #cycle(): Promise<void> {
    await this.#runOps();
    await this.#reconcile();
  }

  async #submit(draft: CommandDraft): Promise<Receipt | undefined> {
    try {
      const r = await this.platform.submitAsService("compute", draft);
      if (r.outcome === "denied") {
        const why = r.gates.filter((g) => !g.pass).map((g) => `gate ${g.gate}: ${g.reason}`).join("; ");
        this.#ctx.log(`${draft.type} on ${draft.imvu ?? "?"} denied (entry ${r.index}): ${why}`);
      }
      return r;
    } catch (e) {
      this.#ctx.log(`${draft.type} on ${draft.imvu ?? "?"} not recorded: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  }

  /** Reports an event once (by its id, in this process and in the projection). */
  async #event(imvu: string, body: Record<string, unknown> & { eventId: string }): Promise<void> {
    const key = `${imvu}/${body.eventId}`;
    if (this.#submitted.has(key) || this.platform.state.get("compute-event", key)) return;
    this.#submitted.add(key);
    await this.#submit({ type: "compute.event", imvu, body });
  }

  async #runOps(): Promise<void> {
    const pending = this.platform.state
      .list("compute-op")
      .map(([k, o]) => [k, o] as const)
      .filter(([k, o]) => o.status === "pending" && !this.#attempted.has(k))
      .sort((a, b) => (BigInt(a[1].index) < BigInt(b[1].index) ? -1 : 1));
    for (const [k, o] of pending) {
      if (this.#stopped) return;
      this.#attempted.add(k);
      try {
        if (this.degraded !== undefined || this.fabric === undefined) throw this.#missing();
        await this.#executeOp(this.fabric, o);
      } catch (e) {
        const { code, detail } = errorCode(e);
        await this.#event(o.imvu, { kind: "op-failed", eventId: `op-${o.index}`, at: iso(Date.now()), of: o.index, code, detail });
      }
    }
  }

  #missing(): Error {
    return computeErrors.make("COMPUTE_PODMAN_MISSING", this.degraded);
  }

  async #snapshot(fabric: ComputeFabric, imvu: string): Promise<SnapshotInfo> {
    const rec = this.platform.state.get("imvu", imvu);
    const envelope = rec ? computeEnvelope(rec) : undefined;
    if (envelope) await fabric.volumes.ensure(imvu, envelope.diskBytes);
    return fabric.snapshot(imvu);
  }

  async #record(o: ComputeOpRecord, info: SnapshotInfo, kind: "requested" | "pre-restore" | "pre-remove"): Promise<void> {
    const sha = info.digest.replace(/^sha256:/, "");
    const r = await this.#submit({ type: "compute.snapshot.record", imvu: o.imvu, body: { snapshot: sha, bytes: String(info.sizeBytes), of: o.index, kind } });
    if (r?.outcome !== "applied") throw computeErrors.make("COMPUTE_UNAVAILABLE", `the snapshot ${sha} could not be recorded`);
  }

  async #executeOp(fabric: ComputeFabric, o: ComputeOpRecord): Promise<void> {
    switch (o.type) {
      case "snapshot":
        await this.#record(o, await this.#snapshot(fabric, o.imvu), "requested");
        return;
      case "remove":
        // Gate 12: the volume is snapshotted and its digest recorded before the workload goes.
        await this.#record(o, await this.#snapshot(fabric, o.imvu), "pre-remove");
        return;
      case "restore": {
        const target = o.snapshot ?? "";
        const pre = await this.#snapshot(fabric, o.imvu);
        await this.#record(o, pre, "pre-restore");
        const res = await fabric.restore(o.imvu, `sha256:${target}`);
        if (res.preRestore.digest !== pre.digest) await this.#record(o, res.preRestore, "pre-restore");
        await this.#event(o.imvu, { kind: "restored", eventId: `op-${o.index}`, at: iso(Date.now()), of: o.index, snapshot: target });
        return;
      }
      case "delete": {
        const target = o.snapshot ?? "";
        try {
          await fabric.deleteSnapshot(o.imvu, `sha256:${target}`);
        } catch (e) {
          if (!isNexusError(e, "COMPUTE_SNAPSHOT_NOT_FOUND")) throw e;
        }
        await this.#event(o.imvu, { kind: "snapshot-deleted", eventId: `op-${o.index}`, at: iso(Date.now()), of: o.index, snapshot: target });
        return;
      }
      default: {
        const never: never = o.type;
        throw new Error(`unknown operation ${String(never)}`);
      }
    }
  }

  #workload(imvu: string, name: string): ComputeWorkloadRecord | undefined {
    return this.platform.state.get("compute-workload", `${imvu}/${name}`);
  }

  async #rejected(imvu: string, name: string, code: string, detail: string): Promise<void> {
    const w = this.#workload(imvu, name);
    if (!w) return;
    await this.#event(imvu, { kind: "rejected", eventId: `rejected-${name}-${w.deployedIndex}`, at: iso(Date.now()), workload: name, code, detail: detail.slice(0, DETAIL_CHARS_MAX) });
  }

  async #prepareSources(): Promise<void> {
    const home = this.platform.home;
    for (const [, w] of this.platform.state.list("compute-workload")) {
      if (w.source.kind === "image") continue;
      try {
        await ensureSourceTree(home, w.imvu, w.source.sha256);
      } catch (e) {
        const { code, detail } = errorCode(e);
        await this.#rejected(w.imvu, w.name, code, detail);
      }
    }
  }

  async #reconcile(): Promise<void> {
    const fabric = this.fabric;
    if (this.degraded !== undefined || fabric === undefined) {
      for (const [, w] of this.platform.state.list("compute-workload")) {
        await this.#rejected(w.imvu, w.name, "COMPUTE_PODMAN_MISSING", this.degraded ?? "compute is not running");
      }
      return;
    }
    await this.#prepareSources();
    const home = this.platform.home;
    const desired = desiredFromState(this.platform.state, { sourceDir: (imvu, sha) => sourceTreePath(home, imvu, sha) });
    const report = await fabric.reconcile(desired);
    await this.#report(report);
    await this.#refreshAddresses(fabric);
  }

  async #report(report: ReconcileReport): Promise<void> {
    for (const e of report.events) await this.#runtimeEvent(e);
    for (const r of report.rejected) await this.#rejected(r.imvu, r.workload, r.code, r.message);
    for (const res of report.results) {
      const a = res.action;
      if (!res.ok && (a.type === "run" || a.type === "start")) {
        await this.#rejected(a.imvu, a.workload, res.error?.code ?? "INTERNAL", res.error?.message ?? "");
      } else if (res.ok && a.type === "start" && a.reason !== "created" && this.#workload(a.imvu, a.workload)) {
        await this.#event(a.imvu, { kind: "restarted", eventId: `restart-${a.containerId.slice(0, 12)}@${report.startedAtMs}`, at: iso(report.startedAtMs), workload: a.workload, detail: `after ${a.reason}` });
      } else if (!res.ok) {
        this.#ctx.log(`${a.type} ${a.imvu}/${"workload" in a ? a.workload : ""} failed: ${res.error?.code ?? ""} ${res.error?.message ?? ""}`);
      }
    }
  }

  async #runtimeEvent(e: ComputeEvent): Promise<void> {
    if (e.type === "disk-over-envelope") {
      const minute = Math.floor(Date.now() / 60_000);
      await this.#event(e.imvu, { kind: "disk-over-envelope", eventId: `disk@${minute}`, at: iso(minute * 60_000), detail: `${e.usedBytes} of ${e.limitBytes} bytes` });
      return;
    }
    if (!this.#workload(e.imvu, e.workload)) return;
    const base = { eventId: `${e.containerId.slice(0, 12)}@${e.atMs}`, at: iso(e.atMs), workload: e.workload };
    if (e.type === "oom-killed") await this.#event(e.imvu, { kind: "oom-killed", ...base });
    else await this.#event(e.imvu, { kind: "exited", ...base, exitCode: Math.max(-1, Math.min(255, e.exitCode)) });
  }

  async #refreshAddresses(fabric: ComputeFabric): Promise<void> {
    const next = new Map<string, WorkloadAddress>();
    for (const w of await fabric.list()) {
      if (w.state === "running" && w.hostPort !== undefined) next.set(`${w.imvu}/${w.name}`, { imvu: w.imvu, workload: w.name, host: "127.0.0.1", port: w.hostPort });
    }
    this.#addresses = next;
  }

  #tick(): void {
    if (this.#stopped || this.#metering !== undefined) return;
    this.#metering = this.#meter()
      .catch((e: unknown) => this.#ctx.log(`metering failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        this.#metering = undefined;
      });
  }

  async #meter(): Promise<void> {
    if (this.#sampler === undefined || this.fabric === undefined) return;
    const records = await this.#sampler.tick();
    const groups = new Map<string, UsageRecord[]>();
    for (const r of records) {
      const k = `${r.imvu}\u0000${r.intervalStart}\u0000${r.intervalEnd}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const list of groups.values()) await this.#usage(this.fabric, list);
  }

  async #usage(fabric: ComputeFabric, list: readonly UsageRecord[]): Promise<void> {
    const first = list[0];
    if (!first) return;
    const imvu = first.imvu;
    const rec = this.platform.state.get("imvu", imvu);
    if (!rec) return;
    const start = iso(first.intervalStart);
    // Idempotent by interval: what the ledger already has is not reported again (gate 7 would deny it).
    if (this.platform.state.get("usage", `${imvu}/compute/${start}`)) return;
    const sum = (f: (r: UsageRecord) => bigint): string => list.reduce((a, r) => a + f(r), 0n).toString();
    const metrics: Record<string, string> = {
      workloads: String(list.length),
      cpuMs: sum((r) => BigInt(Math.round(r.cpuSeconds * 1000))),
      memPeakBytes: sum((r) => r.memPeakBytes),
      blkReadBytes: sum((r) => r.blkReadBytes),
      blkWriteBytes: sum((r) => r.blkWriteBytes),
      netRxBytes: sum((r) => r.netRxBytes),
      netTxBytes: sum((r) => r.netTxBytes),
      oomKills: sum((r) => BigInt(r.oomKills)),
      pidsLimitHits: sum((r) => BigInt(r.pidsLimitHits)),
    };
    const envelope: Envelope | undefined = computeEnvelope(rec);
    if (envelope) metrics["diskBytes"] = fabric.volumes.usage(imvu, envelope.diskBytes).usedBytes.toString();
    await this.#submit({ type: "usage.report", imvu, body: { service: "compute", intervalStart: start, intervalEnd: iso(first.intervalEnd), metrics } });
    for (const r of list) {
      if (r.pidsLimitHits > 0 && this.#workload(imvu, r.name)) {
        await this.#event(imvu, { kind: "pids-limit", eventId: `pids-${r.name}@${r.intervalStart}`, at: start, workload: r.name, count: r.pidsLimitHits });
      }
    }
  }

  address(imvu: string, workload: string): WorkloadAddress | undefined {
    return this.#addresses.get(`${imvu}/${workload}`);
  }

  addresses(): readonly WorkloadAddress[] {
    return [...this.#addresses.values()];
  }

  #need(): ComputeFabric {
    if (this.fabric === undefined) throw this.#missing();
    return this.fabric;
  }

  async status(imvu: string): Promise<WorkloadStatus[]> {
    return this.#need().list(imvu);
  }

  async logs(imvu: string, workload: string, tailLines: number): Promise<string> {
    return this.#need().logs(imvu, workload, tailLines);
  }

  async liveUsage(imvu: string): ReturnType<ComputeFabric["usage"]> {
    const rec = this.platform.state.get("imvu", imvu);
    const envelope = rec ? computeEnvelope(rec) : undefined;
    if (!envelope) throw computeErrors.make("COMPUTE_ENVELOPE_INVALID", `${imvu} has no compute envelope`);
    return this.#need().usage(imvu, envelope);
  }

  desired(imvu: string): ImvuDesired | undefined {
    const home = this.platform.home;
    return desiredImvu(this.platform.state, imvu, { sourceDir: (i, sha) => sourceTreePath(home, i, sha) });
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    for (const t of this.#timers) clearInterval(t);
    if (this.#debounce !== undefined) {
      clearTimeout(this.#debounce);
      this.#debounce = undefined;
      this.#queued -= 1;
    }
    await this.#chain;
    await this.#metering;
    this.#stopped = true;
    // Workloads keep running: the next start adopts them.
  }
}

/** A compute service module with options (tests: own fabric id, short intervals). */
export function createComputeService(opts: ComputeServiceOptions = {}): ServiceModule {
  return {
    name: "compute",
    start: async (ctx: ServiceContext): Promise<RunningCompute> => {
      let fabric: ComputeFabric | undefined;
      let degraded: string | undefined;
      if (opts.driver === undefined) {
        const status = (opts.podman ?? podmanAvailable)();
        if (!status.available) degraded = status.message;
      }
      if (degraded === undefined) {
        try {
          fabric = new ComputeFabric({
            home: ctx.platform.home, fabric: opts.fabric ?? process.env[FABRIC_ENV] ?? fabricForHome(ctx.platform.home), log: ctx.log,
            ...(opts.driver === undefined ? {} : { driver: opts.driver }),
            ...(opts.volumeMode === undefined ? {} : { volumeMode: opts.volumeMode }),
          });
        } catch (e) {
          degraded = e instanceof Error ? e.message : String(e);
        }
      }
      if (degraded !== undefined) ctx.log(`${DEGRADED_ENDPOINT}: ${degraded}; compute commands are answered with COMPUTE_PODMAN_MISSING`);
      const rt = new ComputeRuntime(ctx, opts, fabric, degraded);
      rt.begin();
      return rt;
    },
  };
}

/** The compute service of `nexus up` (podman, fabric per data directory). */
export const computeService: ServiceModule = createComputeService();
