/**
 * The owner's countersignature on the manifest: a second DSSE signature over the same payload
 * (DSSE protocol.md, "Multi-signature"), keyed by the owner's identity id. The platform's
 * signature is kept; the owner adds its own only after verifying the whole bundle.
 */
import type { KeyObject } from "node:crypto";
import { ed25519Sign, fromBase64, pae, toBase64, type DsseEnvelope } from "../core/crypto/index.ts";

/** The envelope with the owner's signature added (replacing an earlier one by the same key id). */
export function countersign(env: DsseEnvelope, ownerId: string, privateKey: KeyObject): DsseEnvelope {
  const payload = fromBase64(env.payload) ?? new Uint8Array();
  const sig = toBase64(ed25519Sign(privateKey, pae(env.payloadType, payload)));
  return { ...env, signatures: [...env.signatures.filter((s) => s.keyid !== ownerId), { keyid: ownerId, sig }] };
}
