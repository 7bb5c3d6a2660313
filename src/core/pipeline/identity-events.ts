/**
 * The bridge between commands that carry key events and core/identity: inception and rotation
 * events are checked here, at authentication, and their resulting key state is what reducers
 * record. The identity rules themselves (self-certifying ids, pre-rotation) live in core/identity.
 */
import type { IdentityRecord } from "./state.ts";

/** An identity's key state after an event. */
export interface KeyState {
  readonly id: string;
  readonly publicKey: string; // base64 raw Ed25519
  readonly nextKeyDigest: string;
  readonly seq: number;
  readonly lastEventDigest: string;
  readonly name?: string;
}

/** A signed key event as carried in a command body. */
export interface KeyEventWire {
  readonly event: Record<string, unknown>;
  readonly signature: string;
}

/** Checks a signed inception event; returns the identity it establishes, or a reason. */
export type InceptionVerifier = (wire: KeyEventWire) => { ok: true; state: KeyState } | { ok: false; reason: string };
/** Checks a signed rotation event against the current record; returns the new state, or a reason. */
export type RotationVerifier = (
  current: IdentityRecord,
  wire: KeyEventWire,
) => { ok: true; state: KeyState } | { ok: false; reason: string };
