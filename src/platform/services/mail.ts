/**
 * The mail service module of `nexus up` (docs/mail-ledger.md, "Service module"): SMTP in,
 * submission and IMAP over the ledger's MailDirectory (services/mail/projection.ts). It follows
 * the pipeline and acts on what the ledger decided, reporting back as the mail service identity:
 *
 * - a mailbox in a domain without DKIM keys: RSA-2048 and Ed25519 keys are created into the
 *   IMVU's secret store (0600), then `mail.dkim.publish` puts their public keys (and commitments)
 *   into the ledger, whose reducer writes the TXT records into the IMVU's zone;
 * - a mailbox being deleted (gate 12): its directory is archived as a deterministic tar under
 *   `<home>/snapshots/mail/<imvu>/<sha256>.tar` (0444), `mail.snapshot.record` records the digest,
 *   and only once that is applied is the Maildir removed;
 * - metering: messages and bytes in/out and storage per IMVU as `usage.report` of service:mail,
 *   one report per IMVU and interval (the interval is the row's key: a retry is idempotent).
 *
 * STARTTLS credentials are generated on first start under `<home>/tls` (key 0600).
 */
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { isNexusError } from "../../core/errors.ts";
import type { MailboxRecord } from "../../core/pipeline/mail-state.ts";
import type { RecordedCommand } from "../../core/pipeline/pipeline.ts";
import { writeTarSync } from "../../services/compute/tar.ts";
import { directoryAuthenticator, startImapServer, type ImapServer, type ImapServerLimits } from "../../services/mail/imap/index.ts";
import { LedgerMailDirectory } from "../../services/mail/projection.ts";
import type { RetryPolicy } from "../../services/mail/queue.ts";
import {
  dkimKeyCommitment, dkimPublicKeyValue, generateDkimKeys, loadOrCreateTls, maildirPath, startMailSmtp,
  type MailResolver, type MailSmtp, type Smarthost, type SmtpLimits, type SmtpLogger,
} from "../../services/mail/smtp/index.ts";
import type { Platform } from "../platform.ts";
import type { RunningService, ServiceContext, ServiceModule } from "../service.ts";

/** Default metering interval: one usage report per IMVU and minute at most. */
export const MAIL_METER_INTERVAL_MS = 60_000;
/** Tables whose changes make the service reconcile. */
const MAIL_TABLES = new Set(["mail-mailbox", "mail-domain", "imvu"]);

/** Options of the mail service (tests inject a resolver and short intervals). */
export interface MailServiceOptions {
  readonly resolver?: MailResolver;
  readonly smarthost?: Smarthost;
  readonly mxPort?: number;
  readonly limits?: Partial<SmtpLimits>;
  readonly imapLimits?: Partial<ImapServerLimits>;
  readonly meterIntervalMs?: number;
  /** The outbound queue's retry schedule (default RETRY_DEFAULT; tests shorten it). */
  readonly retry?: Partial<RetryPolicy>;
  /** Our host name in banners and Received: (default: genesis's mail host, mail.<base>). */
  readonly hostname?: string;
}

/** The directory under which a mailbox's snapshots are stored. */
export function mailSnapshotDir(home: string, imvu: string): string {
  return join(home, "snapshots", "mail", imvu);
}

/** The mail service module with options. */
export function createMailService(opts: MailServiceOptions = {}): ServiceModule {
  return { name: "mail", start: (ctx) => startMail(ctx, opts) };
}

/** The mail service module `nexus up` starts. */
export const mailService: ServiceModule = createMailService();

function mailHostOf(p: Platform): string {
  const g = p.state.get("platform", "genesis");
  return g?.dns?.mailHost ?? `mail.${p.baseDomain}`;
}

async function startMail(ctx: ServiceContext, opts: MailServiceOptions): Promise<RunningService> {
  const { platform, config } = ctx;
  const home = platform.home;
  const hostname = opts.hostname ?? mailHostOf(platform);
  const tls = loadOrCreateTls(join(home, "tls"), hostname);
  const directory = new LedgerMailDirectory({ state: platform.state, dataDir: home });
  const log: SmtpLogger = (level, msg, fields) => {
    if (level !== "info") ctx.log(`${level}: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
  };
  const smtp = await startMailSmtp({
    host: config.host, hostname, public: config.public, inboundPort: config.ports.smtp, submissionPort: config.ports.submission,
    directory, dataDir: home, tls, log,
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
    ...(opts.smarthost ? { smarthost: opts.smarthost } : {}),
    ...(opts.mxPort === undefined ? {} : { mxPort: opts.mxPort }),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.retry ? { retry: opts.retry } : {}),
  });
  let imap: ImapServer;
  try {
    imap = await startImapServer({
      host: config.host, port: config.ports.imap, auth: directoryAuthenticator(directory), tls, implicitTls: config.public,
      ...(opts.imapLimits ? { limits: opts.imapLimits } : {}),
      onError: (e) => ctx.log(`imap: ${e instanceof Error ? e.message : String(e)}`),
    });
  } catch (e) {
    await smtp.close();
    throw e;
  }
  const worker = new MailWorker(platform, directory, smtp, ctx.log);
  await worker.reconcile();
  const unsubscribe = platform.pipeline.onRecorded((r) => worker.onRecorded(r));
  const meter = setInterval(() => void worker.report(), opts.meterIntervalMs ?? MAIL_METER_INTERVAL_MS);
  meter.unref();
  return {
    name: "mail",
    endpoints: [
      `smtp ${config.host}:${smtp.inboundPort} (STARTTLS)`,
      `submission ${config.host}:${smtp.submissionPort} (STARTTLS, AUTH)`,
      `imap ${config.host}:${imap.port} (${config.public ? "implicit TLS" : "STARTTLS"})`,
    ],
    listens: { smtp: `${config.host}:${smtp.inboundPort}`, submission: `${config.host}:${smtp.submissionPort}`, imap: `${config.host}:${imap.port}` },
    async stop() {
      clearInterval(meter);
      unsubscribe();
      await worker.idle();
      await worker.report();
      await Promise.all([imap.close(), smtp.close()]);
    },
  };
}

/** Per-IMVU counters already reported, and the end of the last reported interval. */
interface Reported {
  readonly messagesIn: number;
  readonly bytesIn: number;
  readonly messagesOut: number;
  readonly bytesOut: number;
  readonly storageBytes: number;
  readonly endIso: string;
}

/** What the mail service does on the ledger's word: DKIM keys, snapshots, metering. */
class MailWorker {
  readonly #p: Platform;
  readonly #dir: LedgerMailDirectory;
  readonly #smtp: MailSmtp;
  readonly #log: (line: string) => void;
  readonly #reported = new Map<string, Reported>();
  readonly #startIso = new Date().toISOString();
  /** Domains whose key publication failed for good (retried on the next start). */
  readonly #dkimFailed = new Set<string>();
  #chain: Promise<void> = Promise.resolve();
  #reporting: Promise<void> | undefined;

  constructor(p: Platform, dir: LedgerMailDirectory, smtp: MailSmtp, log: (line: string) => void) {
    this.#p = p;
    this.#dir = dir;
    this.#smtp = smtp;
    this.#log = log;
  }

  /** Reconciles after an entry that touched mail (serialised). */
  onRecorded(r: RecordedCommand): void {
    if (!r.changes.some((c) => MAIL_TABLES.has(c.table))) return;
    for (const c of r.changes) if (c.table === "mail-mailbox") this.#dir.invalidate(c.key.slice(0, c.key.indexOf("/")));
    void this.reconcile();
  }

  /** Waits for the reconciliations queued so far. */
  idle(): Promise<void> {
    return this.#chain;
  }

  /** Brings the files in line with the projection: Maildirs, DKIM keys, pending deletes. */
  reconcile(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#reconcileOnce()).catch((e) => this.#log(`reconcile failed: ${e instanceof Error ? e.message : String(e)}`));
    return this.#chain;
  }

  async #reconcileOnce(): Promise<void> {
    const state = this.#p.state;
    for (const [, m] of state.list("mail-mailbox")) {
      if (m.deletingIndex !== undefined) {
        await this.#snapshotAndRemove(m);
        continue;
      }
      this.#dir.maildirOf(m);
      if (!state.get("mail-domain", m.domain) && !this.#dkimFailed.has(m.domain)) await this.#publishDkim(m.imvu, m.domain);
    }
  }

  /** Creates (or reuses from the secret store) the domain's keys and publishes their public halves. */
  async #publishDkim(imvu: string, domain: string): Promise<void> {
    let keys = this.#dir.secrets.read(imvu).dkim[domain];
    if (!keys || keys.length === 0) {
      keys = generateDkimKeys(new Date());
      this.#dir.secrets.setDkimKeys(imvu, domain, keys);
    }
    const body = {
      domain,
      keys: keys.map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKey: dkimPublicKeyValue(k), commitment: dkimKeyCommitment(k) })),
    };
    const r = await this.#p.submitAsService("mail", { type: "mail.dkim.publish", imvu, body });
    if (r.outcome === "denied") {
      this.#dkimFailed.add(domain);
      this.#log(`DKIM keys of ${domain} denied at ledger index ${r.index}: ${r.gates.filter((g) => !g.pass).map((g) => `gate ${g.gate}: ${g.reason}`).join("; ")}`);
    }
  }

  /** Gate 12: archive the mailbox, record the archive's digest, then remove the Maildir. */
  async #snapshotAndRemove(m: MailboxRecord): Promise<void> {
    const maildir = maildirPath(this.#dir.root, m.imvu, m.address);
    const mailboxDir = join(maildir, "..");
    mkdirSync(maildir, { recursive: true, mode: 0o700 });
    const snap = snapshotDir(this.#p.home, m.imvu, mailboxDir);
    const r = await this.#p.submitAsService("mail", {
      type: "mail.snapshot.record",
      imvu: m.imvu,
      body: { address: m.address, snapshot: snap.sha256, bytes: String(snap.sizeBytes), of: m.deletingIndex ?? "" },
    });
    if (r.outcome !== "applied") {
      this.#log(`snapshot of ${m.address} denied at ledger index ${r.index}; the Maildir stays`);
      return;
    }
    rmSync(mailboxDir, { recursive: true, force: true });
    this.#dir.invalidate(m.imvu);
  }

  /** Submits one usage report per IMVU with traffic or a storage change since its last report. */
  report(): Promise<void> {
    this.#reporting ??= this.#reportOnce().finally(() => {
      this.#reporting = undefined;
    });
    return this.#reporting;
  }

  async #reportOnce(): Promise<void> {
    const counters = this.#smtp.counters.snapshot();
    const imvus = new Set([...Object.keys(counters), ...this.#p.state.list("mail-mailbox").map(([, m]) => m.imvu)]);
    for (const imvu of imvus) {
      if (!this.#p.state.get("imvu", imvu)) continue;
      const c = counters[imvu] ?? { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
      const storageBytes = this.#dir.usageOf(imvu).bytes;
      const last = this.#reported.get(imvu);
      const base = last ?? { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, storageBytes: -1, endIso: this.#startIso };
      const delta = { messagesIn: c.messagesIn - base.messagesIn, bytesIn: c.bytesIn - base.bytesIn, messagesOut: c.messagesOut - base.messagesOut, bytesOut: c.bytesOut - base.bytesOut };
      if (Object.values(delta).every((v) => v === 0) && storageBytes === base.storageBytes) continue;
      const endIso = new Date(Math.max(Date.now(), Date.parse(base.endIso) + 1)).toISOString();
      const metrics = { ...Object.fromEntries(Object.entries(delta).map(([k, v]) => [k, String(v)])), storageBytes: String(storageBytes) };
      try {
        const r = await this.#p.submitAsService("mail", {
          type: "usage.report", imvu, body: { service: "mail", intervalStart: base.endIso, intervalEnd: endIso, metrics },
        });
        if (r.outcome === "applied") this.#reported.set(imvu, { ...c, storageBytes, endIso });
        else this.#log(`usage report of ${imvu} denied at ledger index ${r.index}`);
      } catch (e) {
        // Kept for the next interval: the counters are cumulative, the next report covers both.
        this.#log(`usage report of ${imvu} failed: ${isNexusError(e) ? e.code : String(e)}`);
      }
    }
  }
}

/**
 * A content-addressed snapshot of `dir`: the deterministic tar (compute's pax writer) renamed to
 * `<sha256>.tar`, read-only, in the IMVU's mail snapshot store. The same content gives the same
 * file, so a retried delete does not store twice.
 */
function snapshotDir(home: string, imvu: string, dir: string): { sha256: string; sizeBytes: number } {
  const store = mailSnapshotDir(home, imvu);
  mkdirSync(store, { recursive: true, mode: 0o700 });
  const tmp = join(store, `.tmp-${randomBytes(8).toString("hex")}.tar`);
  try {
    const r = writeTarSync(dir, tmp);
    const final = join(store, `${r.sha256}.tar`);
    if (existsSync(final)) unlinkSync(tmp);
    else {
      chmodSync(tmp, 0o444);
      renameSync(tmp, final);
    }
    return { sha256: r.sha256, sizeBytes: r.sizeBytes };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
