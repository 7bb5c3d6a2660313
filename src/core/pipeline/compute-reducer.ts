/**
 * Reducers of the compute command types (docs/compute.md, "Projection"). Pure: the same entry
 * gives the same changes, so replay rebuilds the same compute state. The owner's commands
 * declare (workloads) or queue (operations); the compute service's reports complete them.
 */
import type { Command } from "../policy/schemas.ts";
import { computeOpKey, type ComputeOpRecord, type ComputeWorkloadRecord } from "./compute-state.ts";
import { del, put, type Change, type StateReader } from "./state.ts";

/** The compute command types. */
export type ComputeCommand = Extract<Command, { type: `compute.${string}` }>;

/** True for a compute command type. */
export function isComputeCommand(cmd: Command): cmd is ComputeCommand {
  return cmd.type.startsWith("compute.");
}

/** What the reducer knows about the entry. */
interface Facts {
  readonly index: bigint;
}

function imvuOf(cmd: Command): string {
  if (cmd.imvu === undefined) throw new Error("invariant: a compute command names an IMVU (gate 1)");
  return cmd.imvu;
}

function workloadOf(state: StateReader, imvu: string, name: string): ComputeWorkloadRecord {
  const w = state.get("compute-workload", `${imvu}/${name}`);
  if (!w) throw new Error(`invariant: workload ${imvu}/${name} vanished between gates and reducer`);
  return w;
}

function op(imvu: string, index: string, type: ComputeOpRecord["type"], extra: Partial<ComputeOpRecord> = {}): Change {
  return put("compute-op", computeOpKey(imvu, index), { imvu, index, type, status: "pending", ...extra });
}

/** The changes an applied compute command makes. */
export function reduceCompute(state: StateReader, cmd: ComputeCommand, facts: Facts): Change[] {
  const index = facts.index.toString();
  const imvu = imvuOf(cmd);
  switch (cmd.type) {
    case "compute.workload.deploy": {
      const b = cmd.body;
      const record: ComputeWorkloadRecord = {
        imvu,
        name: b.name,
        source: b.source,
        ...(b.cmd === undefined ? {} : { cmd: b.cmd }),
        ...(b.port === undefined ? {} : { port: b.port }),
        ...(b.env === undefined ? {} : { env: b.env }),
        ...(b.resources === undefined ? {} : { resources: b.resources }),
        state: "running",
        jurisdiction: state.get("imvu", imvu)?.jurisdiction ?? "ZZ",
        deployedIndex: index,
      };
      return [put("compute-workload", `${imvu}/${b.name}`, record)];
    }
    case "compute.workload.stop":
      return [put("compute-workload", `${imvu}/${cmd.body.name}`, { ...workloadOf(state, imvu, cmd.body.name), state: "stopped" })];
    case "compute.workload.remove":
      return [
        put("compute-workload", `${imvu}/${cmd.body.name}`, { ...workloadOf(state, imvu, cmd.body.name), removingIndex: index }),
        op(imvu, index, "remove", { workload: cmd.body.name }),
      ];
    case "compute.snapshot.create":
      return [op(imvu, index, "snapshot")];
    case "compute.snapshot.restore":
      return [op(imvu, index, "restore", { snapshot: cmd.body.snapshot })];
    case "compute.snapshot.delete": {
      const s = state.get("compute-snapshot", `${imvu}/${cmd.body.snapshot}`);
      if (!s) throw new Error("invariant: the snapshot vanished between gates and reducer");
      return [put("compute-snapshot", `${imvu}/${cmd.body.snapshot}`, { ...s, deletedIndex: index }), op(imvu, index, "delete", { snapshot: cmd.body.snapshot })];
    }
    case "compute.snapshot.record":
      return reduceRecord(state, imvu, cmd, index);
    case "compute.event":
      return reduceEvent(state, imvu, cmd, index);
    default: {
      const never: never = cmd;
      throw new Error(`no compute reducer for ${(never as Command).type}`);
    }
  }
}

function reduceRecord(state: StateReader, imvu: string, cmd: Extract<ComputeCommand, { type: "compute.snapshot.record" }>, index: string): Change[] {
  const b = cmd.body;
  const out: Change[] = [];
  const key = `${imvu}/${b.snapshot}`;
  const existing = state.get("compute-snapshot", key);
  // The same bytes give the same digest: a live record is kept as first recorded (immutable);
  // a deleted one is recorded anew.
  if (!existing || existing.deletedIndex !== undefined) {
    out.push(
      put("compute-snapshot", key, {
        imvu, sha256: b.snapshot, bytes: b.bytes, kind: b.kind, of: b.of, jurisdiction: state.get("imvu", imvu)?.jurisdiction ?? "ZZ", recordedIndex: index,
      }),
    );
  }
  const opKey = computeOpKey(imvu, b.of);
  const o = state.get("compute-op", opKey);
  if (!o) return out;
  if (o.type === "remove") {
    out.push(put("compute-op", opKey, { ...o, status: "done", recorded: b.snapshot, doneIndex: index }));
    // Only the declaration this remove was for: a redeploy since then is a new declaration and stays.
    const w = o.workload === undefined ? undefined : state.get("compute-workload", `${imvu}/${o.workload}`);
    if (w?.removingIndex === o.index) out.push(del("compute-workload", `${imvu}/${w.name}`));
  } else if (o.type === "snapshot") {
    out.push(put("compute-op", opKey, { ...o, status: "done", recorded: b.snapshot, doneIndex: index }));
  } else {
    // restore: the pre-restore snapshot is recorded before the volume is replaced; "restored" completes it.
    out.push(put("compute-op", opKey, { ...o, recorded: b.snapshot }));
  }
  return out;
}

function reduceEvent(state: StateReader, imvu: string, cmd: Extract<ComputeCommand, { type: "compute.event" }>, index: string): Change[] {
  const b = cmd.body;
  const out: Change[] = [
    put("compute-event", `${imvu}/${b.eventId}`, {
      imvu, kind: b.kind, eventId: b.eventId, at: b.at, index,
      ...(b.workload === undefined ? {} : { workload: b.workload }),
      ...(b.exitCode === undefined ? {} : { exitCode: b.exitCode }),
      ...(b.count === undefined ? {} : { count: b.count }),
      ...(b.of === undefined ? {} : { of: b.of }),
      ...(b.code === undefined ? {} : { code: b.code }),
      ...(b.detail === undefined ? {} : { detail: b.detail }),
    }),
  ];
  if (b.of === undefined) return out;
  const opKey = computeOpKey(imvu, b.of);
  const o = state.get("compute-op", opKey);
  if (!o || o.status !== "pending") return out;
  if (b.kind === "restored" || b.kind === "snapshot-deleted") out.push(put("compute-op", opKey, { ...o, status: "done", doneIndex: index }));
  if (b.kind === "op-failed") {
    out.push(put("compute-op", opKey, { ...o, status: "failed", doneIndex: index, ...(b.code === undefined ? {} : { code: b.code }) }));
    // A remove whose snapshot failed does not remove (gate 12): the workload stays declared.
    const w = o.workload === undefined ? undefined : state.get("compute-workload", `${imvu}/${o.workload}`);
    if (o.type === "remove" && w?.removingIndex === o.index) {
      const { removingIndex: _r, ...rest } = w;
      out.push(put("compute-workload", `${imvu}/${w.name}`, rest));
    }
  }
  return out;
}
