/**
 * A user's Maildir (`<root>/{tmp,new,cur}` for INBOX, `<root>/.<name>/` per Maildir++ folder) as a
 * set of IMAP mailboxes: list, create, delete, rename, subscriptions, UIDVALIDITY generation.
 *
 * Everything stays in Dovecot's on-disk format so Dovecot opens the same directory as it is:
 * `maildirfolder` marks each folder, `subscriptions` is Dovecot 2.3's version-2 file (`V\t2`, an
 * empty line, then one name per line with the hierarchy separator written as a tab), and
 * `dovecot-uidvalidity` holds the last UIDVALIDITY given in hex.
 *
 * Duties: every path comes from `normalizeMailboxName`, so no name reaches outside the root
 * (gate 16); a folder's UIDVALIDITY MUST be larger than any this root gave before, so a folder
 * deleted and created again never reuses UIDs under an old UIDVALIDITY (RFC 3501 2.3.1.1).
 */
import { lstat, mkdir, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isNexusError } from "../../../core/errors.ts";
import { maildirErrors } from "./errors.ts";
import { FOLDER_LIMITS_DEFAULT, MaildirFolder, type FolderLimits } from "./folder.ts";
import { UniqueNames } from "./filename.ts";
import { withMutex } from "./lock.ts";
import { HIERARCHY_SEPARATOR, folderDirName, nameOfDir, normalizeMailboxName, parentName } from "./names.ts";
import { UID_MAX } from "./uidlist.ts";

/** Folders a Maildir may hold (directory entries looked at when listing). */
export const FOLDERS_MAX = 2_000;
/** Largest subscriptions file read. */
export const SUBSCRIPTIONS_BYTES_MAX = 1024 * 1024;

/** One folder of the store. */
export interface FolderInfo {
  /** The normalised mailbox name ("INBOX", "Sent", "Archive.2024"). */
  readonly name: string;
  /** The folder's directory. */
  readonly path: string;
}

function io(e: unknown): Error {
  return isNexusError(e) ? e : maildirErrors.make("MAILDIR_IO", (e as Error).message);
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * True when `path` is a folder: a real directory (not a symbolic link, which could lead into
 * another mailbox: gate 16) holding a real `cur/`. The Maildir root itself may be a link the
 * operator made.
 */
async function isFolder(root: string, path: string): Promise<boolean> {
  if (path === root) return isDir(join(path, "cur"));
  const [a, b] = await Promise.all([lstat(path).catch(() => undefined), lstat(join(path, "cur")).catch(() => undefined)]);
  return (a?.isDirectory() ?? false) && (b?.isDirectory() ?? false);
}

/** The mailboxes of one Maildir root. */
export class MaildirStore {
  readonly root: string;
  readonly limits: FolderLimits;
  readonly #names: UniqueNames;

  /** A store over the Maildir at `root` (the directory holding tmp, new, cur). */
  constructor(root: string, limits: FolderLimits = FOLDER_LIMITS_DEFAULT, names = new UniqueNames()) {
    this.root = root;
    this.limits = limits;
    this.#names = names;
  }

  /** Creates INBOX's tmp/new/cur (mode 0700) when missing. */
  async ensure(): Promise<void> {
    for (const sub of ["tmp", "new", "cur"]) await mkdir(join(this.root, sub), { recursive: true, mode: 0o700 }).catch((e: unknown) => {
      throw io(e);
    });
  }

  /** The directory of a mailbox name (validated; MAILDIR_NAME_INVALID otherwise). */
  folderPath(name: string): string {
    return join(this.root, folderDirName(normalizeMailboxName(name)));
  }

  /** Every folder present, INBOX first, then by name. */
  async list(): Promise<FolderInfo[]> {
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch (e) {
      throw io(e);
    }
    const out: FolderInfo[] = [{ name: "INBOX", path: this.root }];
    let looked = 0;
    for (const entry of entries.sort()) {
      const name = nameOfDir(entry);
      if (name === undefined) continue;
      if (++looked > FOLDERS_MAX) break;
      if (await isFolder(this.root, join(this.root, entry))) out.push({ name, path: join(this.root, entry) });
    }
    return out;
  }

  /** True when the mailbox exists. */
  async exists(name: string): Promise<boolean> {
    return isFolder(this.root, this.folderPath(name));
  }

  /** Opens a folder (MAILDIR_NOT_FOUND when absent); call `sync` on it before use. */
  async open(name: string): Promise<MaildirFolder> {
    const path = this.folderPath(name);
    if (!(await isFolder(this.root, path))) throw maildirErrors.make("MAILDIR_NOT_FOUND", name);
    return new MaildirFolder(path, () => this.nextUidValidity(), this.limits, this.#names);
  }

  /**
   * RFC 3501 6.3.3 CREATE: the folder directory with tmp/new/cur and `maildirfolder`; missing
   * superior names are created too ("the server SHOULD create any superior hierarchical names").
   */
  async create(name: string): Promise<void> {
    const n = normalizeMailboxName(name);
    if (n === "INBOX" || (await this.exists(n))) throw maildirErrors.make("MAILDIR_EXISTS", n);
    const parent = parentName(n);
    if (parent !== undefined && parent !== "INBOX" && !(await this.exists(parent))) await this.create(parent);
    const folders = (await this.list()).length;
    if (folders >= FOLDERS_MAX) throw maildirErrors.make("MAILDIR_TOO_MANY_FOLDERS", `${FOLDERS_MAX}`);
    const path = this.folderPath(n);
    try {
      await mkdir(path, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw maildirErrors.make("MAILDIR_EXISTS", n);
      throw io(e);
    }
    try {
      for (const sub of ["tmp", "new", "cur"]) await mkdir(join(path, sub), { mode: 0o700 });
      await writeFile(join(path, "maildirfolder"), "", { mode: 0o600 });
    } catch (e) {
      await rm(path, { recursive: true, force: true });
      throw io(e);
    }
  }

  /** RFC 3501 6.3.4 DELETE: refused for INBOX and for folders with children (as Dovecot does). */
  async delete(name: string): Promise<void> {
    const n = normalizeMailboxName(name);
    if (n === "INBOX") throw maildirErrors.make("MAILDIR_INBOX_FIXED");
    if (!(await this.exists(n))) throw maildirErrors.make("MAILDIR_NOT_FOUND", n);
    const all = await this.list();
    if (all.some((f) => f.name.startsWith(n + HIERARCHY_SEPARATOR))) throw maildirErrors.make("MAILDIR_HAS_CHILDREN", n);
    // Rename first so a concurrent reader never sees a half-deleted folder, then remove. The
    // doomed copy goes under INBOX's tmp/, which no Maildir reader lists (Dovecot included).
    const path = this.folderPath(n);
    const doomed = join(this.root, "tmp", `.deleted-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    try {
      await rename(path, doomed);
      await rm(doomed, { recursive: true, force: true });
    } catch (e) {
      throw io(e);
    }
    await this.unsubscribe(n).catch(() => undefined);
  }

  /**
   * RFC 3501 6.3.5 RENAME, with the inferior names; renaming INBOX moves its messages into the new
   * folder and leaves INBOX empty. UIDVALIDITY and UIDs travel with the directory.
   */
  async rename(from: string, to: string): Promise<void> {
    const a = normalizeMailboxName(from);
    const b = normalizeMailboxName(to);
    if (b === "INBOX" || (await this.exists(b))) throw maildirErrors.make("MAILDIR_EXISTS", b);
    if (!(await this.exists(a))) throw maildirErrors.make("MAILDIR_NOT_FOUND", a);
    if (b.startsWith(a + HIERARCHY_SEPARATOR)) throw maildirErrors.make("MAILDIR_NAME_INVALID", `${b} is inside ${a}`);
    if (a === "INBOX") return this.#renameInbox(b);
    const all = await this.list();
    const moves = all.filter((f) => f.name === a || f.name.startsWith(a + HIERARCHY_SEPARATOR)).map((f) => [f.name, b + f.name.slice(a.length)] as const);
    for (const [, dst] of moves) {
      normalizeMailboxName(dst);
      if (await this.exists(dst)) throw maildirErrors.make("MAILDIR_EXISTS", dst);
    }
    try {
      for (const [src, dst] of moves) await rename(this.folderPath(src), this.folderPath(dst));
    } catch (e) {
      throw io(e);
    }
    const subs = await this.subscriptions();
    if (subs.some((s) => s === a || s.startsWith(a + HIERARCHY_SEPARATOR))) {
      await this.#writeSubscriptions(subs.map((s) => (s === a || s.startsWith(a + HIERARCHY_SEPARATOR) ? b + s.slice(a.length) : s)));
    }
  }

  async #renameInbox(to: string): Promise<void> {
    await this.create(to);
    const inbox = await this.open("INBOX");
    await inbox.sync(false);
    const target = await this.open(to);
    await target.sync(false);
    const all = inbox.messages();
    await inbox.copyTo(target, all);
    await inbox.expunge(all);
  }

  /** A fresh UIDVALIDITY: max(now in seconds, last given + 1), recorded in `dovecot-uidvalidity`. */
  async nextUidValidity(): Promise<number> {
    return withMutex(`${this.root}\0uidvalidity`, async () => {
      const file = join(this.root, "dovecot-uidvalidity");
      const text = await readFile(file, "utf8").catch(() => "");
      const last = /^[0-9a-f]{1,8}$/.test(text.trim()) ? Number.parseInt(text.trim(), 16) : 0;
      let next = Math.max(Math.floor(Date.now() / 1000), last + 1);
      if (next > UID_MAX) next = 1;
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, next.toString(16).padStart(8, "0"), { mode: 0o600 });
      await rename(tmp, file);
      return next;
    });
  }

  /** The subscribed names (RFC 3501 6.3.6), from Dovecot's `subscriptions` file. */
  async subscriptions(): Promise<string[]> {
    const file = join(this.root, "subscriptions");
    const st = await stat(file).catch(() => undefined);
    if (st === undefined || st.size > SUBSCRIPTIONS_BYTES_MAX) return [];
    const text = await readFile(file, "utf8").catch(() => "");
    const lines = text.split("\n");
    // Version 2 (Dovecot 2.3): "V\t2", an empty line, names with tabs for separators; else one name per line.
    const body = lines[0] === "V\t2" ? lines.slice(2) : lines;
    const out: string[] = [];
    for (const line of body) {
      if (line === "") continue;
      try {
        out.push(normalizeMailboxName(line.split("\t").join(HIERARCHY_SEPARATOR)));
      } catch {
        // A name this server cannot serve is left out, not fatal.
      }
    }
    return [...new Set(out)];
  }

  /** RFC 3501 6.3.6 SUBSCRIBE. */
  async subscribe(name: string): Promise<void> {
    const n = normalizeMailboxName(name);
    const subs = await this.subscriptions();
    if (!subs.includes(n)) await this.#writeSubscriptions([...subs, n]);
  }

  /** RFC 3501 6.3.7 UNSUBSCRIBE. */
  async unsubscribe(name: string): Promise<void> {
    const n = normalizeMailboxName(name);
    const subs = await this.subscriptions();
    if (subs.includes(n)) await this.#writeSubscriptions(subs.filter((s) => s !== n));
  }

  async #writeSubscriptions(names: readonly string[]): Promise<void> {
    const file = join(this.root, "subscriptions");
    const tmp = `${file}.${process.pid}.tmp`;
    const body = names.map((n) => n.split(HIERARCHY_SEPARATOR).join("\t") + "\n").join("");
    try {
      await writeFile(tmp, `V\t2\n\n${body}`, { mode: 0o600 });
      await rename(tmp, file);
    } catch (e) {
      throw io(e);
    }
  }

  /** Creates and subscribes the given folders when missing (e.g. Drafts, Sent, Trash, Junk). */
  async ensureFolders(names: readonly string[]): Promise<void> {
    for (const n of names) {
      if (await this.exists(n)) continue;
      try {
        await this.create(n);
        await this.subscribe(n);
      } catch (e) {
        if (!isNexusError(e, "MAILDIR_EXISTS")) throw e;
      }
    }
  }
}
