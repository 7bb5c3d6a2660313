/**
 * What SMTP in and submission share: the service context, per-address connection limits,
 * per-session transaction state, refusals that are counted and logged, local delivery with quota
 * checks, and binding a listener.
 */
import type { SMTPServer, SMTPServerSession } from "smtp-server";
import { isNexusError } from "../../../core/errors.ts";
import type { MailDirectory, MailboxInfo } from "../directory.ts";
import { maildirContent, type MaildirWriter } from "../maildir-deliver.ts";
import type { TlsCredentials } from "../tls.ts";
import type { MailCounters } from "./counters.ts";
import type { MailResolver } from "./dns.ts";
import { SmtpReplyError, smtpErrors, smtpReject, type SmtpReplyCode } from "./errors.ts";
import type { ByteBudget, SmtpLimits } from "./limits.ts";

/** A log sink: one event with a level, a short message and structured fields. */
export type SmtpLogger = (level: "info" | "warn" | "error", msg: string, fields?: Readonly<Record<string, unknown>>) => void;

/** The default logger: warnings and errors as JSON lines on stderr. */
export const stderrLogger: SmtpLogger = (level, msg, fields) => {
  if (level !== "info") process.stderr.write(`${JSON.stringify({ level, part: "mail.smtp", msg, ...fields })}\n`);
};

/** Everything a server's hooks need. */
export interface SmtpContext {
  /** Our host name: banner, EHLO, Received, authserv-id. */
  readonly hostname: string;
  readonly directory: MailDirectory;
  readonly resolver: MailResolver;
  readonly limits: SmtpLimits;
  readonly counters: MailCounters;
  readonly writer: MaildirWriter;
  /** Message bytes held in memory by this server's connections. */
  readonly budget: ByteBudget;
  readonly tls: TlsCredentials;
  readonly log: SmtpLogger;
}

/** Counts connections per client address; `admit` refuses beyond `connectionsPerIpMax`. */
export class ConnectionLimiter {
  readonly #perIp = new Map<string, number>();
  readonly #admitted = new Map<string, string>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Admits the session, or returns the refusal (421 4.7.0) when its address is at the limit. */
  admit(session: SMTPServerSession): SmtpReplyError | undefined {
    const ip = session.remoteAddress;
    const n = this.#perIp.get(ip) ?? 0;
    if (n >= this.#max) return smtpReject("SMTP_TOO_MANY_CONNECTIONS");
    this.#perIp.set(ip, n + 1);
    this.#admitted.set(session.id, ip);
    return undefined;
  }

  /** Forgets a closed session (no-op for sessions never admitted). */
  release(session: SMTPServerSession): void {
    const ip = this.#admitted.get(session.id);
    if (ip === undefined) return;
    this.#admitted.delete(session.id);
    const n = (this.#perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n);
  }

  /** Connections currently admitted. */
  get size(): number {
    return this.#admitted.size;
  }
}

/** A refusal that is counted per code and logged at info level. */
export function refuse(ctx: SmtpContext, session: SMTPServerSession, code: SmtpReplyCode, detail?: string): SmtpReplyError {
  ctx.counters.addRefusal(code);
  ctx.log("info", "refused", { code, session: session.id, remote: session.remoteAddress, ...(detail === undefined ? {} : { detail }) });
  return smtpReject(code, detail);
}

/** Maps an unexpected failure to 451 4.3.0 (logged), keeping expected refusals as they are. */
export function asReply(ctx: SmtpContext, e: unknown): SmtpReplyError {
  if (e instanceof SmtpReplyError) return e;
  ctx.log("error", "local error while handling a message", { error: isNexusError(e) ? e.code : String(e) });
  ctx.counters.addRefusal("SMTP_LOCAL_ERROR");
  return new SmtpReplyError("SMTP_LOCAL_ERROR");
}

/** A directory failure during MAIL or RCPT: logged, answered 451 4.4.3 so the client retries. */
export function lookupFailed(ctx: SmtpContext, session: SMTPServerSession, e: unknown): SmtpReplyError {
  if (e instanceof SmtpReplyError) return e;
  ctx.log("error", "mailbox directory failed", { session: session.id, error: e instanceof Error ? e.message : String(e) });
  return refuse(ctx, session, "SMTP_LOOKUP_FAILED");
}

/** True when storing `bytes` more would take the mailbox beyond its quota (bytes or messages). */
export function overQuota(m: MailboxInfo, bytes: number): boolean {
  if (m.usedBytes + bytes > m.quotaBytes) return true;
  return m.quotaMessages !== undefined && (m.usedMessages ?? 0) + 1 > m.quotaMessages;
}

/**
 * Re-reads each mailbox and refuses (SMTP_MAILBOX_FULL) if any would go over quota with a message
 * of `bytes`; the check is made again after DATA, with the real size, since RCPT only knew SIZE=.
 */
export async function checkQuotas(directory: MailDirectory, mailboxes: readonly MailboxInfo[], bytes: number): Promise<MailboxInfo[]> {
  const fresh: MailboxInfo[] = [];
  for (const m of mailboxes) {
    const now = (await directory.lookupMailbox(m.address)) ?? m;
    if (overQuota(now, bytes)) throw smtpReject("SMTP_MAILBOX_FULL", m.address);
    fresh.push(now);
  }
  return fresh;
}

/**
 * Stores a message (CRLF parts: trace fields, then the message) in each mailbox's Maildir,
 * durably (see maildir-deliver.ts), then updates usage and the "in" counters. Returns the bytes
 * stored per copy.
 */
export async function deliverLocal(
  ctx: Pick<SmtpContext, "writer" | "directory" | "counters">,
  mailboxes: readonly MailboxInfo[],
  crlfParts: readonly Buffer[],
): Promise<number> {
  const content = maildirContent(crlfParts);
  await ctx.writer.deliver(
    mailboxes.map((m) => m.maildirPath),
    content,
  );
  for (const m of mailboxes) {
    ctx.directory.recordDelivery(m.address, content.size);
    ctx.counters.addIn(m.imvu, content.size);
  }
  return content.size;
}

/** Binds `server` on host:port; resolves with the port bound (for port 0), SMTP_LISTEN_FAILED on error. */
export function listen(server: SMTPServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(smtpErrors.make("SMTP_LISTEN_FAILED", `${host}:${port}: ${e.message}`));
    server.server.once("error", onError);
    server.listen(port, host, () => {
      server.server.off("error", onError);
      const addr = server.server.address();
      resolve(typeof addr === "object" && addr !== null ? addr.port : port);
    });
  });
}

/** Closes `server`, resolving when it has stopped (connections get 421 and are closed by smtp-server). */
export function closeServer(server: SMTPServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The message id of a session's current transaction (session id and transaction number). */
export function transactionId(session: SMTPServerSession): string {
  return `${session.id}.${session.transaction}`;
}
