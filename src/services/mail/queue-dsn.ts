/**
 * Delivery status notifications (bounces): a multipart/report message (RFC 6522) whose
 * machine-readable part is message/delivery-status (RFC 3464), with the original message's
 * header section as text/rfc822-headers (what RFC 3461's RET=HDRS returns, and never more, so a
 * bounce stays small). Pure.
 */
import { randomBytes } from "node:crypto";
import { rfc5322Date } from "./smtp/message.ts";

/** One recipient's final (or delayed) state. */
export interface DsnRecipient {
  readonly address: string;
  /** RFC 3464 2.3.3: "failed" or "delayed". */
  readonly action: "failed" | "delayed";
  /** RFC 3463 status code. */
  readonly status: string;
  /** `<diagnostic-type>; <text>` (RFC 3464 2.3.6), e.g. `smtp; 550 5.1.1 no such user`. */
  readonly diagnostic: string;
  readonly remoteMta?: string;
  readonly lastAttemptAt: Date;
}

/** What a DSN reports. */
export interface DsnInput {
  /** Our host name (Reporting-MTA, and the From: domain). */
  readonly reportingMta: string;
  /** Where the DSN goes: the original envelope sender. */
  readonly to: string;
  readonly queueId: string;
  readonly arrivalDate: Date;
  readonly recipients: readonly DsnRecipient[];
  /** The original header section (CRLF). */
  readonly originalHeaders: Buffer;
  readonly date: Date;
}

/** The largest slice of the original header section returned. */
export const DSN_ORIGINAL_HEADERS_BYTES_MAX = 64 * 1024;

function oneLine(s: string, max = 900): string {
  return s.replace(/[\r\n]+/g, " ").replace(/[^\x20-\x7e]/g, "?").slice(0, max);
}

/** The DSN message (CRLF line ends, 7bit). */
export function buildDsn(input: DsnInput): Buffer {
  const boundary = `nexus-dsn-${randomBytes(12).toString("hex")}`;
  const host = oneLine(input.reportingMta, 253);
  const failed = input.recipients.some((r) => r.action === "failed");
  const human = [
    `This is the mail system at host ${host}.`,
    "",
    failed
      ? "Your message could not be delivered to one or more recipients. It has been returned below (headers only)."
      : "Your message has not yet been delivered to one or more recipients; delivery will be retried.",
    "",
    ...input.recipients.map((r) => `<${oneLine(r.address, 320)}>: ${oneLine(r.diagnostic.replace(/^[^;]*;\s*/, ""))}`),
  ];
  const perMessage = [`Reporting-MTA: dns; ${host}`, `X-Nexus-Queue-ID: ${oneLine(input.queueId, 64)}`, `Arrival-Date: ${rfc5322Date(input.arrivalDate)}`];
  const perRecipient = input.recipients.map((r) =>
    [
      `Final-Recipient: rfc822; ${oneLine(r.address, 320)}`,
      `Action: ${r.action}`,
      `Status: ${/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : r.action === "failed" ? "5.0.0" : "4.0.0"}`,
      ...(r.remoteMta === undefined ? [] : [`Remote-MTA: dns; ${oneLine(r.remoteMta, 253)}`]),
      `Diagnostic-Code: ${oneLine(r.diagnostic)}`,
      `Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`,
    ].join("\r\n"),
  );
  const original = input.originalHeaders.subarray(0, DSN_ORIGINAL_HEADERS_BYTES_MAX);
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
    `To: <${oneLine(input.to, 320)}>`,
    `Subject: ${failed ? "Undelivered Mail Returned to Sender" : "Delayed Mail (still being retried)"}`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${randomBytes(12).toString("hex")}.dsn@${host}>`,
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    "This is a MIME-encapsulated message.",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=us-ascii",
    "",
    ...human,
    "",
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "",
    perMessage.join("\r\n"),
    "",
    perRecipient.join("\r\n\r\n"),
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    "",
    "",
  ].join("\r\n");
  const endsWithCrlf = original.length >= 2 && original[original.length - 2] === 0x0d && original[original.length - 1] === 0x0a;
  const tail = `${endsWithCrlf ? "" : "\r\n"}\r\n--${boundary}--\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), original, Buffer.from(tail, "latin1")]);
}
