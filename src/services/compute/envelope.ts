/**
 * The compute part of an IMVU's envelope (gate 7): CPU in millicores, memory, disk (volume bytes),
 * processes, and the network slice. Pure: no I/O. Field names and units are those of
 * core/policy's envelope, so a policy envelope is assignable to this type as it stands.
 */
import { z } from "zod";
import { computeErrors } from "./errors.ts";

/** Bounds of each limit (a schema accepts nothing outside them). */
export const CPU_MILLIS_MIN = 10;
export const CPU_MILLIS_MAX = 64_000;
export const MEMORY_BYTES_MIN = 16n * 1024n * 1024n;
export const MEMORY_BYTES_MAX = 1024n * 1024n * 1024n * 1024n;
export const DISK_BYTES_MAX = 64n * 1024n * 1024n * 1024n * 1024n;
export const PIDS_MIN = 8;
export const PIDS_MAX = 65_536;

const bytes = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,15})$/, "a byte count as a decimal string without leading zeros")
  .transform((s) => BigInt(s));

/** Wire schema of a compute envelope (bytes as decimal strings, as in commands). */
export const EnvelopeSchema = z
  .object({
    cpuMillis: z.number().int().min(CPU_MILLIS_MIN).max(CPU_MILLIS_MAX),
    memoryBytes: bytes.refine((b) => b >= MEMORY_BYTES_MIN && b <= MEMORY_BYTES_MAX, "memory out of bounds"),
    diskBytes: bytes.refine((b) => b <= DISK_BYTES_MAX, "disk out of bounds"),
    pids: z.number().int().min(PIDS_MIN).max(PIDS_MAX),
    bandwidthBytesPerSec: bytes,
    requestsPerSec: z.number().int().min(0).max(1_000_000),
    connections: z.number().int().min(0).max(1_000_000),
  })
  .strip();

/** A compute envelope with byte amounts as bigint. */
export type Envelope = z.output<typeof EnvelopeSchema>;
/** A compute envelope as carried in JSON. */
export type EnvelopeWire = z.input<typeof EnvelopeSchema>;

/** The names of the limits an envelope declares. */
export type Resource = keyof Envelope;

/** The names of the envelope profiles. */
export type ProfileName = "small" | "medium" | "large";

const MiB = 1024n * 1024n;
const GiB = 1024n * MiB;

/** Named profiles (the same figures as core/policy's profiles for these fields). */
export const PROFILES: Readonly<Record<ProfileName, Envelope>> = {
  small: {
    cpuMillis: 500, memoryBytes: 256n * MiB, diskBytes: 1n * GiB, pids: 128,
    bandwidthBytesPerSec: 5n * MiB, requestsPerSec: 200, connections: 200,
  },
  medium: {
    cpuMillis: 1000, memoryBytes: 1n * GiB, diskBytes: 10n * GiB, pids: 512,
    bandwidthBytesPerSec: 20n * MiB, requestsPerSec: 1000, connections: 1000,
  },
  large: {
    cpuMillis: 2000, memoryBytes: 4n * GiB, diskBytes: 50n * GiB, pids: 2048,
    bandwidthBytesPerSec: 100n * MiB, requestsPerSec: 10_000, connections: 10_000,
  },
};

/** The envelope of a named profile. */
export function profile(name: ProfileName): Envelope {
  return PROFILES[name];
}

/** Parses a wire envelope; throws COMPUTE_ENVELOPE_INVALID naming the first bad field. */
export function parseEnvelope(input: unknown): Envelope {
  const r = EnvelopeSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw computeErrors.make("COMPUTE_ENVELOPE_INVALID", `${issue?.path.join(".") ?? "?"}: ${issue?.message ?? "invalid"}`);
}

/** The JSON form of an envelope. */
export function envelopeToWire(e: Envelope): EnvelopeWire {
  return {
    ...e,
    memoryBytes: e.memoryBytes.toString(),
    diskBytes: e.diskBytes.toString(),
    bandwidthBytesPerSec: e.bandwidthBytesPerSec.toString(),
  };
}

/** What an IMVU uses or asks for, in the envelope's units; absent fields are not checked. */
export type Usage = { readonly [K in Resource]?: Envelope[K] };

/** One limit that usage goes beyond. */
export interface Excess {
  readonly resource: Resource;
  readonly limit: bigint;
  readonly used: bigint;
}

/** The verdict of `fits`: ok, or each limit exceeded. */
export type FitResult = { readonly ok: true } | { readonly ok: false; readonly over: readonly Excess[] };

const RESOURCES: readonly Resource[] = [
  "cpuMillis", "memoryBytes", "diskBytes", "pids", "bandwidthBytesPerSec", "requestsPerSec", "connections",
];

/** Whether `usage` stays within `envelope` (equal is within); lists every limit exceeded. */
export function fits(envelope: Envelope, usage: Usage): FitResult {
  const over: Excess[] = [];
  for (const resource of RESOURCES) {
    const used = usage[resource];
    if (used === undefined) continue;
    const limit = BigInt(envelope[resource]);
    if (BigInt(used) > limit) over.push({ resource, limit, used: BigInt(used) });
  }
  return over.length === 0 ? { ok: true } : { ok: false, over };
}

/** The sum of several usages (for checking many workloads against one envelope). */
export function addUsage(a: Usage, b: Usage): Usage {
  const out: Record<string, number | bigint> = {};
  for (const r of RESOURCES) {
    const x = a[r];
    const y = b[r];
    if (x === undefined && y === undefined) continue;
    const sum = BigInt(x ?? 0) + BigInt(y ?? 0);
    out[r] = typeof (x ?? y) === "bigint" ? sum : Number(sum);
  }
  return out as Usage;
}

/** `podman --cpus` value for millicores: an exact decimal ("0.25" for 250). */
export function cpusFlag(cpuMillis: number): string {
  const whole = Math.trunc(cpuMillis / 1000);
  const frac = cpuMillis % 1000;
  return frac === 0 ? String(whole) : `${whole}.${String(frac).padStart(3, "0").replace(/0+$/, "")}`;
}

/** CFS quota for millicores at a given period (cgroups: cpu.cfs_quota_us / cpu.max). */
export function cfsQuotaUs(cpuMillis: number, periodUs: number): number {
  return Math.max(1000, Math.floor((cpuMillis * periodUs) / 1000));
}

/** A Kubernetes quantity for millicores ("250m", or "2" when whole). */
export function k8sCpu(cpuMillis: number): string {
  return cpuMillis % 1000 === 0 ? String(cpuMillis / 1000) : `${cpuMillis}m`;
}

/** A Kubernetes quantity for bytes: binary suffix when exact ("256Mi"), else plain bytes. */
export function k8sBytes(n: bigint): string {
  const units: [string, bigint][] = [["Ti", 1024n ** 4n], ["Gi", 1024n ** 3n], ["Mi", 1024n ** 2n], ["Ki", 1024n]];
  for (const [suffix, size] of units) if (n >= size && n % size === 0n) return `${n / size}${suffix}`;
  return n.toString();
}
