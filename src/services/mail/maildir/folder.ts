/**
 * One Maildir folder (INBOX or a Maildir++ `.<name>` directory) as an IMAP mailbox: the messages
 * of `new/` and `cur/` with their persistent UIDs (dovecot-uidlist), flags (the `:2,` suffix) and
 * keywords (dovecot-keywords).
 *
 * Duties:
 * - A UID, once given to a base name, MUST NOT change while the UIDVALIDITY stays (RFC 3501
 *   2.3.1.1). New files get UIDs above every UID ever given (the uidlist's N), under the uidlist
 *   lock, in delivery order.
 * - The uidlist MUST be replaced atomically (written into the lock file, renamed over it), so a
 *   crash leaves the old or the new file, never half of one; a missing or broken uidlist gets a new,
 *   larger UIDVALIDITY.
 * - Message files MUST NOT be rewritten: flags change by rename within cur/, content never changes,
 *   so a cache keyed by base name stays true.
 * - A file renamed or removed by another process (another session, Dovecot, a local MUA) is found
 *   again by its base name; when it is gone, MAILDIR_MESSAGE_GONE.
 * - new/ is read before cur/ so a file moved new→cur between the two reads is not missed.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { link, mkdir, open, readFile, readdir, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crlfToLf } from "../maildir-deliver.ts";
import { isNexusError } from "../../../core/errors.ts";
import { maildirErrors } from "./errors.ts";
import { FLAG_LETTERS, LETTER_OF_FLAG, UniqueNames, compareBases, curName, parseName, sortLetters } from "./filename.ts";
import { withUidlistLock } from "./lock.ts";
import { UID_MAX, formatUidlist, newGuid, parseUidlist, type Uidlist, type UidlistEntry } from "./uidlist.ts";

/** Keyword letters available per folder (dovecot-keywords maps a–z). */
export const KEYWORDS_MAX = 26;
/** Longest keyword accepted (bytes). */
export const KEYWORD_BYTES_MAX = 100;

/** Bounds of one folder. */
export interface FolderLimits {
  /** Messages a folder may hold before MAILDIR_TOO_MANY_MESSAGES. */
  readonly messagesMax: number;
  /** Largest message file read or written. */
  readonly messageBytesMax: number;
  /** Wait for the uidlist lock. */
  readonly lockTimeoutMs: number;
}

/** Default folder bounds. */
export const FOLDER_LIMITS_DEFAULT: FolderLimits = {
  messagesMax: 500_000,
  messageBytesMax: 64 * 1024 * 1024,
  lockTimeoutMs: 10_000,
};

/** One message as the folder knows it now. */
export interface MessageEntry {
  readonly uid: number;
  /** The unique base name (what the uidlist records). */
  readonly base: string;
  /** The subdirectory holding the file. */
  readonly sub: "new" | "cur";
  /** The current file name in `sub`. */
  readonly name: string;
  /** The info flag letters, sorted. */
  readonly letters: string;
  /** `,S=` file size, when the name has it. */
  readonly size: number | undefined;
  /** `,W=` size with CRLF line ends, when the name has it. */
  readonly vsize: number | undefined;
}

/** What a sync found. */
export interface SyncResult {
  /** UIDs this sync moved from new/ to cur/ (the session that saw them first: \Recent). */
  readonly recent: readonly number[];
}

interface FileSeen {
  readonly sub: "new" | "cur";
  readonly name: string;
}

const UIDLIST = "dovecot-uidlist";
const KEYWORDS_FILE = "dovecot-keywords";

function io(e: unknown): Error {
  return isNexusError(e) ? e : maildirErrors.make("MAILDIR_IO", (e as Error).message);
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === "ENOENT";
}

/** Largest message file read synchronously (see `MaildirFolder.read`). */
export const SYNC_READ_BYTES_MAX = 256 * 1024;

/** Reads up to `size` bytes from the start of `fd`. */
function readAllSync(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

/** Converts LF line ends to CRLF (existing CRLF stays): Maildir files hold LF, IMAP serves CRLF. */
export function lfToCrlf(src: Buffer): Buffer {
  let i = src.indexOf(0x0a);
  let bare = 0;
  while (i >= 0) {
    if (i === 0 || src[i - 1] !== 0x0d) bare += 1;
    i = src.indexOf(0x0a, i + 1);
  }
  if (bare === 0) return src;
  const out = Buffer.allocUnsafe(src.length + bare);
  let o = 0;
  let pos = 0;
  i = src.indexOf(0x0a);
  while (i >= 0) {
    if (i === 0 || src[i - 1] !== 0x0d) {
      o += src.copy(out, o, pos, i);
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      pos = i + 1;
    }
    i = src.indexOf(0x0a, i + 1);
  }
  o += src.copy(out, o, pos);
  return out.subarray(0, o);
}

/** A Maildir folder. Not shared between sessions: each session keeps its own view and syncs it. */
export class MaildirFolder {
  readonly path: string;
  readonly limits: FolderLimits;
  readonly #names: UniqueNames;
  readonly #nextUidValidity: () => Promise<number>;
  #uidValidity = 0;
  #nextUid = 1;
  #entries: MessageEntry[] = [];
  #byUid = new Map<number, MessageEntry>();
  #byBase = new Map<string, MessageEntry>();
  #keywords: string[] = [];
  #uidlistStamp = "";
  #uidlist: Uidlist | undefined;
  #keywordsStamp = "";
  #dirStamp = "";
  #generation = 0;

  /** A folder at `path`; `nextUidValidity` gives a fresh UIDVALIDITY for a new or broken uidlist. */
  constructor(path: string, nextUidValidity: () => Promise<number>, limits: FolderLimits = FOLDER_LIMITS_DEFAULT, names = new UniqueNames()) {
    this.path = path;
    this.limits = limits;
    this.#names = names;
    this.#nextUidValidity = nextUidValidity;
  }

  /** RFC 3501 2.3.1.1 UIDVALIDITY (valid after the first sync). */
  get uidValidity(): number {
    return this.#uidValidity;
  }

  /** RFC 3501 2.3.1.1 next UID. */
  get uidNext(): number {
    return this.#nextUid;
  }

  /** Counts syncs, so a view can tell whether the folder was re-read since it last looked. */
  get generation(): number {
    return this.#generation;
  }

  /** The keyword names in letter order (a, b, ...). */
  get keywords(): readonly string[] {
    return this.#keywords;
  }

  /** The messages, ascending by UID. */
  messages(): readonly MessageEntry[] {
    return this.#entries;
  }

  /** The message with `uid`, if present at the last sync. */
  byUid(uid: number): MessageEntry | undefined {
    return this.#byUid.get(uid);
  }

  /** The full path of a message file. */
  filePath(e: MessageEntry): string {
    return join(this.path, e.sub, e.name);
  }

  /** Re-reads the folder: moves new/ to cur/ when `moveNew` (SELECT, not EXAMINE), assigns UIDs. */
  async sync(moveNew: boolean): Promise<SyncResult> {
    // The stamp is taken before reading, so a change made during the read shows on the next check.
    const stamp = await this.#stamp();
    const files = await this.#scan(moveNew);
    await this.#loadKeywords();
    let list = await this.#readUidlist();
    const known = new Set(list?.entries.map((e) => e.base));
    const fresh = [...files.keys()].filter((b) => !known.has(b));
    const wrote = list === undefined || fresh.length > 0;
    if (list === undefined || wrote) list = await this.#assign(files);
    this.#install(list, files);
    this.#generation += 1;
    // Our own moves and uidlist writes changed the directories: check again next time.
    const movedAny = [...files.values()].some((f) => f.movedNow);
    this.#dirStamp = movedAny || wrote ? "" : stamp;
    const recent: number[] = [];
    for (const [base, f] of files) {
      const e = this.#byBase.get(base);
      if (e !== undefined && f.movedNow) recent.push(e.uid);
    }
    return { recent };
  }

  /** True when new/, cur/, the uidlist or the keywords changed since the last sync (a cheap stat check). */
  async changed(): Promise<boolean> {
    return this.#dirStamp === "" || (await this.#stamp()) !== this.#dirStamp;
  }

  async #stamp(): Promise<string> {
    const parts = await Promise.all(
      ["new", "cur", UIDLIST, KEYWORDS_FILE].map(async (n) => {
        const st = await stat(join(this.path, n)).catch(() => undefined);
        return st === undefined ? "-" : `${st.ino}:${st.mtimeMs}:${st.size}`;
      }),
    );
    return parts.join("|");
  }

  async #scan(moveNew: boolean): Promise<Map<string, FileSeen & { movedNow: boolean }>> {
    const files = new Map<string, FileSeen & { movedNow: boolean }>();
    for (const sub of ["new", "cur"] as const) {
      let names: string[];
      try {
        names = await readdir(join(this.path, sub));
      } catch (e) {
        if (isMissing(e)) throw maildirErrors.make("MAILDIR_NOT_FOUND", this.path);
        throw io(e);
      }
      if (names.length + files.size > this.limits.messagesMax) {
        throw maildirErrors.make("MAILDIR_TOO_MANY_MESSAGES", `more than ${this.limits.messagesMax} in ${this.path}`);
      }
      for (const name of names) {
        const p = parseName(name);
        if (p === undefined) continue;
        if (sub === "new" && moveNew) {
          const target = name.includes(":") ? name : curName(p.base, "");
          try {
            await rename(join(this.path, "new", name), join(this.path, "cur", target));
            files.set(p.base, { sub: "cur", name: target, movedNow: true });
          } catch (e) {
            if (!isMissing(e)) throw io(e);
          }
          continue;
        }
        if (sub === "cur" && files.get(p.base)?.sub === "cur") continue;
        files.set(p.base, { sub, name, movedNow: false });
      }
    }
    return files;
  }

  async #readUidlist(): Promise<Uidlist | undefined> {
    const file = join(this.path, UIDLIST);
    let st;
    try {
      st = await stat(file);
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw io(e);
    }
    const stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (stamp === this.#uidlistStamp && this.#uidlist !== undefined) return this.#uidlist;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw io(e);
    }
    try {
      this.#uidlist = parseUidlist(text, this.limits.messagesMax);
    } catch (e) {
      if (isNexusError(e, "MAILDIR_UIDLIST_INVALID")) return undefined;
      throw e;
    }
    this.#uidlistStamp = stamp;
    return this.#uidlist;
  }

  /** Under the lock: re-reads the uidlist, gives UIDs to unknown bases and replaces the file. */
  async #assign(files: ReadonlyMap<string, FileSeen>): Promise<Uidlist> {
    return withUidlistLock(
      this.path,
      async (lock) => {
        this.#uidlistStamp = "";
        const current = await this.#readUidlist();
        const uidValidity = current?.uidValidity ?? (await this.#nextUidValidity());
        let next = current?.nextUid ?? 1;
        const kept: UidlistEntry[] = [];
        const known = new Set<string>();
        for (const e of current?.entries ?? []) {
          if (files.has(e.base)) {
            kept.push(e);
            known.add(e.base);
          }
        }
        const fresh = [...files.keys()].filter((b) => !known.has(b)).sort(compareBases);
        if (current !== undefined && fresh.length === 0) return current;
        for (const base of fresh) {
          if (next > UID_MAX) throw maildirErrors.make("MAILDIR_UIDS_EXHAUSTED", this.path);
          kept.push({ uid: next, base, ext: "" });
          next += 1;
        }
        const list: Uidlist = { uidValidity, nextUid: next, guid: current?.guid ?? newGuid(), entries: kept };
        await lock.replace(join(this.path, UIDLIST), formatUidlist(list));
        this.#uidlistStamp = "";
        this.#uidlist = undefined;
        return list;
      },
      this.limits.lockTimeoutMs,
    );
  }

  #install(list: Uidlist, files: ReadonlyMap<string, FileSeen>): void {
    const entries: MessageEntry[] = [];
    const byUid = new Map<number, MessageEntry>();
    const byBase = new Map<string, MessageEntry>();
    for (const u of list.entries) {
      const f = files.get(u.base);
      if (f === undefined) continue;
      const p = parseName(f.name);
      if (p === undefined) continue;
      const e: MessageEntry = { uid: u.uid, base: u.base, sub: f.sub, name: f.name, letters: p.letters, size: p.size, vsize: p.vsize };
      entries.push(e);
      byUid.set(e.uid, e);
      byBase.set(e.base, e);
    }
    this.#uidValidity = list.uidValidity;
    this.#nextUid = list.nextUid;
    this.#entries = entries;
    this.#byUid = byUid;
    this.#byBase = byBase;
  }

  async #loadKeywords(): Promise<void> {
    const file = join(this.path, KEYWORDS_FILE);
    const st = await stat(file).catch(() => undefined);
    const stamp = st === undefined ? "-" : `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (stamp === this.#keywordsStamp) return;
    const kw: string[] = [];
    if (st !== undefined && st.size <= KEYWORDS_MAX * (KEYWORD_BYTES_MAX + 8)) {
      const text = await readFile(file, "utf8").catch(() => "");
      for (const line of text.split("\n")) {
        const m = /^(\d{1,2}) (\S{1,100})$/.exec(line);
        const idx = Number(m?.[1]);
        if (m?.[2] !== undefined && idx < KEYWORDS_MAX) kw[idx] = m[2];
      }
    }
    this.#keywords = Array.from({ length: kw.length }, (_, i) => kw[i] ?? "");
    this.#keywordsStamp = stamp;
  }

  /** The IMAP flags of a message: system flags, then keywords (RFC 3501 2.3.2). */
  flagsOf(e: MessageEntry): string[] {
    const out: string[] = [];
    for (const c of e.letters) {
      const f = FLAG_LETTERS[c];
      if (f !== undefined) out.push(f);
      else if (c >= "a" && c <= "z") {
        const k = this.#keywords[c.charCodeAt(0) - 97];
        if (k) out.push(k);
      }
    }
    return out;
  }

  /**
   * The letters for IMAP `flags` (system flags and keywords); keywords without a letter get one,
   * written to dovecot-keywords under the uidlist lock. MAILDIR_KEYWORDS_FULL past 26.
   */
  async lettersFor(flags: readonly string[], create = true): Promise<string> {
    let out = "";
    for (const f of flags) {
      const sys = LETTER_OF_FLAG[f.toLowerCase()];
      if (sys !== undefined) out += sys;
      else if (!f.startsWith("\\")) {
        const i = this.#keywords.findIndex((k) => k.toLowerCase() === f.toLowerCase());
        if (i >= 0) out += String.fromCharCode(97 + i);
        else if (create) out += await this.#keywordLetter(f);
      }
    }
    return sortLetters(out);
  }

  /** True when another keyword can be stored (for PERMANENTFLAGS' \*). */
  canCreateKeywords(): boolean {
    return this.#keywords.length < KEYWORDS_MAX;
  }

  async #keywordLetter(keyword: string): Promise<string> {
    const find = (): number => this.#keywords.findIndex((k) => k.toLowerCase() === keyword.toLowerCase());
    let i = find();
    if (i >= 0) return String.fromCharCode(97 + i);
    if (Buffer.byteLength(keyword) > KEYWORD_BYTES_MAX || !/^[\x21-\x7e]+$/.test(keyword)) {
      throw maildirErrors.make("MAILDIR_NAME_INVALID", `keyword ${keyword.slice(0, 40)}`);
    }
    await withUidlistLock(this.path, async () => {
      this.#keywordsStamp = "";
      await this.#loadKeywords();
      i = find();
      if (i >= 0) return;
      if (this.#keywords.length >= KEYWORDS_MAX) throw maildirErrors.make("MAILDIR_KEYWORDS_FULL", this.path);
      const next = [...this.#keywords, keyword];
      const tmp = join(this.path, `${KEYWORDS_FILE}.${process.pid}.tmp`);
      await writeFile(tmp, next.map((k, n) => `${n} ${k}\n`).join(""), { mode: 0o600 });
      await rename(tmp, join(this.path, KEYWORDS_FILE));
      this.#keywordsStamp = "";
      await this.#loadKeywords();
      i = find();
    });
    if (i < 0) throw maildirErrors.make("MAILDIR_IO", "keyword not recorded");
    return String.fromCharCode(97 + i);
  }

  /** Finds the current file of `e` after another process renamed it; MAILDIR_MESSAGE_GONE when removed. */
  async refind(e: MessageEntry): Promise<MessageEntry> {
    await this.sync(false);
    const now = this.#byBase.get(e.base);
    if (now === undefined) throw maildirErrors.make("MAILDIR_MESSAGE_GONE", `UID ${e.uid}`);
    return now;
  }

  async #retry<T>(e: MessageEntry, fn: (cur: MessageEntry) => Promise<T>): Promise<T> {
    try {
      return await fn(e);
    } catch (err) {
      if (!isMissing(err)) throw io(err);
    }
    const now = await this.refind(e);
    try {
      return await fn(now);
    } catch (err) {
      if (isMissing(err)) throw maildirErrors.make("MAILDIR_MESSAGE_GONE", `UID ${e.uid}`);
      throw io(err);
    }
  }

  /**
   * The file's bytes as stored (LF line ends), bounded by messageBytesMax. Files up to
   * SYNC_READ_BYTES_MAX are read synchronously: from the page cache that takes microseconds, while
   * three thread-pool round trips (open, read, close) cost more than the read itself
   * (bench/mail/imap-fetch.ts); larger files are read asynchronously.
   */
  async read(e: MessageEntry): Promise<Buffer> {
    return this.#retry(e, async (cur) => {
      const path = this.filePath(cur);
      const fd = openSync(path, "r");
      try {
        const { size } = fstatSync(fd);
        if (size > this.limits.messageBytesMax) throw maildirErrors.make("MAILDIR_MESSAGE_TOO_LARGE", `UID ${e.uid}: ${size} bytes`);
        if (size <= SYNC_READ_BYTES_MAX) return readAllSync(fd, size);
      } finally {
        closeSync(fd);
      }
      return readFile(path);
    });
  }

  /** The first `bytesMax` bytes of the file (enough for the header section of most messages). */
  async readHead(e: MessageEntry, bytesMax: number): Promise<{ data: Buffer; complete: boolean }> {
    return this.#retry(e, async (cur) => {
      const fd = openSync(this.filePath(cur), "r");
      try {
        // Sized to the file: most messages are smaller than bytesMax, and big unpooled buffers cost GC time.
        const size = fstatSync(fd).size;
        const data = readAllSync(fd, Math.min(size, bytesMax));
        return { data, complete: size <= bytesMax };
      } finally {
        closeSync(fd);
      }
    });
  }

  /** The internal date (RFC 3501 2.3.3): the file's mtime, as Dovecot keeps it for Maildir. */
  async internalDate(e: MessageEntry): Promise<Date> {
    return this.#retry(e, async (cur) => (await stat(this.filePath(cur))).mtime);
  }

  /** RFC822.SIZE: W= when the name has it, else counted from the file with CRLF line ends. */
  async rfc822Size(e: MessageEntry): Promise<number> {
    if (e.vsize !== undefined) return e.vsize;
    return lfToCrlf(await this.read(e)).length;
  }

  /** Replaces the flag letters of `e` (rename into cur/); returns the updated entry. */
  async setLetters(e: MessageEntry, letters: string): Promise<MessageEntry> {
    const sorted = sortLetters(letters);
    const cur = this.#byBase.get(e.base) ?? e;
    if (cur.sub === "cur" && cur.letters === sorted) return cur;
    return this.#retry(cur, async (c) => {
      const name = curName(c.base, sorted);
      await rename(join(this.path, c.sub, c.name), join(this.path, "cur", name));
      const next: MessageEntry = { ...c, sub: "cur", name, letters: sorted };
      this.#replace(next);
      return next;
    });
  }

  #replace(e: MessageEntry): void {
    const i = this.#entries.findIndex((x) => x.uid === e.uid);
    if (i >= 0) this.#entries[i] = e;
    this.#byUid.set(e.uid, e);
    this.#byBase.set(e.base, e);
  }

  /**
   * Stores a message (RFC 3501 6.3.11 APPEND): written to tmp/ with LF line ends, fsynced, its
   * mtime set to the internal date, renamed into cur/ with its flags. Returns the new UID.
   */
  async append(message: Buffer, letters: string, internalDate: Date | undefined): Promise<number> {
    const { data, lineEnds } = crlfToLf(message);
    if (data.length > this.limits.messageBytesMax) throw maildirErrors.make("MAILDIR_MESSAGE_TOO_LARGE", `${data.length} bytes`);
    const base = this.#names.next(data.length, data.length + lineEnds);
    const tmp = join(this.path, "tmp", base);
    try {
      await mkdir(join(this.path, "tmp"), { recursive: true, mode: 0o700 });
      const h = await open(tmp, "wx", 0o600);
      try {
        await h.writeFile(data);
        await h.datasync();
      } finally {
        await h.close();
      }
      if (internalDate !== undefined) await utimes(tmp, internalDate, internalDate);
      await rename(tmp, join(this.path, "cur", curName(base, letters)));
      await syncDir(join(this.path, "cur"));
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw io(e);
    }
    await this.sync(false);
    const e = this.#byBase.get(base);
    if (e === undefined) throw maildirErrors.make("MAILDIR_IO", "appended message not found after sync");
    return e.uid;
  }

  /**
   * Copies messages into `target` (RFC 3501 6.4.7): a hard link (a copy across file systems) under
   * a fresh unique name, flags kept (keywords re-mapped to the target's letters). Returns
   * [source UID, target UID] pairs in source order.
   */
  async copyTo(target: MaildirFolder, entries: readonly MessageEntry[]): Promise<Array<readonly [number, number]>> {
    const made: Array<{ src: number; base: string }> = [];
    for (const e of entries) {
      const flags = this.flagsOf(this.#byBase.get(e.base) ?? e);
      const letters = (await target.lettersFor(flags)) + e.letters.replace(/[^A-Z]/g, "").replace(/[DFRST]/g, "");
      const size = e.size ?? 0;
      const base = target.#names.next(size, e.vsize ?? size);
      const tmp = join(target.path, "tmp", base);
      await this.#retry(e, async (cur) => {
        try {
          await link(this.filePath(cur), tmp);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
          await writeFile(tmp, await readFile(this.filePath(cur)), { mode: 0o600 });
        }
      });
      await rename(tmp, join(target.path, "cur", curName(base, letters))).catch((err: unknown) => {
        throw io(err);
      });
      made.push({ src: e.uid, base });
    }
    if (made.length > 0) await syncDir(join(target.path, "cur"));
    await target.sync(false);
    return made.map((m) => [m.src, target.#byBase.get(m.base)?.uid ?? 0] as const);
  }

  /** Removes messages (RFC 3501 6.4.3 EXPUNGE); returns the UIDs whose files are now gone. */
  async expunge(entries: readonly MessageEntry[]): Promise<number[]> {
    const gone: number[] = [];
    for (const e of entries) {
      try {
        await this.#retry(e, (cur) => unlink(this.filePath(cur)));
      } catch (err) {
        if (!isNexusError(err, "MAILDIR_MESSAGE_GONE")) throw err;
      }
      gone.push(e.uid);
    }
    if (gone.length > 0) {
      const set = new Set(gone);
      this.#entries = this.#entries.filter((x) => !set.has(x.uid));
      for (const uid of gone) {
        const x = this.#byUid.get(uid);
        this.#byUid.delete(uid);
        if (x !== undefined) this.#byBase.delete(x.base);
      }
    }
    return gone;
  }
}

/** fsync of a directory, so a rename into it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
