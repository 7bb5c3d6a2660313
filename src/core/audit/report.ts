/**
 * The stack audit's report (docs/operations.md, "The stack audit"): one shape for the API
 * (`POST /v1/audit`, `GET /v1/audit/latest`), the CLI (`nexus audit --json`) and the web console.
 * A check names what it covered (`checked`), and each violation as one line a person can act on;
 * a check that could not run here says why in `skipped` and counts as ok.
 */
import { z } from "zod";

/** The report format's version. */
export const AUDIT_REPORT_VERSION = 1;
/** Problem lines kept per check; the rest are summed up in one last line. */
export const PROBLEMS_PER_CHECK_MAX = 100;
/** Longest problem line kept. */
export const PROBLEM_CHARS_MAX = 500;

/** The check ids, in report order. */
export const AUDIT_CHECK_IDS = ["ledger", "replay", "splits", "quotas", "gates", "live.dns", "live.gateway", "live.compute"] as const;

/** One check of the report. */
export const AuditCheckSchema = z
  .object({
    id: z.string().min(1).max(64),
    title: z.string().max(200),
    ok: z.boolean(),
    problems: z.array(z.string().max(PROBLEM_CHARS_MAX)).max(PROBLEMS_PER_CHECK_MAX + 1),
    checked: z.number().int().min(0),
    /** Why the check did not run (then `ok` is true and `problems` empty). */
    skipped: z.string().max(500).optional(),
  })
  .strict();

/** The whole report. */
export const AuditReportSchema = z
  .object({
    version: z.literal(AUDIT_REPORT_VERSION),
    at: z.iso.datetime(),
    /** The ledger size the audit covered (decimal). */
    treeSize: z.string().regex(/^(0|[1-9][0-9]{0,19})$/),
    /** The Merkle root (hex) of the tree of `treeSize`. */
    root: z.string().regex(/^[0-9a-f]{64}$/),
    ok: z.boolean(),
    checks: z.array(AuditCheckSchema).max(32),
  })
  .strict();

/** One check's result. */
export type AuditCheck = z.infer<typeof AuditCheckSchema>;
/** An audit report. */
export type AuditReport = z.infer<typeof AuditReportSchema>;

/** Collects the problems of one check, bounded. */
export class ProblemList {
  private readonly lines: string[] = [];
  private dropped = 0;

  /** Adds one problem line. */
  add(line: string): void {
    if (this.lines.length < PROBLEMS_PER_CHECK_MAX) this.lines.push(line.length > PROBLEM_CHARS_MAX ? `${line.slice(0, PROBLEM_CHARS_MAX - 1)}…` : line);
    else this.dropped += 1;
  }

  /** How many were added. */
  get count(): number {
    return this.lines.length + this.dropped;
  }

  /** The lines, with a last line counting those left out. */
  list(): string[] {
    return this.dropped === 0 ? [...this.lines] : [...this.lines, `… and ${this.dropped} more`];
  }
}

/** A finished check from its problems. */
export function checkOf(id: string, title: string, problems: ProblemList, checked: number): AuditCheck {
  return { id, title, ok: problems.count === 0, problems: problems.list(), checked };
}

/** A check that did not run, and why. */
export function skippedCheck(id: string, title: string, reason: string): AuditCheck {
  return { id, title, ok: true, problems: [], checked: 0, skipped: reason };
}

/** The report of `checks` over the tree of `treeSize` with `root`. */
export function reportOf(checks: readonly AuditCheck[], treeSize: bigint, root: string, at: Date = new Date()): AuditReport {
  return { version: AUDIT_REPORT_VERSION, at: at.toISOString(), treeSize: treeSize.toString(), root, ok: checks.every((c) => c.ok), checks: [...checks] };
}
