/**
 * Delivery into Maildir (https://cr.yp.to/proto/maildir.html), the write side only; reading is the
 * IMAP server's (src/services/mail/maildir).
 *
 * Duties, in order, for each message:
 * 1. The file is created in `tmp/` under a name unique to this host, process and delivery
 *    (`<seconds>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`: the Maildir spec's "new" unique
 *    name, plus the size fields Dovecot reads: S= the file size, W= the size with CRLF line ends,
 *    i.e. RFC822.SIZE); the content is written with LF line ends, as Postfix's and Dovecot's
 *    delivery agents do.
 * 2. The file MUST be fsync'ed before it is renamed into `new/`, and `new/` MUST be fsync'ed after
 *    the rename; `deliver` MUST NOT resolve before both, so an acknowledged message survives a
 *    crash or power loss. Directory fsyncs are shared by concurrent deliveries (group commit).
 * 3. Further recipients get a hard link of the same file in their own `new/` (as qmail does);
 *    a different file system falls back to writing a copy.
 */
import { hostname as osHostname } from "node:os";
import { link, open, rename, unlink } from "node:fs/promises";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The three Maildir subdirectories. */
export const MAILDIR_SUBDIRS = ["tmp", "new", "cur"] as const;
/** Directory entries looked at when scanning a Maildir's usage (new/ and cur/ each). */
export const MAILDIR_SCAN_ENTRIES_MAX = 1_000_000;
/** Attempts at a fresh unique name when one already exists in tmp/. */
const UNIQUE_NAME_ATTEMPTS_MAX = 8;
const LF = 0x0a;
const CR = 0x0d;

/** Creates `<path>/{tmp,new,cur}` (mode 0700) when missing. */
export function ensureMaildir(path: string): void {
  for (const sub of MAILDIR_SUBDIRS) mkdirSync(join(path, sub), { recursive: true, mode: 0o700 });
}

/** Bytes and messages stored in new/ and cur/, from the S= field of each name (stat when absent). */
export function scanMaildirUsage(path: string): { bytes: number; messages: number } {
  let bytes = 0;
  let messages = 0;
  for (const sub of ["new", "cur"]) {
    let names: string[];
    try {
      names = readdirSync(join(path, sub));
    } catch {
      continue;
    }
    for (const name of names.slice(0, MAILDIR_SCAN_ENTRIES_MAX)) {
      if (name.startsWith(".")) continue;
      const m = /,S=(\d{1,15})(?:[,:]|$)/.exec(name);
      let size = m?.[1] === undefined ? undefined : Number(m[1]);
      if (size === undefined) {
        try {
          size = statSync(join(path, sub, name)).size;
        } catch {
          continue;
        }
      }
      bytes += size;
      messages += 1;
    }
  }
  return { bytes, messages };
}

/** A message in the form stored in Maildir. */
export interface MaildirContent {
  /** The bytes to write, with LF line ends. */
  readonly parts: readonly Buffer[];
  /** File size (sum of parts). */
  readonly size: number;
  /** Size with CRLF line ends (RFC822.SIZE), for W=. */
  readonly vsize: number;
}

/**
 * Converts CRLF line ends to LF (a bare LF stays LF), returning the new bytes and the count of
 * line ends, so vsize = bytes + lineEnds.
 */
export function crlfToLf(src: Buffer): { data: Buffer; lineEnds: number } {
  let i = src.indexOf(LF);
  if (i < 0) return { data: src, lineEnds: 0 };
  const out = Buffer.allocUnsafe(src.length);
  let pos = 0;
  let o = 0;
  let lineEnds = 0;
  while (i >= 0) {
    const end = i > 0 && src[i - 1] === CR ? i - 1 : i;
    o += src.copy(out, o, pos, end);
    out[o++] = LF;
    lineEnds += 1;
    pos = i + 1;
    i = src.indexOf(LF, pos);
  }
  o += src.copy(out, o, pos);
  return { data: out.subarray(0, o), lineEnds };
}

/** Maildir content from CRLF parts (trace headers, then the message as received). */
export function maildirContent(crlfParts: readonly Buffer[]): MaildirContent {
  const parts: Buffer[] = [];
  let size = 0;
  let lineEnds = 0;
  for (const p of crlfParts) {
    const c = crlfToLf(p);
    parts.push(c.data);
    size += c.data.length;
    lineEnds += c.lineEnds;
  }
  return { parts, size, vsize: size + lineEnds };
}

/** The host part of unique names: "/" and ":" escaped as the Maildir spec says, "," too (Dovecot's field separator). */
export function maildirHost(name: string): string {
  return name.replace(/\//g, "\\057").replace(/:/g, "\\072").replace(/,/g, "\\054");
}

/** Shares directory fsyncs between concurrent callers: each caller waits for an fsync that began after its call. */
class DirSyncer {
  readonly #dirs = new Map<string, { running: boolean; waiting: Array<{ ok: () => void; fail: (e: unknown) => void }> }>();

  sync(dir: string): Promise<void> {
    return new Promise((ok, fail) => {
      let s = this.#dirs.get(dir);
      if (!s) {
        s = { running: false, waiting: [] };
        this.#dirs.set(dir, s);
      }
      s.waiting.push({ ok, fail });
      if (!s.running) void this.#run(dir, s);
    });
  }

  async #run(dir: string, s: { running: boolean; waiting: Array<{ ok: () => void; fail: (e: unknown) => void }> }): Promise<void> {
    s.running = true;
    while (s.waiting.length > 0) {
      const batch = s.waiting;
      s.waiting = [];
      try {
        const h = await open(dir, "r");
        try {
          await h.sync();
        } finally {
          await h.close();
        }
        for (const w of batch) w.ok();
      } catch (e) {
        for (const w of batch) w.fail(e);
      }
    }
    s.running = false;
    this.#dirs.delete(dir);
  }
}

/** One stored copy. */
export interface DeliveredFile {
  readonly maildir: string;
  /** Full path of the file in new/. */
  readonly path: string;
}

/** Writes messages into Maildirs with the duties listed at the top of this file. */
export class MaildirWriter {
  readonly host: string;
  #counter = 0;
  readonly #syncer = new DirSyncer();

  /** A writer naming files after `host` (default: this machine's host name). */
  constructor(host: string = osHostname()) {
    this.host = maildirHost(host);
  }

  /** A fresh unique file name (Maildir spec, "new" style: time, microseconds, pid, counter, host). */
  uniqueName(size: number, vsize: number, nowMs: number = performance.timeOrigin + performance.now()): string {
    this.#counter += 1;
    const sec = Math.floor(nowMs / 1000);
    const usec = Math.floor((nowMs - sec * 1000) * 1000);
    return `${sec}.M${usec}P${process.pid}Q${this.#counter}.${this.host},S=${size},W=${vsize}`;
  }

  /** Stores `content` durably in each Maildir; resolves only after file and directory fsyncs. */
  async deliver(maildirs: readonly string[], content: MaildirContent): Promise<DeliveredFile[]> {
    const [first, ...rest] = maildirs;
    if (first === undefined) return [];
    const out: DeliveredFile[] = [];
    const firstPath = await this.#writeNew(first, content);
    out.push({ maildir: first, path: firstPath });
    for (const md of rest) {
      const name = this.uniqueName(content.size, content.vsize);
      const target = join(md, "new", name);
      try {
        await link(firstPath, target);
        out.push({ maildir: md, path: target });
      } catch {
        out.push({ maildir: md, path: await this.#writeNew(md, content) });
      }
    }
    await Promise.all(maildirs.map((md) => this.#syncer.sync(join(md, "new"))));
    return out;
  }

  /** tmp/ file: create exclusively (0600), write, fsync, close, rename into new/. */
  async #writeNew(maildir: string, content: MaildirContent): Promise<string> {
    for (let attempt = 0; attempt < UNIQUE_NAME_ATTEMPTS_MAX; attempt++) {
      const name = this.uniqueName(content.size, content.vsize);
      const tmp = join(maildir, "tmp", name);
      let h;
      try {
        h = await open(tmp, "wx", 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw e;
      }
      try {
        const { bytesWritten } = await h.writev(content.parts as Buffer[]);
        // A short write to a regular file is rare (disk full mid-way); finish it or fail.
        if (bytesWritten < content.size) {
          const rest = Buffer.concat(content.parts as Buffer[]).subarray(bytesWritten);
          const r = await h.write(rest, 0, rest.length, bytesWritten);
          if (r.bytesWritten !== rest.length) throw new Error(`short write to ${tmp}`);
        }
        await h.datasync();
      } catch (e) {
        await h.close().catch(() => undefined);
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
      await h.close();
      const target = join(maildir, "new", name);
      await rename(tmp, target);
      return target;
    }
    throw new Error(`no unique Maildir name after ${UNIQUE_NAME_ATTEMPTS_MAX} attempts in ${maildir}`);
  }
}
