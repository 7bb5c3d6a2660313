/** Replays a platform's ledger into a fresh state (what `nexus ledger replay --verify` does). */
import type { Ledger } from "../../src/core/ledger/ledger.ts";
import { ledgerEntries, replay, type ReplayReport } from "../../src/core/pipeline/replay.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";

/** The replay report of `ledger` from entry 0 to its size. */
export function replayLedger(ledger: Ledger): Promise<ReplayReport> {
  return replay(ledgerEntries(ledger), identityVerifiers);
}
