/**
 * A deterministic POSIX tar (pax interchange format, POSIX.1-2008 "pax", ustar headers with 'x'
 * extended headers when a field does not fit). Entries are written depth first in byte order of
 * their names, with their real mode, uid, gid and whole-second mtime, and empty uname/gname: the
 * same tree always gives the same bytes, hence the same SHA-256. Regular files, directories and
 * symlinks only; the reader refuses anything else and every path that could leave its target.
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, constants, fsyncSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { computeErrors } from "./errors.ts";

const BLOCK = 512;
/** Bound on entries in one archive (volumes with more files are refused, not truncated). */
export const TAR_ENTRIES_MAX = 1_000_000;
/** Bound on a path inside an archive. */
export const TAR_PATH_BYTES_MAX = 4096;
/** Bound on directory depth. */
export const TAR_DEPTH_MAX = 128;
/** Bound on one pax extended header. */
const PAX_BYTES_MAX = 64 * 1024;
const IO_CHUNK_BYTES = 1024 * 1024;

/** One entry of an archive. */
export interface TarEntry {
  /** Relative POSIX path, no leading "./", no trailing "/". */
  readonly path: string;
  readonly type: "file" | "dir" | "symlink";
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeSec: number;
  readonly size: number;
  readonly linkTarget: string;
}

function cmpBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The entries under `root` in archive order (depth first, names in byte order). */
export function collectEntries(root: string, opts: { exclude?: (rel: string) => boolean } = {}): TarEntry[] {
  const out: TarEntry[] = [];
  const walk = (rel: string, depth: number): void => {
    if (depth > TAR_DEPTH_MAX) throw computeErrors.make("COMPUTE_SNAPSHOT_TOO_LARGE", `deeper than ${TAR_DEPTH_MAX} levels`);
    const names = readdirSync(join(root, rel)).sort(cmpBytes);
    for (const name of names) {
      const p = rel === "" ? name : `${rel}/${name}`;
      if (opts.exclude?.(p) === true) continue;
      const st = lstatSync(join(root, p));
      const base = { path: p, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSec: Math.floor(st.mtimeMs / 1000) };
      if (out.length >= TAR_ENTRIES_MAX) throw computeErrors.make("COMPUTE_SNAPSHOT_TOO_LARGE", `more than ${TAR_ENTRIES_MAX} entries`);
      if (st.isDirectory()) {
        out.push({ ...base, type: "dir", size: 0, linkTarget: "" });
        walk(p, depth + 1);
      } else if (st.isFile()) {
        out.push({ ...base, type: "file", size: st.size, linkTarget: "" });
      } else if (st.isSymbolicLink()) {
        out.push({ ...base, type: "symlink", size: 0, linkTarget: readlinkSync(join(root, p)) });
      }
      // Sockets, fifos and devices are not data: skipped.
    }
  };
  walk("", 0);
  return out;
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, "0") + "\0", off, len, "ascii");
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let n = Buffer.byteLength(body) + 1;
  while (String(n).length + Buffer.byteLength(body) !== n) n = String(n).length + Buffer.byteLength(body);
  return Buffer.from(`${n}${body}`);
}

function rawHeader(name: string, e: Pick<TarEntry, "mode" | "uid" | "gid" | "mtimeSec" | "linkTarget">, size: number, flag: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, e.mode);
  octal(h, 108, 8, e.uid);
  octal(h, 116, 8, e.gid);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtimeSec);
  h.write("        ", 148, 8, "ascii");
  h.write(flag, 156, 1, "ascii");
  h.write(e.linkTarget, 157, 100, "utf8");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

const OCTAL_11_MAX = 0o77777777777;
const OCTAL_7_MAX = 0o7777777;

/** The header block(s) of one entry: a pax 'x' header first when a field does not fit ustar. */
export function entryHeader(e: TarEntry): Buffer {
  const name = e.type === "dir" ? `${e.path}/` : e.path;
  const pax: Buffer[] = [];
  const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);
  if (Buffer.byteLength(name) > 100 || !ascii(name)) pax.push(paxRecord("path", name));
  if (Buffer.byteLength(e.linkTarget) > 100 || !ascii(e.linkTarget)) pax.push(paxRecord("linkpath", e.linkTarget));
  if (e.size > OCTAL_11_MAX) pax.push(paxRecord("size", String(e.size)));
  if (e.uid > OCTAL_7_MAX) pax.push(paxRecord("uid", String(e.uid)));
  if (e.gid > OCTAL_7_MAX) pax.push(paxRecord("gid", String(e.gid)));
  if (e.mtimeSec < 0 || e.mtimeSec > OCTAL_11_MAX) pax.push(paxRecord("mtime", String(e.mtimeSec)));
  const flag = e.type === "dir" ? "5" : e.type === "symlink" ? "2" : "0";
  const fit = {
    mode: e.mode,
    uid: Math.min(e.uid, OCTAL_7_MAX),
    gid: Math.min(e.gid, OCTAL_7_MAX),
    mtimeSec: Math.max(0, Math.min(e.mtimeSec, OCTAL_11_MAX)),
    linkTarget: Buffer.byteLength(e.linkTarget) > 100 || !ascii(e.linkTarget) ? "" : e.linkTarget,
  };
  const main = rawHeader(Buffer.byteLength(name) > 100 || !ascii(name) ? name.replace(/[^\x20-\x7e]/g, "_").slice(-99) : name, fit, Math.min(e.size, OCTAL_11_MAX), flag);
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax);
  const paxHead = rawHeader("././@PaxHeader", { mode: 0o644, uid: 0, gid: 0, mtimeSec: 0, linkTarget: "" }, body.length, "x");
  return Buffer.concat([paxHead, body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK), main]);
}

/** What writing an archive produced. */
export interface TarResult {
  /** Lower-case hex SHA-256 of the archive bytes. */
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly entries: number;
}

/**
 * A sink that hashes, counts and batches writes through one buffer. Writes go out in 1 MiB calls:
 * on this machine write(2) of 4 MiB at once runs ~10x slower than of 1 MiB.
 */
class Sink {
  readonly hash: Hash = createHash("sha256");
  size = 0;
  readonly buf = Buffer.allocUnsafe(IO_CHUNK_BYTES);
  used = 0;
  readonly #fd: number;
  readonly #maxBytes: number;

  constructor(fd: number, maxBytes: number) {
    this.#fd = fd;
    this.#maxBytes = maxBytes;
  }

  #count(n: number): void {
    this.size += n;
    if (this.size > this.#maxBytes) throw computeErrors.make("COMPUTE_SNAPSHOT_TOO_LARGE", `over ${this.#maxBytes} bytes`);
  }

  write(b: Buffer): void {
    this.#count(b.length);
    let off = 0;
    while (off < b.length) {
      if (this.used === this.buf.length) this.flush();
      const n = b.copy(this.buf, this.used, off);
      this.used += n;
      off += n;
    }
  }

  /** Reads up to `len` bytes of `fd` straight into the buffer; returns the count read. */
  fill(fd: number, len: number): number {
    if (this.used === this.buf.length) this.flush();
    const n = readSync(fd, this.buf, this.used, Math.min(len, this.buf.length - this.used), null);
    this.#count(n);
    this.used += n;
    return n;
  }

  flush(): void {
    if (this.used === 0) return;
    const b = this.buf.subarray(0, this.used);
    this.hash.update(b);
    let off = 0;
    while (off < b.length) off += writeSync(this.#fd, b, off);
    this.used = 0;
  }
}

function writeFileData(sink: Sink, path: string, size: number): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const n = sink.fill(fd, left);
      if (n === 0) throw computeErrors.make("COMPUTE_VOLUME_FAILED", `${path} shrank while it was archived; retry`);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if (pad > 0) sink.write(Buffer.alloc(pad));
}

/** Writes the archive of `root` to `outPath` (created, never overwritten), hashing as it goes. Synchronous: run it in a worker. */
export function writeTarSync(root: string, outPath: string, opts: { maxBytes?: number; exclude?: (rel: string) => boolean; durable?: boolean } = {}): TarResult {
  const entries = collectEntries(root, opts.exclude ? { exclude: opts.exclude } : {});
  const fd = openSync(outPath, "wx", 0o600);
  const sink = new Sink(fd, opts.maxBytes ?? Number.MAX_SAFE_INTEGER);
  try {
    for (const e of entries) {
      sink.write(entryHeader(e));
      if (e.type === "file" && e.size > 0) writeFileData(sink, join(root, e.path), e.size);
    }
    sink.write(Buffer.alloc(BLOCK * 2));
    sink.flush();
    // A snapshot must survive a crash; a staging copy that is streamed and removed need not.
    if (opts.durable ?? true) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { sha256: sink.hash.digest("hex"), sizeBytes: sink.size, entries: entries.length };
}

/** Bytes of the archive of `entries` (as collectEntries lists them): known before it is written. */
export function tarSize(entries: readonly TarEntry[]): number {
  let n = BLOCK * 2;
  for (const e of entries) {
    n += entryHeader(e).length;
    if (e.type === "file") n += e.size + ((BLOCK - (e.size % BLOCK)) % BLOCK);
  }
  return n;
}

/**
 * A few read buffers taken in turn, so streaming a large file allocates nothing per chunk (fresh
 * 1 MiB buffers cost page faults and external-memory garbage collections per GiB). A chunk taken
 * from the ring is valid until `count` more chunks are taken: the consumer hands each chunk on
 * (a socket write, a hash) before it takes that many more.
 */
export class BufferRing {
  readonly count: number;
  readonly #bufs: Buffer[];
  #next = 0;

  constructor(count: number, bytes = IO_CHUNK_BYTES) {
    this.count = count;
    this.#bufs = Array.from({ length: count }, () => Buffer.allocUnsafe(bytes));
  }

  /** The next buffer, cut to at most `n` bytes. */
  take(n: number): Buffer {
    const b = this.#bufs[this.#next] as Buffer;
    this.#next = (this.#next + 1) % this.count;
    return n < b.length ? b.subarray(0, n) : b;
  }
}

/**
 * The data of the file `path`, exactly `size` bytes, in chunks of up to 1 MiB (a file that shrank
 * is an error): fresh buffers, or the `ring`'s (valid as BufferRing says).
 */
export function* fileChunks(path: string, size: number, ring?: BufferRing): Generator<Buffer> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const want = Math.min(IO_CHUNK_BYTES, left);
      const buf = ring ? ring.take(want) : Buffer.allocUnsafe(want);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) throw computeErrors.make("COMPUTE_VOLUME_FAILED", `${path} shrank while it was archived; retry`);
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The same archive as writeTarSync, as a sequence of chunks: for streaming an archive without a
 * staging copy. `entries` (default: collectEntries now) fixes the sizes; a file that shrinks
 * afterwards is an error, one that grows is cut at its listed size. File data comes in the
 * `ring`'s buffers when one is given.
 */
export function* tarChunks(root: string, opts: { exclude?: (rel: string) => boolean; entries?: readonly TarEntry[]; ring?: BufferRing } = {}): Generator<Buffer> {
  for (const e of opts.entries ?? collectEntries(root, opts.exclude ? { exclude: opts.exclude } : {})) {
    yield entryHeader(e);
    if (e.type !== "file" || e.size === 0) continue;
    yield* fileChunks(join(root, e.path), e.size, opts.ring);
    const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(BLOCK * 2);
}

/** Sequential reader of a file through one buffer; skips seek instead of reading. */
class BlockReader {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(IO_CHUNK_BYTES);
  #start = 0;
  #end = 0;
  /** File offset of the byte after the buffer's end. */
  #pos = 0;
  #eof = false;

  constructor(fd: number) {
    this.#fd = fd;
  }

  #refill(): void {
    if (this.#start > 0) {
      this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = readSync(this.#fd, this.#buf, this.#end, this.#buf.length - this.#end, this.#pos);
    if (n === 0) this.#eof = true;
    this.#end += n;
    this.#pos += n;
  }

  /** Up to `n` bytes (n <= 1 MiB), fewer only at end of file; valid until the next call. */
  read(n: number): Buffer {
    while (this.#end - this.#start < n && !this.#eof) this.#refill();
    const len = Math.min(n, this.#end - this.#start);
    const out = this.#buf.subarray(this.#start, this.#start + len);
    this.#start += len;
    return out;
  }

  /** Skips `n` bytes without reading what lies beyond the buffer (a short file shows at the next read). */
  skip(n: number): void {
    const buffered = this.#end - this.#start;
    if (n <= buffered) {
      this.#start += n;
      return;
    }
    this.#pos += n - buffered;
    this.#start = this.#end = 0;
  }
}

function corrupt(detail: string): Error {
  return computeErrors.make("COMPUTE_SNAPSHOT_CORRUPT", detail);
}

function readOctal(h: Buffer, off: number, len: number): number {
  const s = h.toString("ascii", off, off + len).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw corrupt(`bad number field at ${off}`);
  return parseInt(s, 8);
}

function readString(h: Buffer, off: number, len: number): string {
  const end = h.indexOf(0, off);
  return h.toString("utf8", off, end < 0 || end > off + len ? off + len : end);
}

/** Parses pax records ("LEN key=value\n"...). */
export function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0 || sp - off > 10) throw corrupt("pax record length");
    const len = Number(body.toString("ascii", off, sp));
    if (!Number.isInteger(len) || len <= sp - off + 1 || off + len > body.length) throw corrupt("pax record bounds");
    const rec = body.toString("utf8", sp + 1, off + len - 1);
    const eq = rec.indexOf("=");
    if (eq <= 0 || body[off + len - 1] !== 0x0a) throw corrupt("pax record form");
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/** Checks a path from an archive: relative, no "..", no empty or "." part, bounded. */
export function safeRelPath(raw: string): string {
  const p = raw.replace(/^\.\//, "").replace(/\/+$/, "");
  if (p === "" || Buffer.byteLength(p) > TAR_PATH_BYTES_MAX || p.includes("\0")) throw computeErrors.make("COMPUTE_SNAPSHOT_UNSAFE", JSON.stringify(raw));
  const parts = p.split("/");
  if (p.startsWith("/") || parts.length > TAR_DEPTH_MAX || parts.some((x) => x === "" || x === "." || x === "..")) {
    throw computeErrors.make("COMPUTE_SNAPSHOT_UNSAFE", JSON.stringify(raw));
  }
  return p;
}

/** What one 512-byte header block says. */
type Header =
  | { readonly kind: "end" }
  | { readonly kind: "pax"; readonly size: number; readonly global: boolean }
  | { readonly kind: "entry"; readonly entry: TarEntry; readonly size: number };

/** Decodes one header block, with the pax records of the 'x' header before it; checks checksum, size, type and path. */
function decodeHeader(h: Buffer, pax: Map<string, string>, count: number): Header {
  if (h.every((b) => b === 0)) return { kind: "end" };
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
  if (sum !== readOctal(h, 148, 8)) throw corrupt(`header checksum at entry ${count}`);
  const flag = String.fromCharCode(h[156] ?? 0);
  const size = pax.has("size") ? Number(pax.get("size")) : readOctal(h, 124, 12);
  if (!Number.isSafeInteger(size) || size < 0) throw corrupt("size");
  if (flag === "x" || flag === "g") {
    if (size > PAX_BYTES_MAX) throw corrupt("pax header too large");
    return { kind: "pax", size, global: flag === "g" };
  }
  if (count + 1 > TAR_ENTRIES_MAX) throw computeErrors.make("COMPUTE_SNAPSHOT_TOO_LARGE", `more than ${TAR_ENTRIES_MAX} entries`);
  const prefix = readString(h, 345, 155);
  const rawName = pax.get("path") ?? (prefix === "" ? readString(h, 0, 100) : `${prefix}/${readString(h, 0, 100)}`);
  const type = flag === "5" ? "dir" : flag === "2" ? "symlink" : flag === "0" || flag === "\0" ? "file" : undefined;
  if (type === undefined) throw corrupt(`entry type '${flag}' is not allowed`);
  const entry: TarEntry = {
    path: safeRelPath(rawName),
    type,
    mode: readOctal(h, 100, 8) & 0o7777,
    uid: pax.has("uid") ? Number(pax.get("uid")) : readOctal(h, 108, 8),
    gid: pax.has("gid") ? Number(pax.get("gid")) : readOctal(h, 116, 8),
    mtimeSec: pax.has("mtime") ? Math.floor(Number(pax.get("mtime"))) : readOctal(h, 136, 12),
    size: type === "file" ? size : 0,
    linkTarget: pax.get("linkpath") ?? readString(h, 157, 100),
  };
  return { kind: "entry", entry, size };
}

const padOf = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/**
 * Reads an archive entry by entry; `onEntry` gets each header and a reader of its data (data not
 * read is skipped by seeking, so walking the headers of a large archive reads little). Synchronous.
 */
export function readTarSync(path: string, onEntry: (e: TarEntry, data: (sink: (chunk: Buffer) => void) => void) => void): number {
  const fd = openSync(path, "r");
  const r = new BlockReader(fd);
  let count = 0;
  let pax = new Map<string, string>();
  try {
    for (;;) {
      const h = Buffer.from(r.read(BLOCK));
      if (h.length < BLOCK) throw corrupt("truncated archive (no end marker)");
      const d = decodeHeader(h, pax, count);
      if (d.kind === "end") return count;
      if (d.kind === "pax") {
        const body = Buffer.from(r.read(d.size));
        if (body.length < d.size) throw corrupt("truncated pax header");
        r.skip(padOf(d.size));
        if (!d.global) pax = parsePax(body);
        continue;
      }
      count++;
      pax = new Map();
      const size = d.size;
      let consumed = false;
      onEntry(d.entry, (sink) => {
        consumed = true;
        let left = size;
        while (left > 0) {
          const chunk = r.read(Math.min(IO_CHUNK_BYTES, left));
          if (chunk.length === 0) throw corrupt("truncated file data");
          sink(chunk);
          left -= chunk.length;
        }
        r.skip(padOf(size));
      });
      if (!consumed) r.skip(size + padOf(size));
    }
  } finally {
    closeSync(fd);
  }
}

/** Receives one entry's data from TarStreamReader. */
export interface TarEntrySink {
  data(chunk: Buffer): void;
  end(): void;
}

/**
 * The push form of readTarSync, for an archive that arrives in chunks (a download): the same checks,
 * entry by entry as the bytes come. `onEntry` returns where the entry's data goes (undefined: dropped).
 * `end()` says the input is over; it throws unless the archive's end marker was seen.
 */
export class TarStreamReader {
  readonly #onEntry: (e: TarEntry) => TarEntrySink | undefined;
  /** Bytes of a header or pax body being gathered. */
  #head: Buffer = Buffer.alloc(0);
  #state: "header" | "pax" | "data" | "pad" | "done" = "header";
  #left = BLOCK;
  #paxSize = 0;
  #paxGlobal = false;
  #pax = new Map<string, string>();
  #sink: TarEntrySink | undefined;
  #count = 0;

  constructor(onEntry: (e: TarEntry) => TarEntrySink | undefined) {
    this.#onEntry = onEntry;
  }

  get count(): number {
    return this.#count;
  }

  #gather(chunk: Buffer, off: number): number {
    const n = Math.min(this.#left, chunk.length - off);
    this.#head = this.#head.length === 0 && n === this.#left ? chunk.subarray(off, off + n) : Buffer.concat([this.#head, chunk.subarray(off, off + n)]);
    this.#left -= n;
    return n;
  }

  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      switch (this.#state) {
        case "done":
          return; // bytes after the end marker (tar pads archives to records) are ignored
        case "header": {
          off += this.#gather(chunk, off);
          if (this.#left > 0) break;
          const d = decodeHeader(Buffer.from(this.#head), this.#pax, this.#count);
          this.#head = Buffer.alloc(0);
          if (d.kind === "end") {
            this.#state = "done";
          } else if (d.kind === "pax") {
            this.#state = "pax";
            this.#paxSize = d.size;
            this.#paxGlobal = d.global;
            this.#left = d.size + padOf(d.size);
          } else {
            this.#count++;
            this.#pax = new Map();
            this.#sink = this.#onEntry(d.entry);
            this.#paxSize = d.size;
            this.#left = d.size;
            this.#state = "data";
            this.#afterData();
          }
          break;
        }
        case "pax": {
          off += this.#gather(chunk, off);
          if (this.#left > 0) break;
          if (!this.#paxGlobal) this.#pax = parsePax(Buffer.from(this.#head.subarray(0, this.#paxSize)));
          this.#head = Buffer.alloc(0);
          this.#state = "header";
          this.#left = BLOCK;
          break;
        }
        case "data": {
          const n = Math.min(this.#left, chunk.length - off);
          this.#sink?.data(chunk.subarray(off, off + n));
          off += n;
          this.#left -= n;
          this.#afterData();
          break;
        }
        case "pad": {
          const n = Math.min(this.#left, chunk.length - off);
          off += n;
          this.#left -= n;
          if (this.#left === 0) {
            this.#state = "header";
            this.#left = BLOCK;
          }
          break;
        }
      }
    }
  }

  #afterData(): void {
    if (this.#state !== "data" || this.#left > 0) return;
    this.#sink?.end();
    this.#sink = undefined;
    this.#left = padOf(this.#paxSize);
    this.#state = this.#left > 0 ? "pad" : "header";
    if (this.#left === 0) this.#left = BLOCK;
  }

  /** The input is over: throws unless the end marker came. */
  end(): number {
    if (this.#state !== "done") throw corrupt(this.#state === "data" ? "truncated file data" : "truncated archive (no end marker)");
    return this.#count;
  }
}
