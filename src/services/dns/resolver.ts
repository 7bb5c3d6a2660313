/**
 * The caching resolver for IMVU workloads, on its own port: the platform's zones are answered
 * authoritatively from the ZoneStore; everything else is forwarded to configured upstreams and
 * cached for its TTL (RFC 1035 §7.4; negative answers for the SOA's negative TTL, RFC 2308 §5).
 * Upstream answers are passed through as received: same RCODE, same records, only the ID, the
 * question's case, TTLs aged by the time cached, RA/AA flags and the EDNS OPT are adjusted. An
 * NXDOMAIN stays an NXDOMAIN (no redirection). Forwarding uses a fresh socket (random port) and a
 * random ID per query and accepts only an answer to the same question (RFC 5452 §9).
 */
import { createSocket } from "node:dgram";
import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import { dnsErrors } from "./errors.ts";
import { findZone, lookup, RCODE, type ZoneSet } from "./lookup.ts";
import { encodeAnswer, encodeBare, FLAG, OPCODE, OPT_OCTETS, UDP_PLAIN_MAX, writeHeader, writeOpt, type Question, type ResponseFrame } from "./message.ts";
import { Meter, type MeterSnapshot } from "./meter.ts";
import { nameToWire, ROOT } from "./name.ts";
import { CLASS, readRData, TYPE } from "./rdata.ts";
import { decodeMessage, type WireMessage } from "./reader.ts";
import { echoQuestionCase, udpLimit, type QueryEdns } from "./responder.ts";
import { createTcpDnsServer, listenTcp, tcpExchange } from "./tcp.ts";
import { bindUdp } from "./udp.ts";
import { questionKey } from "./wire-cache.ts";
import { WireWriter } from "./writer.ts";

/** Default port of the resolver (next to the authoritative 1053). */
export const RESOLVER_PORT_DEFAULT = 1054;
/** Cached answers, at most (least recently used go first). */
export const CACHE_ENTRIES_MAX = 10_000;
/** Octets of cached answers, at most. */
export const CACHE_OCTETS_MAX = 32 * 1024 * 1024;
/** Longest time an answer is cached, whatever its TTL (RFC 8767 §4 style cap). */
export const CACHE_TTL_MAX_S = 86_400;
/** Time to wait for one upstream before trying the next. */
export const UPSTREAM_TIMEOUT_MS = 2_000;
/** Upstream queries in flight, at most; beyond it clients get SERVFAIL at once. */
export const INFLIGHT_MAX = 1_024;
/** Clients waiting on one identical in-flight question, at most. */
const WAITERS_MAX = 256;
/** Upstreams configured, at most. */
const UPSTREAMS_MAX = 8;

/** An upstream resolver. */
export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/** How to start the resolver. */
export interface ResolverOptions {
  readonly host?: string;
  /** Port for UDP and TCP (default 1054; 0 picks a free one). */
  readonly port?: number;
  /** The platform's zones, answered authoritatively. */
  readonly zones: ZoneSet;
  readonly upstreams: readonly Upstream[];
  readonly cacheEntriesMax?: number;
  readonly upstreamTimeoutMs?: number;
}

/** Counters of the resolver. */
export interface ResolverStats {
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly upstreamFailures: number;
  readonly cacheEntries: number;
  readonly authoritative: MeterSnapshot;
}

/** A running resolver. */
export interface Resolver {
  readonly host: string;
  readonly port: number;
  stats(): ResolverStats;
  close(): Promise<void>;
}

interface CacheEntry {
  readonly message: Buffer; // upstream answer without OPT, question lower-case
  readonly ttlAt: readonly number[];
  readonly ttls: readonly number[];
  readonly storedMs: number;
  readonly expiresMs: number;
}

/** The TTL an answer may be cached for, or undefined when it must not be (RFC 2308 §5, RFC 1035 §7.4). */
export function cacheTtl(msg: WireMessage, buf: Uint8Array): number | undefined {
  if (msg.rcode !== RCODE.NOERROR && msg.rcode !== RCODE.NXDOMAIN) return undefined;
  const negative = msg.rcode === RCODE.NXDOMAIN || msg.answers.length === 0;
  if (negative) {
    const soa = msg.authorities.find((r) => r.type === TYPE.SOA);
    if (soa === undefined) return undefined;
    const d = readRData(TYPE.SOA, buf, soa.rdataStart, soa.rdataEnd);
    return d.type === "SOA" ? Math.min(soa.ttl, d.minimum, CACHE_TTL_MAX_S) : undefined;
  }
  let ttl = CACHE_TTL_MAX_S;
  for (const r of [...msg.answers, ...msg.authorities, ...msg.additionals]) if (r.type !== TYPE.OPT) ttl = Math.min(ttl, r.ttl);
  return ttl;
}

/** A cache entry for an upstream answer (TTL offsets located once), valid for `ttlS` seconds. */
function entryOf(buf: Buffer, msg: WireMessage, ttlS: number, nowMs: number): CacheEntry {
  const recs = [...msg.answers, ...msg.authorities, ...msg.additionals].filter((r) => r.type !== TYPE.OPT);
  return { message: buf, ttlAt: recs.map((r) => r.ttlAt), ttls: recs.map((r) => r.ttl), storedMs: nowMs, expiresMs: nowMs + ttlS * 1000 };
}

/** A bounded LRU of answers (entries and octets). */
class AnswerCache {
  private readonly map = new Map<string, CacheEntry>();
  private octets = 0;
  private readonly entriesMax: number;

  constructor(entriesMax: number) {
    this.entriesMax = entriesMax;
  }

  get size(): number {
    return this.map.size;
  }

  /** A live entry, refreshed as most recently used. */
  get(k: string, nowMs: number): CacheEntry | undefined {
    const e = this.map.get(k);
    if (e === undefined) return undefined;
    this.map.delete(k);
    if (e.expiresMs <= nowMs) {
      this.octets -= e.message.length;
      return undefined;
    }
    this.map.set(k, e);
    return e;
  }

  set(k: string, e: CacheEntry): void {
    const old = this.map.get(k);
    if (old !== undefined) {
      this.map.delete(k);
      this.octets -= old.message.length;
    }
    this.map.set(k, e);
    this.octets += e.message.length;
    for (const [key, v] of this.map) {
      if (this.map.size <= this.entriesMax && this.octets <= CACHE_OCTETS_MAX) break;
      this.map.delete(key);
      this.octets -= v.message.length;
    }
  }
}

/** Removes the upstream's OPT (it must be the last record) so the answer can be re-framed per client; undefined otherwise. */
function stripOpt(buf: Buffer, msg: WireMessage): Buffer | undefined {
  const at = msg.additionals.findIndex((r) => r.type === TYPE.OPT || r.type === TYPE.TSIG);
  if (at < 0) return buf;
  const opt = msg.additionals[at];
  if (opt === undefined || at !== msg.additionals.length - 1 || opt.type !== TYPE.OPT) return undefined;
  const out = Buffer.from(buf.subarray(0, opt.start));
  out.writeUInt16BE(msg.additionals.length - 1, 10);
  return out;
}

/** The query sent upstream: our random ID, RD set, the lower-case question, EDNS with our size, DO and CD as the client's. */
function upstreamQuery(q: Question, doBit: boolean, cd: boolean, id: number): Buffer {
  const w = new WireWriter(512);
  writeHeader(w, id, FLAG.RD | (cd ? FLAG.CD : 0), [1, 0, 0, 1]);
  w.name(q.name, true);
  w.u16(q.type);
  w.u16(q.klass);
  writeOpt(w, { do: doBit, extRcode: 0 });
  return w.finish();
}

/** One UDP exchange with an upstream from a fresh socket (random source port); undefined on timeout. */
function udpExchange(u: Upstream, query: Buffer, id: number, q: Question, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket(isIP(u.host) === 6 ? "udp6" : "udp4");
    const finish = (m: Buffer | undefined): void => {
      clearTimeout(timer);
      s.close();
      resolve(m);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    s.on("error", () => finish(undefined));
    s.on("message", (m, rinfo) => {
      // RFC 5452 §9.1: accept only the upstream's answer with our ID to our question.
      if (rinfo.port !== u.port || m.length < 12 || m.readUInt16BE(0) !== id || (m[2] ?? 0) < 0x80) return;
      if (sameQuestion(m, q)) finish(m);
    });
    s.send(query, u.port, u.host);
  });
}

/** The client's answer from a cached (or just fetched) upstream answer: TTLs aged, flags and OPT re-framed, TC when too large. */
function reframe(e: CacheEntry, query: Uint8Array, q: Question, f: ResponseFrame, nowMs: number): Buffer {
  const age = Math.floor((nowMs - e.storedMs) / 1000);
  const w = new WireWriter(e.message.length + (f.opt === undefined ? 0 : OPT_OCTETS));
  w.bytes(e.message);
  for (let i = 0; i < e.ttlAt.length; i++) w.buf.writeUInt32BE(Math.max(0, (e.ttls[i] ?? 0) - age), e.ttlAt[i] ?? 0);
  // The upstream's RCODE, TC and AD kept; QR and RA set; AA cleared (a cached answer is not authoritative); RD/CD echoed.
  const upstream = e.message.readUInt16BE(2);
  w.buf.writeUInt16BE(f.id, 0);
  w.buf.writeUInt16BE((upstream & (0x020f | FLAG.AD)) | FLAG.QR | FLAG.RA | (f.rd ? FLAG.RD : 0) | (f.cd ? FLAG.CD : 0), 2);
  if (f.opt !== undefined) {
    writeOpt(w, f.opt);
    w.buf.writeUInt16BE(w.buf.readUInt16BE(10) + 1, 10);
  }
  let out = w.finish();
  if (out.length > f.limit) {
    // RFC 2181 §9: too large for this client over UDP; TC tells it to retry over TCP.
    out = encodeBare(q, { ...f, ra: true }, upstream & 0xf);
    out.writeUInt16BE(out.readUInt16BE(2) | FLAG.TC, 2);
  }
  echoQuestionCase(out, query, q);
  return out;
}

/** A client query that passed the checks, or the answer that ends it (FORMERR, NOTIMP, BADVERS, REFUSED). */
type Checked = { readonly q: Question; readonly f: ResponseFrame; readonly doBit: boolean } | { readonly reply: Buffer | undefined };

/** Header, EDNS and question checks of a client query (RFC 1035 §4.1.1, RFC 6891 §6.1.1). */
function checkQuery(buf: Buffer, transport: "udp" | "tcp"): Checked {
  if (buf.length < 12 || ((buf[2] ?? 0) & 0x80) !== 0) return { reply: undefined };
  const opcode = ((buf[2] ?? 0) >> 3) & 0xf;
  let f: ResponseFrame = {
    id: buf.readUInt16BE(0), opcode, rd: ((buf[2] ?? 0) & 0x01) !== 0, cd: ((buf[3] ?? 0) & 0x10) !== 0, ra: true,
    limit: transport === "tcp" ? 65_535 : UDP_PLAIN_MAX, opt: undefined,
  };
  let msg: WireMessage;
  try {
    msg = decodeMessage(buf);
  } catch {
    return { reply: encodeBare(undefined, f, RCODE.FORMERR) };
  }
  const opts = msg.additionals.filter((r) => r.type === TYPE.OPT);
  if (opts.length > 1 || (opts[0] !== undefined && opts[0].name !== ROOT)) return { reply: encodeBare(undefined, f, RCODE.FORMERR) };
  const opt = opts[0];
  const edns: QueryEdns | undefined = opt === undefined ? undefined : { udpSize: opt.klass, version: (opt.ttl >>> 16) & 0xff, do: (opt.ttl & 0x8000) !== 0 };
  f = { ...f, limit: transport === "tcp" ? 65_535 : udpLimit(edns), opt: edns === undefined ? undefined : { do: edns.do, extRcode: 0 } };
  const q0 = msg.questions[0];
  const q: Question | undefined = msg.questions.length === 1 && q0 !== undefined ? { name: q0.name, type: q0.type, klass: q0.klass } : undefined;
  const bare = (rcode: number): Checked => {
    const out = encodeBare(q, f, rcode);
    if (q !== undefined) echoQuestionCase(out, buf, q);
    return { reply: out };
  };
  if (opcode !== OPCODE.QUERY) return bare(RCODE.NOTIMP);
  if (q === undefined || msg.answers.length > 0 || msg.authorities.length > 0) return bare(RCODE.FORMERR);
  if (edns !== undefined && edns.version !== 0) return bare(RCODE.BADVERS);
  if (q.klass !== CLASS.IN || q.type === TYPE.AXFR || q.type === TYPE.IXFR || q.type === TYPE.OPT || q.type === TYPE.TSIG) return bare(RCODE.REFUSED);
  return { q, f, doBit: edns?.do === true };
}

/** Starts the resolver. Throws DNS_CONFIG_INVALID or DNS_BIND_FAILED. */
export async function startResolver(o: ResolverOptions): Promise<Resolver> {
  const host = o.host ?? "127.0.0.1";
  if (o.upstreams.length === 0 || o.upstreams.length > UPSTREAMS_MAX) throw dnsErrors.make("DNS_CONFIG_INVALID", `1..${UPSTREAMS_MAX} upstreams`);
  for (const u of o.upstreams) {
    if (isIP(u.host) === 0 || !Number.isInteger(u.port) || u.port < 1 || u.port > 65_535) throw dnsErrors.make("DNS_CONFIG_INVALID", `upstream ${u.host}:${u.port}`);
  }
  const timeoutMs = o.upstreamTimeoutMs ?? UPSTREAM_TIMEOUT_MS;
  const meter = new Meter();
  const cache = new AnswerCache(o.cacheEntriesMax ?? CACHE_ENTRIES_MAX);
  const inflight = new Map<string, ((e: CacheEntry | undefined) => void)[]>();
  const stats = { hits: 0, misses: 0, failures: 0 };

  /** Asks each upstream in turn (over TCP after a TC answer, RFC 7766 §5); the answer as a cache entry. */
  async function forward(q: Question, doBit: boolean, cd: boolean): Promise<CacheEntry | undefined> {
    for (const u of o.upstreams) {
      const id = randomInt(0, 65_536);
      const query = upstreamQuery(q, doBit, cd, id);
      let m = await udpExchange(u, query, id, q, timeoutMs);
      if (m !== undefined && ((m[2] ?? 0) & 0x02) !== 0) {
        m = await tcpExchange(u.host, u.port, query, timeoutMs).catch(() => undefined);
        if (m !== undefined && (m.readUInt16BE(0) !== id || !sameQuestion(m, q))) m = undefined;
      }
      if (m === undefined) continue;
      try {
        const stripped = stripOpt(m, decodeMessage(m));
        if (stripped === undefined) continue;
        const msg = decodeMessage(stripped);
        return entryOf(stripped, msg, cacheTtl(msg, stripped) ?? 0, Date.now());
      } catch {
        continue;
      }
    }
    return undefined;
  }

  /** One forwarded answer per question at a time; later askers wait for it (bounded). */
  function fetch(k: string, q: Question, doBit: boolean, cd: boolean): Promise<CacheEntry | undefined> {
    return new Promise((resolve) => {
      const waiting = inflight.get(k);
      if (waiting !== undefined) {
        if (waiting.length >= WAITERS_MAX) resolve(undefined);
        else waiting.push(resolve);
        return;
      }
      if (inflight.size >= INFLIGHT_MAX) return resolve(undefined);
      inflight.set(k, [resolve]);
      void forward(q, doBit, cd).then((e) => {
        if (e !== undefined && e.expiresMs > e.storedMs) cache.set(k, e);
        const ws = inflight.get(k) ?? [];
        inflight.delete(k);
        for (const w of ws) w(e);
      });
    });
  }

  async function handle(buf: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    const c = checkQuery(buf, transport);
    if ("reply" in c) return c.reply;
    const { q, f, doBit } = c;
    // The platform's zones: authoritative, from the store.
    if (findZone(o.zones, q.name) !== undefined) {
      const res = lookup(o.zones, q.name, q.type);
      if (res.zone !== undefined) meter.zone(res.zone).queries++;
      const out = encodeAnswer(q, res, f);
      echoQuestionCase(out, buf, q);
      return out;
    }
    const k = `${Buffer.from(questionKey(q)).toString("latin1")}|${doBit ? 1 : 0}${f.cd ? 1 : 0}`;
    const now = Date.now();
    const hit = cache.get(k, now);
    if (hit !== undefined) {
      stats.hits++;
      return reframe(hit, buf, q, f, now);
    }
    stats.misses++;
    const e = await fetch(k, q, doBit, f.cd);
    if (e === undefined) {
      stats.failures++;
      const out = encodeBare(q, f, RCODE.SERVFAIL);
      echoQuestionCase(out, buf, q);
      return out;
    }
    return reframe(e, buf, q, f, Date.now());
  }

  const { server: tcp, connections } = createTcpDnsServer({
    handle: async (q) => {
      const out = await handle(q, "tcp").catch(() => undefined);
      return out === undefined ? [] : [out];
    },
  });
  let udp;
  try {
    udp = await bindUdp(host, o.port ?? RESOLVER_PORT_DEFAULT, false);
    await listenTcp(tcp, host, udp.address().port);
  } catch (e) {
    udp?.close();
    throw dnsErrors.make("DNS_BIND_FAILED", `${host}:${o.port ?? RESOLVER_PORT_DEFAULT}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const sock = udp;
  sock.on("message", (m, rinfo) => {
    handle(m, "udp").then(
      (out) => {
        if (out !== undefined) sock.send(out, rinfo.port, rinfo.address);
      },
      () => {},
    );
  });
  sock.on("error", () => {});
  return {
    host,
    port: sock.address().port,
    stats: () => ({ cacheHits: stats.hits, cacheMisses: stats.misses, upstreamFailures: stats.failures, cacheEntries: cache.size, authoritative: meter.snapshot() }),
    async close(): Promise<void> {
      for (const c of connections) c.destroy();
      await Promise.all([new Promise<void>((r) => tcp.close(() => r())), new Promise<void>((r) => sock.close(() => r()))]);
    },
  };
}

/** True when the answer `m` carries exactly the question `q` (names compared without case). */
function sameQuestion(m: Buffer, q: Question): boolean {
  if (m.length < 12 || m.readUInt16BE(4) !== 1) return false;
  const want = nameToWire(q.name);
  if (m.length < 12 + want.length + 4) return false;
  for (let i = 0; i < want.length; i++) {
    let c = m[12 + i] ?? 0;
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== want[i]) return false;
  }
  const p = 12 + want.length;
  return m.readUInt16BE(p) === q.type && m.readUInt16BE(p + 2) === q.klass;
}
