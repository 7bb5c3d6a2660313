/**
 * RFC 1035 §5 master files: a scanner (tokens, parentheses, quotes, escapes, comments, $ORIGIN,
 * $TTL, blank owners, TTL units, `TYPEnnn` and RFC 3597 `\# len hex`) that yields records in wire
 * form or one error per bad entry, in the manner of knot's zscanner; a loader from scanned records
 * to the zone model; and the exporter `dns export` prints (which named-checkzone must accept).
 */
import { dnsErrors } from "./errors.ts";
import { isNexusError } from "../../core/errors.ts";
import { labelsToName, parseLabels, relativeName, type Name } from "./name.ts";
import { parseIPv4, parseIPv6, rdataText, readRData, recordTypeOf, TYPE, typeName, type RData } from "./rdata.ts";
import { malformed } from "./reader.ts";
import { TTL_DEFAULT_S, type RecordInput, type Zone, type ZoneInput } from "./zone.ts";

/** Master-file text accepted, at most, in octets (about 20,000 long records). */
export const ZONEFILE_OCTETS_MAX = 8 * 1024 * 1024;
/** Errors collected before scanning gives up. */
export const ZONEFILE_ERRORS_MAX = 1_000;
/** TTLs and SOA timers are 32-bit (RFC 2181 §8). */
const U32_MAX = 4_294_967_295;

/** One record as scanned: owner labels with their case, class IN, TTL, type code, RDATA octets (names uncompressed). */
export interface ScannedRecord {
  readonly kind: "record";
  readonly line: number;
  readonly owner: readonly Uint8Array[];
  readonly ttl: number;
  /** False when the TTL came from $TTL or the default. */
  readonly ttlGiven: boolean;
  readonly type: number;
  readonly rdata: Uint8Array;
}

/** One failed entry; `fatal` errors end the scan (nested or unclosed parentheses, bad $ORIGIN or $TTL). */
export interface ScanError {
  readonly kind: "error";
  readonly line: number;
  readonly message: string;
  readonly fatal: boolean;
  /** Set when the entry is well-formed but its type has no text form here (DS, HINFO, ZONEMD...). */
  readonly unsupportedType?: string;
}

/** Scanner settings. */
export interface ScanOptions {
  /** Origin for relative names until a $ORIGIN (default the root). */
  readonly origin?: string;
  /** TTL for records without one before any $TTL (default 3600). */
  readonly defaultTtl?: number;
}

interface Token {
  readonly text: string;
  readonly quoted: boolean;
}

interface Entry {
  readonly line: number;
  readonly blankOwner: boolean;
  readonly tokens: Token[];
  /** A lexical fault confined to this entry. */
  readonly error: string | undefined;
}

class Fatal extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

/** Splits text into entries: one per line, or several lines joined by parentheses (RFC 1035 §5.1). */
function* entries(text: string): Generator<Entry> {
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const startLine = line;
    const blankOwner = text[i] === " " || text[i] === "\t";
    const tokens: Token[] = [];
    let error: string | undefined;
    let depth = 0;
    let parenLine = 0;
    for (;;) {
      if (i >= n) {
        if (depth > 0) throw new Fatal(parenLine, "unclosed parenthesis");
        break;
      }
      const c = text[i] ?? "";
      if (c === "\n") {
        line++;
        i++;
        if (depth === 0) break;
        continue;
      }
      if (c === " " || c === "\t" || c === "\r") {
        i++;
        continue;
      }
      if (c === ";") {
        while (i < n && text[i] !== "\n") i++;
        continue;
      }
      if (c === "(") {
        if (depth > 0) throw new Fatal(line, "nested parentheses");
        depth = 1;
        parenLine = line;
        i++;
        continue;
      }
      if (c === ")") {
        if (depth === 0) throw new Fatal(line, "closing parenthesis without an opening one");
        depth = 0;
        i++;
        continue;
      }
      if (c === '"') {
        let s = "";
        let endEntry = false;
        i++;
        for (;;) {
          if (i >= n) throw new Fatal(line, "unterminated quoted string");
          const d = text[i] ?? "";
          if (d === '"') {
            i++;
            break;
          }
          if (d === "\n") {
            // A newline inside quotes is only tolerated within parentheses (as knot does); else the entry is bad.
            if (depth === 0) {
              error ??= "unterminated quoted string";
              endEntry = true;
              break;
            }
            line++;
          }
          if (d === "\\" && i + 1 < n) {
            s += d + (text[i + 1] ?? "");
            i += 2;
            continue;
          }
          s += d;
          i++;
        }
        if (endEntry) continue;
        // A closing quote must be followed by a separator (`"""` is not two strings).
        const after = text[i];
        if (after !== undefined && !" \t\r\n;()".includes(after)) error ??= "text after a closing quote";
        tokens.push({ text: s, quoted: true });
        continue;
      }
      let s = "";
      while (i < n) {
        const d = text[i] ?? "";
        if (d === " " || d === "\t" || d === "\r" || d === "\n" || d === ";" || d === "(" || d === ")") break;
        if (d === "\\" && i + 1 < n && text[i + 1] !== "\n") {
          s += d + (text[i + 1] ?? "");
          i += 2;
          continue;
        }
        s += d;
        i++;
      }
      tokens.push({ text: s, quoted: false });
    }
    if (tokens.length > 0 || error !== undefined) yield { line: startLine, blankOwner, tokens, error };
  }
}

/** A TTL or SOA timer: decimal seconds or units (1w2d3h4m5s, any case), at most 2^32 - 1 (RFC 2308 §4 / BIND syntax). */
export function parseTtl(s: string): number {
  if (/^[0-9]+$/.test(s)) {
    const v = Number(s);
    if (s.length > 10 || v > U32_MAX) throw new Error(`number ${s} exceeds 32 bits`);
    return v;
  }
  if (!/^(?:[0-9]+[smhdwSMHDW])+$/.test(s)) throw new Error(`bad time value ${JSON.stringify(s)}`);
  const unit: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400, w: 604_800 };
  let total = 0;
  for (const m of s.matchAll(/([0-9]+)([smhdwSMHDW])/g)) {
    total += Number(m[1]) * (unit[(m[2] ?? "s").toLowerCase()] ?? 1);
    if (total > U32_MAX) throw new Error(`time value ${s} exceeds 32 bits`);
  }
  return total;
}

function parseUint(s: string, max: number): number {
  if (!/^[0-9]{1,10}$/.test(s) || Number(s) > max) throw new Error(`bad number ${JSON.stringify(s)} (0..${max})`);
  return Number(s);
}

/** The octets of a <character-string> token (escapes \X and \DDD; other characters as UTF-8). */
export function characterStringOctets(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) {
      const d = s.slice(i + 1, i + 4);
      if (/^[0-9]/.test(d)) {
        if (!/^[0-9]{3}$/.test(d) || Number(d) > 255) throw new Error("bad \\DDD escape");
        out.push(Number(d));
        i += 3;
      } else {
        if (i + 1 >= s.length) throw new Error("dangling backslash");
        const e = Buffer.from(s[i + 1] ?? "", "utf8");
        out.push(...e);
        i += 1;
      }
      continue;
    }
    if (c < 0x80) out.push(c);
    else {
      const cp = s.codePointAt(i) ?? c;
      out.push(...Buffer.from(String.fromCodePoint(cp), "utf8"));
      if (cp > 0xffff) i++;
    }
  }
  return Uint8Array.from(out);
}

const KNOWN_TYPES = new Map<string, number>(Object.entries(TYPE));

function parseType(s: string): number | undefined {
  const m = /^TYPE([0-9]{1,5})$/i.exec(s);
  if (m !== null) {
    const v = Number(m[1]);
    if (v > 65_535) throw new Error(`type number ${v} exceeds 16 bits`);
    return v;
  }
  return KNOWN_TYPES.get(s.toUpperCase());
}

/** Structural check of RDATA octets of the served types (RFC 3597 §5: generic data of a known type must be valid). */
function checkWire(type: number, b: Uint8Array): void {
  const name = (at: number): number => {
    let p = at;
    for (;;) {
      const l = b[p];
      if (l === undefined) malformed("name runs past RDATA");
      if (l === 0) return p + 1;
      if (l > 63) malformed("compressed or bad label in RDATA");
      p += l + 1;
    }
  };
  const exact = (p: number): void => {
    if (p !== b.length) malformed("RDATA length does not match its type");
  };
  switch (recordTypeOf(type)) {
    case "A":
      return exact(b.length === 4 ? 4 : -1);
    case "AAAA":
      return exact(b.length === 16 ? 16 : -1);
    case "NS":
    case "CNAME":
    case "PTR":
      return exact(name(0));
    case "MX":
      return exact(b.length < 3 ? -1 : name(2));
    case "SRV":
      return exact(b.length < 7 ? -1 : name(6));
    case "SOA":
      return exact(name(name(0)) + 20);
    case "TXT": {
      if (b.length === 0) malformed("TXT needs at least one string");
      let p = 0;
      while (p < b.length) p += (b[p] ?? 0) + 1;
      return exact(p);
    }
    case "CAA": {
      const tl = b[1] ?? 0;
      if (b.length < 2 || tl < 1 || tl > 15 || 2 + tl > b.length) malformed("CAA tag");
      return;
    }
    case undefined:
      return;
  }
}

/** RFC 3597 §5: `\# <length> <hex words>`. */
function genericRdata(rest: readonly Token[]): Uint8Array {
  const lenTok = rest[1];
  if (lenTok === undefined) throw new Error("\\# needs a length");
  const len = parseUint(lenTok.text, 65_535);
  const hex = rest.slice(2).map((t) => t.text).join("");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new Error("bad hex in \\# data");
  if (hex.length / 2 !== len) throw new Error(`\\# declares ${len} octets but carries ${hex.length / 2}`);
  if (len === 0 && rest.length > 2) throw new Error("data after an empty \\#");
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

class Out {
  readonly bytes: number[] = [];
  u8(v: number): void {
    this.bytes.push(v & 0xff);
  }
  u16(v: number): void {
    this.bytes.push((v >> 8) & 0xff, v & 0xff);
  }
  u32(v: number): void {
    this.bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  name(labels: readonly Uint8Array[]): void {
    for (const l of labels) {
      this.bytes.push(l.length, ...l);
    }
    this.bytes.push(0);
  }
  raw(b: Uint8Array): void {
    this.bytes.push(...b);
  }
}

/** Text RDATA of the served types to wire octets (names uncompressed, case kept). */
function textRdata(type: number, toks: readonly Token[], origin: readonly Uint8Array[]): Uint8Array {
  const o = new Out();
  let k = 0;
  const next = (what: string): string => {
    const t = toks[k++];
    if (t === undefined) throw new Error(`missing ${what}`);
    return t.text;
  };
  const name = (what: string): void => o.name(parseLabels(next(what), origin));
  const kind = recordTypeOf(type);
  switch (kind) {
    case "A": {
      const b = parseIPv4(next("address"));
      if (b === undefined) throw new Error("bad IPv4 address");
      o.raw(b);
      break;
    }
    case "AAAA": {
      const b = parseIPv6(next("address"));
      if (b === undefined) throw new Error("bad IPv6 address");
      o.raw(b);
      break;
    }
    case "NS":
    case "CNAME":
    case "PTR":
      name("name");
      break;
    case "MX":
      o.u16(parseUint(next("preference"), 65_535));
      name("exchange");
      break;
    case "SRV":
      o.u16(parseUint(next("priority"), 65_535));
      o.u16(parseUint(next("weight"), 65_535));
      o.u16(parseUint(next("port"), 65_535));
      name("target");
      break;
    case "SOA":
      name("mname");
      name("rname");
      o.u32(parseUint(next("serial"), U32_MAX));
      for (const f of ["refresh", "retry", "expire", "minimum"]) o.u32(parseTtl(next(f)));
      break;
    case "TXT": {
      if (toks.length === 0) throw new Error("TXT needs at least one string");
      for (; k < toks.length; k++) {
        const b = characterStringOctets(toks[k]?.text ?? "");
        // Knot splits an over-long string; RFC 1035 §3.3 bounds it, and Nexus refuses rather than guess.
        if (b.length > 255) throw new Error("character-string longer than 255 octets");
        o.u8(b.length);
        o.raw(b);
      }
      break;
    }
    case "CAA": {
      o.u8(parseUint(next("flags"), 255));
      const tag = next("tag");
      if (!/^[A-Za-z0-9]{1,15}$/.test(tag)) throw new Error("bad CAA tag");
      o.u8(tag.length);
      o.raw(Buffer.from(tag, "ascii"));
      o.raw(characterStringOctets(next("value")));
      break;
    }
    case undefined:
      throw new UnsupportedType(type);
  }
  if (k < toks.length) throw new Error(`unexpected ${JSON.stringify(toks[k]?.text)} after the data`);
  return Uint8Array.from(o.bytes);
}

class UnsupportedType extends Error {
  readonly type: number;
  constructor(type: number) {
    super(`no text form of ${typeName(type)} is supported here (use \\# generic data)`);
    this.type = type;
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Scans a master file into records and errors, in file order. */
export function scanZoneFile(text: string, opts: ScanOptions = {}): (ScannedRecord | ScanError)[] {
  if (text.length > ZONEFILE_OCTETS_MAX) throw dnsErrors.make("DNS_ZONE_TOO_LARGE", `master file over ${ZONEFILE_OCTETS_MAX} octets`);
  const out: (ScannedRecord | ScanError)[] = [];
  let origin: Uint8Array[] = opts.origin === undefined ? [] : parseLabels(opts.origin, []);
  let defaultTtl = opts.defaultTtl ?? TTL_DEFAULT_S;
  let lastOwner: Uint8Array[] | undefined;
  let errors = 0;
  const fail = (line: number, message: string, fatal = false, unsupportedType?: string): void => {
    out.push({ kind: "error", line, message, fatal, ...(unsupportedType === undefined ? {} : { unsupportedType }) });
    errors++;
  };
  try {
    for (const e of entries(text)) {
      if (errors >= ZONEFILE_ERRORS_MAX) break;
      if (e.error !== undefined) {
        if (!e.blankOwner) lastOwner = undefined;
        fail(e.line, e.error);
        continue;
      }
      const first = e.tokens[0];
      if (first === undefined) continue;
      if (!e.blankOwner && !first.quoted && first.text.startsWith("$")) {
        const dir = first.text.toUpperCase();
        const arg = e.tokens[1];
        if (dir === "$ORIGIN") {
          try {
            if (arg === undefined || e.tokens.length > 2) throw new Error("$ORIGIN takes one name");
            origin = parseLabels(arg.text, origin);
          } catch (x) {
            fail(e.line, `bad $ORIGIN: ${errText(x)}`, true);
            break;
          }
        } else if (dir === "$TTL") {
          try {
            if (arg === undefined || e.tokens.length > 2) throw new Error("$TTL takes one value");
            defaultTtl = parseTtl(arg.text);
          } catch (x) {
            fail(e.line, `bad $TTL: ${errText(x)}`, true);
            break;
          }
        } else {
          fail(e.line, `${first.text} is not supported ($INCLUDE and $GENERATE are not loaded)`);
        }
        continue;
      }
      const r = scanRecord(e, origin, defaultTtl, lastOwner);
      if (r.ownerOk !== undefined) lastOwner = r.ownerOk === false ? undefined : r.ownerOk;
      if ("message" in r.result) fail(e.line, r.result.message, false, r.result.unsupportedType);
      else out.push(r.result);
    }
  } catch (x) {
    if (x instanceof Fatal) fail(x.line, x.message, true);
    else throw x;
  }
  return out;
}

function scanRecord(
  e: Entry,
  origin: readonly Uint8Array[],
  defaultTtl: number,
  lastOwner: Uint8Array[] | undefined,
): { result: ScannedRecord | { message: string; unsupportedType?: string }; ownerOk: Uint8Array[] | false | undefined } {
  let k = 0;
  let owner: Uint8Array[];
  let ownerOk: Uint8Array[] | false | undefined;
  if (e.blankOwner) {
    if (lastOwner === undefined) return { result: { message: "no previous owner to inherit" }, ownerOk: undefined };
    owner = lastOwner;
  } else {
    const t = e.tokens[k++];
    try {
      if (t === undefined || t.quoted) throw new Error("owner cannot be quoted");
      owner = parseLabels(t.text, origin);
      ownerOk = owner;
    } catch (x) {
      return { result: { message: `bad owner: ${errText(x)}` }, ownerOk: false };
    }
  }
  try {
    let ttl: number | undefined;
    let klass = false;
    let type: number | undefined;
    for (let guard = 0; guard < 3 && type === undefined; guard++) {
      const t = e.tokens[k++];
      if (t === undefined) throw new Error("missing type");
      if (ttl === undefined && /^[0-9]/.test(t.text)) ttl = parseTtl(t.text);
      else if (!klass && t.text.toUpperCase() === "IN") klass = true;
      else if (/^(?:CH|HS|CS|NONE|ANY|CLASS[0-9]+)$/i.test(t.text)) throw new Error(`class ${t.text} is not supported (only IN)`);
      else {
        type = parseType(t.text);
        if (type === undefined) {
          // A word where the type belongs: a type this scanner does not know (ZONEMD, SVCB...) or a typo.
          if (/^[A-Za-z][A-Za-z0-9-]{0,15}$/.test(t.text)) {
            return { result: { message: `unknown type ${t.text}`, unsupportedType: t.text.toUpperCase() }, ownerOk };
          }
          throw new Error(`unknown type ${JSON.stringify(t.text)}`);
        }
      }
    }
    if (type === undefined) throw new Error("missing type");
    const rest = e.tokens.slice(k);
    if (rest.length === 0) throw new Error("missing RDATA");
    let rdata: Uint8Array;
    if (rest[0]?.text === "\\#" && rest[0].quoted === false) {
      rdata = genericRdata(rest);
      checkWire(type, rdata);
    } else {
      rdata = textRdata(type, rest, origin);
    }
    return { result: { kind: "record", line: e.line, owner, ttl: ttl ?? defaultTtl, ttlGiven: ttl !== undefined, type, rdata }, ownerOk };
  } catch (x) {
    if (x instanceof UnsupportedType) return { result: { message: x.message, unsupportedType: typeName(x.type) }, ownerOk };
    return { result: { message: isNexusError(x) ? x.message : errText(x) }, ownerOk };
  }
}

/** Records of types Nexus does not serve, left out by `parseZoneFile` with `skipUnsupported`. */
export interface SkippedRecord {
  readonly line: number;
  readonly type: string;
}

/** Loads a master file into zone input (SOA at the origin, supported types); throws on the first error. */
export function parseZoneFile(text: string, opts: { origin: string; skipUnsupported?: boolean }): { zone: ZoneInput; skipped: SkippedRecord[] } {
  const origin = labelsToName(parseLabels(opts.origin, []));
  const items = scanZoneFile(text, { origin });
  const records: RecordInput[] = [];
  const skipped: SkippedRecord[] = [];
  let soa: ZoneInput["soa"] | undefined;
  for (const it of items) {
    if (it.kind === "error" && it.unsupportedType !== undefined && opts.skipUnsupported === true) {
      skipped.push({ line: it.line, type: it.unsupportedType });
      continue;
    }
    if (it.kind === "error") {
      const unsupported = /not supported|unknown type|no text form/.test(it.message);
      throw dnsErrors.make(unsupported ? "DNS_ZONEFILE_UNSUPPORTED" : "DNS_ZONEFILE_SYNTAX", `line ${it.line}: ${it.message}`);
    }
    const owner = labelsToName(it.owner);
    if (recordTypeOf(it.type) === undefined) {
      if (opts.skipUnsupported === true) {
        skipped.push({ line: it.line, type: typeName(it.type) });
        continue;
      }
      throw dnsErrors.make("DNS_ZONEFILE_UNSUPPORTED", `line ${it.line}: ${typeName(it.type)}`);
    }
    let data: RData;
    try {
      data = readRData(it.type, it.rdata, 0, it.rdata.length);
    } catch (x) {
      throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", `line ${it.line}: ${errText(x)}`);
    }
    if (data.type === "SOA") {
      if (owner !== origin) throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", `line ${it.line}: SOA owned by ${owner}, not the origin`);
      if (soa !== undefined) throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", `line ${it.line}: a second SOA`);
      const { type: _t, ...f } = data;
      soa = { ...f, ttl: it.ttl };
      continue;
    }
    records.push({ name: owner, ttl: it.ttl, data });
  }
  if (soa === undefined) throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", "the file has no SOA at the origin");
  return { zone: { origin, soa, records }, skipped };
}

/** RFC 1035 §5 master file of a zone (`dns export`): $ORIGIN, $TTL, the SOA, then every record in canonical order. */
export function exportZone(zone: Zone): string {
  const o = zone.origin;
  const rel = (n: Name): string => relativeName(n, o);
  const lines = [
    `; zone ${o} serial ${zone.soa.data.serial}, exported by Nexus COS`,
    `$ORIGIN ${o}`,
    `$TTL ${zone.soa.ttl}`,
    `@\t${zone.soa.ttl}\tIN\tSOA\t${rdataText(zone.soa.data, rel)}`,
  ];
  for (const r of zone.records) lines.push(`${rel(r.name)}\t${r.ttl}\tIN\t${r.data.type}\t${rdataText(r.data, rel)}`);
  return `${lines.join("\n")}\n`;
}

/** Parses one record line relative to `origin` (for `nexus dns set`-style input), e.g. "www 300 A 192.0.2.1". */
export function parseRecordLine(line: string, origin: string): RecordInput {
  const o = labelsToName(parseLabels(origin, []));
  const items = scanZoneFile(line.replace(/\n/g, " "), { origin: o });
  const it = items[0];
  if (items.length !== 1 || it === undefined) throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", "expected exactly one record");
  if (it.kind === "error") throw dnsErrors.make("DNS_ZONEFILE_SYNTAX", it.message);
  if (recordTypeOf(it.type) === undefined) throw dnsErrors.make("DNS_RECORD_TYPE_UNSUPPORTED", typeName(it.type));
  const data = readRData(it.type, it.rdata, 0, it.rdata.length);
  return { name: labelsToName(it.owner), ...(it.ttlGiven ? { ttl: it.ttl } : {}), data };
}

/** The type code of a mnemonic or TYPEnnn (undefined when unknown). */
export function typeFromText(s: string): number | undefined {
  try {
    return parseType(s);
  } catch {
    return undefined;
  }
}
