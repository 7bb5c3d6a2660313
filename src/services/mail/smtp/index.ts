/**
 * services/mail, SMTP side: SMTP in, submission, Maildir delivery, DKIM, the outbound queue and
 * the mailbox directory interface they depend on. The ledger side (commands, gates, metering as
 * ledger commands) is not here: it implements `MailDirectory` and reads `MailCounters`.
 */
export { smtpErrors, SMTP_REPLIES, SmtpReplyError, smtpReject } from "./errors.ts";
export type { SmtpErrorCode, SmtpReply, SmtpReplyCode } from "./errors.ts";
export { startMailSmtp, SMTP_PORT_DEFAULT, SUBMISSION_PORT_DEFAULT, SMTP_PORT_PUBLIC, SUBMISSION_PORT_PUBLIC } from "./server.ts";
export type { MailSmtp, MailSmtpOptions } from "./server.ts";
export { MailCounters } from "./counters.ts";
export type { ImvuMailCounters } from "./counters.ts";
export { SMTP_LIMITS_DEFAULT } from "./limits.ts";
export type { SmtpLimits } from "./limits.ts";
export { cachingResolver, staticResolver, systemResolver, dnsError } from "./dns.ts";
export type { DnsAnswer, DnsType, MailResolver, MxRecord, StaticRecords } from "./dns.ts";
export type { SmtpLogger } from "./session.ts";
export {
  StaticMailDirectory,
  MailSecretStore,
  checkPassword,
  commitment,
  createPasswordVerifier,
  domainOfAddress,
  maildirPath,
  maildirRoot,
  parseAddress,
} from "../directory.ts";
export type { MailDirectory, MailboxInfo, MailboxSpec, MailSecrets, ParsedAddress } from "../directory.ts";
export { dkimDnsRecords, dkimKeyCommitment, dkimKeyRecord, dkimPublicKeyValue, dkimSignMessage, generateDkimKeys } from "../dkim.ts";
export type { DkimAlgorithm, DkimKey, MailDnsPolicy, TxtRecord } from "../dkim.ts";
export { MaildirWriter, ensureMaildir, scanMaildirUsage } from "../maildir-deliver.ts";
export { OutboundQueue, RETRY_DEFAULT, retryDelayMs } from "../queue.ts";
export type { QueueEntry, RetryPolicy } from "../queue.ts";
export type { Smarthost } from "../queue-transport.ts";
export { loadOrCreateTls, selfSignedCertificate } from "../tls.ts";
export type { TlsCredentials } from "../tls.ts";
