/**
 * Submission (RFC 6409) and SMTP out: authenticated mailboxes send mail here.
 *
 * - AUTH PLAIN (RFC 4616) and LOGIN only, and only after STARTTLS (RFC 3207, RFC 4954 section 4):
 *   smtp-server neither advertises nor accepts AUTH on a clear connection (538), and refuses
 *   MAIL before AUTH (530 5.7.0). Failed attempts are bounded per connection.
 * - Gate 5 (mail attribution): the envelope sender's domain and every From: address's domain must
 *   belong to the authenticated mailbox's IMVU, else 553 5.7.1. The message is DKIM-signed with
 *   the From: domain's RSA and Ed25519 keys (RFC 6376, RFC 8463).
 * - Date: and Message-ID: are added when missing (RFC 6409 8.2, 8.3); a Received: field records
 *   the submission (ESMTPSA, RFC 3848).
 * - Recipients in hosted domains are delivered to their Maildir at once; the others go to the
 *   persistent queue. 250 is sent only once every copy and the queue entry are durable.
 */
import { randomBytes } from "node:crypto";
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import { domainOfAddress, parseAddress, type MailboxInfo } from "../directory.ts";
import { dkimSignMessage } from "../dkim.ts";
import type { OutboundQueue } from "../queue.ts";
import { reverseLookup } from "./dns.ts";
import { SmtpReplyError } from "./errors.ts";
import { collectMessage, fromAddresses, headerFields, headerSpan, receivedField, returnPathField, rfc5322Date } from "./message.ts";
import { ConnectionLimiter, asReply, checkQuotas, deliverLocal, lookupFailed, overQuota, refuse, transactionId, type SmtpContext } from "./session.ts";

/** The mailbox a session authenticated as. */
interface Authed {
  readonly address: string;
  readonly imvu: string;
}

interface SubmissionTx {
  readonly sender: string;
  readonly local: MailboxInfo[];
  readonly remote: string[];
}

/** The submission server (not yet listening); remote recipients go to `queue`. */
export function createSubmissionServer(ctx: SmtpContext, queue: OutboundQueue): SMTPServer {
  const limiter = new ConnectionLimiter(ctx.limits.connectionsPerIpMax);
  const authed = new Map<string, Authed>();
  const failures = new Map<string, number>();
  const txs = new Map<string, SubmissionTx>();
  const server = new SMTPServer({
    name: ctx.hostname,
    banner: "Nexus COS submission",
    key: ctx.tls.key,
    cert: ctx.tls.cert,
    size: ctx.limits.messageBytesMax,
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    allowInsecureAuth: false,
    authRequiredMessage: "5.7.0 Authentication required",
    maxAllowedUnauthenticatedCommands: ctx.limits.unauthenticatedCommandsMax,
    hideDSN: true,
    maxClients: ctx.limits.connectionsMax,
    maxCommandLength: ctx.limits.commandBytesMax,
    socketTimeout: ctx.limits.socketTimeoutMs,
    closeTimeout: ctx.limits.closeGraceMs,
    resolver: reverseLookup(ctx.resolver),
    logger: false,
    onConnect(session, cb) {
      const refused = limiter.admit(session);
      if (refused) ctx.counters.addRefusal(refused.code);
      // RFC 4954 section 4: no plaintext mechanism before TLS, so AUTH is neither advertised nor
      // accepted until STARTTLS (a client that never sees AUTH never sends its password in clear).
      if (!session.secure) session.disabledCommands = ["AUTH"];
      cb(refused ?? null);
    },
    onSecure(_socket, session, cb) {
      delete session.disabledCommands;
      cb();
    },
    onClose(session) {
      limiter.release(session);
      authed.delete(session.id);
      failures.delete(session.id);
      txs.delete(session.id);
    },
    onAuth(auth, session, cb) {
      login(ctx, auth, session).then(
        (who) => {
          authed.set(session.id, who);
          cb(null, { user: who.address });
        },
        (e: unknown) => {
          const n = (failures.get(session.id) ?? 0) + 1;
          failures.set(session.id, n);
          cb(n >= ctx.limits.authFailuresMax ? refuse(ctx, session, "SMTP_AUTH_TOO_MANY_FAILURES") : asReply(ctx, e));
        },
      );
    },
    onMailFrom(address, session, cb) {
      mailFrom(ctx, address, session, authed.get(session.id)).then(
        () => {
          txs.set(session.id, { sender: address.address, local: [], remote: [] });
          cb();
        },
        (e: unknown) => cb(lookupFailed(ctx, session, e)),
      );
    },
    onRcptTo(address, session, cb) {
      rcptTo(ctx, address, session, txs.get(session.id)).then(() => cb(), (e: unknown) => cb(lookupFailed(ctx, session, e)));
    },
    onData(stream, session, cb) {
      const tx = txs.get(session.id);
      txs.delete(session.id);
      data(ctx, queue, stream, session, authed.get(session.id), tx).then((msg) => cb(null, msg), (e: unknown) => cb(asReply(ctx, e)));
    },
  });
  server.on("error", (e: Error) => ctx.log("warn", "submission connection error", { error: e.message }));
  return server;
}

async function login(ctx: SmtpContext, auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<Authed> {
  const parsed = parseAddress(auth.username ?? "");
  const password = auth.password ?? "";
  if (parsed === undefined || (auth.method !== "PLAIN" && auth.method !== "LOGIN")) throw refuse(ctx, session, "SMTP_AUTH_FAILED");
  if (!(await ctx.directory.verifyPassword(parsed.address, password))) throw refuse(ctx, session, "SMTP_AUTH_FAILED");
  const mailbox = await ctx.directory.lookupMailbox(parsed.address);
  if (!mailbox) throw refuse(ctx, session, "SMTP_AUTH_FAILED");
  return { address: mailbox.address, imvu: mailbox.imvu };
}

/** Gate 5 on the envelope: the sender's domain must be one of the IMVU's domains. */
async function mailFrom(ctx: SmtpContext, address: SMTPServerAddress, session: SMTPServerSession, who: Authed | undefined): Promise<void> {
  if (!who) throw refuse(ctx, session, "SMTP_AUTH_REQUIRED");
  const domain = domainOfAddress(address.address);
  if (domain === undefined || parseAddress(address.address) === undefined) throw refuse(ctx, session, "SMTP_SENDER_NOT_OWNED", address.address || "<>");
  if ((await ctx.directory.isLocalDomain(domain)) !== who.imvu) throw refuse(ctx, session, "SMTP_SENDER_NOT_OWNED", address.address);
}

async function rcptTo(ctx: SmtpContext, address: SMTPServerAddress, session: SMTPServerSession, tx: SubmissionTx | undefined): Promise<void> {
  if (!tx) throw refuse(ctx, session, "SMTP_LOCAL_ERROR", "no transaction");
  const domain = domainOfAddress(address.address);
  if (domain === undefined) throw refuse(ctx, session, "SMTP_ADDRESS_INVALID", address.address);
  if (tx.local.length + tx.remote.length >= ctx.limits.recipientsMax) throw refuse(ctx, session, "SMTP_TOO_MANY_RECIPIENTS");
  if ((await ctx.directory.isLocalDomain(domain)) === undefined) {
    const at = address.address.lastIndexOf("@");
    const normalized = `${address.address.slice(0, at)}@${domain}`;
    if (!tx.remote.includes(normalized)) tx.remote.push(normalized);
    return;
  }
  const parsed = parseAddress(address.address);
  const mailbox = parsed === undefined ? undefined : await ctx.directory.lookupMailbox(parsed.address);
  if (!mailbox) throw refuse(ctx, session, "SMTP_RECIPIENT_UNKNOWN", address.address);
  if (overQuota(mailbox, 0)) throw refuse(ctx, session, "SMTP_MAILBOX_FULL", mailbox.address);
  if (!tx.local.some((m) => m.address === mailbox.address)) tx.local.push(mailbox);
}

/** Gate 5 on the content: exactly one From: field, every address in a domain of the IMVU. Returns the signing domain. */
async function checkFrom(ctx: SmtpContext, session: SMTPServerSession, message: Buffer, who: Authed): Promise<string> {
  const span = headerSpan(message);
  if (span.headerBytes > ctx.limits.headerBytesMax) throw refuse(ctx, session, "SMTP_HEADER_TOO_LARGE");
  const fields = headerFields(message, span.headerBytes);
  const from = fromAddresses(message, fields);
  if (from.fields !== 1 || from.addresses.length === 0) throw refuse(ctx, session, "SMTP_FROM_INVALID");
  for (const a of from.addresses) {
    const d = domainOfAddress(a);
    if (d === undefined || (await ctx.directory.isLocalDomain(d)) !== who.imvu) throw refuse(ctx, session, "SMTP_FROM_NOT_OWNED", a);
  }
  return domainOfAddress(from.addresses[0] ?? "") ?? "";
}

/** Date: and Message-ID: fields to add when the message lacks them (RFC 6409 8.2, 8.3). */
function missingFields(ctx: SmtpContext, message: Buffer): string {
  const fields = headerFields(message, headerSpan(message).headerBytes);
  let out = "";
  if (!fields.some((f) => f.name === "date")) out += `Date: ${rfc5322Date(new Date())}\r\n`;
  if (!fields.some((f) => f.name === "message-id")) out += `Message-ID: <${randomBytes(16).toString("hex")}@${ctx.hostname}>\r\n`;
  return out;
}

async function data(
  ctx: SmtpContext,
  queue: OutboundQueue,
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
  who: Authed | undefined,
  tx: SubmissionTx | undefined,
): Promise<string> {
  const collected = await collectMessage(stream, ctx.limits, ctx.budget);
  try {
    if (collected.failure !== undefined) throw refuse(ctx, session, collected.failure);
    if (!who || !tx || collected.data === undefined || tx.local.length + tx.remote.length === 0) {
      throw refuse(ctx, session, "SMTP_LOCAL_ERROR", "no recipients");
    }
    const signingDomain = await checkFrom(ctx, session, collected.data, who);
    const keys = await ctx.directory.dkimKeysFor(signingDomain);
    if (keys.length === 0) throw refuse(ctx, session, "SMTP_DKIM_KEY_MISSING", signingDomain);
    const local = await checkQuotas(ctx.directory, tx.local, collected.data.length).catch((e: unknown) => {
      if (e instanceof SmtpReplyError) ctx.counters.addRefusal(e.code);
      throw e;
    });
    const id = transactionId(session);
    const received = receivedField({
      helo: session.hostNameAppearsAs || "unknown",
      clientHostname: session.clientHostname,
      clientIp: session.remoteAddress,
      by: ctx.hostname,
      protocol: session.transmissionType,
      id,
      ...(session.tlsOptions ? { tls: `${session.tlsOptions.version} with cipher ${session.tlsOptions.name}` } : {}),
      date: new Date(),
    });
    const unsigned = Buffer.concat([Buffer.from(received + missingFields(ctx, collected.data), "latin1"), collected.data]);
    const signatures = await dkimSignMessage(unsigned, signingDomain, keys);
    const signed = Buffer.concat([Buffer.from(signatures, "latin1"), unsigned]);
    let queued = "";
    if (tx.remote.length > 0) queued = await queue.enqueue(who.imvu, tx.sender, tx.remote, signed);
    if (local.length > 0) {
      const ar = `Authentication-Results: ${ctx.hostname}; auth=pass smtp.auth=${who.address}\r\n`;
      await deliverLocal(ctx, local, [Buffer.from(returnPathField(tx.sender) + ar, "latin1"), signed]);
    }
    ctx.counters.addOut(who.imvu, collected.bytes);
    return `2.0.0 Ok: ${queued === "" ? `delivered as ${id}` : `queued as ${queued}`}`;
  } finally {
    collected.release();
  }
}
