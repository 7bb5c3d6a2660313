/** The creator's IMVUs, creating one (signed imvu.create), and opening one by name. */
import { useEffect, useState } from "preact/hooks";
import { CommandResult, ErrorBox, Section } from "../components.tsx";
import { getAs, submit, type Submitted } from "../lib/api.ts";
import type { StoredIdentity } from "../lib/db.ts";
import { ENVELOPE_ROWS, PROFILES } from "../lib/envelope.ts";

interface ImvuSummary {
  readonly name: string;
  readonly jurisdiction: string;
  readonly class: string;
  readonly status: string;
  readonly role: string;
  readonly exit?: unknown;
}

export function Home({ me }: { me: StoredIdentity }) {
  const [imvus, setImvus] = useState<ImvuSummary[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [name, setName] = useState("");
  const [jurisdiction, setJurisdiction] = useState("DE");
  const [cls, setCls] = useState<"imvu" | "mini-platform">("imvu");
  const [profile, setProfile] = useState<keyof typeof PROFILES>("small");
  const [open, setOpen] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Submitted | undefined>();
  const refresh = async (): Promise<void> => {
    try {
      setImvus((await getAs<{ imvus: ImvuSummary[] }>(me, "/v1/imvus")).imvus);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => void refresh(), [me.id]);

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setResult(undefined);
    setError(undefined);
    try {
      const r = await submit(me, { type: "imvu.create", imvu: name, body: { name, jurisdiction, class: cls, envelope: PROFILES[profile] } });
      setResult(r);
      await refresh();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const env = PROFILES[profile];
  return (
    <>
      <h1 tabIndex={-1}>Your IMVUs</h1>
      <ErrorBox error={error} />
      <Section title="IMVUs you own or are delegated" id="list">
        {imvus === undefined ? (
          <p>Loading…</p>
        ) : imvus.length === 0 ? (
          <p>None yet: create one below.</p>
        ) : (
          <table data-testid="imvu-list">
            <caption class="sr-only">Your IMVUs</caption>
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Class</th><th scope="col">Jurisdiction</th><th scope="col">Status</th><th scope="col">Your role</th></tr>
            </thead>
            <tbody>
              {imvus.map((i) => (
                <tr key={i.name}>
                  <th scope="row"><a href={`#/imvu/${encodeURIComponent(i.name)}`}>{i.name}</a></th>
                  <td>{i.class}</td>
                  <td>{i.jurisdiction}</td>
                  <td>{i.status}{i.exit ? " · exit requested" : ""}</td>
                  <td>{i.role}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Create an IMVU" id="create">
        <form onSubmit={(e) => void create(e)} class="grid">
          <label for="imvu-name">Name (a DNS label: lower-case letters, digits, hyphens)</label>
          <input id="imvu-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} pattern="[a-z0-9]([a-z0-9\-]*[a-z0-9])?" maxLength={63} autocomplete="off" />
          <label for="imvu-jur">Jurisdiction (ISO 3166-1 alpha-2, ZZ for unspecified)</label>
          <input id="imvu-jur" required value={jurisdiction} onInput={(e) => setJurisdiction(e.currentTarget.value.toUpperCase())} pattern="[A-Z]{2}" maxLength={2} />
          <label for="imvu-class">Class (its revenue split)</label>
          <select id="imvu-class" value={cls} onChange={(e) => setCls(e.currentTarget.value as typeof cls)}>
            <option value="imvu">IMVU: 55% creator / 45% platform</option>
            <option value="mini-platform">Mini-platform (stream, OTT): 80% creator / 20% platform</option>
          </select>
          <label for="imvu-profile">Resource envelope</label>
          <select id="imvu-profile" value={profile} onChange={(e) => setProfile(e.currentTarget.value as typeof profile)}>
            <option value="small">small</option>
            <option value="medium">medium</option>
            <option value="large">large</option>
          </select>
          <p class="hint span">
            {ENVELOPE_ROWS.map((r) => `${r.label} ${r.show(env[r.key])}`).join(" · ")}
          </p>
          <button type="submit" disabled={busy} class="span">{busy ? "Signing…" : "Sign and create"}</button>
        </form>
        <CommandResult result={result} what={`Creating ${name}`} />
        {result?.kind === "receipt" && result.receipt.outcome === "applied" && (
          <p><a href={`#/imvu/${encodeURIComponent(name)}`}>Open {name}</a></p>
        )}
      </Section>
      <Section title="Open an IMVU by name" id="open">
        <form onSubmit={(e) => { e.preventDefault(); location.hash = `#/imvu/${encodeURIComponent(open)}`; }}>
          <label for="open-name">IMVU name</label>
          <input id="open-name" value={open} onInput={(e) => setOpen(e.currentTarget.value)} required />
          <button type="submit">Open</button>
          <p class="hint">You see only your own IMVUs (gate 16), but you may send signed commands to any: the gates decide, and every attempt is recorded.</p>
        </form>
      </Section>
    </>
  );
}
