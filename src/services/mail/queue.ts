/**
 * The persistent outbound queue: messages accepted on submission for recipients outside the
 * hosted domains wait here until each recipient is delivered or fails for good.
 *
 * Storage contract (one directory, `<dataDir>/queue`):
 * - An entry is two files: `<id>.eml` (the signed message, CRLF, exactly as sent) and `<id>.json`
 *   (envelope and per-recipient state). Each is written to a `.tmp` name, fsync'ed and renamed,
 *   the message first; the directory is fsync'ed after the metadata rename. `enqueue` MUST NOT
 *   resolve before that, so an acknowledged message survives a crash.
 * - The metadata file is the commit point: at start, an `.eml` without `.json` (a crash mid-
 *   enqueue, never acknowledged) and any `.tmp` are removed; a `.json` that does not parse is
 *   moved to `corrupt/` and reported (SMTP_QUEUE_CORRUPT), never silently dropped.
 * - State changes rewrite the metadata the same way; a crash between a delivery and its
 *   metadata update re-sends that message (at-least-once, as every MTA).
 *
 * Scheduling: retries back off exponentially (`retryDelayMs`); a recipient still undelivered
 * after `maxAgeMs` fails with 4.4.7. Each recipient that fails for good is reported to the sender
 * with a DSN (queue-dsn.ts) stored in the sender's Maildir. Bounces never bounce (RFC 5321 6.1).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { parseAddress, domainOfAddress, type MailDirectory } from "./directory.ts";
import type { MaildirWriter } from "./maildir-deliver.ts";
import { buildDsn, type DsnRecipient } from "./queue-dsn.ts";
import { deliverDomain, type DeliveryOutcome, type TransportOptions } from "./queue-transport.ts";
import type { MailCounters } from "./smtp/counters.ts";
import { smtpErrors, smtpReject } from "./smtp/errors.ts";
import { headerSpan, returnPathField } from "./smtp/message.ts";
import { deliverLocal, type SmtpLogger } from "./smtp/session.ts";

/** How retries are spaced (Postfix's defaults: 300 s doubling up to 4000 s, give up after 5 days). */
export interface RetryPolicy {
  readonly firstRetryMs: number;
  readonly retryMaxMs: number;
  readonly maxAgeMs: number;
}

/** The default retry policy. RFC 5321 4.5.4.1 asks for a give-up time of at least 4-5 days. */
export const RETRY_DEFAULT: RetryPolicy = { firstRetryMs: 300_000, retryMaxMs: 4_000_000, maxAgeMs: 5 * 86_400_000 };
/** Entries held at most; beyond, submission answers 452 4.3.1. */
export const QUEUE_ENTRIES_MAX = 100_000;
/** Recipients per entry (the submission limit is lower). */
export const QUEUE_RECIPIENTS_MAX = 1_000;
/** Deliveries running at once. */
export const QUEUE_CONCURRENCY = 8;
/** Longest single timer wait, so clock jumps are caught up. */
const TIMER_MAX_MS = 60_000;
const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** The wait after `attempts` failed attempts: firstRetryMs · 2^(attempts-1), at most retryMaxMs. */
export function retryDelayMs(attempts: number, p: RetryPolicy): number {
  const n = Math.max(1, Math.min(attempts, 40));
  return Math.min(p.firstRetryMs * 2 ** (n - 1), p.retryMaxMs);
}

const RecipientSchema = z
  .object({
    address: z.string().min(3).max(320),
    state: z.enum(["pending", "delivered", "failed"]),
    status: z.string().max(16).optional(),
    reply: z.string().max(2048).optional(),
    remoteMta: z.string().max(255).optional(),
  })
  .strict();

const EntrySchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(ID_RE),
    imvu: z.string().min(1).max(63),
    sender: z.string().min(3).max(320),
    createdAt: z.number().int().nonnegative(),
    attempts: z.number().int().nonnegative(),
    nextAttemptAt: z.number().int().nonnegative(),
    size: z.number().int().nonnegative(),
    recipients: z.array(RecipientSchema).min(1).max(QUEUE_RECIPIENTS_MAX),
  })
  .strict();

/** A queue entry's metadata. */
export type QueueEntry = z.infer<typeof EntrySchema>;

/** What the queue needs around it. */
export interface OutboundQueueOptions {
  /** The queue directory (`<dataDir>/queue`). */
  readonly dir: string;
  readonly transport: TransportOptions;
  readonly retry: RetryPolicy;
  readonly directory: MailDirectory;
  readonly writer: MaildirWriter;
  readonly counters: MailCounters;
  readonly log: SmtpLogger;
  readonly concurrency?: number;
  /** Replaces the SMTP transport (tests of the scheduler). */
  readonly deliver?: typeof deliverDomain;
}

async function writeDurable(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const h = await open(tmp, "w", 0o600);
  try {
    await h.writeFile(data);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
}

async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** The persistent outbound queue (see the contract above). */
export class OutboundQueue {
  readonly #o: OutboundQueueOptions;
  readonly #entries = new Map<string, QueueEntry>();
  readonly #running = new Set<string>();
  readonly #inflight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(o: OutboundQueueOptions) {
    this.#o = o;
  }

  /** Opens the queue directory, recovering what a crash left (see the contract), and starts delivering. */
  static open(o: OutboundQueueOptions): OutboundQueue {
    mkdirSync(join(o.dir, "corrupt"), { recursive: true, mode: 0o700 });
    const q = new OutboundQueue(o);
    q.#recover();
    q.#schedule();
    return q;
  }

  #recover(): void {
    const names = readdirSync(this.#o.dir);
    const metas = new Set(names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)));
    for (const n of names) {
      const path = join(this.#o.dir, n);
      if (n.endsWith(".tmp") || (n.endsWith(".eml") && !metas.has(n.slice(0, -4)))) rmSync(path, { force: true });
    }
    for (const id of metas) {
      const path = join(this.#o.dir, `${id}.json`);
      try {
        const size = statSync(path).size;
        if (size > 1024 * 1024) throw new Error("metadata too large");
        const entry = EntrySchema.parse(JSON.parse(readFileSync(path, "utf8")));
        if (entry.id !== id || !names.includes(`${id}.eml`)) throw new Error("metadata does not match its message");
        this.#entries.set(id, entry);
      } catch (e) {
        const err = smtpErrors.make("SMTP_QUEUE_CORRUPT", `${id}: ${(e as Error).message}`);
        this.#o.log("error", err.message, { code: err.code, id });
        for (const ext of [".json", ".eml"]) {
          try {
            renameSync(join(this.#o.dir, id + ext), join(this.#o.dir, "corrupt", id + ext));
          } catch {
            // absent
          }
        }
      }
    }
  }

  /** Entries waiting (a copy). */
  entries(): QueueEntry[] {
    return [...this.#entries.values()].map((e) => structuredClone(e));
  }

  /**
   * Stores a message for `recipients` durably and schedules its delivery; resolves with the queue
   * id only once both files and the directory are on disk. SMTP_SERVER_BUSY when the queue is full.
   */
  async enqueue(imvu: string, sender: string, recipients: readonly string[], message: Buffer): Promise<string> {
    if (this.#entries.size >= QUEUE_ENTRIES_MAX) throw smtpReject("SMTP_SERVER_BUSY", "outbound queue full");
    const id = `${Date.now().toString(36)}-${randomBytes(9).toString("base64url")}`;
    const now = Date.now();
    const entry: QueueEntry = {
      v: 1,
      id,
      imvu,
      sender,
      createdAt: now,
      attempts: 0,
      nextAttemptAt: now,
      size: message.length,
      recipients: recipients.map((address) => ({ address, state: "pending" })),
    };
    await writeDurable(join(this.#o.dir, `${id}.eml`), message);
    await writeDurable(join(this.#o.dir, `${id}.json`), JSON.stringify(entry));
    await syncDir(this.#o.dir);
    this.#entries.set(id, entry);
    this.#schedule();
    return id;
  }

  /** Runs due entries now (and re-arms the timer). */
  kick(): void {
    this.#schedule();
  }

  /** Stops scheduling and waits for deliveries in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await Promise.allSettled([...this.#inflight]);
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    const now = Date.now();
    const max = this.#o.concurrency ?? QUEUE_CONCURRENCY;
    let next = Infinity;
    for (const e of this.#entries.values()) {
      if (this.#running.has(e.id)) continue;
      if (e.nextAttemptAt <= now && this.#running.size < max) {
        this.#running.add(e.id);
        const p = this.#attempt(e)
          .catch((err: unknown) => {
            // A local failure (unreadable message, full disk) waits like a remote one, never spins.
            e.nextAttemptAt = Date.now() + retryDelayMs(e.attempts + 1, this.#o.retry);
            this.#o.log("error", "queue attempt failed", { id: e.id, error: String(err) });
          })
          .finally(() => {
            this.#running.delete(e.id);
            this.#inflight.delete(p);
            this.#schedule();
          });
        this.#inflight.add(p);
      } else {
        next = Math.min(next, e.nextAttemptAt);
      }
    }
    if (next !== Infinity) {
      this.#timer = setTimeout(() => this.#schedule(), Math.max(1, Math.min(next - now, TIMER_MAX_MS)));
      this.#timer.unref();
    }
  }

  async #attempt(e: QueueEntry): Promise<void> {
    const message = await readFile(join(this.#o.dir, `${e.id}.eml`));
    const byDomain = new Map<string, string[]>();
    for (const r of e.recipients) {
      if (r.state !== "pending") continue;
      const d = domainOfAddress(r.address) ?? "";
      byDomain.set(d, [...(byDomain.get(d) ?? []), r.address]);
    }
    const deliver = this.#o.deliver ?? deliverDomain;
    const outcomes: DeliveryOutcome[] = [];
    for (const [domain, rcpts] of byDomain) outcomes.push(...(await deliver(this.#o.transport, domain, e.sender, rcpts, message)));
    const now = Date.now();
    const expired = now - e.createdAt >= this.#o.retry.maxAgeMs;
    const failedNow: DsnRecipient[] = [];
    e.attempts += 1;
    for (const o of outcomes) {
      const r = e.recipients.find((x) => x.address === o.address && x.state === "pending");
      if (!r) continue;
      r.reply = o.reply;
      r.status = o.status;
      if (o.remoteMta !== undefined) r.remoteMta = o.remoteMta;
      if (o.result === "delivered") r.state = "delivered";
      else if (o.result === "permanent" || expired) {
        r.state = "failed";
        if (o.result !== "permanent") r.status = "4.4.7";
        failedNow.push({
          address: r.address,
          action: "failed",
          status: o.result === "permanent" ? o.status : "4.4.7",
          diagnostic: o.reply,
          ...(o.remoteMta === undefined ? {} : { remoteMta: o.remoteMta }),
          lastAttemptAt: new Date(now),
        });
      }
    }
    if (failedNow.length > 0) await this.#bounce(e, failedNow, message);
    this.#o.log("info", "queue attempt", { id: e.id, attempt: e.attempts, outcomes: outcomes.map((o) => `${o.address} ${o.result} ${o.status}`) });
    if (e.recipients.every((r) => r.state !== "pending")) {
      await unlink(join(this.#o.dir, `${e.id}.json`));
      await unlink(join(this.#o.dir, `${e.id}.eml`)).catch(() => undefined);
      this.#entries.delete(e.id);
      return;
    }
    e.nextAttemptAt = now + retryDelayMs(e.attempts, this.#o.retry);
    await writeDurable(join(this.#o.dir, `${e.id}.json`), JSON.stringify(e));
    await syncDir(this.#o.dir);
  }

  /** Stores a DSN for `failed` in the sender's mailbox; a sender without a mailbox here is logged. */
  async #bounce(e: QueueEntry, failed: DsnRecipient[], message: Buffer): Promise<void> {
    const parsed = parseAddress(e.sender);
    const mailbox = parsed === undefined ? undefined : await this.#o.directory.lookupMailbox(parsed.address);
    if (!mailbox) {
      this.#o.log("warn", "bounce dropped: the sender has no mailbox here", { id: e.id, sender: e.sender });
      return;
    }
    const dsn = buildDsn({
      reportingMta: this.#o.transport.hostname,
      to: mailbox.address,
      queueId: e.id,
      arrivalDate: new Date(e.createdAt),
      recipients: failed,
      originalHeaders: message.subarray(0, headerSpan(message).headerBytes),
      date: new Date(),
    });
    // RFC 3464 / RFC 5321 4.5.5: a DSN has the null reverse-path. A DSN that cannot be stored is
    // logged, not retried: the recipients' final state is what the queue must not lose.
    try {
      await deliverLocal(this.#o, [mailbox], [Buffer.from(returnPathField("")), dsn]);
    } catch (err) {
      this.#o.log("error", "bounce could not be stored", { id: e.id, sender: e.sender, error: String(err) });
    }
  }
}
