/** Byte helpers: hex and base64 codecs that reject malformed input instead of guessing. */

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;
/** Standard padded base64: with the length a multiple of 4, the same language as groups of four with a padded last group (no nested quantifier: linear on megabyte payloads). */
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** Lower-case hex of `b`. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** Decodes hex (even length, [0-9a-f] either case); undefined when malformed. */
export function fromHex(s: string): Uint8Array | undefined {
  if (!HEX_RE.test(s)) return undefined;
  return new Uint8Array(Buffer.from(s, "hex"));
}

/** Standard padded base64 of `b`. */
export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

/** Decodes standard padded base64, or (with `urlSafe`) also unpadded base64url; undefined when malformed. */
export function fromBase64(s: string, urlSafe = false): Uint8Array | undefined {
  if (s.length % 4 === 0 && B64_RE.test(s)) return new Uint8Array(Buffer.from(s, "base64"));
  if (urlSafe && B64URL_RE.test(s.replace(/=+$/, "")) && s.replace(/=+$/, "").length % 4 !== 1) {
    return new Uint8Array(Buffer.from(s.replace(/=+$/, ""), "base64url"));
  }
  return undefined;
}

/** Constant-time-agnostic equality of two byte arrays (for public data such as hashes). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** UTF-8 encoding of `s`. */
export function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "utf8"));
}
