/**
 * Error codes of the SMTP side of services/mail (SMTP in, submission, Maildir delivery, DKIM, the
 * outbound queue); docs/errors.md lists them under "## mail (smtp)".
 *
 * Codes that answer an SMTP command carry their one wire form in `SMTP_REPLIES`: the reply code
 * (RFC 5321 section 4.2) and the enhanced status code (RFC 3463) written at the start of the reply
 * text. The servers do not advertise ENHANCEDSTATUSCODES (RFC 2034), so smtp-server's own replies
 * have none; ours always carry one, as Postfix's do.
 */
import { NexusError, defineErrors, type ErrorSpec } from "../../../core/errors.ts";

/** The SMTP part's error table. */
export const smtpErrors = defineErrors({
  SMTP_RECIPIENT_UNKNOWN: { message: "No such mailbox here", http: 404, exit: 1 },
  SMTP_RELAY_DENIED: {
    message: "Relaying denied: this port accepts mail only for the domains hosted here",
    http: 403,
    exit: 1,
  },
  SMTP_MAILBOX_FULL: { message: "The mailbox is over its storage or message quota; try again later", http: 507, exit: 1 },
  SMTP_TOO_MANY_RECIPIENTS: { message: "Too many recipients for one message", http: 413, exit: 1 },
  SMTP_MESSAGE_TOO_LARGE: { message: "The message exceeds the fixed maximum message size", http: 413, exit: 1 },
  SMTP_HEADER_TOO_LARGE: { message: "The message header section exceeds its limit", http: 413, exit: 1 },
  SMTP_LINE_TOO_LONG: { message: "Line too long (RFC 5321 allows 1000 octets with CRLF)", http: 400, exit: 1 },
  SMTP_SENDER_NOT_OWNED: {
    message: "The envelope sender is not an address of the authenticated mailbox's IMVU (gate 5)",
    http: 403,
    exit: 1,
  },
  SMTP_FROM_NOT_OWNED: {
    message: "The From: header names an address outside the authenticated mailbox's IMVU (gate 5)",
    http: 403,
    exit: 1,
  },
  SMTP_FROM_INVALID: { message: "The message must have exactly one From: header with addresses (RFC 5322 3.6)", http: 400, exit: 1 },
  SMTP_LOOP_DETECTED: { message: "Routing loop detected: too many Received: fields (RFC 5321 6.3)", http: 508, exit: 1 },
  SMTP_DKIM_KEY_MISSING: { message: "The sending domain has no DKIM key yet; try again once its keys exist", http: 503, exit: 3 },
  SMTP_ADDRESS_INVALID: { message: "The address is not a valid mailbox (RFC 5321 4.1.2)", http: 400, exit: 2 },
  SMTP_AUTH_FAILED: { message: "Authentication credentials invalid", http: 401, exit: 1 },
  SMTP_AUTH_REQUIRED: { message: "Authentication required: STARTTLS, then AUTH PLAIN or LOGIN", http: 401, exit: 1 },
  SMTP_AUTH_TOO_MANY_FAILURES: { message: "Too many failed authentications; closing the connection", http: 429, exit: 1 },
  SMTP_TOO_MANY_CONNECTIONS: { message: "Too many connections from your address; try again later", http: 429, exit: 1 },
  SMTP_SERVER_BUSY: { message: "Insufficient system storage for messages in flight; try again later", http: 503, exit: 3 },
  SMTP_LOCAL_ERROR: { message: "Local error in processing; the message was not accepted, try again later", http: 500, exit: 3 },
  SMTP_LOOKUP_FAILED: { message: "The mailbox directory could not be consulted; try again later", http: 503, exit: 3 },
  // Not SMTP replies: configuration, storage and DNS failures.
  SMTP_CONFIG_INVALID: { message: "The SMTP configuration is not valid", http: 400, exit: 2 },
  SMTP_PATH_INVALID: {
    message: "The IMVU name or address cannot name a Maildir (a lower-case DNS label and a dot-atom mailbox are required)",
    http: 400,
    exit: 2,
  },
  SMTP_VERIFIER_INVALID: { message: "The password verifier is not a well-formed $scrypt$ string", http: 400, exit: 2 },
  SMTP_PASSWORD_INVALID: { message: "The password is empty or longer than the limit", http: 400, exit: 2 },
  SMTP_SECRET_STORE_INVALID: { message: "The mail secret store file is unreadable or malformed", http: 500, exit: 3 },
  SMTP_DKIM_KEY_INVALID: { message: "The DKIM key is not an RSA-2048+ or Ed25519 private key in PEM", http: 400, exit: 2 },
  SMTP_DKIM_SIGN_FAILED: { message: "The message could not be DKIM-signed", http: 500, exit: 3 },
  SMTP_TLS_INVALID: { message: "The TLS key or certificate could not be read or generated", http: 500, exit: 3 },
  SMTP_QUEUE_CORRUPT: { message: "An outbound queue entry is malformed and was set aside", http: 500, exit: 3 },
  SMTP_LISTEN_FAILED: { message: "The SMTP port could not be bound (in use, or no right to bind it)", http: 500, exit: 3 },
});

/** Every SMTP error code. */
export type SmtpErrorCode = keyof typeof smtpErrors.specs;

/** One wire form: the basic reply code and the enhanced status code (RFC 3463). */
export interface SmtpReply {
  readonly reply: number;
  readonly status: string;
}

/**
 * The SMTP reply of each code that answers a command. Chosen per RFC 5321 section 4.2.3 and
 * 4.5.3.1.10 and RFC 3463 section 3; e.g. an over-quota mailbox is the temporary 452 4.2.2 so the
 * sender retries, and an unknown recipient the permanent 550 5.1.1.
 */
export const SMTP_REPLIES = {
  SMTP_RECIPIENT_UNKNOWN: { reply: 550, status: "5.1.1" },
  SMTP_RELAY_DENIED: { reply: 550, status: "5.7.1" },
  SMTP_MAILBOX_FULL: { reply: 452, status: "4.2.2" },
  SMTP_TOO_MANY_RECIPIENTS: { reply: 452, status: "4.5.3" },
  SMTP_MESSAGE_TOO_LARGE: { reply: 552, status: "5.3.4" },
  SMTP_HEADER_TOO_LARGE: { reply: 552, status: "5.3.4" },
  SMTP_LINE_TOO_LONG: { reply: 500, status: "5.5.2" },
  SMTP_SENDER_NOT_OWNED: { reply: 553, status: "5.7.1" },
  SMTP_FROM_NOT_OWNED: { reply: 553, status: "5.7.1" },
  SMTP_FROM_INVALID: { reply: 550, status: "5.6.0" },
  SMTP_LOOP_DETECTED: { reply: 554, status: "5.4.6" },
  SMTP_DKIM_KEY_MISSING: { reply: 451, status: "4.7.5" },
  SMTP_ADDRESS_INVALID: { reply: 501, status: "5.1.3" },
  SMTP_AUTH_FAILED: { reply: 535, status: "5.7.8" },
  SMTP_AUTH_REQUIRED: { reply: 530, status: "5.7.0" },
  SMTP_AUTH_TOO_MANY_FAILURES: { reply: 421, status: "4.7.0" },
  SMTP_TOO_MANY_CONNECTIONS: { reply: 421, status: "4.7.0" },
  SMTP_SERVER_BUSY: { reply: 452, status: "4.3.1" },
  SMTP_LOCAL_ERROR: { reply: 451, status: "4.3.0" },
  SMTP_LOOKUP_FAILED: { reply: 451, status: "4.4.3" },
} as const satisfies Partial<Record<SmtpErrorCode, SmtpReply>>;

/** A code that answers an SMTP command. */
export type SmtpReplyCode = keyof typeof SMTP_REPLIES;

/**
 * An expected SMTP refusal. smtp-server sends `responseCode` and `message` as the reply, so the
 * message is the enhanced status code followed by the spec text and the detail.
 */
export class SmtpReplyError extends NexusError {
  readonly responseCode: number;
  readonly status: string;

  constructor(code: SmtpReplyCode, detail?: string) {
    const spec: ErrorSpec = smtpErrors.specs[code];
    super(code, spec, detail);
    const wire: SmtpReply = SMTP_REPLIES[code];
    this.name = "SmtpReplyError";
    this.responseCode = wire.reply;
    this.status = wire.status;
    this.message = `${wire.status} ${detail === undefined ? spec.message : `${spec.message}: ${detail}`}`;
  }

  /** The full reply line as sent on the wire (without CRLF). */
  get line(): string {
    return `${this.responseCode} ${this.message}`;
  }
}

/** Builds the refusal for `code` (throw it or hand it to an smtp-server callback). */
export function smtpReject(code: SmtpReplyCode, detail?: string): SmtpReplyError {
  return new SmtpReplyError(code, detail);
}
