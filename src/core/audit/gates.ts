/**
 * The `gates` check: each command type carries the gates the constitution requires of it, and
 * every recorded entry carries a verdict of each of them. The requirements come from
 * CONSTITUTION.md as the catalogue's own flags and a short table of command families:
 *
 * - gates 1, 11, 17 on every type;
 * - gate 2 on every type that names an existing IMVU (all `imvu: "required"` but `imvu.create`);
 * - gate 10 on every type an admin or a delegate may author on an IMVU, and on the emergency class;
 * - gates 10 and 14 on every type flagged `redirects` (it moves an IMVU's traffic);
 * - gate 12 on the destructive types (they delete data held outside the ledger: volumes,
 *   snapshots, Maildirs); gate 13 on the exit types and on the types that create resources;
 * - the part-specific gates (3 domains, 4 DNS records, 5 mailboxes, 6 money, 7 allocations,
 *   8 routes, 9 jurisdiction, 15 limits) on their families, as listed in REQUIRED_BY_TYPE.
 */
import { CATALOGUE, gatesFor, UNIVERSAL_GATES, type CatalogueEntry, type GateNumber } from "../policy/constitution.ts";
import { checkOf, ProblemList, type AuditCheck } from "./report.ts";

/** Title of the check. */
export const GATES_TITLE = "gates: every command type and every recorded entry carries the gates the constitution requires";

/** Types that delete data held outside the ledger (gate 12: snapshot first; only the owner deletes a snapshot). */
export const DESTRUCTIVE_TYPES: ReadonlySet<string> = new Set([
  "compute.workload.remove", "compute.snapshot.restore", "compute.snapshot.delete", "mail.mailbox.delete",
]);

/** Gates required of named types beyond the catalogue-wide rules, each with the constitution's reason. */
export const REQUIRED_BY_TYPE: Readonly<Record<string, readonly { gates: readonly GateNumber[]; why: string }[]>> = {
  "imvu.create": [{ gates: [3, 7, 9, 13], why: "binds a domain, allocates an envelope, sets the jurisdiction, creates resources" }],
  "imvu.envelope.change": [{ gates: [7, 15], why: "changes the limits services may enforce" }],
  "imvu.suspend": [{ gates: [13], why: "a suspension never blocks exit" }],
  "imvu.exit.request": [{ gates: [13], why: "exit portability" }],
  "imvu.depart": [{ gates: [13], why: "exit portability" }],
  "imvu.exit.expire": [{ gates: [13], why: "exit portability" }],
  "imvu.import": [{ gates: [13], why: "exit portability" }],
  "revenue.record": [{ gates: [6], why: "money" }],
  "revenue.refund": [{ gates: [6], why: "money" }],
  "revenue.payout": [{ gates: [6], why: "money" }],
  "usage.report": [{ gates: [7], why: "usage is counted against the envelope" }],
  "throttle.report": [{ gates: [15], why: "throttling only by declared limits" }],
  "net.route.add": [{ gates: [7, 8, 9, 13], why: "allocates a route, governs it, inherits the jurisdiction, creates a resource" }],
  "net.grant.add": [{ gates: [13], why: "creates a resource" }],
  "compute.workload.deploy": [{ gates: [7, 9, 13], why: "allocates compute, inherits the jurisdiction, creates resources" }],
  "compute.snapshot.create": [{ gates: [13], why: "creates a resource" }],
  "compute.snapshot.record": [{ gates: [12, 13], why: "records an immutable snapshot" }],
  "compute.snapshot.restore": [{ gates: [9], why: "restores data under the IMVU's jurisdiction" }],
  "dns.rrset.set": [{ gates: [4, 7, 13], why: "DNS authority, counts against dnsRecords, creates a resource" }],
  "dns.rrset.delete": [{ gates: [4], why: "DNS authority" }],
  "domain.claim": [{ gates: [3, 13], why: "domain ownership, creates a resource" }],
  "domain.verify": [{ gates: [3, 13], why: "domain ownership, creates resources" }],
  "mail.mailbox.add": [{ gates: [5, 7, 13], why: "mail attribution, counts against mailboxes, creates a resource" }],
  "mail.mailbox.passwd": [{ gates: [5], why: "mail attribution" }],
  "mail.mailbox.delete": [{ gates: [5], why: "mail attribution" }],
  "mail.snapshot.record": [{ gates: [12, 13], why: "records an immutable snapshot" }],
  "mail.dkim.publish": [{ gates: [4, 5, 7, 13], why: "writes DNS records, signs mail, counts against dnsRecords" }],
};

/** One requirement of one type: the gates and why. */
export interface Requirement {
  readonly gates: readonly GateNumber[];
  readonly why: string;
}

/** The gates the constitution requires of a type with catalogue entry `e`. */
export function requiredGates(type: string, e: CatalogueEntry): Requirement[] {
  const out: Requirement[] = [{ gates: UNIVERSAL_GATES, why: "gates 1, 11 and 17 apply to every command" }];
  if (e.imvu === "required" && type !== "imvu.create") out.push({ gates: [2], why: "it names an IMVU (isolation)" });
  if (e.imvu === "required" && (e.actors.includes("admin") || e.actors.includes("delegate"))) {
    out.push({ gates: [10], why: "a non-owner may author it on an IMVU (consent)" });
  }
  if (e.emergency) out.push({ gates: [10], why: "emergency class (public reason, never blocks exit)" });
  if (e.redirects) out.push({ gates: [10, 14], why: "it redirects an IMVU's traffic" });
  if (DESTRUCTIVE_TYPES.has(type)) out.push({ gates: [12], why: "it is destructive (snapshot first)" });
  for (const r of REQUIRED_BY_TYPE[type] ?? []) out.push(r);
  return out;
}

/** What the check reads: the catalogue and the function that gives each type's effective gates. */
export interface GateCatalogue {
  readonly catalogue: Readonly<Record<string, CatalogueEntry>>;
  readonly gatesFor: (type: string) => readonly number[];
}

/** The constitution in force. */
export const CONSTITUTION_CATALOGUE: GateCatalogue = {
  catalogue: CATALOGUE,
  gatesFor: (t) => (t in CATALOGUE ? gatesFor(t as keyof typeof CATALOGUE) : []),
};

/** The gates a recorded entry must carry verdicts of, by command type (undefined: unknown type). */
export function entryRequirements(cat: GateCatalogue = CONSTITUTION_CATALOGUE): (type: string) => readonly number[] | undefined {
  const cache = new Map<string, number[]>();
  return (type) => {
    const e = cat.catalogue[type];
    if (e === undefined) return undefined;
    let g = cache.get(type);
    if (g === undefined) {
      g = [...new Set(requiredGates(type, e).flatMap((r) => r.gates))].sort((a, b) => a - b);
      cache.set(type, g);
    }
    return g;
  };
}

/** Checks one recorded entry's verdicts against its type's requirements; returns a problem line or undefined. */
export function entryGateProblem(index: string, type: string, verdictGates: readonly number[], need: (type: string) => readonly number[] | undefined): string | undefined {
  const req = need(type);
  if (req === undefined) return `entry ${index}: unknown command type ${type}`;
  const have = new Set(verdictGates);
  const missing = req.filter((g) => !have.has(g));
  return missing.length === 0 ? undefined : `entry ${index} (${type}): no verdict of gate ${missing.join(", ")}`;
}

/** The catalogue half of the `gates` check: each type's effective gates include every required one. */
export function catalogueProblems(cat: GateCatalogue, p: ProblemList): number {
  const types = Object.keys(cat.catalogue);
  for (const type of types) {
    const entry = cat.catalogue[type];
    if (entry === undefined) continue;
    const have = new Set(cat.gatesFor(type));
    for (const r of requiredGates(type, entry)) {
      const missing = r.gates.filter((g) => !have.has(g));
      if (missing.length > 0) p.add(`${type} lacks gate ${missing.join(", ")}: ${r.why}`);
    }
    if (entry.emergency && entry.actors.some((a) => a !== "admin")) p.add(`${type}: the emergency class is an admin's alone`);
  }
  return types.length;
}

/** The whole `gates` check: the catalogue, plus the entry problems found while reading the ledger. */
export function checkGates(cat: GateCatalogue, entryProblems: readonly string[], entriesChecked: number): AuditCheck {
  const p = new ProblemList();
  const types = catalogueProblems(cat, p);
  for (const line of entryProblems) p.add(line);
  return checkOf("gates", GATES_TITLE, p, types + entriesChecked);
}
