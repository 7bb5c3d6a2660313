/**
 * C2SP signed notes and tlog checkpoints, verified in the page: the verifier key
 * "name+hash+base64(0x01 || Ed25519 public key)" (key hash = SHA-256(name || 0x0A || 0x01 ||
 * key)[:4]), signature lines "— name base64(keyhash || sig)" after the last blank line, the
 * Ed25519 signature over the note text (C2SP signed-note), and the checkpoint text
 * "origin\nsize\nbase64(root)\n[extensions]" (C2SP tlog-checkpoint).
 */
import { buf, bytesEqual, fromBase64, sha256, toHex, utf8 } from "./bytes.ts";

/** Largest note handled (the server's bound). */
export const NOTE_CHARS_MAX = 1_000_000;
const SIG_PREFIX = "\u2014 ";

/** A parsed verifier key. */
export interface VerifierKey {
  readonly name: string;
  readonly keyHash: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly text: string;
}

/** A checkpoint's body. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: bigint;
  readonly root: Uint8Array;
}

/** Why a note was refused: a stable code and a sentence. */
export class NoteError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

async function keyHashOf(name: string, publicKey: Uint8Array): Promise<Uint8Array> {
  return (await sha256(utf8(name), new Uint8Array([0x0a, 0x01]), publicKey)).slice(0, 4);
}

/** Parses and checks a verifier key text (its key hash must match its name and key). */
export async function parseVerifierKey(text: string): Promise<VerifierKey> {
  // name+hash+key: the key's base64 may itself hold "+", so split at the first two only.
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0 || text.length > 1000) throw new NoteError("NOTE_KEY_MALFORMED", "a verifier key is name+hash+key");
  const name = text.slice(0, first);
  const hashHex = text.slice(first + 1, second);
  const keyB64 = text.slice(second + 1);
  if (!/^[0-9a-fA-F]{8}$/.test(hashHex)) throw new NoteError("NOTE_KEY_MALFORMED", "the key hash is 8 hex digits");
  if (name.length === 0 || /\s/.test(name)) throw new NoteError("NOTE_KEY_MALFORMED", "bad key name");
  const key = fromBase64(keyB64);
  if (key === undefined || key.length !== 33 || key[0] !== 0x01) throw new NoteError("NOTE_KEY_MALFORMED", "not an Ed25519 verifier key");
  const publicKey = key.slice(1);
  const keyHash = await keyHashOf(name, publicKey);
  if (toHex(keyHash) !== hashHex.toLowerCase()) throw new NoteError("NOTE_KEY_MALFORMED", "the key hash does not match the name and key");
  return { name, keyHash, publicKey, text };
}

/** Imports a raw Ed25519 public key for verification. */
export async function ed25519PublicKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", buf(raw), { name: "Ed25519" }, true, ["verify"]);
}

/** Verifies an Ed25519 signature with a raw public key (false on any malformed input). */
export async function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, await ed25519PublicKey(publicKey), buf(sig), buf(message));
  } catch {
    return false;
  }
}

/**
 * Opens a signed note with one verifier key: returns the signed text when a signature line by
 * that key verifies; throws NOTE_MALFORMED, NOTE_SIGNATURE_INVALID or NOTE_UNVERIFIED.
 */
export async function openNote(note: string, vkey: VerifierKey): Promise<string> {
  if (note.length > NOTE_CHARS_MAX) throw new NoteError("NOTE_MALFORMED", "the note is too large");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("NOTE_MALFORMED", "no blank line before the signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new NoteError("NOTE_MALFORMED", "signature lines must end in a newline");
  let verified = false;
  for (const line of block.slice(0, -1).split("\n").slice(0, 100)) {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError("NOTE_MALFORMED", "a signature line must start with an em dash");
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(" ");
    const name = rest.slice(0, space);
    const raw = space < 0 ? undefined : fromBase64(rest.slice(space + 1));
    if (raw === undefined || raw.length <= 4) throw new NoteError("NOTE_MALFORMED", "bad signature line");
    if (name !== vkey.name || !bytesEqual(raw.slice(0, 4), vkey.keyHash)) continue; // another key: ignored (C2SP)
    if (!(await ed25519Verify(vkey.publicKey, utf8(text), raw.slice(4)))) {
      throw new NoteError("NOTE_SIGNATURE_INVALID", `the signature of ${vkey.name} does not verify`);
    }
    verified = true;
  }
  if (!verified) throw new NoteError("NOTE_UNVERIFIED", `no signature by ${vkey.name}+${toHex(vkey.keyHash)}`);
  return text;
}

/** Parses a checkpoint's note text (C2SP tlog-checkpoint). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith("\n")) throw new NoteError("NOTE_MALFORMED", "the checkpoint text must end in a newline");
  const lines = text.slice(0, -1).split("\n");
  const [origin = "", sizeText = "", rootText = ""] = lines;
  if (lines.length < 3 || origin.length === 0) throw new NoteError("NOTE_MALFORMED", "a checkpoint has origin, size and root lines");
  if (!/^(0|[1-9][0-9]{0,19})$/.test(sizeText)) throw new NoteError("NOTE_MALFORMED", "the tree size is not a decimal number");
  const root = fromBase64(rootText);
  if (root === undefined || root.length !== 32) throw new NoteError("NOTE_MALFORMED", "the root is not base64 of 32 bytes");
  return { origin, size: BigInt(sizeText), root };
}

/** Opens and parses a signed checkpoint. */
export async function openCheckpoint(note: string, vkey: VerifierKey): Promise<Checkpoint> {
  return parseCheckpoint(await openNote(note, vkey));
}

