/**
 * The deterministic tar of a directory chosen in the page (`<input type=file webkitdirectory>`),
 * byte for byte the archive `nexus compute deploy --app DIR` uploads (src/services/compute/tar.ts
 * writeTarSync): POSIX pax interchange format, ustar headers with an 'x' extended header when a
 * field does not fit, entries depth first with the names of each directory in byte order of their
 * UTF-8, whole-second mtimes, empty uname/gname, two zero blocks at the end.
 *
 * A browser shows a file's relative path, size and mtime, nothing else, so what the page cannot
 * see it fixes: every file has mode 0644, every directory 0755, uid and gid 0 (options), a
 * directory's mtime is the newest mtime beneath it, and only directories that hold a file exist
 * (the browser lists no empty directory and no symlink). For a tree with exactly that metadata
 * the page's tar and the CLI's are the same bytes, hence the same SHA-256 (test/console/
 * verify-lib.test.ts holds it to writeTarSync). The archive is a Blob of the headers and the
 * files themselves, so nothing is read into memory but one chunk at a time, for the SHA-256
 * (@noble/hashes, incremental: WebCrypto has no streaming digest).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { concat, toHex, utf8 } from "./bytes.ts";

const BLOCK = 512;
/** Largest source the API accepts (src/services/compute/sources.ts SOURCE_BYTES_MAX). */
export const SOURCE_BYTES_MAX = 512 * 1024 * 1024;
/** Bound on entries (tar.ts TAR_ENTRIES_MAX). */
export const TAR_ENTRIES_MAX = 1_000_000;
/** Bound on a path inside the archive (tar.ts TAR_PATH_BYTES_MAX). */
export const TAR_PATH_BYTES_MAX = 4096;
/** Bound on directory depth (tar.ts TAR_DEPTH_MAX). */
export const TAR_DEPTH_MAX = 128;
/** Bytes read at once while hashing. */
const HASH_CHUNK_BYTES = 4 * 1024 * 1024;
const OCTAL_11_MAX = 0o77777777777;
const OCTAL_7_MAX = 0o7777777;

/** One file as the browser gives it (a File of a webkitdirectory input, or any Blob with the same facts). */
export interface SourceFile {
  /** `webkitRelativePath`: "<chosen directory>/<path inside it>". */
  readonly relativePath: string;
  readonly blob: Blob;
  /** Milliseconds since the epoch (File.lastModified). */
  readonly lastModified: number;
}

/** What the page cannot see, fixed for the whole tree. */
export interface PackOptions {
  readonly fileMode?: number;
  readonly dirMode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Largest archive allowed (default SOURCE_BYTES_MAX). */
  readonly maxBytes?: number;
  /** Gets 0..1 while the archive is hashed. */
  readonly onProgress?: (f: number) => void;
}

/** A packed directory. */
export interface PackedSource {
  /** The archive, ready to upload. */
  readonly blob: Blob;
  /** Lower-case hex SHA-256 of the archive (the name it is uploaded and deployed under). */
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly entries: number;
  /** The chosen directory's own name (the first part of every relative path). */
  readonly root: string;
}

/** A directory that cannot be packed as the CLI would (a stable code for the page). */
export class PackError extends Error {
  readonly code = "CONSOLE_SOURCE_INVALID";
}

interface Node {
  readonly name: string;
  file?: SourceFile;
  readonly children: Map<string, Node>;
  mtimeSec: number;
}

interface Entry {
  readonly path: string;
  readonly type: "file" | "dir";
  readonly mode: number;
  readonly mtimeSec: number;
  readonly size: number;
  readonly file?: SourceFile;
}

function cmpBytes(a: string, b: string): number {
  const x = utf8(a);
  const y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function byteLength(s: string): number {
  return utf8(s).length;
}

/** Writes `s` at `off`, at most `len` bytes, never a partial UTF-8 sequence (Buffer.write's rule). */
function put(h: Uint8Array, s: string, off: number, len: number): void {
  let at = off;
  for (const ch of s) {
    const b = utf8(ch);
    if (at + b.length > off + len) return;
    h.set(b, at);
    at += b.length;
  }
}

function octal(h: Uint8Array, off: number, len: number, value: number): void {
  put(h, value.toString(8).padStart(len - 1, "0") + "\0", off, len);
}

function paxRecord(key: string, value: string): Uint8Array {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = byteLength(body);
  let n = bodyBytes + 1;
  while (String(n).length + bodyBytes !== n) n = String(n).length + bodyBytes;
  return utf8(`${n}${body}`);
}

function rawHeader(name: string, e: { mode: number; uid: number; gid: number; mtimeSec: number }, size: number, flag: string): Uint8Array {
  const h = new Uint8Array(BLOCK);
  put(h, name, 0, 100);
  octal(h, 100, 8, e.mode);
  octal(h, 108, 8, e.uid);
  octal(h, 116, 8, e.gid);
  octal(h, 124, 12, size);
  octal(h, 136, 12, e.mtimeSec);
  put(h, "        ", 148, 8);
  put(h, flag, 156, 1);
  put(h, "ustar\0", 257, 6);
  put(h, "00", 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(h, sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return h;
}

/** The header block(s) of one entry, as tar.ts entryHeader makes them (no symlinks here). */
function entryHeader(e: Entry, uid: number, gid: number): Uint8Array {
  const name = e.type === "dir" ? `${e.path}/` : e.path;
  const pax: Uint8Array[] = [];
  const ascii = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);
  const long = byteLength(name) > 100 || !ascii(name);
  if (long) pax.push(paxRecord("path", name));
  if (e.size > OCTAL_11_MAX) pax.push(paxRecord("size", String(e.size)));
  if (uid > OCTAL_7_MAX) pax.push(paxRecord("uid", String(uid)));
  if (gid > OCTAL_7_MAX) pax.push(paxRecord("gid", String(gid)));
  if (e.mtimeSec < 0 || e.mtimeSec > OCTAL_11_MAX) pax.push(paxRecord("mtime", String(e.mtimeSec)));
  const flag = e.type === "dir" ? "5" : "0";
  const fit = { mode: e.mode, uid: Math.min(uid, OCTAL_7_MAX), gid: Math.min(gid, OCTAL_7_MAX), mtimeSec: Math.max(0, Math.min(e.mtimeSec, OCTAL_11_MAX)) };
  const main = rawHeader(long ? name.replace(/[^\x20-\x7e]/g, "_").slice(-99) : name, fit, Math.min(e.size, OCTAL_11_MAX), flag);
  if (pax.length === 0) return main;
  const body = concat(...pax);
  const paxHead = rawHeader("././@PaxHeader", { mode: 0o644, uid: 0, gid: 0, mtimeSec: 0 }, body.length, "x");
  return concat(paxHead, body, new Uint8Array((BLOCK - (body.length % BLOCK)) % BLOCK), main);
}

/** Splits and checks a relative path: what tar.ts safeRelPath would accept of it. */
function partsOf(relativePath: string): string[] {
  const parts = relativePath.split("/");
  if (parts.length < 2 || parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\0"))) {
    throw new PackError(`not a path inside the chosen directory: ${JSON.stringify(relativePath)}`);
  }
  return parts;
}

/** The archive's entries in writeTarSync's order (depth first, names in byte order). */
function entriesOf(files: readonly SourceFile[], opts: PackOptions): { root: string; entries: Entry[] } {
  if (files.length === 0) throw new PackError("the chosen directory holds no file");
  const top: Node = { name: "", children: new Map(), mtimeSec: 0 };
  let root: string | undefined;
  for (const f of files) {
    const parts = partsOf(f.relativePath);
    const [first, ...inside] = parts;
    if (root === undefined) root = first;
    else if (first !== root) throw new PackError(`files from two directories: ${JSON.stringify(root)} and ${JSON.stringify(first)}`);
    const path = inside.join("/");
    if (byteLength(path) > TAR_PATH_BYTES_MAX || inside.length > TAR_DEPTH_MAX) throw new PackError(`path too long or too deep: ${path}`);
    let at = top;
    inside.forEach((name, i) => {
      let next = at.children.get(name);
      if (next === undefined) {
        next = { name, children: new Map(), mtimeSec: 0 };
        at.children.set(name, next);
      }
      if (i === inside.length - 1) {
        if (next.file !== undefined || next.children.size > 0) throw new PackError(`${path} is listed twice`);
        next.file = f;
      } else if (next.file !== undefined) {
        throw new PackError(`${inside.slice(0, i + 1).join("/")} is both a file and a directory`);
      }
      at = next;
    });
  }
  // A directory's mtime: the newest mtime beneath it.
  const stamp = (n: Node): number => {
    if (n.file !== undefined) n.mtimeSec = Math.floor(n.file.lastModified / 1000);
    else n.mtimeSec = [...n.children.values()].reduce((m, c) => Math.max(m, stamp(c)), Number.NEGATIVE_INFINITY);
    return n.mtimeSec;
  };
  stamp(top);
  const entries: Entry[] = [];
  const fileMode = opts.fileMode ?? 0o644;
  const dirMode = opts.dirMode ?? 0o755;
  const walk = (n: Node, rel: string): void => {
    for (const name of [...n.children.keys()].sort(cmpBytes)) {
      const c = n.children.get(name) as Node;
      const p = rel === "" ? name : `${rel}/${name}`;
      if (entries.length >= TAR_ENTRIES_MAX) throw new PackError(`more than ${TAR_ENTRIES_MAX} entries`);
      if (c.file !== undefined) {
        entries.push({ path: p, type: "file", mode: fileMode, mtimeSec: c.mtimeSec, size: c.file.blob.size, file: c.file });
      } else {
        entries.push({ path: p, type: "dir", mode: dirMode, mtimeSec: c.mtimeSec, size: 0 });
        walk(c, p);
      }
    }
  };
  walk(top, "");
  return { root: root ?? "", entries };
}

/**
 * Packs the files of one chosen directory as the CLI's deterministic tar and hashes it. Throws
 * PackError for a tree the CLI would not pack the same way, or beyond the API's bounds.
 */
export async function packDirectory(files: readonly SourceFile[], opts: PackOptions = {}): Promise<PackedSource> {
  const uid = opts.uid ?? 0;
  const gid = opts.gid ?? 0;
  const maxBytes = opts.maxBytes ?? SOURCE_BYTES_MAX;
  const { root, entries } = entriesOf(files, opts);
  const parts: (Uint8Array | Blob)[] = [];
  let size = 0;
  for (const e of entries) {
    const h = entryHeader(e, uid, gid);
    parts.push(h);
    size += h.length;
    if (e.file !== undefined && e.size > 0) {
      parts.push(e.file.blob);
      const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(new Uint8Array(pad));
      size += e.size + pad;
    }
    if (size > maxBytes) throw new PackError(`the archive would exceed ${maxBytes} bytes`);
  }
  parts.push(new Uint8Array(BLOCK * 2));
  size += BLOCK * 2;
  if (size > maxBytes) throw new PackError(`the archive would exceed ${maxBytes} bytes`);
  const h = sha256.create();
  let done = 0;
  for (const p of parts) {
    if (p instanceof Uint8Array) {
      h.update(p);
      done += p.length;
      continue;
    }
    for (let off = 0; off < p.size; off += HASH_CHUNK_BYTES) {
      const chunk = new Uint8Array(await p.slice(off, Math.min(p.size, off + HASH_CHUNK_BYTES)).arrayBuffer());
      if (chunk.length !== Math.min(HASH_CHUNK_BYTES, p.size - off)) throw new PackError("a file changed while it was read; choose the directory again");
      h.update(chunk);
      done += chunk.length;
      opts.onProgress?.(done / size);
    }
  }
  opts.onProgress?.(1);
  const blobParts: BlobPart[] = parts.map((p) => (p instanceof Uint8Array ? (p as Uint8Array<ArrayBuffer>) : p));
  return { blob: new Blob(blobParts, { type: "application/x-tar" }), sha256: toHex(h.digest()), sizeBytes: size, entries: entries.length, root };
}
