/** Maildir (with Dovecot's uidlist, keywords and Maildir++ folders) read and written for IMAP. */
export { maildirErrors, type MaildirErrorCode } from "./errors.ts";
export {
  FLAG_LETTERS,
  LETTER_OF_FLAG,
  UniqueNames,
  compareBases,
  curName,
  parseName,
  sortLetters,
  systemFlagsOf,
  type ParsedName,
} from "./filename.ts";
export {
  FOLDER_LIMITS_DEFAULT,
  KEYWORDS_MAX,
  MaildirFolder,
  lfToCrlf,
  syncDir,
  type FolderLimits,
  type MessageEntry,
  type SyncResult,
} from "./folder.ts";
export { LOCK_STALE_MS, LOCK_TIMEOUT_MS, UIDLIST_LOCK_NAME, withMutex, withUidlistLock, type HeldLock } from "./lock.ts";
export {
  HIERARCHY_SEPARATOR,
  MAILBOX_DEPTH_MAX,
  MAILBOX_NAME_BYTES_MAX,
  SPECIAL_USE,
  folderDirName,
  nameOfDir,
  normalizeMailboxName,
  parentName,
  specialUseOf,
} from "./names.ts";
export { FOLDERS_MAX, MaildirStore, type FolderInfo } from "./store.ts";
export { UID_MAX, formatUidlist, newGuid, parseUidlist, type Uidlist, type UidlistEntry } from "./uidlist.ts";
