/**
 * Replay: rebuild the projection from the ledger alone, re-checking every entry as the pipeline
 * would have (signature, nonce, time window, gates). A recorded outcome or verdict that the rules
 * do not reproduce is reported: an operator who writes an "applied" entry for a command the gates
 * deny is caught here.
 */
import { canonicalize } from "../crypto/index.ts";
import { ENTRIES_PAGE_MAX, type Ledger } from "../ledger/ledger.ts";
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

/** The ledger's entries [0, size) in index order, a page at a time (the input `replay` takes). */
export async function* ledgerEntries(ledger: Pick<Ledger, "size" | "entries">, size: bigint = ledger.size): AsyncGenerator<Uint8Array> {
  for (let from = 0n; from < size; ) {
    const rows = await ledger.entries(from, ENTRIES_PAGE_MAX);
    if (rows.length === 0) throw new Error(`invariant: the ledger returned no entry at ${from} below its size ${size}`);
    for (const r of rows) {
      if (r.index >= size) return;
      yield r.bytes;
    }
    from += BigInt(rows.length);
  }
}

/** One projection row that differs between two states. */
export interface RowDifference {
  readonly table: string;
  readonly key: string;
  /** "missing" (only in the replayed state), "extra" (only in the stored one) or "differs". */
  readonly kind: "missing" | "extra" | "differs";
}

/** Most row differences `diffStates` lists. */
export const ROW_DIFFERENCES_MAX = 100;

/** The rows where `stored` differs from `replayed` (at most `max`), in (table, key) order. */
export function diffStates(replayed: MemoryState, stored: MemoryState, max = ROW_DIFFERENCES_MAX): RowDifference[] {
  const index = (s: MemoryState): Map<string, string> => {
    const m = new Map<string, string>();
    for (const [t, k, v] of s.rows()) m.set(`${t}\t${k}`, JSON.stringify(v));
    return m;
  };
  const a = index(replayed);
  const b = index(stored);
  const out: RowDifference[] = [];
  const push = (id: string, kind: RowDifference["kind"]): void => {
    const [table = "", key = ""] = id.split("\t");
    if (out.length < max) out.push({ table, key, kind });
  };
  for (const [id, v] of a) {
    const w = b.get(id);
    if (w === undefined) push(id, "missing");
    else if (w !== v) push(id, "differs");
  }
  for (const id of b.keys()) if (!a.has(id)) push(id, "extra");
  return out.sort((x, y) => (x.table + "\t" + x.key < y.table + "\t" + y.key ? -1 : 1));
}
