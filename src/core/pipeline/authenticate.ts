/**
 * Step 1 and 2 of the pipeline: decode and schema-validate a DSSE command envelope, then verify
 * its signature, actor, nonce and time window against the state. Pure apart from signature
 * verification; used live by the sequencer and again by replay, so a forged entry is caught.
 */
import { canonicalize, parseJsonStrict, pae, DsseEnvelopeSchema, type DsseEnvelope } from "../crypto/index.ts";
import { fromBase64, bytesEqual, utf8 } from "../crypto/bytes.ts";
import { ed25519Verify, publicKeyFromRaw } from "../crypto/ed25519.ts";
import type { KeyObject } from "node:crypto";
import { sha256Hex } from "../crypto/hash.ts";
import type { NexusError } from "../errors.ts";
import { BODY_SCHEMAS, CommandHeaderSchema, isCommandType, type Command } from "../policy/schemas.ts";
import { pipelineErrors as E } from "./errors.ts";
import type { InceptionVerifier, KeyState, RotationVerifier } from "./identity-events.ts";
import type { StateReader } from "./state.ts";

/** The DSSE payloadType of Nexus commands. */
export const COMMAND_PAYLOAD_TYPE = "application/vnd.nexus.command+json";
/** Largest command envelope accepted, in bytes. */
export const COMMAND_BYTES_MAX = 64 * 1024;
/** How far issuedAt may be from the sequencer's clock (either way). */
export const TIME_WINDOW_MS = 5 * 60 * 1000;

/** A command that passed authentication. */
export interface Authenticated {
  readonly cmd: Command;
  readonly envelope: DsseEnvelope;
  /** SHA-256 hex of the canonical payload: the command digest owners consent to. */
  readonly digest: string;
  readonly signerKeyIds: readonly string[];
  /** For identity-establishing commands: the key state they establish. */
  readonly keyState?: KeyState;
}

/** Identity verifiers (from core/identity) the authentication step needs. */
export interface KeyEventVerifiers {
  readonly inception: InceptionVerifier;
  readonly rotation: RotationVerifier;
}

type Result = { ok: true; value: Authenticated } | { ok: false; error: NexusError };
const fail = (error: NexusError): Result => ({ ok: false, error });

/** Decodes the envelope and payload and validates the schema (no state needed). */
export function decodeCommand(raw: Uint8Array | string): { ok: true; envelope: DsseEnvelope; cmd: Command; payload: Uint8Array } | { ok: false; error: NexusError } {
  const size = typeof raw === "string" ? Buffer.byteLength(raw) : raw.length;
  if (size > COMMAND_BYTES_MAX) return { ok: false, error: E.make("PIPELINE_TOO_LARGE", `${size} > ${COMMAND_BYTES_MAX} bytes`) };
  const text = typeof raw === "string" ? raw : Buffer.from(raw).toString("utf8");
  let envelope: DsseEnvelope;
  try {
    envelope = DsseEnvelopeSchema.parse(parseJsonStrict(text));
  } catch (e) {
    return { ok: false, error: E.make("PIPELINE_MALFORMED", e instanceof Error ? e.message : String(e)) };
  }
  if (envelope.payloadType !== COMMAND_PAYLOAD_TYPE) {
    return { ok: false, error: E.make("PIPELINE_PAYLOAD_TYPE", `expected ${COMMAND_PAYLOAD_TYPE}`) };
  }
  const payload = fromBase64(envelope.payload, true);
  if (!payload) return { ok: false, error: E.make("PIPELINE_MALFORMED", "payload is not base64") };
  let json: unknown;
  try {
    json = parseJsonStrict(Buffer.from(payload).toString("utf8"));
  } catch (e) {
    return { ok: false, error: E.make("PIPELINE_MALFORMED", `payload: ${e instanceof Error ? e.message : String(e)}`) };
  }
  if (!bytesEqual(utf8(canonicalize(json)), payload)) return { ok: false, error: E.make("PIPELINE_NOT_CANONICAL") };
  const header = CommandHeaderSchema.safeParse(json);
  if (!header.success) return { ok: false, error: E.make("PIPELINE_SCHEMA", header.error.issues.map((i) => issueText(i)).join("; ")) };
  if (!isCommandType(header.data.type)) return { ok: false, error: E.make("PIPELINE_UNKNOWN_TYPE", header.data.type) };
  const body = BODY_SCHEMAS[header.data.type].safeParse(header.data.body);
  if (!body.success) return { ok: false, error: E.make("PIPELINE_SCHEMA", body.error.issues.map((i) => issueText(i, "body")).join("; ")) };
  const cmd = { ...header.data, body: body.data } as Command;
  return { ok: true, envelope, cmd, payload };
}

function issueText(i: { path: PropertyKey[]; message: string }, prefix?: string): string {
  const path = [...(prefix ? [prefix] : []), ...i.path.map(String)].join(".");
  return path ? `${path}: ${i.message}` : i.message;
}

/** Full authentication of a command against the state at `now` (the entry's time). */
export function authenticate(state: StateReader, raw: Uint8Array | string, now: Date, verifiers: KeyEventVerifiers): Result {
  const decoded = decodeCommand(raw);
  if (!decoded.ok) return decoded;
  const { envelope, cmd, payload } = decoded;
  const key = signingKey(state, cmd, verifiers);
  if (!key.ok) return key;
  const message = pae(envelope.payloadType, payload);
  const signerKeyIds: string[] = [];
  const publicKey = keyObjectOf(key.publicKey);
  for (const s of envelope.signatures) {
    const sig = fromBase64(s.sig, true);
    if (sig && publicKey && ed25519Verify(publicKey, message, sig)) signerKeyIds.push(s.keyid ?? "");
  }
  if (signerKeyIds.length === 0) return fail(E.make("PIPELINE_BAD_SIGNATURE", `actor ${cmd.actor}`));
  if (state.get("nonce", `${cmd.actor}/${cmd.nonce}`)) return fail(E.make("PIPELINE_NONCE_REUSED", cmd.nonce));
  const skewMs = Math.abs(Date.parse(cmd.issuedAt) - now.getTime());
  if (!(skewMs <= TIME_WINDOW_MS)) {
    return fail(E.make("PIPELINE_STALE", `issuedAt ${cmd.issuedAt} is ${Math.round(skewMs / 1000)} s from ${now.toISOString()}`));
  }
  const digest = sha256Hex(payload);
  return { ok: true, value: { cmd, envelope, digest, signerKeyIds, ...(key.keyState ? { keyState: key.keyState } : {}) } };
}

/** Public KeyObjects kept (building one from raw bytes costs as much as a verification). */
export const KEY_OBJECTS_CACHED_MAX = 4096;
const keyObjects = new Map<string, KeyObject>();

/** The KeyObject of a raw Ed25519 public key (cached, least recently used dropped), or undefined if malformed. */
function keyObjectOf(raw: Uint8Array): KeyObject | undefined {
  const k = Buffer.from(raw).toString("base64");
  const hit = keyObjects.get(k);
  if (hit) {
    keyObjects.delete(k);
    keyObjects.set(k, hit);
    return hit;
  }
  let obj: KeyObject;
  try {
    obj = publicKeyFromRaw(raw);
  } catch {
    return undefined;
  }
  keyObjects.set(k, obj);
  if (keyObjects.size > KEY_OBJECTS_CACHED_MAX) {
    const oldest = keyObjects.keys().next().value;
    if (oldest !== undefined) keyObjects.delete(oldest);
  }
  return obj;
}

type KeyResult = { ok: true; publicKey: Uint8Array; keyState?: KeyState } | { ok: false; error: NexusError };

/** Which key must have signed: the actor's current key, or the key a key event establishes. */
function signingKey(state: StateReader, cmd: Command, v: KeyEventVerifiers): KeyResult {
  const b64 = (s: string): Uint8Array => fromBase64(s) ?? new Uint8Array();
  switch (cmd.type) {
    case "platform.genesis":
    case "identity.inception": {
      const r = v.inception(cmd.body.inception);
      if (!r.ok) return { ok: false, error: E.make("PIPELINE_KEY_EVENT_INVALID", r.reason) };
      if (r.state.id !== cmd.actor) return { ok: false, error: E.make("PIPELINE_KEY_EVENT_INVALID", `inception is of ${r.state.id}, actor is ${cmd.actor}`) };
      if (state.get("identity", cmd.actor)) return { ok: false, error: E.make("PIPELINE_IDENTITY_EXISTS", cmd.actor) };
      if (cmd.type === "platform.genesis" && state.get("platform", "genesis")) {
        return { ok: false, error: E.make("PIPELINE_IDENTITY_EXISTS", "the platform genesis is already recorded") };
      }
      return { ok: true, publicKey: b64(r.state.publicKey), keyState: r.state };
    }
    case "identity.rotate": {
      const current = state.get("identity", cmd.actor);
      if (!current) return { ok: false, error: E.make("PIPELINE_ACTOR_UNKNOWN", cmd.actor) };
      const r = v.rotation(current, cmd.body.rotation);
      if (!r.ok) return { ok: false, error: E.make("PIPELINE_KEY_EVENT_INVALID", r.reason) };
      return { ok: true, publicKey: b64(r.state.publicKey), keyState: r.state };
    }
    default: {
      if (!state.get("platform", "genesis")) return { ok: false, error: E.make("PIPELINE_NOT_GENESIS") };
      const id = state.get("identity", cmd.actor);
      if (!id) return { ok: false, error: E.make("PIPELINE_ACTOR_UNKNOWN", cmd.actor) };
      if (cmd.type === "service.register") {
        const r = v.inception(cmd.body.inception);
        if (!r.ok) return { ok: false, error: E.make("PIPELINE_KEY_EVENT_INVALID", r.reason) };
        if (state.get("identity", r.state.id)) return { ok: false, error: E.make("PIPELINE_IDENTITY_EXISTS", r.state.id) };
        return { ok: true, publicKey: b64(id.publicKey), keyState: r.state };
      }
      return { ok: true, publicKey: b64(id.publicKey) };
    }
  }
}
