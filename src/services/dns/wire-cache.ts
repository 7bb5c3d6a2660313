/**
 * Precomputed wire answers: the fast path for ordinary queries. An answer is keyed by the
 * question's octets lower-cased (QNAME, QTYPE, QCLASS) and stored per EDNS class (none, EDNS,
 * EDNS+DO) and size limit, exactly as the slow path encodes it for ID 0, RD/CD clear and a
 * lower-case question; serving patches the ID, RD and CD bits and the question's spelling (so the
 * answer echoes the query's case, RFC 4343 §4.1, and owners compressed to the question follow it).
 *
 * Layout, for few cache misses per query: one open-addressing table of (hash, arena offset) pairs
 * in an Int32Array, and one arena Buffer holding, per entry, a header (key length, kind, zone
 * slot, six variant offsets and lengths), the key octets and the two common variants right after
 * them. Counters are a Float64Array per zone slot. Serving allocates the answer buffer only.
 * Anything unusual (TSIG, other opcodes, EDNS version > 0, compressed question, a size limit
 * between the precomputed ones) returns undefined and takes the slow path, which then fills the
 * cache through `remember`.
 */
import { findZone, lookup, type LookupKind, type LookupResult, type ZoneSet } from "./lookup.ts";
import { EDNS_UDP_PAYLOAD, encodeAnswer, UDP_PLAIN_MAX, type Question } from "./message.ts";
import type { Meter } from "./meter.ts";
import { isSubdomain, nameToWire, type Name } from "./name.ts";
import { CLASS, TYPE } from "./rdata.ts";
import type { Zone } from "./zone.ts";

/** Answers cached on demand (beyond the precomputed ones), at most; the lot is dropped when full. */
export const LAZY_ENTRIES_MAX = 100_000;
/** Entries in all, at most (precomputed and on demand). */
export const ENTRIES_MAX = 2_000_000;
/** Queries longer than this go to the slow path (an ordinary query with EDNS is far shorter). */
const FAST_QUERY_OCTETS_MAX = 512;
const ARENA_INITIAL_OCTETS = 1 << 20;
/** Answers up to this long are copied by a loop rather than Buffer#copy (which allocates a view). */
const COPY_LOOP_OCTETS_MAX = 1232;

// Variant slots: [UDP without EDNS (512), TCP without EDNS, EDNS full, EDNS at 1232, EDNS+DO full, EDNS+DO at 1232].
const V_PLAIN_UDP = 0;
const V_PLAIN_TCP = 1;
const V_EDNS_FULL = 2;
const V_EDNS_1232 = 3;
const V_DO_FULL = 4;
const V_DO_1232 = 5;
const VARIANTS = 6;

// Entry header in the arena: u16 key length, u8 kind, u8 unused, i32 zone slot, then per variant u32 offset + u16 length.
const H_KEYLEN = 0;
const H_KIND = 2;
const H_ZONE = 4;
const H_VAR = 8;
const HEADER_OCTETS = H_VAR + VARIANTS * 6;

const KIND_CODE: Record<LookupKind, number> = { answer: 0, nxdomain: 1, nodata: 2, referral: 3, refused: 4 };
// Counter fields per zone slot: queries, nxdomain, nodata, referrals.
const COUNTERS = 4;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
/** Hashes are cut to 30 bits so they stay small integers in V8. */
const HASH_MASK = 0x3fffffff;

/** What the slow operations (variants built on demand, removal, compaction) need of an entry. */
interface Meta {
  readonly question: Question;
  readonly result: LookupResult;
  readonly owner: Name | undefined;
  readonly hash: number;
  at: number;
}

function hashKey(key: Uint8Array): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key[i] ?? 0), FNV_PRIME);
  return h & HASH_MASK;
}

/** The cache key of a question: its wire octets, lower-case. */
export function questionKey(q: Question): Uint8Array {
  const n = nameToWire(q.name);
  const k = new Uint8Array(n.length + 4);
  k.set(n);
  k[n.length] = q.type >> 8;
  k[n.length + 1] = q.type & 0xff;
  k[n.length + 2] = q.klass >> 8;
  k[n.length + 3] = q.klass & 0xff;
  return k;
}

/** True for questions the cache may hold: class IN, an ordinary type. */
export function cacheableQuestion(q: Question): boolean {
  if (q.klass !== CLASS.IN) return false;
  const t = q.type;
  return t !== 0 && t !== TYPE.OPT && t !== TYPE.TSIG && t !== TYPE.TKEY && t !== TYPE.AXFR && t !== TYPE.IXFR && t !== TYPE.MAILA && t !== TYPE.MAILB;
}

/** The precomputed-answer table of one serving thread. */
export class WireCache {
  private readonly zones: ZoneSet;
  private readonly meter: Meter;
  private arena: Buffer = Buffer.alloc(ARENA_INITIAL_OCTETS);
  private arenaEnd = 0;
  private garbage = 0;
  /** Pairs (hash + 1, arena offset); hash slot 0 = empty, -1 = deleted. */
  private table = new Int32Array(2 * 1024);
  private used = 0;
  private tombstones = 0;
  private readonly metas = new Map<number, Meta>();
  private readonly warm = new Map<Name, Meta[]>();
  private lazy: Meta[] = [];
  private readonly slots = new Map<Name, number>();
  private counts = new Float64Array(COUNTERS * 64);
  private refused = 0;
  // What `locate` found: the variant's arena offset and length, and where the query's name ends.
  private hitAt = 0;
  private hitLen = 0;
  private hitNameEnd = 0;

  constructor(zones: ZoneSet, meter: Meter) {
    this.zones = zones;
    this.meter = meter;
  }

  /** Number of entries held. */
  get size(): number {
    return this.metas.size;
  }

  /** The answer to `msg` from the table, or undefined when the slow path must answer. */
  answer(msg: Uint8Array, tcp: boolean): Buffer | undefined {
    const at = this.locate(msg, 0, msg.length, tcp);
    if (at < 0) return undefined;
    const out = Buffer.allocUnsafe(this.hitLen);
    this.emit(at, msg, 0, out, 0);
    return out;
  }

  /**
   * The same answer for the query in msg[from, from + len), written into dst at dstAt without
   * allocating: its length, or -1 when the slow path must answer (or it would exceed dstRoom).
   */
  answerInto(msg: Uint8Array, from: number, len: number, dst: Uint8Array, dstAt: number, dstRoom: number): number {
    const at = this.locate(msg, from, len, false);
    if (at < 0 || this.hitLen > dstRoom) return -1;
    this.emit(at, msg, from, dst, dstAt);
    return this.hitLen;
  }

  /** The entry answering the query in msg[o, o + len) (hit* set), or -1 for the slow path. */
  private locate(msg: Uint8Array, o: number, len: number, tcp: boolean): number {
    if (len < 17 || len > FAST_QUERY_OCTETS_MAX) return -1;
    const b2 = msg[o + 2] ?? 0;
    // QR=0, OPCODE=QUERY, TC=0; exactly one question, no answer or authority records, at most an OPT.
    if ((b2 & 0xfa) !== 0) return -1;
    if (msg[o + 4] !== 0 || msg[o + 5] !== 1 || ((msg[o + 6] ?? 0) | (msg[o + 7] ?? 0) | (msg[o + 8] ?? 0) | (msg[o + 9] ?? 0) | (msg[o + 10] ?? 0)) !== 0) return -1;
    const ar = msg[o + 11] ?? 0;
    if (ar > 1) return -1;
    const end = o + len;
    let h = FNV_OFFSET;
    let p = o + 12;
    for (;;) {
      const l = msg[p] ?? 0;
      if (l === 0) break;
      if (l > 63 || p + l + 1 >= end) return -1;
      h = Math.imul(h ^ l, FNV_PRIME);
      const labelEnd = p + 1 + l;
      for (p++; p < labelEnd; p++) {
        let c = msg[p] ?? 0;
        if (c >= 0x41 && c <= 0x5a) c |= 0x20;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      if (p - o - 12 > 254) return -1;
    }
    const nameEnd = p + 1;
    h = Math.imul(h, FNV_PRIME); // the root label's zero octet
    const qEnd = nameEnd + 4;
    if (qEnd > end) return -1;
    for (let i = nameEnd; i < qEnd; i++) h = Math.imul(h ^ (msg[i] ?? 0), FNV_PRIME);
    let slot: number;
    let limit = 65_535;
    if (ar === 0) {
      if (qEnd !== end) return -1;
      slot = tcp ? V_PLAIN_TCP : V_PLAIN_UDP;
    } else {
      // RFC 6891 §6.1.2: root owner, TYPE 41, CLASS = payload size, TTL = ext-RCODE/version/DO, RDLEN.
      if (qEnd + 11 > end || msg[qEnd] !== 0 || msg[qEnd + 1] !== 0 || msg[qEnd + 2] !== TYPE.OPT) return -1;
      if (msg[qEnd + 6] !== 0) return -1; // EDNS version > 0: BADVERS from the slow path
      const rdlen = ((msg[qEnd + 9] ?? 0) << 8) | (msg[qEnd + 10] ?? 0);
      if (qEnd + 11 + rdlen !== end) return -1;
      slot = ((msg[qEnd + 7] ?? 0) & 0x80) !== 0 ? V_DO_FULL : V_EDNS_FULL;
      if (!tcp) limit = Math.min(Math.max(((msg[qEnd + 3] ?? 0) << 8) | (msg[qEnd + 4] ?? 0), UDP_PLAIN_MAX), EDNS_UDP_PAYLOAD);
    }
    const at = this.find(h & HASH_MASK, msg, o + 12, qEnd);
    if (at < 0) return -1;
    let vAt = this.arena.readUInt32LE(at + H_VAR + slot * 6);
    let vLen = this.arena.readUInt16LE(at + H_VAR + slot * 6 + 4);
    if (vAt === 0) [vAt, vLen] = this.variant(at, slot);
    if (vLen > limit) {
      if (limit !== EDNS_UDP_PAYLOAD) return -1;
      slot += 1;
      vAt = this.arena.readUInt32LE(at + H_VAR + slot * 6);
      vLen = this.arena.readUInt16LE(at + H_VAR + slot * 6 + 4);
      if (vAt === 0) [vAt, vLen] = this.variant(at, slot);
    }
    this.hitAt = vAt;
    this.hitLen = vLen;
    this.hitNameEnd = nameEnd - o;
    return at;
  }

  /** Writes the answer `locate` found for the query at msg[o] into out at d, and counts it. */
  private emit(at: number, msg: Uint8Array, o: number, out: Uint8Array, d: number): void {
    const a = this.arena;
    const from = this.hitAt;
    const n = this.hitLen;
    // Buffer#copy makes a Uint8Array view of the source per call: a short answer is copied octet by
    // octet instead, so that serving allocates nothing (no garbage, no GC pauses under load).
    if (n > COPY_LOOP_OCTETS_MAX) a.copy(out, d, from, from + n);
    else for (let i = 0; i < n; i++) out[d + i] = a[from + i] ?? 0;
    out[d] = msg[o] ?? 0;
    out[d + 1] = msg[o + 1] ?? 0;
    out[d + 2] = (out[d + 2] ?? 0) | ((msg[o + 2] ?? 0) & 0x01); // RD copied (RFC 1035 §4.1.1)
    out[d + 3] = (out[d + 3] ?? 0) | ((msg[o + 3] ?? 0) & 0x10); // CD copied (RFC 6840 §5.9)
    const nameEnd = this.hitNameEnd;
    for (let i = 12; i < nameEnd; i++) out[d + i] = msg[o + i] ?? 0; // the query's spelling of the name
    const zone = a.readInt32LE(at + H_ZONE);
    if (zone < 0) this.refused++;
    else {
      const c = zone * COUNTERS;
      this.counts[c] = (this.counts[c] ?? 0) + 1;
      const kind = a[at + H_KIND] ?? 0;
      if (kind >= 1 && kind <= 3) this.counts[c + kind] = (this.counts[c + kind] ?? 0) + 1;
    }
  }

  /** The arena offset of the entry whose key equals msg[from, end) lower-cased, or -1. */
  private find(h: number, msg: Uint8Array, from: number, end: number): number {
    const t = this.table;
    const mask = (t.length >> 1) - 1;
    const want = h + 1;
    for (let i = h & mask, probes = 0; probes <= mask; i = (i + 1) & mask, probes++) {
      const stored = t[2 * i] ?? 0;
      if (stored === 0) return -1;
      if (stored !== want) continue;
      const at = t[2 * i + 1] ?? 0;
      if (this.sameKey(at, msg, from, end)) return at;
    }
    return -1;
  }

  private sameKey(at: number, msg: Uint8Array, from: number, end: number): boolean {
    const a = this.arena;
    const keyLen = a.readUInt16LE(at + H_KEYLEN);
    if (end - from !== keyLen) return false;
    const k = at + HEADER_OCTETS;
    const nameLen = keyLen - 4;
    for (let i = 0; i < nameLen; i++) {
      let c = msg[from + i] ?? 0;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20; // length octets are at most 63, so only letters change
      if (c !== a[k + i]) return false;
    }
    for (let i = nameLen; i < keyLen; i++) if (msg[from + i] !== a[k + i]) return false;
    return true;
  }

  private reserve(n: number): number {
    if (this.arenaEnd + n > this.arena.length) {
      let size = this.arena.length;
      while (this.arenaEnd + n > size) size *= 2;
      const grown = Buffer.alloc(size);
      this.arena.copy(grown, 0, 0, this.arenaEnd);
      this.arena = grown;
    }
    const at = this.arenaEnd;
    this.arenaEnd += n;
    return at;
  }

  private encodeVariant(m: Meta, slot: number): Buffer {
    const edns = slot >= V_EDNS_FULL;
    const limit = slot === V_PLAIN_UDP ? UDP_PLAIN_MAX : slot === V_EDNS_1232 || slot === V_DO_1232 ? EDNS_UDP_PAYLOAD : 65_535;
    return encodeAnswer(m.question, m.result, { id: 0, opcode: 0, rd: false, cd: false, limit, opt: edns ? { do: slot >= V_DO_FULL, extRcode: 0 } : undefined });
  }

  /** Builds a variant on first use and appends it to the arena. */
  private variant(at: number, slot: number): [number, number] {
    const m = this.metas.get(at);
    if (m === undefined) return [0, 0];
    const v = this.encodeVariant(m, slot);
    const vAt = this.reserve(v.length);
    v.copy(this.arena, vAt);
    const e = m.at;
    this.arena.writeUInt32LE(vAt, e + H_VAR + slot * 6);
    this.arena.writeUInt16LE(v.length, e + H_VAR + slot * 6 + 4);
    return [vAt, v.length];
  }

  private zoneSlot(origin: Name | undefined): number {
    if (origin === undefined) return -1;
    let s = this.slots.get(origin);
    if (s === undefined) {
      s = this.slots.size;
      this.slots.set(origin, s);
      if ((s + 1) * COUNTERS > this.counts.length) {
        const grown = new Float64Array(this.counts.length * 2);
        grown.set(this.counts);
        this.counts = grown;
      }
    }
    return s;
  }

  /** Writes an entry (header, key, the two common variants) and indexes it; undefined when already there. */
  private insert(q: Question, result: LookupResult, owner: Name | undefined): Meta | undefined {
    const key = questionKey(q);
    const hash = hashKey(key);
    if (this.find(hash, key, 0, key.length) >= 0 || this.metas.size >= ENTRIES_MAX) return undefined;
    const meta: Meta = { question: q, result, owner, hash, at: 0 };
    const v0 = this.encodeVariant(meta, V_PLAIN_UDP);
    const v2 = this.encodeVariant(meta, V_EDNS_FULL);
    const at = this.reserve(HEADER_OCTETS + key.length + v0.length + v2.length);
    meta.at = at;
    const a = this.arena;
    a.fill(0, at, at + HEADER_OCTETS);
    a.writeUInt16LE(key.length, at + H_KEYLEN);
    a[at + H_KIND] = KIND_CODE[result.kind];
    a.writeInt32LE(this.zoneSlot(result.zone), at + H_ZONE);
    a.set(key, at + HEADER_OCTETS);
    let p = at + HEADER_OCTETS + key.length;
    for (const [slot, v] of [[V_PLAIN_UDP, v0], [V_EDNS_FULL, v2]] as const) {
      v.copy(a, p);
      a.writeUInt32LE(p, at + H_VAR + slot * 6);
      a.writeUInt16LE(v.length, at + H_VAR + slot * 6 + 4);
      p += v.length;
    }
    // Indexed before it joins `metas`: a rehash on the way re-indexes `metas`, and must not index it twice.
    this.index(hash, at);
    this.metas.set(at, meta);
    return meta;
  }

  /** Indexes an entry not yet in `metas`, growing the table first when it is half full. */
  private index(hash: number, at: number): void {
    if ((this.used + this.tombstones + 1) * 2 > this.table.length >> 1) this.rehash((this.used + 1) * 4);
    this.place(hash, at);
  }

  private place(hash: number, at: number): void {
    const t = this.table;
    const mask = (t.length >> 1) - 1;
    let i = hash & mask;
    while ((t[2 * i] ?? 0) > 0) i = (i + 1) & mask;
    if (t[2 * i] === -1) this.tombstones--;
    t[2 * i] = hash + 1;
    t[2 * i + 1] = at;
    this.used++;
  }

  private rehash(minSlots: number): void {
    let slots = 1024;
    while (slots < minSlots) slots *= 2;
    this.table = new Int32Array(2 * slots);
    this.used = 0;
    this.tombstones = 0;
    for (const m of this.metas.values()) this.place(m.hash, m.at);
  }

  private unindex(m: Meta): void {
    const t = this.table;
    const mask = (t.length >> 1) - 1;
    for (let i = m.hash & mask, probes = 0; probes <= mask; i = (i + 1) & mask, probes++) {
      const stored = t[2 * i] ?? 0;
      if (stored === 0) break;
      if (stored === m.hash + 1 && t[2 * i + 1] === m.at) {
        t[2 * i] = -1;
        this.used--;
        this.tombstones++;
        break;
      }
    }
    this.metas.delete(m.at);
    let bytes = HEADER_OCTETS + this.arena.readUInt16LE(m.at + H_KEYLEN);
    for (let v = 0; v < VARIANTS; v++) bytes += this.arena.readUInt16LE(m.at + H_VAR + v * 6 + 4);
    this.garbage += bytes;
  }

  /** Copies live entries into a fresh arena when most of it is garbage. */
  private compactIfWasteful(): void {
    if (this.garbage < ARENA_INITIAL_OCTETS || this.garbage * 2 < this.arenaEnd) return;
    const live = [...this.metas.values()];
    this.metas.clear();
    this.arena = Buffer.alloc(Math.max(ARENA_INITIAL_OCTETS, this.arenaEnd - this.garbage + ARENA_INITIAL_OCTETS));
    this.arenaEnd = 0;
    this.garbage = 0;
    this.table = new Int32Array(2 * 1024);
    this.used = 0;
    this.tombstones = 0;
    const byOwner = new Map<Name | undefined, Meta[]>();
    for (const m of live) {
      const n = this.insert(m.question, m.result, m.owner);
      if (n === undefined) continue;
      const l = byOwner.get(m.owner) ?? [];
      l.push(n);
      byOwner.set(m.owner, l);
    }
    this.lazy = byOwner.get(undefined) ?? [];
    for (const o of [...this.warm.keys()]) this.warm.set(o, byOwner.get(o) ?? []);
  }

  /** Remembers a slow-path answer so the next identical question takes the fast path. */
  remember(q: Question, result: LookupResult): void {
    if (!cacheableQuestion(q)) return;
    if (this.lazy.length >= LAZY_ENTRIES_MAX) this.dropLazy();
    const m = this.insert(q, result, undefined);
    if (m !== undefined) this.lazy.push(m);
  }

  private dropLazy(): void {
    for (const m of this.lazy) this.unindex(m);
    this.lazy = [];
    this.compactIfWasteful();
  }

  /** Precomputes the answers of every name and type of `zone` held by it (not by a served child zone). */
  private warmZone(zone: Zone): void {
    const list: Meta[] = [];
    for (const [name, node] of zone.nodes) {
      if (node.rrsets.size === 0 || findZone(this.zones, name) !== zone) continue;
      for (const t of node.rrsets.keys()) {
        const q: Question = { name, type: TYPE[t], klass: CLASS.IN };
        const m = this.insert(q, lookup(this.zones, name, q.type), zone.origin);
        if (m !== undefined) list.push(m);
      }
    }
    this.warm.set(zone.origin, list);
  }

  /**
   * Refreshes after `origin` changed (put or removed): drops every on-demand answer, and rebuilds the
   * precomputed answers of that zone and of the served zones above it (their names below `origin` moved).
   */
  zoneChanged(origin: Name): void {
    for (const m of this.lazy) this.unindex(m);
    this.lazy = [];
    const rebuild: Name[] = [];
    for (const [o, list] of this.warm) {
      if (!isSubdomain(origin, o)) continue;
      for (const m of list) this.unindex(m);
      this.warm.delete(o);
      rebuild.push(o);
    }
    this.compactIfWasteful();
    for (const o of new Set([...rebuild, origin])) {
      const z = this.zones.get(o);
      if (z !== undefined) this.warmZone(z);
    }
  }

  /** Drops everything and precomputes the answers of every served zone (at start-up). */
  rebuildAll(zones: Iterable<Zone> = []): void {
    this.clear();
    for (const z of zones) this.warmZone(z);
  }

  /** Drops everything. */
  clear(): void {
    this.flush();
    this.metas.clear();
    this.warm.clear();
    this.lazy = [];
    this.arena = Buffer.alloc(ARENA_INITIAL_OCTETS);
    this.arenaEnd = 0;
    this.garbage = 0;
    this.table = new Int32Array(2 * 1024);
    this.used = 0;
    this.tombstones = 0;
  }

  /** Adds the fast path's counts to the meter (call before reading it). */
  flush(): void {
    for (const [origin, s] of this.slots) {
      const c = s * COUNTERS;
      const q = this.counts[c] ?? 0;
      if (q === 0) continue;
      const z = this.meter.zone(origin);
      z.queries += q;
      z.nxdomain += this.counts[c + 1] ?? 0;
      z.nodata += this.counts[c + 2] ?? 0;
      z.referrals += this.counts[c + 3] ?? 0;
      this.counts.fill(0, c, c + COUNTERS);
    }
    this.meter.server.refused += this.refused;
    this.refused = 0;
  }
}
