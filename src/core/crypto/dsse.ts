/**
 * DSSE, the Dead Simple Signing Envelope (secure-systems-lab/dsse, protocol.md and envelope.md
 * v1.0): signatures over PAE(UTF8(payloadType), payload), carried in the JSON envelope
 * `{payload, payloadType, signatures: [{keyid?, sig}]}`.
 *
 * Verification is at the DSSE layer only (the payload is never parsed here): the payloadType must
 * be one the caller accepts, and at least `threshold` DISTINCT trusted keys must have signed
 * (protocol.md "Multi-signature Verification": the set ACCEPTED_KEYS). KEYID is an unauthenticated
 * hint (protocol.md: it "MUST NOT be used for security decisions"), so every signature is tried
 * against every trusted key; two names for the same key count once. Base64 may be standard or
 * URL-safe, padded or not (protocol.md: verifiers "MUST accept either"); unknown envelope fields
 * are ignored (envelope.md "Parsing rules").
 */
import { createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";
import { z } from "zod";
import { concatBytes, fromBase64, toBase64, toHex, utf8 } from "./bytes.ts";
import { PUBLIC_KEY_BYTES, ed25519Sign, ed25519Verify, publicKeyFromRaw } from "./ed25519.ts";
import { cryptoErrors } from "./errors.ts";
import { JSON_CHARS_CEILING, parseJsonStrict } from "./jcs.ts";

/** Largest decoded payload (1 MiB). */
export const DSSE_PAYLOAD_BYTES_MAX = 1024 * 1024;
/** Longest payloadType, in UTF-16 code units. */
export const DSSE_PAYLOAD_TYPE_CHARS_MAX = 256;
/** Most signatures in one envelope. */
export const DSSE_SIGNATURES_MAX = 16;
/** Longest keyid. */
export const DSSE_KEYID_CHARS_MAX = 256;
/** Longest base64 signature (room for 768-byte signatures). */
export const DSSE_SIG_CHARS_MAX = 1024;
/** Most trusted keys one verification considers. */
export const DSSE_TRUSTED_KEYS_MAX = 64;
/** Largest envelope text parseDsse reads (payload in base64 plus signatures). */
export const DSSE_ENVELOPE_CHARS_MAX = Math.ceil(DSSE_PAYLOAD_BYTES_MAX / 3) * 4 + 64 * 1024;

const isBase64 = (s: string): boolean => fromBase64(s, true) !== undefined;

/** One signature of an envelope. */
export const DsseSignatureSchema = z.object({
  keyid: z.string().max(DSSE_KEYID_CHARS_MAX).optional(),
  sig: z.string().max(DSSE_SIG_CHARS_MAX).refine(isBase64, "sig is not base64"),
});

/** The DSSE JSON envelope (envelope.md) with a payload of at most `payloadBytesMax` bytes. */
function envelopeSchema(payloadBytesMax: number) {
  return z.object({
    payload: z
      .string()
      .max(Math.ceil(payloadBytesMax / 3) * 4)
      .refine(isBase64, "payload is not base64"),
    payloadType: z.string().max(DSSE_PAYLOAD_TYPE_CHARS_MAX),
    signatures: z.array(DsseSignatureSchema).max(DSSE_SIGNATURES_MAX),
  });
}

/** The DSSE JSON envelope (envelope.md), bounded; unknown fields are stripped. */
export const DsseEnvelopeSchema = envelopeSchema(DSSE_PAYLOAD_BYTES_MAX);

/** A DSSE envelope. */
export type DsseEnvelope = z.infer<typeof DsseEnvelopeSchema>;

/** Something that signs DSSE messages (the PAE bytes), with an optional key id hint. */
export interface DsseSigner {
  readonly keyid?: string;
  sign(message: Uint8Array): Uint8Array;
}

/** A trusted public key: raw 32-byte Ed25519, or a KeyObject (Ed25519, or ECDSA P-256 with SHA-256, r||s). */
export type DsseTrustedKey = Uint8Array | KeyObject;

/** What a verifier accepts. */
export interface DsseVerifyOptions {
  /** Distinct trusted keys that must have signed (at least 1). */
  readonly threshold: number;
  /** Payload types accepted (exact, case-sensitive match). */
  readonly acceptedTypes: readonly string[];
  /** Largest payload accepted (default DSSE_PAYLOAD_BYTES_MAX; large documents such as an exit manifest raise it). */
  readonly payloadBytesMax?: number;
}

/** A verified envelope: the payload bytes and the names of the trusted keys that signed. */
export interface DsseVerified {
  readonly payloadType: string;
  readonly payload: Uint8Array;
  readonly keyids: readonly string[];
}

/** PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body (protocol.md, "Signature Definition"). */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = utf8(payloadType);
  return concatBytes(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload);
}

/** An Ed25519 DSSE signer. */
export function ed25519DsseSigner(privateKey: KeyObject, keyid?: string): DsseSigner {
  return { ...(keyid === undefined ? {} : { keyid }), sign: (message) => ed25519Sign(privateKey, message) };
}

/** Signs `payload` as `payloadType` with every signer (protocol.md "To sign"); standard base64. */
export function signDsse(payloadType: string, payload: Uint8Array, signers: readonly DsseSigner[]): DsseEnvelope {
  if (signers.length === 0 || signers.length > DSSE_SIGNATURES_MAX) {
    throw new RangeError(`signDsse needs 1 to ${DSSE_SIGNATURES_MAX} signers`);
  }
  const message = pae(payloadType, payload);
  return {
    payload: toBase64(payload),
    payloadType,
    signatures: signers.map((s) => ({ ...(s.keyid === undefined ? {} : { keyid: s.keyid }), sig: toBase64(s.sign(message)) })),
  };
}

/** Parses envelope JSON text strictly (duplicate keys rejected) and checks its shape. */
export function parseDsse(text: string, opts: { readonly payloadBytesMax?: number } = {}): DsseEnvelope {
  const max = opts.payloadBytesMax ?? DSSE_PAYLOAD_BYTES_MAX;
  let json: unknown;
  try {
    json = parseJsonStrict(text, { charsMax: max === DSSE_PAYLOAD_BYTES_MAX ? DSSE_ENVELOPE_CHARS_MAX : Math.min(JSON_CHARS_CEILING, Math.ceil(max / 3) * 4 + 64 * 1024) });
  } catch (e) {
    throw cryptoErrors.make("CRYPTO_DSSE_MALFORMED", e instanceof Error ? e.message : String(e));
  }
  return decodeEnvelope(json, max);
}

function decodeEnvelope(envelope: unknown, payloadBytesMax = DSSE_PAYLOAD_BYTES_MAX): DsseEnvelope {
  const r = (payloadBytesMax === DSSE_PAYLOAD_BYTES_MAX ? DsseEnvelopeSchema : envelopeSchema(payloadBytesMax)).safeParse(envelope);
  if (!r.success) {
    const text = r.error.issues.map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
    throw cryptoErrors.make("CRYPTO_DSSE_MALFORMED", text);
  }
  return r.data;
}

/**
 * Verifies an envelope (protocol.md "Multi-signature Verification"): the payloadType must be
 * accepted and signatures by at least `threshold` distinct trusted keys must verify. Throws
 * CRYPTO_DSSE_MALFORMED, CRYPTO_DSSE_PAYLOAD_TYPE or CRYPTO_DSSE_UNVERIFIED.
 */
export function verifyDsse(envelope: unknown, trusted: ReadonlyMap<string, DsseTrustedKey>, opts: DsseVerifyOptions): DsseVerified {
  if (!Number.isSafeInteger(opts.threshold) || opts.threshold < 1) throw new RangeError("the DSSE threshold must be an integer >= 1");
  if (trusted.size > DSSE_TRUSTED_KEYS_MAX) throw new RangeError(`at most ${DSSE_TRUSTED_KEYS_MAX} trusted keys`);
  const max = opts.payloadBytesMax ?? DSSE_PAYLOAD_BYTES_MAX;
  const env = decodeEnvelope(envelope, max);
  // protocol.md checks the type after the signatures; both must hold, so the cheap check goes first.
  if (!opts.acceptedTypes.includes(env.payloadType)) {
    throw cryptoErrors.make("CRYPTO_DSSE_PAYLOAD_TYPE", JSON.stringify(env.payloadType));
  }
  const payload = fromBase64(env.payload, true) ?? new Uint8Array(); // the schema checked it decodes
  if (payload.length > max) throw cryptoErrors.make("CRYPTO_DSSE_MALFORMED", "payload too large");
  const message = pae(env.payloadType, payload);
  const keys = distinctKeys(trusted);
  const accepted = new Set<TrustedEntry>();
  for (const s of env.signatures) {
    const sig = fromBase64(s.sig, true) ?? new Uint8Array();
    for (const k of keys) {
      if (!accepted.has(k) && k.verify(message, sig)) {
        accepted.add(k);
        break;
      }
    }
  }
  if (accepted.size < opts.threshold) {
    throw cryptoErrors.make("CRYPTO_DSSE_UNVERIFIED", `${accepted.size} of ${opts.threshold} required distinct trusted keys signed`);
  }
  return { payloadType: env.payloadType, payload, keyids: [...accepted].map((k) => k.name) };
}

interface TrustedEntry {
  readonly name: string;
  verify(message: Uint8Array, sig: Uint8Array): boolean;
}

/** One entry per distinct key (by SPKI), named by its first name, so a key listed twice counts once. */
function distinctKeys(trusted: ReadonlyMap<string, DsseTrustedKey>): TrustedEntry[] {
  const byFingerprint = new Map<string, TrustedEntry>();
  for (const [name, key] of trusted) {
    const obj = key instanceof Uint8Array ? rawEd25519(key) : key;
    const fingerprint = toHex(new Uint8Array(obj.export({ format: "der", type: "spki" })));
    if (!byFingerprint.has(fingerprint)) byFingerprint.set(fingerprint, { name, verify: verifierFor(obj) });
  }
  return [...byFingerprint.values()];
}

function rawEd25519(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new RangeError(`a raw Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes`);
  return publicKeyFromRaw(raw);
}

function verifierFor(key: KeyObject): (message: Uint8Array, sig: Uint8Array) => boolean {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType === "ed25519") return (m, s) => ed25519Verify(pub, m, s);
  if (pub.asymmetricKeyType === "ec" && pub.asymmetricKeyDetails?.namedCurve === "prime256v1") {
    return (m, s) => {
      try {
        return nodeVerify("sha256", m, { key: pub, dsaEncoding: "ieee-p1363" }, s);
      } catch {
        return false;
      }
    };
  }
  throw new RangeError(`unsupported trusted key type ${pub.asymmetricKeyType ?? "?"}`);
}
