/**
 * The message side of a mail transaction: reading DATA within its bounds, finding the header
 * section, reading header fields, and writing trace fields. Pure functions except
 * `collectMessage`, which reads the stream smtp-server hands over.
 */
import type { Readable } from "node:stream";
import addressparser from "nodemailer/lib/addressparser";
import type { SmtpReplyCode } from "./errors.ts";
import type { ByteBudget, SmtpLimits } from "./limits.ts";

const LF = 0x0a;

/** A message read from DATA (CRLF line ends, dot-unstuffed), or why it was refused. */
export interface Collected {
  /** The message, when it stayed within every bound. */
  readonly data: Buffer | undefined;
  /** The refusal when it did not. */
  readonly failure: SmtpReplyCode | undefined;
  /** Bytes received in total (also when refused). */
  readonly bytes: number;
  /** Gives the buffered bytes back to the shared budget; call once after delivery. */
  release(): void;
}

/**
 * Reads the DATA stream to its end (always to the end, so the connection stays in step), keeping
 * the message in memory while it stays within `messageBytesMax`, `lineBytesMax` (RFC 5321
 * 4.5.3.1.6) and the server's shared byte budget. Resolves once the stream ends; rejects when
 * the connection drops mid-message.
 */
export function collectMessage(
  stream: Readable & { sizeExceeded?: boolean },
  limits: Pick<SmtpLimits, "messageBytesMax" | "lineBytesMax">,
  budget: ByteBudget,
): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let reserved = 0;
    let bytes = 0;
    let lineLen = 0;
    let failure: SmtpReplyCode | undefined;
    const release = (): void => {
      budget.release(reserved);
      reserved = 0;
    };
    const fail = (code: SmtpReplyCode): void => {
      failure ??= code;
      chunks.length = 0;
      release();
    };
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (failure !== undefined) return;
      if (bytes > limits.messageBytesMax) return fail("SMTP_MESSAGE_TOO_LARGE");
      let pos = 0;
      for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, pos)) {
        if (lineLen + (i - pos + 1) > limits.lineBytesMax) return fail("SMTP_LINE_TOO_LONG");
        lineLen = 0;
        pos = i + 1;
      }
      lineLen += chunk.length - pos;
      // The last line may still grow; only its CRLF may reach the limit (limit counts CRLF).
      if (lineLen > limits.lineBytesMax - 1) return fail("SMTP_LINE_TOO_LONG");
      if (!budget.take(chunk.length)) return fail("SMTP_SERVER_BUSY");
      reserved += chunk.length;
      chunks.push(chunk);
    });
    stream.once("end", () => {
      if (stream.sizeExceeded === true && failure === undefined) fail("SMTP_MESSAGE_TOO_LARGE");
      const data = failure === undefined ? Buffer.concat(chunks, bytes) : undefined;
      resolve({ data, failure, bytes, release });
    });
    stream.once("error", (e: Error) => {
      release();
      reject(e);
    });
  });
}

/** Where the header section ends: `headerBytes` covers the fields with their CRLFs, `bodyStart` skips the empty line. */
export interface HeaderSpan {
  readonly headerBytes: number;
  readonly bodyStart: number;
}

/** Finds the header/body boundary (RFC 5322 2.1: the first empty line). */
export function headerSpan(data: Buffer): HeaderSpan {
  if (data[0] === 0x0d && data[1] === LF) return { headerBytes: 0, bodyStart: 2 };
  const i = data.indexOf("\r\n\r\n");
  if (i < 0) return { headerBytes: data.length, bodyStart: data.length };
  return { headerBytes: i + 2, bodyStart: i + 4 };
}

/** One header field: lower-case name, unfolded value, and its byte range (with the CRLF). */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

/** Header fields read, at most (the header section is bounded by headerBytesMax already). */
export const HEADER_FIELDS_MAX = 10_000;

/** The fields of the header section `data[0, headerBytes)` (latin1, so offsets are byte offsets). */
export function headerFields(data: Buffer, headerBytes: number): HeaderField[] {
  const text = data.toString("latin1", 0, headerBytes);
  const out: HeaderField[] = [];
  let pos = 0;
  let current: { name: string; value: string; start: number } | undefined;
  const flush = (end: number): void => {
    if (current) out.push({ ...current, value: current.value.trim(), end });
    current = undefined;
  };
  while (pos < text.length && out.length < HEADER_FIELDS_MAX) {
    let eol = text.indexOf("\r\n", pos);
    if (eol < 0) eol = text.length;
    const line = text.slice(pos, eol);
    if ((line.startsWith(" ") || line.startsWith("\t")) && current) {
      current.value += line; // RFC 5322 2.2.3: unfolding removes the CRLF before WSP
    } else {
      flush(pos);
      const colon = line.indexOf(":");
      if (colon > 0) current = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1), start: pos };
    }
    pos = Math.min(eol + 2, text.length);
  }
  flush(pos);
  return out;
}

/**
 * The addresses of the From: fields (RFC 5322 3.6.2), decoded as UTF-8; `fields` counts the From:
 * fields, since a valid message has exactly one.
 */
export function fromAddresses(data: Buffer, fields: readonly HeaderField[]): { fields: number; addresses: string[] } {
  const froms = fields.filter((f) => f.name === "from");
  const addresses: string[] = [];
  for (const f of froms) {
    const raw = data.toString("utf8", f.start, f.end).replace(/^[^:]*:/, "").replace(/\r\n/g, "");
    for (const a of addressparser(raw, { flatten: true })) {
      if (a.address) addresses.push(a.address);
    }
  }
  return { fields: froms.length, addresses };
}

/** The message with the fields at the given ranges cut out. */
export function withoutFields(data: Buffer, drop: readonly HeaderField[]): Buffer {
  if (drop.length === 0) return data;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const f of [...drop].sort((a, b) => a.start - b.start)) {
    parts.push(data.subarray(pos, f.start));
    pos = f.end;
  }
  parts.push(data.subarray(pos));
  return Buffer.concat(parts);
}

/**
 * Authentication-Results fields that claim our authserv-id: RFC 8601 section 5 says a receiver
 * MUST remove (or obscure) them before adding its own, or a sender could forge our verdicts.
 */
export function forgedAuthResults(fields: readonly HeaderField[], authservId: string): HeaderField[] {
  const id = authservId.toLowerCase();
  return fields.filter((f) => f.name === "authentication-results" && f.value.split(";")[0]?.trim().split(/\s+/)[0]?.toLowerCase() === id);
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** An RFC 5322 3.3 date-time in UTC, e.g. `Sun, 23 Nov 2025 01:21:58 +0000`. */
export function rfc5322Date(d: Date): string {
  const p2 = (n: number): string => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(
    d.getUTCMinutes(),
  )}:${p2(d.getUTCSeconds())} +0000`;
}

/** Text safe inside a trace comment or token: printable ASCII without parentheses, brackets or backslash. */
function traceSafe(s: string, max = 255): string {
  return s.replace(/[^\x21-\x7e]|[()[\]\\]/g, "").slice(0, max) || "unknown";
}

/** What a Received: field records (RFC 5321 4.4). */
export interface TraceInfo {
  readonly helo: string;
  readonly clientHostname: string;
  readonly clientIp: string;
  readonly by: string;
  /** RFC 3848 protocol: ESMTP, ESMTPS, ESMTPSA... */
  readonly protocol: string;
  readonly id: string;
  readonly recipient?: string;
  readonly tls?: string;
  readonly date: Date;
}

/** The Received: field (RFC 5321 4.4, RFC 5322 3.6.7), folded, with CRLF. */
export function receivedField(t: TraceInfo): string {
  const ip = traceSafe(t.clientIp.replace(/^::ffff:/, ""));
  const from = `from ${traceSafe(t.helo)} (${traceSafe(t.clientHostname)} [${ip}])`;
  const tls = t.tls === undefined ? "" : `\r\n\t(using ${t.tls.split(/\s+/).map((w) => traceSafe(w, 64)).join(" ")})`;
  const rcpt = t.recipient === undefined ? "" : `\r\n\tfor <${traceSafe(t.recipient, 320)}>`;
  return `Received: ${from}\r\n\tby ${traceSafe(t.by)} (Nexus COS) with ${traceSafe(t.protocol)} id ${traceSafe(t.id)}${tls}${rcpt};\r\n\t${rfc5322Date(t.date)}\r\n`;
}

/** The Return-Path: field the final delivery adds (RFC 5321 4.4), with CRLF. */
export function returnPathField(sender: string): string {
  return `Return-Path: <${sender.replace(/[\r\n<>]/g, "")}>\r\n`;
}
