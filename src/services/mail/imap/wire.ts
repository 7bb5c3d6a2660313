/**
 * Writing IMAP response data (RFC 3501 4 and 9): quoted strings, literals, nstrings, lists.
 * A value is written quoted when it is short 7-bit text without CR, LF or NUL; otherwise as a
 * literal `{n}CRLF<bytes>`, which carries any octets.
 */

/** Longest value written as a quoted string; longer ones become literals. */
export const QUOTED_BYTES_MAX = 1024;

/** A response under construction: strings (latin1 on the wire) and raw byte chunks. */
export type Chunk = string | Buffer;

function isQuotable(b: Buffer): boolean {
  if (b.length > QUOTED_BYTES_MAX) return false;
  for (const c of b) if (c === 0 || c === 0x0a || c === 0x0d || c > 0x7e) return false;
  return true;
}

/** True for text a quoted string can carry: 7-bit, no NUL, CR or LF (RFC 3501 9 QUOTED-CHAR). */
function quotableText(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0x7e) return false;
  }
  return true;
}

/**
 * Builds response data as text, breaking out only for literals: almost every value is short
 * 7-bit text, so the common case is one string (ENVELOPE and BODYSTRUCTURE are built per message).
 */
export class ResponseBuilder {
  readonly #parts: Chunk[] = [];
  #text = "";

  /** Appends protocol text as is. */
  raw(t: string): this {
    this.#text += t;
    return this;
  }

  /** RFC 3501 9 string: quoted when short 7-bit text, else a literal. `v` is latin1 text or bytes. */
  string(v: string | Buffer): this {
    if (typeof v === "string" && v.length <= QUOTED_BYTES_MAX && quotableText(v)) {
      this.#text += v.includes('"') || v.includes("\\") ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : `"${v}"`;
      return this;
    }
    const b = typeof v === "string" ? Buffer.from(v, "latin1") : v;
    if (isQuotable(b)) return this.string(b.toString("latin1"));
    this.#text += `{${b.length}}\r\n`;
    this.#parts.push(this.#text, b);
    this.#text = "";
    return this;
  }

  /** RFC 3501 9 nstring: NIL or a string. */
  nstring(v: string | Buffer | undefined): this {
    return v === undefined ? this.raw("NIL") : this.string(v);
  }

  /** The chunks built. */
  chunks(): Chunk[] {
    return this.#text === "" ? [...this.#parts] : [...this.#parts, this.#text];
  }

  /** The bytes built. */
  buffer(): Buffer {
    return toBuffer(this.chunks());
  }
}

/** RFC 3501 9 string: quoted or literal. `s` is latin1 text (one char per octet) or bytes. */
export function str(s: string | Buffer): Chunk[] {
  const b = typeof s === "string" ? Buffer.from(s, "latin1") : s;
  if (isQuotable(b)) return [`"${b.toString("latin1").replace(/[\\"]/g, (c) => `\\${c}`)}"`];
  return [`{${b.length}}\r\n`, b];
}

/** RFC 3501 9 nstring: NIL or a string. */
export function nstr(s: string | Buffer | undefined): Chunk[] {
  return s === undefined ? ["NIL"] : str(s);
}

/** A mailbox name for LIST/STATUS responses: always quoted (names are 7-bit modified UTF-7). */
export function mailboxOut(name: string): string {
  return `"${name.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Joins chunks into one Buffer (latin1 for strings); runs of strings become one Buffer first. */
export function toBuffer(chunks: readonly Chunk[]): Buffer {
  const parts: Buffer[] = [];
  let text = "";
  for (const c of chunks) {
    if (typeof c === "string") {
      text += c;
      continue;
    }
    if (text !== "") parts.push(Buffer.from(text, "latin1"));
    text = "";
    parts.push(c);
  }
  if (text !== "") parts.push(Buffer.from(text, "latin1"));
  return parts.length === 1 && parts[0] !== undefined ? parts[0] : Buffer.concat(parts);
}

/** Text for a status response line: one line, no CR/LF/NUL, bounded. */
export function safeText(s: string): string {
  return s.replace(/[\r\n\0]+/g, " ").slice(0, 400);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 3501 9 date-time for INTERNALDATE, in UTC: `"01-Feb-2024 10:00:00 +0000"`. */
export function internalDateOut(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}
