/**
 * The mailbox directory the SMTP servers consult, the Maildir layout, password verifiers and the
 * per-IMVU secret store.
 *
 * The ledger is the source of truth for which mailboxes and domains exist; the SMTP side never
 * reads it. It depends on the injected `MailDirectory` below, which the ledger projection
 * implements (`StaticMailDirectory` is the in-memory implementation used by tests, benchmarks and
 * embedded setups). Secrets never enter the ledger: it records `commitment(verifier)` and
 * `dkimKeyCommitment(key)`, while the verifiers and private keys live in `MailSecretStore`, one
 * file per IMVU under the data directory with mode 0600.
 *
 * Maildir layout (shared with the IMAP server, and what Dovecot opens as is):
 *
 *     <root>/<imvu>/<local>@<domain>/Maildir/{tmp,new,cur}
 *
 * where <root> is `<dataDir>/mail`, <imvu> the IMVU name (a lower-case DNS label) and
 * <local>@<domain> the mailbox address in lower case (a dot-atom local part without "/", an LDH
 * domain). Message files carry LF line ends and are named `<time>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`
 * (see maildir-deliver.ts).
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { sha256Hex } from "../../core/crypto/hash.ts";
import { fromBase64 } from "../../core/crypto/bytes.ts";
import { isNexusError } from "../../core/errors.ts";
import { smtpErrors } from "./smtp/errors.ts";
import { Semaphore } from "./smtp/limits.ts";
import { generateDkimKeys, parseDkimKey, type DkimKey } from "./dkim.ts";
import { ensureMaildir, scanMaildirUsage } from "./maildir-deliver.ts";

export type { DkimKey } from "./dkim.ts";

/** A hosted mailbox as the SMTP servers see it. Sizes are bytes as safe integers. */
export interface MailboxInfo {
  /** The IMVU that owns the mailbox (gate 5). */
  readonly imvu: string;
  /** The identity the mailbox is bound to. */
  readonly identity: string;
  /** The normalised address, `local@domain` in lower case. */
  readonly address: string;
  /** The Maildir directory (holding tmp, new, cur), from `maildirPath`. */
  readonly maildirPath: string;
  /** Storage quota from the IMVU's envelope (for the mailbox or the IMVU, as the directory decides). */
  readonly quotaBytes: number;
  /** Storage in use, counted against `quotaBytes`. */
  readonly usedBytes: number;
  /** Message count quota, when the envelope sets one. */
  readonly quotaMessages?: number;
  /** Messages stored, counted against `quotaMessages`. */
  readonly usedMessages?: number;
}

/**
 * What the SMTP servers need to know about hosted mail. Implementations MUST answer from their
 * own projection (never from the network on the hot path) and MUST treat addresses as hostile
 * input (the servers pass what clients sent, after `parseAddress`).
 */
export interface MailDirectory {
  /** The mailbox at `address` (normalised), or undefined when none is hosted there. */
  lookupMailbox(address: string): Promise<MailboxInfo | undefined>;
  /** The IMVU owning `domain` (lower case) when it is hosted here, else undefined. */
  isLocalDomain(domain: string): Promise<string | undefined>;
  /** True when `password` matches the mailbox's verifier; false for unknown mailboxes. */
  verifyPassword(address: string, password: string): Promise<boolean>;
  /** The DKIM signing keys of a hosted domain (empty when it has none). */
  dkimKeysFor(domain: string): Promise<readonly DkimKey[]>;
  /** Told after each durable delivery of `bytes` into the mailbox, so usage stays current. */
  recordDelivery(address: string, bytes: number): void;
}

// ---------------------------------------------------------------------------------------------
// Addresses and the Maildir path

/** RFC 5321 4.5.3.1.1: the longest local part. */
export const LOCAL_PART_BYTES_MAX = 64;
/** RFC 1035 2.3.4 / RFC 5321 4.5.3.1.2: the longest domain name in text form (no trailing dot). */
export const DOMAIN_BYTES_MAX = 253;
/** RFC 1035 2.3.4: the longest label. */
export const LABEL_BYTES_MAX = 63;

// RFC 5322 3.2.3 atext without "/" (it would make a path separator); lower case only after folding.
const LOCAL_ATOM_RE = /^[a-z0-9!#$%&'*+=?^_`{|}~-]+$/;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const IMVU_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** A hostable mailbox address split into its normalised parts. */
export interface ParsedAddress {
  readonly local: string;
  readonly domain: string;
  readonly address: string;
}

/** True when `domain` (already lower case) is an LDH host name within the RFC 1035 bounds. */
export function isDomainName(domain: string): boolean {
  if (domain.length === 0 || domain.length > DOMAIN_BYTES_MAX) return false;
  const labels = domain.split(".");
  if (labels.length < 2) return false;
  return labels.every((l) => l.length <= LABEL_BYTES_MAX && LABEL_RE.test(l));
}

/**
 * Parses an address as a mailbox that can be hosted here: a dot-atom local part without "/" and an
 * LDH domain, folded to lower case (local parts are treated case-insensitively, as Postfix and
 * Dovecot do by default). Quoted local parts, address literals and non-ASCII give undefined.
 */
export function parseAddress(input: string): ParsedAddress | undefined {
  const at = input.lastIndexOf("@");
  if (at <= 0 || at === input.length - 1) return undefined;
  const local = input.slice(0, at).toLowerCase();
  const domain = input.slice(at + 1).toLowerCase().replace(/\.$/, "");
  if (local.length > LOCAL_PART_BYTES_MAX || !isDomainName(domain)) return undefined;
  const atoms = local.split(".");
  if (!atoms.every((a) => LOCAL_ATOM_RE.test(a))) return undefined;
  return { local, domain, address: `${local}@${domain}` };
}

/** The domain of any address (the part after the last "@"), lower case; undefined when not LDH. */
export function domainOfAddress(input: string): string | undefined {
  const at = input.lastIndexOf("@");
  if (at < 0) return undefined;
  const domain = input.slice(at + 1).toLowerCase().replace(/\.$/, "");
  return isDomainName(domain) ? domain : undefined;
}

/** The Maildir of `address` in IMVU `imvu` under `root` (see the layout above); SMTP_PATH_INVALID when unsafe. */
export function maildirPath(root: string, imvu: string, address: string): string {
  const parsed = parseAddress(address);
  if (!IMVU_RE.test(imvu) || imvu.length > LABEL_BYTES_MAX || parsed === undefined) {
    throw smtpErrors.make("SMTP_PATH_INVALID", `${imvu} / ${address}`);
  }
  return join(root, imvu, parsed.address, "Maildir");
}

/** The Maildir root under a data directory: `<dataDir>/mail`. */
export function maildirRoot(dataDir: string): string {
  return join(dataDir, "mail");
}

// ---------------------------------------------------------------------------------------------
// Password verifiers: scrypt (RFC 7914) in a PHC-like string

/** scrypt cost: N = 2^15 (RFC 7914 section 2), 32 MiB of memory per check. */
export const SCRYPT_LOG2_N = 15;
/** scrypt block size r. */
export const SCRYPT_BLOCK_SIZE = 8;
/** scrypt parallelism p. */
export const SCRYPT_PARALLELISM = 1;
/** Salt and derived key lengths. */
export const SCRYPT_SALT_BYTES = 16;
export const SCRYPT_KEY_BYTES = 32;
/** Bounds accepted when parsing a stored verifier, so a planted verifier cannot exhaust memory. */
export const SCRYPT_LOG2_N_RANGE: readonly [number, number] = [10, 17];
/** Longest password accepted (bytes of UTF-8). */
export const PASSWORD_BYTES_MAX = 1024;
/** scrypt runs at once (each holds 128·N·r bytes). */
export const SCRYPT_CONCURRENCY_MAX = 2;
const SCRYPT_MAXMEM_BYTES = 256 * 1024 * 1024;

const scryptGate = new Semaphore(SCRYPT_CONCURRENCY_MAX);
const VERIFIER_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,88})\$([A-Za-z0-9+/]{16,88})$/;

interface Verifier {
  readonly log2n: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Uint8Array;
  readonly key: Uint8Array;
}

function unpadded(b: Uint8Array): string {
  return Buffer.from(b).toString("base64").replace(/=+$/, "");
}

function decodeUnpadded(s: string): Uint8Array | undefined {
  const padded = s + "=".repeat((4 - (s.length % 4)) % 4);
  return fromBase64(padded);
}

/** Parses a `$scrypt$ln=..,r=..,p=..$salt$key` verifier (PHC string format, unpadded base64). */
export function parseVerifier(s: string): Verifier {
  const m = VERIFIER_RE.exec(s);
  const salt = m?.[4] === undefined ? undefined : decodeUnpadded(m[4]);
  const key = m?.[5] === undefined ? undefined : decodeUnpadded(m[5]);
  const [log2n, r, p] = [Number(m?.[1]), Number(m?.[2]), Number(m?.[3])];
  const [lo, hi] = SCRYPT_LOG2_N_RANGE;
  if (!m || !salt || !key || log2n < lo || log2n > hi || r < 1 || r > 32 || p < 1 || p > 4) {
    throw smtpErrors.make("SMTP_VERIFIER_INVALID");
  }
  return { log2n, r, p, salt, key };
}

async function scryptKey(password: string, v: Omit<Verifier, "key">, keyBytes: number): Promise<Buffer> {
  const release = await scryptGate.acquire();
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(password, v.salt, keyBytes, { N: 2 ** v.log2n, r: v.r, p: v.p, maxmem: SCRYPT_MAXMEM_BYTES }, (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
  } finally {
    release();
  }
}

function checkPasswordInput(password: string): void {
  const bytes = Buffer.byteLength(password, "utf8");
  if (bytes === 0 || bytes > PASSWORD_BYTES_MAX) throw smtpErrors.make("SMTP_PASSWORD_INVALID");
}

/** A fresh verifier for `password` with the current parameters (random 16-byte salt). */
export async function createPasswordVerifier(password: string): Promise<string> {
  checkPasswordInput(password);
  const params = { log2n: SCRYPT_LOG2_N, r: SCRYPT_BLOCK_SIZE, p: SCRYPT_PARALLELISM, salt: new Uint8Array(randomBytes(SCRYPT_SALT_BYTES)) };
  const key = await scryptKey(password, params, SCRYPT_KEY_BYTES);
  return `$scrypt$ln=${params.log2n},r=${params.r},p=${params.p}$${unpadded(params.salt)}$${unpadded(key)}`;
}

/** True when `password` matches `verifier` (compared in constant time); false for bad input. */
export async function checkPassword(verifier: string, password: string): Promise<boolean> {
  const bytes = Buffer.byteLength(password, "utf8");
  if (bytes === 0 || bytes > PASSWORD_BYTES_MAX) return false;
  const v = parseVerifier(verifier);
  const key = await scryptKey(password, v, v.key.length);
  return key.length === v.key.length && timingSafeEqual(key, v.key);
}

/** What the ledger records for a verifier: SHA-256 of its string, lower-case hex. */
export function commitment(verifier: string): string {
  return sha256Hex(verifier);
}

// ---------------------------------------------------------------------------------------------
// The per-IMVU secret store: <dataDir>/secrets/<imvu>/mail.json, mode 0600 (directories 0700)

const SecretsSchema = z
  .object({
    v: z.literal(1),
    passwords: z.record(z.string().max(320), z.string().max(256)),
    dkim: z.record(
      z.string().max(DOMAIN_BYTES_MAX),
      z
        .array(
          z
            .object({
              selector: z.string().regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/).max(LABEL_BYTES_MAX),
              algorithm: z.enum(["rsa-sha256", "ed25519-sha256"]),
              privateKeyPem: z.string().max(8192),
            })
            .strict(),
        )
        .max(8),
    ),
  })
  .strict();

/** The secrets of one IMVU's mail. */
export type MailSecrets = z.infer<typeof SecretsSchema>;

/** Largest secret store file read. */
export const SECRET_FILE_BYTES_MAX = 4 * 1024 * 1024;

/** Per-IMVU secret files: verifiers and DKIM private keys, written atomically with mode 0600. */
export class MailSecretStore {
  readonly dir: string;

  /** A store under `<dataDir>/secrets`. */
  constructor(dataDir: string) {
    this.dir = join(dataDir, "secrets");
  }

  /** The file of one IMVU. */
  fileOf(imvu: string): string {
    if (!IMVU_RE.test(imvu)) throw smtpErrors.make("SMTP_PATH_INVALID", imvu);
    return join(this.dir, imvu, "mail.json");
  }

  /** The IMVU's secrets (empty when it has none yet). */
  read(imvu: string): MailSecrets {
    let text: string;
    try {
      const buf = readFileSync(this.fileOf(imvu));
      if (buf.length > SECRET_FILE_BYTES_MAX) throw smtpErrors.make("SMTP_SECRET_STORE_INVALID", "too large");
      text = buf.toString("utf8");
    } catch (e) {
      if (isNexusError(e)) throw e;
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return { v: 1, passwords: {}, dkim: {} };
      throw smtpErrors.make("SMTP_SECRET_STORE_INVALID", (e as Error).message);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw smtpErrors.make("SMTP_SECRET_STORE_INVALID", "not JSON");
    }
    const r = SecretsSchema.safeParse(parsed);
    if (!r.success) throw smtpErrors.make("SMTP_SECRET_STORE_INVALID", r.error.issues[0]?.message);
    return r.data;
  }

  /** Replaces the IMVU's secrets: temp file (0600) + fsync + rename + directory fsync. */
  write(imvu: string, secrets: MailSecrets): void {
    const file = this.fileOf(imvu);
    const dir = join(this.dir, imvu);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify(secrets));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dfd = openSync(dir, "r");
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  /** Stores a mailbox's password verifier. */
  setVerifier(imvu: string, address: string, verifier: string): void {
    parseVerifier(verifier);
    const s = this.read(imvu);
    this.write(imvu, { ...s, passwords: { ...s.passwords, [address]: verifier } });
  }

  /** Stores a domain's DKIM keys (replacing any earlier set). */
  setDkimKeys(imvu: string, domain: string, keys: readonly DkimKey[]): void {
    for (const k of keys) parseDkimKey(k);
    const s = this.read(imvu);
    this.write(imvu, { ...s, dkim: { ...s.dkim, [domain]: keys.map((k) => ({ ...k })) } });
  }
}

// ---------------------------------------------------------------------------------------------
// StaticMailDirectory: the in-memory directory (domains and mailboxes given by its owner)

/** A mailbox to host. */
export interface MailboxSpec {
  readonly imvu: string;
  readonly identity: string;
  readonly address: string;
  readonly quotaBytes: number;
  readonly quotaMessages?: number;
}

interface MailboxState {
  info: MailboxInfo;
  usedBytes: number;
  usedMessages: number;
}

/**
 * A MailDirectory held in memory, its secrets in a MailSecretStore. The owner (the ledger
 * projection, a test, a benchmark) adds domains and mailboxes; usage starts from a scan of the
 * Maildir and follows `recordDelivery` (call `refreshUsage` after the IMAP side expunges).
 */
export class StaticMailDirectory implements MailDirectory {
  readonly root: string;
  readonly secrets: MailSecretStore;
  readonly #domains = new Map<string, string>();
  readonly #mailboxes = new Map<string, MailboxState>();
  readonly #dkim = new Map<string, readonly DkimKey[]>();

  /** A directory whose Maildirs live under `<dataDir>/mail` and secrets under `<dataDir>/secrets`. */
  constructor(dataDir: string) {
    this.root = maildirRoot(dataDir);
    this.secrets = new MailSecretStore(dataDir);
  }

  /** Binds `domain` to `imvu` and loads its DKIM keys from the secret store. */
  addDomain(imvu: string, domain: string): void {
    const d = domain.toLowerCase();
    if (!isDomainName(d) || !IMVU_RE.test(imvu)) throw smtpErrors.make("SMTP_PATH_INVALID", `${imvu} / ${domain}`);
    this.#domains.set(d, imvu);
    const keys = this.secrets.read(imvu).dkim[d];
    if (keys) this.#dkim.set(d, keys);
  }

  /** Creates the domain's RSA-2048 and Ed25519 DKIM keys, stores them (0600) and returns them. */
  createDkimKeys(domain: string, now: Date = new Date()): readonly DkimKey[] {
    const d = domain.toLowerCase();
    const imvu = this.#domains.get(d);
    if (imvu === undefined) throw smtpErrors.make("SMTP_CONFIG_INVALID", `domain ${domain} is not hosted`);
    const keys = generateDkimKeys(now);
    this.secrets.setDkimKeys(imvu, d, keys);
    this.#dkim.set(d, keys);
    return keys;
  }

  /** Hosts a mailbox (its domain must be bound to the same IMVU) and creates its Maildir. */
  addMailbox(spec: MailboxSpec): MailboxInfo {
    const parsed = parseAddress(spec.address);
    if (!parsed || this.#domains.get(parsed.domain) !== spec.imvu) {
      throw smtpErrors.make("SMTP_CONFIG_INVALID", `${spec.address} is not in a domain of ${spec.imvu}`);
    }
    const path = maildirPath(this.root, spec.imvu, parsed.address);
    ensureMaildir(path);
    const usage = scanMaildirUsage(path);
    const info: MailboxInfo = {
      imvu: spec.imvu,
      identity: spec.identity,
      address: parsed.address,
      maildirPath: path,
      quotaBytes: spec.quotaBytes,
      usedBytes: usage.bytes,
      ...(spec.quotaMessages === undefined ? {} : { quotaMessages: spec.quotaMessages }),
      usedMessages: usage.messages,
    };
    this.#mailboxes.set(parsed.address, { info, usedBytes: usage.bytes, usedMessages: usage.messages });
    return info;
  }

  /** Sets a mailbox's password; returns the commitment the ledger records. */
  async setPassword(address: string, password: string): Promise<string> {
    const m = this.#mailboxes.get(address.toLowerCase());
    if (!m) throw smtpErrors.make("SMTP_CONFIG_INVALID", `no mailbox ${address}`);
    const verifier = await createPasswordVerifier(password);
    this.secrets.setVerifier(m.info.imvu, m.info.address, verifier);
    return commitment(verifier);
  }

  /** Re-reads a mailbox's usage from its Maildir. */
  refreshUsage(address: string): void {
    const m = this.#mailboxes.get(address.toLowerCase());
    if (!m) return;
    const usage = scanMaildirUsage(m.info.maildirPath);
    m.usedBytes = usage.bytes;
    m.usedMessages = usage.messages;
  }

  async lookupMailbox(address: string): Promise<MailboxInfo | undefined> {
    const m = this.#mailboxes.get(address.toLowerCase());
    return m === undefined ? undefined : { ...m.info, usedBytes: m.usedBytes, usedMessages: m.usedMessages };
  }

  async isLocalDomain(domain: string): Promise<string | undefined> {
    return this.#domains.get(domain.toLowerCase());
  }

  async verifyPassword(address: string, password: string): Promise<boolean> {
    const m = this.#mailboxes.get(address.toLowerCase());
    const verifier = m === undefined ? undefined : this.secrets.read(m.info.imvu).passwords[m.info.address];
    if (verifier === undefined) {
      // Spend the same work on unknown mailboxes so timing does not reveal which exist.
      await createPasswordVerifier("x").catch(() => undefined);
      return false;
    }
    return checkPassword(verifier, password);
  }

  async dkimKeysFor(domain: string): Promise<readonly DkimKey[]> {
    return this.#dkim.get(domain.toLowerCase()) ?? [];
  }

  recordDelivery(address: string, bytes: number): void {
    const m = this.#mailboxes.get(address.toLowerCase());
    if (!m) return;
    m.usedBytes += bytes;
    m.usedMessages += 1;
  }
}
