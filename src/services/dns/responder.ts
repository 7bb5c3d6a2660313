/**
 * The complete (slow) path from query octets to response octets, for every query the wire cache
 * does not serve: header and EDNS checks (RFC 6891), TSIG (RFC 8945), FORMERR/NOTIMP/REFUSED
 * (RFC 1035 §4.1.1), lookup, encoding, the question's case echoed (RFC 4343 §4.1), and the hand-off
 * of AXFR/IXFR over TCP to the transfer code.
 */
import { RCODE, lookup, type LookupResult, type ZoneSet } from "./lookup.ts";
import { encodeAnswer, encodeBare, OPCODE, EDNS_UDP_PAYLOAD, UDP_PLAIN_MAX, type Question, type ResponseFrame } from "./message.ts";
import type { Meter } from "./meter.ts";
import { nameToWire, ROOT, type Name } from "./name.ts";
import { CLASS, readRData, TYPE } from "./rdata.ts";
import { decodeMessage, type WireMessage } from "./reader.ts";
import { nowSeconds, readTsig, signMessage, tsigOctets, verifyTsig, type TsigKey, type TsigRecord } from "./tsig.ts";
import type { Zone } from "./zone.ts";

/** The transport a query came over; it sets the size limit of the answer. */
export type Transport = "udp" | "tcp";

/** The EDNS0 OPT of a query (RFC 6891 §6.1.3). */
export interface QueryEdns {
  readonly udpSize: number;
  readonly version: number;
  readonly do: boolean;
}

/** A query that decoded. */
export interface ParsedQuery {
  readonly buf: Uint8Array;
  readonly msg: WireMessage;
  readonly question: Question;
  readonly edns: QueryEdns | undefined;
  readonly tsig: TsigRecord | undefined;
}

/** A transfer request that passed every check (TCP only); the server streams the answer. */
export interface TransferRequest {
  readonly kind: "transfer";
  readonly type: "AXFR" | "IXFR";
  readonly query: ParsedQuery;
  readonly zone: Zone;
  readonly key: TsigKey;
  readonly requestMac: Uint8Array;
  /** The client's serial, for IXFR (RFC 1995 §3). */
  readonly clientSerial: number | undefined;
}

/** What to do with one query. */
export type Handled =
  | { readonly kind: "drop" }
  | { readonly kind: "reply"; readonly message: Buffer; readonly lookup?: { readonly question: Question; readonly result: LookupResult } }
  | TransferRequest;

/** What the responder needs. */
export interface ResponderOptions {
  readonly zones: ZoneSet;
  readonly keys: ReadonlyMap<Name, TsigKey>;
  readonly meter: Meter;
  /** Unix seconds (tests pin it). */
  readonly now?: () => number;
}

/** The size limit of a UDP answer: 512 without EDNS, else the client's size within [512, EDNS_UDP_PAYLOAD] (RFC 6891 §6.2.5). */
export function udpLimit(edns: QueryEdns | undefined): number {
  if (edns === undefined) return UDP_PLAIN_MAX;
  return Math.min(Math.max(edns.udpSize, UDP_PLAIN_MAX), EDNS_UDP_PAYLOAD);
}

/** Copies the query's spelling of the question name over the lower-case one (same length, no pointer). */
export function echoQuestionCase(resp: Buffer, query: Uint8Array, q: Question): void {
  const n = nameToWire(q.name).length;
  if (resp.length < 12 + n || query.length < 12 + n) return;
  // The query's name is plain labels when its wire length matches; a compressed one is left lower-case.
  if (query[12 + n - 1] !== 0) return;
  for (let i = 12; i < 12 + n; i++) {
    const a = query[i] ?? 0;
    const b = resp[i] ?? 0;
    if (a !== b && !(a >= 0x41 && a <= 0x5a && a + 0x20 === b)) return;
  }
  resp.set(query.subarray(12, 12 + n), 12);
}

/** The general query handler. */
export class Responder {
  private readonly o: ResponderOptions;
  private readonly now: () => number;

  constructor(o: ResponderOptions) {
    this.o = o;
    this.now = o.now ?? nowSeconds;
  }

  /** Handles one query message. */
  handle(buf: Uint8Array, transport: Transport): Handled {
    const m = this.o.meter.server;
    // A message shorter than a header, or a response (QR=1), is dropped: answering responses invites loops.
    if (buf.length < 12 || ((buf[2] ?? 0) & 0x80) !== 0) {
      m.dropped++;
      return { kind: "drop" };
    }
    const id = ((buf[0] ?? 0) << 8) | (buf[1] ?? 0);
    const rd = ((buf[2] ?? 0) & 0x01) !== 0;
    const cd = ((buf[3] ?? 0) & 0x10) !== 0;
    const opcode = ((buf[2] ?? 0) >> 3) & 0xf;
    const limit = transport === "tcp" ? 65_535 : UDP_PLAIN_MAX;
    let frame: ResponseFrame = { id, opcode, rd, cd, limit, opt: undefined };
    let msg: WireMessage;
    try {
      msg = decodeMessage(buf);
    } catch {
      m.formerr++;
      return { kind: "reply", message: encodeBare(undefined, frame, RCODE.FORMERR) };
    }
    const q0 = msg.questions[0];
    const question: Question | undefined = msg.questions.length === 1 && q0 !== undefined ? { name: q0.name, type: q0.type, klass: q0.klass } : undefined;
    const reply = (rcode: number, counter: "formerr" | "notimp" | "refused" | "notauth"): Handled => {
      m[counter]++;
      const r = encodeBare(question, frame, rcode);
      if (question !== undefined) echoQuestionCase(r, buf, question);
      return { kind: "reply", message: r };
    };
    // RFC 6891 §6.1.1: at most one OPT, owned by the root.
    const opts = msg.additionals.filter((r) => r.type === TYPE.OPT);
    if (opts.length > 1 || (opts[0] !== undefined && opts[0].name !== ROOT)) return reply(RCODE.FORMERR, "formerr");
    const opt = opts[0];
    const edns: QueryEdns | undefined =
      opt === undefined ? undefined : { udpSize: opt.klass, version: (opt.ttl >>> 16) & 0xff, do: (opt.ttl & 0x8000) !== 0 };
    frame = { ...frame, limit: transport === "tcp" ? 65_535 : udpLimit(edns), opt: edns === undefined ? undefined : { do: edns.do, extRcode: 0 } };
    // RFC 8945 §5.1: a TSIG RR must be the last record of the additional section.
    const tsigAt = msg.additionals.findIndex((r) => r.type === TYPE.TSIG);
    if (tsigAt >= 0 && tsigAt !== msg.additionals.length - 1) return reply(RCODE.FORMERR, "formerr");
    if (opcode !== OPCODE.QUERY) return reply(RCODE.NOTIMP, "notimp");
    if (question === undefined) return reply(RCODE.FORMERR, "formerr");
    // RFC 6891 §6.1.3: an unknown EDNS version gets BADVERS with our version (0).
    if (edns !== undefined && edns.version !== 0) return reply(RCODE.BADVERS, "formerr");
    const tsigRec = msg.additionals[tsigAt];
    let tsig: TsigRecord | undefined;
    let key: TsigKey | undefined;
    if (tsigRec !== undefined) {
      try {
        tsig = readTsig(buf, tsigRec);
      } catch {
        return reply(RCODE.FORMERR, "formerr");
      }
      const v = verifyTsig(buf, tsig, this.o.keys, this.now());
      if (!v.ok) return this.tsigFailure(question, frame, buf, v.error, v.key, tsig);
      key = v.key;
    }
    const query: ParsedQuery = { buf, msg, question, edns, tsig };
    if (msg.answers.length > 0 || (msg.authorities.length > 0 && question.type !== TYPE.IXFR)) return reply(RCODE.FORMERR, "formerr");
    if (question.klass !== CLASS.IN) return reply(RCODE.REFUSED, "refused");
    switch (question.type) {
      case TYPE.OPT:
      case TYPE.TSIG:
      case 0:
        return reply(RCODE.FORMERR, "formerr");
      case TYPE.TKEY:
      case TYPE.MAILA:
      case TYPE.MAILB:
        return reply(RCODE.NOTIMP, "notimp");
      case TYPE.AXFR:
      case TYPE.IXFR:
        return this.transfer(query, frame, transport, key, reply);
      default:
        break;
    }
    const result = lookup(this.o.zones, question.name, question.type);
    this.count(result);
    const tsigRoom = key === undefined ? 0 : tsigOctets(key.name);
    let out = encodeAnswer(question, result, { ...frame, limit: frame.limit - tsigRoom });
    echoQuestionCase(out, buf, question);
    if (key !== undefined && tsig !== undefined) out = signMessage(out, key, { timeSigned: this.now(), requestMac: tsig.mac }).message;
    return { kind: "reply", message: out, lookup: { question, result } };
  }

  /** Counts one answered lookup in the meter. */
  count(result: LookupResult): void {
    if (result.zone === undefined) {
      this.o.meter.server.refused++;
      return;
    }
    const c = this.o.meter.zone(result.zone);
    c.queries++;
    if (result.kind === "nxdomain") c.nxdomain++;
    else if (result.kind === "nodata") c.nodata++;
    else if (result.kind === "referral") c.referrals++;
  }

  private transfer(
    query: ParsedQuery,
    frame: ResponseFrame,
    transport: Transport,
    key: TsigKey | undefined,
    reply: (rcode: number, counter: "formerr" | "notimp" | "refused" | "notauth") => Handled,
  ): Handled {
    const q = query.question;
    // RFC 5936 §4.2: AXFR is a TCP exchange only.
    if (q.type === TYPE.AXFR && transport === "udp") return reply(RCODE.FORMERR, "formerr");
    // RFC 5936 §6 leaves access control to policy: Nexus requires a valid TSIG for every transfer.
    if (key === undefined || query.tsig === undefined) return reply(RCODE.REFUSED, "refused");
    const zone = this.o.zones.get(q.name);
    if (zone === undefined) return reply(RCODE.NOTAUTH, "notauth");
    let clientSerial: number | undefined;
    if (q.type === TYPE.IXFR) {
      const soa = query.msg.authorities[0];
      if (soa === undefined || soa.type !== TYPE.SOA) return reply(RCODE.FORMERR, "formerr");
      try {
        const d = readRData(TYPE.SOA, query.buf, soa.rdataStart, soa.rdataEnd);
        clientSerial = d.type === "SOA" ? d.serial : undefined;
      } catch {
        return reply(RCODE.FORMERR, "formerr");
      }
    }
    this.o.meter.zone(zone.origin).transfers++;
    if (transport === "udp") {
      // RFC 1995 §2: over UDP answer with the current SOA only; the client then transfers over TCP.
      const soaOnly: LookupResult = {
        kind: "answer", rcode: RCODE.NOERROR, aa: true, zone: zone.origin,
        answer: [{ name: zone.origin, ttl: zone.soa.ttl, data: zone.soa.data }], authority: [], additional: [],
      };
      const out = encodeAnswer(q, soaOnly, { ...frame, limit: frame.limit - tsigOctets(key.name) });
      echoQuestionCase(out, query.buf, q);
      return { kind: "reply", message: signMessage(out, key, { timeSigned: this.now(), requestMac: query.tsig.mac }).message };
    }
    return { kind: "transfer", type: q.type === TYPE.AXFR ? "AXFR" : "IXFR", query, zone, key, requestMac: query.tsig.mac, clientSerial };
  }

  /** RFC 8945 §5.2: NOTAUTH with the TSIG error; BADKEY/BADSIG unsigned, BADTIME signed and carrying our time. */
  private tsigFailure(q: Question, frame: ResponseFrame, buf: Uint8Array, error: number, key: TsigKey | undefined, tsig: TsigRecord): Handled {
    this.o.meter.server.notauth++;
    const out = encodeBare(q, frame, RCODE.NOTAUTH);
    echoQuestionCase(out, buf, q);
    const now = this.now();
    const signer: TsigKey = key ?? { name: tsig.keyName, secret: new Uint8Array(32) };
    if (error === RCODE.BADTIME && key !== undefined) {
      const other = Buffer.alloc(6);
      other.writeUIntBE(now, 0, 6);
      return { kind: "reply", message: signMessage(out, key, { timeSigned: tsig.timeSigned, error, other, requestMac: tsig.mac }).message };
    }
    return { kind: "reply", message: signMessage(out, signer, { timeSigned: now, error, unsigned: true }).message };
  }
}
