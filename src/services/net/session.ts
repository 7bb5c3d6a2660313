/**
 * Session tokens (session mobility): `nxs1.<payload>.<signature>`, both parts base64url, the
 * payload the RFC 8785 JSON `{aud, exp, iat, kid, sub}` (audience = the route host, subject = the
 * identity), the signature Ed25519 (RFC 8032) over the ASCII of `nxs1.<payload>`. Any gateway
 * holding one of the accepting public keys verifies it: gateways share no session state. A token
 * is a bearer credential for one host; the grant is checked again on every request, so revoking
 * the grant ends the session at once.
 */
import type { KeyObject } from "node:crypto";
import { canonicalize } from "../../core/crypto/jcs.ts";
import { ed25519Sign, ed25519Verify } from "../../core/crypto/ed25519.ts";
import { IDENTITY_ID_RE } from "../../core/identity/id.ts";

/** Longest token accepted. */
export const SESSION_TOKEN_CHARS_MAX = 1024;
/** Default and longest lifetime of a token. */
export const SESSION_TTL_S_DEFAULT = 3600;
export const SESSION_TTL_S_MAX = 86_400;
/** The token's prefix (format version). */
export const SESSION_PREFIX = "nxs1.";

/** The key a gateway signs tokens with. */
export interface SessionSigner {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  /** The raw 32-byte public key (accepted by default). */
  readonly publicKey: Uint8Array;
}

/** A verified token's claims. */
export interface SessionClaims {
  readonly sub: string;
  readonly aud: string;
  readonly iat: number;
  readonly exp: number;
  readonly kid: string;
}

/** Issues a token for `identity` on `host`, valid `ttlS` from `nowS`. */
export function issueSession(signer: SessionSigner, identity: string, host: string, nowS: number, ttlS: number): { token: string; exp: number } {
  const exp = nowS + Math.min(ttlS, SESSION_TTL_S_MAX);
  const payload = Buffer.from(canonicalize({ aud: host, exp, iat: nowS, kid: signer.keyId, sub: identity }), "utf8").toString("base64url");
  const signed = `${SESSION_PREFIX}${payload}`;
  const sig = Buffer.from(ed25519Sign(signer.privateKey, Buffer.from(signed, "ascii"))).toString("base64url");
  return { token: `${signed}.${sig}`, exp };
}

const TOKEN_RE = /^nxs1\.([A-Za-z0-9_-]{1,800})\.([A-Za-z0-9_-]{86})$/;

/** The claims of a token valid for `host` at `nowS` under one of `keys` (keyId → raw public key), or a reason. */
export function verifySession(
  token: string,
  keys: ReadonlyMap<string, Uint8Array>,
  host: string,
  nowS: number,
): { ok: true; claims: SessionClaims } | { ok: false; reason: string } {
  if (token.length > SESSION_TOKEN_CHARS_MAX) return { ok: false, reason: "too long" };
  const m = TOKEN_RE.exec(token);
  if (m?.[1] === undefined || m[2] === undefined) return { ok: false, reason: "malformed" };
  // Only the canonical base64url spelling is accepted (unused trailing bits must be zero), so a
  // token has exactly one spelling.
  const sigBytes = Buffer.from(m[2], "base64url");
  if (sigBytes.toString("base64url") !== m[2] || Buffer.from(m[1], "base64url").toString("base64url") !== m[1]) return { ok: false, reason: "malformed" };
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(m[1], "base64url").toString("utf8"));
  } catch {
    return { ok: false, reason: "malformed payload" };
  }
  if (typeof claims !== "object" || claims === null) return { ok: false, reason: "malformed payload" };
  const c = claims as Record<string, unknown>;
  if (typeof c.kid !== "string" || typeof c.sub !== "string" || typeof c.aud !== "string" || typeof c.exp !== "number" || typeof c.iat !== "number") {
    return { ok: false, reason: "missing claims" };
  }
  const key = keys.get(c.kid);
  if (key === undefined) return { ok: false, reason: "unknown key" };
  if (!ed25519Verify(key, Buffer.from(`${SESSION_PREFIX}${m[1]}`, "ascii"), sigBytes)) return { ok: false, reason: "bad signature" };
  if (c.aud !== host) return { ok: false, reason: "issued for another host" };
  if (c.exp <= nowS) return { ok: false, reason: "expired" };
  if (c.iat > nowS + 300) return { ok: false, reason: "issued in the future" };
  if (!IDENTITY_ID_RE.test(c.sub)) return { ok: false, reason: "subject is not an identity id" };
  return { ok: true, claims: { sub: c.sub, aud: c.aud, iat: c.iat, exp: c.exp, kid: c.kid } };
}

/** The session token a request carries: `Authorization: Bearer nxs1…` or the `nexus-session` cookie. */
export function sessionTokenOf(authorization: string | undefined, cookie: string | undefined): string | undefined {
  if (authorization !== undefined && authorization.startsWith("Bearer nxs1.")) return authorization.slice(7).trim();
  if (cookie === undefined || cookie.indexOf("nexus-session=") < 0) return undefined;
  for (const part of cookie.split(";")) {
    const p = part.trim();
    if (p.startsWith("nexus-session=")) return p.slice("nexus-session=".length);
  }
  return undefined;
}

/** The cookie header without the `nexus-session` cookie (undefined when nothing is left). */
export function cookieWithoutSession(cookie: string): string | undefined {
  const rest = cookie
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !p.startsWith("nexus-session="));
  return rest.length === 0 ? undefined : rest.join("; ");
}
