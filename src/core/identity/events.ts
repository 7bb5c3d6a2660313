/**
 * Key events and key event logs (KELs): self-certifying identities with pre-rotation, a
 * simplified single-key form of KERI's (see docs/identity.md).
 *
 * - An inception event `{v:1, kind:"inception", publicKey, nextKeyDigest, name?}` is signed by
 *   `publicKey`; the identity id is derived from its digest (id.ts), so it binds the first key
 *   and the commitment to the next one.
 * - A rotation event `{v:1, kind:"rotation", id, seq, prevDigest, publicKey, nextKeyDigest}` is
 *   signed by its OWN `publicKey`, which MUST hash to the previous event's `nextKeyDigest`. The
 *   current key alone therefore cannot rotate: a thief of it knows neither the next private key
 *   nor (only its digest being public) even the next public key.
 * - Signatures cover PAE("application/vnd.nexus.key-event+json", JCS(event)) (DSSE protocol.md,
 *   RFC 8785), so a key event signature can never pass for a command signature or the reverse.
 * - Digests are hex SHA-256 of the RFC 8785 bytes of the unsigned event; `prevDigest` chains
 *   each rotation to the event before it, `seq` counts from 0 at inception.
 * `applyEvent` is a pure state transition; `verifyKel` folds it over a whole log.
 */
import type { KeyObject } from "node:crypto";
import { z } from "zod";
import { fromBase64, toBase64 } from "../crypto/bytes.ts";
import { pae } from "../crypto/dsse.ts";
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, ed25519Sign, ed25519Verify } from "../crypto/ed25519.ts";
import { sha256, sha256Hex } from "../crypto/hash.ts";
import { canonicalBytes } from "../crypto/jcs.ts";
import { isNexusError } from "../errors.ts";
import { identityErrors as E, type IdentityErrorCode } from "./errors.ts";
import { IDENTITY_ID_RE, identityIdFromDigest } from "./id.ts";

/** The DSSE payload type under which key events are signed (domain separation). */
export const KEY_EVENT_PAYLOAD_TYPE = "application/vnd.nexus.key-event+json";
/** Most events in one key event log (inception + 999 rotations). */
export const KEL_EVENTS_MAX = 1000;
/** An identity name: a letter or digit, then up to 62 letters, digits, '.', '_' or '-'. */
export const IDENTITY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** True when `s` is canonical standard base64 of exactly `bytes` bytes (one spelling per key). */
const canonicalBase64 =
  (bytes: number) =>
  (s: string): boolean => {
    const b = fromBase64(s);
    return b !== undefined && b.length === bytes && toBase64(b) === s;
  };

const PublicKeyB64 = z.string().max(64).refine(canonicalBase64(PUBLIC_KEY_BYTES), "a 32-byte Ed25519 public key in standard base64");
const Digest = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256");
/** An identity name. */
export const IdentityNameSchema = z.string().regex(IDENTITY_NAME_RE, "1 to 63 of [A-Za-z0-9._-], starting with a letter or digit");

/** The inception event. */
export const InceptionEventSchema = z
  .object({
    v: z.literal(1),
    kind: z.literal("inception"),
    publicKey: PublicKeyB64,
    nextKeyDigest: Digest,
    name: IdentityNameSchema.optional(),
  })
  .strict();

/** A rotation event. */
export const RotationEventSchema = z
  .object({
    v: z.literal(1),
    kind: z.literal("rotation"),
    id: z.string().regex(IDENTITY_ID_RE, "an identity id (nx1 + 52 base32 characters)"),
    seq: z.number().int().min(1).max(KEL_EVENTS_MAX - 1),
    prevDigest: Digest,
    publicKey: PublicKeyB64,
    nextKeyDigest: Digest,
  })
  .strict();

/** Any key event. */
export const KeyEventSchema = z.discriminatedUnion("kind", [InceptionEventSchema, RotationEventSchema]);

/** A key event with its signature (base64 Ed25519 over PAE(KEY_EVENT_PAYLOAD_TYPE, JCS(event))). */
export const SignedKeyEventSchema = z
  .object({ event: KeyEventSchema, signature: z.string().max(100).refine(canonicalBase64(SIGNATURE_BYTES), "a 64-byte Ed25519 signature in standard base64") })
  .strict();

export type InceptionEvent = z.infer<typeof InceptionEventSchema>;
export type RotationEvent = z.infer<typeof RotationEventSchema>;
export type KeyEvent = z.infer<typeof KeyEventSchema>;
export type SignedKeyEvent = z.infer<typeof SignedKeyEventSchema>;

/** An identity's key state after its latest event. */
export interface IdentityState {
  readonly id: string;
  /** The current public key, standard base64 of the raw 32 bytes. */
  readonly publicKey: string;
  /** Hex SHA-256 of the raw next public key (the pre-rotation commitment). */
  readonly nextKeyDigest: string;
  /** 0 after inception, +1 per rotation. */
  readonly seq: number;
  /** Hex SHA-256 of the latest event's JCS bytes (the next rotation's prevDigest). */
  readonly lastEventDigest: string;
  readonly name?: string;
}

/** The outcome of checking one key event without throwing (the pipeline's verifier shape). */
export type KeyEventCheck = { ok: true; state: IdentityState } | { ok: false; code: IdentityErrorCode; reason: string };

/** Hex SHA-256 of a raw public key: what a nextKeyDigest commits to. */
export function keyDigest(publicKey: Uint8Array): string {
  return sha256Hex(publicKey);
}

/** Hex SHA-256 of an event's RFC 8785 bytes. */
export function eventDigest(event: KeyEvent): string {
  return sha256Hex(canonicalBytes(event));
}

/** The identity id an inception event establishes. */
export function identityIdOf(inception: InceptionEvent): string {
  return identityIdFromDigest(sha256(canonicalBytes(inception)));
}

/** The bytes a key event's signature covers. */
export function keyEventMessage(event: KeyEvent): Uint8Array {
  return pae(KEY_EVENT_PAYLOAD_TYPE, canonicalBytes(event));
}

/** Throws IDENTITY_NAME_INVALID unless `name` is a valid identity name. */
export function checkIdentityName(name: string): string {
  if (!IDENTITY_NAME_RE.test(name)) throw E.make("IDENTITY_NAME_INVALID", JSON.stringify(name.slice(0, 80)));
  return name;
}

/** The inception event of a new identity (sign it with the key of `publicKey`). */
export function inceptionEvent(publicKey: Uint8Array, nextPublicKey: Uint8Array, name?: string): InceptionEvent {
  return {
    v: 1,
    kind: "inception",
    publicKey: toBase64(publicKey),
    nextKeyDigest: keyDigest(nextPublicKey),
    ...(name === undefined ? {} : { name: checkIdentityName(name) }),
  };
}

/** The rotation from `state` to `newPublicKey` (the committed next key; sign with it), committing to `nextPublicKey`. */
export function rotationEvent(state: IdentityState, newPublicKey: Uint8Array, nextPublicKey: Uint8Array): RotationEvent {
  return {
    v: 1,
    kind: "rotation",
    id: state.id,
    seq: state.seq + 1,
    prevDigest: state.lastEventDigest,
    publicKey: toBase64(newPublicKey),
    nextKeyDigest: keyDigest(nextPublicKey),
  };
}

/** Signs a key event. */
export function signKeyEvent(event: KeyEvent, privateKey: KeyObject): SignedKeyEvent {
  return { event, signature: toBase64(ed25519Sign(privateKey, keyEventMessage(event))) };
}

/** Validates a signed key event's shape (hostile input); throws IDENTITY_EVENT_MALFORMED. */
export function parseSignedKeyEvent(wire: unknown, at = ""): SignedKeyEvent {
  const r = SignedKeyEventSchema.safeParse(wire);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.map(String).join(".") || "(event)"}: ${i.message}`);
  throw E.make("IDENTITY_EVENT_MALFORMED", at + issues.join("; "));
}

/** The state after `signed` (inception when `state` is undefined, else the next rotation); throws IDENTITY_*. */
export function applyEvent(state: IdentityState | undefined, signed: unknown): IdentityState {
  return applyAt(state, signed, "");
}

function applyAt(state: IdentityState | undefined, signed: unknown, at: string): IdentityState {
  const { event, signature } = parseSignedKeyEvent(signed, at);
  if (event.nextKeyDigest === keyDigest(fromBase64(event.publicKey) ?? new Uint8Array())) {
    throw E.make("IDENTITY_EVENT_MALFORMED", `${at}nextKeyDigest commits to the current key itself; pre-rotation needs a new key`);
  }
  const next = event.kind === "inception" ? incept(state, event, at) : rotate(state, event, at);
  if (!ed25519Verify(fromBase64(event.publicKey) ?? new Uint8Array(), keyEventMessage(event), fromBase64(signature) ?? new Uint8Array())) {
    throw E.make("IDENTITY_SIGNATURE_INVALID", `${at}the ${event.kind} must be signed by its publicKey`);
  }
  return next;
}

function incept(state: IdentityState | undefined, event: InceptionEvent, at: string): IdentityState {
  if (state !== undefined) throw E.make("IDENTITY_EVENT_OUT_OF_ORDER", `${at}an inception can only start a key event log (${state.id} exists)`);
  const digest = sha256(canonicalBytes(event));
  return {
    id: identityIdFromDigest(digest),
    publicKey: event.publicKey,
    nextKeyDigest: event.nextKeyDigest,
    seq: 0,
    lastEventDigest: Buffer.from(digest).toString("hex"),
    ...(event.name === undefined ? {} : { name: event.name }),
  };
}

function rotate(state: IdentityState | undefined, event: RotationEvent, at: string): IdentityState {
  if (state === undefined) throw E.make("IDENTITY_EVENT_OUT_OF_ORDER", `${at}a rotation needs the identity's inception first`);
  if (event.id !== state.id) throw E.make("IDENTITY_ID_MISMATCH", `${at}event of ${event.id}, state of ${state.id}`);
  if (event.seq !== state.seq + 1) throw E.make("IDENTITY_EVENT_OUT_OF_ORDER", `${at}seq ${event.seq}, expected ${state.seq + 1}`);
  if (event.prevDigest !== state.lastEventDigest) {
    throw E.make("IDENTITY_EVENT_OUT_OF_ORDER", `${at}prevDigest does not name the previous event (seq ${state.seq})`);
  }
  const newKey = fromBase64(event.publicKey) ?? new Uint8Array();
  if (keyDigest(newKey) !== state.nextKeyDigest) {
    throw E.make("IDENTITY_KEY_NOT_COMMITTED", `${at}sha256(publicKey) is not the committed ${state.nextKeyDigest}`);
  }
  return {
    id: state.id,
    publicKey: event.publicKey,
    nextKeyDigest: event.nextKeyDigest,
    seq: event.seq,
    lastEventDigest: eventDigest(event),
    ...(state.name === undefined ? {} : { name: state.name }),
  };
}

/** Verifies a whole key event log (inception first, then rotations in order) and returns the current state. */
export function verifyKel(events: unknown): IdentityState {
  if (!Array.isArray(events) || events.length === 0) {
    throw E.make("IDENTITY_EVENT_MALFORMED", "a key event log is a non-empty array of signed events");
  }
  if (events.length > KEL_EVENTS_MAX) throw E.make("IDENTITY_KEL_TOO_LARGE", `${events.length} > ${KEL_EVENTS_MAX} events`);
  let state: IdentityState | undefined;
  for (let i = 0; i < events.length; i++) state = applyAt(state, events[i], `event ${i}: `);
  return state as IdentityState;
}

function check(fn: () => IdentityState): KeyEventCheck {
  try {
    return { ok: true, state: fn() };
  } catch (e) {
    if (!isNexusError(e) || !(e.code in E.specs)) throw e;
    return { ok: false, code: e.code as IdentityErrorCode, reason: e.message };
  }
}

/** Checks a signed inception without throwing (for the command pipeline). */
export function checkInception(wire: unknown): KeyEventCheck {
  return check(() => applyEvent(undefined, wire));
}

/** Checks a signed rotation against the current state without throwing (for the command pipeline). */
export function checkRotation(current: IdentityState, wire: unknown): KeyEventCheck {
  return check(() => applyEvent(current, wire));
}
