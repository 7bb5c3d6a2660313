/**
 * The DNS parts of gates 2, 3, 4, 7 and 16 for `dns.rrset.*`, `domain.*` and the domain that
 * `imvu.create` binds (CONSTITUTION.md; docs/dns.md "Gates"). Pure functions of the GateContext;
 * gates.ts calls them for these command types. `planRRset` is shared with the reducer, so what
 * the gate validated is exactly what the projection records.
 */
import { NexusError } from "../errors.ts";
import { isSubdomain, parentName, toAbsoluteName, type Name } from "../dns/name.ts";
import type { RData } from "../dns/rdata.ts";
import { buildZone, normalizeRecord, TTL_DEFAULT_S, TTL_MAX_S, TTL_MIN_S } from "../dns/zone.ts";
import type { DnsZoneRecord, StateReader } from "../pipeline/state.ts";
import { deny, ok, type GateContext } from "./context.ts";
import {
  domainKey, imvuRecordCount, imvuZoneInput, platformDnsOf, rrsetKey, zoneOfName, type PlatformDns, type RRsetChange,
} from "./dns-zones.ts";
import type { Command } from "./schemas.ts";

type Result = { pass: true; reason: string } | { pass: false; reason: string };
type RRsetCommand = Extract<Command, { type: "dns.rrset.set" | "dns.rrset.delete" }>;
type DomainCommand = Extract<Command, { type: "domain.claim" | "domain.verify" }>;

/** The outcome of planning an RRset change: the zone and the normalized change, or why not. */
export type RRsetPlan =
  | { readonly ok: true; readonly zone: DnsZoneRecord; readonly change: RRsetChange; readonly dns: PlatformDns }
  | { readonly ok: false; readonly reason: string };

/** True for the command types whose gates this module evaluates. */
export function isDnsCommand(cmd: Command): cmd is RRsetCommand | DomainCommand {
  return cmd.type === "dns.rrset.set" || cmd.type === "dns.rrset.delete" || cmd.type === "domain.claim" || cmd.type === "domain.verify";
}

function why(e: unknown): string {
  if (e instanceof NexusError) return `${e.code}: ${e.message}`;
  throw e;
}

/** The owner name of an RRset command, canonical, or the reason it is not a name. */
function ownerName(cmd: RRsetCommand): Name | string {
  try {
    return toAbsoluteName(cmd.body.name);
  } catch (e) {
    return why(e);
  }
}

/** Where a named record lives: the IMVU zone holding it, or why it is outside the command's IMVU. */
function placeName(state: StateReader, d: PlatformDns, name: Name, imvu: string | undefined): { zone: DnsZoneRecord } | { reason: string; other: boolean } {
  const z = zoneOfName(state, d, name);
  if (z === undefined) return { reason: `${name} lies in no zone of ${imvu ?? "?"}`, other: false };
  if (z === "platform") return { reason: `${name} lies in the platform's zone ${d.base}, not in a zone of ${imvu ?? "?"}`, other: false };
  if (z.imvu !== imvu) return { reason: `${name} lies in ${z.origin}, a zone of another IMVU`, other: true };
  return { zone: z };
}

/**
 * Plans already made, per (state, command) object: gates 4 and 7 and the reducer of one decision
 * see the same state and command objects, and the pipeline never mutates a state during a
 * decision (the overlay is written after it), so the whole-zone validation runs once per command.
 */
const plans = new WeakMap<object, WeakMap<object, RRsetPlan>>();

/** Validates an RRset change against gate 4's rules and the whole resulting zone (memoised per decision). */
export function planRRset(state: StateReader, cmd: RRsetCommand): RRsetPlan {
  let byCmd = plans.get(state);
  const hit = byCmd?.get(cmd);
  if (hit !== undefined) return hit;
  const plan = computePlan(state, cmd);
  if (byCmd === undefined) plans.set(state, (byCmd = new WeakMap()));
  byCmd.set(cmd, plan);
  return plan;
}

function computePlan(state: StateReader, cmd: RRsetCommand): RRsetPlan {
  const d = platformDnsOf(state);
  if (d === undefined) return { ok: false, reason: "the platform has no genesis yet" };
  const name = ownerName(cmd);
  if (!name.endsWith(".")) return { ok: false, reason: name };
  const placed = placeName(state, d, name as Name, cmd.imvu);
  if (!("zone" in placed)) return { ok: false, reason: placed.reason };
  const zone = placed.zone;
  const origin = zone.origin as Name;
  const type = cmd.body.type;
  if (type === "SOA") return { ok: false, reason: "the SOA is the platform DNS service's alone" };
  if (type === "NS" && name === origin) return { ok: false, reason: `the apex NS of ${origin} is the platform DNS service's alone (NS below the apex delegates)` };
  const existing = state.get("dns-rrset", rrsetKey(origin, name, type));
  if (cmd.type === "dns.rrset.delete") {
    if (existing === undefined) return { ok: false, reason: `${name} has no ${type} records to delete` };
    return checkZone(state, d, zone, { name: name as Name, type, ttl: existing.ttl, values: undefined });
  }
  if (type === "CNAME" && name === origin) return { ok: false, reason: `no CNAME at the apex ${origin} (it would sit beside the SOA and NS)` };
  const ttl = cmd.body.ttl ?? TTL_DEFAULT_S;
  if (ttl < TTL_MIN_S || ttl > TTL_MAX_S) return { ok: false, reason: `TTL ${ttl} is outside ${TTL_MIN_S}..${TTL_MAX_S} s` };
  const values: RData[] = [];
  for (const v of cmd.body.values) {
    if (v.type !== type) return { ok: false, reason: `a ${v.type} value in a ${type} RRset` };
    try {
      values.push(normalizeRecord({ name, ttl, data: v }, origin).data);
    } catch (e) {
      return { ok: false, reason: why(e) };
    }
  }
  const beside = state.list("dns-rrset", `${origin} ${name} `).filter(([, r]) => r.type !== type);
  if (type === "CNAME" && beside.length > 0) return { ok: false, reason: `no CNAME beside other data: ${name} holds ${beside.map(([, r]) => r.type).join(", ")}` };
  if (type !== "CNAME" && beside.some(([, r]) => r.type === "CNAME")) return { ok: false, reason: `${name} is a CNAME; no other data beside it` };
  if (type === "CNAME" && values.length > 1) return { ok: false, reason: `${name} can hold one CNAME, not ${values.length}` };
  return checkZone(state, d, zone, { name: name as Name, type, ttl, values });
}

/** Builds the zone the change would produce with the server's own validation (RFC 1034/2181 rules). */
function checkZone(state: StateReader, d: PlatformDns, zone: DnsZoneRecord, change: RRsetChange): RRsetPlan {
  try {
    buildZone(imvuZoneInput(state, d, zone, change));
  } catch (e) {
    return { ok: false, reason: why(e) };
  }
  return { ok: true, zone, change, dns: d };
}

/** Gate 2 for DNS commands: records only in the IMVU's own zones; domains not bound to another IMVU. */
export function dnsIsolation(ctx: GateContext): Result {
  const { cmd, state } = ctx;
  const d = platformDnsOf(state);
  if (d === undefined) return deny("the platform has no genesis yet");
  if (cmd.type === "dns.rrset.set" || cmd.type === "dns.rrset.delete") {
    const name = ownerName(cmd);
    if (!name.endsWith(".")) return ok("the name is not a domain name (gate 4 says why)");
    const placed = placeName(state, d, name as Name, cmd.imvu);
    if ("zone" in placed) return ok(`${name} lies in ${placed.zone.origin}, a zone of ${cmd.imvu ?? "?"}`);
    return placed.other ? deny(placed.reason) : ok("the name belongs to no other IMVU (gate 4 says why it is refused)");
  }
  if (cmd.type === "domain.claim" || cmd.type === "domain.verify") {
    const bound = state.get("domain", cmd.body.domain);
    if (bound !== undefined && bound.imvu !== cmd.imvu) return deny(`${cmd.body.domain} is bound to another IMVU`);
    if (cmd.type === "domain.verify" && state.get("domain-claim", `${cmd.body.domain} ${cmd.imvu}`) === undefined) {
      return deny(`${cmd.imvu} has no pending claim on ${cmd.body.domain}`);
    }
    return ok(`${cmd.body.domain} is not another IMVU's`);
  }
  return ok("the command names no DNS resource");
}

/** A bound domain of another IMVU at, above or below `domain`, if any. */
function overlapping(state: StateReader, domain: Name, imvu: string | undefined): string | undefined {
  for (let cur: Name | undefined = domain; cur !== undefined; cur = parentName(cur)) {
    const b = state.get("domain", domainKey(cur));
    if (b !== undefined && b.imvu !== imvu) return b.domain;
  }
  for (const [, b] of state.list("domain")) {
    if (b.imvu !== imvu && isSubdomain(toAbsoluteName(b.domain), domain)) return b.domain;
  }
  return undefined;
}

/** Gate 3 for `domain.claim` and `domain.verify`: one domain, one IMVU, bound only on an observed challenge. */
export function dnsDomainOwnership(ctx: GateContext): Result {
  const { cmd, state } = ctx;
  if (cmd.type !== "domain.claim" && cmd.type !== "domain.verify") return ok("the command binds no domain");
  const d = platformDnsOf(state);
  if (d === undefined) return deny("the platform has no genesis yet");
  const domain = toAbsoluteName(cmd.body.domain);
  if (isSubdomain(domain, d.base) || isSubdomain(d.base, domain)) {
    return deny(`${cmd.body.domain} overlaps the base domain ${domainKey(d.base)}; names there are bound by imvu create`);
  }
  const own = [...d.nameservers, d.mailHost].find((h) => isSubdomain(h, domain));
  if (own !== undefined) return deny(`${cmd.body.domain} holds the platform's own host ${domainKey(own)}`);
  const bound = state.get("domain", cmd.body.domain);
  if (bound !== undefined) return deny(bound.imvu === cmd.imvu ? `${cmd.body.domain} is already bound to ${cmd.imvu}` : `${cmd.body.domain} is bound to another IMVU`);
  const other = overlapping(state, domain, cmd.imvu);
  if (other !== undefined) return deny(`${cmd.body.domain} overlaps ${other}, bound to another IMVU`);
  if (cmd.type === "domain.claim") return ok(`${cmd.body.domain} is free; the challenge goes to _nexus-challenge.${cmd.body.domain} TXT`);
  const claim = state.get("domain-claim", `${cmd.body.domain} ${cmd.imvu}`);
  if (claim === undefined) return deny(`${cmd.imvu} has no pending claim on ${cmd.body.domain}; run 'nexus domain claim' first`);
  if (!cmd.body.observed.includes(claim.token)) {
    return deny(`the challenge ${claim.token} was not observed at _nexus-challenge.${cmd.body.domain} (saw ${cmd.body.observed.length} TXT strings)`);
  }
  return ok(`challenge observed at _nexus-challenge.${cmd.body.domain}; bound to ${cmd.imvu}`);
}

/** Gate 4 for `dns.rrset.*`: inside own zones, valid per type, zone rules, TTL bounds, apex SOA/NS platform-only. */
export function dnsRecordAuthority(ctx: GateContext): Result {
  const { cmd } = ctx;
  if (cmd.type !== "dns.rrset.set" && cmd.type !== "dns.rrset.delete") return ok("the command changes no DNS record");
  const plan = planRRset(ctx.state, cmd);
  if (!plan.ok) return deny(plan.reason);
  const what = plan.change.values === undefined ? "deletes" : `sets ${plan.change.values.length} record(s) of`;
  return ok(`${what} ${plan.change.name} ${plan.change.type} inside ${plan.zone.origin}; the zone stays valid`);
}

/** Gate 7 for `dns.rrset.set`: the IMVU's records stay within its envelope's `dnsRecords`. */
export function dnsRecordQuota(ctx: GateContext): Result {
  const { cmd, state } = ctx;
  if (cmd.type !== "dns.rrset.set") return ok("the command adds no DNS record");
  const imvu = cmd.imvu === undefined ? undefined : state.get("imvu", cmd.imvu);
  if (imvu === undefined) return deny("no such IMVU");
  const limit = imvu.envelope.dnsRecords;
  const current = imvuRecordCount(state, imvu.name);
  const plan = planRRset(state, cmd);
  const origin = plan.ok ? plan.zone.origin : "";
  const name = plan.ok ? plan.change.name : "";
  const before = plan.ok ? (state.get("dns-rrset", rrsetKey(origin, name, cmd.body.type))?.values.length ?? 0) : 0;
  const after = current - before + (plan.ok ? (plan.change.values?.length ?? 0) : cmd.body.values.length);
  if (after > current && after > limit) return deny(`${after} DNS records would exceed the envelope's dnsRecords=${limit}`);
  return ok(`${after} of ${limit} DNS records`);
}

/** Gate 16 for DNS commands: the command reads and writes only its own IMVU's zones and claims. */
export function dnsNoLeakage(ctx: GateContext): Result {
  const r = dnsIsolation(ctx);
  return r.pass ? ok("the command touches only this IMVU's zones and domains") : deny(`cross-IMVU access: ${r.reason}`);
}

/** Gate 3 for `imvu.create`: `<name>.<base>` is free and not one of the platform's own host labels. */
export function imvuDomainFree(state: StateReader, name: string): Result {
  const d = platformDnsOf(state);
  if (d === undefined) return deny("the platform has no genesis yet");
  const origin = toAbsoluteName(`${name}.${domainKey(d.base)}`);
  for (const label of reservedLabelsOf(d)) if (label === name) return deny(`${name}.${domainKey(d.base)} is one of the platform's own names`);
  if (state.get("domain", domainKey(origin)) !== undefined || state.get("dns-zone", origin) !== undefined) {
    return deny(`${domainKey(origin)} is already bound`);
  }
  return ok(`${domainKey(origin)} is free and will be bound to this IMVU`);
}

function reservedLabelsOf(d: PlatformDns): string[] {
  const out: string[] = [];
  for (const host of [...d.nameservers, d.mailHost, d.hostmaster]) {
    if (host === d.base || !isSubdomain(host, d.base)) continue;
    const rel = host.slice(0, host.length - d.base.length - 1);
    const last = rel.split(".").pop();
    if (last !== undefined && last !== "") out.push(last);
  }
  return out;
}
