/**
 * Step 3 and the projection half of step 5: evaluate the gates for an authenticated command and
 * compute the changes it makes. Pure: live sequencing and replay call the same function.
 */
import { classifyActor } from "../policy/actor.ts";
import type { Verdict } from "../policy/context.ts";
import { evaluateGates } from "../policy/gates.ts";
import type { Authenticated } from "./authenticate.ts";
import { bookkeeping, consumeConsent, reduce } from "./reducer.ts";
import type { Change, StateReader } from "./state.ts";

/** Bytes a ledger entry adds around its envelope (index, time, outcome, verdicts), for gate 11. */
export const ENTRY_OVERHEAD_BYTES = 4096;

/** The decision for one command. */
export interface Decision {
  readonly outcome: "applied" | "denied";
  readonly verdicts: readonly Verdict[];
  readonly changes: readonly Change[];
}

/** Evaluates the gates at (index, time) and derives the projection changes. */
export function decide(state: StateReader, auth: Authenticated, index: bigint, time: string, envelopeBytes: number): Decision {
  const { cmd } = auth;
  const verdicts = evaluateGates({
    state,
    cmd,
    digest: auth.digest,
    time,
    actorClasses: classifyActor(state, cmd),
    signerKeyIds: auth.signerKeyIds,
    entryBytes: envelopeBytes + ENTRY_OVERHEAD_BYTES,
  });
  const outcome = verdicts.every((v) => v.pass) ? "applied" : "denied";
  const facts = { index, time, digest: auth.digest, ...(auth.keyState ? { keyState: auth.keyState } : {}) };
  const hasFeed = cmd.imvu !== undefined && (state.get("imvu", cmd.imvu) !== undefined || (outcome === "applied" && cmd.type === "imvu.create"));
  const changes =
    outcome === "applied"
      ? [...bookkeeping(cmd, facts, outcome, hasFeed), ...reduce(state, cmd, facts), ...consumeConsent(state, cmd, facts)]
      : bookkeeping(cmd, facts, outcome, hasFeed);
  return { outcome, verdicts, changes };
}
