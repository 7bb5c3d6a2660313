/**
 * Body schemas of the compute command types (docs/compute.md, "Commands"): what an owner asks
 * (deploy, stop, remove, snapshot, restore, delete a snapshot) and what the compute service
 * reports back with its own identity (a snapshot's digest, a runtime event). Spread into
 * BODY_SCHEMAS by schemas.ts; kept here so the compute surface reads as one page. No imports
 * from schemas.ts (it imports this file).
 */
import { z } from "zod";

/** Bounds of compute command fields. */
export const COMPUTE_LIMITS = {
  cmdArgsMax: 256,
  cmdArgCharsMax: 4096,
  envVarsMax: 128,
  envValueCharsMax: 32_768,
  detailCharsMax: 1000,
} as const;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256");
const decimalBytes = z.string().regex(/^(0|[1-9][0-9]{0,15})$/, "a byte count as a decimal string");
const entryIndex = z.string().regex(/^(0|[1-9][0-9]{0,18})$/, "a ledger index as a decimal string");
const timestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, "an ISO 8601 UTC time like 2026-01-02T03:04:05.000Z");

/** A workload name: a DNS label of at most 40 characters (as services/compute names containers). */
export const WorkloadName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, "a workload name: a DNS label of at most 40 characters");

/**
 * Where a workload's root file system comes from. `rootfs` and `app` name the SHA-256 of the
 * deterministic tar of a directory the author uploaded to its IMVU's source area first
 * (PUT /v1/compute/imvus/{imvu}/sources/{sha256}): the ledger binds the exact bytes, not a path.
 */
export const WorkloadSource = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("image"), ref: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,511}$/, "an image reference") }).strict(),
  z.object({ kind: z.literal("rootfs"), sha256: hex64 }).strict(),
  z.object({ kind: z.literal("app"), sha256: hex64 }).strict(),
]);

/** What one workload claims of its IMVU's envelope (gate 7 sums the claims of all workloads). */
export const WorkloadResources = z
  .object({
    cpuMillis: z.number().int().min(10).max(64_000).optional(),
    memoryBytes: decimalBytes.optional(),
    pids: z.number().int().min(8).max(65_536).optional(),
    diskBytes: decimalBytes.optional(),
  })
  .strict();

/** Kinds of `compute.event`. */
export const COMPUTE_EVENT_KINDS = [
  "oom-killed",
  "exited",
  "restarted",
  "pids-limit",
  "disk-over-envelope",
  "restored",
  "snapshot-deleted",
  "op-failed",
  "rejected",
] as const;

/** Why a snapshot was taken. */
export const SNAPSHOT_KINDS = ["requested", "pre-restore", "pre-remove"] as const;

/** The body schema of each compute command type. */
export const COMPUTE_BODY_SCHEMAS = {
  "compute.workload.deploy": z
    .object({
      name: WorkloadName,
      source: WorkloadSource,
      cmd: z.array(z.string().max(COMPUTE_LIMITS.cmdArgCharsMax)).min(1).max(COMPUTE_LIMITS.cmdArgsMax).optional(),
      port: z.number().int().min(1).max(65_535).optional(),
      env: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(COMPUTE_LIMITS.envValueCharsMax))
        .refine((e) => Object.keys(e).length <= COMPUTE_LIMITS.envVarsMax, `at most ${COMPUTE_LIMITS.envVarsMax} variables`)
        .optional(),
      resources: WorkloadResources.optional(),
      /** The IMVU whose volume is mounted at /data: only the command's own (gate 2). Default: own. */
      volume: z.string().min(1).max(63).optional(),
      /** The jurisdiction the author expects the workload to run under: must be the IMVU's (gate 9). */
      jurisdiction: z.string().regex(/^[A-Z]{2}$/).optional(),
    })
    .strict(),
  "compute.workload.stop": z.object({ name: WorkloadName }).strict(),
  "compute.workload.remove": z.object({ name: WorkloadName }).strict(),
  "compute.snapshot.create": z.object({}).strict(),
  "compute.snapshot.restore": z.object({ snapshot: hex64 }).strict(),
  "compute.snapshot.delete": z.object({ snapshot: hex64 }).strict(),
  "compute.snapshot.record": z
    .object({ snapshot: hex64, bytes: decimalBytes, of: entryIndex, kind: z.enum(SNAPSHOT_KINDS) })
    .strict(),
  "compute.event": z
    .object({
      kind: z.enum(COMPUTE_EVENT_KINDS),
      /** Idempotency key: (container id, time) for runtime events, "op-<index>" for operations. */
      eventId: z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces"),
      at: timestamp,
      workload: WorkloadName.optional(),
      exitCode: z.number().int().min(-1).max(255).optional(),
      count: z.number().int().min(1).max(1e12).optional(),
      of: entryIndex.optional(),
      snapshot: hex64.optional(),
      code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/).optional(),
      detail: z.string().max(COMPUTE_LIMITS.detailCharsMax).optional(),
    })
    .strict(),
} as const;
