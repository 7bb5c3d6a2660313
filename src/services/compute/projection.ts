/**
 * The ledger projection as the reconciler's desired state (pure). Each active IMVU that declares
 * workloads is one `ImvuDesired`: its envelope (the compute fields of the policy envelope) and
 * its workloads, with content-addressed sources resolved to the directories the compute service
 * unpacked them into. A suspended IMVU's workloads are desired stopped (kept for their logs); a
 * departed IMVU is not desired at all (its containers go; its volume stays for the exit bundle).
 * A workload being removed stays desired until its pre-remove snapshot is recorded (gate 12).
 */
import type { ComputeWorkloadRecord } from "../../core/pipeline/compute-state.ts";
import type { ImvuRecord, StateReader } from "../../core/pipeline/state.ts";
import { EnvelopeSchema, type Envelope } from "./envelope.ts";
import type { DesiredState, ImvuDesired, WorkloadSpec } from "./reconciler.ts";

/** How content-addressed sources map to directories on this machine. */
export interface ProjectionOptions {
  /** The unpacked tree of an uploaded source of `imvu`. */
  readonly sourceDir: (imvu: string, sha256: string) => string;
}

/** The compute envelope of an IMVU record, or undefined when it gives no compute. */
export function computeEnvelope(imvu: ImvuRecord): Envelope | undefined {
  const r = EnvelopeSchema.safeParse(imvu.envelope);
  return r.success ? r.data : undefined;
}

/** The reconciler's declaration of one workload record. */
export function workloadSpecOf(w: ComputeWorkloadRecord, opts: ProjectionOptions, stopped: boolean): WorkloadSpec {
  const source: WorkloadSpec["source"] =
    w.source.kind === "image" ? { kind: "image", ref: w.source.ref } : { kind: w.source.kind, dir: opts.sourceDir(w.imvu, w.source.sha256) };
  const r = w.resources;
  const resources =
    r === undefined || (r.cpuMillis === undefined && r.memoryBytes === undefined && r.pids === undefined)
      ? undefined
      : {
          ...(r.cpuMillis === undefined ? {} : { cpuMillis: r.cpuMillis }),
          ...(r.memoryBytes === undefined ? {} : { memoryBytes: BigInt(r.memoryBytes) }),
          ...(r.pids === undefined ? {} : { pids: r.pids }),
        };
  return {
    name: w.name,
    source,
    ...(w.cmd === undefined ? {} : { cmd: [...w.cmd] }),
    ...(w.port === undefined ? {} : { port: w.port }),
    ...(w.env === undefined ? {} : { env: { ...w.env } }),
    ...(resources === undefined ? {} : { resources }),
    state: stopped || w.state === "stopped" ? "stopped" : "running",
  };
}

/** One IMVU's desired compute, or undefined when it has none (no workloads, departed, no envelope). */
export function desiredImvu(state: StateReader, name: string, opts: ProjectionOptions): ImvuDesired | undefined {
  const imvu = state.get("imvu", name);
  if (!imvu || imvu.exit?.departedIndex !== undefined) return undefined;
  const records = state.list("compute-workload", `${name}/`).map(([, w]) => w).filter((w) => w.imvu === name);
  if (records.length === 0) return undefined;
  const envelope = computeEnvelope(imvu);
  if (!envelope) return undefined;
  const stopped = imvu.status === "suspended";
  return { imvu: name, envelope, workloads: records.map((w) => workloadSpecOf(w, opts, stopped)) };
}

/** The whole desired state of the fabric, from the projection (pure). */
export function desiredFromState(state: StateReader, opts: ProjectionOptions): DesiredState {
  const names = new Set(state.list("compute-workload").map(([, w]) => w.imvu));
  const imvus: ImvuDesired[] = [];
  for (const name of [...names].sort()) {
    const d = desiredImvu(state, name, opts);
    if (d) imvus.push(d);
  }
  return { imvus };
}
