/**
 * SEARCH (RFC 3501 6.4.4): evaluates a parsed search key against one message. Text keys match
 * case-insensitively as substrings of decoded text (RFC 2047 words in headers, transfer encodings
 * and charsets in bodies); date keys compare calendar days, disregarding time and time zone.
 * The message data is loaded lazily, once per message, through `SearchSubject`.
 */
import { decodeCharset, decodeTransfer, decodeWords, SEARCH_PART_BYTES_MAX } from "./decode.ts";
import { headerValue, type HeaderField, type MimePart } from "./mime.ts";
import { resolveSequenceSet, type Day, type SearchKey, type SequenceSet } from "./parser.ts";

/** What a search key may look at for one message. */
export interface SearchSubject {
  readonly seq: number;
  readonly uid: number;
  /** The message's flags (system flags and keywords, without \Recent). */
  readonly flags: readonly string[];
  readonly recent: boolean;
  size(): Promise<number>;
  internalDate(): Promise<Date>;
  headers(): Promise<readonly HeaderField[]>;
  message(): Promise<{ readonly buf: Buffer; readonly root: MimePart }>;
}

/** The session's view a search runs over; sequence sets are resolved once and kept. */
export class SearchContext {
  /** All UIDs of the view, ascending (sequence number i+1 is uids[i]). */
  readonly uids: readonly number[];
  readonly #cache = new Map<SequenceSet, { seq: ReadonlySet<number>; uid: ReadonlySet<number> }>();

  constructor(uids: readonly number[]) {
    this.uids = uids;
  }

  /** The sequence numbers (kind "seq") or UIDs (kind "uid") that `set` names in this view. */
  members(set: SequenceSet, kind: "seq" | "uid"): ReadonlySet<number> {
    let c = this.#cache.get(set);
    if (c === undefined) {
      const seqs = Array.from({ length: this.uids.length }, (_, i) => i + 1);
      c = {
        seq: new Set(resolveSequenceSet(set, seqs).map((i) => i + 1)),
        uid: new Set(resolveSequenceSet(set, this.uids).map((i) => this.uids[i] ?? 0)),
      };
      this.#cache.set(set, c);
    }
    return c[kind];
  }
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/** The calendar day written in a Date: header (its own time zone), or undefined when unreadable. */
export function sentDay(value: string | undefined): Day | undefined {
  if (value === undefined) return undefined;
  const m = /(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})/.exec(value);
  const month = MONTHS.indexOf((m?.[2] ?? "").toLowerCase());
  if (!m || month < 0) return undefined;
  let year = Number(m[3]);
  if (year < 50) year += 2000;
  else if (year < 1000) year += 1900;
  return Math.floor(Date.UTC(year, month, Number(m[1])) / 86_400_000);
}

function dayOf(d: Date): Day {
  return Math.floor(d.getTime() / 86_400_000);
}

function compareDay(day: Day, op: "before" | "on" | "since", want: Day): boolean {
  return op === "before" ? day < want : op === "on" ? day === want : day >= want;
}

function contains(haystack: string, needle: string): boolean {
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

function leafText(buf: Buffer, part: MimePart, out: string[], budget: { bytes: number }): void {
  const host = part.message ?? part;
  if (part.message !== undefined) {
    out.push(part.message.headers.map((h) => `${h.name}: ${decodeWords(h.value)}`).join("\n"));
  }
  if (host.children.length > 0) {
    for (const c of host.children) leafText(buf, c, out, budget);
    return;
  }
  if (host !== part) return leafText(buf, host, out, budget);
  if (part.contentType.type !== "text" || budget.bytes <= 0) return;
  const raw = buf.subarray(part.bodyStart, Math.min(part.end, part.bodyStart + budget.bytes));
  budget.bytes -= raw.length;
  const charset = part.contentType.params.find(([k]) => k === "charset")?.[1];
  out.push(decodeCharset(decodeTransfer(raw, headerValue(part.headers, "content-transfer-encoding")), charset));
}

/** The decoded text of a message's body: its text parts, in order. */
export function bodyText(buf: Buffer, root: MimePart): string {
  const out: string[] = [];
  leafText(buf, root, out, { bytes: SEARCH_PART_BYTES_MAX });
  return out.join("\n");
}

/** True when `subject` matches `key` (RFC 3501 6.4.4). */
export async function matches(key: SearchKey, s: SearchSubject, ctx: SearchContext): Promise<boolean> {
  switch (key.type) {
    case "all":
      return true;
    case "flag":
      return s.flags.some((f) => f.toLowerCase() === key.flag.toLowerCase()) === key.set;
    case "recent":
      return s.recent === key.set;
    case "new":
      return s.recent && !s.flags.includes("\\Seen");
    case "header": {
      const fields = (await s.headers()).filter((h) => h.name === key.field);
      // RFC 3501 6.4.4: an empty string matches every message that has the field.
      if (key.value === "") return fields.length > 0;
      return fields.some((h) => contains(decodeWords(h.value), key.value));
    }
    case "body": {
      const { buf, root } = await s.message();
      return contains(bodyText(buf, root), key.value);
    }
    case "text": {
      const { buf, root } = await s.message();
      const headers = root.headers.map((h) => `${h.name}: ${decodeWords(h.value)}`).join("\n");
      return contains(headers, key.value) || contains(bodyText(buf, root), key.value);
    }
    case "internal":
      return compareDay(dayOf(await s.internalDate()), key.op, key.day);
    case "sent": {
      const day = sentDay(headerValue(await s.headers(), "date"));
      return day !== undefined && compareDay(day, key.op, key.day);
    }
    case "size": {
      const n = await s.size();
      return key.op === "larger" ? n > key.n : n < key.n;
    }
    case "seq":
      return ctx.members(key.set, "seq").has(s.seq);
    case "uid":
      return ctx.members(key.set, "uid").has(s.uid);
    case "not":
      return !(await matches(key.key, s, ctx));
    case "or":
      return (await matches(key.a, s, ctx)) || (await matches(key.b, s, ctx));
    case "and":
      for (const k of key.keys) if (!(await matches(k, s, ctx))) return false;
      return true;
    default: {
      const never: never = key;
      return never;
    }
  }
}
