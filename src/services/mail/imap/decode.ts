/**
 * Decoding for SEARCH (RFC 3501 6.4.4 matches text, not its encoding): RFC 2047 encoded words in
 * header values, RFC 2045 6.7/6.8 quoted-printable and base64 bodies, and charsets through the
 * WHATWG TextDecoder (unknown charsets fall back to latin1, so nothing throws).
 */

/** Longest text decoded from one body part for SEARCH. */
export const SEARCH_PART_BYTES_MAX = 16 * 1024 * 1024;

/** Decodes `bytes` from `charset` (US-ASCII and unknown labels as latin1/UTF-8 leniently). */
export function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  const label = (charset ?? "utf-8").trim().toLowerCase();
  if (label === "us-ascii" || label === "ascii") return bytes.toString("latin1");
  try {
    return new TextDecoder(label, { fatal: false }).decode(bytes);
  } catch {
    return bytes.toString("latin1");
  }
}

/** RFC 2045 6.7 quoted-printable to bytes (soft line breaks removed, bad escapes kept). */
export function decodeQuotedPrintable(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i] ?? 0;
    if (c !== 0x3d) {
      out[o++] = c;
      continue;
    }
    const a = input[i + 1];
    const b = input[i + 2];
    if (a === 0x0d && b === 0x0a) {
      i += 2;
      continue;
    }
    if (a === 0x0a) {
      i += 1;
      continue;
    }
    const hex = String.fromCharCode(a ?? 0, b ?? 0);
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      out[o++] = Number.parseInt(hex, 16);
      i += 2;
    } else out[o++] = c;
  }
  return out.subarray(0, o);
}

/** Decodes a body by its Content-Transfer-Encoding (7bit, 8bit, binary pass through). */
export function decodeTransfer(body: Buffer, encoding: string | undefined): Buffer {
  const e = (encoding ?? "7bit").trim().toLowerCase();
  if (e === "base64") return Buffer.from(body.toString("latin1").replace(/[^A-Za-z0-9+/]/g, ""), "base64");
  if (e === "quoted-printable") return decodeQuotedPrintable(body);
  return body;
}

const ENCODED_WORD_RE = /=\?([^?\s]{1,64})\?([BbQq])\?([^?\s]{0,2000})\?=/g;

/** RFC 2047 encoded words in a (latin1) header value to text; whitespace between words dropped. */
export function decodeWords(value: string): string {
  // Raw 8-bit header octets are taken as UTF-8 (RFC 6532); encoded words are ASCII and survive that.
  const text = decodeCharset(Buffer.from(value, "latin1"), "utf-8").replace(/(\?=)\s+(=\?)/g, "$1$2");
  return text.replace(ENCODED_WORD_RE, (_all: string, charset: string, enc: string, data: string) => {
    const cs = charset.split("*")[0] ?? charset;
    const bytes =
      enc.toUpperCase() === "B" ? Buffer.from(data, "base64") : decodeQuotedPrintable(Buffer.from(data.replace(/_/g, " "), "latin1"));
    return decodeCharset(bytes, cs);
  });
}
