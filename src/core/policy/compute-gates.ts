/**
 * The gates' compute rules (docs/compute.md, "Gates"), pure functions of the GateContext. Each
 * returns undefined for a command it does not concern, so gates.ts asks them first and falls
 * back to its general rule.
 */
import type { ComputeWorkloadRecord } from "../pipeline/compute-state.ts";
import { computeOpKey } from "../pipeline/compute-state.ts";
import type { StateReader } from "../pipeline/state.ts";
import { deny, ok, type GateContext } from "./context.ts";
import type { Envelope } from "./envelope.ts";

type Result = { pass: boolean; reason: string };

/** Workloads one IMVU may declare (services/compute WORKLOADS_PER_IMVU_MAX). */
export const COMPUTE_WORKLOADS_MAX = 32;
/** The least an envelope must give before any workload runs (services/compute envelope bounds). */
export const COMPUTE_MIN = { cpuMillis: 10, memoryBytes: 16n * 1024n * 1024n, pids: 8 } as const;

const imvuName = (ctx: GateContext): string => ctx.cmd.imvu ?? "";

/** The live workloads of an IMVU, by name. */
export function workloadsOf(state: StateReader, imvu: string): ComputeWorkloadRecord[] {
  return state.list("compute-workload", `${imvu}/`).map(([, w]) => w);
}

/** What the workloads of an IMVU claim together (bigint for every resource). */
export interface ComputeClaim {
  cpuMillis: bigint;
  memoryBytes: bigint;
  pids: bigint;
  diskBytes: bigint;
  workloads: number;
}

/** The sum of the declared claims of `workloads`. */
export function claimOf(workloads: readonly ComputeWorkloadRecord[]): ComputeClaim {
  const sum: ComputeClaim = { cpuMillis: 0n, memoryBytes: 0n, pids: 0n, diskBytes: 0n, workloads: workloads.length };
  for (const w of workloads) {
    const r = w.resources ?? {};
    sum.cpuMillis += BigInt(r.cpuMillis ?? 0);
    sum.memoryBytes += BigInt(r.memoryBytes ?? "0");
    sum.pids += BigInt(r.pids ?? 0);
    sum.diskBytes += BigInt(r.diskBytes ?? "0");
  }
  return sum;
}

/** The limits where `claim` goes beyond `envelope`, as readable strings. */
export function claimOver(claim: ComputeClaim, envelope: Envelope): string[] {
  const out: string[] = [];
  if (claim.cpuMillis > BigInt(envelope.cpuMillis)) out.push(`cpu ${claim.cpuMillis}m > ${envelope.cpuMillis}m`);
  if (claim.memoryBytes > envelope.memoryBytes) out.push(`memory ${claim.memoryBytes} > ${envelope.memoryBytes} bytes`);
  if (claim.pids > BigInt(envelope.pids)) out.push(`pids ${claim.pids} > ${envelope.pids}`);
  if (claim.diskBytes > envelope.diskBytes) out.push(`disk ${claim.diskBytes} > ${envelope.diskBytes} bytes`);
  return out;
}

/** Gate 2: a compute command names only its own IMVU's workloads, volume, snapshots and operations. */
export function computeIsolation(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  const imvu = imvuName(ctx);
  switch (cmd.type) {
    case "compute.workload.deploy": {
      const vol = cmd.body.volume;
      if (vol !== undefined && vol !== imvu) return deny(`the workload names the volume of IMVU ${vol}; a workload mounts only its own IMVU's volume`);
      return ok(`the workload mounts only ${imvu}'s volume`);
    }
    case "compute.workload.stop":
    case "compute.workload.remove": {
      const w = state.get("compute-workload", `${imvu}/${cmd.body.name}`);
      if (!w) return deny(`${imvu} has no workload ${cmd.body.name}`);
      if (cmd.type === "compute.workload.remove" && w.removingIndex !== undefined) return deny(`${cmd.body.name} is already being removed (entry ${w.removingIndex})`);
      return ok(`the workload ${cmd.body.name} belongs to ${imvu}`);
    }
    case "compute.snapshot.restore":
    case "compute.snapshot.delete": {
      const s = state.get("compute-snapshot", `${imvu}/${cmd.body.snapshot}`);
      if (!s || s.deletedIndex !== undefined) {
        const elsewhere = state.list("compute-snapshot").some(([, r]) => r.sha256 === cmd.body.snapshot && r.imvu !== imvu);
        return deny(elsewhere ? `snapshot ${cmd.body.snapshot} belongs to another IMVU` : `${imvu} has no snapshot ${cmd.body.snapshot}`);
      }
      return ok(`the snapshot belongs to ${imvu}`);
    }
    case "compute.snapshot.record": {
      const o = state.get("compute-op", computeOpKey(imvu, cmd.body.of));
      if (!o) return deny(`entry ${cmd.body.of} is no compute operation of ${imvu}`);
      return ok(`recorded for ${imvu}'s operation at entry ${cmd.body.of}`);
    }
    case "compute.event": {
      if (cmd.body.of !== undefined && !state.get("compute-op", computeOpKey(imvu, cmd.body.of))) {
        return deny(`entry ${cmd.body.of} is no compute operation of ${imvu}`);
      }
      return ok(`the event concerns ${imvu}`);
    }
    case "compute.snapshot.create":
      return ok(`snapshots only ${imvu}'s volume`);
    default:
      return undefined;
  }
}

/** Gate 7 for a deploy: the envelope can run workloads and the sum of all claims stays within it. */
export function computeQuota(ctx: GateContext, envelopeOf: () => Envelope | undefined): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type === "usage.report") {
    const key = `${imvuName(ctx)}/${cmd.body.service}/${cmd.body.intervalStart}`;
    const seen = state.get("usage", key);
    if (seen) return deny(`the interval ${cmd.body.intervalStart} of ${cmd.body.service} was already reported at entry ${seen.index}; usage is never counted twice`);
    if (cmd.body.intervalEnd <= cmd.body.intervalStart) return deny("the interval ends before it starts");
    return ok(`first report of ${cmd.body.service} for the interval ${cmd.body.intervalStart}`);
  }
  if (cmd.type !== "compute.workload.deploy") return undefined;
  const imvu = imvuName(ctx);
  const envelope = envelopeOf();
  if (!envelope) return deny(`IMVU ${imvu} does not exist`);
  if (envelope.cpuMillis < COMPUTE_MIN.cpuMillis || envelope.memoryBytes < COMPUTE_MIN.memoryBytes || envelope.pids < COMPUTE_MIN.pids) {
    return deny(`the envelope of ${imvu} gives no compute (at least ${COMPUTE_MIN.cpuMillis}m cpu, ${COMPUTE_MIN.memoryBytes} bytes, ${COMPUTE_MIN.pids} pids)`);
  }
  const others = workloadsOf(state, imvu).filter((w) => w.name !== cmd.body.name);
  if (others.length + 1 > COMPUTE_WORKLOADS_MAX) return deny(`at most ${COMPUTE_WORKLOADS_MAX} workloads per IMVU`);
  const next = { name: cmd.body.name, resources: cmd.body.resources ?? {} } as unknown as ComputeWorkloadRecord;
  const over = claimOver(claimOf([...others, next]), envelope);
  if (over.length > 0) return deny(`the workloads of ${imvu} would claim beyond the envelope: ${over.join("; ")}`);
  return ok(`${others.length + 1} workload(s) within the envelope`);
}

/** Gate 7 when lowering an envelope: the declared claims and the latest measured compute use still fit. */
export function computeBelowUse(state: StateReader, imvu: string, next: Envelope): string[] {
  const out = claimOver(claimOf(workloadsOf(state, imvu)), next).map((s) => `declared ${s}`);
  const reports = state.list("usage", `${imvu}/compute/`);
  const latest = reports[reports.length - 1]?.[1];
  if (latest) {
    const peak = latest.metrics["memPeakBytes"];
    if (peak !== undefined && BigInt(peak) > next.memoryBytes) out.push(`memory in use ${peak} > ${next.memoryBytes}`);
    const disk = latest.metrics["diskBytes"];
    if (disk !== undefined && BigInt(disk) > next.diskBytes) out.push(`disk in use ${disk} > ${next.diskBytes}`);
  }
  return out;
}

/** Gate 9: compute resources inherit the IMVU's jurisdiction; nothing moves data across it. */
export function computeJurisdiction(ctx: GateContext, jurisdiction: string): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type === "compute.workload.deploy") {
    const want = cmd.body.jurisdiction;
    if (want !== undefined && want !== jurisdiction) return deny(`the workload asks for ${want}, but ${cmd.imvu ?? ""} is tagged ${jurisdiction}`);
    return ok(`the workload inherits ${jurisdiction}`);
  }
  if (cmd.type === "compute.snapshot.restore") {
    const s = state.get("compute-snapshot", `${imvuName(ctx)}/${cmd.body.snapshot}`);
    if (s && s.jurisdiction !== jurisdiction) return deny(`the snapshot was taken under ${s.jurisdiction}, the IMVU is now tagged ${jurisdiction}`);
    return ok(`the snapshot stays under ${jurisdiction}`);
  }
  if (cmd.type === "compute.snapshot.record") return ok(`the snapshot inherits ${jurisdiction}`);
  return undefined;
}

/** Gate 12: destructive compute commands snapshot first; snapshots are immutable; only the owner deletes one. */
export function computeSnapshots(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  switch (cmd.type) {
    case "compute.workload.remove":
      return ok("the compute service snapshots the volume (pre-remove) and removes the workload only once that digest is recorded");
    case "compute.snapshot.restore":
      return ok("the compute service snapshots the current state (pre-restore) and records it before replacing the volume");
    case "compute.snapshot.create":
      return ok("a content-addressed, read-only snapshot; its digest is recorded by the compute service");
    case "compute.snapshot.delete":
      if (!ctx.actorClasses.has("owner")) return deny("only the IMVU's owner can delete a snapshot; never an admin or a delegate");
      return ok("deleted by the owner");
    case "compute.snapshot.record": {
      const s = state.get("compute-snapshot", `${imvuName(ctx)}/${cmd.body.snapshot}`);
      if (s && s.deletedIndex === undefined && s.bytes !== cmd.body.bytes) {
        return deny(`snapshot ${cmd.body.snapshot} was recorded with ${s.bytes} bytes; a snapshot cannot be altered`);
      }
      return ok(s && s.deletedIndex === undefined ? "the same snapshot again (same digest and size)" : "a new content-addressed snapshot");
    }
    default:
      return undefined;
  }
}

/** Gate 13: the compute kinds created (all exportable: workloads, volumes, snapshots). */
export function computeCreatedKinds(type: string): string[] | undefined {
  if (type === "compute.workload.deploy") return ["workload", "volume"];
  if (type === "compute.snapshot.create" || type === "compute.snapshot.record") return ["snapshot"];
  return undefined;
}

/** Gate 16: compute reads and reports stay inside the IMVU. */
export function computeLeakage(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  const imvu = imvuName(ctx);
  switch (cmd.type) {
    case "compute.event": {
      const w = cmd.body.workload;
      if (w !== undefined && !state.get("compute-workload", `${imvu}/${w}`)) {
        const elsewhere = state.list("compute-workload").some(([, r]) => r.name === w && r.imvu !== imvu);
        if (elsewhere) return deny(`the event names workload ${w}, which belongs to another IMVU`);
        return deny(`${imvu} declares no workload ${w}`);
      }
      return ok("the event is recorded in this IMVU's feed only");
    }
    case "compute.workload.deploy":
    case "compute.workload.stop":
    case "compute.workload.remove":
      return ok(`runs on ${imvu}'s own network, volume and control group; ports published on 127.0.0.1 only`);
    default:
      return undefined;
  }
}
