/**
 * Identity ids: "nx1" followed by the lower-case, unpadded RFC 4648 §6 base32 of the SHA-256 of
 * the inception event's RFC 8785 canonical JSON (52 characters for 32 bytes). The id is
 * self-certifying: anyone holding the inception event recomputes it, and nobody can choose it.
 */

/** The prefix of every identity id ("nx" and the id format version 1). */
export const IDENTITY_ID_PREFIX = "nx1";
/** Characters of base32 after the prefix: ceil(256 / 5). */
export const IDENTITY_ID_DIGEST_CHARS = 52;
/** An identity id, exactly. */
export const IDENTITY_ID_RE = /^nx1[a-z2-7]{52}$/;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"; // RFC 4648 §6, lower-cased

/** RFC 4648 §6 base32, lower-case, without "=" padding. */
export function base32LowerNoPad(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1; // keep only the bits not yet written
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** The id of the identity whose inception event digest (SHA-256 of its JCS bytes) is `digest`. */
export function identityIdFromDigest(digest: Uint8Array): string {
  return IDENTITY_ID_PREFIX + base32LowerNoPad(digest);
}

/** True when `s` is a well-formed identity id. */
export function isIdentityId(s: string): boolean {
  return IDENTITY_ID_RE.test(s);
}
