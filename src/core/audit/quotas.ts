/**
 * The `quotas` check (gate 7 after the fact): every IMVU's current use within its envelope —
 * DNS records, mailboxes and mail storage, routes, the workloads' declared claims (cpu, memory,
 * pids, disk) and count, and the latest measured memory and disk. The gates refuse each command
 * that would go beyond; this finds a state that went beyond anyway (an edited projection, a
 * lowered envelope, a reducer bug). Problem lines name the IMVU and the resource, never the
 * figures (usage is the IMVU's own, gate 16).
 */
import { claimOf, COMPUTE_WORKLOADS_MAX, workloadsOf } from "../policy/compute-gates.ts";
import { imvuRecordCount } from "../policy/dns-zones.ts";
import { EnvelopeSchema, type Envelope } from "../policy/envelope.ts";
import { imvuMailboxes, mailStorageInUse } from "../policy/mail-gates.ts";
import type { StateReader } from "../pipeline/state.ts";
import { checkOf, ProblemList, type AuditCheck } from "./report.ts";

/** Title of the check. */
export const QUOTAS_TITLE = "quotas: every IMVU's records, mailboxes, mail storage, routes, workloads and disk within its envelope";

const DECIMAL = /^(0|[1-9][0-9]{0,37})$/;

/** The resources of one IMVU beyond `e`, by name. */
export function overEnvelope(state: StateReader, imvu: string, e: Envelope): string[] {
  const out: string[] = [];
  if (imvuRecordCount(state, imvu) > e.dnsRecords) out.push("DNS records");
  if (imvuMailboxes(state, imvu).length > e.mailboxes) out.push("mailboxes");
  if (mailStorageInUse(state, imvu) > e.mailStorageBytes) out.push("mail storage");
  if (state.list("net-route", `${imvu}/`).length > e.routes) out.push("routes");
  const workloads = workloadsOf(state, imvu);
  if (workloads.length > COMPUTE_WORKLOADS_MAX) out.push("workload count");
  const claim = claimOf(workloads);
  if (claim.cpuMillis > BigInt(e.cpuMillis)) out.push("cpu claimed by the workloads");
  if (claim.memoryBytes > e.memoryBytes) out.push("memory claimed by the workloads");
  if (claim.pids > BigInt(e.pids)) out.push("pids claimed by the workloads");
  if (claim.diskBytes > e.diskBytes) out.push("disk claimed by the workloads");
  // The latest report of each service: memory peak and disk measured (compute, mail, ...).
  const latest = new Map<string, Readonly<Record<string, string>>>();
  for (const [, u] of state.list("usage", `${imvu}/`)) latest.set(u.service, u.metrics);
  for (const [service, m] of latest) {
    const peak = m["memPeakBytes"];
    if (peak !== undefined && DECIMAL.test(peak) && BigInt(peak) > e.memoryBytes) out.push(`memory measured by ${service}`);
    const disk = m["diskBytes"];
    if (disk !== undefined && DECIMAL.test(disk) && BigInt(disk) > e.diskBytes) out.push(`disk measured by ${service}`);
  }
  return out;
}

/** The `quotas` check over a state. */
export function checkQuotas(state: StateReader): AuditCheck {
  const p = new ProblemList();
  let checked = 0;
  for (const [name, imvu] of state.list("imvu")) {
    if (imvu.exit?.departedIndex !== undefined) continue;
    checked += 1;
    const parsed = EnvelopeSchema.safeParse(imvu.envelope);
    if (!parsed.success) {
      p.add(`IMVU ${name}: its envelope is malformed`);
      continue;
    }
    for (const what of overEnvelope(state, name, parsed.data)) p.add(`IMVU ${name}: ${what} beyond its envelope`);
  }
  return checkOf("quotas", QUOTAS_TITLE, p, checked);
}
