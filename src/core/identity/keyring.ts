/**
 * The local keyring: a creator's identities with their private keys, on disk, for the CLI.
 *
 * Layout of the keyring directory ($NEXUS_KEYRING, default ~/.config/nexus/keyring), mode 0700:
 *   <id>.json  one identity, mode 0600: `{v:1, kel:[signed key events], currentSeed, nextSeed}`
 *              (seeds: standard base64 of the 32-byte RFC 8032 private keys)
 *   default    the id of the default identity, mode 0600
 *   lock       present while a process changes the keyring (create, rotate, default)
 * Duties:
 * - Private key files MUST be mode 0600 (no group or other bits), owned by the user and not
 *   symlinks; anything else is refused with IDENTITY_KEY_FILE_MODE, never read (like ssh).
 * - Every write MUST be atomic (temporary file, fsync, rename, fsync of the directory): a crash
 *   leaves the old or the new file, and a rotation commits with one rename (KEL and both seeds).
 * - Loading MUST verify the whole KEL and that the seeds are its current and committed next keys.
 * Filesystem access is confined here; the identity rules are in events.ts.
 */
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { fromBase64, toBase64 } from "../crypto/bytes.ts";
import { SEED_BYTES, ed25519FromSeed, ed25519Seed, generateEd25519, type Ed25519KeyPair } from "../crypto/ed25519.ts";
import { parseJsonStrict } from "../crypto/jcs.ts";
import { isNexusError } from "../errors.ts";
import { identityErrors as E } from "./errors.ts";
import {
  KEL_EVENTS_MAX,
  applyEvent,
  checkIdentityName,
  inceptionEvent,
  keyDigest,
  parseSignedKeyEvent,
  rotationEvent,
  signKeyEvent,
  verifyKel,
  type IdentityState,
  type SignedKeyEvent,
} from "./events.ts";
import { IDENTITY_ID_RE, isIdentityId } from "./id.ts";

/** The environment variable naming the keyring directory. */
export const KEYRING_ENV = "NEXUS_KEYRING";
/** Largest identity file read (1 MiB: about 2000 key events). */
export const IDENTITY_FILE_BYTES_MAX = 1024 * 1024;
/** Most identities in one keyring. */
export const KEYRING_IDENTITIES_MAX = 1000;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const DEFAULT_FILE = "default";
const LOCK_FILE = "lock";
const IDENTITY_FILE_RE = /^(nx1[a-z2-7]{52})\.json$/;

const SeedB64 = z.string().refine((s) => fromBase64(s)?.length === SEED_BYTES, "a 32-byte seed in base64");
const IdentityFileSchema = z
  .object({ v: z.literal(1), kel: z.array(z.unknown()).min(1).max(KEL_EVENTS_MAX), currentSeed: SeedB64, nextSeed: SeedB64 })
  .strict();
const PublicIdentitySchema = z
  .object({ v: z.literal(1), id: z.string().regex(IDENTITY_ID_RE), kel: z.array(z.unknown()).min(1) })
  .strict();

/** An identity of the keyring, loaded and verified; the next private key stays on disk. */
export interface LocalIdentity {
  readonly id: string;
  readonly name?: string;
  readonly state: IdentityState;
  readonly kel: readonly SignedKeyEvent[];
  /** The current key pair (signs commands). */
  readonly current: Ed25519KeyPair;
  readonly path: string;
  readonly isDefault: boolean;
}

/** The public form of an identity: its key event log, which anyone can verify. */
export interface PublicIdentity {
  readonly v: 1;
  readonly id: string;
  readonly kel: readonly SignedKeyEvent[];
}

/** One line of a keyring listing. */
export interface IdentitySummary {
  readonly id: string;
  readonly name?: string;
  readonly seq: number;
  readonly isDefault: boolean;
}

interface Loaded {
  readonly state: IdentityState;
  readonly kel: readonly SignedKeyEvent[];
  readonly current: Ed25519KeyPair;
  readonly next: Ed25519KeyPair;
  readonly path: string;
}

/** The keyring directory: $NEXUS_KEYRING, else ~/.config/nexus/keyring. */
export function keyringDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const configured = env[KEYRING_ENV];
  if (configured) return resolve(configured);
  return join(env.HOME || homedir(), ".config", "nexus", "keyring");
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Creates an identity (fresh current and next keys) and makes it the default when there is none or when asked. */
export function createIdentity(dir: string, opts: { name?: string; makeDefault?: boolean } = {}): LocalIdentity {
  const name = opts.name === undefined ? undefined : checkIdentityName(opts.name);
  ensureDir(dir);
  return withLock(dir, () => {
    if (name !== undefined && loadAll(dir).some((l) => l.state.name === name)) {
      throw E.make("IDENTITY_NAME_TAKEN", `${name} in ${dir}`);
    }
    const current = generateEd25519();
    const next = generateEd25519();
    const event = signKeyEvent(inceptionEvent(current.publicKey, next.publicKey, name), current.privateKey);
    const state = applyEvent(undefined, event);
    const path = writeIdentity(dir, state.id, [event], current, next);
    const isDefault = opts.makeDefault === true || readDefault(dir) === undefined;
    if (isDefault) writeAtomic(dir, DEFAULT_FILE, `${state.id}\n`);
    return local({ state, kel: [event], current, next, path }, isDefault);
  });
}

/** Loads and verifies an identity by id or name (the default one when omitted). */
export function loadIdentity(dir: string, nameOrId?: string): LocalIdentity {
  checkDir(dir);
  const loaded = readIdentity(dir, resolveId(dir, nameOrId));
  return local(loaded, readDefault(dir) === loaded.state.id);
}

/** Rotates to the pre-committed next key, committing to a fresh one; returns the new identity and the signed rotation. */
export function rotateIdentity(dir: string, nameOrId?: string): { identity: LocalIdentity; event: SignedKeyEvent } {
  checkDir(dir);
  return withLock(dir, () => {
    const old = readIdentity(dir, resolveId(dir, nameOrId));
    if (old.kel.length >= KEL_EVENTS_MAX) throw E.make("IDENTITY_KEL_TOO_LARGE", `${old.state.id} already has ${old.kel.length} events`);
    const nextNext = generateEd25519();
    // Signed by the committed next key: the current key alone could not do this (docs/identity.md).
    const event = signKeyEvent(rotationEvent(old.state, old.next.publicKey, nextNext.publicKey), old.next.privateKey);
    const state = applyEvent(old.state, event);
    const kel = [...old.kel, event];
    const path = writeIdentity(dir, state.id, kel, old.next, nextNext);
    return { identity: local({ state, kel, current: old.next, next: nextNext, path }, readDefault(dir) === state.id), event };
  });
}

/** The public key event log of an identity (no private material). */
export function exportPublic(dir: string, nameOrId?: string): PublicIdentity {
  const { id, kel } = loadIdentity(dir, nameOrId);
  return { v: 1, id, kel };
}

/** Verifies an exported public identity (hostile input) and returns its current state. */
export function verifyPublicIdentity(doc: unknown): IdentityState {
  const r = PublicIdentitySchema.safeParse(doc);
  if (!r.success) throw E.make("IDENTITY_EVENT_MALFORMED", "a public identity is {v:1, id, kel:[...]}");
  const state = verifyKel(r.data.kel);
  if (state.id !== r.data.id) throw E.make("IDENTITY_ID_MISMATCH", `the key event log is of ${state.id}, the document says ${r.data.id}`);
  return state;
}

/** Every identity of the keyring, sorted by name (unnamed last) then id. */
export function listIdentities(dir: string): IdentitySummary[] {
  if (!exists(dir)) return [];
  checkDir(dir);
  const def = readDefault(dir);
  return loadAll(dir)
    .map((l) => ({ id: l.state.id, ...(l.state.name === undefined ? {} : { name: l.state.name }), seq: l.state.seq, isDefault: l.state.id === def }))
    .sort((a, b) => compare(a.name ?? "\uffff", b.name ?? "\uffff") || compare(a.id, b.id));
}

/** Makes an identity the default one. */
export function setDefaultIdentity(dir: string, nameOrId: string): LocalIdentity {
  checkDir(dir);
  return withLock(dir, () => {
    const loaded = readIdentity(dir, resolveId(dir, nameOrId));
    writeAtomic(dir, DEFAULT_FILE, `${loaded.state.id}\n`);
    return local(loaded, true);
  });
}

// ---------------------------------------------------------------------------------------------
// Resolution and decoding

/** Code unit order, independent of the locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function local(l: Loaded, isDefault: boolean): LocalIdentity {
  const name = l.state.name;
  return { id: l.state.id, ...(name === undefined ? {} : { name }), state: l.state, kel: l.kel, current: l.current, path: l.path, isDefault };
}

function resolveId(dir: string, nameOrId: string | undefined): string {
  if (nameOrId === undefined) {
    const def = readDefault(dir);
    if (def === undefined) throw E.make("IDENTITY_NOT_FOUND", `no default identity in ${dir}; create one with 'nexus id create'`);
    return def;
  }
  if (isIdentityId(nameOrId)) return nameOrId;
  const name = checkIdentityName(nameOrId);
  const match = loadAll(dir).find((l) => l.state.name === name);
  if (match === undefined) throw E.make("IDENTITY_NOT_FOUND", `no identity named ${name} in ${dir}; see 'nexus id list'`);
  return match.state.id;
}

function loadAll(dir: string): Loaded[] {
  const ids = listFiles(dir).flatMap((f) => IDENTITY_FILE_RE.exec(f)?.[1] ?? []);
  if (ids.length > KEYRING_IDENTITIES_MAX) throw E.make("IDENTITY_KEYRING_CORRUPT", `${dir} holds more than ${KEYRING_IDENTITIES_MAX} identities`);
  return ids.sort().map((id) => readIdentity(dir, id));
}

function readIdentity(dir: string, id: string): Loaded {
  const path = join(dir, `${id}.json`);
  const text = readPrivate(path, `identity ${id} is not in ${dir}; see 'nexus id list'`);
  const corrupt = (why: string): Error => E.make("IDENTITY_KEYRING_CORRUPT", `${path}: ${why}`);
  let file: z.infer<typeof IdentityFileSchema>;
  let state: IdentityState;
  try {
    const r = IdentityFileSchema.safeParse(parseJsonStrict(text, { charsMax: IDENTITY_FILE_BYTES_MAX }));
    if (!r.success) throw corrupt("not a keyring identity file {v:1, kel, currentSeed, nextSeed}");
    file = r.data;
    state = verifyKel(file.kel);
  } catch (e) {
    throw isNexusError(e, "IDENTITY_KEYRING_CORRUPT") ? e : corrupt(e instanceof Error ? e.message : String(e));
  }
  if (state.id !== id) throw corrupt(`it holds identity ${state.id}`);
  const current = ed25519FromSeed(fromBase64(file.currentSeed) ?? new Uint8Array());
  const next = ed25519FromSeed(fromBase64(file.nextSeed) ?? new Uint8Array());
  if (toBase64(current.publicKey) !== state.publicKey) throw corrupt("currentSeed is not the current key of the key event log");
  if (keyDigest(next.publicKey) !== state.nextKeyDigest) throw corrupt("nextSeed is not the key committed by nextKeyDigest");
  return { state, kel: file.kel.map((e) => parseSignedKeyEvent(e)), current, next, path };
}

function readDefault(dir: string): string | undefined {
  const path = join(dir, DEFAULT_FILE);
  if (!exists(path)) return undefined;
  const id = readPrivate(path, "").trim();
  if (!isIdentityId(id)) throw E.make("IDENTITY_KEYRING_CORRUPT", `${path} does not hold an identity id`);
  return id;
}

// ---------------------------------------------------------------------------------------------
// Files

function errno(e: unknown): string | undefined {
  return e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : undefined;
}

function io(e: unknown, path: string): Error {
  if (isNexusError(e)) return e;
  return E.make("IDENTITY_KEYRING_IO", `${path}: ${errno(e) ?? String(e)}`);
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw io(e, path);
  }
}

function checkPrivate(st: Stats, path: string, chmod: string): void {
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw E.make("IDENTITY_KEY_FILE_MODE", `${path} is owned by uid ${st.uid}, not by you (uid ${uid})`, { path });
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw E.make("IDENTITY_KEY_FILE_MODE", `${path} has mode ${mode.toString(8).padStart(4, "0")}; run: ${chmod} ${path}`, { path });
  }
}

function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  } catch (e) {
    throw io(e, dir);
  }
  checkDir(dir);
}

function checkDir(dir: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    if (errno(e) === "ENOENT") throw E.make("IDENTITY_NOT_FOUND", `the keyring ${dir} does not exist; create an identity with 'nexus id create'`);
    throw io(e, dir);
  }
  if (!st.isDirectory()) throw E.make("IDENTITY_KEYRING_IO", `${dir} is not a directory`);
  checkPrivate(st, dir, "chmod 700");
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    throw io(e, dir);
  }
}

/** Reads a private file: no symlink, a regular file, ours, mode 0600 or stricter, bounded. */
function readPrivate(path: string, notFound: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if (errno(e) === "ENOENT") throw E.make("IDENTITY_NOT_FOUND", notFound || path);
    if (errno(e) === "ELOOP") throw E.make("IDENTITY_KEY_FILE_MODE", `${path} is a symlink; keyring files must be regular files`, { path });
    throw io(e, path);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw E.make("IDENTITY_KEY_FILE_MODE", `${path} is not a regular file`, { path });
    checkPrivate(st, path, "chmod 600");
    if (st.size > IDENTITY_FILE_BYTES_MAX) throw E.make("IDENTITY_KEYRING_CORRUPT", `${path} is larger than ${IDENTITY_FILE_BYTES_MAX} bytes`);
    return readFileSync(fd, "utf8");
  } catch (e) {
    throw io(e, path);
  } finally {
    closeSync(fd);
  }
}

function writeIdentity(dir: string, id: string, kel: readonly SignedKeyEvent[], current: Ed25519KeyPair, next: Ed25519KeyPair): string {
  const file = { v: 1, kel, currentSeed: toBase64(ed25519Seed(current.privateKey)), nextSeed: toBase64(ed25519Seed(next.privateKey)) };
  return writeAtomic(dir, `${id}.json`, `${JSON.stringify(file, null, 2)}\n`);
}

/** Writes `dir/name` atomically with mode 0600: temporary file, fsync, rename, fsync of the directory. */
function writeAtomic(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  const tmp = join(dir, `.${name}.${randomBytes(8).toString("hex")}.tmp`);
  try {
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
    try {
      writeFileSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dfd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
    return path;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw io(e, path);
  }
}

/** Runs `fn` holding the keyring's lock file (created exclusively, removed after). */
function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, LOCK_FILE);
  let fd: number;
  try {
    fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, FILE_MODE);
  } catch (e) {
    if (errno(e) === "EEXIST") throw E.make("IDENTITY_KEYRING_BUSY", `${lock} exists; if no nexus process is running, remove it`);
    throw io(e, lock);
  }
  try {
    writeFileSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
