/**
 * HTTP Message Signatures (RFC 9421, Ed25519 §3.3.6) made in the page, as the CLI signs its source
 * uploads (src/cli/commands/compute.ts uploadSource, src/core/crypto/httpsig.ts signRequest):
 * covered components `@method` and `@target-uri`, parameters `created`, `keyid` (the identity id)
 * and `alg="ed25519"`, label `sig1`. The key is the identity's non-extractable WebCrypto key.
 */
import { toBase64, utf8 } from "./bytes.ts";
import type { StoredIdentity } from "./db.ts";
import { sign } from "./identity.ts";

/** The covered components (what the API requires: src/api/auth.ts callerOf). */
export const SIGNED_COMPONENTS = ["@method", "@target-uri"] as const;

/** The Signature-Input and Signature header values for `method url`, signed now by `who`. */
export async function signRequest(who: Pick<StoredIdentity, "id" | "current">, method: string, url: string, nowSec = Math.floor(Date.now() / 1000)): Promise<{ "signature-input": string; signature: string }> {
  if (!Number.isSafeInteger(nowSec) || nowSec < 0) throw new RangeError("created must be a whole number of seconds");
  if (!/^[A-Za-z0-9._~:-]+$/.test(who.id)) throw new RangeError("a keyid of URL-safe characters");
  const target = new URL(url).href;
  const params = `(${SIGNED_COMPONENTS.map((c) => `"${c}"`).join(" ")});created=${nowSec};keyid="${who.id}";alg="ed25519"`;
  const base = [`"@method": ${method.toUpperCase()}`, `"@target-uri": ${target}`, `"@signature-params": ${params}`].join("\n");
  const sig = await sign(who.current, utf8(base));
  return { "signature-input": `sig1=${params}`, signature: `sig1=:${toBase64(sig)}:` };
}
