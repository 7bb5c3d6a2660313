/**
 * Authenticated reads (gate 16): a request is signed with the caller's identity key (RFC 9421,
 * Ed25519, keyid = identity id), or carries a short-lived bearer token obtained by signing a
 * challenge. Either way the API learns which identity asks, and filters to that identity's IMVUs.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { fromBase64, utf8 } from "../core/crypto/bytes.ts";
import { ed25519Verify } from "../core/crypto/ed25519.ts";
import { verifyRequest, type SignableRequest } from "../core/crypto/httpsig.ts";
import type { StateReader } from "../core/pipeline/state.ts";

/** How long a signed request stays acceptable (either way). */
export const SIGNATURE_MAX_AGE_SEC = 300;
/** How long a bearer token lives. */
export const TOKEN_TTL_SEC = 600;
/** How long a challenge can be answered. */
export const CHALLENGE_TTL_SEC = 120;
/** The text an identity signs to obtain a token: prefix, then the challenge. */
export const CHALLENGE_PREFIX = "nexus-api-token-v1:";

/** Issues and checks challenges and tokens, keyed by a secret held only in memory. */
export class TokenAuthority {
  private readonly secret = randomBytes(32);
  private readonly clock: () => number;

  constructor(clock: () => number = () => Date.now()) {
    this.clock = clock;
  }

  private mac(s: string): string {
    return createHmac("sha256", this.secret).update(s).digest("base64url");
  }

  /** A fresh challenge: `<expiry>.<random>.<mac>` (stateless). */
  challenge(): string {
    const body = `${Math.floor(this.clock() / 1000) + CHALLENGE_TTL_SEC}.${randomBytes(16).toString("base64url")}`;
    return `${body}.${this.mac(`c:${body}`)}`;
  }

  /** Exchanges a signed challenge for a token; undefined when anything is off. */
  token(state: StateReader, identity: string, challenge: string, signatureB64: string): string | undefined {
    const parts = challenge.split(".");
    if (parts.length !== 3) return undefined;
    const [exp, rnd, mac] = parts as [string, string, string];
    if (!safeEqual(mac, this.mac(`c:${exp}.${rnd}`)) || Number(exp) < this.clock() / 1000) return undefined;
    const id = state.get("identity", identity);
    const key = id ? fromBase64(id.publicKey) : undefined;
    const sig = fromBase64(signatureB64, true);
    if (!key || !sig || !ed25519Verify(key, utf8(CHALLENGE_PREFIX + challenge), sig)) return undefined;
    const body = `${identity}.${Math.floor(this.clock() / 1000) + TOKEN_TTL_SEC}`;
    return `${body}.${this.mac(`t:${body}`)}`;
  }

  /** The identity a token names, if it is ours and unexpired. */
  check(token: string): string | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [id, exp, mac] = parts as [string, string, string];
    if (!safeEqual(mac, this.mac(`t:${id}.${exp}`)) || Number(exp) < this.clock() / 1000) return undefined;
    return id;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The identity behind a request (signature or bearer token), or undefined if anonymous/invalid. */
export function callerOf(state: StateReader, tokens: TokenAuthority, req: SignableRequest, nowSec: number): string | undefined {
  const authz = Object.entries(req.headers).find(([k]) => k.toLowerCase() === "authorization")?.[1];
  if (authz?.startsWith("Bearer ")) return tokens.check(authz.slice(7).trim());
  const r = verifyRequest(req, {
    resolveKey: (keyid) => {
      const id = state.get("identity", keyid.split("#")[0] ?? "");
      return id ? fromBase64(id.publicKey) : undefined;
    },
    required: ["@method", "@target-uri"],
    nowSec,
    maxAgeSec: SIGNATURE_MAX_AGE_SEC,
  });
  return r.ok ? r.keyid.split("#")[0] : undefined;
}
