/**
 * Self-certifying identities in the browser (docs/identity.md): an inception event
 * `{v:1, kind:"inception", publicKey, nextKeyDigest, name?}` signed over
 * PAE("application/vnd.nexus.key-event+json", JCS(event)); the id is "nx1" + RFC 4648 §6 base32
 * (lower case, unpadded) of SHA-256(JCS(inception)). Keys are WebCrypto Ed25519 generated or
 * imported with extractable=false; a CLI identity file is checked event by event before import.
 */
import { buf, concat, fromBase64, randomBytes, sha256, sha256Hex, toBase64, utf8 } from "./bytes.ts";
import { canonicalize } from "./jcs.ts";
import { ed25519Verify } from "./note.ts";
import type { StoredIdentity } from "./db.ts";

/** The DSSE payload type of key events (domain separation from commands). */
export const KEY_EVENT_PAYLOAD_TYPE = "application/vnd.nexus.key-event+json";
/** An identity name (the server's rule). */
export const IDENTITY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** Largest identity file imported. */
export const IDENTITY_FILE_BYTES_MAX = 1024 * 1024;
/** Most key events in an imported file. */
export const KEL_EVENTS_MAX = 1000;

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 §6 base32, lower case, no padding. */
export function base32LowerNoPad(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const b of bytes) {
    buffer = ((buffer << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/** DSSE PAE(type, body) (DSSE protocol.md). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  return concat(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload);
}

/** Signs `message` with a WebCrypto Ed25519 private key. */
export async function sign(key: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, buf(message)));
}

/** The identity id an inception event establishes. */
export async function identityIdOf(inception: unknown): Promise<string> {
  return `nx1${base32LowerNoPad(await sha256(utf8(canonicalize(inception))))}`;
}

/** A signed key event as the ledger carries it. */
export interface SignedKeyEvent {
  readonly event: Record<string, unknown>;
  readonly signature: string;
}

async function generate(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
}

async function rawPublic(k: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey("raw", k));
}

/** A new identity with browser keys: current and pre-committed next, both non-extractable. */
export async function createBrowserIdentity(name?: string): Promise<StoredIdentity> {
  if (name !== undefined && !IDENTITY_NAME_RE.test(name)) throw new Error("a name is 1 to 63 of A-Z a-z 0-9 . _ -, starting with a letter or digit");
  const current = await generate();
  const next = await generate();
  const pub = await rawPublic(current.publicKey);
  const event = {
    v: 1,
    kind: "inception",
    publicKey: toBase64(pub),
    nextKeyDigest: await sha256Hex(await rawPublic(next.publicKey)),
    ...(name === undefined ? {} : { name }),
  };
  const signature = toBase64(await sign(current.privateKey, pae(KEY_EVENT_PAYLOAD_TYPE, utf8(canonicalize(event)))));
  return {
    id: await identityIdOf(event),
    ...(name === undefined ? {} : { name }),
    seq: 0,
    kel: [{ event, signature }],
    publicKey: toBase64(pub),
    current: current.privateKey,
    next: next.privateKey,
    source: "browser",
    createdAt: new Date().toISOString(),
  };
}

/** PKCS#8 of an Ed25519 seed (RFC 8410 §7: the OneAsymmetricKey with the 32-byte CurvePrivateKey). */
function pkcs8OfSeed(seed: Uint8Array): Uint8Array {
  const prefix = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
  return concat(prefix, seed);
}

async function importSeed(seedB64: unknown): Promise<CryptoKey> {
  const seed = typeof seedB64 === "string" ? fromBase64(seedB64) : undefined;
  if (seed === undefined || seed.length !== 32) throw new Error("the file's seeds must be 32-byte base64");
  return crypto.subtle.importKey("pkcs8", buf(pkcs8OfSeed(seed)), { name: "Ed25519" }, false, ["sign"]);
}

function field(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== "string") throw new Error(`key event field ${k} is missing`);
  return v;
}

/** Verifies a key event log (inception, then rotations) and returns the current key state. */
async function verifyKel(kel: readonly unknown[]): Promise<{ id: string; publicKey: string; seq: number; name?: string }> {
  if (kel.length === 0 || kel.length > KEL_EVENTS_MAX) throw new Error("the key event log is empty or too long");
  let id = "";
  let name: string | undefined;
  let prev: Record<string, unknown> | undefined;
  for (let i = 0; i < kel.length; i++) {
    const s = kel[i] as Partial<SignedKeyEvent> | null;
    const ev = s?.event;
    if (typeof ev !== "object" || ev === null || typeof s?.signature !== "string") throw new Error(`event ${i} is malformed`);
    const pub = fromBase64(field(ev, "publicKey"));
    const sig = fromBase64(s.signature);
    if (pub === undefined || sig === undefined || !(await ed25519Verify(pub, pae(KEY_EVENT_PAYLOAD_TYPE, utf8(canonicalize(ev))), sig))) {
      throw new Error(`event ${i}: its signature does not verify with its own key`);
    }
    if (i === 0) {
      if (ev.kind !== "inception") throw new Error("the first event must be the inception");
      id = await identityIdOf(ev);
      name = typeof ev.name === "string" ? ev.name : undefined;
    } else {
      if (ev.kind !== "rotation" || ev.id !== id || ev.seq !== i) throw new Error(`event ${i} is not the next rotation of ${id}`);
      if (field(ev, "prevDigest") !== (await sha256Hex(utf8(canonicalize(prev))))) throw new Error(`event ${i}: prevDigest does not chain`);
      if ((await sha256Hex(pub)) !== field(prev ?? {}, "nextKeyDigest")) throw new Error(`event ${i}: the key is not the committed next key`);
    }
    prev = ev;
  }
  return { id, publicKey: field(prev ?? {}, "publicKey"), seq: kel.length - 1, ...(name === undefined ? {} : { name }) };
}

/**
 * Imports a CLI identity file `{v:1, kel, currentSeed, nextSeed}` (src/core/identity/keyring.ts):
 * the log is verified, the seeds become non-extractable keys, and a test signature proves the
 * current seed is the log's current key. The file's bytes are not kept.
 */
export async function importCliIdentity(text: string): Promise<StoredIdentity> {
  if (text.length > IDENTITY_FILE_BYTES_MAX) throw new Error("the file is too large for an identity file");
  let file: { v?: unknown; kel?: unknown; currentSeed?: unknown; nextSeed?: unknown };
  try {
    file = JSON.parse(text) as typeof file;
  } catch {
    throw new Error("the file is not JSON");
  }
  if (file.v !== 1 || !Array.isArray(file.kel)) throw new Error("not a Nexus identity file (v:1 with a key event log)");
  const state = await verifyKel(file.kel as unknown[]);
  const current = await importSeed(file.currentSeed);
  const next = await importSeed(file.nextSeed);
  const probe = randomBytes(32);
  const pub = fromBase64(state.publicKey) ?? new Uint8Array();
  if (!(await ed25519Verify(pub, probe, await sign(current, probe)))) throw new Error("the file's current seed is not the identity's current key");
  return {
    id: state.id,
    ...(state.name === undefined ? {} : { name: state.name }),
    seq: state.seq,
    kel: file.kel as unknown[],
    publicKey: state.publicKey,
    current,
    next,
    source: "cli-file",
    createdAt: new Date().toISOString(),
  };
}
