/**
 * A proven statement: a revenue statement with, for each of its entries, the ledger entry that
 * recorded it and the entry's inclusion proof to a signed checkpoint. `verifyProvenStatement`
 * needs nothing but the file and the platform's verifier key: it recomputes every figure from the
 * opening and the entries (recomputeStatement), checks the checkpoint's signature, each proof to
 * its root, and that each statement entry is exactly what its ledger entry recorded (an applied
 * revenue command on this unit with the same event id, amount, currency, index and time).
 *
 * What it cannot prove from one file: that the platform omitted no entry of the period. The
 * payer's receipt carries its own inclusion proof, so an omission is provable by the payer.
 */
import { z } from "zod";
import { parseJsonStrict } from "../crypto/index.ts";
import { fromBase64, fromHex, toHex } from "../crypto/bytes.ts";
import { leafHash, verifyInclusion } from "../ledger/merkle.ts";
import { openNote, parseCheckpoint } from "../ledger/note.ts";
import { recomputeStatement } from "./statement.ts";
import { parseStatementJson } from "./statement-json.ts";

/** Most entries a proven statement carries. */
export const PROVEN_ENTRIES_MAX = 1_000_000;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
/** The file `nexus revenue statement` writes (and GET /v1/imvus/:name/revenue/statement answers, plus the key). */
export const ProvenStatementSchema = z
  .object({
    statement: z.unknown(),
    proofs: z
      .array(z.object({ index: z.string().regex(/^\d{1,20}$/), leafHash: hex64, entry: z.string().max(1_000_000), inclusionProof: z.array(hex64).max(128) }).strict())
      .max(PROVEN_ENTRIES_MAX),
    checkpoint: z.string().max(65_536),
    treeSize: z.string().regex(/^\d{1,20}$/),
    verifierKey: z.string().max(1000).optional(),
  })
  .strict();

/** The outcome: ok, or every problem found. */
export interface ProvenStatementCheck {
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly entries: number;
}

const CommandView = z.object({ type: z.string(), imvu: z.string().optional(), body: z.record(z.string(), z.unknown()) }).passthrough();
const EntryView = z.object({ index: z.string(), time: z.string(), outcome: z.string(), envelope: z.object({ payload: z.string() }).passthrough() }).passthrough();

const KIND_OF: Readonly<Record<string, string>> = { "revenue.record": "revenue", "revenue.refund": "refund", "revenue.payout": "payout" };

/** Verifies a proven statement against the platform's verifier key (see the module comment). */
export function verifyProvenStatement(input: unknown, verifierKey: string): ProvenStatementCheck {
  const problems: string[] = [];
  const parsed = ProvenStatementSchema.safeParse(input);
  if (!parsed.success) return { ok: false, problems: [`not a proven statement: ${parsed.error.issues[0]?.message ?? "invalid"}`], entries: 0 };
  const file = parsed.data;
  let statement;
  try {
    statement = parseStatementJson(file.statement);
  } catch (e) {
    return { ok: false, problems: [`statement: ${e instanceof Error ? e.message : String(e)}`], entries: 0 };
  }
  const check = recomputeStatement(statement);
  for (const i of check.issues) problems.push(`figure ${i.path}: ${i.code} ${i.detail}`);
  let root: Uint8Array | undefined;
  try {
    const cp = parseCheckpoint(openNote(file.checkpoint, [verifierKey]).text);
    if (cp.size.toString() !== file.treeSize) problems.push(`treeSize ${file.treeSize} is not the checkpoint's ${cp.size}`);
    root = cp.root;
  } catch (e) {
    problems.push(`checkpoint: ${e instanceof Error ? e.message : String(e)}`);
  }
  const byIndex = new Map(file.proofs.map((p) => [p.index, p]));
  for (const e of statement.entries) {
    const at = e.index.toString();
    const p = byIndex.get(at);
    if (!p) {
      problems.push(`entry ${at}: no ledger entry and proof`);
      continue;
    }
    const bytes = fromBase64(p.entry) ?? new Uint8Array();
    if (toHex(leafHash(bytes)) !== p.leafHash) problems.push(`entry ${at}: leaf hash does not match the entry bytes`);
    const proof = p.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array());
    if (root && !verifyInclusion(leafHash(bytes), e.index, BigInt(file.treeSize), proof, root)) problems.push(`entry ${at}: not included in the signed tree`);
    const mismatch = entryMismatch(bytes, statement.unit, e);
    if (mismatch) problems.push(`entry ${at}: ${mismatch}`);
  }
  return { ok: problems.length === 0 && check.ok, problems, entries: statement.entries.length };
}

/** Why a ledger entry does not record the statement entry, or undefined when it does. */
function entryMismatch(bytes: Uint8Array, unit: string, e: { index: bigint; time: string; kind: string; eventId: string; amount: bigint; currency: string }): string | undefined {
  let entry;
  let cmd;
  try {
    entry = EntryView.parse(parseJsonStrict(Buffer.from(bytes).toString("utf8")));
    cmd = CommandView.parse(parseJsonStrict(Buffer.from(fromBase64(entry.envelope.payload) ?? new Uint8Array()).toString("utf8")));
  } catch {
    return "the ledger entry is not a Nexus command entry";
  }
  if (entry.index !== e.index.toString()) return `the ledger entry says index ${entry.index}`;
  if (entry.outcome !== "applied") return `the ledger entry was ${entry.outcome}`;
  if (Date.parse(entry.time) !== Date.parse(e.time)) return `recorded at ${entry.time}, the statement says ${e.time}`;
  const kind = KIND_OF[cmd.type];
  const expected = e.kind === "chargeback" ? "refund" : e.kind;
  if (kind !== expected) return `the ledger entry is ${cmd.type}, the statement says ${e.kind}`;
  if (cmd.imvu !== unit) return `the ledger entry is for ${String(cmd.imvu)}, not ${unit}`;
  const b = cmd.body;
  if (b.eventId !== e.eventId) return `event id ${String(b.eventId)} recorded, ${e.eventId} stated`;
  if (b.amount !== e.amount.toString() || b.currency !== e.currency) {
    return `recorded ${String(b.amount)} ${String(b.currency)}, stated ${e.amount} ${e.currency}`;
  }
  return undefined;
}
