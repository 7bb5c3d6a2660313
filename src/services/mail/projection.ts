/**
 * The MailDirectory of the ledger: mailboxes, domains and DKIM keys as the pipeline's projection
 * holds them, secrets from the per-IMVU MailSecretStore. Pure lookups on an injected StateReader
 * (the pipeline's committed view), so a mailbox applied by the pipeline is served by the very
 * next SMTP or IMAP command; nothing here writes state.
 *
 * The ledger holds commitments, the secret store the secrets, and a secret counts only when it
 * matches the ledger: a verifier whose SHA-256 is not the mailbox's `verifierCommitment` (a stale
 * one after `mail.mailbox.passwd`, or one planted in the file) is never checked, and a DKIM key
 * whose public key commitment is not published for its domain never signs.
 */
import type { StateReader } from "../../core/pipeline/state.ts";
import { mailboxKey, type MailboxRecord } from "../../core/pipeline/mail-state.ts";
import { domainImvu } from "../../core/policy/mail-gates.ts";
import {
  checkPassword, commitment, createPasswordVerifier, MailSecretStore, maildirPath, maildirRoot, parseAddress,
  type DkimKey, type MailboxInfo, type MailDirectory,
} from "./directory.ts";
import { dkimKeyCommitment } from "./dkim.ts";
import { ensureMaildir, scanMaildirUsage } from "./maildir-deliver.ts";

/** How long a scanned storage figure of an IMVU is trusted before its Maildirs are scanned again. */
export const USAGE_RESCAN_MS = 60_000;

/** What the ledger directory needs. */
export interface LedgerMailDirectoryOptions {
  /** The committed projection (the pipeline's `state`, read live). */
  readonly state: StateReader;
  /** The data directory: Maildirs in `<dataDir>/mail`, secrets in `<dataDir>/secrets`. */
  readonly dataDir: string;
  /** Milliseconds clock (tests move it). */
  readonly clock?: () => number;
}

interface Usage {
  bytes: number;
  messages: number;
  scannedAtMs: number;
}

/** A MailDirectory answering from the ledger's projection and the secret store. */
export class LedgerMailDirectory implements MailDirectory {
  readonly root: string;
  readonly secrets: MailSecretStore;
  readonly #state: StateReader;
  readonly #clock: () => number;
  readonly #usage = new Map<string, Usage>();
  readonly #ensured = new Set<string>();
  readonly #dkim = new Map<string, { publishedIndex: string; keys: readonly DkimKey[] }>();

  constructor(o: LedgerMailDirectoryOptions) {
    this.#state = o.state;
    this.root = maildirRoot(o.dataDir);
    this.secrets = new MailSecretStore(o.dataDir);
    this.#clock = o.clock ?? (() => Date.now());
  }

  /** The IMVU serving `domain`: bound to it and neither departed nor gone. */
  #servingImvu(domain: string): string | undefined {
    const imvu = domainImvu(this.#state, domain);
    if (imvu === undefined) return undefined;
    const r = this.#state.get("imvu", imvu);
    return r === undefined || r.exit?.departedIndex !== undefined ? undefined : imvu;
  }

  /** The live mailbox row of an address (not being deleted), if hosted. */
  mailbox(address: string): MailboxRecord | undefined {
    const parsed = parseAddress(address);
    if (!parsed) return undefined;
    const imvu = this.#servingImvu(parsed.domain);
    if (imvu === undefined) return undefined;
    const m = this.#state.get("mail-mailbox", mailboxKey(imvu, parsed.address));
    return m === undefined || m.deletingIndex !== undefined ? undefined : m;
  }

  /** The Maildir of a mailbox row, created on first use. */
  maildirOf(m: MailboxRecord): string {
    const path = maildirPath(this.root, m.imvu, m.address);
    if (!this.#ensured.has(path)) {
      ensureMaildir(path);
      this.#ensured.add(path);
    }
    return path;
  }

  /** Mail storage of an IMVU across its mailboxes (bytes, messages), rescanned every USAGE_RESCAN_MS. */
  usageOf(imvu: string): { bytes: number; messages: number } {
    const now = this.#clock();
    const u = this.#usage.get(imvu);
    if (u && now - u.scannedAtMs < USAGE_RESCAN_MS) return u;
    let bytes = 0;
    let messages = 0;
    for (const [, m] of this.#state.list("mail-mailbox", `${imvu}/`)) {
      const s = scanMaildirUsage(maildirPath(this.root, m.imvu, m.address));
      bytes += s.bytes;
      messages += s.messages;
    }
    const fresh = { bytes, messages, scannedAtMs: now };
    this.#usage.set(imvu, fresh);
    return fresh;
  }

  /** Forgets cached figures of an IMVU (after an expunge or a delete). */
  invalidate(imvu: string): void {
    this.#usage.delete(imvu);
  }

  async lookupMailbox(address: string): Promise<MailboxInfo | undefined> {
    const m = this.mailbox(address);
    if (!m) return undefined;
    const imvu = this.#state.get("imvu", m.imvu);
    if (!imvu) return undefined;
    const quota = BigInt(imvu.envelope.mailStorageBytes);
    const usage = this.usageOf(m.imvu);
    return {
      imvu: m.imvu,
      identity: m.identity,
      address: m.address,
      maildirPath: this.maildirOf(m),
      // The envelope's mail storage is the IMVU's, shared by its mailboxes.
      quotaBytes: quota > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(quota),
      usedBytes: usage.bytes,
      usedMessages: usage.messages,
    };
  }

  async isLocalDomain(domain: string): Promise<string | undefined> {
    return this.#servingImvu(domain.toLowerCase().replace(/\.$/, ""));
  }

  async verifyPassword(address: string, password: string): Promise<boolean> {
    const m = this.mailbox(address);
    let verifier: string | undefined;
    try {
      verifier = m === undefined ? undefined : this.secrets.read(m.imvu).passwords[m.address];
    } catch {
      verifier = undefined;
    }
    if (m === undefined || verifier === undefined || commitment(verifier) !== m.verifierCommitment) {
      // Same work as a real check, so timing tells nothing about which mailboxes exist.
      await createPasswordVerifier("x").catch(() => undefined);
      return false;
    }
    try {
      return await checkPassword(verifier, password);
    } catch {
      return false;
    }
  }

  async dkimKeysFor(domain: string): Promise<readonly DkimKey[]> {
    const d = domain.toLowerCase();
    const published = this.#state.get("mail-domain", d);
    if (!published || this.#servingImvu(d) !== published.imvu) return [];
    const cached = this.#dkim.get(d);
    if (cached?.publishedIndex === published.publishedIndex) return cached.keys;
    const wanted = new Set(published.keys.map((k) => k.commitment));
    let stored: readonly DkimKey[];
    try {
      stored = this.secrets.read(published.imvu).dkim[d] ?? [];
    } catch {
      return [];
    }
    const keys = stored.filter((k) => wanted.has(dkimKeyCommitment(k)));
    if (keys.length > 0) this.#dkim.set(d, { publishedIndex: published.publishedIndex, keys });
    return keys;
  }

  recordDelivery(address: string, bytes: number): void {
    const m = this.mailbox(address);
    const u = m === undefined ? undefined : this.#usage.get(m.imvu);
    if (!u) return;
    u.bytes += bytes;
    u.messages += 1;
  }
}
