/**
 * Replay: rebuild the projection from the ledger alone, re-checking every entry as the pipeline
 * would have (signature, nonce, time window, gates). A recorded outcome or verdict that the rules
 * do not reproduce is reported: an operator who writes an "applied" entry for a command the gates
 * deny is caught here.
 */
import { canonicalize } from "../crypto/index.ts";
import { authenticate, type KeyEventVerifiers } from "./authenticate.ts";
import { decide } from "./decide.ts";
import { parseEntry } from "./pipeline.ts";
import { MemoryState } from "./state.ts";

/** One entry the replay could not reproduce. */
export interface ReplayMismatch {
  readonly index: string;
  readonly problem: string;
}

/** The replay's result: the rebuilt state's digest and every mismatch found. */
export interface ReplayReport {
  readonly size: bigint;
  readonly digest: string;
  readonly mismatches: readonly ReplayMismatch[];
  readonly state: MemoryState;
}

/** Replays entries in index order into a fresh state. */
export async function replay(entries: AsyncIterable<Uint8Array>, verifiers: KeyEventVerifiers): Promise<ReplayReport> {
  const state = new MemoryState();
  const mismatches: ReplayMismatch[] = [];
  let n = 0n;
  for await (const bytes of entries) {
    const at = n.toString();
    n += 1n;
    let entry;
    try {
      entry = parseEntry(bytes);
    } catch (e) {
      mismatches.push({ index: at, problem: `entry is not JSON: ${String(e)}` });
      continue;
    }
    if (entry.index !== at) mismatches.push({ index: at, problem: `entry says index ${entry.index}` });
    const envelopeText = canonicalize(entry.envelope);
    const auth = authenticate(state, envelopeText, new Date(entry.time), verifiers);
    if (!auth.ok) {
      mismatches.push({ index: at, problem: `recorded command does not authenticate: ${auth.error.code} ${auth.error.message}` });
      continue;
    }
    const d = decide(state, auth.value, BigInt(at), entry.time, Buffer.byteLength(envelopeText));
    if (d.outcome !== entry.outcome) mismatches.push({ index: at, problem: `recorded ${entry.outcome}, the gates say ${d.outcome}` });
    if (canonicalize(d.verdicts) !== canonicalize(entry.gates)) mismatches.push({ index: at, problem: "recorded gate verdicts differ from the gates' verdicts" });
    state.apply(d.changes);
  }
  return { size: n, digest: state.digest(), mismatches, state };
}
