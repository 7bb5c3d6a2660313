/**
 * The selected state (RFC 3501 6.4): a session's view of one mailbox — its own sequence numbers
 * over the folder's UIDs — and the commands that work on it: FETCH, STORE, SEARCH, COPY, MOVE,
 * EXPUNGE and their UID forms, plus the unsolicited updates (EXISTS, RECENT, EXPUNGE, FETCH FLAGS)
 * that keep the view in step with other sessions and deliveries.
 *
 * Duties:
 * - Sequence numbers change only through EXPUNGE responses this session sent (RFC 3501 7.4.1);
 *   EXPUNGE responses MUST NOT be sent while answering FETCH, STORE or SEARCH (non-UID forms).
 * - A message expunged by another session stays in the view until reported; fetching its body
 *   answers NO [EXPUNGEISSUED] after the messages that still exist (RFC 2180 4.1.2).
 * - EXAMINE is read-only: no flag changes, no implicit \Seen, no new→cur moves.
 */
import { LETTER_OF_FLAG, lfToCrlf, type MaildirFolder, type MaildirStore, type MessageEntry } from "../maildir/index.ts";
import { isNexusError } from "../../../core/errors.ts";
import type { FetchCache } from "./cache.ts";
import { imapReject } from "./errors.ts";
import { applyPartial, bodyStructure, envelope, sectionBytes } from "./fetch.ts";
import { headerComplete, parseHeaderOnly, parseMime, type HeaderField, type MimePart } from "./mime.ts";
import { formatFetchItem, type FetchItem, type SearchKey, type SequenceSet } from "./parser.ts";
import { SearchContext, matches, type SearchSubject } from "./search.ts";
import { internalDateOut, type Chunk } from "./wire.ts";

/** Bytes read to find a header section before reading the whole file. */
export const HEAD_READ_BYTES = 16 * 1024;
/** Messages whose FETCH data is prepared ahead while earlier ones are written. */
export const FETCH_WINDOW = 16;
/** FETCH responses are written in batches of about this many bytes. */
export const FETCH_BATCH_BYTES = 64 * 1024;
/** The window when whole bodies are read (bounds memory: window × message size). */
export const FETCH_BODY_WINDOW = 4;

/** What the selected-state commands need from the session. */
export interface SelectedContext {
  readonly cache: FetchCache;
  write(chunks: readonly Chunk[]): Promise<void>;
  countFetched(n: number): void;
}

const SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/** One session's view of a selected mailbox. */
export class SelectedMailbox {
  readonly folder: MaildirFolder;
  readonly name: string;
  readonly readOnly: boolean;
  uids: number[] = [];
  readonly letters = new Map<number, string>();
  readonly recent = new Set<number>();
  #keywords = 0;
  #seenGeneration = -1;
  #expungePending = false;

  constructor(folder: MaildirFolder, name: string, readOnly: boolean) {
    this.folder = folder;
    this.name = name;
    this.readOnly = readOnly;
  }

  /** RFC 3501 6.3.1 SELECT / 6.3.2 EXAMINE: opens, syncs and returns the untagged responses. */
  static async open(store: MaildirStore, name: string, readOnly: boolean): Promise<{ sel: SelectedMailbox; lines: Chunk[] }> {
    const folder = await store.open(name);
    const sel = new SelectedMailbox(folder, name, readOnly);
    const { recent } = await folder.sync(!readOnly);
    sel.#addRecent(recent);
    for (const m of folder.messages()) {
      sel.uids.push(m.uid);
      sel.letters.set(m.uid, m.letters);
    }
    sel.#keywords = folder.keywords.length;
    sel.#seenGeneration = folder.generation;
    const firstUnseen = folder.messages().findIndex((m) => !m.letters.includes("S"));
    const lines: Chunk[] = [
      `* FLAGS (${sel.#flagList()})\r\n`,
      `* OK [PERMANENTFLAGS (${readOnly ? "" : sel.#permanent()})] Flags permitted\r\n`,
      `* ${sel.uids.length} EXISTS\r\n`,
      `* ${sel.recent.size} RECENT\r\n`,
      ...(firstUnseen >= 0 ? [`* OK [UNSEEN ${firstUnseen + 1}] First unseen\r\n`] : []),
      `* OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid\r\n`,
      `* OK [UIDNEXT ${folder.uidNext}] Predicted next UID\r\n`,
    ];
    return { sel, lines };
  }

  /**
   * RFC 3501 2.3.2 \Recent: the messages this session moved from new/ (SELECT); read-only
   * sessions move nothing, so for them the messages still in new/ count, as with Dovecot.
   */
  #addRecent(moved: readonly number[]): void {
    for (const r of moved) this.recent.add(r);
    if (this.readOnly) for (const m of this.folder.messages()) if (m.sub === "new") this.recent.add(m.uid);
  }

  #flagList(): string {
    const kw = this.folder.keywords.filter((k) => k !== "");
    return [SYSTEM_FLAGS, ...kw].join(" ");
  }

  #permanent(): string {
    return this.folder.canCreateKeywords() ? `${this.#flagList()} \\*` : this.#flagList();
  }

  /** `(\Seen kw \Recent)` for a message. */
  flagsOut(e: MessageEntry): string {
    const flags = this.folder.flagsOf(e);
    if (this.recent.has(e.uid)) flags.push("\\Recent");
    return `(${flags.join(" ")})`;
  }

  /** Indexes named by a sequence-number set; IMAP_MESSAGESET_INVALID past the last message. */
  seqIndexes(set: SequenceSet): number[] {
    const n = this.uids.length;
    const hit = new Uint8Array(n);
    for (const r of set) {
      if ((r.from !== "*" && r.from > n) || (r.to !== "*" && r.to > n)) throw imapReject("IMAP_MESSAGESET_INVALID", `only ${n} messages`);
      if (n === 0) continue;
      const a = r.from === "*" ? n : r.from;
      const b = r.to === "*" ? n : r.to;
      for (let i = Math.min(a, b) - 1; i < Math.max(a, b); i++) hit[i] = 1;
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (hit[i] === 1) out.push(i);
    return out;
  }

  /** Indexes named by a UID set (RFC 3501 6.4.8: UIDs not in the view are ignored). */
  uidIndexes(set: SequenceSet): number[] {
    const ctx = new SearchContext(this.uids);
    const members = ctx.members(set, "uid");
    const out: number[] = [];
    this.uids.forEach((u, i) => {
      if (members.has(u)) out.push(i);
    });
    return out;
  }

  /**
   * Re-reads the folder and returns the untagged updates for this session: EXPUNGE (only when
   * `allowExpunge`), EXISTS/RECENT for new messages, FETCH FLAGS for flags changed elsewhere, and
   * FLAGS/PERMANENTFLAGS when keywords were added.
   */
  async refresh(allowExpunge: boolean): Promise<Chunk[]> {
    const reread = this.folder.generation !== this.#seenGeneration;
    if (!reread && !(this.#expungePending && allowExpunge) && !(await this.folder.changed())) return [];
    if (!reread || (await this.folder.changed())) {
      const { recent } = await this.folder.sync(!this.readOnly);
      this.#addRecent(recent);
    }
    this.#seenGeneration = this.folder.generation;
    const out: Chunk[] = [];
    const msgs = this.folder.messages();
    if (allowExpunge) {
      const gone: number[] = [];
      for (let i = this.uids.length - 1; i >= 0; i--) {
        const uid = this.uids[i] ?? 0;
        if (this.folder.byUid(uid) === undefined) gone.push(i);
      }
      if (gone.length > 0) this.#removeIndexes(gone, out);
      this.#expungePending = false;
    } else {
      this.#expungePending = this.uids.some((uid) => this.folder.byUid(uid) === undefined);
    }
    const last = this.uids[this.uids.length - 1] ?? 0;
    const added = msgs.filter((m) => m.uid > last);
    for (const m of added) {
      this.uids.push(m.uid);
      this.letters.set(m.uid, m.letters);
    }
    if (this.folder.keywords.length !== this.#keywords) {
      this.#keywords = this.folder.keywords.length;
      out.push(`* FLAGS (${this.#flagList()})\r\n`, `* OK [PERMANENTFLAGS (${this.readOnly ? "" : this.#permanent()})] Flags permitted\r\n`);
    }
    if (added.length > 0) out.push(`* ${this.uids.length} EXISTS\r\n`, `* ${this.recent.size} RECENT\r\n`);
    this.uids.forEach((uid, i) => {
      const e = this.folder.byUid(uid);
      if (e !== undefined && e.letters !== this.letters.get(uid)) {
        this.letters.set(uid, e.letters);
        out.push(`* ${i + 1} FETCH (FLAGS ${this.flagsOut(e)})\r\n`);
      }
    });
    return out;
  }

  /** Drops view indexes (given descending) and writes their EXPUNGE responses (RFC 3501 7.4.1). */
  #removeIndexes(descending: readonly number[], out: Chunk[]): void {
    const drop = new Set<number>();
    for (const i of descending) {
      out.push(`* ${i + 1} EXPUNGE\r\n`);
      const uid = this.uids[i] ?? 0;
      drop.add(i);
      this.letters.delete(uid);
      this.recent.delete(uid);
    }
    this.uids = this.uids.filter((_, i) => !drop.has(i));
  }

  /** Removes `uids` from the view, returning their EXPUNGE responses (highest sequence first). */
  expungeFromView(uids: ReadonlySet<number>): Chunk[] {
    const out: Chunk[] = [];
    const idx: number[] = [];
    for (let i = this.uids.length - 1; i >= 0; i--) if (uids.has(this.uids[i] ?? 0)) idx.push(i);
    if (idx.length > 0) this.#removeIndexes(idx, out);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Message data

interface Loaded {
  readonly buf: Buffer;
  readonly root: MimePart;
}

function cacheKey(folder: MaildirFolder, e: MessageEntry): string {
  return `${folder.path}\0${e.base}`;
}

/** Loads a message lazily: header section first, whole file only when needed, MIME tree only when needed; each once. */
class MessageData {
  readonly #folder: MaildirFolder;
  readonly #entry: MessageEntry;
  #bytes: Promise<Buffer> | undefined;
  #full: Promise<Loaded> | undefined;
  #headers: Promise<readonly HeaderField[]> | undefined;

  constructor(folder: MaildirFolder, entry: MessageEntry) {
    this.#folder = folder;
    this.#entry = entry;
  }

  /** The message with CRLF line ends. */
  bytes(): Promise<Buffer> {
    this.#bytes ??= this.#folder.read(this.#entry).then(lfToCrlf);
    return this.#bytes;
  }

  full(): Promise<Loaded> {
    this.#full ??= this.bytes().then((buf) => ({ buf, root: parseMime(buf) }));
    return this.#full;
  }

  headers(): Promise<readonly HeaderField[]> {
    this.#headers ??= (async () => {
      if (this.#full !== undefined) return (await this.#full).root.headers;
      const head = await this.#folder.readHead(this.#entry, HEAD_READ_BYTES);
      const buf = lfToCrlf(head.data);
      if (head.complete || headerComplete(buf)) return parseHeaderOnly(buf).headers;
      return (await this.full()).root.headers;
    })();
    return this.#headers;
  }

  async size(): Promise<number> {
    return this.#entry.vsize ?? (await this.bytes()).length;
  }
}

// ---------------------------------------------------------------------------------------------
// FETCH (RFC 3501 6.4.5, 6.4.8)

function literal(b: Buffer): Chunk[] {
  return [`{${b.length}}\r\n`, b];
}

/** The name a BODY[...] item answers with: no .PEEK, field names in upper case (as Dovecot), only the origin of a partial. */
function bodyLabel(item: Extract<FetchItem, { type: "BODY[]" }>): string {
  const section = { ...item.section, fields: item.section.fields.map((f) => f.toUpperCase()) };
  const label = formatFetchItem({ ...item, section, peek: false, partial: undefined });
  return item.partial === undefined ? label : `${label}<${item.partial[0]}>`;
}

function needsBody(items: readonly FetchItem[]): boolean {
  return items.some((i) => i.type === "BODYSTRUCTURE" || i.type === "BODY" || i.type === "BODY[]" || (i.type.startsWith("RFC822") && i.type !== "RFC822.SIZE"));
}

async function fetchItem(item: FetchItem, e: MessageEntry, sel: SelectedMailbox, data: MessageData, cache: FetchCache): Promise<Chunk[]> {
  const key = cacheKey(sel.folder, e);
  switch (item.type) {
    case "FLAGS":
      return [`FLAGS ${sel.flagsOut(e)}`];
    case "UID":
      return [`UID ${e.uid}`];
    case "INTERNALDATE":
      return [`INTERNALDATE ${internalDateOut(await sel.folder.internalDate(e))}`];
    case "RFC822.SIZE":
      return [`RFC822.SIZE ${e.vsize ?? cache.get(key)?.size ?? (await data.size())}`];
    case "ENVELOPE": {
      let env = cache.get(key)?.envelope;
      if (env === undefined) {
        env = envelope(await data.headers()).buffer();
        cache.put(key, { envelope: env });
      }
      return ["ENVELOPE ", env];
    }
    case "BODYSTRUCTURE":
    case "BODY": {
      const c = cache.get(key);
      let bs = item.type === "BODY" ? c?.body : c?.bodyStructure;
      if (bs === undefined) {
        const { buf, root } = await data.full();
        bs = bodyStructure(buf, root, item.type === "BODYSTRUCTURE").buffer();
        cache.put(key, item.type === "BODY" ? { body: bs, size: buf.length } : { bodyStructure: bs, size: buf.length });
      }
      return [`${item.type} `, bs];
    }
    case "RFC822":
      return ["RFC822 ", ...literal(await data.bytes())];
    case "RFC822.HEADER":
    case "RFC822.TEXT": {
      const { buf, root } = await data.full();
      return [`${item.type} `, ...literal(item.type === "RFC822.HEADER" ? buf.subarray(0, root.bodyStart) : buf.subarray(root.bodyStart))];
    }
    case "BODY[]": {
      // The whole message needs no MIME tree.
      if (item.section.path.length === 0 && item.section.text === undefined) {
        return [`${bodyLabel(item)} `, ...literal(applyPartial(await data.bytes(), item.partial))];
      }
      const { buf, root } = await data.full();
      const bytes = applyPartial(sectionBytes(buf, root, item.section) ?? Buffer.alloc(0), item.partial);
      return [`${bodyLabel(item)} `, ...literal(bytes)];
    }
    default: {
      const never: never = item;
      return never;
    }
  }
}

/** One message's FETCH response, or undefined when its file is gone (expunged elsewhere). */
async function fetchOne(sel: SelectedMailbox, i: number, items: readonly FetchItem[], setSeen: boolean, cache: FetchCache): Promise<Chunk[] | undefined> {
  const uid = sel.uids[i] ?? 0;
  let e = sel.folder.byUid(uid);
  if (e === undefined) return undefined;
  let seenNow = false;
  try {
    if (setSeen && !e.letters.includes("S")) {
      e = await sel.folder.setLetters(e, e.letters + "S");
      sel.letters.set(uid, e.letters);
      seenNow = true;
    }
    const data = new MessageData(sel.folder, e);
    const parts: Chunk[][] = [];
    for (const item of items) parts.push(await fetchItem(item, e, sel, data, cache));
    // RFC 3501 6.4.5: when the fetch set \Seen, the new flags SHOULD be part of the response.
    if (seenNow && !items.some((x) => x.type === "FLAGS")) parts.push([`FLAGS ${sel.flagsOut(e)}`]);
    const out: Chunk[] = [`* ${i + 1} FETCH (`];
    parts.forEach((p, k) => out.push(...(k > 0 ? [" "] : []), ...p));
    out.push(")\r\n");
    return out;
  } catch (err) {
    if (isNexusError(err, "MAILDIR_MESSAGE_GONE")) return undefined;
    throw err;
  }
}

type Settled = { readonly ok: true; readonly value: Chunk[] | undefined } | { readonly ok: false; readonly error: unknown };

/**
 * FETCH / UID FETCH: prepares up to a window of messages ahead, writes them in order (awaiting
 * the socket), and answers NO [EXPUNGEISSUED] when some were expunged elsewhere.
 */
export async function fetchCommand(ctx: SelectedContext, sel: SelectedMailbox, idx: readonly number[], itemsIn: readonly FetchItem[], uidForm: boolean): Promise<"ok" | "gone"> {
  const items = uidForm && !itemsIn.some((i) => i.type === "UID") ? [{ type: "UID" } as const, ...itemsIn] : itemsIn;
  const setSeen = !sel.readOnly && items.some((i) => (i.type === "BODY[]" && !i.peek) || i.type === "RFC822" || i.type === "RFC822.TEXT");
  const window = needsBody(items) ? FETCH_BODY_WINDOW : FETCH_WINDOW;
  const inflight = new Map<number, Promise<Settled>>();
  let next = 0;
  let gone = 0;
  let failure: unknown;
  let batch: Chunk[] = [];
  let batchBytes = 0;
  for (let k = 0; k < idx.length; k++) {
    while (next < idx.length && next < k + window && failure === undefined) {
      const i = idx[next] ?? 0;
      inflight.set(
        next,
        fetchOne(sel, i, items, setSeen, ctx.cache).then(
          (value): Settled => ({ ok: true, value }),
          (error: unknown): Settled => ({ ok: false, error }),
        ),
      );
      next += 1;
    }
    const r = await inflight.get(k);
    inflight.delete(k);
    if (r === undefined) break;
    if (!r.ok) {
      failure ??= r.error;
      continue;
    }
    if (failure !== undefined) continue;
    if (r.value === undefined) gone += 1;
    else {
      // Responses are batched into writes of about FETCH_BATCH_BYTES: one system call per
      // message would cost more than building the message's response.
      for (const c of r.value) {
        batch.push(c);
        batchBytes += c.length;
      }
      ctx.countFetched(1);
      if (batchBytes >= FETCH_BATCH_BYTES) {
        await ctx.write(batch);
        batch = [];
        batchBytes = 0;
      }
    }
  }
  if (batch.length > 0 && failure === undefined) await ctx.write(batch);
  await Promise.all(inflight.values());
  if (failure !== undefined) throw failure;
  return gone > 0 ? "gone" : "ok";
}

// ---------------------------------------------------------------------------------------------
// STORE (RFC 3501 6.4.6)

const MANAGED = /[DFRSTa-z]/g;

/** STORE / UID STORE; returns "gone" when some messages were expunged elsewhere. */
export async function storeCommand(
  ctx: SelectedContext,
  sel: SelectedMailbox,
  idx: readonly number[],
  c: { readonly mode: "set" | "add" | "remove"; readonly silent: boolean; readonly flags: readonly string[] },
  uidForm: boolean,
): Promise<"ok" | "gone"> {
  if (sel.readOnly) throw imapReject("IMAP_READ_ONLY");
  // \Recent is session state, never stored (RFC 3501 2.3.2).
  const flags = c.flags.filter((f) => f !== "\\Recent");
  const letters = await sel.folder.lettersFor(flags, c.mode !== "remove");
  let gone = 0;
  for (const i of idx) {
    const uid = sel.uids[i] ?? 0;
    let e = sel.folder.byUid(uid);
    if (e === undefined) {
      gone += 1;
      continue;
    }
    const keep = e.letters.replace(MANAGED, "");
    const next =
      c.mode === "set" ? keep + letters : c.mode === "add" ? e.letters + letters : [...e.letters].filter((l) => !letters.includes(l)).join("");
    try {
      e = await sel.folder.setLetters(e, next);
    } catch (err) {
      if (!isNexusError(err, "MAILDIR_MESSAGE_GONE")) throw err;
      gone += 1;
      continue;
    }
    sel.letters.set(uid, e.letters);
    if (!c.silent) await ctx.write([`* ${i + 1} FETCH (FLAGS ${sel.flagsOut(e)}${uidForm ? ` UID ${uid}` : ""})\r\n`]);
  }
  return gone > 0 ? "gone" : "ok";
}

// ---------------------------------------------------------------------------------------------
// SEARCH (RFC 3501 6.4.4)

/** SEARCH / UID SEARCH: the matching sequence numbers or UIDs, ascending. */
export async function searchCommand(sel: SelectedMailbox, key: SearchKey, uidForm: boolean): Promise<number[]> {
  const ctx = new SearchContext(sel.uids);
  const out: number[] = [];
  for (let i = 0; i < sel.uids.length; i++) {
    const uid = sel.uids[i] ?? 0;
    const e = sel.folder.byUid(uid);
    if (e === undefined) continue;
    const data = new MessageData(sel.folder, e);
    const subject: SearchSubject = {
      seq: i + 1,
      uid,
      flags: sel.folder.flagsOf(e),
      recent: sel.recent.has(uid),
      size: () => data.size(),
      internalDate: () => sel.folder.internalDate(e),
      headers: () => data.headers(),
      message: () => data.full(),
    };
    try {
      if (await matches(key, subject, ctx)) out.push(uidForm ? uid : i + 1);
    } catch (err) {
      if (!isNexusError(err, "MAILDIR_MESSAGE_GONE")) throw err;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// COPY, MOVE (RFC 3501 6.4.7, RFC 6851) and EXPUNGE (RFC 3501 6.4.3, RFC 4315 UID EXPUNGE)

/** Writes UIDs as a compact set ("1:3,7") in the given order (RFC 4315 uid-set). */
export function uidSetOut(uids: readonly number[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < uids.length) {
    let j = i;
    while (j + 1 < uids.length && (uids[j + 1] ?? 0) === (uids[j] ?? 0) + 1) j += 1;
    out.push(i === j ? String(uids[i]) : `${uids[i]}:${uids[j]}`);
    i = j + 1;
  }
  return out.join(",");
}

/** COPY / MOVE into `target`: returns the COPYUID response code text (RFC 4315), or "" when nothing was copied. */
export async function copyMessages(sel: SelectedMailbox, idx: readonly number[], target: MaildirFolder): Promise<{ code: string; copied: number[] }> {
  const entries = idx.map((i) => sel.folder.byUid(sel.uids[i] ?? 0)).filter((e): e is MessageEntry => e !== undefined);
  const pairs = await target.sync(false).then(() => sel.folder.copyTo(target, entries));
  const ok = pairs.filter(([, d]) => d > 0);
  if (ok.length === 0) return { code: "", copied: [] };
  const code = `COPYUID ${target.uidValidity} ${uidSetOut(ok.map(([s]) => s))} ${uidSetOut(ok.map(([, d]) => d))}`;
  return { code, copied: ok.map(([s]) => s) };
}

/** EXPUNGE / UID EXPUNGE: removes \Deleted messages (within `only` when given) and returns their EXPUNGE responses. */
export async function expungeDeleted(sel: SelectedMailbox, only: ReadonlySet<number> | undefined): Promise<Chunk[]> {
  if (sel.readOnly) throw imapReject("IMAP_READ_ONLY");
  const doomed = sel.uids
    .map((uid) => sel.folder.byUid(uid))
    .filter((e): e is MessageEntry => e !== undefined && e.letters.includes(LETTER_OF_FLAG["\\deleted"] ?? "T") && (only === undefined || only.has(e.uid)));
  const gone = await sel.folder.expunge(doomed);
  return sel.expungeFromView(new Set(gone));
}
