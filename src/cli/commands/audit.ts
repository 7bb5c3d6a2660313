/**
 * `nexus audit`: the stack audit (docs/operations.md, "The stack audit").
 *
 *   nexus audit [--api URL] [--verifier-key KEY] [--json]
 *     asks the running API to audit itself (POST /v1/audit) and prints the report; then, trusting
 *     nothing the server says, downloads the whole ledger, hashes every entry here and checks the
 *     tree against the checkpoint signed with the pinned verifier key, consistent with the last
 *     checkpoint this CLI saw, and binds the report's root to it (check `client.ledger`): a lying
 *     server cannot pass the ledger check.
 *   NEXUS_HOME=DIR nexus audit --local [--json]
 *     runs the checks that need no running service directly on a data directory (live checks
 *     skipped with the reason), like `ledger replay --verify`.
 *
 * Exit codes: 0 every check passed, 1 a violation, 2 bad input, 3 the API is unreachable.
 */
import type { Command } from "commander";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import { toHex } from "../../core/crypto/bytes.ts";
import { isNexusError, NexusError } from "../../core/errors.ts";
import { parseVerifierKey } from "../../core/ledger/note.ts";
import { AuditReportSchema, type AuditCheck, type AuditReport } from "../../core/audit/report.ts";
import { runAudit } from "../../platform/audit.ts";
import { apiBase, CLIENT_BODY_BYTES_MAX, clientErrors, observeCheckpoint, trustedVerifierKey } from "../client.ts";
import { RemoteLedger } from "../ledger-remote.ts";
import { action, emit } from "../output.ts";
import { withLocal } from "./ledger.ts";

/** How long the CLI waits for the server's audit (it replays the whole ledger and queries every service). */
export const AUDIT_CLIENT_TIMEOUT_MS = 10 * 60_000;
/** The id of the check this CLI adds to the server's report. */
export const CLIENT_LEDGER_CHECK = "client.ledger";
const CLIENT_LEDGER_TITLE = "ledger verified by this CLI: every entry hashed here, the tree equal to the checkpoint signed with the pinned key and consistent with the last one seen";
/** Why `--local` skips the live checks. */
export const LOCAL_SKIP_REASON = "--local: no running services here (run `nexus audit` against the API for the live checks)";

interface AuditOpts {
  readonly api?: string;
  readonly verifierKey?: string;
  readonly json?: boolean;
  readonly local?: boolean;
}

/** POST /v1/audit: the server's report, schema-checked (hostile input). */
async function serverReport(api: string): Promise<AuditReport> {
  let res: Response;
  try {
    res = await fetch(`${api}/v1/audit`, { method: "POST", headers: { accept: "application/json" }, signal: AbortSignal.timeout(AUDIT_CLIENT_TIMEOUT_MS) });
  } catch (e) {
    throw clientErrors.make("CLIENT_API_UNREACHABLE", `${api}/v1/audit: ${e instanceof Error ? e.message : String(e)}`);
  }
  const text = await res.text();
  if (text.length > CLIENT_BODY_BYTES_MAX) throw clientErrors.make("CLIENT_BAD_RESPONSE", "the report is too large");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw clientErrors.make("CLIENT_BAD_RESPONSE", `POST /v1/audit: HTTP ${res.status}, not JSON`);
  }
  if (!res.ok) {
    const e = z.object({ error: z.object({ code: z.string().max(100), message: z.string().max(4000) }) }).safeParse(json);
    if (!e.success) throw clientErrors.make("CLIENT_BAD_RESPONSE", `POST /v1/audit: HTTP ${res.status}`);
    throw new NexusError(e.data.error.code, { message: e.data.error.message, http: res.status, exit: res.status >= 500 ? 3 : 1 });
  }
  const r = AuditReportSchema.safeParse(json);
  if (!r.success) throw clientErrors.make("CLIENT_BAD_RESPONSE", `the report is malformed: ${r.error.issues[0]?.path.join(".") ?? ""} ${r.error.issues[0]?.message ?? ""}`);
  return r.data;
}

/** The client's own ledger check: download, hash, compare with the signed checkpoint, bind the report's root. */
async function clientLedgerCheck(api: string, vkey: string, report: AuditReport): Promise<AuditCheck> {
  const problems: string[] = [];
  let checked = 0;
  try {
    const remote = new RemoteLedger(api, vkey);
    const signed = await remote.checkpoint();
    await observeCheckpoint(api, signed.note);
    const v = await remote.verifyAll(signed.checkpoint);
    checked = Number(v.entriesChecked);
    if (!v.ok) problems.push(`${v.firstBadIndex === undefined ? "" : `entry ${v.firstBadIndex}: `}${v.problem ?? "the served ledger does not verify"}`);
    const size = BigInt(report.treeSize);
    if (size > signed.checkpoint.size) {
      problems.push(`the report covers ${size} entries, the signed checkpoint only ${signed.checkpoint.size}`);
    } else if (toHex(await remote.provenRoot(size, signed.checkpoint)) !== report.root) {
      problems.push(`the report's root for tree size ${size} is not the signed tree's`);
    }
  } catch (e) {
    if (isNexusError(e) && (e.code === "CLIENT_API_UNREACHABLE" || e.code === "LEDGER_API_UNREACHABLE")) throw e;
    problems.push(isNexusError(e) ? `${e.code}: ${e.message}` : String(e));
  }
  return { id: CLIENT_LEDGER_CHECK, title: CLIENT_LEDGER_TITLE, ok: problems.length === 0, problems, checked };
}

/** `--local`: the non-live checks on the data directory. */
function localReport(): Promise<AuditReport> {
  return withLocal((ledger, store, vkey) => runAudit({ store, ledger, verifierKey: vkey, live: LOCAL_SKIP_REASON, quiet: true }), { createKey: false });
}

/** The report for people: one line per check, problems indented. */
export function reportText(r: AuditReport): string {
  const lines = [`audit of the ledger at size ${r.treeSize} (root ${r.root.slice(0, 16)}…), ${r.at}: ${r.ok ? "ok" : "VIOLATIONS FOUND"}`];
  for (const c of r.checks) {
    const mark = c.skipped !== undefined ? "skip" : c.ok ? "ok  " : "FAIL";
    const tail = c.skipped !== undefined ? ` (skipped: ${c.skipped})` : ` (${c.checked} checked)`;
    lines.push(`${mark}  ${c.id.padEnd(14)} ${c.title}${tail}`);
    for (const p of c.problems) lines.push(`        - ${p}`);
  }
  return lines.join("\n");
}

async function auditCmd(opts: AuditOpts): Promise<void> {
  let report: AuditReport;
  if (opts.local) {
    if (opts.api !== undefined) throw commonErrors.make("INPUT_INVALID", "--local and --api exclude each other", { field: "local" });
    report = await localReport();
  } else {
    const api = apiBase({ api: opts.api });
    if (opts.verifierKey !== undefined) {
      parseVerifierKey(opts.verifierKey);
      process.env.NEXUS_VERIFIER_KEY = opts.verifierKey; // observeCheckpoint reads the pin from there
    }
    const server = await serverReport(api);
    const client = await clientLedgerCheck(api, await trustedVerifierKey(api), server);
    report = { ...server, ok: server.ok && client.ok, checks: [...server.checks, client] };
  }
  emit(report, opts.json, reportText);
  if (!report.ok) process.exitCode = 1;
}

/** Adds `audit` to the program. */
export function register(program: Command): void {
  program
    .command("audit")
    .description("audit the whole stack: ledger, replay, splits, quotas, gates and the live services against the projection")
    .option("--api <url>", "the API to audit (default $NEXUS_API or http://127.0.0.1:8780)")
    .option("--verifier-key <vkey>", "pin the platform's checkpoint verifier key (else $NEXUS_VERIFIER_KEY, or the one remembered)")
    .option("--local", "audit the data directory $NEXUS_HOME directly (no server; live checks skipped)")
    .option("--json", "print the report as JSON")
    .action(action(auditCmd));
}
