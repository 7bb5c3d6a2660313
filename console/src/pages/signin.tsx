/** Sign in: create a key in this browser, import a CLI identity file, or pick a stored identity. */
import { useEffect, useState } from "preact/hooks";
import { CommandResult, ErrorBox, Section } from "../components.tsx";
import { isRegistered, register, type Submitted } from "../lib/api.ts";
import { deleteIdentity, listIdentities, putIdentity, type StoredIdentity } from "../lib/db.ts";
import { createBrowserIdentity, importCliIdentity } from "../lib/identity.ts";

/** Registers `who` unless the platform knows it already. */
async function ensureRegistered(who: StoredIdentity): Promise<Submitted | undefined> {
  if (await isRegistered(who.id)) return undefined;
  return register(who);
}

export function SignIn({ me, onChoose }: { me: StoredIdentity | undefined; onChoose: (i: StoredIdentity | undefined) => Promise<void> }) {
  const [ids, setIds] = useState<StoredIdentity[]>([]);
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<Submitted | undefined>();
  const refresh = async (): Promise<void> => setIds(await listIdentities());
  useEffect(() => void refresh(), []);

  const adopt = async (i: StoredIdentity): Promise<void> => {
    await putIdentity(i);
    const r = await ensureRegistered(i);
    setResult(r);
    if (r !== undefined && (r.kind === "rejected" || r.receipt.outcome !== "applied")) throw new Error("the platform did not register the identity");
    await onChoose(i);
    await refresh();
  };
  const act = (fn: () => Promise<void>) => async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const create = act(async () => adopt(await createBrowserIdentity(name.trim() === "" ? undefined : name.trim())));
  const importFile = act(async () => {
    const input = document.getElementById("idfile") as HTMLInputElement | null;
    const file = input?.files?.[0];
    if (!file) throw new Error("choose an identity file first");
    await adopt(await importCliIdentity(await file.text()));
  });

  return (
    <>
      <h1 tabIndex={-1}>Sign in</h1>
      <p>
        Your identity is a key pair that never leaves your browser or your CLI keyring: the platform only ever sees signatures. Its id is derived from its
        signed inception, so nobody can claim it.
      </p>
      {me && (
        <p class="note" data-testid="current-id">
          Signed in as <code>{me.id}</code> ({me.source === "browser" ? "browser key" : "imported CLI identity"}, key #{me.seq}).
        </p>
      )}
      <ErrorBox error={error} />
      <CommandResult result={result} what="Registering the identity" />
      <Section title="Create a key in this browser" id="create-key">
        <form onSubmit={(e) => void create(e)}>
          <label for="idname">Name (optional, public: it is part of your inception)</label>
          <input id="idname" name="idname" value={name} onInput={(e) => setName(e.currentTarget.value)} pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,62}" autocomplete="off" />
          <p class="hint">An Ed25519 key and a pre-committed next key are generated as non-extractable WebCrypto keys and kept in IndexedDB; the inception is registered with a signed identity.inception command.</p>
          <button type="submit" disabled={busy}>{busy ? "Working…" : "Create key and register"}</button>
        </form>
      </Section>
      <Section title="Import a CLI identity file" id="import-key">
        <form onSubmit={(e) => void importFile(e)}>
          <label for="idfile">Identity file (from ~/.config/nexus/keyring/&lt;id&gt;.json)</label>
          <input id="idfile" type="file" accept=".json,application/json" />
          <p class="hint">The key event log is verified here; the seeds become non-extractable keys and the file is not kept. The same identity can then sign from the CLI and this browser.</p>
          <button type="submit" disabled={busy}>Import and sign in</button>
        </form>
      </Section>
      <Section title="Identities in this browser" id="stored">
        {ids.length === 0 ? (
          <p>None yet.</p>
        ) : (
          <ul class="plain">
            {ids.map((i) => (
              <li key={i.id}>
                <code>{i.name ?? i.id}</code> <small>{i.id}</small>{" "}
                <button type="button" onClick={() => void onChoose(i).then(() => (location.hash = "#/"))} aria-label={`Use ${i.name ?? i.id}`}>
                  Use
                </button>{" "}
                <button
                  type="button"
                  class="danger"
                  aria-label={`Forget ${i.name ?? i.id}`}
                  onClick={() => {
                    if (!confirm(i.source === "browser" ? "Forget this browser key? It cannot be recovered: it was never exportable." : "Forget this imported identity in this browser?")) return;
                    void deleteIdentity(i.id).then(async () => {
                      if (me?.id === i.id) await onChoose(undefined);
                      await refresh();
                    });
                  }}
                >
                  Forget
                </button>
              </li>
            ))}
          </ul>
        )}
      </Section>
    </>
  );
}
