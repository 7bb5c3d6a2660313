/** Trust: the receipts of the creator's commands, the last checkpoint seen, and verification in the page. */
import { useEffect, useState } from "preact/hooks";
import { Checks, ErrorBox, Section, VerifyReceipt, errorText } from "../components.tsx";
import { listReceipts, type SeenCheckpoint, type StoredIdentity, type StoredReceipt } from "../lib/db.ts";
import { checkLatest, lastSeen, pinVerifierKey, pinnedVerifierKey, verifyReceipt, type Check } from "../lib/trust.ts";

export function Trust({ me }: { me: StoredIdentity | undefined }) {
  const [receipts, setReceipts] = useState<StoredReceipt[]>([]);
  const [seen, setSeen] = useState<SeenCheckpoint | undefined>();
  const [vkey, setVkey] = useState("");
  const [latest, setLatest] = useState<Check[] | undefined>();
  const [all, setAll] = useState<Check[] | undefined>();
  const [error, setError] = useState<unknown>();
  const refresh = async (): Promise<void> => {
    setSeen(await lastSeen());
    if (me) setReceipts(await listReceipts(me.id));
    try {
      setVkey((await pinnedVerifierKey()).key.text);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => void refresh(), [me?.id]);
  const verifyAll = async (): Promise<void> => {
    const out: Check[] = [];
    for (const r of receipts) {
      try {
        const cs = await verifyReceipt(r.receipt);
        const bad = cs.filter((c) => !c.ok);
        out.push({ label: `Receipt ${r.receipt.index} (${r.type})`, ok: bad.length === 0, detail: bad.length === 0 ? "every check passed" : bad.map((c) => `${c.label}: ${c.detail}`).join("; ") });
      } catch (e) {
        out.push({ label: `Receipt ${r.receipt.index}`, ok: false, detail: errorText(e) });
      }
    }
    setAll(out);
    await refresh();
  };
  return (
    <>
      <h1 tabIndex={-1}>Trust</h1>
      <p>
        This page checks the platform's answers itself: the checkpoint's Ed25519 signature (C2SP signed note) with the verifier key pinned in this browser, the
        RFC 9162 inclusion proof of each receipt, and a consistency proof from the last checkpoint this browser saw. Nothing relies on the server saying "valid".
      </p>
      <ErrorBox error={error} />
      <Section title="Verifier key and last checkpoint seen" id="pinned">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void pinVerifierKey(vkey).then(refresh, setError);
          }}
        >
          <label for="vkey">Checkpoint verifier key (pinned; compare it with the one <code>./nexus up</code> printed)</label>
          <input id="vkey" value={vkey} onInput={(e) => setVkey(e.currentTarget.value)} class="wide" />
          <button type="submit">Pin this key</button>
        </form>
        {seen ? (
          <dl class="facts" data-testid="last-seen">
            <dt>Tree size</dt><dd>{seen.size}</dd>
            <dt>Root</dt><dd><code>{seen.root}</code></dd>
            <dt>Seen at</dt><dd>{seen.seenAt}</dd>
          </dl>
        ) : (
          <p>No checkpoint seen yet.</p>
        )}
        <button type="button" onClick={() => void checkLatest().then((r) => { setLatest(r.checks); return refresh(); }, setError)}>
          Check the latest checkpoint now
        </button>
        {latest && <Checks checks={latest} testid="latest-checks" />}
      </Section>
      <Section title="Receipts of your commands" id="receipts">
        {!me ? (
          <p><a href="#/signin">Sign in</a> to see your receipts.</p>
        ) : receipts.length === 0 ? (
          <p>No receipts yet.</p>
        ) : (
          <>
            <button type="button" onClick={() => void verifyAll()}>Verify all receipts</button>
            {all && <Checks checks={all} testid="all-checks" />}
            <ul class="plain receipts">
              {receipts.map((r) => (
                <li key={r.key} data-testid={`receipt-${r.receipt.index}`}>
                  <p>
                    <a href={`#/ledger/${r.receipt.index}`}>Entry {r.receipt.index}</a> · <code>{r.type}</code>
                    {r.imvu ? ` on ${r.imvu}` : ""} · {r.receipt.outcome === "denied" ? "✗ denied" : "✓ applied"} · {r.at}
                  </p>
                  <VerifyReceipt receipt={r.receipt} />
                </li>
              ))}
            </ul>
          </>
        )}
      </Section>
    </>
  );
}
