/**
 * The public ledger explorer for auditors and admins: checkpoints, platform totals, the stack
 * audit's latest report, entries, denied attempts with their gates, proofs verified in the page.
 */
import { useEffect, useState } from "preact/hooks";
import { Checks, ErrorBox, GateTable, Section } from "../components.tsx";
import { getPublic } from "../lib/api.ts";
import { fromBase64, toHex } from "../lib/bytes.ts";
import { decodeEntry, failing, GATE_NAMES, type DecodedEntry } from "../lib/ledger.ts";
import { leafHash, verifyConsistency } from "../lib/merkle.ts";
import { openCheckpoint } from "../lib/note.ts";
import { checkLatest, pinnedVerifierKey, verifyServedInclusion, type Check } from "../lib/trust.ts";
import type { StoredIdentity } from "../lib/db.ts";
import type { Checkpoint } from "../lib/note.ts";
import { PlatformTotals, StackAudit } from "./platform.tsx";

/** Entries per page of the explorer. */
const PAGE = 50;

interface EntriesAnswer { readonly entries: { index: string; leafHash: string; entry: string }[]; readonly size: string }

export function Ledger({ me }: { me?: StoredIdentity | undefined }) {
  const [size, setSize] = useState<bigint | undefined>();
  const [cp, setCp] = useState<Checkpoint | undefined>();
  const [start, setStart] = useState<bigint | undefined>();
  const [rows, setRows] = useState<DecodedEntry[]>([]);
  const [deniedOnly, setDeniedOnly] = useState(false);
  const [cpChecks, setCpChecks] = useState<Check[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [cFrom, setCFrom] = useState("1");
  const [cTo, setCTo] = useState("");
  const [cResult, setCResult] = useState<Check[] | undefined>();

  useEffect(() => {
    void checkLatest().then((r) => {
      setCpChecks(r.checks);
      if (r.cp) {
        // Only a checkpoint that verified (signature and consistency) anchors the checks below.
        if (r.checks.every((c) => c.ok)) setCp(r.cp);
        setSize(r.cp.size);
        setCTo(r.cp.size.toString());
        setStart(r.cp.size > BigInt(PAGE) ? r.cp.size - BigInt(PAGE) : 0n);
      }
    }, setError);
  }, []);
  useEffect(() => {
    if (start === undefined || size === undefined || size === 0n) return;
    void getPublic<EntriesAnswer>(`/v1/ledger/entries?from=${start}&limit=${PAGE}`).then(
      (a) => setRows(a.entries.flatMap((e) => decodeEntry(e.entry) ?? []).reverse()),
      setError,
    );
  }, [start, size]);

  const consistency = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const { key } = await pinnedVerifierKey();
      const a = await getPublic<{ note: string }>(`/v1/ledger/checkpoint?size=${cTo}`).catch(() => undefined);
      const p = await getPublic<{ from: string; to: string; fromRoot: string; toRoot: string; proof: string[] }>(`/v1/ledger/proofs/consistency?from=${cFrom}&to=${cTo}`);
      const out: Check[] = [];
      let toRoot = fromBase64(p.toRoot) ?? new Uint8Array();
      if (a) {
        const cp = await openCheckpoint(a.note, key);
        out.push({ label: `Checkpoint ${cTo}`, ok: toHex(cp.root) === toHex(toRoot), detail: "the signed root of the newer tree" });
        toRoot = cp.root;
      } else {
        out.push({ label: `Checkpoint ${cTo}`, ok: true, detail: "no checkpoint stored for that size: the served root is used (unsigned)" });
      }
      const ok = await verifyConsistency(BigInt(cFrom), BigInt(cTo), fromBase64(p.fromRoot) ?? new Uint8Array(), toRoot, p.proof.map((h) => fromBase64(h) ?? new Uint8Array()));
      out.push({ label: "Consistency proof", ok, detail: ok ? `the tree of ${cTo} extends the tree of ${cFrom} (root ${p.fromRoot})` : "the proof does not verify" });
      setCResult(out);
    } catch (err) {
      setCResult([{ label: "Consistency proof", ok: false, detail: err instanceof Error ? err.message : String(err) }]);
    }
  };

  const shown = deniedOnly ? rows.filter((r) => r.outcome === "denied") : rows;
  return (
    <>
      <h1 tabIndex={-1}>Ledger explorer</h1>
      <p>The public, append-only log of every command, applied or denied. Anyone can read it; this page verifies the checkpoint and every proof itself.</p>
      <ErrorBox error={error} />
      <Section title="Latest checkpoint" id="checkpoint">
        {cpChecks ? <Checks checks={cpChecks} testid="explorer-checkpoint" /> : <p>Loading…</p>}
      </Section>
      <PlatformTotals cp={cp} />
      <StackAudit me={me} cp={cp} />
      <Section title="Entries" id="entries">
        <div class="inline">
          <input type="checkbox" id="denied-only" checked={deniedOnly} onChange={(e) => setDeniedOnly(e.currentTarget.checked)} />
          <label for="denied-only">Denied attempts only</label>
          <button type="button" disabled={start === undefined || start === 0n} onClick={() => setStart((s) => (s !== undefined && s > BigInt(PAGE) ? s - BigInt(PAGE) : 0n))}>Older</button>
          <button type="button" disabled={start === undefined || size === undefined || start + BigInt(PAGE) >= size} onClick={() => setStart((s) => (s ?? 0n) + BigInt(PAGE))}>Newer</button>
          <span>{size === undefined ? "" : `tree size ${size}`}</span>
        </div>
        <table data-testid="entries">
          <caption class="sr-only">Ledger entries, newest first</caption>
          <thead><tr><th scope="col">Entry</th><th scope="col">Time</th><th scope="col">Command</th><th scope="col">IMVU</th><th scope="col">Actor</th><th scope="col">Outcome</th></tr></thead>
          <tbody>
            {shown.map((r) => (
              <tr key={r.index} class={r.outcome === "denied" ? "fail" : ""} data-outcome={r.outcome}>
                <td><a href={`#/ledger/${r.index}`}>{r.index}</a></td>
                <td>{r.time}</td>
                <td>{r.type}</td>
                <td>{r.imvu ?? ""}</td>
                <td><code title={r.actor}>{r.actor.slice(0, 14)}…</code></td>
                <td>{r.outcome === "denied" ? `✗ denied by ${failing(r.gates).map((g) => `gate ${g.gate} (${GATE_NAMES[g.gate] ?? "?"})`).join(", ")}` : "✓ applied"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="Check a consistency proof" id="consistency">
        <form onSubmit={(e) => void consistency(e)} class="inline">
          <label for="c-from">From size</label>
          <input id="c-from" inputMode="numeric" value={cFrom} onInput={(e) => setCFrom(e.currentTarget.value)} />
          <label for="c-to">To size</label>
          <input id="c-to" inputMode="numeric" value={cTo} onInput={(e) => setCTo(e.currentTarget.value)} />
          <button type="submit">Verify</button>
        </form>
        {cResult && <Checks checks={cResult} testid="consistency-checks" />}
      </Section>
    </>
  );
}

export function LedgerEntry({ index }: { index: string }) {
  const [entry, setEntry] = useState<DecodedEntry | undefined>();
  const [served, setServed] = useState("");
  const [checks, setChecks] = useState<Check[] | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    setEntry(undefined);
    setChecks(undefined);
    void (async () => {
      try {
        const e = await getPublic<{ leafHash: string; entry: string }>(`/v1/ledger/entries/${encodeURIComponent(index)}`);
        setServed(e.leafHash);
        setEntry(decodeEntry(e.entry));
      } catch (err) {
        setError(err);
      }
    })();
  }, [index]);
  const prove = async (): Promise<void> => {
    if (!entry) return;
    const { checks: out, cp } = await checkLatest();
    const leaf = await leafHash(entry.bytes);
    out.push({ label: "Leaf hash", ok: toHex(leaf) === toHex(fromBase64(served) ?? new Uint8Array()), detail: `SHA-256(0x00 || entry) computed here: ${toHex(leaf).slice(0, 16)}…` });
    if (cp) {
      const p = await getPublic<{ proof: string[] }>(`/v1/ledger/proofs/inclusion?index=${entry.index}&size=${cp.size}`);
      const ok = await verifyServedInclusion(entry.bytes, BigInt(entry.index), p.proof, cp);
      out.push({ label: "Inclusion proof", ok, detail: ok ? `entry ${entry.index} is in the signed tree of size ${cp.size}` : `entry ${entry.index} is NOT in the signed tree of size ${cp.size}` });
    }
    setChecks(out);
  };
  return (
    <>
      <h1 tabIndex={-1}>Ledger entry {index}</h1>
      <ErrorBox error={error} />
      {entry && (
        <>
          <dl class="facts">
            <dt>Time</dt><dd>{entry.time}</dd>
            <dt>Command</dt><dd><code>{entry.type}</code></dd>
            <dt>IMVU</dt><dd>{entry.imvu ?? "—"}</dd>
            <dt>Actor</dt><dd><code>{entry.actor}</code> (key <code>{entry.keyid}</code>)</dd>
            <dt>Outcome</dt><dd data-testid="entry-outcome">{entry.outcome}</dd>
          </dl>
          {entry.gates.length > 0 && <GateTable gates={entry.gates} caption="The gates' verdicts" />}
          <button type="button" onClick={() => void prove().catch(setError)}>Prove this entry is in the signed log</button>
          {checks && <Checks checks={checks} testid="entry-checks" />}
          <details>
            <summary>Command body</summary>
            <pre>{JSON.stringify(entry.body, null, 2)}</pre>
          </details>
        </>
      )}
      <p><a href="#/ledger">← All entries</a></p>
    </>
  );
}
