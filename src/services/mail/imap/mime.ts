/**
 * The MIME structure of a message (RFC 5322 header sections, RFC 2045/2046 bodies) with the byte
 * offsets IMAP needs: BODYSTRUCTURE sizes and line counts, BODY[<part>.MIME|HEADER|TEXT]
 * (RFC 3501 6.4.5) and ENVELOPE fields (RFC 3501 7.4.2).
 *
 * Written here rather than taken from npm: the maintained parsers (mailparser, postal-mime,
 * @zone-eu/mailsplit) decode content and do not expose part offsets; IMAP servers in Node
 * (WildDuck) keep their own structure parser for the same reason. Input is the message with CRLF
 * line ends. Bounds: nesting depth, parts per message, header fields per part; past a bound the
 * rest is one opaque leaf, as Dovecot does, never an error.
 */

/** Deepest multipart / message nesting parsed. */
export const MIME_DEPTH_MAX = 32;
/** Most parts in one message (beyond, a multipart is kept as a leaf). */
export const MIME_PARTS_MAX = 1_000;
/** Most header fields read per part. */
export const HEADER_FIELDS_MAX = 1_000;

/** One header field. `raw` keeps the field's bytes (all its lines and the final CRLF) as latin1. */
export interface HeaderField {
  /** Lower-case field name. */
  readonly name: string;
  /** The unfolded value (see `unfold`), trimmed, latin1. */
  readonly value: string;
  readonly raw: string;
}

/** A parsed Content-Type (RFC 2045 5.1), type and subtype in lower case. */
export interface ContentType {
  readonly type: string;
  readonly subtype: string;
  /** Parameters in order, names in lower case, values unquoted. */
  readonly params: ReadonlyArray<readonly [string, string]>;
}

/** One MIME entity with its offsets in the message. */
export interface MimePart {
  /** Offset of the part's header section (for a multipart's child: after the boundary line). */
  readonly start: number;
  /** Offset of the body (after the empty line ending the header). */
  readonly bodyStart: number;
  /** End of the body (exclusive). */
  readonly end: number;
  readonly headers: readonly HeaderField[];
  readonly contentType: ContentType;
  /** Children of a multipart. */
  readonly children: readonly MimePart[];
  /** The embedded message of a message/rfc822 part. */
  readonly message: MimePart | undefined;
}

const CRLFCRLF = Buffer.from("\r\n\r\n");

/** Offset of the body: after the first empty line at or after `start`, else `end` (no body). */
function findBodyStart(buf: Buffer, start: number, end: number): number {
  if (start + 2 <= end && buf[start] === 0x0d && buf[start + 1] === 0x0a) return start + 2;
  const i = buf.subarray(0, end).indexOf(CRLFCRLF, start);
  return i < 0 ? end : i + 4;
}

/**
 * A field's value unfolded (RFC 5322 2.2.3) and trimmed. Each fold, with the white space around
 * it, becomes one space, which is what Dovecot returns in ENVELOPE.
 */
function unfold(v: string): string {
  return v.replace(/\r\n$/, "").replace(/[ \t]*\r\n[ \t]+/g, " ").trim();
}

/** Parses the header fields of `buf[start, bodyStart)`. */
export function parseHeaderFields(buf: Buffer, start: number, bodyStart: number): HeaderField[] {
  const text = buf.toString("latin1", start, bodyStart);
  const out: HeaderField[] = [];
  let i = 0;
  while (i < text.length && out.length < HEADER_FIELDS_MAX) {
    let j = text.indexOf("\r\n", i);
    // A field continues on lines starting with WSP (RFC 5322 2.2.3).
    while (j >= 0 && (text[j + 2] === " " || text[j + 2] === "\t")) j = text.indexOf("\r\n", j + 2);
    const lineEnd = j < 0 ? text.length : j + 2;
    const raw = text.slice(i, lineEnd);
    const colon = raw.indexOf(":");
    if (colon > 0) {
      const name = raw.slice(0, colon).trim().toLowerCase();
      if (/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
        out.push({ name, value: unfold(raw.slice(colon + 1)), raw });
      }
    }
    i = lineEnd;
  }
  return out;
}

/** The value of the first field called `name` (lower case), if any. */
export function headerValue(headers: readonly HeaderField[], name: string): string | undefined {
  return headers.find((h) => h.name === name)?.value;
}

/** Splits a structured value at top-level ';' (outside quotes and comments). */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  let comment = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] ?? "";
    if (quoted) {
      cur += c;
      if (c === "\\") cur += value[++i] ?? "";
      else if (c === '"') quoted = false;
    } else if (comment > 0) {
      if (c === "(") comment += 1;
      else if (c === ")") comment -= 1;
      else if (c === "\\") i += 1;
    } else if (c === '"') {
      quoted = true;
      cur += c;
    } else if (c === "(") comment = 1;
    else if (c === ";") {
      out.push(cur);
      cur = "";
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/\\(.)/g, "$1");
  return t;
}

/** A value and its parameters (Content-Type, Content-Disposition): `value; a=b; c="d"`. */
export function parseParamHeader(value: string): { value: string; params: Array<readonly [string, string]> } {
  const [first = "", ...rest] = splitParams(value);
  const params: Array<readonly [string, string]> = [];
  for (const p of rest.slice(0, 100)) {
    const eq = p.indexOf("=");
    if (eq <= 0) continue;
    params.push([p.slice(0, eq).trim().toLowerCase(), unquote(p.slice(eq + 1))]);
  }
  return { value: first.toLowerCase(), params };
}

/** RFC 2045 5.2: the default is text/plain; charset=us-ascii (message/rfc822 inside multipart/digest). */
function contentTypeOf(headers: readonly HeaderField[], digest: boolean): ContentType {
  const raw = headerValue(headers, "content-type");
  const fallback: ContentType = digest
    ? { type: "message", subtype: "rfc822", params: [] }
    : { type: "text", subtype: "plain", params: [["charset", "us-ascii"]] };
  if (raw === undefined) return fallback;
  const { value, params } = parseParamHeader(raw);
  const m = /^([!#$%&'*+\-.^_`|~0-9a-z]+)\/([!#$%&'*+\-.^_`|~0-9a-z]+)$/.exec(value);
  if (!m?.[1] || !m[2]) return fallback;
  return { type: m[1], subtype: m[2], params };
}

class Budget {
  parts = 0;
}

function parseEntity(buf: Buffer, start: number, end: number, depth: number, digest: boolean, budget: Budget): MimePart {
  budget.parts += 1;
  const bodyStart = findBodyStart(buf, start, end);
  const headers = parseHeaderFields(buf, start, bodyStart);
  const contentType = contentTypeOf(headers, digest);
  const leaf: MimePart = { start, bodyStart, end, headers, contentType, children: [], message: undefined };
  if (depth >= MIME_DEPTH_MAX || budget.parts >= MIME_PARTS_MAX) return leaf;
  if (contentType.type === "multipart") {
    const boundary = contentType.params.find(([k]) => k === "boundary")?.[1];
    if (boundary === undefined || boundary.length === 0 || boundary.length > 200) return leaf;
    const children = splitMultipart(buf, bodyStart, end, boundary).map(([s, e]) => {
      const child = parseEntity(buf, s, e, depth + 1, contentType.subtype === "digest", budget);
      // A nested multipart keeps the line end after its own close delimiter (Dovecot's choice,
      // so BODY[n] of a multipart part is byte-identical to Dovecot's).
      const lineEnd = child.children.length > 0 && e + 2 <= end && buf[e] === 0x0d && buf[e + 1] === 0x0a;
      return lineEnd ? { ...child, end: e + 2 } : child;
    });
    return { ...leaf, children };
  }
  if (contentType.type === "message" && contentType.subtype === "rfc822") {
    return { ...leaf, message: parseEntity(buf, bodyStart, end, depth + 1, false, budget) };
  }
  return leaf;
}

/**
 * The [start, end) ranges of a multipart body's parts (RFC 2046 5.1.1): a delimiter is CRLF "--"
 * boundary at a line start (the CRLF belongs to it), then optional white space and CRLF; "--" after
 * the boundary closes the list. Without a closing delimiter the last part runs to the end.
 */
export function splitMultipart(buf: Buffer, bodyStart: number, end: number, boundary: string): Array<[number, number]> {
  const delim = Buffer.from(`\r\n--${boundary}`, "latin1");
  const ranges: Array<[number, number]> = [];
  let partStart = -1;
  // The body's first line may itself be a delimiter: search from the CRLF that ends the header.
  let from = bodyStart >= 2 && buf[bodyStart - 2] === 0x0d ? bodyStart - 2 : bodyStart;
  while (from < end && ranges.length < MIME_PARTS_MAX) {
    const at = buf.subarray(0, end).indexOf(delim, from);
    if (at < 0) break;
    let p = at + delim.length;
    const close = buf[p] === 0x2d && buf[p + 1] === 0x2d;
    if (close) p += 2;
    while (p < end && (buf[p] === 0x20 || buf[p] === 0x09)) p += 1;
    const eol = p >= end || (buf[p] === 0x0d && buf[p + 1] === 0x0a);
    if (!eol && !close) {
      from = at + 2;
      continue;
    }
    if (partStart >= 0) ranges.push([partStart, Math.max(partStart, at)]);
    if (close) return ranges;
    partStart = Math.min(end, p + 2);
    from = p;
  }
  if (partStart >= 0 && ranges.length < MIME_PARTS_MAX) ranges.push([partStart, end]);
  return ranges;
}

/** Parses a message (CRLF line ends) into its MIME tree. Never throws on malformed input. */
export function parseMime(buf: Buffer): MimePart {
  return parseEntity(buf, 0, buf.length, 0, false, new Budget());
}

/** Parses only the header section of a message (for ENVELOPE and BODY[HEADER] without the body). */
export function parseHeaderOnly(buf: Buffer): { headers: HeaderField[]; bodyStart: number } {
  const bodyStart = findBodyStart(buf, 0, buf.length);
  return { headers: parseHeaderFields(buf, 0, bodyStart), bodyStart };
}

/** True when `buf` holds the whole header section (an empty line was seen). */
export function headerComplete(buf: Buffer): boolean {
  return (buf.length >= 2 && buf[0] === 0x0d && buf[1] === 0x0a) || buf.indexOf(CRLFCRLF) >= 0;
}

/** Lines in a body (RFC 3501 7.4.2 body-fld-lines): its line feeds, as Dovecot counts them. */
export function countLines(buf: Buffer, start: number, end: number): number {
  const view = buf.subarray(0, end);
  let n = 0;
  let i = view.indexOf(0x0a, start);
  while (i >= 0) {
    n += 1;
    i = view.indexOf(0x0a, i + 1);
  }
  return n;
}

/**
 * Resolves a section part path (RFC 3501 6.4.5) to its entity, or undefined when there is none.
 * A message (the top one, or one embedded in a message/rfc822 part) that is not multipart has a
 * single part 1, its body; other leaves have no sub-parts.
 */
export function partAt(root: MimePart, path: readonly number[]): MimePart | undefined {
  let cur: MimePart = root;
  let isMessage = true;
  for (const n of path) {
    const host = cur.message ?? cur;
    const hostIsMessage = isMessage || cur.message !== undefined;
    if (host.children.length > 0) {
      const next = host.children[n - 1];
      if (next === undefined) return undefined;
      cur = next;
    } else if (n === 1 && hostIsMessage) {
      cur = host;
    } else return undefined;
    isMessage = false;
  }
  return cur;
}
