/**
 * The zones the platform serves, derived purely from the projection: one source for gate 4 (which
 * validates the whole zone a change would produce, so the ledger never holds a zone the server
 * refuses) and for services/dns/projection.ts (what is served). docs/dns.md, "Zones from the ledger".
 *
 * - The platform zone `<base>`: SOA, apex NS, A/AAAA of in-zone name servers and mail host (the
 *   gateway's addresses on one machine), MX and SPF, and an NS delegation for every IMVU zone.
 * - An IMVU zone (`<name>.<base>` or a verified custom domain): SOA and apex NS from the platform
 *   (gate 4: theirs alone), then the zone's RRsets from the `dns-rrset` table, seeded at creation
 *   with the default records (apex A/AAAA of the gateway, MX of the mail host, SPF, DMARC).
 * - The SOA serial of a zone is the ledger index of its last change (RFC 1982 arithmetic on 32
 *   bits), so it increases on every change and replay reproduces it.
 */
import { isSubdomain, parentName, toAbsoluteName, toName, type Name } from "../dns/name.ts";
import { formatIPv6, normalizeRData, parseIPv6, type RData, type RecordType } from "../dns/rdata.ts";
import { TTL_DEFAULT_S, type RecordInput, type ZoneInput } from "../dns/zone.ts";
import type { DnsRRsetRecord, DnsZoneRecord, PlatformRecord, StateReader } from "../pipeline/state.ts";

/** Gateway IPv4 when genesis names none (the embedded default listens on loopback). */
export const GATEWAY_IPV4_DEFAULT = "127.0.0.1";
/** Gateway IPv6 when genesis names none. */
export const GATEWAY_IPV6_DEFAULT = "::1";
/** SOA timers of every served zone (RFC 1912 §2.2 ranges; MINIMUM is the negative TTL, RFC 2308 §4). */
export const SOA_TIMERS = { refresh: 3_600, retry: 600, expire: 604_800, minimum: 300 } as const;
/** The label under which a custom domain's control is proved (`_nexus-challenge.<domain>` TXT). */
export const CHALLENGE_LABEL = "_nexus-challenge";
/** Default SPF policy of a zone (RFC 7208): mail comes from the zone's MX, nothing else. */
export const SPF_DEFAULT = "v=spf1 mx -all";
/** Default DMARC policy (RFC 7489), at `_dmarc.<zone>`. */
export const DMARC_DEFAULT = "v=DMARC1; p=quarantine";
/** MX preference of the default MX record. */
export const MX_PREFERENCE_DEFAULT = 10;

/** The platform's DNS facts with defaults applied, as canonical names. */
export interface PlatformDns {
  readonly base: Name;
  readonly nameservers: readonly Name[];
  readonly gatewayIpv4: string;
  readonly gatewayIpv6: string;
  readonly mailHost: Name;
  readonly hostmaster: Name;
  readonly genesisIndex: string;
}

/** One RRset as the zone derivation handles it. */
export interface RRsetData {
  readonly name: Name;
  readonly type: RecordType;
  readonly ttl: number;
  readonly values: readonly RData[];
}

/** A planned change of one RRset: `values` undefined deletes it. */
export interface RRsetChange {
  readonly name: Name;
  readonly type: RecordType;
  readonly ttl: number;
  readonly values: readonly RData[] | undefined;
}

/** The DNS facts of genesis, defaults filled in (ns1.<base>, 127.0.0.1, ::1, mail.<base>). */
export function platformDns(p: PlatformRecord): PlatformDns {
  const base = toAbsoluteName(p.baseDomain);
  return {
    base,
    nameservers: (p.dns?.nameservers ?? [`ns1.${p.baseDomain}`]).map(toAbsoluteName),
    gatewayIpv4: p.dns?.gatewayIpv4 ?? GATEWAY_IPV4_DEFAULT,
    gatewayIpv6: canonicalIpv6(p.dns?.gatewayIpv6 ?? GATEWAY_IPV6_DEFAULT),
    mailHost: toAbsoluteName(p.dns?.mailHost ?? `mail.${p.baseDomain}`),
    hostmaster: toName("hostmaster", base),
    genesisIndex: p.genesisIndex,
  };
}

/** RFC 5952 text of an IPv6 address (genesis validated it; anything else is kept for buildZone to refuse). */
function canonicalIpv6(s: string): string {
  const b = parseIPv6(s);
  return b === undefined ? s : formatIPv6(b);
}

/** The platform's DNS facts from state, if genesis exists. */
export function platformDnsOf(state: StateReader): PlatformDns | undefined {
  const g = state.get("platform", "genesis");
  return g === undefined ? undefined : platformDns(g);
}

/** The origin of an IMVU's base zone: `<name>.<base>.`. */
export function imvuOrigin(d: PlatformDns, imvu: string): Name {
  return toName(imvu, d.base);
}

/** A canonical domain name without its final dot (the key of the `domain` table). */
export function domainKey(name: Name): string {
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** The key of an RRset row, and the prefix of a zone's rows. */
export function rrsetKey(origin: string, name: string, type: string): string {
  return `${origin} ${name} ${type}`;
}

/** The SOA serial of a change recorded at `index` (the low 32 bits: RFC 1982 serial space). */
export function serialOf(index: string): number {
  return Number(BigInt(index) & 0xffff_ffffn);
}

/** The default RRsets of a new IMVU zone (normalized record data). */
export function defaultRRsets(d: PlatformDns, origin: Name): RRsetData[] {
  const n = (r: RData): RData => normalizeRData(r, origin);
  const ttl = TTL_DEFAULT_S;
  return [
    { name: origin, type: "A", ttl, values: [n({ type: "A", address: d.gatewayIpv4 })] },
    { name: origin, type: "AAAA", ttl, values: [n({ type: "AAAA", address: d.gatewayIpv6 })] },
    { name: origin, type: "MX", ttl, values: [n({ type: "MX", preference: MX_PREFERENCE_DEFAULT, exchange: d.mailHost })] },
    { name: origin, type: "TXT", ttl, values: [{ type: "TXT", text: [SPF_DEFAULT] }] },
    { name: toName("_dmarc", origin), type: "TXT", ttl, values: [{ type: "TXT", text: [DMARC_DEFAULT] }] },
  ];
}

/** The served zone (platform or IMVU) whose origin is nearest above `name`, if any. */
export function zoneOfName(state: StateReader, d: PlatformDns, name: Name): DnsZoneRecord | "platform" | undefined {
  for (let cur: Name | undefined = name; cur !== undefined; cur = parentName(cur)) {
    const z = state.get("dns-zone", cur);
    if (z !== undefined) return z;
    if (cur === d.base) return "platform";
  }
  return undefined;
}

/** The RRsets of an IMVU zone as stored. */
export function zoneRRsets(state: StateReader, origin: string): DnsRRsetRecord[] {
  return state.list("dns-rrset", `${origin} `).map(([, r]) => r);
}

/** True while the IMVU owning a zone has not departed (a departed IMVU's names are no longer served). */
export function zoneActive(state: StateReader, z: DnsZoneRecord): boolean {
  const imvu = state.get("imvu", z.imvu);
  return imvu !== undefined && imvu.exit?.departedIndex === undefined;
}

function recordsOf(sets: readonly RRsetData[]): RecordInput[] {
  const out: RecordInput[] = [];
  for (const s of sets) for (const v of s.values) out.push({ name: s.name, ttl: s.ttl, data: v });
  return out;
}

function soaOf(d: PlatformDns, serial: number): ZoneInput["soa"] {
  const mname = d.nameservers[0] ?? toName("ns1", d.base);
  return { mname, rname: d.hostmaster, serial, ...SOA_TIMERS, ttl: TTL_DEFAULT_S };
}

function apexNs(d: PlatformDns, origin: Name): RRsetData {
  return { name: origin, type: "NS", ttl: TTL_DEFAULT_S, values: d.nameservers.map((host) => ({ type: "NS", host }) as RData) };
}

/**
 * The ZoneInput of an IMVU zone, optionally with one RRset change applied at ledger index
 * `changeIndex` (what gate 4 validates before the change is recorded).
 */
export function imvuZoneInput(state: StateReader, d: PlatformDns, z: DnsZoneRecord, change?: RRsetChange, changeIndex?: string): ZoneInput {
  const origin = z.origin as Name;
  let sets: RRsetData[] = zoneRRsets(state, z.origin).map((r) => ({ name: r.name as Name, type: r.type as RecordType, ttl: r.ttl, values: r.values }));
  if (change !== undefined) {
    sets = sets.filter((s) => s.name !== change.name || s.type !== change.type);
    if (change.values !== undefined) sets.push({ name: change.name, type: change.type, ttl: change.ttl, values: change.values });
  }
  const serial = serialOf(changeIndex ?? z.changedIndex);
  return { origin, ttl: TTL_DEFAULT_S, soa: soaOf(d, serial), records: recordsOf([apexNs(d, origin), ...sets]) };
}

/** The platform zone `<base>`: its own hosts, MX, SPF and a delegation to every active IMVU base zone. */
export function platformZoneInput(state: StateReader, d: PlatformDns): ZoneInput {
  const ttl = TTL_DEFAULT_S;
  const sets: RRsetData[] = [apexNs(d, d.base)];
  const hosts = new Set<Name>([...d.nameservers, d.mailHost, d.base].filter((h) => isSubdomain(h, d.base)));
  for (const h of hosts) {
    sets.push({ name: h, type: "A", ttl, values: [{ type: "A", address: d.gatewayIpv4 }] });
    sets.push({ name: h, type: "AAAA", ttl, values: [{ type: "AAAA", address: d.gatewayIpv6 }] });
  }
  sets.push({ name: d.base, type: "MX", ttl, values: [{ type: "MX", preference: MX_PREFERENCE_DEFAULT, exchange: d.mailHost }] });
  sets.push({ name: d.base, type: "TXT", ttl, values: [{ type: "TXT", text: [SPF_DEFAULT] }] });
  let last = BigInt(d.genesisIndex);
  for (const [, z] of state.list("dns-zone")) {
    if (z.kind !== "base" || !isSubdomain(z.origin as Name, d.base)) continue;
    const departed = state.get("imvu", z.imvu)?.exit?.departedIndex;
    for (const i of [z.createdIndex, departed]) if (i !== undefined && BigInt(i) > last) last = BigInt(i);
    if (departed === undefined) sets.push(apexNs(d, z.origin as Name));
  }
  return { origin: d.base, ttl, soa: soaOf(d, serialOf(last.toString())), records: recordsOf(sets) };
}

/** Every zone the platform serves: the platform zone, then each active IMVU zone in origin order. */
export function servedZoneInputs(state: StateReader): ZoneInput[] {
  const d = platformDnsOf(state);
  if (d === undefined) return [];
  const out: ZoneInput[] = [platformZoneInput(state, d)];
  for (const [, z] of state.list("dns-zone")) if (zoneActive(state, z)) out.push(imvuZoneInput(state, d, z));
  return out;
}

/** The zone served at `origin` now (platform or active IMVU zone), or undefined when none is. */
export function servedZoneInput(state: StateReader, origin: string): ZoneInput | undefined {
  const d = platformDnsOf(state);
  if (d === undefined) return undefined;
  if (origin === d.base) return platformZoneInput(state, d);
  const z = state.get("dns-zone", origin);
  return z !== undefined && zoneActive(state, z) ? imvuZoneInput(state, d, z) : undefined;
}

/** Records an IMVU holds across its zones (gate 7 counts them against `dnsRecords`). */
export function imvuRecordCount(state: StateReader, imvu: string): number {
  let n = 0;
  for (const [, z] of state.list("dns-zone")) {
    if (z.imvu !== imvu) continue;
    for (const r of zoneRRsets(state, z.origin)) n += r.values.length;
  }
  return n;
}
