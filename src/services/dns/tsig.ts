/**
 * TSIG (RFC 8945) with HMAC-SHA256: signing requests and responses, verifying requests, and
 * signing every message of a multi-message zone transfer (RFC 8945 §5.3.1: each later message is
 * digested with the prior MAC and the timers only).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { fromBase64 } from "../../core/crypto/bytes.ts";
import { dnsErrors } from "./errors.ts";
import { RCODE } from "./lookup.ts";
import { labelsToName, nameToWire, toAbsoluteName, type Name } from "./name.ts";
import { CLASS, TYPE } from "./rdata.ts";
import { malformed, readName, type WireRecord } from "./reader.ts";
import { WireWriter } from "./writer.ts";

/** The only algorithm served (RFC 8945 §6: HMAC-SHA256 is mandatory to implement). */
export const TSIG_ALGORITHM = "hmac-sha256." as Name;
/** Seconds of clock difference accepted (RFC 8945 §10 recommends 300). */
export const TSIG_FUDGE_S = 300;
/** HMAC-SHA256 output, in octets; shorter (truncated) MACs are refused. */
export const TSIG_MAC_OCTETS = 32;
/** Shortest secret accepted, in octets (RFC 8945 §6: at least the hash output is recommended; 16 is the floor here). */
export const TSIG_SECRET_OCTETS_MIN = 16;

/** A shared secret for one key name. */
export interface TsigKey {
  readonly name: Name;
  readonly secret: Uint8Array;
}

/** A key as configured: name and base64 secret (the `secret:` line of nsd.conf / knot.conf). */
export interface TsigKeyConfig {
  readonly name: string;
  readonly secret: string;
  readonly algorithm?: string;
}

/** Checks a configured key. Throws DNS_TSIG_KEY_INVALID. */
export function tsigKey(c: TsigKeyConfig): TsigKey {
  if (c.algorithm !== undefined && c.algorithm.toLowerCase().replace(/\.$/, "") !== "hmac-sha256") {
    throw dnsErrors.make("DNS_TSIG_KEY_INVALID", `algorithm ${c.algorithm}: only hmac-sha256`);
  }
  let name: Name;
  try {
    name = toAbsoluteName(c.name);
  } catch {
    throw dnsErrors.make("DNS_TSIG_KEY_INVALID", `key name ${JSON.stringify(c.name)}`);
  }
  const secret = fromBase64(c.secret);
  if (secret === undefined || secret.length < TSIG_SECRET_OCTETS_MIN) {
    throw dnsErrors.make("DNS_TSIG_KEY_INVALID", `secret of ${name} is not base64 of at least ${TSIG_SECRET_OCTETS_MIN} octets`);
  }
  return { name, secret };
}

/** A decoded TSIG RR (RFC 8945 §4.2). */
export interface TsigRecord {
  readonly keyName: Name;
  readonly algorithm: Name;
  readonly timeSigned: number;
  readonly fudge: number;
  readonly mac: Uint8Array;
  readonly originalId: number;
  readonly error: number;
  readonly other: Uint8Array;
  /** Offset of the RR in its message. */
  readonly start: number;
}

/** Decodes the TSIG RR `rec` of message `buf`. */
export function readTsig(buf: Uint8Array, rec: WireRecord): TsigRecord {
  if (rec.type !== TYPE.TSIG) malformed("not a TSIG record");
  if (rec.klass !== CLASS.ANY || rec.ttl !== 0) malformed("TSIG class must be ANY and TTL 0");
  const end = rec.rdataEnd;
  const alg = readName(buf.subarray(0, end), rec.rdataStart);
  let p = alg.end;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (p + 10 > end) malformed("TSIG RDATA too short");
  const timeSigned = dv.getUint16(p) * 2 ** 32 + dv.getUint32(p + 2);
  const fudge = dv.getUint16(p + 6);
  const macSize = dv.getUint16(p + 8);
  p += 10;
  if (p + macSize + 6 > end) malformed("TSIG MAC runs past its RDATA");
  const mac = buf.slice(p, p + macSize);
  p += macSize;
  const originalId = dv.getUint16(p);
  const error = dv.getUint16(p + 2);
  const otherLen = dv.getUint16(p + 4);
  p += 6;
  if (p + otherLen !== end) malformed("TSIG other data length");
  return {
    keyName: rec.name, algorithm: labelsToName(alg.labels), timeSigned, fudge, mac, originalId, error,
    other: buf.slice(p, end), start: rec.start,
  };
}

function u48(w: WireWriter, v: number): void {
  w.u16(Math.floor(v / 2 ** 32));
  w.u32(v % 2 ** 32);
}

/** RFC 8945 §4.3.3 TSIG variables (or only the timers, §4.3.1, for later transfer messages). */
function variables(keyName: Name, timeSigned: number, fudge: number, error: number, other: Uint8Array, timersOnly: boolean): Buffer {
  const w = new WireWriter(1024, false);
  if (!timersOnly) {
    w.bytes(nameToWire(keyName));
    w.u16(CLASS.ANY);
    w.u32(0);
    w.bytes(nameToWire(TSIG_ALGORITHM));
  }
  u48(w, timeSigned);
  w.u16(fudge);
  if (!timersOnly) {
    w.u16(error);
    w.u16(other.length);
    w.bytes(other);
  }
  return w.finish();
}

function hmac(key: TsigKey, parts: readonly Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key.secret);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function macPrefix(mac: Uint8Array | undefined): Uint8Array[] {
  if (mac === undefined) return [];
  const len = Buffer.alloc(2);
  len.writeUInt16BE(mac.length);
  return [len, mac];
}

/** How to sign one message. */
export interface SignOptions {
  readonly timeSigned: number;
  readonly fudge?: number;
  readonly error?: number;
  readonly other?: Uint8Array;
  /** The request's MAC, when signing a response (RFC 8945 §4.3.1). */
  readonly requestMac?: Uint8Array;
  /** The previous message's MAC, for the second and later messages of a transfer (timers only). */
  readonly priorMac?: Uint8Array;
  /** Sign nothing: append a TSIG with an empty MAC (BADKEY/BADSIG answers, RFC 8945 §5.2). */
  readonly unsigned?: boolean;
}

/** Octets a TSIG RR adds to a message signed with `key`. */
export function tsigOctets(key: Name, otherOctets = 0): number {
  return nameToWire(key).length + 10 + nameToWire(TSIG_ALGORITHM).length + 16 + TSIG_MAC_OCTETS + otherOctets;
}

/** Appends a TSIG RR to an unsigned message, returning the signed message and its MAC. */
export function signMessage(msg: Uint8Array, key: TsigKey, o: SignOptions): { message: Buffer; mac: Uint8Array } {
  const fudge = o.fudge ?? TSIG_FUDGE_S;
  const error = o.error ?? 0;
  const other = o.other ?? new Uint8Array(0);
  let mac: Uint8Array = new Uint8Array(0);
  if (o.unsigned !== true) {
    const vars = variables(key.name, o.timeSigned, fudge, error, other, o.priorMac !== undefined);
    mac = hmac(key, [...macPrefix(o.priorMac ?? o.requestMac), msg, vars]);
  }
  const w = new WireWriter(msg.length + tsigOctets(key.name, other.length), false);
  w.bytes(msg);
  w.bytes(nameToWire(key.name));
  w.u16(TYPE.TSIG);
  w.u16(CLASS.ANY);
  w.u32(0);
  const at = w.pos;
  w.u16(0);
  w.bytes(nameToWire(TSIG_ALGORITHM));
  u48(w, o.timeSigned);
  w.u16(fudge);
  w.u16(mac.length);
  w.bytes(mac);
  w.u16(((msg[0] ?? 0) << 8) | (msg[1] ?? 0));
  w.u16(error);
  w.u16(other.length);
  w.bytes(other);
  w.buf.writeUInt16BE(w.pos - at - 2, at);
  w.buf.writeUInt16BE(w.buf.readUInt16BE(10) + 1, 10);
  return { message: w.finish(), mac };
}

/** The outcome of checking a signed request. */
export type TsigVerdict =
  | { readonly ok: true; readonly key: TsigKey; readonly tsig: TsigRecord }
  | { readonly ok: false; readonly error: number; readonly key: TsigKey | undefined; readonly tsig: TsigRecord };

/** The message a MAC covers: the TSIG RR removed, ARCOUNT decremented, the original ID restored (RFC 8945 §4.3.2). */
export function unsignedPart(buf: Uint8Array, tsig: TsigRecord): Buffer {
  const m = Buffer.from(buf.subarray(0, tsig.start));
  m.writeUInt16BE(tsig.originalId, 0);
  m.writeUInt16BE(m.readUInt16BE(10) - 1, 10);
  return m;
}

/** Verifies a signed request (RFC 8945 §5.2) at time `nowS`, or a response when `requestMac`/`priorMac` is given. */
export function verifyTsig(
  buf: Uint8Array,
  tsig: TsigRecord,
  keys: ReadonlyMap<Name, TsigKey>,
  nowS: number,
  chain: { requestMac?: Uint8Array; priorMac?: Uint8Array } = {},
): TsigVerdict {
  const key = keys.get(tsig.keyName);
  if (key === undefined || tsig.algorithm !== TSIG_ALGORITHM) return { ok: false, error: RCODE.BADKEY, key: undefined, tsig };
  // Truncated MACs (RFC 8945 §5.2.2.1) are not accepted: shorter is BADTRUNC, longer cannot be HMAC-SHA256.
  if (tsig.mac.length !== TSIG_MAC_OCTETS) return { ok: false, error: tsig.mac.length < TSIG_MAC_OCTETS ? RCODE.BADTRUNC : RCODE.BADSIG, key, tsig };
  const vars = variables(tsig.keyName, tsig.timeSigned, tsig.fudge, tsig.error, tsig.other, chain.priorMac !== undefined);
  const want = hmac(key, [...macPrefix(chain.priorMac ?? chain.requestMac), unsignedPart(buf, tsig), vars]);
  if (!timingSafeEqual(want, tsig.mac)) return { ok: false, error: RCODE.BADSIG, key, tsig };
  // RFC 8945 §5.2.3: the time check comes after the MAC check.
  if (Math.abs(nowS - tsig.timeSigned) > tsig.fudge) return { ok: false, error: RCODE.BADTIME, key, tsig };
  return { ok: true, key, tsig };
}

/** A key map from configured keys. */
export function keyring(keys: readonly TsigKeyConfig[]): Map<Name, TsigKey> {
  const m = new Map<Name, TsigKey>();
  for (const c of keys) {
    const k = tsigKey(c);
    m.set(k.name, k);
  }
  return m;
}

/** Unix time in whole seconds. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
