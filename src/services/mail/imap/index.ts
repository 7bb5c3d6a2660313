/** The IMAP4rev1 server (RFC 3501) over Maildir: see docs/mail-imap.md. */
export { ADDRESSES_MAX, parseAddressList, type EnvelopeAddress } from "./address.ts";
export { directoryAuthenticator } from "./auth.ts";
export { FETCH_CACHE_BYTES_MAX, FETCH_CACHE_ENTRIES_MAX, FetchCache, type CachedMessage } from "./cache.ts";
export { IMAP_REPLIES, ImapReplyError, MAILDIR_TO_IMAP, imapErrors, imapReject, toImapReply, type ImapErrorCode, type ImapReplyCode } from "./errors.ts";
export { applyPartial, bodyStructure, envelope, sectionBytes } from "./fetch.ts";
export { Framer, NONSYNC_LITERAL_BYTES_MAX, type FrameEvent, type FramerLimits } from "./framer.ts";
export { listMailboxes, patternRegExp } from "./list.ts";
export { countLines, parseHeaderFields, parseMime, partAt, splitMultipart, type ContentType, type HeaderField, type MimePart } from "./mime.ts";
export {
  formatCommand,
  formatDateTime,
  formatDay,
  formatFetchItem,
  formatSearchKey,
  formatSequenceSet,
  parseCommand,
  parseDateTime,
  parseDay,
  parseFetchItems,
  parseSearchKeys,
  parseSequenceSet,
  resolveSequenceSet,
  tagOf,
  tokenize,
  type Command,
  type FetchItem,
  type SearchKey,
  type Section,
  type SeqRange,
  type SequenceSet,
  type TaggedCommand,
  type Token,
} from "./parser.ts";
export { SearchContext, bodyText, matches, sentDay, type SearchSubject } from "./search.ts";
export {
  IMAPS_PORT,
  IMAP_LIMITS_DEFAULT,
  IMAP_PORT,
  imapListenDefaults,
  startImapServer,
  type ImapServer,
  type ImapServerLimits,
  type ImapServerOptions,
} from "./server.ts";
export { ImapSession, isLoopback, newMetrics, type AuthInfo, type ImapAccount, type ImapAuthenticator, type ImapMetrics, type SessionIo } from "./session.ts";
