/**
 * Mailbox passwords made in the page, as `nexus mail add` makes them (src/cli/commands/mail.ts):
 * a generated password (18 random bytes, base64url), its scrypt verifier (RFC 7914, N = 2^15,
 * r = 8, p = 1, a random 16-byte salt, a 32-byte key) in the PHC-like string of
 * src/services/mail/directory.ts (`$scrypt$ln=15,r=8,p=1$<salt>$<key>`, unpadded standard
 * base64), and the commitment the ledger records: SHA-256 of the verifier string, lower-case hex.
 * scrypt is @noble/hashes' pure-JS implementation (WebCrypto has none); the password and the
 * verifier never enter a command, and the password never leaves the page.
 */
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { randomBytes, sha256Hex, toBase64, toBase64Url, utf8 } from "./bytes.ts";

/** scrypt parameters of src/services/mail/directory.ts (SCRYPT_LOG2_N, SCRYPT_BLOCK_SIZE, SCRYPT_PARALLELISM). */
export const SCRYPT_LOG2_N = 15;
export const SCRYPT_BLOCK_SIZE = 8;
export const SCRYPT_PARALLELISM = 1;
/** Salt and derived key lengths (SCRYPT_SALT_BYTES, SCRYPT_KEY_BYTES). */
export const SCRYPT_SALT_BYTES = 16;
export const SCRYPT_KEY_BYTES = 32;
/** Longest password the mail servers accept (bytes of UTF-8, PASSWORD_BYTES_MAX). */
export const PASSWORD_BYTES_MAX = 1024;
/** Bytes of randomness in a generated password (the CLI's GENERATED_PASSWORD_BYTES: 24 characters, 144 bits). */
export const GENERATED_PASSWORD_BYTES = 18;
/** Longest time the derivation may block the page at once (ms). */
const SCRYPT_TICK_MS = 10;

/** A fresh password: 18 random bytes as base64url (what the CLI generates). */
export function generatePassword(): string {
  return toBase64Url(randomBytes(GENERATED_PASSWORD_BYTES));
}

function unpadded(b: Uint8Array): string {
  return toBase64(b).replace(/=+$/, "");
}

/**
 * The scrypt verifier of `password` with the mail servers' parameters. `salt` is random unless
 * given (the tests give one to compare with Node's scrypt byte for byte); `onProgress` gets 0..1.
 */
export async function createPasswordVerifier(password: string, opts: { salt?: Uint8Array; onProgress?: (f: number) => void } = {}): Promise<string> {
  const bytes = utf8(password).length;
  if (bytes === 0 || bytes > PASSWORD_BYTES_MAX) throw new Error(`a password of 1 to ${PASSWORD_BYTES_MAX} bytes of UTF-8`);
  const salt = opts.salt ?? randomBytes(SCRYPT_SALT_BYTES);
  if (salt.length !== SCRYPT_SALT_BYTES) throw new Error(`a salt of ${SCRYPT_SALT_BYTES} bytes`);
  const key = await scryptAsync(utf8(password), salt, {
    N: 2 ** SCRYPT_LOG2_N,
    r: SCRYPT_BLOCK_SIZE,
    p: SCRYPT_PARALLELISM,
    dkLen: SCRYPT_KEY_BYTES,
    asyncTick: SCRYPT_TICK_MS,
    ...(opts.onProgress === undefined ? {} : { onProgress: opts.onProgress }),
  });
  return `$scrypt$ln=${SCRYPT_LOG2_N},r=${SCRYPT_BLOCK_SIZE},p=${SCRYPT_PARALLELISM}$${unpadded(salt)}$${unpadded(key)}`;
}

/** What `mail.mailbox.add` carries: SHA-256 of the verifier string, lower-case hex. */
export function verifierCommitment(verifier: string): Promise<string> {
  return sha256Hex(utf8(verifier));
}
