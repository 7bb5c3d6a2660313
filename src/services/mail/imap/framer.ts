/**
 * Cuts the client's byte stream into complete commands (RFC 3501 2.2 and 4.3): a command is one
 * or more CRLF-terminated lines joined by literals. A line ending in `{n}` is a synchronizing
 * literal: the server MUST answer with a continuation request ("+") before the client sends the n
 * octets (RFC 3501 7.5); `{n+}` (LITERAL+, RFC 7888) is sent without waiting.
 *
 * Bounds, all checked before any byte is buffered beyond them:
 * - a line (without its literals) longer than `lineBytesMax` ends the connection (BYE), as the
 *   rest of the stream cannot be resynchronised;
 * - a synchronizing literal over its limit is refused with a tagged reply and no continuation,
 *   so the client never sends it and the connection goes on; a non-synchronizing one over the
 *   limit ends the connection (its bytes are already on the way);
 * - APPEND literals are bounded by `appendBytesMax` (APPENDLIMIT, RFC 7889), other literals and
 *   the whole command by `literalBytesMax` and `commandBytesMax`.
 * - a non-synchronizing literal larger than 4096 octets ends the connection: the server
 *   advertises LITERAL- (RFC 7888 section 4), not LITERAL+.
 * A bare LF line end is taken as CRLF.
 */
import { imapReject, type ImapReplyError } from "./errors.ts";
import { tagOf } from "./parser.ts";

/** The framer's bounds. */
export interface FramerLimits {
  /** Longest line, literals excluded. */
  readonly lineBytesMax: number;
  /** Largest literal outside APPEND. */
  readonly literalBytesMax: number;
  /** Largest APPEND message literal (the APPENDLIMIT). */
  readonly appendBytesMax: number;
  /** Largest command outside APPEND's message (lines and literals together). */
  readonly commandBytesMax: number;
}

/** What the framer found. */
export type FrameEvent =
  | { readonly type: "command"; readonly bytes: Buffer }
  | { readonly type: "continue" }
  | { readonly type: "reject"; readonly tag: string | undefined; readonly error: ImapReplyError }
  | { readonly type: "fatal"; readonly error: ImapReplyError };

const LF = 0x0a;
const CR = 0x0d;
/** RFC 7888 section 4: the largest non-synchronizing literal under LITERAL-. */
export const NONSYNC_LITERAL_BYTES_MAX = 4096;
const LITERAL_RE = /\{(\d{1,20})(\+?)\}\r\n$/;

/** Stateful splitter of one connection's input. */
export class Framer {
  readonly limits: FramerLimits;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #parts: Buffer[] = [];
  #commandBytes = 0;
  #literalLeft = 0;
  #isAppend = false;
  #dead = false;

  constructor(limits: FramerLimits) {
    this.limits = limits;
  }

  /** Bytes buffered for the command in progress (for the server's in-flight budget). */
  get bufferedBytes(): number {
    return this.#commandBytes + this.#pendingBytes;
  }

  /** Drops everything buffered (after STARTTLS: nothing sent in clear may be taken over TLS). */
  reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#parts = [];
    this.#commandBytes = 0;
    this.#literalLeft = 0;
    this.#isAppend = false;
  }

  /** Feeds bytes; returns what they completed, in order. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let data = chunk;
    while (data.length > 0 && !this.#dead) {
      if (this.#literalLeft > 0) {
        const take = Math.min(this.#literalLeft, data.length);
        this.#parts.push(data.subarray(0, take));
        this.#literalLeft -= take;
        data = data.subarray(take);
        continue;
      }
      const lf = data.indexOf(LF);
      if (lf < 0) {
        this.#pending.push(data);
        this.#pendingBytes += data.length;
        if (this.#pendingBytes > this.limits.lineBytesMax) this.#fatal(events, "IMAP_LINE_TOO_LONG");
        break;
      }
      let line = this.#pending.length === 0 ? data.subarray(0, lf + 1) : Buffer.concat([...this.#pending, data.subarray(0, lf + 1)]);
      this.#pending = [];
      this.#pendingBytes = 0;
      data = data.subarray(lf + 1);
      if (line.length > this.limits.lineBytesMax) {
        this.#fatal(events, "IMAP_LINE_TOO_LONG");
        break;
      }
      if (line.length < 2 || line[line.length - 2] !== CR) line = Buffer.concat([line.subarray(0, line.length - 1), Buffer.from("\r\n")]);
      this.#line(line, events);
    }
    return events;
  }

  #line(line: Buffer, events: FrameEvent[]): void {
    if (this.#parts.length === 0) this.#isAppend = /^\S+ APPEND /i.test(line.toString("latin1", 0, Math.min(line.length, 80)));
    this.#parts.push(line);
    this.#commandBytes += line.length;
    const m = LITERAL_RE.exec(line.toString("latin1", Math.max(0, line.length - 26)));
    if (!m?.[1]) {
      if (this.#commandBytes > this.limits.commandBytesMax && !this.#isAppend) {
        this.#fatal(events, "IMAP_COMMAND_TOO_LARGE");
        return;
      }
      events.push({ type: "command", bytes: this.#parts.length === 1 ? line : Buffer.concat(this.#parts) });
      this.#parts = [];
      this.#commandBytes = 0;
      return;
    }
    const n = Number(m[1]);
    const sync = m[2] !== "+";
    const cap = this.#isAppend ? this.limits.appendBytesMax : this.limits.literalBytesMax;
    const overCommand = !this.#isAppend && this.#commandBytes + n > this.limits.commandBytesMax;
    if (!sync && n > NONSYNC_LITERAL_BYTES_MAX) {
      this.#fatal(events, this.#isAppend ? "IMAP_MESSAGE_TOO_LARGE" : "IMAP_LITERAL_TOO_LARGE");
      return;
    }
    if (n > cap || overCommand) {
      if (!sync) {
        this.#fatal(events, this.#isAppend ? "IMAP_MESSAGE_TOO_LARGE" : "IMAP_COMMAND_TOO_LARGE");
        return;
      }
      const tag = tagOf(this.#parts[0] ?? line);
      const error = imapReject(this.#isAppend ? "IMAP_MESSAGE_TOO_LARGE" : "IMAP_LITERAL_TOO_LARGE", `${n} octets`);
      this.reset();
      events.push({ type: "reject", tag, error });
      return;
    }
    this.#literalLeft = n;
    if (!this.#isAppend) this.#commandBytes += n;
    if (sync) events.push({ type: "continue" });
  }

  #fatal(events: FrameEvent[], code: "IMAP_LINE_TOO_LONG" | "IMAP_COMMAND_TOO_LARGE" | "IMAP_MESSAGE_TOO_LARGE" | "IMAP_LITERAL_TOO_LARGE"): void {
    this.#dead = true;
    this.reset();
    const error = imapReject(code);
    events.push({ type: "fatal", error });
  }
}
