/**
 * Error codes of the IMAP server (src/services/mail/imap); docs/errors.md lists them under
 * "## mail (imap)", with the Maildir codes they are mapped from.
 *
 * Each code that answers a command has one wire form in `IMAP_REPLIES`: the status (RFC 3501
 * 7.1: NO refuses a valid command, BAD a malformed or misplaced one, BYE ends the connection) and
 * the response code in brackets (RFC 5530, RFC 3501 7.1, RFC 7889 TOOBIG).
 */
import { NexusError, defineErrors, isNexusError, type ErrorSpec } from "../../../core/errors.ts";

/** The IMAP part's error table. */
export const imapErrors = defineErrors({
  IMAP_SYNTAX: { message: "Malformed command", http: 400, exit: 2 },
  IMAP_COMMAND_UNKNOWN: { message: "Unknown or unsupported command", http: 400, exit: 2 },
  IMAP_COMMAND_STATE: { message: "The command is not valid in this state", http: 409, exit: 2 },
  IMAP_LINE_TOO_LONG: { message: "Command line too long; closing the connection", http: 413, exit: 2 },
  IMAP_LITERAL_TOO_LARGE: { message: "Literal larger than the limit for this command", http: 413, exit: 2 },
  IMAP_COMMAND_TOO_LARGE: { message: "Command larger than the limit; closing the connection", http: 413, exit: 2 },
  IMAP_MESSAGE_TOO_LARGE: { message: "The message is larger than APPENDLIMIT", http: 413, exit: 1 },
  IMAP_TOO_MANY_BAD_COMMANDS: { message: "Too many malformed commands; closing the connection", http: 429, exit: 1 },
  IMAP_MESSAGESET_INVALID: { message: "Invalid message set (a sequence number beyond the mailbox)", http: 400, exit: 2 },
  IMAP_BADCHARSET: { message: "Unsupported search charset", http: 400, exit: 2 },
  IMAP_AUTH_FAILED: { message: "Authentication failed", http: 401, exit: 1 },
  IMAP_AUTHZ_FAILED: { message: "Authorization identity differs from the authentication identity", http: 403, exit: 1 },
  IMAP_AUTH_MECHANISM: { message: "Unsupported authentication mechanism", http: 400, exit: 2 },
  IMAP_AUTH_CANCELLED: { message: "Authentication cancelled", http: 400, exit: 1 },
  IMAP_AUTH_TOO_MANY_FAILURES: { message: "Too many failed authentications; closing the connection", http: 429, exit: 1 },
  IMAP_PRIVACY_REQUIRED: { message: "Authentication needs TLS first (STARTTLS)", http: 403, exit: 1 },
  IMAP_TLS_UNAVAILABLE: { message: "TLS is not available or already active", http: 400, exit: 1 },
  IMAP_TOO_MANY_CONNECTIONS: { message: "Too many connections; try again later", http: 429, exit: 1 },
  IMAP_TOO_MANY_SESSIONS: { message: "Too many sessions for this mailbox; try again later", http: 429, exit: 1 },
  IMAP_AUTOLOGOUT: { message: "Autologout; idle for too long", http: 408, exit: 1 },
  IMAP_SHUTDOWN: { message: "Server shutting down", http: 503, exit: 3 },
  IMAP_MAILBOX_NONEXISTENT: { message: "No such mailbox", http: 404, exit: 1 },
  IMAP_MAILBOX_TRYCREATE: { message: "No such mailbox; create it first", http: 404, exit: 1 },
  IMAP_MAILBOX_EXISTS: { message: "The mailbox already exists", http: 409, exit: 1 },
  IMAP_MAILBOX_NAME_INVALID: { message: "The mailbox name is not valid here", http: 400, exit: 2 },
  IMAP_MAILBOX_HAS_CHILDREN: { message: "The mailbox has children; delete them first", http: 409, exit: 1 },
  IMAP_MAILBOX_FIXED: { message: "INBOX cannot be deleted", http: 409, exit: 1 },
  IMAP_MAILBOX_IN_USE: { message: "The mailbox is locked by another process; try again", http: 503, exit: 3 },
  IMAP_READ_ONLY: { message: "The mailbox is selected read-only (EXAMINE)", http: 403, exit: 1 },
  IMAP_MESSAGE_GONE: { message: "Some of the requested messages no longer exist", http: 410, exit: 1 },
  IMAP_LIMIT: { message: "An implementation limit was reached (keywords, folders or messages)", http: 507, exit: 1 },
  IMAP_OVERQUOTA: { message: "The mailbox is over its storage quota", http: 507, exit: 1 },
  IMAP_SERVER_ERROR: { message: "Internal server error; the operation was not done", http: 500, exit: 3 },
  // Not command answers: configuration and startup.
  IMAP_CONFIG_INVALID: { message: "The IMAP server configuration is not valid", http: 400, exit: 2 },
  IMAP_LISTEN_FAILED: { message: "The IMAP port could not be bound (in use, or no right to bind it)", http: 500, exit: 3 },
});

/** Every IMAP error code. */
export type ImapErrorCode = keyof typeof imapErrors.specs;

/** The wire form of a code: status and optional response code. */
export interface ImapWire {
  readonly status: "NO" | "BAD" | "BYE";
  readonly code?: string;
}

/** The reply of each code that answers a command (RFC 3501 7.1, RFC 5530 section 3). */
export const IMAP_REPLIES = {
  IMAP_SYNTAX: { status: "BAD" },
  IMAP_COMMAND_UNKNOWN: { status: "BAD" },
  IMAP_COMMAND_STATE: { status: "BAD" },
  IMAP_LINE_TOO_LONG: { status: "BYE", code: "LIMIT" },
  IMAP_LITERAL_TOO_LARGE: { status: "BAD", code: "LIMIT" },
  IMAP_COMMAND_TOO_LARGE: { status: "BYE", code: "LIMIT" },
  IMAP_MESSAGE_TOO_LARGE: { status: "NO", code: "TOOBIG" },
  IMAP_TOO_MANY_BAD_COMMANDS: { status: "BYE", code: "LIMIT" },
  IMAP_MESSAGESET_INVALID: { status: "BAD" },
  IMAP_BADCHARSET: { status: "NO", code: "BADCHARSET (US-ASCII UTF-8)" },
  IMAP_AUTH_FAILED: { status: "NO", code: "AUTHENTICATIONFAILED" },
  IMAP_AUTHZ_FAILED: { status: "NO", code: "AUTHORIZATIONFAILED" },
  IMAP_AUTH_MECHANISM: { status: "NO", code: "CANNOT" },
  IMAP_AUTH_CANCELLED: { status: "BAD" },
  IMAP_AUTH_TOO_MANY_FAILURES: { status: "BYE", code: "UNAVAILABLE" },
  IMAP_PRIVACY_REQUIRED: { status: "NO", code: "PRIVACYREQUIRED" },
  IMAP_TLS_UNAVAILABLE: { status: "BAD" },
  IMAP_TOO_MANY_CONNECTIONS: { status: "BYE", code: "UNAVAILABLE" },
  IMAP_TOO_MANY_SESSIONS: { status: "NO", code: "LIMIT" },
  IMAP_AUTOLOGOUT: { status: "BYE" },
  IMAP_SHUTDOWN: { status: "BYE", code: "UNAVAILABLE" },
  IMAP_MAILBOX_NONEXISTENT: { status: "NO", code: "NONEXISTENT" },
  IMAP_MAILBOX_TRYCREATE: { status: "NO", code: "TRYCREATE" },
  IMAP_MAILBOX_EXISTS: { status: "NO", code: "ALREADYEXISTS" },
  IMAP_MAILBOX_NAME_INVALID: { status: "NO", code: "CANNOT" },
  IMAP_MAILBOX_HAS_CHILDREN: { status: "NO", code: "HASCHILDREN" },
  IMAP_MAILBOX_FIXED: { status: "NO", code: "CANNOT" },
  IMAP_MAILBOX_IN_USE: { status: "NO", code: "INUSE" },
  IMAP_READ_ONLY: { status: "NO", code: "READ-ONLY" },
  IMAP_MESSAGE_GONE: { status: "NO", code: "EXPUNGEISSUED" },
  IMAP_LIMIT: { status: "NO", code: "LIMIT" },
  IMAP_OVERQUOTA: { status: "NO", code: "OVERQUOTA" },
  IMAP_SERVER_ERROR: { status: "NO", code: "SERVERBUG" },
} as const satisfies Partial<Record<ImapErrorCode, ImapWire>>;

/** A code that answers an IMAP command. */
export type ImapReplyCode = keyof typeof IMAP_REPLIES;

/** An expected IMAP refusal, with its status and response code. */
export class ImapReplyError extends NexusError {
  readonly status: "NO" | "BAD" | "BYE";
  readonly respCode: string | undefined;

  constructor(code: ImapReplyCode, detail?: string) {
    const spec: ErrorSpec = imapErrors.specs[code];
    super(code, spec, detail);
    const wire: ImapWire = IMAP_REPLIES[code];
    this.name = "ImapReplyError";
    this.status = wire.status;
    this.respCode = wire.code;
  }

  /** Status, response code and text (`NO [TRYCREATE] No such mailbox`), kept to one safe line. */
  text(): string {
    const text = this.message.replace(/[\r\n\0]+/g, " ").slice(0, 400);
    return this.respCode === undefined ? `${this.status} ${text}` : `${this.status} [${this.respCode}] ${text}`;
  }

  /** The reply line for `tag` (BYE is always untagged), without CRLF. */
  line(tag: string): string {
    return `${this.status === "BYE" ? "*" : tag} ${this.text()}`;
  }
}

/** Builds the refusal for `code`. */
export function imapReject(code: ImapReplyCode, detail?: string): ImapReplyError {
  return new ImapReplyError(code, detail);
}

/** The IMAP reply each Maildir code reaches the client as (docs/errors.md lists it beside the code). */
export const MAILDIR_TO_IMAP: Readonly<Record<string, ImapReplyCode>> = {
  MAILDIR_NAME_INVALID: "IMAP_MAILBOX_NAME_INVALID",
  MAILDIR_NOT_FOUND: "IMAP_MAILBOX_NONEXISTENT",
  MAILDIR_EXISTS: "IMAP_MAILBOX_EXISTS",
  MAILDIR_HAS_CHILDREN: "IMAP_MAILBOX_HAS_CHILDREN",
  MAILDIR_INBOX_FIXED: "IMAP_MAILBOX_FIXED",
  MAILDIR_LOCK_TIMEOUT: "IMAP_MAILBOX_IN_USE",
  MAILDIR_MESSAGE_GONE: "IMAP_MESSAGE_GONE",
  MAILDIR_MESSAGE_TOO_LARGE: "IMAP_MESSAGE_TOO_LARGE",
  MAILDIR_TOO_MANY_MESSAGES: "IMAP_LIMIT",
  MAILDIR_TOO_MANY_FOLDERS: "IMAP_LIMIT",
  MAILDIR_KEYWORDS_FULL: "IMAP_LIMIT",
  MAILDIR_UIDS_EXHAUSTED: "IMAP_LIMIT",
};

/**
 * The IMAP reply for any error: ImapReplyError as is, Maildir codes mapped, anything else (a bug
 * or an unexpected I/O failure) IMAP_SERVER_ERROR without its detail, so nothing internal leaks.
 */
export function toImapReply(e: unknown): ImapReplyError {
  if (e instanceof ImapReplyError) return e;
  if (isNexusError(e)) {
    const mapped = MAILDIR_TO_IMAP[e.code];
    if (mapped !== undefined) return new ImapReplyError(mapped);
  }
  return new ImapReplyError("IMAP_SERVER_ERROR");
}
