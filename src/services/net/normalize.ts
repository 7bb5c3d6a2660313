/**
 * Host and path normalisation for route matching. Pure functions over hostile input: every
 * failure is a result, never a throw, and every loop is bounded by the input's (bounded) length.
 *
 * Hosts (RFC 9110 §7.2, RFC 3986 §3.2.2): on the wire only ASCII is accepted (an IDN arrives as
 * its A-label, RFC 5890); case is folded, the port stripped, one final dot (the absolute form of
 * the same DNS name) removed. Route hosts given in Unicode are mapped once, at configuration, with
 * UTS #46 (node:url domainToASCII), so a request can never match by a different spelling.
 *
 * Paths (RFC 3986 §3.3, §6.2.2): escapes of unreserved characters are decoded, the others kept
 * with upper-case hex; empty segments merge; dot segments, escaped "/" or "\", "%25" (double
 * encoding), NUL and controls, raw non-ASCII and escaped bytes that are not UTF-8 (overlong
 * "%C0%AE" is a dot to a lenient upstream) are refused rather than resolved. The upstream gets the
 * normalised path, so what was matched is exactly what is served.
 */
import { domainToASCII } from "node:url";

/** Longest request target (path and query) accepted, in characters. */
export const TARGET_CHARS_MAX = 8192;
/** Longest host name (RFC 1035 §2.3.4 presentation form without the final dot). */
export const HOST_CHARS_MAX = 253;
/** Longest DNS label. */
const LABEL_CHARS_MAX = 63;

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a lower-case LDH host name of at least one label, without a final dot. */
export function isCanonicalHost(h: string): boolean {
  if (h.length === 0 || h.length > HOST_CHARS_MAX) return false;
  const labels = h.split(".");
  for (const l of labels) if (l.length > LABEL_CHARS_MAX || !LDH_LABEL.test(l)) return false;
  return true;
}

/** A route host as configured (Unicode or ASCII, any case) in canonical A-label form, or undefined. */
export function canonicalRouteHost(input: string): string | undefined {
  if (input.length === 0 || input.length > HOST_CHARS_MAX * 4) return undefined;
  const trimmed = input.endsWith(".") ? input.slice(0, -1) : input;
  const ascii = domainToASCII(trimmed);
  return ascii !== "" && isCanonicalHost(ascii) ? ascii : undefined;
}

/**
 * The host named by a Host field or :authority, canonical (lower case, no port, no final dot),
 * or undefined when it is not a valid host name. IP literals are refused: routes name hosts.
 */
export function hostFromAuthority(authority: string): string | undefined {
  if (authority.length === 0 || authority.length > HOST_CHARS_MAX + 7) return undefined;
  let host = authority;
  const colon = authority.lastIndexOf(":");
  if (colon >= 0) {
    const port = authority.slice(colon + 1);
    if (!/^[0-9]{0,5}$/.test(port) || (port.length > 0 && Number(port) > 65_535)) return undefined;
    host = authority.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  host = host.toLowerCase();
  return isCanonicalHost(host) ? host : undefined;
}

/** The outcome of path normalisation. */
export type PathResult =
  | { readonly ok: true; readonly path: string; readonly query: string }
  | { readonly ok: false; readonly reason: string };

// Bytes allowed raw in a path (RFC 3986 pchar / "/") and in a query (pchar / "/" / "?").
const PATH_OK = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%") PATH_OK[c.charCodeAt(0)] = 1;
const QUERY_OK = new Uint8Array(PATH_OK);
QUERY_OK["?".charCodeAt(0)] = 1;
const UNRESERVED = /^[A-Za-z0-9._~-]$/;
const HEX = "0123456789ABCDEF";
const SIMPLE_PATH = /^(?:\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*\/?$/;
const utf8Fatal = new TextDecoder("utf-8", { fatal: true });

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Checks the query: allowed bytes, well-formed escapes, no escaped NUL or controls. */
function checkQuery(q: string): string | undefined {
  for (let i = 0; i < q.length; i++) {
    const c = q.charCodeAt(i);
    if (c >= 128 || QUERY_OK[c] !== 1) return "a character not allowed in a query";
    if (c === 37) {
      const h = hexValue(q.charCodeAt(i + 1)) * 16 + hexValue(q.charCodeAt(i + 2));
      if (hexValue(q.charCodeAt(i + 1)) < 0 || hexValue(q.charCodeAt(i + 2)) < 0) return "a malformed escape in the query";
      if (h < 0x20 || h === 0x7f) return "an escaped NUL or control in the query";
      i += 2;
    }
  }
  return undefined;
}

/** Normalises one raw segment; returns the segment or a refusal reason. */
function normalizeSegment(raw: string): { seg: string } | { reason: string } {
  if (raw.indexOf("%") < 0) return { seg: raw };
  let out = "";
  let high: number[] | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 37) {
      out += raw[i];
      continue;
    }
    const h1 = hexValue(raw.charCodeAt(i + 1));
    const h2 = hexValue(raw.charCodeAt(i + 2));
    if (h1 < 0 || h2 < 0) return { reason: "a malformed escape" };
    const b = h1 * 16 + h2;
    i += 2;
    if (b === 0x2f || b === 0x5c) return { reason: "an escaped slash or backslash" };
    if (b === 0x25) return { reason: "an escaped '%' (double encoding)" };
    if (b < 0x20 || b === 0x7f) return { reason: "an escaped NUL or control" };
    const ch = String.fromCharCode(b);
    if (b < 0x80 && UNRESERVED.test(ch)) out += ch;
    else {
      if (b >= 0x80) (high ??= []).push(b);
      out += `%${HEX[h1]}${HEX[h2]}`;
    }
  }
  if (high !== undefined) {
    // Escaped non-ASCII must be well-formed UTF-8 (RFC 3629 §3 forbids overlong forms).
    const bytes = decodeEscapes(out);
    try {
      utf8Fatal.decode(bytes);
    } catch {
      return { reason: "escaped bytes that are not UTF-8" };
    }
  }
  return { seg: out };
}

function decodeEscapes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(decodeURIComponentBytes(s), "latin1"));
}

/** Percent-decodes to a latin1 string of bytes (escapes were validated by the caller). */
function decodeURIComponentBytes(s: string): string {
  return s.replace(/%([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Normalises an origin-form request target (`/path?query`). The path comes back merged,
 * decoded where RFC 3986 §6.2.2.2 allows, and free of every trick listed in the module doc.
 */
export function normalizeTarget(target: string): PathResult {
  if (target.length === 0 || target.length > TARGET_CHARS_MAX) return { ok: false, reason: "an empty or over-long target" };
  if (target.charCodeAt(0) !== 47) return { ok: false, reason: "the target is not in origin form" };
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q);
  if (query !== "") {
    const bad = checkQuery(query.slice(1));
    if (bad !== undefined) return { ok: false, reason: bad };
  }
  if (SIMPLE_PATH.test(rawPath) && rawPath.indexOf("//") < 0) return { ok: true, path: rawPath, query };
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c >= 128) return { ok: false, reason: "a raw non-ASCII byte" };
    if (PATH_OK[c] !== 1) return { ok: false, reason: c === 92 ? "a backslash" : "a character not allowed in a path" };
  }
  const parts = rawPath.split("/");
  const segs: string[] = [];
  for (const raw of parts) {
    if (raw === "") continue;
    const n = normalizeSegment(raw);
    if ("reason" in n) return { ok: false, reason: n.reason };
    if (n.seg === "." || n.seg === "..") return { ok: false, reason: "a dot segment (path traversal)" };
    segs.push(n.seg);
  }
  const trailing = rawPath.length > 1 && rawPath.endsWith("/") && segs.length > 0;
  return { ok: true, path: `/${segs.join("/")}${trailing ? "/" : ""}`, query };
}

/** True when `prefix` (normalised, no trailing slash except "/") covers `path` at a segment boundary. */
export function prefixCovers(prefix: string, path: string): boolean {
  if (prefix === "/") return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 47;
}
