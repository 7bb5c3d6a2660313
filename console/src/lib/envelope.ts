/** Envelope profiles (src/core/policy/envelope.ts ENVELOPE_PROFILES) in their wire form. */
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** An envelope as commands carry it (byte amounts as decimal strings). */
export interface EnvelopeWire {
  readonly cpuMillis: number;
  readonly memoryBytes: string;
  readonly diskBytes: string;
  readonly pids: number;
  readonly mailboxes: number;
  readonly mailStorageBytes: string;
  readonly dnsRecords: number;
  readonly routes: number;
  readonly bandwidthBytesPerSec: string;
  readonly requestsPerSec: number;
  readonly connections: number;
  readonly qos: "bronze" | "silver" | "gold";
}

const s = (n: number): string => String(n);

/** The named profiles of `nexus imvu create --profile`. */
export const PROFILES: Readonly<Record<"small" | "medium" | "large", EnvelopeWire>> = {
  small: { cpuMillis: 500, memoryBytes: s(256 * MiB), diskBytes: s(GiB), pids: 128, mailboxes: 5, mailStorageBytes: s(GiB), dnsRecords: 200, routes: 10, bandwidthBytesPerSec: s(5 * MiB), requestsPerSec: 200, connections: 200, qos: "bronze" },
  medium: { cpuMillis: 1000, memoryBytes: s(GiB), diskBytes: s(10 * GiB), pids: 512, mailboxes: 50, mailStorageBytes: s(10 * GiB), dnsRecords: 1000, routes: 50, bandwidthBytesPerSec: s(20 * MiB), requestsPerSec: 1000, connections: 1000, qos: "silver" },
  large: { cpuMillis: 2000, memoryBytes: s(4 * GiB), diskBytes: s(50 * GiB), pids: 2048, mailboxes: 500, mailStorageBytes: s(50 * GiB), dnsRecords: 10_000, routes: 500, bandwidthBytesPerSec: s(100 * MiB), requestsPerSec: 10_000, connections: 10_000, qos: "gold" },
};

/** Human form of a byte count given as a decimal string. */
export function bytesText(v: string | number): string {
  let n = Number(v);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (n < 1024 || unit === "TiB") return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
    n /= 1024;
  }
  return String(v);
}

/** Labels of the envelope's limits, with how to show each. */
export const ENVELOPE_ROWS: readonly { key: keyof EnvelopeWire; label: string; show: (v: unknown) => string }[] = [
  { key: "cpuMillis", label: "CPU", show: (v) => `${Number(v) / 1000} cores` },
  { key: "memoryBytes", label: "Memory", show: (v) => bytesText(String(v)) },
  { key: "diskBytes", label: "Disk", show: (v) => bytesText(String(v)) },
  { key: "pids", label: "Processes", show: String },
  { key: "mailboxes", label: "Mailboxes", show: String },
  { key: "mailStorageBytes", label: "Mail storage", show: (v) => bytesText(String(v)) },
  { key: "dnsRecords", label: "DNS records", show: String },
  { key: "routes", label: "Routes", show: String },
  { key: "bandwidthBytesPerSec", label: "Bandwidth", show: (v) => `${bytesText(String(v))}/s` },
  { key: "requestsPerSec", label: "Requests", show: (v) => `${String(v)}/s` },
  { key: "connections", label: "Connections", show: String },
  { key: "qos", label: "QoS class", show: String },
];
