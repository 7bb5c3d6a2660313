/** What a gate sees: the state before the command, the validated command and facts about it. */
import type { StateReader } from "../pipeline/state.ts";
import type { ActorClass, GateNumber } from "./constitution.ts";
import type { Command } from "./schemas.ts";

/** Facts the pipeline established before the gates (authentication already passed). */
export interface GateContext {
  readonly state: StateReader;
  readonly cmd: Command;
  /** SHA-256 hex of the command's canonical JSON: what an owner's consent names. */
  readonly digest: string;
  /** The sequencer's time for this entry (ISO 8601): gates never read a clock. */
  readonly time: string;
  /** The classes the actor belongs to for this command (owner, admin, service:dns, ...). */
  readonly actorClasses: ReadonlySet<ActorClass>;
  /** Key ids named by the envelope's verified signatures. */
  readonly signerKeyIds: readonly string[];
  /** Byte length of the ledger entry that will record the command. */
  readonly entryBytes: number;
}

/** One gate's verdict. */
export interface Verdict {
  readonly gate: GateNumber;
  readonly pass: boolean;
  readonly reason: string;
}

/** A gate: a pure function of the context. */
export type Gate = (ctx: GateContext) => { pass: true; reason: string } | { pass: false; reason: string };

/** Shorthands for gate results. */
export const ok = (reason: string): { pass: true; reason: string } => ({ pass: true, reason });
export const deny = (reason: string): { pass: false; reason: string } => ({ pass: false, reason });
