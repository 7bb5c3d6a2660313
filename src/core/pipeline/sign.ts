/**
 * Building and signing commands (used by the CLI, service identities and tests; the console does
 * the same with WebCrypto): canonical JSON payload (RFC 8785) in a DSSE envelope signed by the
 * actor's current key, key id `<identity>#<seq>`.
 */
import { randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { canonicalize, pae } from "../crypto/index.ts";
import { toBase64, utf8 } from "../crypto/bytes.ts";
import { ed25519Sign } from "../crypto/ed25519.ts";
import { sha256Hex } from "../crypto/hash.ts";
import { COMMAND_PAYLOAD_TYPE } from "./authenticate.ts";

/** Who signs: an identity's id, its key sequence number and private key. */
export interface CommandSigner {
  readonly id: string;
  readonly seq: number;
  readonly privateKey: KeyObject;
}

/** The unsigned command as its author writes it. */
export interface CommandDraft {
  readonly type: string;
  readonly imvu?: string;
  readonly body: Readonly<Record<string, unknown>>;
}

/** A signed command: the envelope JSON to POST and the digest an owner would consent to. */
export interface SignedCommand {
  readonly envelope: { payload: string; payloadType: string; signatures: { keyid: string; sig: string }[] };
  readonly json: string;
  readonly digest: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/** A fresh random nonce (128 bits, base64url). */
export function newNonce(): string {
  return randomBytes(16).toString("base64url");
}

/** The canonical payload of a command (what the digest covers). */
export function commandPayload(draft: CommandDraft, actor: string, issuedAt: Date, nonce: string): Record<string, unknown> {
  return {
    type: draft.type,
    v: 1,
    actor,
    ...(draft.imvu === undefined ? {} : { imvu: draft.imvu }),
    nonce,
    issuedAt: issuedAt.toISOString(),
    body: draft.body,
  };
}

/** Signs a payload (already built) as a DSSE envelope. */
export function signPayload(payload: Record<string, unknown>, signer: CommandSigner): SignedCommand {
  const bytes = utf8(canonicalize(payload));
  const sig = ed25519Sign(signer.privateKey, pae(COMMAND_PAYLOAD_TYPE, bytes));
  const envelope = {
    payload: toBase64(bytes),
    payloadType: COMMAND_PAYLOAD_TYPE,
    signatures: [{ keyid: `${signer.id}#${signer.seq}`, sig: toBase64(sig) }],
  };
  return { envelope, json: JSON.stringify(envelope), digest: sha256Hex(bytes), payload };
}

/** Builds and signs a command now, with a fresh nonce. */
export function signCommand(draft: CommandDraft, signer: CommandSigner, now: Date = new Date(), nonce: string = newNonce()): SignedCommand {
  return signPayload(commandPayload(draft, signer.id, now, nonce), signer);
}
