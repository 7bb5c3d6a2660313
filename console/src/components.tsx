/** Shared pieces of the console: results of commands, gate tables, checks, charts. */
import { useEffect, useRef, useState } from "preact/hooks";
import type { ComponentChildren } from "preact";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Receipt } from "./lib/db.ts";
import type { Submitted } from "./lib/api.ts";
import { GATE_NAMES, type GateVerdict } from "./lib/ledger.ts";
import { verifyReceipt, type Check } from "./lib/trust.ts";

/** A message of an error, for people. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return "code" in e && typeof e.code === "string" ? `${e.code}: ${e.message}` : e.message;
  return String(e);
}

/** A red error box (announced to screen readers). */
export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  return (
    <p class="error" role="alert">
      {errorText(error)}
    </p>
  );
}

/** The gates' verdicts as a table; failing gates first and marked. */
export function GateTable({ gates, caption }: { gates: readonly GateVerdict[]; caption: string }) {
  const sorted = [...gates].sort((a, b) => Number(a.pass) - Number(b.pass) || a.gate - b.gate);
  return (
    <table class="gates">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Gate</th>
          <th scope="col">Verdict</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((g) => (
          <tr key={g.gate} class={g.pass ? "pass" : "fail"} data-gate={g.gate} data-pass={String(g.pass)}>
            <th scope="row">
              {g.gate} · {GATE_NAMES[g.gate] ?? "?"}
            </th>
            <td>{g.pass ? "✓ passed" : "✗ REFUSED"}</td>
            <td>{g.reason}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A list of checks, each green or red, with an overall verdict. */
export function Checks({ checks, testid }: { checks: readonly Check[]; testid?: string }) {
  const ok = checks.length > 0 && checks.every((c) => c.ok);
  return (
    <section class={`checks ${ok ? "ok" : "bad"}`} data-testid={testid} data-verdict={ok ? "verified" : "failed"} aria-live="polite">
      <p class="verdict">{ok ? "✓ Verified in this page" : "✗ VERIFICATION FAILED — do not trust this answer"}</p>
      <ul>
        {checks.map((c, i) => (
          <li key={i} class={c.ok ? "ok" : "bad"} data-ok={String(c.ok)}>
            <strong>{c.ok ? "✓" : "✗"} {c.label}</strong>: {c.detail}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A button that verifies a receipt in the page and shows every check. */
export function VerifyReceipt({ receipt, label = "Verify this receipt" }: { receipt: Receipt; label?: string }) {
  const [checks, setChecks] = useState<Check[] | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      setChecks(await verifyReceipt(receipt));
    } catch (e) {
      setError(e);
      setChecks([{ label: "Verification", ok: false, detail: errorText(e) }]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="verify">
      <button type="button" onClick={() => void run()} disabled={busy}>
        {busy ? "Verifying…" : label}
      </button>
      {error === undefined ? null : <span class="sr-only">{errorText(error)}</span>}
      {checks && <Checks checks={checks} testid={`checks-${receipt.index}`} />}
    </div>
  );
}

/** What came back from a command: applied, denied (with the refusing gates) or rejected. */
export function CommandResult({ result, what }: { result: Submitted | undefined; what: string }) {
  if (result === undefined) return null;
  if (result.kind === "rejected") {
    return (
      <div class="result rejected" role="alert" data-testid="result" data-outcome="rejected">
        <p>
          <strong>{what}: rejected before the gates</strong> ({result.code}, HTTP {result.status}): {result.message}. Nothing was recorded.
        </p>
      </div>
    );
  }
  const r = result.receipt;
  const denied = r.outcome === "denied";
  const refusing = r.gates.filter((g) => !g.pass);
  return (
    <div class={`result ${denied ? "denied" : "applied"}`} role={denied ? "alert" : "status"} data-testid="result" data-outcome={r.outcome} data-index={r.index}>
      {denied ? (
        <p>
          <strong>{what}: DENIED</strong> and recorded as ledger entry <a href={`#/ledger/${r.index}`}>{r.index}</a>. Refused by{" "}
          {refusing.map((g) => `gate ${g.gate} (${GATE_NAMES[g.gate] ?? "?"}): ${g.reason}`).join("; ")}
        </p>
      ) : (
        <p>
          <strong>{what}: applied</strong> as ledger entry <a href={`#/ledger/${r.index}`}>{r.index}</a> (tree size {r.treeSize}).
        </p>
      )}
      <GateTable gates={r.gates} caption={`Gates of entry ${r.index}`} />
      <VerifyReceipt receipt={r} />
    </div>
  );
}

/** A uPlot line chart (time on x), with a text summary for screen readers. */
export function LineChart({ title, xs, series, summary }: { title: string; xs: readonly number[]; series: readonly { label: string; values: readonly number[]; stroke: string }[]; summary: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el === null || xs.length === 0) return undefined;
    const plot = new uPlot(
      {
        title,
        width: Math.max(280, Math.min(720, el.clientWidth || 600)),
        height: 220,
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2 }))],
        axes: [{}, { size: 70 }],
      },
      [xs as number[], ...series.map((s) => s.values as number[])],
      el,
    );
    return () => plot.destroy();
  }, [title, xs, series]);
  return (
    <figure class="chart">
      <div ref={ref} role="img" aria-label={`${title}: ${summary}`} />
      <figcaption>{summary}</figcaption>
    </figure>
  );
}

/** A titled section. */
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id ?? undefined}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}
