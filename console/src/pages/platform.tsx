/**
 * The explorer's auditor and admin view: platform totals (GET /v1/platform/totals, aggregates of
 * the projection and the public ledger) and the stack audit's latest report (GET
 * /v1/audit/latest, 404 before any audit ran), with a "run audit" (POST /v1/audit, then the
 * report is read again). The page checks what it can itself: the totals' tree size against the
 * signed checkpoint, and the audited tree (size, root) against the signed log by a consistency
 * proof verified here, so a report about some other log shows red.
 */
import { useEffect, useState } from "preact/hooks";
import { Checks, ErrorBox, Section } from "../components.tsx";
import { getPublic, getPublicOr404, postMaybeAs } from "../lib/api.ts";
import { fromBase64, fromHex, toHex } from "../lib/bytes.ts";
import type { StoredIdentity } from "../lib/db.ts";
import { verifyConsistency } from "../lib/merkle.ts";
import type { Checkpoint } from "../lib/note.ts";
import type { Check } from "../lib/trust.ts";
import { money } from "./revenue.tsx";

/** Time limit of one audit run (POST /v1/audit). */
const AUDIT_RUN_TIMEOUT_MS = 15 * 60_000;

interface RevenueTotal { readonly gross: string; readonly creator: string; readonly platform: string; readonly paidOut: string }
/** GET /v1/platform/totals (src/api/routes/console.ts PlatformTotals). */
export interface Totals {
  readonly version: number;
  readonly at: string;
  readonly treeSize: string;
  readonly entries: { readonly counted: string; readonly applied: string; readonly denied: string; readonly other: string };
  readonly imvus: { readonly total: number; readonly byStatus: Record<string, number>; readonly byClass: Record<string, number>; readonly exitRequested: number; readonly departed: number };
  readonly identities: { readonly total: number; readonly byKind: Record<string, number> };
  readonly resources: { readonly domains: number; readonly dnsRecords: number; readonly mailboxes: number; readonly workloads: number; readonly routes: number };
  readonly revenue: Record<string, RevenueTotal & { readonly byClass: Record<string, RevenueTotal> }>;
}

/** One check of the stack audit. */
export interface AuditCheck {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly checked: number;
  readonly skipped?: string;
}
/** GET /v1/audit/latest (`nexus audit`'s report). */
export interface AuditReport {
  readonly version: number;
  readonly at: string;
  readonly treeSize: string | number;
  readonly root: string;
  readonly ok: boolean;
  readonly checks: readonly AuditCheck[];
}

const CLASS_LABEL: Readonly<Record<string, string>> = { imvu: "IMVU (55/45)", "mini-platform": "mini-platform (80/20)" };

/** Platform totals, with the tree size checked against the signed checkpoint. */
export function PlatformTotals({ cp }: { cp: Checkpoint | undefined }) {
  const [t, setT] = useState<Totals | undefined>();
  const [error, setError] = useState<unknown>();
  const load = (): void => {
    setError(undefined);
    void getPublic<Totals>("/v1/platform/totals").then(setT, setError);
  };
  useEffect(load, []);
  const n = (s: string): string => BigInt(s).toLocaleString("en");
  const behind = t !== undefined && BigInt(t.entries.counted) < BigInt(t.treeSize);
  const sizeCheck: Check[] =
    t === undefined || cp === undefined
      ? []
      : [
          BigInt(t.treeSize) >= cp.size
            ? { label: "Tree size", ok: true, detail: `the totals were read at size ${t.treeSize}, at or after the signed checkpoint of size ${cp.size}` }
            : { label: "Tree size", ok: false, detail: `the totals claim size ${t.treeSize}, older than the signed checkpoint of size ${cp.size}: a stale or rolled-back answer` },
        ];
  return (
    <Section title="Platform totals" id="totals">
      <p class="hint">
        Counted by the server from its projection and the public ledger (aggregates only, nothing private of any IMVU). The page checks the tree size against
        the signed checkpoint; the figures themselves are the server's: <code>nexus ledger replay --verify</code> re-derives them from the log.
      </p>
      <ErrorBox error={error} />
      {t === undefined ? <p>Loading…</p> : (
        <div data-testid="totals">
          <div class="totals-grid">
          <table>
            <caption>Ledger</caption>
            <tbody>
              <tr><th scope="row">Entries (tree size)</th><td data-testid="totals-size">{n(t.treeSize)}</td></tr>
              <tr><th scope="row">Applied</th><td data-testid="totals-applied">{n(t.entries.applied)}</td></tr>
              <tr><th scope="row">Denied by a gate</th><td data-testid="totals-denied">{n(t.entries.denied)}</td></tr>
              {t.entries.other !== "0" && <tr><th scope="row">Other (not commands)</th><td>{n(t.entries.other)}</td></tr>}
            </tbody>
          </table>
          <table>
            <caption>IMVUs</caption>
            <tbody>
              <tr><th scope="row">All</th><td data-testid="totals-imvus">{t.imvus.total}</td></tr>
              {Object.entries(t.imvus.byStatus).map(([k, v]) => <tr key={k}><th scope="row">Status {k}</th><td>{v}</td></tr>)}
              {Object.entries(t.imvus.byClass).map(([k, v]) => <tr key={k}><th scope="row">Class {CLASS_LABEL[k] ?? k}</th><td>{v}</td></tr>)}
              <tr><th scope="row">Exit requested</th><td>{t.imvus.exitRequested}</td></tr>
              <tr><th scope="row">Departed</th><td>{t.imvus.departed}</td></tr>
            </tbody>
          </table>
          <table>
            <caption>Identities and resources</caption>
            <tbody>
              <tr><th scope="row">Identities</th><td>{t.identities.total} ({Object.entries(t.identities.byKind).map(([k, v]) => `${v} ${k}`).join(", ")})</td></tr>
              <tr><th scope="row">Domains bound</th><td>{t.resources.domains}</td></tr>
              <tr><th scope="row">DNS record sets</th><td>{t.resources.dnsRecords}</td></tr>
              <tr><th scope="row">Mailboxes</th><td>{t.resources.mailboxes}</td></tr>
              <tr><th scope="row">Workloads</th><td>{t.resources.workloads}</td></tr>
              <tr><th scope="row">Routes</th><td>{t.resources.routes}</td></tr>
            </tbody>
          </table>
          </div>
          {behind && <p class="note">Counted {n(t.entries.counted)} of {n(t.treeSize)} entries so far; reload to count on.</p>}
          {Object.keys(t.revenue).length === 0 ? <p>No revenue recorded yet.</p> : (
            <table data-testid="totals-revenue">
              <caption>Revenue per currency</caption>
              <thead><tr><th scope="col">Currency · class</th><th scope="col">Gross</th><th scope="col">Creators' part</th><th scope="col">Platform's part</th><th scope="col">Paid out</th></tr></thead>
              <tbody>
                {Object.entries(t.revenue).flatMap(([cur, r]) => [
                  <tr key={cur} data-currency={cur}><th scope="row">{cur} (all)</th><td>{money(r.gross, cur)}</td><td>{money(r.creator, cur)}</td><td>{money(r.platform, cur)}</td><td>{money(r.paidOut, cur)}</td></tr>,
                  ...Object.entries(r.byClass).map(([k, c]) => (
                    <tr key={`${cur} ${k}`}><th scope="row">{cur} · {CLASS_LABEL[k] ?? k}</th><td>{money(c.gross, cur)}</td><td>{money(c.creator, cur)}</td><td>{money(c.platform, cur)}</td><td>{money(c.paidOut, cur)}</td></tr>
                  )),
                ])}
              </tbody>
            </table>
          )}
          {sizeCheck.length > 0 && <Checks checks={sizeCheck} testid="totals-checks" />}
          <p class="hint">Read at {t.at}.</p>
        </div>
      )}
      <button type="button" onClick={load}>Reload the totals</button>
    </Section>
  );
}

/** A Merkle root as an audit report may write it: base64 or hex of 32 bytes. */
function rootBytes(s: string): Uint8Array | undefined {
  const b = /^[0-9a-fA-F]{64}$/.test(s) ? fromHex(s) : fromBase64(s);
  return b?.length === 32 ? b : undefined;
}

/** Checks the audited tree (size, root) against the signed checkpoint, with a consistency proof verified here. */
async function auditedTreeCheck(r: AuditReport, cp: Checkpoint): Promise<Check> {
  const label = "Audited tree";
  const size = BigInt(r.treeSize);
  const root = rootBytes(r.root);
  if (root === undefined) return { label, ok: false, detail: `the report's root ${JSON.stringify(r.root)} is not a 32-byte hash` };
  if (size > cp.size) return { label, ok: false, detail: `the report audited size ${size}, beyond the signed checkpoint of size ${cp.size}` };
  if (size === cp.size) {
    const same = toHex(root) === toHex(cp.root);
    return { label, ok: same, detail: same ? `the audited tree is the signed checkpoint (size ${size})` : `the audited root differs from the signed root of size ${size}: a report about another log` };
  }
  if (size === 0n) return { label, ok: false, detail: "the report audited an empty tree" };
  const p = await getPublic<{ fromRoot: string; proof: string[] }>(`/v1/ledger/proofs/consistency?from=${size}&to=${cp.size}`);
  const ok = await verifyConsistency(size, cp.size, root, cp.root, p.proof.map((h) => fromBase64(h) ?? new Uint8Array()));
  return {
    label,
    ok,
    detail: ok ? `the audited tree (size ${size}) is a prefix of the signed checkpoint of size ${cp.size} (consistency proof verified here)` : `the audited root of size ${size} is NOT a prefix of the signed log of size ${cp.size}`,
  };
}

/** The stack audit's latest report, and a button to run one. */
export function StackAudit({ me, cp }: { me: StoredIdentity | undefined; cp: Checkpoint | undefined }) {
  const [report, setReport] = useState<AuditReport | null | undefined>();
  const [tree, setTree] = useState<Check | undefined>();
  const [error, setError] = useState<unknown>();
  const [running, setRunning] = useState(false);
  const load = async (): Promise<void> => {
    setError(undefined);
    setTree(undefined);
    try {
      const r = await getPublicOr404<AuditReport>("/v1/audit/latest");
      setReport(r ?? null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => void load(), []);
  useEffect(() => {
    if (!report || cp === undefined) return;
    void auditedTreeCheck(report, cp).then(setTree, (e: unknown) => setTree({ label: "Audited tree", ok: false, detail: e instanceof Error ? e.message : String(e) }));
  }, [report, cp]);
  const run = async (): Promise<void> => {
    setRunning(true);
    setError(undefined);
    try {
      await postMaybeAs(me, "/v1/audit", {}, AUDIT_RUN_TIMEOUT_MS);
      await load();
    } catch (e) {
      setError(e);
    } finally {
      setRunning(false);
    }
  };
  const failed = report ? report.checks.filter((c) => !c.ok && c.skipped === undefined).length : 0;
  return (
    <Section title="Stack audit" id="audit">
      <p class="hint">
        The latest report of <code>nexus audit</code>: each check of the running stack against the ledger, green when it found no problem, grey when it could not
        run here. Anyone may run one (one at a time; a run already going is waited for), and the report is read again when it ends. The audited tree is
        checked against the signed checkpoint in this page.
      </p>
      <ErrorBox error={error} />
      {report === undefined && error === undefined && <p>Loading…</p>}
      {report === null && <p data-testid="audit-none">No audit yet: nobody has run <code>nexus audit</code> (or the button below) on this platform.</p>}
      {report && (
        <div data-testid="audit-report" data-ok={String(report.ok)} data-at={report.at}>
          <p class={report.ok ? "verdict-ok" : "verdict-bad"} role="status">
            {report.ok ? "✓ The last audit found no problem" : `✗ The last audit FAILED: ${failed} check${failed === 1 ? "" : "s"} found problems`} · {report.at} · tree size{" "}
            {String(report.treeSize)}, root <code>{report.root}</code>
          </p>
          <table>
            <caption class="sr-only">Checks of the last audit</caption>
            <thead><tr><th scope="col">Check</th><th scope="col">Verdict</th><th scope="col">Checked</th><th scope="col">Problems</th></tr></thead>
            <tbody>
              {report.checks.map((c) => (
                <tr key={c.id} class={c.ok ? "pass" : c.skipped === undefined ? "fail" : "skip"} data-check={c.id} data-ok={String(c.ok)}>
                  <th scope="row">{c.title} <span class="hint">({c.id})</span></th>
                  <td>{c.skipped !== undefined ? `– skipped: ${c.skipped}` : c.ok ? "✓ ok" : "✗ FAILED"}</td>
                  <td>{c.checked}</td>
                  <td>{c.problems.length === 0 ? "none" : <ul>{c.problems.map((p, i) => <li key={i}>{p}</li>)}</ul>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {tree && <Checks checks={[tree]} testid="audit-tree" />}
        </div>
      )}
      <button type="button" disabled={running} onClick={() => void run()}>{running ? "Running the audit…" : "Run an audit now"}</button>
    </Section>
  );
}
