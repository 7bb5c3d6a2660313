/** Revenue statements of an IMVU: the split drawn as charts, every entry linked to its ledger entry and proven in the page. */
import { useState } from "preact/hooks";
import { Checks, ErrorBox, LineChart, Section } from "../components.tsx";
import { getAs } from "../lib/api.ts";
import { fromBase64 } from "../lib/bytes.ts";
import type { StoredIdentity } from "../lib/db.ts";
import { decodeEntry } from "../lib/ledger.ts";
import { verifyEntriesIn, type Check } from "../lib/trust.ts";

interface Entry {
  readonly kind: string; readonly eventId: string; readonly index: string; readonly time: string; readonly source: string;
  readonly currency: string; readonly amount: string; readonly creator?: string; readonly platform?: string; readonly class?: string;
  readonly creatorAfter?: string; readonly grossAfter?: string;
}
interface Totals { readonly currency: string; readonly gross: string; readonly refunds: string; readonly creator: string; readonly platform: string; readonly payouts: string; readonly closingBalance: string }
interface StatementAnswer {
  readonly statement: { readonly unit: string; readonly period: { from: string; to: string }; readonly entries: Entry[]; readonly totals: Totals[] };
  readonly proofs: { index: string; leafHash: string; entry: string; inclusionProof: string[] }[];
  readonly checkpoint: string;
  readonly treeSize: string;
}

const today = (): string => new Date().toISOString().slice(0, 10);
const monthStart = (): string => `${today().slice(0, 8)}01`;

/** Minor-unit digits of an ISO 4217 currency (2 when the browser does not know it). */
function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Minor units as a decimal (display only: the figures stay integer strings, never floats). */
export function money(minor: string, currency: string): string {
  const digits = minorDigits(currency);
  const neg = minor.startsWith("-");
  const d = (neg ? minor.slice(1) : minor).padStart(digits + 1, "0");
  const whole = digits === 0 ? d : `${d.slice(0, -digits)}.${d.slice(-digits)}`;
  return `${neg ? "-" : ""}${whole} ${currency}`;
}

/** Creator percent per split class (constitution v1). */
const CREATOR_PERCENT: Readonly<Record<string, bigint>> = { imvu: 55n, "mini-platform": 80n };

/** ceil(x / 100) for a bigint of either sign (bigint division truncates toward zero). */
function ceilPercent(x: bigint): bigint {
  return x >= 0n ? (x + 99n) / 100n : x / 100n;
}

/** The split of one currency as a labelled horizontal bar (SVG, no script). */
function SplitBar({ t }: { t: Totals }) {
  const c = Number(t.creator);
  const p = Number(t.platform);
  const total = c + p;
  const cw = total > 0 ? (c / total) * 100 : 0;
  const label = `${t.currency}: creator ${money(t.creator, t.currency)} (${cw.toFixed(2)}%), platform ${money(t.platform, t.currency)} (${(100 - cw).toFixed(2)}%)`;
  return (
    <figure class="split" data-testid={`split-${t.currency}`}>
      <svg viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label={label} width="100%" height="28">
        <rect x="0" y="0" width={cw} height="8" fill="#0b5cad" />
        <rect x={cw} y="0" width={100 - cw} height="8" fill="#7a4b00" />
      </svg>
      <figcaption><span class="swatch creator" aria-hidden="true" /> {label.replace(`${t.currency}: `, "")}<span class="swatch platform" aria-hidden="true" /></figcaption>
    </figure>
  );
}

export function Revenue({ me, name }: { me: StoredIdentity; name: string }) {
  const [from, setFrom] = useState(monthStart());
  const [to, setTo] = useState(today());
  const [answer, setAnswer] = useState<StatementAnswer | undefined>();
  const [error, setError] = useState<unknown>();
  const [checks, setChecks] = useState<Check[] | undefined>();
  const load = async (e?: Event): Promise<void> => {
    e?.preventDefault();
    setError(undefined);
    setChecks(undefined);
    try {
      setAnswer(await getAs<StatementAnswer>(me, `/v1/imvus/${encodeURIComponent(name)}/revenue/statement?from=${from}&to=${to}`));
    } catch (err) {
      setError(err);
    }
  };
  const verifyAll = async (): Promise<void> => {
    if (!answer) return;
    const out: Check[] = await verifyEntriesIn(
      answer.proofs.map((p) => ({ entry: fromBase64(p.entry) ?? new Uint8Array(), index: BigInt(p.index), proof: p.inclusionProof })),
      answer.checkpoint,
    );
    for (const e of answer.statement.entries) {
      if (e.creator === undefined || e.platform === undefined) continue;
      const adds = BigInt(e.creator) + BigInt(e.platform) === BigInt(e.amount);
      const pct = CREATOR_PERCENT[e.class ?? ""];
      // Cumulative rounding (ARCHITECTURE.md, Money): after the entry, C = ceil(G × creator% / 100).
      const cumulative = pct !== undefined && e.grossAfter !== undefined && e.creatorAfter !== undefined && ceilPercent(BigInt(e.grossAfter) * pct) === BigInt(e.creatorAfter);
      const ok = adds && cumulative;
      out.push({
        label: `Split of entry ${e.index}`,
        ok,
        detail: ok
          ? `creator + platform = amount, and the creator's cumulative share is ceil(${e.grossAfter ?? "?"} × ${pct ?? "?"}%) = ${e.creatorAfter ?? "?"}, recomputed here`
          : adds ? "the creator's cumulative share is not the constitution's split of the cumulative gross" : "the parts do not add up to the amount",
      });
    }
    for (const e of answer.statement.entries) {
      const p = answer.proofs.find((x) => x.index === e.index);
      const d = p === undefined ? undefined : decodeEntry(p.entry);
      const body = (d?.body ?? {}) as { amount?: string; currency?: string; eventId?: string };
      const abs = e.amount.startsWith("-") ? e.amount.slice(1) : e.amount;
      const ok = d !== undefined && d.imvu === name && d.outcome === "applied" && body.eventId === e.eventId && body.currency === e.currency && body.amount === abs;
      out.push({ label: `Ledger entry ${e.index}`, ok, detail: ok ? `holds the signed ${d.type} of ${e.eventId} for ${abs} ${e.currency}` : "the statement line does not match the signed command in its ledger entry" });
    }
    if (out.length === 0) out.push({ label: "Statement", ok: true, detail: "no entries to prove in this period" });
    setChecks(out);
  };
  const s = answer?.statement;
  const revenueEntries = s?.entries.filter((e) => e.creatorAfter !== undefined && e.grossAfter !== undefined) ?? [];
  return (
    <>
      <h1 tabIndex={-1}>Revenue of {name}</h1>
      <p>Revenue enters only from platform revenue sources and is split in the same transaction: 55/45 for an IMVU, 80/20 for a mini-platform, with cumulative rounding in integer minor units.</p>
      <ErrorBox error={error} />
      <form onSubmit={(e) => void load(e)} class="inline">
        <label for="rev-from">From</label>
        <input id="rev-from" type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required />
        <label for="rev-to">To</label>
        <input id="rev-to" type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} required />
        <button type="submit">Show the statement</button>
      </form>
      {s && (
        <>
          <Section title="The split" id="split">
            {s.totals.length === 0 ? <p>No revenue in this period.</p> : s.totals.map((t) => <SplitBar key={t.currency} t={t} />)}
            {revenueEntries.length > 1 && (
              <LineChart
                title="Cumulative gross and creator share (minor units)"
                xs={revenueEntries.map((e) => Date.parse(e.time) / 1000)}
                series={[
                  { label: "gross", values: revenueEntries.map((e) => Number(e.grossAfter)), stroke: "#444" },
                  { label: "creator", values: revenueEntries.map((e) => Number(e.creatorAfter)), stroke: "#0b5cad" },
                ]}
                summary={`${revenueEntries.length} entries`}
              />
            )}
          </Section>
          <Section title="Entries" id="entries">
            <button type="button" onClick={() => void verifyAll()}>Verify every entry in the page</button>
            {checks && <Checks checks={checks} testid="statement-checks" />}
            <table data-testid="statement">
              <caption class="sr-only">Statement entries</caption>
              <thead><tr><th scope="col">Entry</th><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Amount</th><th scope="col">Creator</th><th scope="col">Platform</th><th scope="col">Source</th></tr></thead>
              <tbody>
                {s.entries.map((e) => (
                  <tr key={e.index}>
                    <td><a href={`#/ledger/${e.index}`}>{e.index}</a></td>
                    <td>{e.time}</td>
                    <td>{e.kind}</td>
                    <td>{money(e.amount, e.currency)}</td>
                    <td>{e.creator === undefined ? "" : money(e.creator, e.currency)}</td>
                    <td>{e.platform === undefined ? "" : money(e.platform, e.currency)}</td>
                    <td>{e.source}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        </>
      )}
    </>
  );
}
