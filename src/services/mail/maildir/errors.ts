/**
 * Error codes of the Maildir reader/writer that the IMAP server stands on
 * (src/services/mail/maildir); docs/errors.md lists them under "## mail (imap)".
 */
import { defineErrors } from "../../../core/errors.ts";

/** The Maildir part's error table. */
export const maildirErrors = defineErrors({
  MAILDIR_NAME_INVALID: {
    message:
      "The mailbox name cannot name a Maildir++ folder (empty hierarchy level, '/', '~', control or 8-bit characters, bad modified UTF-7, or too long)",
    http: 400,
    exit: 2,
  },
  MAILDIR_NOT_FOUND: { message: "No such mailbox", http: 404, exit: 1 },
  MAILDIR_EXISTS: { message: "The mailbox already exists", http: 409, exit: 1 },
  MAILDIR_HAS_CHILDREN: { message: "The mailbox has child mailboxes; delete them first", http: 409, exit: 1 },
  MAILDIR_INBOX_FIXED: { message: "INBOX cannot be deleted", http: 409, exit: 1 },
  MAILDIR_LOCK_TIMEOUT: {
    message: "The mailbox's dovecot-uidlist lock could not be taken in time (another process holds it)",
    http: 503,
    exit: 3,
  },
  MAILDIR_UIDLIST_INVALID: { message: "The dovecot-uidlist file is malformed", http: 500, exit: 3 },
  MAILDIR_MESSAGE_GONE: { message: "The message was expunged by another session", http: 410, exit: 1 },
  MAILDIR_MESSAGE_TOO_LARGE: { message: "The message exceeds the largest message the mailbox stores", http: 413, exit: 1 },
  MAILDIR_TOO_MANY_MESSAGES: { message: "The folder holds more messages than the reader handles", http: 507, exit: 1 },
  MAILDIR_TOO_MANY_FOLDERS: { message: "The Maildir holds more folders than the limit", http: 507, exit: 1 },
  MAILDIR_KEYWORDS_FULL: { message: "The folder already uses all 26 keyword letters of dovecot-keywords", http: 507, exit: 1 },
  MAILDIR_UIDS_EXHAUSTED: { message: "The folder ran out of 32-bit UIDs", http: 507, exit: 1 },
  MAILDIR_IO: { message: "A Maildir file or directory could not be read or written", http: 500, exit: 3 },
});

/** Every Maildir error code. */
export type MaildirErrorCode = keyof typeof maildirErrors.specs;
