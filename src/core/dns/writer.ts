/**
 * A bounded DNS wire writer with name compression (RFC 1035 §4.1.4): a name, or the tail of a
 * name, already written at an offset below 0x4000 is replaced by a two-octet pointer to it.
 * Compression keys are canonical (lower-case) suffixes, so a pointer may lead to a spelling with
 * other letter case: names compare without case (RFC 4343), and owner names that point into the
 * question therefore echo the query's case.
 */
import { dnsErrors } from "./errors.ts";
import { labelText, nameLabels, type Name } from "./name.ts";

/** RFC 1035 §4.2.2: a DNS message over TCP is at most 65,535 octets. */
export const MESSAGE_OCTETS_MAX = 65_535;
/** Pointers carry a 14-bit offset. */
const POINTER_OFFSET_MAX = 0x3fff;

/** Labels and the canonical key of every suffix of a name, computed once per name. */
interface NameParts {
  readonly labels: readonly Uint8Array[];
  readonly suffixKeys: readonly string[];
}

const partsCache = new Map<string, NameParts>();
const PARTS_CACHE_ENTRIES_MAX = 50_000;

function partsOf(name: Name): NameParts {
  const hit = partsCache.get(name);
  if (hit !== undefined) return hit;
  const labels = nameLabels(name);
  const texts = labels.map((l) => labelText(l));
  const suffixKeys: string[] = [];
  let acc = "";
  for (let i = texts.length - 1; i >= 0; i--) {
    acc = `${texts[i] ?? ""}.${acc}`;
    suffixKeys.unshift(acc);
  }
  const parts = { labels, suffixKeys };
  if (partsCache.size >= PARTS_CACHE_ENTRIES_MAX) partsCache.clear();
  partsCache.set(name, parts);
  return parts;
}

const scratchPool: Buffer[] = [];
const SCRATCH_POOL_MAX = 4;

/** Writes a DNS message into a fixed buffer; every write checks the bound. */
export class WireWriter {
  readonly buf: Buffer;
  pos = 0;
  private readonly dict = new Map<string, number>();
  private readonly added: string[] = [];

  private readonly compression: boolean;

  /** `compression: false` writes every name in full (canonical RDATA, TSIG variables). */
  private pooled: boolean;

  /**
   * `compression: false` writes every name in full (canonical RDATA, TSIG variables). Full-size
   * writers borrow a scratch buffer that finish() gives back, instead of allocating 64 KiB each;
   * a writer kept for reuse after finish() must pass `pooled: false`.
   */
  constructor(capacity: number = MESSAGE_OCTETS_MAX, compression = true, pooled = true) {
    this.pooled = pooled && capacity === MESSAGE_OCTETS_MAX;
    this.buf = this.pooled ? (scratchPool.pop() ?? Buffer.allocUnsafe(capacity)) : Buffer.allocUnsafe(capacity);
    this.compression = compression;
  }

  private room(n: number): void {
    if (this.pos + n > this.buf.length) throw dnsErrors.make("DNS_WIRE_TOO_LARGE", `${this.pos + n} octets`);
  }

  /** Writes one octet. */
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
  }

  /** Writes a 16-bit big-endian integer. */
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }

  /** Writes a 32-bit big-endian unsigned integer. */
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** Writes raw octets. */
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Writes a name, compressed against earlier names when `compress` (RFC 3597 §4 lists where that is allowed). */
  name(name: Name, compress: boolean): void {
    const { labels, suffixKeys } = partsOf(name);
    for (let i = 0; i < labels.length; i++) {
      const key = suffixKeys[i] ?? "";
      const at = compress && this.compression ? this.dict.get(key) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.pos <= POINTER_OFFSET_MAX && !this.dict.has(key)) {
        this.dict.set(key, this.pos);
        this.added.push(key);
      }
      const label = labels[i] ?? new Uint8Array(0);
      this.u8(label.length);
      this.bytes(label);
    }
    this.u8(0);
  }

  /** The current position, to rewind to when a record set does not fit. */
  mark(): { pos: number; added: number } {
    return { pos: this.pos, added: this.added.length };
  }

  /** Forgets everything written after `m`, compression targets included. */
  rewind(m: { pos: number; added: number }): void {
    this.pos = m.pos;
    while (this.added.length > m.added) {
      const k = this.added.pop();
      if (k !== undefined) this.dict.delete(k);
    }
  }

  /** Empties the writer for reuse. */
  reset(): void {
    this.pos = 0;
    this.dict.clear();
    this.added.length = 0;
  }

  /** A copy of the written octets; the writer must not be used afterwards. */
  finish(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.pos));
    if (this.pooled && scratchPool.length < SCRATCH_POOL_MAX) scratchPool.push(this.buf);
    this.pooled = false;
    return out;
  }
}
