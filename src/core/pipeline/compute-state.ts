/**
 * Projection records of compute (docs/compute.md, "Projection"): the workloads an IMVU declared,
 * the snapshots the compute service recorded, the operations (snapshot, restore, remove, delete)
 * waiting for the service, and the runtime events it reported. Derived only from ledger entries.
 */

/** Where a declared workload's root file system comes from (as the deploy command carried it). */
export type WorkloadSourceRecord =
  | { readonly kind: "image"; readonly ref: string }
  | { readonly kind: "rootfs"; readonly sha256: string }
  | { readonly kind: "app"; readonly sha256: string };

/** A workload's claim on the IMVU's envelope; bytes as decimal strings. */
export interface WorkloadResourcesRecord {
  readonly cpuMillis?: number | undefined;
  readonly memoryBytes?: string | undefined;
  readonly pids?: number | undefined;
  readonly diskBytes?: string | undefined;
}

/** A declared workload, key "<imvu>/<name>". */
export interface ComputeWorkloadRecord {
  readonly imvu: string;
  readonly name: string;
  readonly source: WorkloadSourceRecord;
  readonly cmd?: readonly string[];
  readonly port?: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly resources?: WorkloadResourcesRecord;
  readonly state: "running" | "stopped";
  /** Inherited from the IMVU (gate 9). */
  readonly jurisdiction: string;
  readonly deployedIndex: string;
  /** Set by an applied remove: the workload goes once its pre-remove snapshot is recorded (gate 12). */
  readonly removingIndex?: string;
}

/** A recorded snapshot, key "<imvu>/<sha256>". */
export interface ComputeSnapshotRecord {
  readonly imvu: string;
  readonly sha256: string;
  readonly bytes: string;
  readonly kind: "requested" | "pre-restore" | "pre-remove";
  /** The index of the operation it was taken for. */
  readonly of: string;
  readonly jurisdiction: string;
  readonly recordedIndex: string;
  readonly deletedIndex?: string;
}

/** An operation the compute service carries out, key "<imvu>/<index padded to 20>". */
export interface ComputeOpRecord {
  readonly imvu: string;
  readonly index: string;
  readonly type: "snapshot" | "restore" | "remove" | "delete";
  readonly workload?: string;
  readonly snapshot?: string;
  readonly status: "pending" | "done" | "failed";
  /** The snapshot recorded for it (requested, pre-restore or pre-remove). */
  readonly recorded?: string;
  readonly doneIndex?: string;
  readonly code?: string;
}

/** A runtime event, key "<imvu>/<eventId>" (a repeated report is the same row). */
export interface ComputeEventRecord {
  readonly imvu: string;
  readonly kind: string;
  readonly eventId: string;
  readonly at: string;
  readonly workload?: string;
  readonly exitCode?: number;
  readonly count?: number;
  readonly of?: string;
  readonly code?: string;
  readonly detail?: string;
  readonly index: string;
}

/** The key of an operation row: zero-padded so rows list in ledger order. */
export function computeOpKey(imvu: string, index: string): string {
  return `${imvu}/${index.padStart(20, "0")}`;
}
