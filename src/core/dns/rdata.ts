/**
 * Record data of the types Nexus serves (RFC 1035 §3.3, RFC 3596, RFC 2782, RFC 8659): the zod
 * schema each type is checked against, canonical normalisation, wire encoding (compressed only
 * where RFC 3597 §4 allows: NS, CNAME, SOA, MX, PTR), and presentation text. Decoding
 * hostile wire RDATA stays in services/dns/rdata.ts.
 */
import { z } from "zod";
import { dnsErrors } from "./errors.ts";
import { toName, type Name } from "./name.ts";
import { WireWriter } from "./writer.ts";

/** Type codes (IANA DNS parameters) used in this part. */
export const TYPE = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, DS: 43,
  RRSIG: 46, NSEC: 47, DNSKEY: 48, TKEY: 249, TSIG: 250, IXFR: 251, AXFR: 252, MAILB: 253, MAILA: 254, ANY: 255, CAA: 257,
} as const;

/** Class codes (RFC 1035 §3.2.4, RFC 2136 §1.3). */
export const CLASS = { IN: 1, CH: 3, NONE: 254, ANY: 255 } as const;

/** The record types a zone may hold. */
export const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "SOA"] as const;
/** One record type a zone may hold. */
export type RecordType = (typeof RECORD_TYPES)[number];

const u8 = z.number().int().min(0).max(255);
const u16 = z.number().int().min(0).max(65_535);
const u32 = z.number().int().min(0).max(4_294_967_295);
const nameText = z.string().min(1).max(1024);
/** TXT/CAA character strings are at most 255 octets each (RFC 1035 §3.3). */
export const CHARACTER_STRING_OCTETS_MAX = 255;
/** RFC 1035 §3.2.1: RDLENGTH is 16 bits. */
export const RDATA_OCTETS_MAX = 65_535;
/** TXT strings one record holds, at most. */
export const TXT_STRINGS_MAX = 64;

/** Record data, one object shape per type (names are relative to the zone or absolute with a trailing dot). */
export const RDataSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("A"), address: z.string().max(64) }).strict(),
  z.object({ type: z.literal("AAAA"), address: z.string().max(64) }).strict(),
  z.object({ type: z.literal("CNAME"), target: nameText }).strict(),
  z.object({ type: z.literal("NS"), host: nameText }).strict(),
  z.object({ type: z.literal("PTR"), target: nameText }).strict(),
  z.object({ type: z.literal("MX"), preference: u16, exchange: nameText }).strict(),
  z.object({ type: z.literal("TXT"), text: z.array(z.string().max(1024)).min(1).max(TXT_STRINGS_MAX) }).strict(),
  z.object({ type: z.literal("SRV"), priority: u16, weight: u16, port: u16, target: nameText }).strict(),
  z.object({ type: z.literal("CAA"), flags: u8, tag: z.string().max(64), value: z.string().max(4096) }).strict(),
  z.object({
    type: z.literal("SOA"), mname: nameText, rname: nameText, serial: u32, refresh: u32, retry: u32, expire: u32, minimum: u32,
  }).strict(),
]);

/** Record data of one type; after `normalizeRData`, every name is a canonical absolute Name. */
export type RData = z.infer<typeof RDataSchema>;
/** Record data of the given type. */
export type RDataOf<T extends RecordType> = Extract<RData, { type: T }>;

const CODE: Record<RecordType, number> = {
  A: TYPE.A, AAAA: TYPE.AAAA, CNAME: TYPE.CNAME, MX: TYPE.MX, TXT: TYPE.TXT, SRV: TYPE.SRV, CAA: TYPE.CAA, NS: TYPE.NS,
  PTR: TYPE.PTR, SOA: TYPE.SOA,
};
const BY_CODE = new Map<number, RecordType>(RECORD_TYPES.map((t) => [CODE[t], t]));
const MNEMONIC = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));

/** The type code of a served record type. */
export function typeCode(t: RecordType): number {
  return CODE[t];
}

/** The served record type of a code, if any. */
export function recordTypeOf(code: number): RecordType | undefined {
  return BY_CODE.get(code);
}

/** The mnemonic of a type code, or RFC 3597 `TYPEnnn`. */
export function typeName(code: number): string {
  return MNEMONIC.get(code) ?? `TYPE${code}`;
}

/** Throws DNS_RDATA_INVALID (shared with the wire decoder in services/dns). */
export function invalid(what: string): never {
  throw dnsErrors.make("DNS_RDATA_INVALID", what);
}

/** Strict dotted-quad IPv4 (no leading zeros); undefined when malformed. */
export function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? "";
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** IPv6 text (RFC 4291 §2.2, with an optional dotted-quad tail) to 16 octets; undefined when malformed. */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    const parts = h.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? "";
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIPv4(p);
        if (v4 === undefined) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0] ?? "");
  const tail = halves.length === 2 ? groups(halves[1] ?? "") : [];
  if (head === undefined || tail === undefined) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** RFC 5952 text of 16 octets (lower case, longest zero run compressed, IPv4-mapped in mixed notation). */
export function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

const utf8Encoder = new TextEncoder();

/** UTF-8 octets of a character string, checked against the 255-octet bound. */
function characterString(s: string, what: string): Uint8Array {
  const b = utf8Encoder.encode(s);
  if (b.length > CHARACTER_STRING_OCTETS_MAX) invalid(`${what} longer than 255 octets`);
  return b;
}

/** Validates record data and returns it with canonical names and addresses (names relative to `origin`). */
export function normalizeRData(input: RData, origin: Name): RData {
  const n = (s: string): Name => toName(s, origin);
  switch (input.type) {
    case "A": {
      const b = parseIPv4(input.address);
      if (b === undefined) invalid(`A address ${JSON.stringify(input.address)} is not a dotted quad`);
      return { type: "A", address: Array.from(b).join(".") };
    }
    case "AAAA": {
      const b = parseIPv6(input.address);
      if (b === undefined) invalid(`AAAA address ${JSON.stringify(input.address)} is not an IPv6 address`);
      return { type: "AAAA", address: formatIPv6(b) };
    }
    case "CNAME":
      return { type: "CNAME", target: n(input.target) };
    case "NS":
      return { type: "NS", host: n(input.host) };
    case "PTR":
      return { type: "PTR", target: n(input.target) };
    case "MX":
      return { type: "MX", preference: input.preference, exchange: n(input.exchange) };
    case "TXT": {
      let total = 0;
      for (const s of input.text) total += characterString(s, "TXT string").length + 1;
      if (total > RDATA_OCTETS_MAX) invalid("TXT data longer than 65,535 octets");
      return { type: "TXT", text: [...input.text] };
    }
    case "SRV":
      return { type: "SRV", priority: input.priority, weight: input.weight, port: input.port, target: n(input.target) };
    case "CAA": {
      // RFC 8659 §4.1: the tag is 1-15 ASCII letters and digits, compared without case.
      if (!/^[A-Za-z0-9]{1,15}$/.test(input.tag)) invalid("CAA tag must be 1-15 letters or digits");
      const v = utf8Encoder.encode(input.value);
      if (v.length + input.tag.length + 2 > RDATA_OCTETS_MAX) invalid("CAA value too long");
      return { type: "CAA", flags: input.flags, tag: input.tag.toLowerCase(), value: input.value };
    }
    case "SOA":
      return { ...input, mname: n(input.mname), rname: n(input.rname) };
  }
}

/** Writes record data (RFC 3597 §4: only the RFC 1035 types compress names in their RDATA). */
export function writeRData(w: WireWriter, r: RData): void {
  switch (r.type) {
    case "A": {
      for (const p of r.address.split(".")) w.u8(Number(p));
      return;
    }
    case "AAAA": {
      const b = parseIPv6(r.address);
      if (b === undefined) invalid("AAAA address");
      w.bytes(b);
      return;
    }
    case "CNAME":
    case "PTR":
      w.name(r.target as Name, true);
      return;
    case "NS":
      w.name(r.host as Name, true);
      return;
    case "MX":
      w.u16(r.preference);
      w.name(r.exchange as Name, true);
      return;
    case "TXT":
      for (const s of r.text) {
        const b = characterString(s, "TXT string");
        w.u8(b.length);
        w.bytes(b);
      }
      return;
    case "SRV":
      // RFC 2782: the target is not compressed.
      w.u16(r.priority);
      w.u16(r.weight);
      w.u16(r.port);
      w.name(r.target as Name, false);
      return;
    case "CAA": {
      w.u8(r.flags);
      w.u8(r.tag.length);
      w.bytes(utf8Encoder.encode(r.tag));
      w.bytes(utf8Encoder.encode(r.value));
      return;
    }
    case "SOA":
      w.name(r.mname as Name, true);
      w.name(r.rname as Name, true);
      w.u32(r.serial);
      w.u32(r.refresh);
      w.u32(r.retry);
      w.u32(r.expire);
      w.u32(r.minimum);
      return;
  }
}

/** Uncompressed wire RDATA with lower-case names (the canonical form of RFC 4034 §6.2), for equality and ordering. */
export function rdataWire(r: RData): Uint8Array {
  const hit = wireCache.get(r);
  if (hit !== undefined) return hit;
  scratch.reset();
  writeRData(scratch, r);
  const out = new Uint8Array(scratch.finish());
  wireCache.set(r, out);
  return out;
}

const scratch = new WireWriter(RDATA_OCTETS_MAX, false, false);
const wireCache = new WeakMap<RData, Uint8Array>();

/** RFC 1035 §5.1 quoted character-string: printable ASCII kept, `"` and `\` escaped, other octets as \DDD. */
export function quoteString(b: Uint8Array): string {
  let s = '"';
  for (const o of b) {
    if (o === 0x22 || o === 0x5c) s += `\\${String.fromCharCode(o)}`;
    else if (o >= 0x20 && o < 0x7f) s += String.fromCharCode(o);
    else s += `\\${String(o).padStart(3, "0")}`;
  }
  return `${s}"`;
}

/** Presentation text of record data, names written by `nameOut` (absolute by default). */
export function rdataText(r: RData, nameOut: (n: Name) => string = (n) => n): string {
  const n = (s: string): string => nameOut(s as Name);
  switch (r.type) {
    case "A":
    case "AAAA":
      return r.address;
    case "CNAME":
    case "PTR":
      return n(r.target);
    case "NS":
      return n(r.host);
    case "MX":
      return `${r.preference} ${n(r.exchange)}`;
    case "TXT":
      return r.text.map((s) => quoteString(utf8Encoder.encode(s))).join(" ");
    case "SRV":
      return `${r.priority} ${r.weight} ${r.port} ${n(r.target)}`;
    case "CAA":
      return `${r.flags} ${r.tag} ${quoteString(utf8Encoder.encode(r.value))}`;
    case "SOA":
      return `${n(r.mname)} ${n(r.rname)} ${r.serial} ${r.refresh} ${r.retry} ${r.expire} ${r.minimum}`;
  }
}
