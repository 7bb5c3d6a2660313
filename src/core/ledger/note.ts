/**
 * C2SP signed notes (https://c2sp.org/signed-note, as golang.org/x/mod/sumdb/note implements it)
 * with Ed25519 keys, and C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint).
 *
 * A signed note is a text ending in "\n", a blank line, then one or more lines
 * "— <key name> <base64(4-byte key ID || signature)>\n" (U+2014 EM DASH, space). The key ID of an
 * Ed25519 key is SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]. A verifier key is the
 * text "<name>+<8 hex key ID>+<base64(0x01 || public key)>".
 *
 * Everything parsed here is hostile: sizes are bounded by the named constants below and every
 * failure is a typed LEDGER_NOTE_* error. This module is stricter than the spec in four places,
 * all documented in docs/ledger.md: base64 must be canonical; two signature lines with the same
 * key name and key ID make the note malformed (x/mod silently drops repeats); the note text may
 * not contain a line that starts like a signature line ("— "); a root hash must be 32 bytes.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { bytesEqual, concatBytes, fromBase64, toBase64, toHex, utf8 } from "../crypto/bytes.ts";
import { PUBLIC_KEY_BYTES, ed25519Sign, ed25519Verify, rawPublicKey } from "../crypto/ed25519.ts";
import { sha256 } from "../crypto/hash.ts";
import { ledgerErrors } from "./errors.ts";
import { HASH_BYTES, TREE_SIZE_MAX } from "./merkle.ts";

/** Largest signed note handled, in UTF-8 bytes (room for 16+ post-quantum signatures, as C2SP asks). */
export const NOTE_BYTES_MAX = 1_048_576;
/** Most signature lines in one note (C2SP: verifiers MUST accept at least 16; x/mod stops at 100). */
export const NOTE_SIGNATURES_MAX = 100;
/** Largest signature after its 4-byte key ID, in bytes (ML-DSA signatures are under 5 kB). */
export const SIGNATURE_BYTES_MAX = 8192;
/** Longest key name (and checkpoint origin), in UTF-8 bytes. */
export const KEY_NAME_BYTES_MAX = 1024;
/** Most verifier keys one openNote call takes. */
export const VERIFIER_KEYS_MAX = 64;
/** Most extension lines a checkpoint may carry. */
export const CHECKPOINT_EXTENSIONS_MAX = 64;
/** Bytes in a key ID (the "key hash"). */
export const KEY_HASH_BYTES = 4;
/** Signature type identifier of Ed25519 in C2SP signed-note. */
export const ALG_ED25519 = 0x01;

/** The 2-character prefix of every signature line: U+2014 EM DASH, then a space. */
const SIG_PREFIX = "\u2014 ";
/** Unicode White_Space (the same set as Go's unicode.IsSpace); not allowed in key names. */
const SPACE_RE = /\p{White_Space}/u;
const KEY_HASH_HEX_RE = /^[0-9a-fA-F]{8}$/;
const SIZE_RE = /^(?:0|[1-9][0-9]{0,19})$/;

/** A parsed tlog-checkpoint body. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: bigint;
  readonly root: Uint8Array;
  readonly extensions: readonly string[];
}

/** Something that signs note texts under one key name and key ID. */
export interface NoteSigner {
  readonly name: string;
  readonly keyHash: Uint8Array /*4 bytes*/;
  sign(msg: Uint8Array): Uint8Array;
}

/** A verifier key parsed from its text form. */
export interface NoteVerifierKey {
  readonly name: string;
  readonly keyHash: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Whether `s` holds an ASCII control character other than newline (C2SP forbids them in a note). */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return false;
}

function malformed(detail: string): never {
  throw ledgerErrors.make("LEDGER_NOTE_MALFORMED", detail);
}

function badKey(detail: string): never {
  throw ledgerErrors.make("LEDGER_NOTE_KEY_MALFORMED", detail);
}

/** Standard base64 that decodes and re-encodes to the same text; undefined otherwise. */
function canonicalBase64(s: string): Uint8Array | undefined {
  const b = fromBase64(s);
  return b !== undefined && toBase64(b) === s ? b : undefined;
}

/** Why `name` is not a valid key name (C2SP: non-empty, no Unicode space, no "+"), or undefined. */
function nameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name.length === 0) return "a key name must be a non-empty string";
  if (name.length > KEY_NAME_BYTES_MAX || Buffer.byteLength(name, "utf8") > KEY_NAME_BYTES_MAX) {
    return `a key name is at most ${KEY_NAME_BYTES_MAX} bytes`;
  }
  if (!name.isWellFormed()) return "a key name must be valid Unicode";
  if (SPACE_RE.test(name)) return "a key name must not contain spaces";
  if (name.includes("+")) return "a key name must not contain '+'";
  if (hasControl(name)) return "a key name must not contain control characters";
  return undefined;
}

/** Whether `name` is a valid C2SP key name. */
export function isValidKeyName(name: string): boolean {
  return nameProblem(name) === undefined;
}

/** The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4] (C2SP signed-note). */
export function noteKeyHash(name: string, publicKey: Uint8Array): Uint8Array {
  return sha256(utf8(name), new Uint8Array([0x0a, ALG_ED25519]), publicKey).slice(0, KEY_HASH_BYTES);
}

/** The verifier key text "name+hash+base64(0x01||pub)" of an Ed25519 public key. */
export function verifierKey(name: string, publicKey: Uint8Array): string {
  const problem = nameProblem(name);
  if (problem !== undefined) badKey(problem);
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) badKey(`an Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes`);
  const encoded = concatBytes(new Uint8Array([ALG_ED25519]), publicKey);
  return `${name}+${toHex(noteKeyHash(name, publicKey))}+${toBase64(encoded)}`;
}

/** Parses a verifier key text; LEDGER_NOTE_KEY_MALFORMED when its parts or key hash are wrong. */
export function parseVerifierKey(vkey: string): NoteVerifierKey {
  if (typeof vkey !== "string" || vkey.length > KEY_NAME_BYTES_MAX + 128) badKey(`a verifier key is name+hash+key, at most ${KEY_NAME_BYTES_MAX + 128} characters`);
  const first = vkey.indexOf("+");
  const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
  if (second < 0) badKey("a verifier key is name+hash+key");
  const name = vkey.slice(0, first);
  const hashHex = vkey.slice(first + 1, second);
  const problem = nameProblem(name);
  if (problem !== undefined) badKey(problem);
  if (!KEY_HASH_HEX_RE.test(hashHex)) badKey("the key hash is 8 hex digits");
  const key = canonicalBase64(vkey.slice(second + 1));
  if (key === undefined || key.length === 0) badKey("the key is not canonical standard base64");
  if (key[0] !== ALG_ED25519) badKey(`unknown signature type 0x${(key[0] ?? 0).toString(16).padStart(2, "0")} (only Ed25519, 0x01)`);
  const publicKey = key.slice(1);
  if (publicKey.length !== PUBLIC_KEY_BYTES) badKey(`an Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes`);
  const keyHash = noteKeyHash(name, publicKey);
  if (toHex(keyHash) !== hashHex.toLowerCase()) badKey("the key hash does not match the name and key");
  return { name, keyHash, publicKey };
}

/** A NoteSigner for an Ed25519 key pair; the public key must be the private key's. */
export function noteSignerFromEd25519(name: string, privateKey: KeyObject, publicKey: Uint8Array): NoteSigner {
  verifierKey(name, publicKey); // checks the name and the key length
  if (privateKey.type !== "private" || privateKey.asymmetricKeyType !== "ed25519") badKey("the signing key is not an Ed25519 private key");
  if (!bytesEqual(rawPublicKey(createPublicKey(privateKey)), publicKey)) badKey("the public key is not the private key's");
  const keyHash = noteKeyHash(name, publicKey);
  return {
    name,
    get keyHash(): Uint8Array {
      return keyHash.slice();
    },
    sign: (msg: Uint8Array): Uint8Array => ed25519Sign(privateKey, msg),
  };
}

/** Checks what C2SP asks of a whole note: bounded size, valid UTF-8, no control character but newline. */
function checkNoteChars(note: string): void {
  if (typeof note !== "string") malformed("the note must be a string");
  // A UTF-16 code unit is at least one UTF-8 byte: the cheap length test bounds the exact one.
  if (note.length > NOTE_BYTES_MAX || Buffer.byteLength(note, "utf8") > NOTE_BYTES_MAX) {
    throw ledgerErrors.make("LEDGER_NOTE_TOO_LARGE", `the note is larger than ${NOTE_BYTES_MAX} bytes`);
  }
  if (!note.isWellFormed()) malformed("the note is not valid UTF-8");
  if (hasControl(note)) malformed("the note contains a control character other than newline");
}

/** Checks a note text (the signed part): the note rules, a final newline, no line that starts like a signature. */
function checkText(text: string): void {
  checkNoteChars(text);
  if (!text.endsWith("\n")) malformed("the note text must end in a newline");
  if (text.startsWith(SIG_PREFIX) || text.includes("\n" + SIG_PREFIX)) malformed("the note text contains a line that starts like a signature line");
}

/** Signs `text` (which must end in "\n") with each signer: text, a blank line, one signature line each. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text);
  if (!Array.isArray(signers as unknown) || signers.length === 0) malformed("a signed note needs at least one signer");
  if (signers.length > NOTE_SIGNATURES_MAX) throw ledgerErrors.make("LEDGER_NOTE_TOO_LARGE", `at most ${NOTE_SIGNATURES_MAX} signatures`);
  const msg = utf8(text);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const s of signers) {
    const problem = nameProblem(s.name);
    if (problem !== undefined) badKey(problem);
    const keyHash = s.keyHash;
    if (!(keyHash instanceof Uint8Array) || keyHash.length !== KEY_HASH_BYTES) badKey(`a key hash is ${KEY_HASH_BYTES} bytes`);
    const id = `${s.name}+${toHex(keyHash)}`;
    if (seen.has(id)) badKey(`two signers share the key ${id}`);
    seen.add(id);
    const sig = s.sign(msg);
    if (!(sig instanceof Uint8Array) || sig.length === 0 || sig.length > SIGNATURE_BYTES_MAX) badKey(`signer ${id} returned no usable signature`);
    lines.push(`${SIG_PREFIX}${s.name} ${toBase64(concatBytes(keyHash, sig))}\n`);
  }
  const note = `${text}\n${lines.join("")}`;
  if (Buffer.byteLength(note, "utf8") > NOTE_BYTES_MAX) throw ledgerErrors.make("LEDGER_NOTE_TOO_LARGE", `the signed note is larger than ${NOTE_BYTES_MAX} bytes`);
  return note;
}

interface SignatureLine {
  readonly name: string;
  readonly keyHash: Uint8Array;
  readonly sig: Uint8Array;
}

/** Parses the signature block (every line "— name base64\n"); rejects repeats of one key. */
function parseSignatures(block: string): SignatureLine[] {
  if (block.length === 0 || !block.endsWith("\n")) malformed("the note must end with signature lines, each ending in a newline");
  const lines = block.slice(0, -1).split("\n", NOTE_SIGNATURES_MAX + 1);
  if (lines.length > NOTE_SIGNATURES_MAX) throw ledgerErrors.make("LEDGER_NOTE_TOO_LARGE", `more than ${NOTE_SIGNATURES_MAX} signatures`);
  const seen = new Set<string>();
  return lines.map((line, i) => {
    if (!line.startsWith(SIG_PREFIX)) malformed(`signature line ${i + 1} does not start with an em dash (U+2014) and a space`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    if (space < 0) malformed(`signature line ${i + 1} is not "— name signature"`);
    const name = rest.slice(0, space);
    const problem = nameProblem(name);
    if (problem !== undefined) malformed(`signature line ${i + 1}: ${problem}`);
    const raw = canonicalBase64(rest.slice(space + 1));
    if (raw === undefined) malformed(`signature line ${i + 1}: the signature is not canonical standard base64`);
    if (raw.length <= KEY_HASH_BYTES || raw.length > KEY_HASH_BYTES + SIGNATURE_BYTES_MAX) {
      malformed(`signature line ${i + 1}: a signature is a 4-byte key ID and 1 to ${SIGNATURE_BYTES_MAX} bytes`);
    }
    const keyHash = raw.slice(0, KEY_HASH_BYTES);
    const id = `${name}+${toHex(keyHash)}`;
    if (seen.has(id)) malformed(`key ${id} signs the note twice`);
    seen.add(id);
    return { name, keyHash, sig: raw.slice(KEY_HASH_BYTES) };
  });
}

/** The known keys by "name+hash"; the same key twice is fine, two keys under one id are not. */
function keyTable(verifierKeys: readonly string[]): Map<string, NoteVerifierKey> {
  if (!Array.isArray(verifierKeys as unknown)) badKey("verifier keys must be a list");
  if (verifierKeys.length > VERIFIER_KEYS_MAX) badKey(`at most ${VERIFIER_KEYS_MAX} verifier keys`);
  const known = new Map<string, NoteVerifierKey>();
  for (const text of verifierKeys) {
    const k = parseVerifierKey(text);
    const id = `${k.name}+${toHex(k.keyHash)}`;
    const other = known.get(id);
    if (other !== undefined && !bytesEqual(other.publicKey, k.publicKey)) badKey(`two verifier keys share the name and key hash ${id}`);
    known.set(id, k);
  }
  return known;
}

/**
 * Opens a signed note: checks its syntax, verifies every signature by a known key and returns the
 * text and the names of the keys that verified it. Signatures by unknown keys are ignored (C2SP).
 * Throws LEDGER_NOTE_MALFORMED / _TOO_LARGE on syntax, LEDGER_NOTE_KEY_MALFORMED on a bad verifier
 * key, LEDGER_NOTE_SIGNATURE_INVALID when a known key's signature fails, LEDGER_NOTE_UNVERIFIED
 * when no known key signed it.
 */
export function openNote(note: string, verifierKeys: readonly string[]): { text: string; verifiedBy: string[] } {
  const known = keyTable(verifierKeys);
  checkNoteChars(note);
  // The text ends at the last blank line (C2SP signed-note "Format").
  const split = note.lastIndexOf("\n\n");
  if (split < 0) malformed("no blank line separates the text from the signatures");
  const text = note.slice(0, split + 1);
  const sigs = parseSignatures(note.slice(split + 2));
  checkText(text);
  const msg = utf8(text);
  const verifiedBy: string[] = [];
  for (const s of sigs) {
    const k = known.get(`${s.name}+${toHex(s.keyHash)}`);
    if (k === undefined) continue; // an unknown key, even one sharing a name or an ID: ignored
    if (!ed25519Verify(k.publicKey, msg, s.sig)) {
      throw ledgerErrors.make("LEDGER_NOTE_SIGNATURE_INVALID", `key ${s.name}+${toHex(s.keyHash)}`);
    }
    verifiedBy.push(s.name);
  }
  if (verifiedBy.length === 0) throw ledgerErrors.make("LEDGER_NOTE_UNVERIFIED", `${sigs.length} signature(s), none by a known key`);
  return { text, verifiedBy };
}

/**
 * Decodes a note read as bytes (stdin, a file, an HTTP body): bounded and strict UTF-8, keeping a
 * byte order mark, so the string re-encodes to exactly the signed bytes.
 */
export function decodeNote(bytes: Uint8Array): string {
  if (bytes.length > NOTE_BYTES_MAX) throw ledgerErrors.make("LEDGER_NOTE_TOO_LARGE", `the note is larger than ${NOTE_BYTES_MAX} bytes`);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return malformed("the note is not valid UTF-8");
  }
}

/** Why a checkpoint line is not a valid one-line value, or undefined. */
function lineProblem(line: unknown, what: string): string | undefined {
  if (typeof line !== "string" || line.length === 0) return `the ${what} must be a non-empty line`;
  if (line.includes("\n") || hasControl(line)) return `the ${what} must not contain newlines or control characters`;
  if (!line.isWellFormed()) return `the ${what} must be valid Unicode`;
  if (line.startsWith(SIG_PREFIX)) return `the ${what} must not start like a signature line`;
  return undefined;
}

/** The checkpoint's note text: origin, decimal size, base64 root, extension lines, each ending in "\n". */
export function formatCheckpoint(c: Checkpoint): string {
  const originProblem = lineProblem(c.origin, "origin");
  if (originProblem !== undefined) malformed(originProblem);
  if (Buffer.byteLength(c.origin, "utf8") > KEY_NAME_BYTES_MAX) malformed(`the origin is at most ${KEY_NAME_BYTES_MAX} bytes`);
  if (typeof c.size !== "bigint" || c.size < 0n || c.size > TREE_SIZE_MAX) malformed("the tree size must be in [0, 2^64-1]");
  if (!(c.root instanceof Uint8Array) || c.root.length !== HASH_BYTES) malformed(`the root hash is ${HASH_BYTES} bytes`);
  if (!Array.isArray(c.extensions as unknown) || c.extensions.length > CHECKPOINT_EXTENSIONS_MAX) malformed(`at most ${CHECKPOINT_EXTENSIONS_MAX} extension lines`);
  for (const e of c.extensions) {
    const p = lineProblem(e, "extension line");
    if (p !== undefined) malformed(p);
  }
  const text = [c.origin, c.size.toString(), toBase64(c.root), ...c.extensions].map((l) => l + "\n").join("");
  checkText(text);
  return text;
}

/** Parses a checkpoint's note text (C2SP tlog-checkpoint "Note text"); LEDGER_NOTE_MALFORMED when it is not one. */
export function parseCheckpoint(text: string): Checkpoint {
  checkText(text);
  const lines = text.slice(0, -1).split("\n", CHECKPOINT_EXTENSIONS_MAX + 4);
  if (lines.length < 3) malformed("a checkpoint has an origin, a size and a root hash line");
  if (lines.length > CHECKPOINT_EXTENSIONS_MAX + 3) malformed(`at most ${CHECKPOINT_EXTENSIONS_MAX} extension lines`);
  const [origin = "", sizeText = "", rootText = "", ...extensions] = lines;
  const originProblem = lineProblem(origin, "origin");
  if (originProblem !== undefined) malformed(originProblem);
  if (Buffer.byteLength(origin, "utf8") > KEY_NAME_BYTES_MAX) malformed(`the origin is at most ${KEY_NAME_BYTES_MAX} bytes`);
  if (!SIZE_RE.test(sizeText)) malformed("the tree size is a decimal number without leading zeros");
  const size = BigInt(sizeText);
  if (size > TREE_SIZE_MAX) malformed("the tree size is above 2^64-1");
  const root = canonicalBase64(rootText);
  if (root === undefined || root.length !== HASH_BYTES) malformed(`the root hash is the canonical base64 of ${HASH_BYTES} bytes`);
  for (const e of extensions) if (e.length === 0) malformed("extension lines must not be empty");
  return { origin, size, root, extensions };
}
