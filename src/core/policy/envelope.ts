/**
 * The resource envelope of an IMVU (gate 7): every limit a service may enforce on it, and nothing
 * else (gate 15). Amounts are integers; bytes are bigint-safe decimal strings on the wire.
 */
import { z } from "zod";

/** The QoS classes that decide who waits under contention at the gateway. */
export const QOS_CLASSES = ["bronze", "silver", "gold"] as const;

const count = (max: number) => z.number().int().min(0).max(max);
const bytes = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,15})$/, "a byte count as a decimal string without leading zeros")
  .transform((s) => BigInt(s));

/** Wire schema of an envelope (what commands carry). */
export const EnvelopeSchema = z
  .object({
    cpuMillis: count(64_000),
    memoryBytes: bytes,
    diskBytes: bytes,
    pids: count(65_536),
    mailboxes: count(10_000),
    mailStorageBytes: bytes,
    dnsRecords: count(100_000),
    routes: count(10_000),
    bandwidthBytesPerSec: bytes,
    requestsPerSec: count(1_000_000),
    connections: count(1_000_000),
    qos: z.enum(QOS_CLASSES),
  })
  .strict();

/** An envelope with byte amounts as bigint. */
export type Envelope = z.output<typeof EnvelopeSchema>;
/** An envelope as carried in JSON. */
export type EnvelopeWire = z.input<typeof EnvelopeSchema>;

const MiB = 1024n * 1024n;
const GiB = 1024n * MiB;

/** Named profiles for `imvu create --profile`. */
export const ENVELOPE_PROFILES: Readonly<Record<"small" | "medium" | "large", Envelope>> = {
  small: {
    cpuMillis: 500, memoryBytes: 256n * MiB, diskBytes: 1n * GiB, pids: 128, mailboxes: 5,
    mailStorageBytes: 1n * GiB, dnsRecords: 200, routes: 10, bandwidthBytesPerSec: 5n * MiB,
    requestsPerSec: 200, connections: 200, qos: "bronze",
  },
  medium: {
    cpuMillis: 1000, memoryBytes: 1n * GiB, diskBytes: 10n * GiB, pids: 512, mailboxes: 50,
    mailStorageBytes: 10n * GiB, dnsRecords: 1000, routes: 50, bandwidthBytesPerSec: 20n * MiB,
    requestsPerSec: 1000, connections: 1000, qos: "silver",
  },
  large: {
    cpuMillis: 2000, memoryBytes: 4n * GiB, diskBytes: 50n * GiB, pids: 2048, mailboxes: 500,
    mailStorageBytes: 50n * GiB, dnsRecords: 10_000, routes: 500, bandwidthBytesPerSec: 100n * MiB,
    requestsPerSec: 10_000, connections: 10_000, qos: "gold",
  },
};

/** The JSON form of an envelope (bigints as decimal strings). */
export function envelopeToWire(e: Envelope): EnvelopeWire {
  return {
    ...e,
    memoryBytes: e.memoryBytes.toString(),
    diskBytes: e.diskBytes.toString(),
    mailStorageBytes: e.mailStorageBytes.toString(),
    bandwidthBytesPerSec: e.bandwidthBytesPerSec.toString(),
  };
}

/** The names of the limits where `next` is above `current` (a raise needs the owner). */
export function raisedLimits(current: Envelope, next: Envelope): (keyof Envelope)[] {
  const out: (keyof Envelope)[] = [];
  for (const k of Object.keys(next) as (keyof Envelope)[]) {
    const raised = k === "qos" ? QOS_CLASSES.indexOf(next.qos) > QOS_CLASSES.indexOf(current.qos) : BigInt(next[k]) > BigInt(current[k]);
    if (raised) out.push(k);
  }
  return out;
}

/** The names of the limits where `next` is below `current`. */
export function loweredLimits(current: Envelope, next: Envelope): (keyof Envelope)[] {
  return raisedLimits(next, current);
}
