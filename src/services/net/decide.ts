/**
 * The admission decision for one request, before any upstream is touched: authority, target,
 * route, region policy, identity (RFC 9421 signature or session token). Transport-agnostic: the
 * same decision serves HTTP/1.1, HTTP/2 and WebSocket upgrades. Synchronous except for key
 * resolution on private routes.
 */
import { verifyRequest } from "../../core/crypto/httpsig.ts";
import type { NetErrorCode } from "./errors.ts";
import { hostFromAuthority, normalizeTarget } from "./normalize.ts";
import { regionOf, type RegionTable } from "./region.ts";
import { matchRoute, type Route, type RouteTable } from "./route.ts";
import { sessionTokenOf, verifySession } from "./session.ts";

/** The path of the session endpoint on every routed host. */
export const SESSION_PATH = "/.nexus/session";
/** Oldest (and furthest in the future) RFC 9421 `created` accepted, in seconds. */
export const SIGNATURE_AGE_S_MAX = 300;
/** Components a request signature must cover (RFC 9421 §2.2): binds it to the host, method and path. */
export const SIGNATURE_REQUIRED = ["@method", "@authority", "@path"] as const;

/** Headers as node:http and node:http2 give them (lower-case names). */
export type InHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What the decision needs to know about a request. */
export interface RequestView {
  readonly method: string;
  /** Request target as sent (origin or absolute form; `:path` for HTTP/2). */
  readonly target: string;
  readonly headers: InHeaders;
  /** Host field lines (HTTP/1.x), from the raw headers; undefined for HTTP/2. */
  readonly hostLines: number | undefined;
  readonly http2: boolean;
  readonly scheme: "http" | "https";
  readonly peer: string;
}

/** What the decision needs from the gateway. */
export interface DecideContext {
  readonly table: RouteTable;
  readonly regions: RegionTable | undefined;
  readonly sessionKeys: ReadonlyMap<string, Uint8Array>;
  readonly resolveKey: (identity: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  readonly nowMs: () => number;
}

/** A refusal, or a route to serve (with the identity that authenticated, for private routes). */
export type Decision =
  | { readonly type: "refuse"; readonly code: NetErrorCode; readonly route?: Route }
  | { readonly type: "session"; readonly host: string; readonly authority: string; readonly path: string; readonly query: string }
  | { readonly type: "serve"; readonly route: Route; readonly host: string; readonly path: string; readonly query: string; readonly identity: string | undefined };

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The request's authority and origin-form target, refusing every ambiguity (RFC 9112 §3.2, RFC 9113 §8.3.1). */
export function authorityAndTarget(r: RequestView): { authority: string; target: string } | NetErrorCode {
  const hostField = one(r.headers.host);
  if (r.http2) {
    const a = one(r.headers[":authority"]);
    if (a !== undefined && hostField !== undefined && hostFromAuthority(a) !== hostFromAuthority(hostField)) return "NET_REQUEST_INVALID";
    const authority = a ?? hostField;
    return authority === undefined ? "NET_REQUEST_INVALID" : { authority, target: r.target };
  }
  if (r.hostLines !== 1 || hostField === undefined) return "NET_REQUEST_INVALID";
  // RFC 9112 §6.1, §6.3: a request whose Transfer-Encoding is not exactly chunked, or that also
  // carries Content-Length, has no reliable length: 400 and close (node:http would read to close).
  const te = r.headers["transfer-encoding"];
  if (te !== undefined && (String(te).toLowerCase() !== "chunked" || r.headers["content-length"] !== undefined)) return "NET_REQUEST_INVALID";
  if (r.target.startsWith("/")) return { authority: hostField, target: r.target };
  // Absolute form (RFC 9112 §3.2.2): accepted only when it names the same host as the Host field.
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(r.target);
  if (m?.[1] === undefined || m[2] === undefined) return "NET_REQUEST_INVALID";
  if (hostFromAuthority(m[1]) === undefined || hostFromAuthority(m[1]) !== hostFromAuthority(hostField)) return "NET_REQUEST_INVALID";
  const rest = m[2] === "" ? "/" : m[2].startsWith("?") ? `/${m[2]}` : m[2];
  return { authority: hostField, target: rest };
}

/** Decides how the gateway answers a request. */
export function decide(r: RequestView, c: DecideContext): Decision | Promise<Decision> {
  const at = authorityAndTarget(r);
  if (typeof at === "string") return { type: "refuse", code: at };
  const host = hostFromAuthority(at.authority);
  if (host === undefined) return { type: "refuse", code: "NET_HOST_INVALID" };
  const t = normalizeTarget(at.target);
  if (!t.ok) return { type: "refuse", code: "NET_PATH_INVALID" };
  if (t.path === SESSION_PATH && c.table.byHost.has(host)) return { type: "session", host, authority: at.authority, path: t.path, query: t.query };
  const route = matchRoute(c.table, host, t.path);
  if (route === undefined) return { type: "refuse", code: "NET_NOT_FOUND" };
  if (route.kind === "restricted") {
    const region = c.regions === undefined ? undefined : regionOf(c.regions, r.peer);
    if (region === undefined || !(route.allowRegions ?? []).includes(region)) return { type: "refuse", code: "NET_REGION_REFUSED", route };
  }
  if (route.kind !== "private") return { type: "serve", route, host, path: t.path, query: t.query, identity: undefined };
  return identify(r, c, host, at.authority, at.target, route.grants).then((id) =>
    typeof id === "object" ? { type: "serve", route, host, path: t.path, query: t.query, identity: id.identity } : { type: "refuse", code: id, route },
  );
}

/**
 * The identity a request proves, among `grants`: a session token for this host, else an RFC 9421
 * signature (Ed25519, keyid = identity id, covering method, authority and path, `created` within
 * SIGNATURE_AGE_S_MAX). The keyid is checked against the grants before any key is resolved.
 */
export async function identify(
  r: RequestView,
  c: DecideContext,
  host: string,
  authority: string,
  rawTarget: string,
  grants: readonly string[],
): Promise<{ identity: string } | NetErrorCode> {
  const token = sessionTokenOf(one(r.headers.authorization), one(r.headers.cookie));
  const nowS = Math.floor(c.nowMs() / 1000);
  if (token !== undefined) {
    const v = verifySession(token, c.sessionKeys, host, nowS);
    if (!v.ok) return "NET_SESSION_INVALID";
    return grants.includes(v.claims.sub) ? { identity: v.claims.sub } : "NET_NOT_GRANTED";
  }
  const input = one(r.headers["signature-input"]);
  if (input === undefined || one(r.headers.signature) === undefined) return "NET_AUTH_REQUIRED";
  const keyid = /;keyid="([^"\\]{1,200})"/.exec(input)?.[1];
  if (keyid === undefined) return "NET_SIGNATURE_INVALID";
  if (!grants.includes(keyid)) return "NET_NOT_GRANTED";
  let key: Uint8Array | undefined;
  try {
    key = await c.resolveKey(keyid);
  } catch {
    key = undefined;
  }
  if (key === undefined) return "NET_SIGNATURE_INVALID";
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(r.headers)) if (k.charCodeAt(0) !== 58) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  const res = verifyRequest(
    { method: r.method, url: `${r.scheme}://${authority.toLowerCase()}${rawTarget}`, headers },
    { resolveKey: (k) => (k === keyid ? key : undefined), required: SIGNATURE_REQUIRED, nowSec: nowS, maxAgeSec: SIGNATURE_AGE_S_MAX },
  );
  return res.ok && res.keyid === keyid ? { identity: keyid } : "NET_SIGNATURE_INVALID";
}
