/**
 * The seventeen gates of constitution v1 as pure functions of a GateContext (CONSTITUTION.md).
 * Each returns pass or deny with a reason a person can act on. `evaluateGates` runs the gates a
 * command type declares plus the universal ones (1, 11, 17), all of them, so a denial lists
 * every failing gate.
 */
import { CATALOGUE, gatesFor, type GateNumber } from "./constitution.ts";
import { deny, ok, type Gate, type GateContext, type Verdict } from "./context.ts";
import { openNote, parseCheckpoint } from "../ledger/note.ts";
import { EnvelopeSchema, raisedLimits, type Envelope } from "./envelope.ts";
import {
  computeBelowUse, computeCreatedKinds, computeIsolation, computeJurisdiction, computeLeakage, computeQuota, computeSnapshots,
} from "./compute-gates.ts";
import {
  dnsDomainOwnership, dnsIsolation, dnsNoLeakage, dnsRecordAuthority, dnsRecordQuota, imvuDomainFree, isDnsCommand,
} from "./dns-gates.ts";
import { imvuRecordCount } from "./dns-zones.ts";
import { JURISDICTIONS } from "./jurisdiction.ts";
import { netGovernance, netIsolation, netQuota } from "./net-gates.ts";
import {
  mailAttributionCheck, mailBelowUse, mailCreatedKinds, mailDnsAuthority, mailIsolation, mailLeakage, mailQuota, mailSnapshots,
} from "./mail-gates.ts";
import type { Command } from "./schemas.ts";

/** Largest ledger entry the audit log accepts (gate 11). */
export const ENTRY_BYTES_MAX = 256 * 1024;
/** The platform-wide ceiling of any one envelope (gate 7): no IMVU is created beyond it. */
export const ENVELOPE_CEILING: Envelope = {
  cpuMillis: 16_000, memoryBytes: 64n << 30n, diskBytes: 1n << 40n, pids: 32_768, mailboxes: 10_000,
  mailStorageBytes: 1n << 40n, dnsRecords: 100_000, routes: 10_000, bandwidthBytesPerSec: 10n << 30n,
  requestsPerSec: 1_000_000, connections: 1_000_000, qos: "gold",
};
/** Resource kinds the exit bundle can carry (gate 13): a command may create only these. */
export const EXPORTABLE_RESOURCES: ReadonlySet<string> = new Set([
  "imvu", "envelope", "delegation", "consent", "revenue", "usage", "throttle",
  "domain", "zone", "rrset", "mailbox", "message", "workload", "volume", "snapshot", "route", "grant", "slice",
]);

const imvuOf = (ctx: GateContext) => (ctx.cmd.imvu === undefined ? undefined : ctx.state.get("imvu", ctx.cmd.imvu));
const isOwner = (ctx: GateContext) => ctx.actorClasses.has("owner");
/** The owner, or a delegate acting within the scope the owner signed for. */
const ownerOrDelegate = (ctx: GateContext) => isOwner(ctx) || ctx.actorClasses.has("delegate");

/** Gate 1: the actor is registered, its key signed, and its class may author this type. */
const identityBinding: Gate = (ctx) => {
  const entry = CATALOGUE[ctx.cmd.type];
  const registered = ctx.state.get("identity", ctx.cmd.actor) !== undefined || selfRegistering(ctx.cmd);
  if (!registered) return deny(`actor ${ctx.cmd.actor} is not a registered identity; register it first`);
  if (entry.imvu === "required" && ctx.cmd.imvu === undefined) return deny(`${ctx.cmd.type} must name an IMVU`);
  if (entry.imvu === "forbidden" && ctx.cmd.imvu !== undefined) return deny(`${ctx.cmd.type} takes no IMVU`);
  if (entry.imvu === "required" && ctx.cmd.type !== "imvu.create" && imvuOf(ctx) === undefined) {
    return deny(`IMVU ${ctx.cmd.imvu} does not exist`);
  }
  const allowed = entry.actors.filter((a) => ctx.actorClasses.has(a));
  if (allowed.length === 0) {
    return deny(`${ctx.cmd.type} may be authored by ${entry.actors.join(", ")}; ${ctx.cmd.actor} is none of these`);
  }
  // A service reports only for the role it holds (compute reports compute usage, never another's).
  if (ctx.cmd.type === "usage.report" && !ctx.actorClasses.has(`service:${ctx.cmd.body.service}`)) {
    return deny(`${ctx.cmd.actor} does not hold the ${ctx.cmd.body.service} role it reports usage for`);
  }
  return ok(`authored by ${ctx.cmd.actor} as ${allowed.join(", ")}`);
};

function selfRegistering(cmd: Command): boolean {
  return cmd.type === "identity.inception" || cmd.type === "platform.genesis";
}

/** Gate 2: every resource named belongs to the command's IMVU. */
const imvuIsolation: Gate = (ctx) => {
  const { cmd, state } = ctx;
  const net = netIsolation(ctx);
  if (net) return net;
  const mail = mailIsolation(ctx);
  if (mail) return mail;
  const compute = computeIsolation(ctx);
  if (compute) return compute;
  if (isDnsCommand(cmd)) return dnsIsolation(ctx);
  switch (cmd.type) {
    case "revenue.refund": {
      const orig = state.get("revenue-event", cmd.body.refOf);
      if (orig && orig.imvu !== cmd.imvu) return deny(`event ${cmd.body.refOf} belongs to another IMVU`);
      return ok("the refunded event belongs to this IMVU");
    }
    case "delegation.revoke": {
      const d = state.get("delegation", `${cmd.imvu}/${cmd.body.delegate}`);
      if (!d) return deny(`${cmd.body.delegate} holds no delegation on ${cmd.imvu}`);
      return ok("the delegation belongs to this IMVU");
    }
    default:
      return ok("the command names no resource outside its IMVU");
  }
};

/** Gate 3: a domain is bound to exactly one IMVU; a new IMVU's label must be free. */
const domainOwnership: Gate = (ctx) => {
  const { cmd, state } = ctx;
  if (cmd.type === "imvu.create") {
    // The label bound is the one the command is about: an entry naming one IMVU and creating another would misfile it.
    if (cmd.imvu !== cmd.body.name) return deny(`the command names IMVU ${String(cmd.imvu)} but creates ${cmd.body.name}`);
    if (state.get("imvu", cmd.body.name)) return deny(`the name ${cmd.body.name} is taken; choose another`);
    return imvuDomainFree(state, cmd.body.name);
  }
  if (isDnsCommand(cmd)) return dnsDomainOwnership(ctx);
  return ok("the command binds no domain");
};

/** Gate 4: DNS changes only inside the IMVU's own zones (DNS command types are checked by the DNS part). */
const dnsAuthority: Gate = (ctx) => mailDnsAuthority(ctx) ?? dnsRecordAuthority(ctx);

/** Gate 5: mail is attributed to mailboxes of the IMVU (mail command types are checked by the mail part). */
const mailAttribution: Gate = (ctx) => mailAttributionCheck(ctx) ?? ok("the command concerns no mailbox");

/** Gate 6: revenue enters only from revenue sources, idempotently, never paying out beyond the balance. */
const revenueMetering: Gate = (ctx) => {
  const { cmd, state } = ctx;
  if (cmd.type !== "revenue.record" && cmd.type !== "revenue.refund" && cmd.type !== "revenue.payout") {
    return ok("the command moves no money");
  }
  if (!ctx.actorClasses.has("service:revenue-source")) return deny("money enters only from a platform revenue-source identity");
  const seen = state.get("revenue-event", cmd.body.eventId);
  if (seen) return deny(`event id ${cmd.body.eventId} was already recorded at index ${seen.index}`);
  const imvu = imvuOf(ctx);
  if (!imvu) return deny("no such IMVU");
  if (cmd.type === "revenue.record") {
    if (cmd.body.class !== imvu.class) return deny(`${cmd.imvu} is split as ${imvu.class}, not ${cmd.body.class}`);
    return ok(`revenue split ${imvu.class} in the same transaction`);
  }
  if (cmd.type === "revenue.refund") {
    const orig = state.get("revenue-event", cmd.body.refOf);
    if (!orig || orig.kind !== "revenue") return deny(`refund references ${cmd.body.refOf}, which is no recorded revenue`);
    if (orig.currency !== cmd.body.currency) return deny(`refund currency ${cmd.body.currency} differs from ${orig.currency}`);
    const left = BigInt(orig.amount) - BigInt(orig.refunded);
    if (BigInt(cmd.body.amount) > left) return deny(`refund of ${cmd.body.amount} exceeds the ${left} left refundable`);
    return ok("refund references its original and stays within it");
  }
  const acct = state.get("revenue-account", `${cmd.imvu}/${imvu.class}/${cmd.body.currency}`);
  const balance = acct ? BigInt(acct.creator) - BigInt(acct.paidOut) : 0n;
  if (BigInt(cmd.body.amount) > balance) return deny(`payout of ${cmd.body.amount} exceeds the accrued balance ${balance}`);
  return ok(`payout within the accrued balance ${balance}`);
};

/** Gate 7: no command takes an IMVU beyond its envelope; raising needs the owner, lowering below use is denied. */
const resourceQuotas: Gate = (ctx) => {
  const { cmd } = ctx;
  const net = netQuota(ctx);
  if (net) return net;
  const mail = mailQuota(ctx, () => {
    const r = imvuOf(ctx);
    return r ? EnvelopeSchema.parse(r.envelope) : undefined;
  });
  if (mail) return mail;
  const compute = computeQuota(ctx, () => {
    const r = imvuOf(ctx);
    return r ? EnvelopeSchema.parse(r.envelope) : undefined;
  });
  if (compute) return compute;
  if (cmd.type === "dns.rrset.set") return dnsRecordQuota(ctx);
  if (cmd.type === "imvu.create") {
    const over = raisedLimits(ENVELOPE_CEILING, cmd.body.envelope);
    if (over.length > 0) return deny(`envelope above the platform ceiling in ${over.join(", ")}`);
    return ok("envelope within the platform ceiling");
  }
  if (cmd.type === "imvu.envelope.change") {
    const imvu = imvuOf(ctx);
    if (!imvu) return deny("no such IMVU");
    const current = EnvelopeSchema.parse(imvu.envelope);
    const raised = raisedLimits(current, cmd.body.envelope);
    if (raised.length > 0 && !ownerOrDelegate(ctx) && !consentFor(ctx)) {
      return deny(`raising ${raised.join(", ")} needs the owner's signature or consent`);
    }
    const over = raisedLimits(ENVELOPE_CEILING, cmd.body.envelope);
    if (over.length > 0) return deny(`envelope above the platform ceiling in ${over.join(", ")}`);
    const below = belowUse(ctx, cmd.body.envelope);
    if (below.length > 0) return deny(`lowering below current use: ${below.join("; ")}`);
    return ok("envelope change within ceiling and current use");
  }
  return ok("the command allocates nothing");
};

/** Counted resources an envelope limits, and the IMVU's current use of each. */
function belowUse(ctx: GateContext, next: Envelope): string[] {
  const name = ctx.cmd.imvu ?? "";
  const out: string[] = [];
  for (const u of ctx.state.list("usage", `${name}/`)) {
    if (u[1].service === "compute") continue; // compute: its latest interval and declared claims, below
    const m = u[1].metrics;
    const peak = m["memPeakBytes"];
    if (peak !== undefined && BigInt(peak) > next.memoryBytes) out.push(`memory in use ${peak} > ${next.memoryBytes}`);
    const disk = m["diskBytes"];
    if (disk !== undefined && BigInt(disk) > next.diskBytes) out.push(`disk in use ${disk} > ${next.diskBytes}`);
  }
  out.push(...computeBelowUse(ctx.state, name, next));
  out.push(...mailBelowUse(ctx.state, name, next));
  const records = imvuRecordCount(ctx.state, name);
  if (records > next.dnsRecords) out.push(`DNS records in use ${records} > ${next.dnsRecords}`);
  return [...new Set(out)];
}

/** Gate 8: routes are public (host in an owned zone), private (granted identities) or restricted (checked by the network part). */
const networkGovernance: Gate = (ctx) => netGovernance(ctx) ?? ok("the command changes no route");

/** Gate 9: every IMVU carries a valid jurisdiction tag, inherited by its resources. */
const jurisdictionTagging: Gate = (ctx) => {
  if (ctx.cmd.type === "imvu.create") {
    if (!JURISDICTIONS.has(ctx.cmd.body.jurisdiction)) return deny(`${ctx.cmd.body.jurisdiction} is not an ISO 3166-1 code`);
    return ok(`tagged ${ctx.cmd.body.jurisdiction}`);
  }
  const imvu = imvuOf(ctx);
  const compute = imvu ? computeJurisdiction(ctx, imvu.jurisdiction) : undefined;
  if (compute) return compute;
  return ok(imvu ? `inherits ${imvu.jurisdiction}` : "no IMVU to tag");
};

/** True when the owner consented to exactly this command's digest and the consent is unused. */
function consentFor(ctx: GateContext): boolean {
  const c = ctx.state.get("consent", ctx.digest);
  const imvu = imvuOf(ctx);
  return c !== undefined && imvu !== undefined && c.imvu === imvu.name && c.owner === imvu.owner && c.usedIndex === undefined;
}

/** Gate 10: a command on an IMVU not signed by its owner needs the owner's consent, unless an emergency. */
const consentLogging: Gate = (ctx) => {
  const imvu = imvuOf(ctx);
  if (!imvu) return ok("the command affects no IMVU");
  if (isOwner(ctx)) return ok("signed by the owner");
  if (ctx.actorClasses.has("delegate")) return ok("signed by a delegate within the scope the owner signed");
  if (CATALOGUE[ctx.cmd.type].emergency) {
    if ((ctx.cmd.type === "imvu.suspend" || ctx.cmd.type === "imvu.resume") && ctx.cmd.body.reason.trim().length >= 10) {
      return ok("emergency class with a public reason; the IMVU is notified through its feed; exit stays open");
    }
    return deny("an emergency action must carry a public reason");
  }
  if (consentFor(ctx)) return ok(`the owner consented to digest ${ctx.digest}`);
  return deny(`not signed by the owner ${imvu.owner} and no consent to digest ${ctx.digest}; ask the owner to run 'nexus consent give ${ctx.digest}'`);
};

/** Gate 11: the command is recorded before any effect; an entry that cannot be recorded is refused. */
const auditLogging: Gate = (ctx) =>
  ctx.entryBytes <= ENTRY_BYTES_MAX
    ? ok("appended to the ledger in the same transaction as its effects")
    : deny(`the entry is ${ctx.entryBytes} bytes, above the ${ENTRY_BYTES_MAX}-byte limit`);

/** Gate 12: destructive commands take a snapshot first (checked by the compute and mail parts). */
const immutableSnapshots: Gate = (ctx) => computeSnapshots(ctx) ?? mailSnapshots(ctx) ?? ok("the command destroys no data");

/** Gate 13: exit is always accepted; nothing is created that cannot be exported. */
const exitPortability: Gate = (ctx) => {
  const { cmd } = ctx;
  if (cmd.type === "imvu.exit.request") return ok("an owner's exit request is always accepted");
  if (cmd.type === "imvu.depart") {
    const imvu = imvuOf(ctx);
    if (!imvu?.exit) return deny("request an exit (and download the bundle) before confirming departure");
    return ok("departure after an exit request");
  }
  if (cmd.type === "imvu.suspend") return ok("suspension never blocks exit");
  if (cmd.type === "imvu.exit.expire") return graceEnded(ctx);
  if (cmd.type === "imvu.import") return importedCheckpoint(cmd.body.verifierKey, cmd.body.checkpoint);
  const kinds = createdKinds(cmd);
  const bad = kinds.filter((k) => !EXPORTABLE_RESOURCES.has(k));
  if (bad.length > 0) return deny(`cannot create ${bad.join(", ")}: not exportable`);
  return ok(kinds.length > 0 ? `creates exportable ${kinds.join(", ")}` : "creates nothing");
};

/** The grace period after an exit request (docs/exit.md): the platform serves the IMVU this long unless the owner departs first. */
export const EXIT_GRACE_MS = 30 * 24 * 3600 * 1000;

/** Gate 13 for imvu.exit.expire: only after an exit request and the whole grace period, once. */
function graceEnded(ctx: GateContext): { pass: true; reason: string } | { pass: false; reason: string } {
  const exit = imvuOf(ctx)?.exit;
  if (!exit) return deny("no exit request: the grace period has not started");
  if (exit.departedIndex !== undefined) return deny(`already departed at ledger index ${exit.departedIndex}`);
  if (exit.requestedAt === undefined) return deny("the exit request carries no time: only the owner can confirm departure");
  const ends = Date.parse(exit.requestedAt) + EXIT_GRACE_MS;
  if (Date.parse(ctx.time) < ends) return deny(`the grace period runs until ${new Date(ends).toISOString()}`);
  return ok(`the grace period after the exit request at ledger index ${exit.requestedIndex} has ended`);
}

/** Gate 13 for imvu.import: the origin's checkpoint is a signed note that verifies with the origin's key. */
function importedCheckpoint(vkey: string, note: string): { pass: true; reason: string } | { pass: false; reason: string } {
  try {
    const cp = parseCheckpoint(openNote(note, [vkey]).text);
    return ok(`imports a bundle proven to the origin's checkpoint of size ${cp.size}`);
  } catch (e) {
    return deny(`the origin checkpoint does not verify with the origin's key: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function createdKinds(cmd: Command): string[] {
  switch (cmd.type) {
    case "imvu.create":
      return ["imvu", "envelope", "domain", "zone", "rrset"];
    case "dns.rrset.set":
      return ["rrset"];
    case "domain.claim":
      return ["domain"];
    case "domain.verify":
      return ["domain", "zone", "rrset"];
    case "delegation.grant":
      return ["delegation"];
    case "net.route.add":
      return ["route", "slice"];
    case "net.grant.add":
      return ["grant"];
    default:
      return computeCreatedKinds(cmd.type) ?? mailCreatedKinds(cmd.type) ?? [];
  }
}

/** Gate 14: a change of where an IMVU's traffic goes is owner-authored or consented, and in its feed. */
const noSilentRedirection: Gate = (ctx) => {
  if (!CATALOGUE[ctx.cmd.type].redirects) return ok("the command redirects no traffic");
  if (ownerOrDelegate(ctx)) return ok("redirect authored by the owner or its delegate; recorded in the IMVU's feed");
  if (consentFor(ctx)) return ok("redirect consented by the owner; recorded in the IMVU's feed");
  return deny("a redirect of an IMVU's traffic must be authored or consented by its owner");
};

/** Gate 15: limits come only from the envelope, and every throttling episode is reported. */
const noSilentThrottling: Gate = (ctx) => {
  const { cmd } = ctx;
  if (cmd.type !== "throttle.report") return ok("the command sets no limit outside the envelope");
  const imvu = imvuOf(ctx);
  if (!imvu) return deny("no such IMVU");
  const declared = (imvu.envelope as Record<string, unknown>)[cmd.body.limit];
  if (declared === undefined) return deny(`${cmd.body.limit} is not a limit of the envelope`);
  if (String(declared) !== cmd.body.declared) {
    return deny(`the envelope declares ${cmd.body.limit}=${String(declared)}, not ${cmd.body.declared}`);
  }
  return ok(`throttled at the declared ${cmd.body.limit}=${cmd.body.declared}`);
};

/** Gate 16: nothing crosses IMVUs: delegations stay scoped to IMVU commands, reports to existing units. */
const noCrossImvuLeakage: Gate = (ctx) => {
  const { cmd } = ctx;
  const compute = computeLeakage(ctx);
  if (compute) return compute;
  const mail = mailLeakage(ctx);
  if (mail) return mail;
  if (isDnsCommand(cmd)) return dnsNoLeakage(ctx);
  if (cmd.type === "delegation.grant") {
    const bad = cmd.body.scope.filter((t) => !(t in CATALOGUE) || CATALOGUE[t as keyof typeof CATALOGUE].imvu !== "required");
    if (bad.length > 0) return deny(`scope names types that are not IMVU commands: ${bad.join(", ")}`);
    const delegationTypes = cmd.body.scope.filter((t) => t.startsWith("delegation.") || t === "consent.give");
    if (delegationTypes.length > 0) return deny(`delegates cannot be given ${delegationTypes.join(", ")}`);
    if (!ctx.state.get("identity", cmd.body.delegate)) return deny(`delegate ${cmd.body.delegate} is not registered`);
    return ok(`delegation limited to ${cmd.body.scope.join(", ")} on ${cmd.imvu}`);
  }
  return ok("reads and writes stay within the IMVU");
};

/** Gate 17: every action is signed by its identity and attributed to it. */
const nonRepudiation: Gate = (ctx) => {
  const attributed = ctx.signerKeyIds.some((k) => k === ctx.cmd.actor || k.startsWith(`${ctx.cmd.actor}#`));
  if (!attributed) return deny(`no signature names the actor ${ctx.cmd.actor} as its key id`);
  return ok(`signed by ${ctx.cmd.actor}; the answer carries a receipt`);
};

/** The gate registry: number → function. */
export const GATES: Readonly<Record<GateNumber, Gate>> = {
  1: identityBinding,
  2: imvuIsolation,
  3: domainOwnership,
  4: dnsAuthority,
  5: mailAttribution,
  6: revenueMetering,
  7: resourceQuotas,
  8: networkGovernance,
  9: jurisdictionTagging,
  10: consentLogging,
  11: auditLogging,
  12: immutableSnapshots,
  13: exitPortability,
  14: noSilentRedirection,
  15: noSilentThrottling,
  16: noCrossImvuLeakage,
  17: nonRepudiation,
};

/** Runs every gate that applies to the command; the command passes only if all pass. */
export function evaluateGates(ctx: GateContext): Verdict[] {
  return gatesFor(ctx.cmd.type).map((gate) => ({ gate, ...GATES[gate](ctx) }));
}
