/**
 * Canonical JSON: the RFC 8785 JSON Canonicalization Scheme (JCS), and the strict parser whose
 * output it is meant to sign.
 *
 * - `canonicalize` serialises a JSON value as RFC 8785 §3.2 says: no whitespace (§3.2.1),
 *   literals as is, strings and numbers exactly as ECMAScript's JSON.stringify writes them
 *   (§3.2.2.2, §3.2.2.3), object members sorted by the UTF-16 code units of their names (§3.2.3).
 * - Lone surrogates are REJECTED, never escaped: RFC 8785 §3.2.2.2 says invalid Unicode "MUST
 *   cause a compliant JCS implementation to terminate with an appropriate error" (ES2019's
 *   JSON.stringify would write `\udXXX` instead; we do not follow it there).
 * - Values JSON cannot carry are rejected instead of dropped or converted: undefined, NaN,
 *   ±Infinity (RFC 8785 §3.2.2.3), functions, symbols, bigint (callers write money and big
 *   integers as decimal strings), and objects that are not plain (Date, Map, class instances,
 *   boxed primitives: no `toJSON` magic).
 * - `parseJsonStrict` accepts exactly RFC 8259 JSON text and additionally rejects duplicate member
 *   names (JSON.parse keeps the last one silently), lone surrogates, numbers beyond the IEEE 754
 *   double range, a byte order mark, and input over its depth or size bounds. Every failure is a
 *   CRYPTO_JSON_INVALID error carrying the position (UTF-16 code unit offset) where it occurred.
 *   Numbers are IEEE 754 doubles (RFC 8785 §3.2.2.3, I-JSON RFC 7493 §2.2): integers above 2^53
 *   lose precision exactly as in JSON.parse; carry them as strings.
 */
import { cryptoErrors } from "./errors.ts";
import { utf8 } from "./bytes.ts";

/** A JSON value as parseJsonStrict returns it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Bounds of parseJsonStrict. */
export interface JsonLimits {
  /** Deepest nesting of arrays and objects (a scalar is depth 0, `[]` depth 1). */
  readonly depthMax: number;
  /** Longest text in UTF-16 code units (for parseJsonStrictBytes: in bytes). */
  readonly charsMax: number;
}

/** Default nesting bound of parsed JSON. */
export const JSON_DEPTH_MAX = 64;
/** Default size bound of parsed JSON (1 MiB). */
export const JSON_CHARS_MAX = 1024 * 1024;
/** Largest depth any caller may ask for, and the bound of canonicalize: keeps recursion far from the stack limit. */
export const JSON_DEPTH_CEILING = 1000;
/** Largest size any caller may ask for (64 MiB). */
export const JSON_CHARS_CEILING = 64 * 1024 * 1024;

/** The default limits. */
export const DEFAULT_JSON_LIMITS: JsonLimits = { depthMax: JSON_DEPTH_MAX, charsMax: JSON_CHARS_MAX };

function invalid(reason: string, position?: number): Error {
  const where = position === undefined ? "" : ` at position ${position}`;
  return cryptoErrors.make("CRYPTO_JSON_INVALID", `${reason}${where}`, position === undefined ? { reason } : { reason, position });
}

// ---------------------------------------------------------------------------------------------
// Canonicalization (RFC 8785 §3.2)

/** The RFC 8785 canonical form of `value`; throws CRYPTO_JSON_INVALID for anything JSON cannot carry. */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  serialize(value, out, 0);
  return out.join("");
}

/** UTF-8 bytes of the RFC 8785 canonical form of `value` (what gets hashed and signed). */
export function canonicalBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}

function serialize(value: unknown, out: string[], depth: number): void {
  switch (typeof value) {
    case "string":
      out.push(quote(value));
      return;
    case "number":
      out.push(serializeNumber(value));
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "object":
      if (value === null) {
        out.push("null");
        return;
      }
      if (depth >= JSON_DEPTH_CEILING) throw invalid(`nesting deeper than ${JSON_DEPTH_CEILING} levels (or a cycle)`);
      if (Array.isArray(value)) serializeArray(value, out, depth + 1);
      else serializeObject(value, out, depth + 1);
      return;
    default:
      // undefined, function, symbol, bigint: JSON has no such value (bigint: write a decimal string).
      throw invalid(`a ${typeof value} cannot be represented in JSON`);
  }
}

/** RFC 8785 §3.2.2.2: strings as ECMAScript JSON.stringify writes them, lone surrogates refused. */
function quote(s: string): string {
  if (!s.isWellFormed()) throw invalid("string with a lone surrogate (RFC 8785 §3.2.2.2)");
  return JSON.stringify(s);
}

/** RFC 8785 §3.2.2.3: numbers as ECMAScript Number.prototype.toString writes them (-0 as 0). */
function serializeNumber(n: number): string {
  if (!Number.isFinite(n)) throw invalid(`${String(n)} is not a JSON number (RFC 8785 §3.2.2.3)`);
  return String(n);
}

function serializeArray(items: readonly unknown[], out: string[], depth: number): void {
  out.push("[");
  for (let i = 0; i < items.length; i++) {
    if (i > 0) out.push(",");
    serialize(items[i], out, depth);
  }
  out.push("]");
}

function serializeObject(obj: object, out: string[], depth: number): void {
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    throw invalid(`a ${obj.constructor?.name ?? "non-plain"} object is not JSON (convert it to a plain object first)`);
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) throw invalid("an object with symbol keys is not JSON");
  const record = obj as Record<string, unknown>;
  // RFC 8785 §3.2.3: sort by UTF-16 code units; the default sort compares exactly that way.
  const keys = Object.keys(record).sort();
  out.push("{");
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (i > 0) out.push(",");
    out.push(quote(key), ":");
    serialize(record[key], out, depth);
  }
  out.push("}");
}

// ---------------------------------------------------------------------------------------------
// Strict parsing (RFC 8259 grammar, I-JSON RFC 7493 §2.3 unique names)

interface Cursor {
  readonly text: string;
  pos: number;
  readonly depthMax: number;
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]); // RFC 8259 §2: space, tab, LF, CR only
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y; // RFC 8259 §6
const HEX4_RE = /^[0-9a-fA-F]{4}$/;
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

function resolveLimits(limits: Partial<JsonLimits>): JsonLimits {
  const depthMax = limits.depthMax ?? JSON_DEPTH_MAX;
  const charsMax = limits.charsMax ?? JSON_CHARS_MAX;
  if (!Number.isSafeInteger(depthMax) || depthMax < 0 || depthMax > JSON_DEPTH_CEILING) {
    throw new RangeError(`depthMax must be an integer from 0 to ${JSON_DEPTH_CEILING}`);
  }
  if (!Number.isSafeInteger(charsMax) || charsMax < 0 || charsMax > JSON_CHARS_CEILING) {
    throw new RangeError(`charsMax must be an integer from 0 to ${JSON_CHARS_CEILING}`);
  }
  return { depthMax, charsMax };
}

/**
 * Parses RFC 8259 JSON text, rejecting duplicate keys, lone surrogates and input over `limits`.
 * The result is a JsonValue, typed `unknown` on purpose: validate it with a schema before use.
 */
export function parseJsonStrict(text: string, limits: Partial<JsonLimits> = {}): unknown {
  const { depthMax, charsMax } = resolveLimits(limits);
  if (text.length > charsMax) throw invalid(`text of ${text.length} chars is over the limit of ${charsMax}`, charsMax);
  const c: Cursor = { text, pos: 0, depthMax };
  skipWs(c);
  const value = parseValue(c, 0);
  skipWs(c);
  if (c.pos !== text.length) throw invalid("unexpected data after the JSON value", c.pos);
  return value;
}

/** Parses UTF-8 JSON bytes strictly: invalid UTF-8 and a byte order mark are rejected too. */
export function parseJsonStrictBytes(bytes: Uint8Array, limits: Partial<JsonLimits> = {}): unknown {
  const { charsMax } = resolveLimits(limits);
  if (bytes.length > charsMax) throw invalid(`input of ${bytes.length} bytes is over the limit of ${charsMax}`, charsMax);
  let text: string;
  try {
    // ignoreBOM keeps a leading U+FEFF in the text, where the grammar then rejects it (RFC 8259 §8.1).
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw invalid("input is not valid UTF-8 (RFC 8259 §8.1)");
  }
  return parseJsonStrict(text, limits);
}

function skipWs(c: Cursor): void {
  while (c.pos < c.text.length && WS.has(c.text.charCodeAt(c.pos))) c.pos++;
}

function parseValue(c: Cursor, depth: number): JsonValue {
  const ch = c.text[c.pos];
  switch (ch) {
    case "{":
    case "[":
      if (depth + 1 > c.depthMax) throw invalid(`nesting deeper than ${c.depthMax} levels`, c.pos);
      return ch === "{" ? parseObject(c, depth + 1) : parseArray(c, depth + 1);
    case '"':
      return parseString(c);
    case "t":
      return parseLiteral(c, "true", true);
    case "f":
      return parseLiteral(c, "false", false);
    case "n":
      return parseLiteral(c, "null", null);
    case undefined:
      throw invalid("unexpected end of input", c.pos);
    default:
      return parseNumber(c);
  }
}

function parseLiteral<T extends JsonValue>(c: Cursor, word: string, value: T): T {
  if (!c.text.startsWith(word, c.pos)) throw invalid("unexpected token", c.pos);
  c.pos += word.length;
  return value;
}

function parseNumber(c: Cursor): number {
  NUMBER_RE.lastIndex = c.pos;
  const m = NUMBER_RE.exec(c.text);
  if (m === null) throw invalid("unexpected token", c.pos);
  // Number() of a decimal literal is correctly rounded (ECMAScript StringToNumber), as JSON.parse does.
  const n = Number(m[0]);
  if (!Number.isFinite(n)) throw invalid("number beyond the IEEE 754 double range", c.pos);
  c.pos += m[0].length;
  return n;
}

function parseString(c: Cursor): string {
  const start = c.pos;
  const { text } = c;
  let pos = start + 1;
  let chunk = pos;
  let out = "";
  for (;;) {
    if (pos >= text.length) throw invalid("unterminated string", start);
    const code = text.charCodeAt(pos);
    if (code === 0x22) break;
    if (code < 0x20) throw invalid("control character in a string must be escaped (RFC 8259 §7)", pos);
    if (code !== 0x5c) {
      pos++;
      continue;
    }
    out += text.slice(chunk, pos);
    const [s, next] = parseEscape(text, pos);
    out += s;
    pos = next;
    chunk = pos;
  }
  out += text.slice(chunk, pos);
  c.pos = pos + 1;
  if (!out.isWellFormed()) throw invalid("string with a lone surrogate (RFC 8785 §3.2.2.2)", start);
  return out;
}

/** One escape at `pos` (the backslash): its text and the position after it. */
function parseEscape(text: string, pos: number): [string, number] {
  const e = text[pos + 1];
  if (e === undefined) throw invalid("unterminated escape", pos);
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined) return [simple, pos + 2];
  const hex = text.slice(pos + 2, pos + 6);
  if (e !== "u" || !HEX4_RE.test(hex)) throw invalid("invalid escape (RFC 8259 §7)", pos);
  return [String.fromCharCode(parseInt(hex, 16)), pos + 6];
}

function parseArray(c: Cursor, depth: number): JsonValue[] {
  const items: JsonValue[] = [];
  c.pos++; // '['
  skipWs(c);
  if (c.text[c.pos] === "]") {
    c.pos++;
    return items;
  }
  for (;;) {
    skipWs(c);
    items.push(parseValue(c, depth));
    skipWs(c);
    const ch = c.text[c.pos];
    c.pos++;
    if (ch === "]") return items;
    if (ch !== ",") throw invalid("expected ',' or ']'", c.pos - 1);
  }
}

function parseObject(c: Cursor, depth: number): { [key: string]: JsonValue } {
  const obj: { [key: string]: JsonValue } = {};
  c.pos++; // '{'
  skipWs(c);
  if (c.text[c.pos] === "}") {
    c.pos++;
    return obj;
  }
  for (;;) {
    skipWs(c);
    if (c.text[c.pos] !== '"') throw invalid("expected a string member name", c.pos);
    const keyPos = c.pos;
    const key = parseString(c);
    // I-JSON (RFC 7493 §2.3) and RFC 8785 §3.1: member names MUST be unique.
    if (Object.hasOwn(obj, key)) throw invalid(`duplicate member name ${JSON.stringify(key)}`, keyPos);
    skipWs(c);
    if (c.text[c.pos] !== ":") throw invalid("expected ':'", c.pos);
    c.pos++;
    skipWs(c);
    // defineProperty: a "__proto__" member becomes an own property, never the prototype.
    Object.defineProperty(obj, key, { value: parseValue(c, depth), enumerable: true, writable: true, configurable: true });
    skipWs(c);
    const ch = c.text[c.pos];
    c.pos++;
    if (ch === "}") return obj;
    if (ch !== ",") throw invalid("expected ',' or '}'", c.pos - 1);
  }
}
