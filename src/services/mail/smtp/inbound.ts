/**
 * SMTP in (RFC 5321): mail from the world for the mailboxes hosted here. Never an open relay: a
 * recipient outside the hosted domains is refused (550 5.7.1) whatever the client, and AUTH is
 * not offered on this port at all. STARTTLS (RFC 3207) is offered; SIZE (RFC 1870) is advertised.
 *
 * Per message: DATA is read within its bounds, forged Authentication-Results fields are removed
 * (RFC 8601 section 5), SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), ARC and DMARC (RFC 7489) are
 * checked by mailauth, and the message is stored with Return-Path, Authentication-Results,
 * Received-SPF and Received fields on top. 250 is sent only after every copy is durable.
 */
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import { authenticate } from "mailauth";
import { domainOfAddress, parseAddress, type MailboxInfo } from "../directory.ts";
import { mailauthResolver, reverseLookup } from "./dns.ts";
import { SmtpReplyError } from "./errors.ts";
import { collectMessage, forgedAuthResults, headerFields, headerSpan, receivedField, returnPathField, withoutFields } from "./message.ts";
import { ConnectionLimiter, asReply, checkQuotas, deliverLocal, lookupFailed, overQuota, refuse, transactionId, type SmtpContext } from "./session.ts";

const CRLF = Buffer.from("\r\n");

/** Per-session state of the transaction in progress. */
interface InboundTx {
  mailboxes: MailboxInfo[];
  declaredBytes: number;
}

/** The SMTP-in server (not yet listening). */
export function createInboundServer(ctx: SmtpContext): SMTPServer {
  const limiter = new ConnectionLimiter(ctx.limits.connectionsPerIpMax);
  const txs = new Map<string, InboundTx>();
  const server = new SMTPServer({
    name: ctx.hostname,
    banner: "Nexus COS",
    key: ctx.tls.key,
    cert: ctx.tls.cert,
    size: ctx.limits.messageBytesMax,
    authOptional: true,
    disabledCommands: ["AUTH"],
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
      cb(refused ?? null);
    },
    onClose(session) {
      limiter.release(session);
      txs.delete(session.id);
    },
    onMailFrom(address, session, cb) {
      const size = address.args === false ? undefined : address.args.SIZE;
      txs.set(session.id, { mailboxes: [], declaredBytes: typeof size === "string" ? Number(size) : 0 });
      cb();
    },
    onRcptTo(address, session, cb) {
      rcptTo(ctx, address, session, txs.get(session.id)).then(() => cb(), (e: unknown) => cb(lookupFailed(ctx, session, e)));
    },
    onData(stream, session, cb) {
      const tx = txs.get(session.id);
      txs.delete(session.id);
      data(ctx, stream, session, tx).then((msg) => cb(null, msg), (e: unknown) => cb(asReply(ctx, e)));
    },
  });
  server.on("error", (e: Error) => ctx.log("warn", "smtp-in connection error", { error: e.message }));
  return server;
}

async function rcptTo(ctx: SmtpContext, address: SMTPServerAddress, session: SMTPServerSession, tx: InboundTx | undefined): Promise<void> {
  if (!tx) throw refuse(ctx, session, "SMTP_LOCAL_ERROR", "no transaction");
  const domain = domainOfAddress(address.address);
  if (domain === undefined) throw refuse(ctx, session, "SMTP_ADDRESS_INVALID", address.address);
  // Relay check first (RFC 5321 3.9 / 7.1): nothing outside the hosted domains, ever.
  if ((await ctx.directory.isLocalDomain(domain)) === undefined) throw refuse(ctx, session, "SMTP_RELAY_DENIED", address.address);
  const parsed = parseAddress(address.address);
  const mailbox = parsed === undefined ? undefined : await ctx.directory.lookupMailbox(parsed.address);
  if (mailbox === undefined) throw refuse(ctx, session, "SMTP_RECIPIENT_UNKNOWN", address.address);
  if (tx.mailboxes.some((m) => m.address === mailbox.address)) return;
  if (tx.mailboxes.length >= ctx.limits.recipientsMax) throw refuse(ctx, session, "SMTP_TOO_MANY_RECIPIENTS");
  if (overQuota(mailbox, tx.declaredBytes)) throw refuse(ctx, session, "SMTP_MAILBOX_FULL", mailbox.address);
  tx.mailboxes.push(mailbox);
}

async function data(ctx: SmtpContext, stream: SMTPServerDataStream, session: SMTPServerSession, tx: InboundTx | undefined): Promise<string> {
  const collected = await collectMessage(stream, ctx.limits, ctx.budget);
  try {
    if (collected.failure !== undefined) throw refuse(ctx, session, collected.failure);
    if (!tx || tx.mailboxes.length === 0 || collected.data === undefined) throw refuse(ctx, session, "SMTP_LOCAL_ERROR", "no recipients");
    let message = collected.data;
    const span = headerSpan(message);
    if (span.headerBytes > ctx.limits.headerBytesMax) throw refuse(ctx, session, "SMTP_HEADER_TOO_LARGE");
    const fields = headerFields(message, span.headerBytes);
    if (fields.filter((f) => f.name === "received").length > ctx.limits.receivedHeadersMax) {
      throw refuse(ctx, session, "SMTP_LOOP_DETECTED");
    }
    message = withoutFields(message, forgedAuthResults(fields, ctx.hostname));
    const mailboxes = await checkQuotas(ctx.directory, tx.mailboxes, message.length).catch((e: unknown) => {
      if (e instanceof SmtpReplyError) ctx.counters.addRefusal(e.code);
      throw e;
    });
    const sender = session.envelope.mailFrom === false ? "" : session.envelope.mailFrom.address;
    // Without DKIM-Signature or ARC fields no check reads the body (SPF looks at the envelope,
    // DMARC at From: and the other results), so mailauth gets the header section alone and does
    // not scan the body byte by byte.
    const signed = fields.some((f) => f.name === "dkim-signature" || f.name.startsWith("arc-"));
    const authInput = signed ? message : Buffer.concat([message.subarray(0, headerSpan(message).headerBytes), CRLF]);
    const auth = await authenticate(authInput, {
      ip: session.remoteAddress,
      helo: session.hostNameAppearsAs || session.clientHostname,
      sender,
      mta: ctx.hostname,
      resolver: mailauthResolver(ctx.resolver),
      disableBimi: true,
    });
    const id = transactionId(session);
    const received = receivedField({
      helo: session.hostNameAppearsAs || "unknown",
      clientHostname: session.clientHostname,
      clientIp: session.remoteAddress,
      by: ctx.hostname,
      protocol: session.transmissionType,
      id,
      ...(mailboxes.length === 1 && mailboxes[0] ? { recipient: mailboxes[0].address } : {}),
      ...(session.tlsOptions ? { tls: `${session.tlsOptions.version} with cipher ${session.tlsOptions.name}` } : {}),
      date: new Date(),
    });
    const parts = [Buffer.from(returnPathField(sender)), Buffer.from(auth.headers, "utf8"), Buffer.from(received), message];
    await deliverLocal(ctx, mailboxes, parts);
    return `2.0.0 Ok: stored as ${id}`;
  } finally {
    collected.release();
  }
}
