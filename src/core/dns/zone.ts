/**
 * The zone model (RFC 1034 §4.2, RFC 1035 §5): plain-data input checked with zod, then validated
 * per type and per zone rule (apex SOA and NS, no CNAME at the apex or beside other data,
 * delegations hold NS only, TTL bounds, one TTL per RRset) into an immutable, indexed `Zone`.
 * Pure: no sockets, no clocks. `lookup()` (in lookup.ts) answers questions from a set of zones.
 */
import { z } from "zod";
import { dnsErrors } from "./errors.ts";
import {
  ancestorsUpTo, isHostName, isSubdomain, isWildcard, nameLabels, parentName, ROOT, toAbsoluteName, toName, type Name,
} from "./name.ts";
import { normalizeRData, rdataWire, RDataSchema, typeCode, type RData, type RDataOf, type RecordType } from "./rdata.ts";

/** Smallest TTL served, in seconds (below it caches churn and secondaries hammer us). */
export const TTL_MIN_S = 30;
/** Largest TTL served, in seconds (one week; RFC 8767 §4 caps stale data at 7 days too). */
export const TTL_MAX_S = 604_800;
/** TTL of records that name none. */
export const TTL_DEFAULT_S = 3_600;
/** Records in one zone, at most. */
export const RECORDS_PER_ZONE_MAX = 20_000;
/** Records in one RRset, at most (an RRset must fit one TCP message). */
export const RRSET_RECORDS_MAX = 256;

const nameText = z.string().min(1).max(1024);
const ttl = z.number().int();
const u32 = z.number().int().min(0).max(4_294_967_295);

/** One record as the ledger projection supplies it: name relative to the origin ("@", "www") or absolute ("www.example.com."). */
export const RecordInputSchema = z.object({ name: nameText, ttl: ttl.optional(), data: RDataSchema }).strict();
/** The SOA fields of a zone (its owner is the origin). */
export const SoaInputSchema = z.object({
  mname: nameText, rname: nameText, serial: u32, refresh: u32, retry: u32, expire: u32, minimum: u32, ttl: ttl.optional(),
}).strict();
/** A whole zone as plain data. */
export const ZoneInputSchema = z.object({
  origin: nameText,
  ttl: ttl.optional(),
  soa: SoaInputSchema,
  records: z.array(RecordInputSchema).max(RECORDS_PER_ZONE_MAX),
}).strict();

/** One record as supplied. */
export type RecordInput = z.infer<typeof RecordInputSchema>;
/** The SOA fields as supplied. */
export type SoaInput = z.infer<typeof SoaInputSchema>;
/** A whole zone as supplied (JSON-friendly: what the ledger projection holds). */
export type ZoneInput = z.infer<typeof ZoneInputSchema>;

/** A validated record: absolute canonical owner, bounded TTL, canonical data. */
export interface ZoneRecord {
  readonly name: Name;
  readonly ttl: number;
  readonly data: RData;
}

/** The records of one name and type (RFC 2181 §5: they share one TTL). */
export interface RRset {
  readonly name: Name;
  readonly type: RecordType;
  readonly ttl: number;
  readonly rdata: readonly RData[];
}

/** One node of the tree; an empty non-terminal has no RRsets (RFC 4592 §2.2.2). */
export interface ZoneNode {
  readonly rrsets: ReadonlyMap<RecordType, RRset>;
}

/** A validated, indexed, immutable zone. */
export interface Zone {
  readonly origin: Name;
  readonly soa: { readonly name: Name; readonly ttl: number; readonly data: RDataOf<"SOA"> };
  /** Every record but the SOA, in canonical order (RFC 4034 §6). */
  readonly records: readonly ZoneRecord[];
  /** Every owner name and every empty non-terminal between an owner and the origin. */
  readonly nodes: ReadonlyMap<Name, ZoneNode>;
  /** Delegation points (names below the origin owning NS). */
  readonly cuts: ReadonlySet<Name>;
}

/** The zone's SOA serial. */
export function zoneSerial(zone: Zone): number {
  return zone.soa.data.serial;
}

function checkTtl(v: number | undefined, fallback: number, where: string): number {
  const t = v ?? fallback;
  if (!Number.isInteger(t) || t < TTL_MIN_S || t > TTL_MAX_S) {
    throw dnsErrors.make("DNS_TTL_OUT_OF_RANGE", `${where}: ${t} is outside ${TTL_MIN_S}..${TTL_MAX_S} s`);
  }
  return t;
}

/** RFC 4034 §6.1 canonical order of names: label by label from the right, octets compared without case. */
export function compareNames(a: Name, b: Name): number {
  if (a === b) return 0;
  const la = nameLabels(a);
  const lb = nameLabels(b);
  for (let i = 1; i <= Math.min(la.length, lb.length); i++) {
    const x = la[la.length - i] ?? new Uint8Array(0);
    const y = lb[lb.length - i] ?? new Uint8Array(0);
    const c = Buffer.compare(x, y);
    if (c !== 0) return c;
  }
  return la.length - lb.length;
}

/** Canonical order of records: owner, type code, then RDATA octets. */
export function compareRecords(a: ZoneRecord, b: ZoneRecord): number {
  return compareNames(a.name, b.name) || typeCode(a.data.type) - typeCode(b.data.type) || Buffer.compare(rdataWire(a.data), rdataWire(b.data));
}

/** A stable identity of a record's name, type and data (the TTL is not part of it). */
export function recordKey(r: ZoneRecord): string {
  return `${r.name} ${r.data.type} ${Buffer.from(rdataWire(r.data)).toString("hex")}`;
}

function parseInput(input: unknown): ZoneInput {
  const r = ZoneInputSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    if (issue?.code === "too_big" && path === "records") throw dnsErrors.make("DNS_ZONE_TOO_LARGE", `more than ${RECORDS_PER_ZONE_MAX} records`);
    throw dnsErrors.make("DNS_ZONE_INVALID", `${path}: ${issue?.message ?? "invalid"}`);
  }
  return r.data;
}

/** Validates one record of a zone (the lead's `dns set` checks single records with it). */
export function normalizeRecord(rec: RecordInput, origin: Name, defaultTtl: number = TTL_DEFAULT_S): ZoneRecord {
  const name = toName(rec.name, origin);
  if (!isSubdomain(name, origin)) throw dnsErrors.make("DNS_OUT_OF_ZONE", `${name} is not inside ${origin}`);
  if (rec.data.type === "SOA") throw dnsErrors.make("DNS_ZONE_INVALID", "the SOA is given as the zone's soa, not as a record");
  const data = normalizeRData(rec.data, origin);
  checkHostNames(name, data);
  return { name, ttl: checkTtl(rec.ttl, defaultTtl, `${name} ${data.type}`), data };
}

/**
 * Host-name rules of named-checkzone's check-names (RFC 952/1123): owners of A/AAAA and the targets
 * of NS, MX, SRV and PTR are host names ("." stays allowed as RFC 7505 null MX and RFC 2782 "no service").
 */
function checkHostNames(owner: Name, d: RData): void {
  const host = (n: string, what: string, rootOk: boolean): void => {
    if (rootOk && n === ROOT) return;
    if (!isHostName(n as Name)) throw dnsErrors.make("DNS_NAME_INVALID", `${what} ${n} is not a host name`);
  };
  switch (d.type) {
    case "A":
    case "AAAA":
      if (!isHostName(owner, true)) throw dnsErrors.make("DNS_NAME_INVALID", `${d.type} owner ${owner} is not a host name`);
      return;
    case "NS":
      return host(d.host, "NS host", false);
    case "MX":
      return host(d.exchange, "MX exchange", true);
    case "SRV":
      return host(d.target, "SRV target", true);
    case "PTR":
      return host(d.target, "PTR target", false);
    default:
      return;
  }
}

interface MutableNode {
  readonly rrsets: Map<RecordType, { name: Name; type: RecordType; ttl: number; rdata: RData[]; keys: Set<string> }>;
}

/** Validates plain data into a Zone. Throws DNS_* errors naming the first problem. */
export function buildZone(input: unknown): Zone {
  const z0 = parseInput(input);
  const origin = toAbsoluteName(z0.origin);
  const defaultTtl = checkTtl(z0.ttl, TTL_DEFAULT_S, "zone default TTL");
  const { ttl: soaTtl, ...soaFields } = z0.soa;
  const soaData = normalizeRData({ type: "SOA", ...soaFields }, origin) as RDataOf<"SOA">;
  if (!isHostName(soaData.mname as Name)) throw dnsErrors.make("DNS_NAME_INVALID", `SOA mname ${soaData.mname} is not a host name`);
  const soa = { name: origin, ttl: checkTtl(soaTtl, defaultTtl, "SOA"), data: soaData };

  const nodes = new Map<Name, MutableNode>();
  // The SOA RRset lives at the apex node (for lookups) but outside `records` (it leads every listing).
  const soaSet = { name: origin, type: "SOA" as const, ttl: soa.ttl, rdata: [soaData as RData], keys: new Set<string>() };
  nodes.set(origin, { rrsets: new Map([["SOA", soaSet]]) });
  for (const rin of z0.records) {
    const rec = normalizeRecord(rin, origin, defaultTtl);
    let node = nodes.get(rec.name);
    if (node === undefined) {
      node = { rrsets: new Map() };
      nodes.set(rec.name, node);
    }
    let set = node.rrsets.get(rec.data.type);
    if (set === undefined) {
      set = { name: rec.name, type: rec.data.type, ttl: rec.ttl, rdata: [], keys: new Set() };
      node.rrsets.set(rec.data.type, set);
    }
    if (set.ttl !== rec.ttl) throw dnsErrors.make("DNS_RRSET_TTL_MISMATCH", `${rec.name} ${rec.data.type}: ${set.ttl} and ${rec.ttl}`);
    const key = Buffer.from(rdataWire(rec.data)).toString("hex");
    if (set.keys.has(key)) continue; // RFC 2181 §5: duplicate records are suppressed
    if (set.rdata.length >= RRSET_RECORDS_MAX) throw dnsErrors.make("DNS_ZONE_TOO_LARGE", `${rec.name} ${rec.data.type} has over ${RRSET_RECORDS_MAX} records`);
    set.keys.add(key);
    set.rdata.push(rec.data);
  }
  // Empty non-terminals: every ancestor of an owner down to the origin is a node (RFC 4592 §2.2.2).
  for (const name of [...nodes.keys()]) {
    for (const a of ancestorsUpTo(name, origin)) if (!nodes.has(a)) nodes.set(a, { rrsets: new Map() });
  }
  const cuts = checkRules(origin, nodes);
  const frozen = new Map<Name, ZoneNode>();
  const records: ZoneRecord[] = [];
  for (const [name, node] of nodes) {
    const rrsets = new Map<RecordType, RRset>();
    for (const [t, s] of node.rrsets) {
      const sorted = [...s.rdata].sort((a, b) => Buffer.compare(rdataWire(a), rdataWire(b)));
      rrsets.set(t, { name: s.name, type: t, ttl: s.ttl, rdata: sorted });
      if (t !== "SOA") for (const d of sorted) records.push({ name, ttl: s.ttl, data: d });
    }
    frozen.set(name, { rrsets });
  }
  records.sort(compareRecords);
  return { origin, soa, records, nodes: frozen, cuts };
}

function checkRules(origin: Name, nodes: Map<Name, MutableNode>): Set<Name> {
  const apex = nodes.get(origin);
  if (apex?.rrsets.has("CNAME")) throw dnsErrors.make("DNS_CNAME_AT_APEX", origin);
  if (!apex?.rrsets.has("NS")) throw dnsErrors.make("DNS_APEX_NS_MISSING", origin);
  const cuts = new Set<Name>();
  for (const [name, node] of nodes) {
    const cname = node.rrsets.get("CNAME");
    if (cname !== undefined && (node.rrsets.size > 1 || cname.rdata.length > 1)) throw dnsErrors.make("DNS_CNAME_CONFLICT", name);
    if (name !== origin && node.rrsets.has("NS")) {
      if (isWildcard(name)) throw dnsErrors.make("DNS_WILDCARD_INVALID", name);
      cuts.add(name);
    }
  }
  for (const [name, node] of nodes) {
    if (name === origin) continue;
    // Below a cut only glue lives (A/AAAA); at the cut only NS (RFC 1034 §4.2.1, RFC 9471).
    const above = ancestorsUpTo(name, origin).slice(1, -1);
    const under = above.some((a) => cuts.has(a));
    for (const t of node.rrsets.keys()) {
      if (cuts.has(name) && t !== "NS") throw dnsErrors.make("DNS_DELEGATION_CONFLICT", `${name} ${t} beside a delegation`);
      if (under && t !== "A" && t !== "AAAA") throw dnsErrors.make("DNS_DELEGATION_CONFLICT", `${name} ${t} below a delegation`);
    }
  }
  const inZoneHost = (n: string): MutableNode | undefined => (isSubdomain(n as Name, origin) ? nodes.get(n as Name) : undefined);
  for (const [name, node] of nodes) {
    for (const [t, s] of node.rrsets) {
      for (const d of s.rdata) {
        const target = d.type === "NS" ? d.host : d.type === "MX" ? d.exchange : d.type === "SRV" ? d.target : undefined;
        if (target === undefined) continue;
        const tn = inZoneHost(target);
        if (tn?.rrsets.has("CNAME")) throw dnsErrors.make("DNS_TARGET_IS_ALIAS", `${name} ${t} ${target}`);
        // named-checkzone refuses an in-zone NS target without an address (it is glue or must resolve here).
        if (t === "NS" && isSubdomain(target as Name, origin) && !tn?.rrsets.has("A") && !tn?.rrsets.has("AAAA")) {
          throw dnsErrors.make("DNS_NS_ADDRESS_MISSING", `${name} NS ${target}`);
        }
      }
    }
  }
  return cuts;
}

/** The plain-data form of a zone (absolute names), which `buildZone` accepts back unchanged. */
export function zoneToInput(zone: Zone): ZoneInput {
  const { type: _t, ...soa } = zone.soa.data;
  return {
    origin: zone.origin,
    soa: { ...soa, ttl: zone.soa.ttl },
    records: zone.records.map((r) => ({ name: r.name, ttl: r.ttl, data: r.data })),
  };
}

/** RFC 1982 §3.2: true when serial `a` is greater than serial `b` in 32-bit serial arithmetic. */
export function serialGreater(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x8000_0000;
}

/** The next serial after `serial` (RFC 1982 §3.1 addition of 1, wrapping past 2^32 - 1). */
export function nextSerial(serial: number): number {
  return (serial + 1) >>> 0;
}

/** The same zone with another SOA serial. */
export function withSerial(zone: Zone, serial: number): Zone {
  const soa = { ...zone.soa, data: { ...zone.soa.data, serial: serial >>> 0 } };
  const nodes = new Map(zone.nodes);
  const apex = zone.nodes.get(zone.origin);
  const rrsets = new Map(apex?.rrsets ?? []);
  rrsets.set("SOA", { name: zone.origin, type: "SOA", ttl: soa.ttl, rdata: [soa.data] });
  nodes.set(zone.origin, { rrsets });
  return { ...zone, soa, nodes };
}

/** True when two zones hold the same data (SOA serial aside). */
export function sameContent(a: Zone, b: Zone): boolean {
  if (a.origin !== b.origin || a.records.length !== b.records.length || a.soa.ttl !== b.soa.ttl) return false;
  const sa = { ...a.soa.data, serial: 0 };
  const sb = { ...b.soa.data, serial: 0 };
  if (JSON.stringify(sa) !== JSON.stringify(sb)) return false;
  for (let i = 0; i < a.records.length; i++) {
    const x = a.records[i];
    const y = b.records[i];
    if (x === undefined || y === undefined || x.ttl !== y.ttl || recordKey(x) !== recordKey(y)) return false;
  }
  return true;
}

/** What changed between two versions of a zone, SOA aside (the body of one IXFR difference sequence, RFC 1995 §4). */
export interface ZoneDiff {
  readonly removed: readonly ZoneRecord[];
  readonly added: readonly ZoneRecord[];
}

/** The records to delete from `from` and add to reach `to` (a TTL change is a delete plus an add). */
export function diffZones(from: Zone, to: Zone): ZoneDiff {
  const key = (r: ZoneRecord): string => `${recordKey(r)} ${r.ttl}`;
  const a = new Map(from.records.map((r) => [key(r), r]));
  const b = new Map(to.records.map((r) => [key(r), r]));
  return {
    removed: from.records.filter((r) => !b.has(key(r))),
    added: to.records.filter((r) => !a.has(key(r))),
  };
}

/** The wildcard name "*.<parent>" (RFC 4592 §2.1.1). */
export function wildcardOf(parent: Name): Name {
  return (parent === ROOT ? "*." : `*.${parent}`) as Name;
}

/** The closest ancestor of `name` that is a node of the zone (RFC 4592 §3.3.1 closest encloser). */
export function closestEncloser(zone: Zone, name: Name): Name {
  for (let cur = parentName(name); cur !== undefined; cur = parentName(cur)) {
    if (zone.nodes.has(cur)) return cur;
    if (cur === zone.origin) return cur;
  }
  return zone.origin;
}
