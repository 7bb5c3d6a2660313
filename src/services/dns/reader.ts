/**
 * Bounded decoding of DNS messages (RFC 1035 §4.1). Every octet is hostile: names are bounded to
 * 255 octets, compression pointers must point strictly before the segment they interrupt (so a
 * pointer loop cannot exist) and at most POINTER_JUMPS_MAX are followed, section counts are bounded
 * by the octets actually present, and every failure is a DNS_WIRE_MALFORMED error.
 */
import { dnsErrors } from "./errors.ts";
import { LABEL_OCTETS_MAX, labelsToName, NAME_OCTETS_MAX, type Name } from "./name.ts";

/** Compression pointers followed in one name, at most (a 255-octet name has at most 127 labels). */
export const POINTER_JUMPS_MAX = 127;

/** Fails decoding with a typed error. */
export function malformed(why: string): never {
  throw dnsErrors.make("DNS_WIRE_MALFORMED", why);
}

/** A decoded name: its labels (case kept) and where the name ends in the original octet stream. */
export interface ReadName {
  readonly labels: Uint8Array[];
  readonly end: number;
}

/** Reads a possibly compressed name at `offset` of the message `buf`. */
export function readName(buf: Uint8Array, offset: number): ReadName {
  const labels: Uint8Array[] = [];
  let octets = 1;
  let pos = offset;
  let segmentStart = offset;
  let end = -1;
  let jumps = 0;
  for (;;) {
    if (pos >= buf.length) malformed("name runs past the end of the message");
    const len = buf[pos] ?? 0;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) malformed("truncated compression pointer");
      const target = ((len & 0x3f) << 8) | (buf[pos + 1] ?? 0);
      // RFC 1035 §4.1.4 points to a *prior* occurrence; requiring a strictly decreasing target rules out loops.
      if (target >= segmentStart) malformed("compression pointer does not point backwards");
      if (++jumps > POINTER_JUMPS_MAX) malformed("too many compression pointers");
      if (end < 0) end = pos + 2;
      pos = target;
      segmentStart = target;
      continue;
    }
    if (kind !== 0) malformed("reserved label type (RFC 6891 §5 retired extended labels)");
    if (len > LABEL_OCTETS_MAX) malformed("label longer than 63 octets");
    if (pos + 1 + len > buf.length) malformed("label runs past the end of the message");
    octets += len + 1;
    if (octets > NAME_OCTETS_MAX) malformed("name longer than 255 octets");
    labels.push(buf.slice(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return { labels, end };
}

/** A question entry (RFC 1035 §4.1.2). */
export interface WireQuestion {
  readonly name: Name;
  readonly type: number;
  readonly klass: number;
  /** Offsets of the entry in the message. */
  readonly start: number;
  readonly end: number;
}

/** A resource record with its RDATA left in place (RFC 1035 §4.1.3). */
export interface WireRecord {
  readonly name: Name;
  readonly type: number;
  readonly klass: number;
  readonly ttl: number;
  readonly start: number;
  /** Offset of the TTL field, for resolvers that age cached answers. */
  readonly ttlAt: number;
  readonly rdataStart: number;
  readonly rdataEnd: number;
  readonly end: number;
}

/** A decoded message: header fields and sections. */
export interface WireMessage {
  readonly id: number;
  readonly flags: number;
  readonly qr: boolean;
  readonly opcode: number;
  readonly aa: boolean;
  readonly tc: boolean;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly rcode: number;
  readonly questions: readonly WireQuestion[];
  readonly answers: readonly WireRecord[];
  readonly authorities: readonly WireRecord[];
  readonly additionals: readonly WireRecord[];
}

/** The header of a message; fails when fewer than 12 octets. */
export function readHeader(buf: Uint8Array): { id: number; flags: number; counts: [number, number, number, number] } {
  if (buf.length < 12) malformed("shorter than the 12-octet header");
  const u16 = (i: number): number => ((buf[i] ?? 0) << 8) | (buf[i + 1] ?? 0);
  return { id: u16(0), flags: u16(2), counts: [u16(4), u16(6), u16(8), u16(10)] };
}

function readRecord(buf: Uint8Array, at: number): WireRecord {
  const n = readName(buf, at);
  let p = n.end;
  if (p + 10 > buf.length) malformed("record header runs past the end of the message");
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = dv.getUint16(p);
  const klass = dv.getUint16(p + 2);
  const ttl = dv.getUint32(p + 4);
  const rdlen = dv.getUint16(p + 8);
  p += 10;
  if (p + rdlen > buf.length) malformed("RDATA runs past the end of the message");
  return { name: labelsToName(n.labels), type, klass, ttl, start: at, ttlAt: n.end + 4, rdataStart: p, rdataEnd: p + rdlen, end: p + rdlen };
}

/** Decodes a whole message; trailing octets after the counted records are an error. */
export function decodeMessage(buf: Uint8Array): WireMessage {
  const h = readHeader(buf);
  let p = 12;
  const questions: WireQuestion[] = [];
  for (let i = 0; i < h.counts[0]; i++) {
    const n = readName(buf, p);
    if (n.end + 4 > buf.length) malformed("question runs past the end of the message");
    const type = ((buf[n.end] ?? 0) << 8) | (buf[n.end + 1] ?? 0);
    const klass = ((buf[n.end + 2] ?? 0) << 8) | (buf[n.end + 3] ?? 0);
    questions.push({ name: labelsToName(n.labels), type, klass, start: p, end: n.end + 4 });
    p = n.end + 4;
  }
  const sections: WireRecord[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    const count = h.counts[s + 1] ?? 0;
    const out = sections[s] ?? [];
    for (let i = 0; i < count; i++) {
      const r = readRecord(buf, p);
      out.push(r);
      p = r.end;
    }
  }
  if (p !== buf.length) malformed(`${buf.length - p} trailing octets after the last record`);
  const f = h.flags;
  return {
    id: h.id,
    flags: f,
    qr: (f & 0x8000) !== 0,
    opcode: (f >> 11) & 0xf,
    aa: (f & 0x0400) !== 0,
    tc: (f & 0x0200) !== 0,
    rd: (f & 0x0100) !== 0,
    cd: (f & 0x0010) !== 0,
    rcode: f & 0xf,
    questions,
    answers: sections[0] ?? [],
    authorities: sections[1] ?? [],
    additionals: sections[2] ?? [],
  };
}
