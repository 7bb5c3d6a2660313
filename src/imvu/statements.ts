/**
 * The revenue part of the exit bundle: one proven statement per calendar month (UTC), from the
 * month the IMVU was created to the month of the export, each in the format `nexus revenue
 * statement --out` writes, so `nexus revenue verify-statement` checks it offline. The money
 * events are read from the signed commands of their ledger entries, as the statement route of
 * src/api/routes/imvus.ts reads them (the same derivation; kept here so the exit part depends on
 * core only).
 */
import { canonicalize, toHex } from "../core/crypto/index.ts";
import { buildStatement, statementToJson, STATEMENT_EVENTS_MAX, type MoneyEvent } from "../core/handshake/index.ts";
import type { Ledger } from "../core/ledger/ledger.ts";
import { leafHash } from "../core/ledger/merkle.ts";
import { decodeCommand } from "../core/pipeline/authenticate.ts";
import { parseEntry } from "../core/pipeline/pipeline.ts";
import type { ImvuRecord, StateReader } from "../core/pipeline/state.ts";
import { CONSTITUTION_VERSION } from "../core/policy/constitution.ts";
import { BUNDLE_PERIODS_MAX } from "./bundle-layout.ts";

/** One month's proven statement. */
export interface MonthStatement {
  readonly month: string;
  readonly entries: number;
  readonly proven: { statement: unknown; proofs: unknown[]; checkpoint: string; treeSize: string };
}

async function moneyEvents(state: StateReader, ledger: Ledger, unit: string, size: bigint): Promise<{ events: MoneyEvent[]; entries: Map<bigint, Uint8Array> }> {
  const records = state.list("revenue-event").map(([, r]) => r).filter((r) => r.imvu === unit && BigInt(r.index) < size);
  if (records.length > STATEMENT_EVENTS_MAX) throw new RangeError(`${records.length} money events`);
  records.sort((a, b) => (BigInt(a.index) < BigInt(b.index) ? -1 : 1));
  const events: MoneyEvent[] = [];
  const entries = new Map<bigint, Uint8Array>();
  for (const r of records) {
    const index = BigInt(r.index);
    const bytes = await ledger.entry(index);
    entries.set(index, bytes);
    const entry = parseEntry(bytes);
    const d = decodeCommand(canonicalize(entry.envelope));
    if (!d.ok) throw new Error(`invariant: the applied entry ${index} does not decode: ${d.error.code}`);
    const cmd = d.cmd;
    const base = { index, time: entry.time, unit, eventId: r.eventId };
    switch (cmd.type) {
      case "revenue.record":
        events.push({ ...base, kind: "revenue", source: cmd.body.source, currency: cmd.body.currency, amount: BigInt(cmd.body.amount), class: cmd.body.class, version: CONSTITUTION_VERSION });
        break;
      case "revenue.refund":
        events.push({ ...base, kind: "refund", source: cmd.body.source, currency: cmd.body.currency, amount: BigInt(cmd.body.amount), refOf: cmd.body.refOf });
        break;
      case "revenue.payout":
        events.push({ ...base, kind: "payout", source: "payout", currency: cmd.body.currency, amount: BigInt(cmd.body.amount) });
        break;
      default:
        throw new Error(`invariant: revenue event ${r.eventId} is recorded by a ${cmd.type} entry`);
    }
  }
  return { events, entries };
}

/** "YYYY-MM" of every month from `from` to `to` (inclusive). */
export function monthsBetween(from: Date, to: Date): string[] {
  const out: string[] = [];
  let y = from.getUTCFullYear();
  let m = from.getUTCMonth();
  while (y < to.getUTCFullYear() || (y === to.getUTCFullYear() && m <= to.getUTCMonth())) {
    out.push(`${y}-${String(m + 1).padStart(2, "0")}`);
    if (out.length > BUNDLE_PERIODS_MAX) throw new RangeError(`more than ${BUNDLE_PERIODS_MAX} months`);
    m++;
    if (m === 12) {
      m = 0;
      y++;
    }
  }
  return out;
}

function monthStart(month: string, add: number): string {
  const [y, m] = month.split("-").map(Number) as [number, number];
  return new Date(Date.UTC(y, m - 1 + add, 1)).toISOString().replace(".000Z", "Z");
}

/** The proven statements of every month of the IMVU's life, to the checkpoint (`size`, `note`). */
export async function monthlyStatements(state: StateReader, ledger: Ledger, rec: ImvuRecord, size: bigint, note: string, now: Date): Promise<MonthStatement[]> {
  const created = new Date(parseEntry(await ledger.entry(BigInt(rec.createdIndex))).time);
  const { events, entries } = await moneyEvents(state, ledger, rec.name, size);
  const out: MonthStatement[] = [];
  for (const month of monthsBetween(created, now)) {
    const statement = buildStatement({ unit: rec.name, period: { from: monthStart(month, 0), to: monthStart(month, 1) }, events });
    const proofs = [];
    for (const e of statement.entries) {
      const bytes = entries.get(e.index);
      if (!bytes) throw new Error(`invariant: no entry bytes for ${e.index}`);
      const proof = await ledger.inclusionProof(e.index, size);
      proofs.push({ index: e.index.toString(), leafHash: toHex(leafHash(bytes)), entry: Buffer.from(bytes).toString("base64"), inclusionProof: proof.map(toHex) });
    }
    out.push({ month, entries: statement.entries.length, proven: { statement: statementToJson(statement), proofs, checkpoint: note, treeSize: size.toString() } });
  }
  return out;
}
