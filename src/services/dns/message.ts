/**
 * Encoding responses (RFC 1035 §4.1) from lookup results: header flags, question, the three
 * sections with name compression, EDNS0 OPT (RFC 6891 §6.1), and truncation (RFC 2181 §9,
 * RFC 9471 §3): answer and authority must fit whole or TC is set with the sections emptied;
 * additional RRsets are dropped one by one when they do not fit, and required glue that does not
 * fit sets TC.
 */
import type { Name } from "./name.ts";
import { CLASS, TYPE, writeRData } from "./rdata.ts";
import { WireWriter } from "./writer.ts";
import type { LookupResult } from "./lookup.ts";
import type { ZoneRecord } from "./zone.ts";

/** Opcodes (RFC 1035 §4.1.1, RFC 1996, RFC 2136). */
export const OPCODE = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;
/** Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010 } as const;
/** UDP payload size this server advertises and serves up to (the DNS Flag Day 2020 value). */
export const EDNS_UDP_PAYLOAD = 1232;
/** RFC 1035 §4.2.1: UDP messages without EDNS are at most 512 octets; RFC 6891 §6.2.5 treats smaller EDNS sizes as 512. */
export const UDP_PLAIN_MAX = 512;
/** Octets of an OPT RR without options. */
export const OPT_OCTETS = 11;

/** A question as encoded: canonical (lower-case) name. */
export interface Question {
  readonly name: Name;
  readonly type: number;
  readonly klass: number;
}

/** The OPT RR of a response (RFC 6891 §6.1.3): our payload size, the DO bit echoed (RFC 3225 §3), the extended RCODE. */
export interface OptOut {
  readonly do: boolean;
  readonly extRcode: number;
}

/** How to frame one response. */
export interface ResponseFrame {
  readonly id: number;
  readonly opcode: number;
  /** RD and CD copied from the query (RFC 1035 §4.1.1, RFC 6840 §5.9). */
  readonly rd: boolean;
  readonly cd: boolean;
  readonly ra?: boolean;
  /** The largest message allowed (UDP limit or 65,535 over TCP). */
  readonly limit: number;
  readonly opt: OptOut | undefined;
}

/** Writes one resource record (class IN), its RDLENGTH patched after the data. */
export function writeRecord(w: WireWriter, r: ZoneRecord): void {
  w.name(r.name, true);
  w.u16(typeCodeOf(r));
  w.u16(CLASS.IN);
  w.u32(r.ttl);
  const at = w.pos;
  w.u16(0);
  writeRData(w, r.data);
  w.buf.writeUInt16BE(w.pos - at - 2, at);
}

function typeCodeOf(r: ZoneRecord): number {
  return TYPE[r.data.type];
}

/** Writes the OPT pseudo-RR (RFC 6891 §6.1.2-3): root owner, CLASS = payload size, TTL = ext-RCODE, version 0, DO. */
export function writeOpt(w: WireWriter, opt: OptOut, payload: number = EDNS_UDP_PAYLOAD): void {
  w.u8(0);
  w.u16(TYPE.OPT);
  w.u16(payload);
  w.u8(opt.extRcode);
  w.u8(0);
  w.u16(opt.do ? 0x8000 : 0);
  w.u16(0);
}

/** Writes the 12-octet header. */
export function writeHeader(w: WireWriter, id: number, flags: number, counts: readonly [number, number, number, number]): void {
  w.u16(id);
  w.u16(flags);
  for (const c of counts) w.u16(c);
}

/** The header flags of a response. */
export function responseFlags(f: ResponseFrame, aa: boolean, tc: boolean, rcode: number): number {
  return (
    FLAG.QR | ((f.opcode & 0xf) << 11) | (aa ? FLAG.AA : 0) | (tc ? FLAG.TC : 0) | (f.rd ? FLAG.RD : 0) |
    (f.ra === true ? FLAG.RA : 0) | (f.cd ? FLAG.CD : 0) | (rcode & 0xf)
  );
}

/** Encodes the response to `q` from a lookup result (the slow path; the wire cache stores its output). */
export function encodeAnswer(q: Question, res: LookupResult, f: ResponseFrame): Buffer {
  const w = new WireWriter();
  const optLen = f.opt === undefined ? 0 : OPT_OCTETS;
  const budget = f.limit - optLen;
  writeHeader(w, f.id, 0, [1, 0, 0, 0]);
  w.name(q.name, true);
  w.u16(q.type);
  w.u16(q.klass);
  const afterQuestion = w.mark();
  let tc = false;
  let an = 0;
  let ns = 0;
  let ar = 0;
  for (const r of res.answer) writeRecord(w, r);
  for (const r of res.authority) writeRecord(w, r);
  if (w.pos > budget) {
    // RFC 2181 §9: what must be there does not fit; send the question only, TC set, and let the client use TCP.
    w.rewind(afterQuestion);
    tc = true;
  } else {
    an = res.answer.length;
    ns = res.authority.length;
    for (const set of res.additional) {
      const m = w.mark();
      for (const r of set.records) writeRecord(w, r);
      if (w.pos > budget) {
        w.rewind(m);
        if (set.required) tc = true;
        continue;
      }
      ar += set.records.length;
    }
  }
  const extRcode = res.rcode >> 4;
  if (f.opt !== undefined) {
    writeOpt(w, { do: f.opt.do, extRcode });
    ar += 1;
  }
  w.buf.writeUInt16BE(responseFlags(f, res.aa, tc, res.rcode), 2);
  w.buf.writeUInt16BE(an, 6);
  w.buf.writeUInt16BE(ns, 8);
  w.buf.writeUInt16BE(ar, 10);
  return w.finish();
}

/** A response carrying only a header, the question (when known) and an OPT (when the query had one). */
export function encodeBare(q: Question | undefined, f: ResponseFrame, rcode: number, aa = false): Buffer {
  const w = new WireWriter(512 + OPT_OCTETS);
  writeHeader(w, f.id, responseFlags(f, aa, false, rcode), [q === undefined ? 0 : 1, 0, 0, f.opt === undefined ? 0 : 1]);
  if (q !== undefined) {
    w.name(q.name, true);
    w.u16(q.type);
    w.u16(q.klass);
  }
  if (f.opt !== undefined) writeOpt(w, { do: f.opt.do, extRcode: rcode >> 4 });
  return w.finish();
}
