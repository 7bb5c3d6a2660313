/**
 * The IMAP4rev1 command parser (RFC 3501 section 9, formal syntax): a tokenizer over one complete
 * command (CRLF-terminated, literals inline as the framer delivered them) and typed commands built
 * from its tokens. Pure: bytes in, a `TaggedCommand` out, or an ImapReplyError (IMAP_SYNTAX,
 * IMAP_COMMAND_UNKNOWN, IMAP_BADCHARSET) and nothing else, whatever the bytes.
 *
 * Bounds: list nesting (`DEPTH_MAX`), tokens per command (`TOKENS_MAX`), numbers to 32 bits,
 * sequence-set ranges (`SEQUENCE_RANGES_MAX`), search-key nesting; the framer bounds the bytes.
 */
import { imapReject, type ImapReplyError } from "./errors.ts";

/** Deepest list nesting (parenthesised search keys, BODY[HEADER.FIELDS (...)]). */
export const DEPTH_MAX = 32;
/** Most tokens in one command. */
export const TOKENS_MAX = 20_000;
/** Most ranges in one sequence set. */
export const SEQUENCE_RANGES_MAX = 10_000;
/** Largest number in a command (RFC 3501 9: number is 32-bit unsigned). */
export const NUMBER_MAX = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// Tokens

/** One token of a command. */
export type Token =
  | { readonly type: "atom"; readonly value: string }
  | { readonly type: "string"; readonly value: Buffer; readonly literal: boolean }
  | { readonly type: "list"; readonly items: readonly Token[] }
  | {
      readonly type: "section";
      readonly name: string;
      readonly section: readonly Token[];
      readonly partial: readonly [number, number] | undefined;
    };

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function syntax(detail: string): ImapReplyError {
  return imapReject("IMAP_SYNTAX", detail);
}

/** True for bytes that end an atom (RFC 3501 9 atom-specials, minus "]", "%", "*" and "\"). */
function endsAtom(c: number, inSection: boolean): boolean {
  return c <= SP || c === 0x7f || c === 0x28 || c === 0x29 || c === 0x7b || c === DQUOTE || c === 0x5b || (inSection && c === 0x5d);
}

class Reader {
  readonly buf: Buffer;
  readonly end: number;
  pos = 0;
  tokens = 0;

  constructor(buf: Buffer) {
    if (buf.length < 2 || buf[buf.length - 2] !== CR || buf[buf.length - 1] !== LF) throw syntax("command must end in CRLF");
    this.buf = buf;
    this.end = buf.length - 2;
  }

  count(): void {
    this.tokens += 1;
    if (this.tokens > TOKENS_MAX) throw syntax("too many tokens");
  }
}

function readQuoted(r: Reader): Token {
  const out: number[] = [];
  r.pos += 1;
  for (;;) {
    if (r.pos >= r.end) throw syntax("unterminated quoted string");
    const c = r.buf[r.pos] ?? 0;
    if (c === DQUOTE) {
      r.pos += 1;
      return { type: "string", value: Buffer.from(out), literal: false };
    }
    if (c === CR || c === LF || c === 0) throw syntax("CR, LF or NUL in a quoted string");
    if (c === BACKSLASH) {
      const n = r.buf[r.pos + 1];
      if (n !== DQUOTE && n !== BACKSLASH) throw syntax("only \\\" and \\\\ may be escaped in a quoted string");
      out.push(n);
      r.pos += 2;
      continue;
    }
    out.push(c);
    r.pos += 1;
  }
}

function readLiteral(r: Reader): Token {
  const m = /^\{(\d{1,10})(\+?)\}\r\n/.exec(r.buf.toString("latin1", r.pos, Math.min(r.pos + 16, r.buf.length)));
  if (!m?.[1]) throw syntax("malformed literal");
  const n = Number(m[1]);
  const start = r.pos + m[0].length;
  if (n > NUMBER_MAX || start + n > r.end) throw syntax("literal runs past the command");
  r.pos = start + n;
  return { type: "string", value: Buffer.from(r.buf.subarray(start, start + n)), literal: true };
}

function readNumberAt(r: Reader): number {
  const s = r.pos;
  while (r.pos < r.end && (r.buf[r.pos] ?? 0) >= 0x30 && (r.buf[r.pos] ?? 0) <= 0x39 && r.pos - s < 10) r.pos += 1;
  if (r.pos === s) throw syntax("number expected");
  const n = Number(r.buf.toString("latin1", s, r.pos));
  if (n > NUMBER_MAX) throw syntax("number too large");
  return n;
}

function readAtomOrSection(r: Reader, depth: number, inSection: boolean): Token {
  const s = r.pos;
  while (r.pos < r.end && !endsAtom(r.buf[r.pos] ?? 0, inSection)) r.pos += 1;
  const value = r.buf.toString("latin1", s, r.pos);
  if (r.buf[r.pos] !== 0x5b) {
    if (value.length === 0) throw syntax(`unexpected byte 0x${(r.buf[r.pos] ?? 0).toString(16)}`);
    return { type: "atom", value };
  }
  // RFC 3501 9: fetch-att "BODY" ["PEEK"] section ["<" number "." nz-number ">"]
  if (value.length === 0 || inSection) throw syntax("'[' out of place");
  r.pos += 1;
  const section = readTokens(r, depth + 1, "]");
  let partial: readonly [number, number] | undefined;
  if (r.buf[r.pos] === 0x3c) {
    r.pos += 1;
    const start = readNumberAt(r);
    if (r.buf[r.pos] !== 0x2e) throw syntax("partial needs <start.length>");
    r.pos += 1;
    const length = readNumberAt(r);
    if (r.buf[r.pos] !== 0x3e || length === 0) throw syntax("partial needs <start.length> with length > 0");
    r.pos += 1;
    partial = [start, length];
  }
  return { type: "section", name: value, section, partial };
}

function readTokens(r: Reader, depth: number, closer: ")" | "]" | undefined): Token[] {
  if (depth > DEPTH_MAX) throw syntax("lists nested too deeply");
  const out: Token[] = [];
  for (;;) {
    while (r.pos < r.end && r.buf[r.pos] === SP) r.pos += 1;
    if (r.pos >= r.end) {
      if (closer !== undefined) throw syntax(`missing '${closer}'`);
      return out;
    }
    const c = r.buf[r.pos] ?? 0;
    if (c === 0x29 || (c === 0x5d && closer === "]")) {
      if ((c === 0x29 ? ")" : "]") !== closer) throw syntax(`unexpected '${String.fromCharCode(c)}'`);
      r.pos += 1;
      return out;
    }
    r.count();
    if (c === 0x28) {
      r.pos += 1;
      out.push({ type: "list", items: readTokens(r, depth + 1, ")") });
    } else if (c === DQUOTE) out.push(readQuoted(r));
    else if (c === 0x7b) out.push(readLiteral(r));
    else out.push(readAtomOrSection(r, depth, closer === "]"));
    const next = r.buf[r.pos];
    // Lists may follow lists without a space: RFC 3501 9 writes address and body lists that way.
    const listAfterList = next === 0x28 && out[out.length - 1]?.type === "list";
    if (r.pos < r.end && next !== SP && next !== 0x29 && !listAfterList && !(next === 0x5d && closer === "]")) {
      throw syntax("tokens must be separated by a space");
    }
  }
}

/** Splits a complete command (ending in CRLF, literals inline) into tokens. */
export function tokenize(command: Buffer): Token[] {
  const r = new Reader(command);
  return readTokens(r, 0, undefined);
}

// ---------------------------------------------------------------------------------------------
// Sequence sets (RFC 3501 9: sequence-set)

/** A sequence number or UID; "*" is the largest in use. */
export type SeqNumber = number | "*";
/** One range of a sequence set (a single number has from === to). */
export interface SeqRange {
  readonly from: SeqNumber;
  readonly to: SeqNumber;
}
/** A parsed sequence set. */
export type SequenceSet = readonly SeqRange[];

function seqNumber(s: string): SeqNumber {
  if (s === "*") return "*";
  if (!/^[1-9]\d{0,9}$/.test(s)) throw syntax(`bad sequence number ${JSON.stringify(s.slice(0, 20))}`);
  const n = Number(s);
  if (n > NUMBER_MAX) throw syntax("sequence number too large");
  return n;
}

/** Parses a sequence set such as `1:4,7,9:*`. */
export function parseSequenceSet(s: string): SequenceSet {
  const parts = s.split(",");
  if (parts.length > SEQUENCE_RANGES_MAX) throw syntax("sequence set too long");
  return parts.map((p) => {
    const colon = p.indexOf(":");
    if (colon < 0) {
      const n = seqNumber(p);
      return { from: n, to: n };
    }
    return { from: seqNumber(p.slice(0, colon)), to: seqNumber(p.slice(colon + 1)) };
  });
}

/** Writes a sequence set back in its wire form. */
export function formatSequenceSet(set: SequenceSet): string {
  return set.map((r) => (r.from === r.to ? String(r.from) : `${r.from}:${r.to}`)).join(",");
}

/**
 * The members of `set` among `values` (ascending): "*" is the largest value (RFC 3501 6.4.8),
 * a range matches in either order. Returns indexes into `values`, ascending, without duplicates.
 */
export function resolveSequenceSet(set: SequenceSet, values: readonly number[]): number[] {
  const max = values.length === 0 ? 0 : (values[values.length - 1] ?? 0);
  const hit = new Uint8Array(values.length);
  for (const r of set) {
    const a = r.from === "*" ? max : r.from;
    const b = r.to === "*" ? max : r.to;
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    let i = lowerBound(values, lo);
    while (i < values.length && (values[i] ?? 0) <= hi) hit[i++] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < hit.length; i++) if (hit[i] === 1) out.push(i);
  return out;
}

function lowerBound(values: readonly number[], x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((values[mid] ?? 0) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// FETCH items (RFC 3501 6.4.5)

/** A body section (RFC 3501 6.4.5 BODY[<section>]). */
export interface Section {
  /** Part numbers ("1.2" → [1, 2]); empty for the whole message. */
  readonly path: readonly number[];
  readonly text: "HEADER" | "HEADER.FIELDS" | "HEADER.FIELDS.NOT" | "TEXT" | "MIME" | undefined;
  /** Field names of HEADER.FIELDS[.NOT], as given. */
  readonly fields: readonly string[];
}

/** One FETCH data item. */
export type FetchItem =
  | { readonly type: "FLAGS" | "UID" | "INTERNALDATE" | "RFC822.SIZE" | "ENVELOPE" | "BODYSTRUCTURE" | "BODY" }
  | { readonly type: "RFC822" | "RFC822.HEADER" | "RFC822.TEXT" }
  | {
      readonly type: "BODY[]";
      readonly peek: boolean;
      readonly section: Section;
      readonly partial: readonly [number, number] | undefined;
    };

const SIMPLE_ITEMS = new Set(["FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]);
const MACROS: Readonly<Record<string, readonly FetchItem[]>> = {
  ALL: [{ type: "FLAGS" }, { type: "INTERNALDATE" }, { type: "RFC822.SIZE" }, { type: "ENVELOPE" }],
  FAST: [{ type: "FLAGS" }, { type: "INTERNALDATE" }, { type: "RFC822.SIZE" }],
  FULL: [{ type: "FLAGS" }, { type: "INTERNALDATE" }, { type: "RFC822.SIZE" }, { type: "ENVELOPE" }, { type: "BODY" }],
};

function astringText(t: Token | undefined, what: string): string {
  if (t?.type === "atom") return t.value;
  if (t?.type === "string") return t.value.toString("utf8");
  throw syntax(`${what} expected`);
}

function parseSection(tokens: readonly Token[]): Section {
  if (tokens.length === 0) return { path: [], text: undefined, fields: [] };
  const [spec, list, ...rest] = tokens;
  if (spec?.type !== "atom" || rest.length > 0) throw syntax("bad section");
  const parts = spec.value.toUpperCase().split(".");
  const path: number[] = [];
  while (parts.length > 0 && /^[1-9]\d{0,9}$/.test(parts[0] ?? "")) {
    const n = Number(parts.shift());
    if (n > NUMBER_MAX) throw syntax("part number too large");
    path.push(n);
  }
  const text = parts.join(".");
  if (text === "") {
    if (list !== undefined || path.length === 0) throw syntax("bad section");
    return { path, text: undefined, fields: [] };
  }
  if (text === "HEADER.FIELDS" || text === "HEADER.FIELDS.NOT") {
    if (list?.type !== "list" || list.items.length === 0) throw syntax(`${text} needs a list of field names`);
    const fields = list.items.map((t) => astringText(t, "field name"));
    if (!fields.every((f) => /^[\x21-\x39\x3b-\x7e]+$/.test(f))) throw syntax("bad header field name");
    return { path, text, fields };
  }
  if (list !== undefined) throw syntax("bad section");
  if (text === "HEADER" || text === "TEXT") return { path, text, fields: [] };
  if (text === "MIME" && path.length > 0) return { path, text, fields: [] };
  throw syntax(`bad section text ${JSON.stringify(text.slice(0, 30))}`);
}

function fetchItem(t: Token): FetchItem {
  if (t.type === "atom") {
    const v = t.value.toUpperCase();
    if (SIMPLE_ITEMS.has(v)) return { type: v } as FetchItem;
    throw syntax(`unknown fetch item ${JSON.stringify(t.value.slice(0, 30))}`);
  }
  if (t.type === "section") {
    const name = t.name.toUpperCase();
    if (name !== "BODY" && name !== "BODY.PEEK") throw syntax(`unsupported fetch item ${JSON.stringify(t.name.slice(0, 30))}`);
    return { type: "BODY[]", peek: name === "BODY.PEEK", section: parseSection(t.section), partial: t.partial };
  }
  throw syntax("fetch item expected");
}

/** FETCH items: a macro (ALL, FAST, FULL), one item, or a list of items. */
export function parseFetchItems(t: Token | undefined): FetchItem[] {
  if (t === undefined) throw syntax("fetch items expected");
  if (t.type === "atom") {
    const macro = MACROS[t.value.toUpperCase()];
    if (macro !== undefined) return [...macro];
  }
  if (t.type === "list") {
    if (t.items.length === 0) throw syntax("empty fetch item list");
    return t.items.map(fetchItem);
  }
  return [fetchItem(t)];
}

/** Writes a FETCH item in its command form. */
export function formatFetchItem(f: FetchItem): string {
  if (f.type !== "BODY[]") return f.type;
  const s = f.section;
  const spec = [...s.path.map(String), ...(s.text === undefined ? [] : [s.text])].join(".");
  const fields = s.fields.length > 0 ? ` (${s.fields.join(" ")})` : "";
  const partial = f.partial === undefined ? "" : `<${f.partial[0]}.${f.partial[1]}>`;
  return `${f.peek ? "BODY.PEEK" : "BODY"}[${spec}${fields}]${partial}`;
}

// ---------------------------------------------------------------------------------------------
// SEARCH keys (RFC 3501 6.4.4)

/** A day as days since 1970-01-01 (UTC), for the date search keys. */
export type Day = number;

/** One search key. */
export type SearchKey =
  | { readonly type: "all" }
  | { readonly type: "flag"; readonly flag: string; readonly set: boolean }
  | { readonly type: "recent"; readonly set: boolean }
  | { readonly type: "new" }
  | { readonly type: "header"; readonly field: string; readonly value: string }
  | { readonly type: "body" | "text"; readonly value: string }
  | { readonly type: "internal" | "sent"; readonly op: "before" | "on" | "since"; readonly day: Day }
  | { readonly type: "size"; readonly op: "larger" | "smaller"; readonly n: number }
  | { readonly type: "seq" | "uid"; readonly set: SequenceSet }
  | { readonly type: "not"; readonly key: SearchKey }
  | { readonly type: "or"; readonly a: SearchKey; readonly b: SearchKey }
  | { readonly type: "and"; readonly keys: readonly SearchKey[] };

const FLAG_KEYS: Readonly<Record<string, readonly [string, boolean]>> = {
  ANSWERED: ["\\Answered", true],
  DELETED: ["\\Deleted", true],
  DRAFT: ["\\Draft", true],
  FLAGGED: ["\\Flagged", true],
  SEEN: ["\\Seen", true],
  UNANSWERED: ["\\Answered", false],
  UNDELETED: ["\\Deleted", false],
  UNDRAFT: ["\\Draft", false],
  UNFLAGGED: ["\\Flagged", false],
  UNSEEN: ["\\Seen", false],
};
const HEADER_KEYS: Readonly<Record<string, string>> = { BCC: "bcc", CC: "cc", FROM: "from", SUBJECT: "subject", TO: "to" };
const DATE_KEYS: Readonly<Record<string, readonly ["internal" | "sent", "before" | "on" | "since"]>> = {
  BEFORE: ["internal", "before"],
  ON: ["internal", "on"],
  SINCE: ["internal", "since"],
  SENTBEFORE: ["sent", "before"],
  SENTON: ["sent", "on"],
  SENTSINCE: ["sent", "since"],
};
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Parses RFC 3501 9 date-text (`1-Feb-1994`) into a Day. */
export function parseDay(s: string): Day {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  const month = MONTHS.indexOf((m?.[2] ?? "").toUpperCase());
  const day = Number(m?.[1]);
  const year = Number(m?.[3]);
  if (!m || month < 0 || day < 1 || day > 31) throw syntax(`bad date ${JSON.stringify(s.slice(0, 20))}`);
  const t = Date.UTC(year, month, day);
  if (new Date(t).getUTCDate() !== day) throw syntax(`no such date ${s}`);
  return Math.floor(t / 86_400_000);
}

/** Writes a Day as RFC 3501 date-text. */
export function formatDay(day: Day): string {
  const d = new Date(day * 86_400_000);
  return `${d.getUTCDate()}-${MONTH_NAMES[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
}

class KeyReader {
  readonly tokens: readonly Token[];
  i = 0;
  constructor(tokens: readonly Token[]) {
    this.tokens = tokens;
  }
  next(what: string): Token {
    const t = this.tokens[this.i++];
    if (t === undefined) throw syntax(`${what} expected`);
    return t;
  }
  text(what: string): string {
    return astringText(this.next(what), what);
  }
  number(what: string): number {
    const t = this.next(what);
    if (t.type !== "atom" || !/^\d{1,10}$/.test(t.value) || Number(t.value) > NUMBER_MAX) throw syntax(`${what} expected`);
    return Number(t.value);
  }
}

function searchKey(r: KeyReader, depth: number): SearchKey {
  if (depth > DEPTH_MAX) throw syntax("search keys nested too deeply");
  const t = r.next("search key");
  if (t.type === "list") {
    if (t.items.length === 0) throw syntax("empty search key list");
    const inner = new KeyReader(t.items);
    const keys: SearchKey[] = [];
    while (inner.i < t.items.length) keys.push(searchKey(inner, depth + 1));
    return keys.length === 1 && keys[0] !== undefined ? keys[0] : { type: "and", keys };
  }
  if (t.type !== "atom") throw syntax("search key expected");
  const k = t.value.toUpperCase();
  const flag = FLAG_KEYS[k];
  if (flag !== undefined) return { type: "flag", flag: flag[0], set: flag[1] };
  const header = HEADER_KEYS[k];
  if (header !== undefined) return { type: "header", field: header, value: r.text("search string") };
  const date = DATE_KEYS[k];
  if (date !== undefined) return { type: date[0], op: date[1], day: parseDay(r.text("date")) };
  switch (k) {
    case "ALL":
      return { type: "all" };
    case "NEW":
      return { type: "new" };
    case "OLD":
      return { type: "recent", set: false };
    case "RECENT":
      return { type: "recent", set: true };
    case "KEYWORD":
    case "UNKEYWORD": {
      const kw = r.next("keyword");
      if (kw.type !== "atom" || kw.value.startsWith("\\")) throw syntax("keyword expected");
      return { type: "flag", flag: kw.value, set: k === "KEYWORD" };
    }
    case "HEADER": {
      const field = r.text("header field name");
      return { type: "header", field: field.toLowerCase(), value: r.text("search string") };
    }
    case "BODY":
    case "TEXT":
      return { type: k === "BODY" ? "body" : "text", value: r.text("search string") };
    case "LARGER":
    case "SMALLER":
      return { type: "size", op: k === "LARGER" ? "larger" : "smaller", n: r.number("size") };
    case "UID": {
      const s = r.next("UID set");
      if (s.type !== "atom") throw syntax("UID set expected");
      return { type: "uid", set: parseSequenceSet(s.value) };
    }
    case "NOT":
      return { type: "not", key: searchKey(r, depth + 1) };
    case "OR": {
      const a = searchKey(r, depth + 1);
      return { type: "or", a, b: searchKey(r, depth + 1) };
    }
    default:
      if (/^[\d*]/.test(k)) return { type: "seq", set: parseSequenceSet(t.value) };
      throw syntax(`unknown search key ${JSON.stringify(t.value.slice(0, 30))}`);
  }
}

/** Parses search keys (all of them must match: an implicit AND). */
export function parseSearchKeys(tokens: readonly Token[]): SearchKey {
  const r = new KeyReader(tokens);
  const keys: SearchKey[] = [];
  while (r.i < tokens.length) keys.push(searchKey(r, 0));
  if (keys.length === 0) throw syntax("search key expected");
  return keys.length === 1 && keys[0] !== undefined ? keys[0] : { type: "and", keys };
}

/** Writes a quoted string (for the command forms written by `formatCommand`). */
export function quoteString(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

const KEY_OF_FLAG: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(FLAG_KEYS).map(([k, [f, set]]) => [`${f}:${set}`, k]),
);
const KEY_OF_HEADER: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(HEADER_KEYS).map(([k, f]) => [f, k]));

/** Writes search keys in their command form. */
export function formatSearchKey(k: SearchKey): string {
  switch (k.type) {
    case "all":
      return "ALL";
    case "new":
      return "NEW";
    case "recent":
      return k.set ? "RECENT" : "OLD";
    case "flag":
      return KEY_OF_FLAG[`${k.flag}:${k.set}`] ?? `${k.set ? "KEYWORD" : "UNKEYWORD"} ${k.flag}`;
    case "header": {
      const short = KEY_OF_HEADER[k.field];
      return short !== undefined ? `${short} ${quoteString(k.value)}` : `HEADER ${quoteString(k.field)} ${quoteString(k.value)}`;
    }
    case "body":
    case "text":
      return `${k.type.toUpperCase()} ${quoteString(k.value)}`;
    case "internal":
    case "sent":
      return `${k.type === "sent" ? "SENT" : ""}${k.op.toUpperCase()} ${formatDay(k.day)}`;
    case "size":
      return `${k.op.toUpperCase()} ${k.n}`;
    case "seq":
      return formatSequenceSet(k.set);
    case "uid":
      return `UID ${formatSequenceSet(k.set)}`;
    case "not":
      return `NOT ${formatSearchKey(k.key)}`;
    case "or":
      return `OR ${formatSearchKey(k.a)} ${formatSearchKey(k.b)}`;
    case "and":
      return `(${k.keys.map(formatSearchKey).join(" ")})`;
    default: {
      const never: never = k;
      return never;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commands (RFC 3501 6)

/** STATUS data items (RFC 3501 6.3.10). */
export const STATUS_ITEMS = ["MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"] as const;
/** One STATUS item. */
export type StatusItem = (typeof STATUS_ITEMS)[number];

/** Commands without arguments. */
export const BARE_COMMANDS = ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "IDLE", "NAMESPACE"] as const;

/** A parsed command. */
export type Command =
  | { readonly name: (typeof BARE_COMMANDS)[number] }
  | { readonly name: "LOGIN"; readonly user: string; readonly password: string }
  | { readonly name: "AUTHENTICATE"; readonly mechanism: string; readonly initial: string | undefined }
  | { readonly name: "SELECT" | "EXAMINE" | "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE"; readonly mailbox: string }
  | { readonly name: "RENAME"; readonly from: string; readonly to: string }
  | { readonly name: "LIST" | "LSUB"; readonly reference: string; readonly pattern: string }
  | { readonly name: "STATUS"; readonly mailbox: string; readonly items: readonly StatusItem[] }
  | {
      readonly name: "APPEND";
      readonly mailbox: string;
      readonly flags: readonly string[];
      readonly date: Date | undefined;
      readonly message: Buffer;
    }
  | { readonly name: "FETCH"; readonly uid: boolean; readonly set: SequenceSet; readonly items: readonly FetchItem[] }
  | {
      readonly name: "STORE";
      readonly uid: boolean;
      readonly set: SequenceSet;
      readonly mode: "set" | "add" | "remove";
      readonly silent: boolean;
      readonly flags: readonly string[];
    }
  | { readonly name: "SEARCH"; readonly uid: boolean; readonly charset: string | undefined; readonly key: SearchKey }
  | { readonly name: "COPY" | "MOVE"; readonly uid: boolean; readonly set: SequenceSet; readonly mailbox: string }
  | { readonly name: "UID EXPUNGE"; readonly set: SequenceSet }
  | { readonly name: "ID"; readonly params: ReadonlyArray<readonly [string, string | undefined]> | undefined };

/** A command with its tag. */
export interface TaggedCommand {
  readonly tag: string;
  readonly command: Command;
}

/** RFC 3501 9: tag = 1*<any ASTRING-CHAR except "+">. */
export const TAG_RE = /^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c\x7e]{1,64}$/;

/** The tag at the start of a raw command line, if it has a valid one (for replies to bad commands). */
export function tagOf(line: Buffer): string | undefined {
  const sp = line.indexOf(SP);
  const crlf = line.indexOf(CR);
  const end = sp < 0 ? crlf : crlf < 0 ? sp : Math.min(sp, crlf);
  const tag = line.toString("latin1", 0, end < 0 ? Math.min(line.length, 65) : end);
  return TAG_RE.test(tag) ? tag : undefined;
}

// Mailbox names are modified UTF-7 (RFC 3501 5.1.3), 7-bit: latin1 keeps any 8-bit byte visible to the name check.
function mailboxOf(t: Token | undefined): string {
  if (t?.type === "atom") return t.value;
  if (t?.type === "string") return t.value.toString("latin1");
  throw syntax("mailbox name expected");
}

// RFC 3501 9: list-mailbox = 1*list-char / string; list-char includes "%", "*" and "]".
function listMailboxOf(t: Token | undefined): string {
  return mailboxOf(t);
}

function flagOf(t: Token): string {
  if (t.type !== "atom" || !/^\\?[\x21\x23-\x27\x2b-\x5a\x5c\x5e-\x7a\x7c\x7e]+$/.test(t.value) || t.value.length > 100) {
    throw syntax("flag expected");
  }
  if (t.value.startsWith("\\") && !/^\\(Answered|Flagged|Deleted|Seen|Draft|Recent)$/i.test(t.value)) {
    throw syntax(`unknown system flag ${t.value.slice(0, 30)}`);
  }
  if (t.value.slice(1).includes("\\")) throw syntax("flag expected");
  const canon = /^\\(answered|flagged|deleted|seen|draft|recent)$/i.exec(t.value);
  return canon?.[1] ? `\\${canon[1][0]?.toUpperCase()}${canon[1].slice(1).toLowerCase()}` : t.value;
}

function flagListOf(t: Token | undefined, allowBare: boolean): string[] {
  if (t?.type === "list") return t.items.map(flagOf);
  if (allowBare && t !== undefined) return [flagOf(t)];
  throw syntax("flag list expected");
}

const DATE_TIME_RE = /^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/;

/** Parses RFC 3501 9 date-time (`"17-Jul-1996 02:44:25 -0700"`). */
export function parseDateTime(s: string): Date {
  const m = DATE_TIME_RE.exec(s);
  const month = MONTHS.indexOf((m?.[2] ?? "").toUpperCase());
  if (!m || month < 0) throw syntax("bad date-time");
  const [day, year, hh, mm, ss, zh, zm] = [m[1], m[3], m[4], m[5], m[6], m[8], m[9]].map((x) => Number((x ?? "").trim()));
  if ([day, year, hh, mm, ss, zh, zm].some((x) => x === undefined || Number.isNaN(x))) throw syntax("bad date-time");
  const d = day ?? 0;
  if (d < 1 || d > 31 || (hh ?? 0) > 23 || (mm ?? 0) > 59 || (ss ?? 0) > 60 || (zm ?? 0) > 59) throw syntax("bad date-time");
  const offsetMin = (m[7] === "-" ? -1 : 1) * ((zh ?? 0) * 60 + (zm ?? 0));
  const t = Date.UTC(year ?? 0, month, d, hh, mm, ss) - offsetMin * 60_000;
  if (new Date(Date.UTC(year ?? 0, month, d)).getUTCDate() !== d) throw syntax("no such date");
  return new Date(t);
}

function expectEnd(args: readonly Token[], n: number): void {
  if (args.length > n) throw syntax("too many arguments");
  if (args.length < n) throw syntax("missing arguments");
}

function seqSetOf(t: Token | undefined): SequenceSet {
  if (t?.type !== "atom") throw syntax("sequence set expected");
  return parseSequenceSet(t.value);
}

function parseStore(uid: boolean, args: readonly Token[]): Command {
  expectEnd(args, 3);
  const [set, item, flags] = args;
  if (item?.type !== "atom") throw syntax("STORE data item expected");
  const m = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(item.value);
  if (!m) throw syntax("STORE data item must be [+|-]FLAGS[.SILENT]");
  const mode = m[1] === "+" ? "add" : m[1] === "-" ? "remove" : "set";
  return { name: "STORE", uid, set: seqSetOf(set), mode, silent: m[2] !== undefined, flags: flagListOf(flags, true) };
}

function parseSearch(uid: boolean, args: readonly Token[]): Command {
  let rest = args;
  let charset: string | undefined;
  const first = args[0];
  if (first?.type === "atom" && first.value.toUpperCase() === "CHARSET") {
    charset = astringText(args[1], "charset").toUpperCase();
    rest = args.slice(2);
    if (charset !== "US-ASCII" && charset !== "UTF-8") throw imapReject("IMAP_BADCHARSET", charset.slice(0, 40));
  }
  return { name: "SEARCH", uid, charset, key: parseSearchKeys(rest) };
}

function parseAppend(args: readonly Token[]): Command {
  const mailbox = mailboxOf(args[0]);
  let i = 1;
  let flags: string[] = [];
  let date: Date | undefined;
  if (args[i]?.type === "list") flags = flagListOf(args[i++], false);
  const d = args[i];
  if (d?.type === "string" && !d.literal) {
    date = parseDateTime(d.value.toString("latin1"));
    i += 1;
  }
  const msg = args[i];
  if (msg?.type !== "string" || !msg.literal) throw syntax("APPEND needs the message as a literal");
  expectEnd(args, i + 1);
  if (flags.some((f) => f.toLowerCase() === "\\recent")) throw syntax("\\Recent cannot be set");
  return { name: "APPEND", mailbox, flags, date, message: msg.value };
}

function parseId(args: readonly Token[]): Command {
  expectEnd(args, 1);
  const t = args[0];
  if (t?.type === "atom" && t.value.toUpperCase() === "NIL") return { name: "ID", params: undefined };
  if (t?.type !== "list" || t.items.length % 2 !== 0 || t.items.length > 60) throw syntax("ID needs NIL or a list of pairs");
  const params: Array<readonly [string, string | undefined]> = [];
  for (let i = 0; i < t.items.length; i += 2) {
    const k = t.items[i];
    const v = t.items[i + 1];
    if (k?.type !== "string") throw syntax("ID field names are strings");
    const value = v?.type === "atom" && v.value.toUpperCase() === "NIL" ? undefined : astringText(v, "ID value");
    params.push([k.value.toString("utf8"), value]);
  }
  return { name: "ID", params };
}

function parseUid(args: readonly Token[]): Command {
  const sub = args[0];
  if (sub?.type !== "atom") throw syntax("UID needs a command");
  const name = sub.value.toUpperCase();
  const rest = args.slice(1);
  switch (name) {
    case "FETCH":
    case "STORE":
    case "SEARCH":
    case "COPY":
    case "MOVE":
      return parseBody(name, rest, true);
    case "EXPUNGE":
      expectEnd(rest, 1);
      return { name: "UID EXPUNGE", set: seqSetOf(rest[0]) };
    default:
      throw imapReject("IMAP_COMMAND_UNKNOWN", `UID ${name.slice(0, 20)}`);
  }
}

function parseBody(name: string, args: readonly Token[], uid: boolean): Command {
  switch (name) {
    case "FETCH": {
      expectEnd(args, 2);
      return { name, uid, set: seqSetOf(args[0]), items: parseFetchItems(args[1]) };
    }
    case "STORE":
      return parseStore(uid, args);
    case "SEARCH":
      return parseSearch(uid, args);
    case "COPY":
    case "MOVE":
      expectEnd(args, 2);
      return { name, uid, set: seqSetOf(args[0]), mailbox: mailboxOf(args[1]) };
    default:
      throw imapReject("IMAP_COMMAND_UNKNOWN", name.slice(0, 20));
  }
}

function parseNamed(name: string, args: readonly Token[]): Command {
  if ((BARE_COMMANDS as readonly string[]).includes(name)) {
    expectEnd(args, 0);
    return { name } as Command;
  }
  switch (name) {
    case "LOGIN":
      expectEnd(args, 2);
      return { name, user: astringText(args[0], "user name"), password: astringText(args[1], "password") };
    case "AUTHENTICATE": {
      if (args.length < 1 || args.length > 2) throw syntax("AUTHENTICATE needs a mechanism");
      const m = args[0];
      if (m?.type !== "atom") throw syntax("mechanism expected");
      const ir = args[1];
      if (ir !== undefined && ir.type !== "atom") throw syntax("initial response must be base64 or '='");
      return { name, mechanism: m.value.toUpperCase(), initial: ir?.value };
    }
    case "SELECT":
    case "EXAMINE":
    case "CREATE":
    case "DELETE":
    case "SUBSCRIBE":
    case "UNSUBSCRIBE":
      expectEnd(args, 1);
      return { name, mailbox: mailboxOf(args[0]) };
    case "RENAME":
      expectEnd(args, 2);
      return { name, from: mailboxOf(args[0]), to: mailboxOf(args[1]) };
    case "LIST":
    case "LSUB":
      expectEnd(args, 2);
      return { name, reference: mailboxOf(args[0]), pattern: listMailboxOf(args[1]) };
    case "STATUS": {
      expectEnd(args, 2);
      const list = args[1];
      if (list?.type !== "list" || list.items.length === 0) throw syntax("STATUS needs a list of items");
      const items = list.items.map((t) => {
        const v = t.type === "atom" ? t.value.toUpperCase() : "";
        if (!(STATUS_ITEMS as readonly string[]).includes(v)) throw syntax("unknown STATUS item");
        return v as StatusItem;
      });
      return { name, mailbox: mailboxOf(args[0]), items };
    }
    case "APPEND":
      return parseAppend(args);
    case "ID":
      return parseId(args);
    case "UID":
      return parseUid(args);
    default:
      return parseBody(name, args, false);
  }
}

/** Parses one complete command (tag, name, arguments; literals inline; ending in CRLF). */
export function parseCommand(bytes: Buffer): TaggedCommand {
  const tokens = tokenize(bytes);
  const [tagToken, nameToken, ...args] = tokens;
  if (tagToken?.type !== "atom" || !TAG_RE.test(tagToken.value)) throw syntax("tag expected");
  if (nameToken?.type !== "atom") throw syntax("command name expected");
  return { tag: tagToken.value, command: parseNamed(nameToken.value.toUpperCase(), args) };
}

// ---------------------------------------------------------------------------------------------
// Writing commands (the client side; used for round-trip laws and by tests)

function astringOut(s: string): string {
  if (/^[\x21\x23-\x27\x2a-\x5b\x5d-\x7a\x7c\x7e]+$/.test(s) && s.toUpperCase() !== "NIL") return s;
  return quoteString(s);
}

function literalOut(b: Buffer): Buffer[] {
  return [Buffer.from(`{${b.length}}\r\n`, "latin1"), b];
}

const MONTH_TITLE = MONTH_NAMES;

/** Writes a Date as RFC 3501 date-time in UTC. */
export function formatDateTime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}-${MONTH_TITLE[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function storeItem(c: Extract<Command, { name: "STORE" }>): string {
  return `${c.mode === "add" ? "+" : c.mode === "remove" ? "-" : ""}FLAGS${c.silent ? ".SILENT" : ""}`;
}

/** Writes a command in wire form (CRLF-terminated; quoted strings for text, literals for messages). */
export function formatCommand(tc: TaggedCommand): Buffer {
  const c = tc.command;
  const u = "uid" in c && c.uid ? "UID " : "";
  const parts: Array<string | Buffer> = [`${tc.tag} `];
  switch (c.name) {
    case "LOGIN":
      parts.push(`LOGIN ${quoteString(c.user)} ${quoteString(c.password)}`);
      break;
    case "AUTHENTICATE":
      parts.push(`AUTHENTICATE ${c.mechanism}${c.initial === undefined ? "" : ` ${c.initial}`}`);
      break;
    case "SELECT":
    case "EXAMINE":
    case "CREATE":
    case "DELETE":
    case "SUBSCRIBE":
    case "UNSUBSCRIBE":
      parts.push(`${c.name} ${astringOut(c.mailbox)}`);
      break;
    case "RENAME":
      parts.push(`RENAME ${astringOut(c.from)} ${astringOut(c.to)}`);
      break;
    case "LIST":
    case "LSUB":
      parts.push(`${c.name} ${quoteString(c.reference)} ${quoteString(c.pattern)}`);
      break;
    case "STATUS":
      parts.push(`STATUS ${astringOut(c.mailbox)} (${c.items.join(" ")})`);
      break;
    case "APPEND":
      parts.push(`APPEND ${astringOut(c.mailbox)} `);
      if (c.flags.length > 0) parts.push(`(${c.flags.join(" ")}) `);
      if (c.date !== undefined) parts.push(`"${formatDateTime(c.date)}" `);
      parts.push(...literalOut(c.message));
      break;
    case "FETCH":
      parts.push(`${u}FETCH ${formatSequenceSet(c.set)} (${c.items.map(formatFetchItem).join(" ")})`);
      break;
    case "STORE":
      parts.push(`${u}STORE ${formatSequenceSet(c.set)} ${storeItem(c)} (${c.flags.join(" ")})`);
      break;
    case "SEARCH":
      parts.push(`${u}SEARCH ${c.charset === undefined ? "" : `CHARSET ${c.charset} `}${formatSearchKey(c.key)}`);
      break;
    case "COPY":
    case "MOVE":
      parts.push(`${u}${c.name} ${formatSequenceSet(c.set)} ${astringOut(c.mailbox)}`);
      break;
    case "UID EXPUNGE":
      parts.push(`UID EXPUNGE ${formatSequenceSet(c.set)}`);
      break;
    case "ID":
      parts.push(
        c.params === undefined ? "ID NIL" : `ID (${c.params.map(([k, v]) => `${quoteString(k)} ${v === undefined ? "NIL" : quoteString(v)}`).join(" ")})`,
      );
      break;
    default:
      parts.push(c.name);
  }
  parts.push("\r\n");
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)));
}
