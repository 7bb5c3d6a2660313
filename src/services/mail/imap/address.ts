/**
 * RFC 5322 3.4 address lists as RFC 3501 7.4.2 ENVELOPE addresses: `(name adl mailbox host)`,
 * with a group as `(NIL NIL group NIL)` … `(NIL NIL NIL NIL)`. Lenient like the servers clients
 * are used to: comments dropped, obsolete routes kept as adl. A missing host or local part is
 * written "MISSING_DOMAIN" / "MISSING_MAILBOX" as Dovecot does, because a NIL host means a group
 * marker in RFC 3501 7.4.2. Bounded: tokens per header, addresses per list. Values stay latin1 (raw octets;
 * RFC 2047 encoded words are not decoded, as RFC 3501 requires).
 */

/** Placeholders for the parts an address lacks (Dovecot's words). */
export const MISSING_DOMAIN = "MISSING_DOMAIN";
export const MISSING_MAILBOX = "MISSING_MAILBOX";

/** Most tokens looked at in one address header. */
export const ADDRESS_TOKENS_MAX = 20_000;
/** Most addresses in one list. */
export const ADDRESSES_MAX = 2_000;

/** One ENVELOPE address; all fields NIL (undefined) ends a group. */
export interface EnvelopeAddress {
  readonly name: string | undefined;
  readonly adl: string | undefined;
  readonly mailbox: string | undefined;
  readonly host: string | undefined;
}

type Tok = { readonly k: "word"; readonly v: string; readonly quoted: boolean } | { readonly k: "special"; readonly v: string };

// An atom run: anything up to white space or an RFC 5322 special.
const WORD_RE = /[^ \t\r\n()"[<>@,;:.]+/y;

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length && out.length < ADDRESS_TOKENS_MAX) {
    const c = s[i] ?? "";
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      i += 1;
    } else if (c === "(") {
      let depth = 1;
      i += 1;
      while (i < s.length && depth > 0) {
        if (s[i] === "\\") i += 1;
        else if (s[i] === "(") depth += 1;
        else if (s[i] === ")") depth -= 1;
        i += 1;
      }
    } else if (c === '"') {
      let v = "";
      i += 1;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === "\\" && i + 1 < s.length) i += 1;
        v += s[i] ?? "";
        i += 1;
      }
      i += 1;
      out.push({ k: "word", v, quoted: true });
    } else if (c === "[") {
      const j = s.indexOf("]", i);
      const end = j < 0 ? s.length : j + 1;
      out.push({ k: "word", v: s.slice(i, end), quoted: false });
      i = end;
    } else if ("<>@,;:.".includes(c)) {
      out.push({ k: "special", v: c });
      i += 1;
    } else {
      WORD_RE.lastIndex = i;
      const m = WORD_RE.exec(s);
      const j = m === null ? i + 1 : i + m[0].length;
      out.push({ k: "word", v: s.slice(i, j), quoted: false });
      i = j;
    }
  }
  return out;
}

const isSpecial = (t: Tok | undefined, v: string): boolean => t?.k === "special" && t.v === v;

class Cursor {
  readonly toks: readonly Tok[];
  i = 0;
  constructor(toks: readonly Tok[]) {
    this.toks = toks;
  }
  peek(): Tok | undefined {
    return this.toks[this.i];
  }
}

/** Reads a dot-joined run of words (local part or domain) up to a stop special. */
function dotted(c: Cursor, stops: string): string {
  let out = "";
  for (let t = c.peek(); t !== undefined; t = c.peek()) {
    if (t.k === "special" && stops.includes(t.v)) break;
    if (t.k === "special" && t.v !== ".") break;
    out += t.k === "word" && t.quoted ? `"${t.v}"` : t.v;
    c.i += 1;
  }
  return out;
}

function angleAddr(c: Cursor, name: string | undefined): EnvelopeAddress {
  c.i += 1; // "<"
  let adl: string | undefined;
  // Obsolete route (RFC 5322 4.4): "@a,@b:" before the addr-spec.
  if (isSpecial(c.peek(), "@")) {
    let route = "";
    while (c.peek() !== undefined && !isSpecial(c.peek(), ":") && !isSpecial(c.peek(), ">")) {
      const t = c.peek();
      route += t?.v ?? "";
      c.i += 1;
    }
    if (isSpecial(c.peek(), ":")) c.i += 1;
    adl = route || undefined;
  }
  const local = dotted(c, "@>");
  let host: string | undefined;
  if (isSpecial(c.peek(), "@")) {
    c.i += 1;
    host = dotted(c, ">") || undefined;
  }
  while (c.peek() !== undefined && !isSpecial(c.peek(), ">")) c.i += 1;
  if (isSpecial(c.peek(), ">")) c.i += 1;
  return { name, adl, mailbox: local || MISSING_MAILBOX, host: host ?? MISSING_DOMAIN };
}

function phrase(c: Cursor): string[] {
  const words: string[] = [];
  for (let t = c.peek(); t !== undefined; t = c.peek()) {
    if (t.k === "word") words.push(t.v);
    else if (t.v === ".") words.push(".");
    else break;
    c.i += 1;
  }
  return words;
}

function joinPhrase(words: readonly string[]): string {
  return words.join(" ").replace(/ \. /g, ". ").replace(/ \.$/, ".");
}

/** One mailbox (name-addr or addr-spec) starting at the cursor; undefined at a separator. */
function mailbox(c: Cursor): EnvelopeAddress | undefined {
  const start = c.i;
  const words = phrase(c);
  const t = c.peek();
  if (isSpecial(t, "<")) return angleAddr(c, words.length > 0 ? joinPhrase(words) : undefined);
  if (isSpecial(t, "@")) {
    c.i = start;
    const local = dotted(c, "@,;");
    c.i += 1;
    const host = dotted(c, ",;>");
    return { name: undefined, adl: undefined, mailbox: local || MISSING_MAILBOX, host: host || MISSING_DOMAIN };
  }
  if (words.length === 0) return undefined;
  c.i = start;
  const local = dotted(c, ",;:");
  return { name: undefined, adl: undefined, mailbox: local || MISSING_MAILBOX, host: MISSING_DOMAIN };
}

/** Parses an address-list header value into ENVELOPE addresses (empty when none). */
export function parseAddressList(value: string): EnvelopeAddress[] {
  const c = new Cursor(tokenize(value));
  const out: EnvelopeAddress[] = [];
  let inGroup = false;
  while (c.peek() !== undefined && out.length < ADDRESSES_MAX) {
    const before = c.i;
    const t = c.peek();
    if (isSpecial(t, ",")) {
      c.i += 1;
      continue;
    }
    if (isSpecial(t, ";")) {
      c.i += 1;
      if (inGroup) out.push({ name: undefined, adl: undefined, mailbox: undefined, host: undefined });
      inGroup = false;
      continue;
    }
    // A group: phrase ":" (RFC 5322 3.4).
    const words = phrase(c);
    if (words.length > 0 && isSpecial(c.peek(), ":") && !inGroup) {
      c.i += 1;
      out.push({ name: undefined, adl: undefined, mailbox: joinPhrase(words), host: undefined });
      inGroup = true;
      continue;
    }
    c.i = before;
    const m = mailbox(c);
    if (m !== undefined) out.push(m);
    if (c.i === before) c.i += 1; // skip a stray special so the loop always advances
  }
  if (inGroup) out.push({ name: undefined, adl: undefined, mailbox: undefined, host: undefined });
  return out;
}
