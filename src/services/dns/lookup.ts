/**
 * Authoritative lookup (RFC 1034 §4.3.2), pure: a question in, the sections of the answer out.
 * Covers referrals with glue at zone cuts (RFC 1034 §4.2.1, RFC 9471), CNAME chains inside the zone
 * (RFC 1034 §3.6.2, RFC 6604 for the final RCODE), wildcards (RFC 4592), NXDOMAIN versus NODATA
 * with the SOA in the authority section (RFC 2308 §2), ANY answered minimally (RFC 8482 §4.2), and
 * additional-section addresses for NS, MX and SRV targets (RFC 1035 §3.3, RFC 2782).
 */
import { ancestorsUpTo, isSubdomain, parentName, type Name } from "./name.ts";
import { recordTypeOf, TYPE, typeCode, type RecordType } from "./rdata.ts";
import { wildcardOf, type RRset, type Zone, type ZoneNode, type ZoneRecord } from "./zone.ts";

/** Response codes (RFC 1035 §4.1.1, RFC 6891 §9, RFC 8945 §3). */
export const RCODE = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16, BADSIG: 16, BADKEY: 17,
  BADTIME: 18, BADTRUNC: 22,
} as const;

/** CNAME hops followed inside one zone, at most (also the loop guard). */
export const CNAME_CHAIN_MAX = 8;

/** Something that yields a zone by its exact origin (a ZoneStore snapshot, a Map). */
export interface ZoneSet {
  get(origin: Name): Zone | undefined;
}

/** Records for the additional section; `required` ones (in-domain glue, RFC 9471 §3) force TC when they do not fit. */
export interface AdditionalSet {
  readonly records: readonly ZoneRecord[];
  readonly required: boolean;
}

/** What lookup found. */
export type LookupKind = "answer" | "nodata" | "nxdomain" | "referral" | "refused";

/** The sections of an answer, before encoding. */
export interface LookupResult {
  readonly kind: LookupKind;
  readonly rcode: number;
  readonly aa: boolean;
  /** The zone that answered (for metering); undefined when refused. */
  readonly zone: Name | undefined;
  readonly answer: readonly ZoneRecord[];
  readonly authority: readonly ZoneRecord[];
  readonly additional: readonly AdditionalSet[];
}

/** The served zone closest to `qname` (longest matching origin). */
export function findZone(zones: ZoneSet, qname: Name): Zone | undefined {
  for (let cur: Name | undefined = qname; cur !== undefined; cur = parentName(cur)) {
    const z = zones.get(cur);
    if (z !== undefined) return z;
  }
  return undefined;
}

function rrsetRecords(s: RRset, owner: Name = s.name): ZoneRecord[] {
  return s.rdata.map((data) => ({ name: owner, ttl: s.ttl, data }));
}

/** RFC 2308 §3: the SOA of a negative answer carries min(SOA TTL, SOA MINIMUM). */
function negativeSoa(zone: Zone): ZoneRecord {
  return { name: zone.origin, ttl: Math.min(zone.soa.ttl, zone.soa.data.minimum), data: zone.soa.data };
}

interface Acc {
  answer: ZoneRecord[];
  authority: ZoneRecord[];
  additional: AdditionalSet[];
  seenAdditional: Set<string>;
}

function addAddresses(zone: Zone, acc: Acc, host: Name, required: boolean): void {
  if (!isSubdomain(host, zone.origin)) return;
  const node = zone.nodes.get(host);
  if (node === undefined) return;
  for (const t of ["A", "AAAA"] as const) {
    const s = node.rrsets.get(t);
    const key = `${host} ${t}`;
    if (s === undefined || acc.seenAdditional.has(key)) continue;
    acc.seenAdditional.add(key);
    acc.additional.push({ records: rrsetRecords(s), required });
  }
}

/** The cut at or above `name` (below the origin), if the name is delegated away. */
function cutAbove(zone: Zone, name: Name): Name | undefined {
  if (zone.cuts.size === 0) return undefined;
  const path = ancestorsUpTo(name, zone.origin);
  for (let i = path.length - 2; i >= 0; i--) {
    const n = path[i];
    if (n !== undefined && zone.cuts.has(n)) return n;
  }
  return undefined;
}

function referral(zone: Zone, cut: Name, acc: Acc): void {
  const ns = zone.nodes.get(cut)?.rrsets.get("NS");
  if (ns === undefined) return;
  acc.authority.push(...rrsetRecords(ns));
  // RFC 9471 §3: glue for name servers below the cut MUST be sent (else TC); sibling glue MAY.
  for (const d of ns.rdata) if (d.type === "NS") addAddresses(zone, acc, d.host as Name, isSubdomain(d.host as Name, cut));
}

function additionalFor(zone: Zone, acc: Acc, s: RRset): void {
  for (const d of s.rdata) {
    const host = d.type === "NS" ? d.host : d.type === "MX" ? d.exchange : d.type === "SRV" ? d.target : undefined;
    if (host !== undefined && cutAbove(zone, host as Name) === undefined) addAddresses(zone, acc, host as Name, false);
  }
}

/** RFC 8482 §4.2: one RRset stands for all (the CNAME if there is one, else the lowest type code). */
function minimalAny(node: ZoneNode): RRset | undefined {
  const c = node.rrsets.get("CNAME");
  if (c !== undefined) return c;
  let best: RRset | undefined;
  for (const s of node.rrsets.values()) if (best === undefined || typeCode(s.type) < typeCode(best.type)) best = s;
  return best;
}

function done(kind: LookupKind, rcode: number, zone: Zone, acc: Acc): LookupResult {
  return { kind, rcode, aa: true, zone: zone.origin, answer: acc.answer, authority: acc.authority, additional: acc.additional };
}

/** Answers `qtype` at `qname` from the set of served zones. */
export function lookup(zones: ZoneSet, qname: Name, qtype: number): LookupResult {
  const zone = findZone(zones, qname);
  if (zone === undefined) {
    return { kind: "refused", rcode: RCODE.REFUSED, aa: false, zone: undefined, answer: [], authority: [], additional: [] };
  }
  const acc: Acc = { answer: [], authority: [], additional: [], seenAdditional: new Set() };
  const visited = new Set<Name>();
  let name = qname;
  for (let hop = 0; ; hop++) {
    visited.add(name);
    const cut = cutAbove(zone, name);
    // RFC 4035 §3.1.4.1: the parent side answers DS at a cut; Nexus holds no DS, so that is NODATA.
    if (cut !== undefined && !(cut === name && qtype === TYPE.DS)) {
      referral(zone, cut, acc);
      if (hop === 0) {
        return { kind: "referral", rcode: RCODE.NOERROR, aa: false, zone: zone.origin, answer: [], authority: acc.authority, additional: acc.additional };
      }
      return done("answer", RCODE.NOERROR, zone, acc);
    }
    let node = zone.nodes.get(name);
    if (node === undefined) {
      // RFC 4592 §3.3.1: the source of synthesis is "*." + the closest encloser.
      let ce = parentName(name);
      while (ce !== undefined && !zone.nodes.has(ce)) ce = parentName(ce);
      node = ce === undefined ? undefined : zone.nodes.get(wildcardOf(ce));
      if (node === undefined) {
        acc.authority.push(negativeSoa(zone));
        return done("nxdomain", RCODE.NXDOMAIN, zone, acc);
      }
    }
    const rtype: RecordType | undefined = recordTypeOf(qtype);
    const exact = qtype === TYPE.ANY ? minimalAny(node) : rtype === undefined ? undefined : node.rrsets.get(rtype);
    if (exact !== undefined) {
      acc.answer.push(...rrsetRecords(exact, name));
      additionalFor(zone, acc, exact);
      return done("answer", RCODE.NOERROR, zone, acc);
    }
    const cname = node.rrsets.get("CNAME");
    if (cname === undefined) {
      acc.authority.push(negativeSoa(zone));
      return done(acc.answer.length > 0 ? "answer" : "nodata", RCODE.NOERROR, zone, acc);
    }
    acc.answer.push(...rrsetRecords(cname, name));
    const d = cname.rdata[0];
    const target = d?.type === "CNAME" ? (d.target as Name) : undefined;
    // The chain continues only inside this zone, without loops, for a bounded number of hops.
    if (target === undefined || !isSubdomain(target, zone.origin) || visited.has(target) || hop + 1 >= CNAME_CHAIN_MAX) {
      return done("answer", RCODE.NOERROR, zone, acc);
    }
    const sub = findZone(zones, target);
    if (sub !== zone) return done("answer", RCODE.NOERROR, zone, acc);
    name = target;
  }
}
