/**
 * The stack audit (docs/operations.md, "The stack audit"; issue 8): one pass that verifies the
 * whole ledger, replays it and compares the rebuilt state with the stored projection (and with
 * the in-memory one the services read), checks the split invariants, the quotas and the gate
 * catalogue, and then the live services against the projection. The pure checks live in
 * src/core/audit; this module is the shell that reads the store, the ledger and the services.
 *
 * The audit covers one tree size N: N and the stored projection are read inside one ledger work
 * (the sequencer's transaction, appending nothing), so no command can land between the two, and
 * every check reports on the ledger [0, N) and the projection it produced.
 */
import { commonErrors } from "../core/common-errors.ts";
import { toHex } from "../core/crypto/bytes.ts";
import { isNexusError } from "../core/errors.ts";
import { checkGates, checkQuotas, checkSplits, CONSTITUTION_CATALOGUE, entryGateProblem, entryRequirements, type GateCatalogue } from "../core/audit/index.ts";
import { checkOf, ProblemList, reportOf, type AuditCheck, type AuditReport } from "../core/audit/report.ts";
import type { Ledger } from "../core/ledger/ledger.ts";
import { ledgerLogErrors } from "../core/ledger/ledger-errors.ts";
import { entryPage, latestCheckpoint } from "../core/ledger/ledger-storage.ts";
import { verifyLedgerStorage } from "../core/ledger/ledger-verify.ts";
import { openNote, parseCheckpoint } from "../core/ledger/note.ts";
import type { SqlExecutor } from "../core/ledger/storage-port.ts";
import { parseEntry, readProjection } from "../core/pipeline/pipeline.ts";
import { diffStates, replay } from "../core/pipeline/replay.ts";
import { MemoryState } from "../core/pipeline/state.ts";
import { liveChecks, liveSkipped, type LiveTargets } from "./audit-live.ts";
import type { Platform } from "./platform.ts";
import type { RunningService } from "./service.ts";
import { identityVerifiers } from "./verifiers.ts";

/** Titles of the checks run here. */
export const AUDIT_TITLES = {
  ledger: "ledger: every leaf, tile and signed checkpoint recomputed from the stored rows",
  replay: "replay: the ledger replayed from nothing (signatures, nonces, gates) rebuilds the stored projection, digest for digest",
} as const;

/** Row differences listed per projection compared. */
const ROWS_LISTED_MAX = 20;

/** What an audit reads. */
export interface AuditSources {
  readonly store: SqlExecutor;
  readonly ledger: Ledger;
  /** The checkpoint verifier key ("origin+hash+base64"). */
  readonly verifierKey: string;
  /** The in-memory projection the services read (a running platform's pipeline state). */
  readonly memory?: MemoryState;
  /** The running services to check, or why there are none (the live checks are then skipped). */
  readonly live: Omit<LiveTargets, "state" | "size"> | string;
  /**
   * Read N and the projection directly instead of inside a ledger work: for a data directory no
   * sequencer writes to (`nexus audit --local`); the audit fails if the ledger moved meanwhile.
   */
  readonly quiet?: boolean;
  /** The catalogue checked (tests pass a doctored one). */
  readonly catalogue?: GateCatalogue;
  readonly clock?: () => Date;
}

/** The tree size and the stored projection, read in one ledger work (nothing lands in between). */
async function snapshot(src: AuditSources): Promise<{ size: bigint; stored: MemoryState }> {
  if (!src.quiet) return src.ledger.submit(async (ctx) => ({ size: ctx.nextIndex, stored: await readProjection(ctx.tx) }));
  const size = src.ledger.size;
  const stored = await readProjection(src.store);
  const after = await latestCheckpoint(src.store);
  if ((after?.size ?? 0n) !== size) {
    throw commonErrors.make("INPUT_INVALID", `the ledger grew from ${size} to ${after?.size ?? 0n} entries during the audit: another process writes it; audit it through its API`, { field: "NEXUS_HOME" });
  }
  return { size, stored };
}

async function ledgerCheck(src: AuditSources, size: bigint): Promise<AuditCheck> {
  const origin = src.ledger.origin;
  const r = await verifyLedgerStorage(src.store, {
    size,
    checkNote: (note) => {
      try {
        const checkpoint = parseCheckpoint(openNote(note, [src.verifierKey]).text);
        return checkpoint.origin === origin ? { ok: true, checkpoint } : { ok: false, problem: `origin ${checkpoint.origin}` };
      } catch (e) {
        return { ok: false, problem: e instanceof Error ? e.message : String(e) };
      }
    },
  });
  const p = new ProblemList();
  if (!r.ok) p.add(`${r.firstBadIndex === undefined ? "" : `entry ${r.firstBadIndex}: `}${r.kind ?? "problem"}: ${r.problem ?? "unknown"}`);
  return checkOf("ledger", AUDIT_TITLES.ledger, p, Number(r.entriesChecked) + r.checkpointsChecked);
}

/** Entry rows read per query while replaying. */
const REPLAY_PAGE_ENTRIES = 512;

/**
 * The stored entry bytes [0, size) as they are, page by page: the replay judges what the rows
 * say, even where their hashes no longer match (the ledger check names those). A missing row is
 * LEDGER_STORAGE_CORRUPT.
 */
async function* storedEntries(db: SqlExecutor, size: bigint): AsyncGenerator<Uint8Array> {
  for (let from = 0n; from < size; ) {
    const rows = await entryPage(db, from, size, REPLAY_PAGE_ENTRIES);
    for (const r of rows) {
      if (typeof r.idx !== "bigint" && typeof r.idx !== "number") throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${from} is malformed`);
      if (BigInt(r.idx) !== from || !(r.bytes instanceof Uint8Array)) throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${from} is missing or malformed`);
      yield r.bytes;
      from += 1n;
    }
    if (rows.length === 0) throw ledgerLogErrors.make("LEDGER_STORAGE_CORRUPT", `entry ${from} is missing`);
  }
}

/** Reads each entry's type and verdicts on the way to the replay (the gates check's second half). */
async function* watched(entries: AsyncIterable<Uint8Array>, onEntry: (index: number, bytes: Uint8Array) => void): AsyncGenerator<Uint8Array> {
  let i = 0;
  for await (const bytes of entries) {
    onEntry(i++, bytes);
    yield bytes;
  }
}

/** The command type and the gates with a verdict in one entry, or undefined when it does not parse (replay says so). */
function typeAndVerdicts(bytes: Uint8Array): { type: string; gates: number[] } | undefined {
  try {
    const e = parseEntry(bytes) as unknown as { envelope?: { payload?: unknown }; gates?: unknown };
    const payload = typeof e.envelope?.payload === "string" ? Buffer.from(e.envelope.payload, "base64").toString("utf8") : "";
    const type = (JSON.parse(payload) as { type?: unknown }).type;
    const gates = Array.isArray(e.gates) ? e.gates.map((g) => Number((g as { gate?: unknown }).gate)) : [];
    return typeof type === "string" ? { type, gates } : undefined;
  } catch {
    return undefined;
  }
}

function listRows(p: ProblemList, replayed: MemoryState, other: MemoryState): void {
  for (const r of diffStates(replayed, other, ROWS_LISTED_MAX)) {
    p.add(`  ${r.kind === "missing" ? "missing" : r.kind === "extra" ? "extra row" : "differs"}: ${r.table} ${r.key}`);
  }
}

/** The replay check and the entry half of the gates check, in one pass over the ledger. */
async function replayCheck(src: AuditSources, size: bigint, stored: MemoryState, catalogue: GateCatalogue): Promise<{ replay: AuditCheck; entryProblems: string[]; entries: number }> {
  const need = entryRequirements(catalogue);
  const entryProblems: string[] = [];
  let entries = 0;
  const onEntry = (i: number, bytes: Uint8Array): void => {
    entries += 1;
    const tv = typeAndVerdicts(bytes);
    const problem = tv === undefined ? undefined : entryGateProblem(String(i), tv.type, tv.gates, need);
    if (problem !== undefined && entryProblems.length <= 100) entryProblems.push(problem);
  };
  const p = new ProblemList();
  let report;
  try {
    report = await replay(watched(storedEntries(src.store, size), onEntry), identityVerifiers);
  } catch (e) {
    // A missing or malformed row: nothing to replay past it.
    if (!isNexusError(e)) throw e;
    p.add(`the ledger cannot be replayed past entry ${entries}: ${e.code}: ${e.message}`);
    return { replay: checkOf("replay", AUDIT_TITLES.replay, p, entries), entryProblems, entries };
  }
  for (const m of report.mismatches) p.add(`entry ${m.index}: ${m.problem}`);
  const storedDigest = stored.digest();
  if (storedDigest !== report.digest) {
    p.add(`the stored projection differs from the replay: digest ${storedDigest}, replayed ${report.digest}`);
    listRows(p, report.state, stored);
  }
  const memory = src.memory;
  // The in-memory projection is compared only while the ledger is still at N (it follows each commit).
  if (memory !== undefined && src.ledger.size === size) {
    const memDigest = memory.digest();
    if (memDigest !== report.digest) {
      p.add(`the in-memory projection the services read differs from the replay: digest ${memDigest}, replayed ${report.digest}`);
      listRows(p, report.state, memory);
    }
  }
  return { replay: checkOf("replay", AUDIT_TITLES.replay, p, Number(report.size)), entryProblems, entries };
}

/** Runs every check over the tree the ledger holds now. */
export async function runAudit(src: AuditSources): Promise<AuditReport> {
  const { size, stored } = await snapshot(src);
  const root = toHex(await src.ledger.rootAt(size));
  const catalogue = src.catalogue ?? CONSTITUTION_CATALOGUE;
  const ledger = await ledgerCheck(src, size);
  const r = await replayCheck(src, size, stored, catalogue);
  const checks: AuditCheck[] = [ledger, r.replay, checkSplits(stored), checkQuotas(stored), checkGates(catalogue, r.entryProblems, r.entries)];
  if (typeof src.live === "string") checks.push(...liveSkipped(src.live));
  else checks.push(...(await liveChecks({ ...src.live, state: src.memory ?? stored, size: () => src.ledger.size })));
  return reportOf(checks, size, root, (src.clock ?? (() => new Date()))());
}

/** The audit of a running platform and its services. */
export function auditPlatform(platform: Platform, services: readonly RunningService[]): Promise<AuditReport> {
  const memory = platform.state instanceof MemoryState ? platform.state : undefined;
  return runAudit({
    store: platform.store,
    ledger: platform.ledger,
    verifierKey: platform.verifierKey,
    ...(memory === undefined ? {} : { memory }),
    live: { services },
  });
}
