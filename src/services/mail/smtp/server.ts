/**
 * `startMailSmtp`: SMTP in and submission on their ports, the outbound queue, the counters, over
 * an injected MailDirectory. Ports: 2525 and 2587 by default, 25 and 587 with `public`
 * (ARCHITECTURE.md, "Ports of the embedded default"); port 0 binds a free port (tests).
 */
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import type { SMTPServer } from "smtp-server";
import type { MailDirectory } from "../directory.ts";
import { MaildirWriter } from "../maildir-deliver.ts";
import { OutboundQueue, RETRY_DEFAULT, type RetryPolicy } from "../queue.ts";
import { CONNECT_TIMEOUT_MS, GREETING_TIMEOUT_MS, SOCKET_TIMEOUT_MS, type Smarthost } from "../queue-transport.ts";
import { checkTlsCredentials, loadOrCreateTls, type TlsCredentials } from "../tls.ts";
import { MailCounters } from "./counters.ts";
import { cachingResolver, systemResolver, type MailResolver } from "./dns.ts";
import { smtpErrors } from "./errors.ts";
import { createInboundServer } from "./inbound.ts";
import { ByteBudget, resolveLimits, type SmtpLimits } from "./limits.ts";
import { closeServer, listen, stderrLogger, type SmtpContext, type SmtpLogger } from "./session.ts";
import { createSubmissionServer } from "./submission.ts";

/** Default ports of the embedded setup, and of `--public`. */
export const SMTP_PORT_DEFAULT = 2525;
export const SUBMISSION_PORT_DEFAULT = 2587;
export const SMTP_PORT_PUBLIC = 25;
export const SUBMISSION_PORT_PUBLIC = 587;

/** How to run the SMTP side. */
export interface MailSmtpOptions {
  /** Address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Our name in banners, EHLO, Received: and Authentication-Results (default: os.hostname()). */
  readonly hostname?: string;
  /** Standard ports 25/587 instead of 2525/2587. */
  readonly public?: boolean;
  readonly inboundPort?: number;
  readonly submissionPort?: number;
  readonly directory: MailDirectory;
  /** The data directory: the queue lives in `<dataDir>/queue`, a generated certificate in `<dataDir>/tls`. */
  readonly dataDir: string;
  /** STARTTLS key and certificate (PEM); generated self-signed on first start when absent. */
  readonly tls?: TlsCredentials;
  /** DNS for SPF/DKIM/DMARC and MX (default: the system's, cached). */
  readonly resolver?: MailResolver;
  /** Send all outbound mail through this relay instead of MX routing. */
  readonly smarthost?: Smarthost;
  /** Port of remote MX hosts (default 25; tests point it at a private peer). */
  readonly mxPort?: number;
  readonly limits?: Partial<SmtpLimits>;
  readonly retry?: Partial<RetryPolicy>;
  /** Outbound connection timeouts (defaults from RFC 5321 4.5.3.2). */
  readonly outboundTimeoutsMs?: { readonly connect?: number; readonly greeting?: number; readonly socket?: number };
  readonly log?: SmtpLogger;
}

/** A running SMTP service. */
export interface MailSmtp {
  readonly inboundPort: number;
  readonly submissionPort: number;
  /** Messages and bytes in and out per IMVU, and refusals per code. */
  readonly counters: MailCounters;
  readonly queue: OutboundQueue;
  /** Stops listening, waits for queue deliveries in progress. */
  close(): Promise<void>;
}

/** Starts SMTP in, submission and the outbound queue (see MailSmtpOptions). */
export async function startMailSmtp(o: MailSmtpOptions): Promise<MailSmtp> {
  const limits = resolveLimits(o.limits);
  if (typeof limits === "string") throw smtpErrors.make("SMTP_CONFIG_INVALID", limits);
  const hostname = o.hostname ?? osHostname();
  if (!/^[a-zA-Z0-9.-]{1,253}$/.test(hostname)) throw smtpErrors.make("SMTP_CONFIG_INVALID", `host name ${hostname}`);
  const tls = o.tls ?? loadOrCreateTls(join(o.dataDir, "tls"), hostname);
  checkTlsCredentials(tls);
  const log = o.log ?? stderrLogger;
  const resolver = o.resolver ?? cachingResolver(systemResolver());
  const counters = new MailCounters();
  const writer = new MaildirWriter(hostname);
  const base = { hostname, directory: o.directory, resolver, limits, counters, writer, tls, log };
  const queue = OutboundQueue.open({
    dir: join(o.dataDir, "queue"),
    transport: {
      hostname,
      resolver,
      ...(o.smarthost ? { smarthost: o.smarthost } : {}),
      mxPort: o.mxPort ?? SMTP_PORT_PUBLIC,
      connectTimeoutMs: o.outboundTimeoutsMs?.connect ?? CONNECT_TIMEOUT_MS,
      greetingTimeoutMs: o.outboundTimeoutsMs?.greeting ?? GREETING_TIMEOUT_MS,
      socketTimeoutMs: o.outboundTimeoutsMs?.socket ?? SOCKET_TIMEOUT_MS,
    },
    retry: { ...RETRY_DEFAULT, ...o.retry },
    directory: o.directory,
    writer,
    counters,
    log,
  });
  // Each server has its own memory budget, so a flood on one port cannot starve the other.
  const inCtx: SmtpContext = { ...base, budget: new ByteBudget(limits.bufferedBytesMax) };
  const subCtx: SmtpContext = { ...base, budget: new ByteBudget(limits.bufferedBytesMax) };
  const inbound = createInboundServer(inCtx);
  const submission = createSubmissionServer(subCtx, queue);
  const host = o.host ?? "127.0.0.1";
  const started: SMTPServer[] = [];
  try {
    const inboundPort = await listen(inbound, o.inboundPort ?? (o.public ? SMTP_PORT_PUBLIC : SMTP_PORT_DEFAULT), host);
    started.push(inbound);
    const submissionPort = await listen(submission, o.submissionPort ?? (o.public ? SUBMISSION_PORT_PUBLIC : SUBMISSION_PORT_DEFAULT), host);
    started.push(submission);
    return {
      inboundPort,
      submissionPort,
      counters,
      queue,
      async close() {
        await Promise.all([closeServer(inbound), closeServer(submission)]);
        await queue.close();
      },
    };
  } catch (e) {
    await Promise.all(started.map(closeServer));
    await queue.close();
    throw e;
  }
}
