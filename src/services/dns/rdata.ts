/**
 * Record data: the pure model (schema, normalisation, wire encoding, text) lives in core/dns so the
 * gates can check records (core never imports services); this module re-exports it and adds the
 * bounded decoding of hostile wire RDATA, which only the server and the master-file loader need.
 */
import { dnsErrors } from "./errors.ts";
import { labelsToName } from "./name.ts";
import { malformed, readName } from "./reader.ts";
import { formatIPv6, invalid, recordTypeOf, TXT_STRINGS_MAX, typeName, type RData } from "../../core/dns/rdata.ts";

export * from "../../core/dns/rdata.ts";

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function decodeText(b: Uint8Array, what: string): string {
  try {
    return utf8Decoder.decode(b);
  } catch {
    return invalid(`${what} is not UTF-8`);
  }
}

/** Decodes RDATA at [start, end) of message `buf` into typed, canonical record data. */
export function readRData(type: number, buf: Uint8Array, start: number, end: number): RData {
  const len = end - start;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const nameAt = (p: number): { name: string; end: number } => {
    const r = readName(buf.subarray(0, end), p);
    return { name: labelsToName(r.labels), end: r.end };
  };
  const need = (n: number): void => {
    if (len < n) malformed(`${typeName(type)} RDATA too short`);
  };
  const done = (p: number): void => {
    if (p !== end) malformed(`${typeName(type)} RDATA has trailing octets`);
  };
  switch (recordTypeOf(type)) {
    case "A":
      if (len !== 4) malformed("A RDATA is not 4 octets");
      return { type: "A", address: Array.from(buf.subarray(start, end)).join(".") };
    case "AAAA":
      if (len !== 16) malformed("AAAA RDATA is not 16 octets");
      return { type: "AAAA", address: formatIPv6(buf.subarray(start, end)) };
    case "CNAME":
    case "PTR":
    case "NS": {
      const t = nameAt(start);
      done(t.end);
      const kind = recordTypeOf(type);
      return kind === "NS" ? { type: "NS", host: t.name } : { type: kind === "PTR" ? "PTR" : "CNAME", target: t.name };
    }
    case "MX": {
      need(3);
      const t = nameAt(start + 2);
      done(t.end);
      return { type: "MX", preference: dv.getUint16(start), exchange: t.name };
    }
    case "SRV": {
      need(7);
      const t = nameAt(start + 6);
      done(t.end);
      return { type: "SRV", priority: dv.getUint16(start), weight: dv.getUint16(start + 2), port: dv.getUint16(start + 4), target: t.name };
    }
    case "TXT": {
      need(1);
      const text: string[] = [];
      for (let p = start; p < end; ) {
        const l = buf[p] ?? 0;
        if (p + 1 + l > end) malformed("TXT string runs past its RDATA");
        if (text.length >= TXT_STRINGS_MAX) invalid("too many TXT strings");
        text.push(decodeText(buf.subarray(p + 1, p + 1 + l), "TXT string"));
        p += 1 + l;
      }
      return { type: "TXT", text };
    }
    case "CAA": {
      need(2);
      const tl = buf[start + 1] ?? 0;
      if (tl < 1 || start + 2 + tl > end) malformed("CAA tag length");
      const tag = String.fromCharCode(...buf.subarray(start + 2, start + 2 + tl));
      if (!/^[A-Za-z0-9]{1,15}$/.test(tag)) invalid("CAA tag must be 1-15 letters or digits");
      return { type: "CAA", flags: buf[start] ?? 0, tag: tag.toLowerCase(), value: decodeText(buf.subarray(start + 2 + tl, end), "CAA value") };
    }
    case "SOA": {
      const m = nameAt(start);
      const r = nameAt(m.end);
      if (r.end + 20 !== end) malformed("SOA RDATA length");
      const v = (i: number): number => dv.getUint32(r.end + 4 * i);
      return { type: "SOA", mname: m.name, rname: r.name, serial: v(0), refresh: v(1), retry: v(2), expire: v(3), minimum: v(4) };
    }
    case undefined:
      throw dnsErrors.make("DNS_RECORD_TYPE_UNSUPPORTED", typeName(type));
  }
}
