/** One IMVU: envelope, resources, usage charts, feed, and its gated actions (DNS record, mailbox and its password, workload, route, grant, exit). */
import { useEffect, useMemo, useState } from "preact/hooks";
import { CommandResult, ErrorBox, LineChart, Section } from "../components.tsx";
import { ApiError, getAs, platformInfo, submit, type Submitted } from "../lib/api.ts";
import type { StoredIdentity } from "../lib/db.ts";
import { ENVELOPE_ROWS, type EnvelopeWire } from "../lib/envelope.ts";
import { AddMailbox, AddRoute, ChangeMailboxPassword, DeployWorkload, GrantRoute, type ActionProps } from "./imvu-actions.tsx";

interface Imvu {
  readonly name: string;
  readonly owner: string;
  readonly jurisdiction: string;
  readonly class: string;
  readonly status: string;
  readonly role: string;
  readonly envelope: EnvelopeWire;
  readonly exit?: Record<string, unknown>;
  readonly suspension?: Record<string, unknown>;
  readonly createdIndex: string;
}
interface FeedItem { readonly index: string; readonly type: string; readonly actor: string; readonly outcome: string; readonly redirect: boolean }
interface Usage { readonly service: string; readonly intervalStart: string; readonly intervalEnd: string; readonly metrics: Record<string, string>; readonly index: string }
interface Mailbox { readonly address: string; readonly identity: string; readonly status: string; readonly verifierStored?: boolean }
interface Resources {
  readonly zones: { origin: string; kind: string }[];
  readonly records: { name: string; type: string; ttl: number; values: Record<string, unknown>[]; index: string }[];
  readonly workloads: Record<string, unknown>[];
  readonly routes: Record<string, unknown>[];
  readonly grants: Record<string, unknown>[];
  readonly usage: Usage[];
  readonly throttles: Record<string, unknown>[];
}

const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT"] as const;
const CHART_COLORS = ["#0b5cad", "#b3261e", "#1b7a3a", "#7a4b00"];
/** Most usage charts drawn (one per metric). */
const CHARTS_MAX = 8;

function rdata(type: (typeof RECORD_TYPES)[number], value: string): Record<string, unknown> {
  switch (type) {
    case "A":
    case "AAAA":
      return { type, address: value.trim() };
    case "CNAME":
      return { type, target: value.trim() };
    case "TXT":
      return { type, text: [value] };
    case "MX": {
      const [pref = "", exchange = ""] = value.trim().split(/\s+/);
      return { type, preference: Number(pref), exchange };
    }
  }
}

function rdataText(v: Record<string, unknown>): string {
  const { type: _t, ...rest } = v;
  return Object.values(rest).map((x) => (Array.isArray(x) ? x.map((s) => JSON.stringify(s)).join(" ") : String(x))).join(" ");
}

function UsageCharts({ usage }: { usage: readonly Usage[] }) {
  const charts = useMemo(() => {
    const byMetric = new Map<string, { x: number; y: number }[]>();
    for (const u of usage) {
      for (const [m, v] of Object.entries(u.metrics)) {
        const key = `${u.service} · ${m}`;
        const list = byMetric.get(key) ?? [];
        list.push({ x: Date.parse(u.intervalEnd) / 1000, y: Number(v) });
        byMetric.set(key, list);
      }
    }
    return [...byMetric.entries()].slice(0, CHARTS_MAX).map(([key, pts], i) => {
      pts.sort((a, b) => a.x - b.x);
      return { key, xs: pts.map((p) => p.x), series: [{ label: key, values: pts.map((p) => p.y), stroke: CHART_COLORS[i % CHART_COLORS.length] ?? "#0b5cad" }], last: pts[pts.length - 1]?.y ?? 0, n: pts.length };
    });
  }, [usage]);
  if (charts.length === 0) return <p>No usage reported yet: the services report CPU, memory, disk, bandwidth, DNS queries and mail as signed usage.report commands, drawn here as they arrive.</p>;
  return <>{charts.map((c) => <LineChart key={c.key} title={c.key} xs={c.xs} series={c.series} summary={`${c.n} reports, latest ${c.last}`} />)}</>;
}

/** Most columns a generic resource table shows. */
const COLUMNS_MAX = 8;

function cellText(v: unknown): string {
  return typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : JSON.stringify(v);
}

/** Rows of a projection table as a table: one column per field (the `key` and `imvu` fields left out). */
function Rows({ rows, empty, caption }: { rows: readonly Record<string, unknown>[]; empty: string; caption: string }) {
  if (rows.length === 0) return <p>{empty}</p>;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== "key" && k !== "imvu").slice(0, COLUMNS_MAX);
  return (
    <table>
      <caption class="sr-only">{caption}</caption>
      <thead><tr>{cols.map((c) => <th key={c} scope="col">{c}</th>)}</tr></thead>
      <tbody>
        {rows.map((r, i) => (
          <tr key={i}>{cols.map((c) => <td key={c}>{r[c] === undefined ? "" : cellText(r[c])}</td>)}</tr>
        ))}
      </tbody>
    </table>
  );
}

export function ImvuPage({ me, name }: { me: StoredIdentity; name: string }) {
  const [imvu, setImvu] = useState<Imvu | undefined>();
  const [hidden, setHidden] = useState(false);
  const [feed, setFeed] = useState<FeedItem[]>([]);
  const [res, setRes] = useState<Resources | undefined>();
  const [mailboxes, setMailboxes] = useState<Mailbox[] | undefined>();
  const [error, setError] = useState<unknown>();
  const [base, setBase] = useState("");
  const [owner, setOwner] = useState("");
  const [rtype, setRtype] = useState<(typeof RECORD_TYPES)[number]>("A");
  const [rvalue, setRvalue] = useState("");
  const [ttl, setTtl] = useState("300");
  const [dnsResult, setDnsResult] = useState<Submitted | undefined>();
  const [exitResult, setExitResult] = useState<Submitted | undefined>();
  const [busy, setBusy] = useState(false);

  const refresh = async (): Promise<void> => {
    try {
      const i = await getAs<Imvu>(me, `/v1/imvus/${encodeURIComponent(name)}`);
      setImvu(i);
      setHidden(false);
      setFeed((await getAs<{ feed: FeedItem[] }>(me, `/v1/imvus/${encodeURIComponent(name)}/feed`)).feed);
      setRes(await getAs<Resources>(me, `/v1/console/imvus/${encodeURIComponent(name)}/resources`).catch(() => undefined));
      // The mail part's own read (GET /v1/mail/mailboxes), when the stack mounts it.
      setMailboxes(await getAs<{ mailboxes: Mailbox[] }>(me, `/v1/mail/mailboxes?imvu=${encodeURIComponent(name)}`).then((r) => r.mailboxes, () => undefined));
    } catch (e) {
      if (e instanceof ApiError && e.code === "NOT_FOUND") setHidden(true);
      else setError(e);
    }
  };
  useEffect(() => {
    void refresh();
    void platformInfo().then((p) => {
      setBase(p.baseDomain);
      setOwner((o) => o || `${name}.${p.baseDomain}.`);
    }, setError);
  }, [me.id, name]);

  const send = async (e: Event, draft: Parameters<typeof submit>[1], set: (r: Submitted | undefined) => void): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    set(undefined);
    try {
      set(await submit(me, draft));
      await refresh();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const ttlNum = Number(ttl);
  const actions: ActionProps = { me, name, base, workloads: res?.workloads ?? [], routes: res?.routes ?? [], mailboxes: (mailboxes ?? []).map((m) => m.address), refresh };

  return (
    <>
      <h1 tabIndex={-1}>IMVU {name}</h1>
      <ErrorBox error={error} />
      {hidden && (
        <p class="note" data-testid="not-visible">
          {name} is not among your IMVUs (gate 16: you see only what you own or are delegated). You may still send signed commands below; the gates will decide
          and the attempt is recorded in the ledger either way.
        </p>
      )}
      {imvu && (
        <Section title="Overview" id="overview">
          <dl class="facts">
            <dt>Owner</dt><dd><code>{imvu.owner}</code>{imvu.role === "owner" ? " (you)" : ` (you are a ${imvu.role})`}</dd>
            <dt>Class</dt><dd>{imvu.class === "imvu" ? "IMVU (55/45)" : "mini-platform (80/20)"}</dd>
            <dt>Jurisdiction</dt><dd>{imvu.jurisdiction}</dd>
            <dt>Status</dt><dd data-testid="status">{imvu.status}{imvu.exit ? " · exit requested" : ""}</dd>
            <dt>Created</dt><dd>ledger entry <a href={`#/ledger/${imvu.createdIndex}`}>{imvu.createdIndex}</a></dd>
            <dt>Domain</dt><dd>{base ? `${imvu.name}.${base}` : "…"}</dd>
          </dl>
          <p><a href={`#/imvu/${encodeURIComponent(name)}/revenue`}>Revenue statements →</a></p>
          <table>
            <caption>Resource envelope (gate 7: nothing may take the IMVU beyond it; gate 15: services may limit it by nothing else)</caption>
            <tbody>
              {ENVELOPE_ROWS.map((r) => (
                <tr key={r.key}><th scope="row">{r.label}</th><td>{r.show(imvu.envelope[r.key])}</td></tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
      {imvu && (
        <Section title="Usage" id="usage">
          <UsageCharts usage={res?.usage ?? []} />
          {res && res.throttles.length > 0 && <Rows rows={res.throttles} empty="" caption="Throttling episodes" />}
        </Section>
      )}
      {imvu && res && (
        <Section title="DNS records" id="dns">
          <p>Zones: {res.zones.map((z) => z.origin).join(", ") || "none"}</p>
          {res.records.length === 0 ? <p>No records yet.</p> : (
            <table data-testid="dns-records">
              <caption class="sr-only">DNS records</caption>
              <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">TTL</th><th scope="col">Data</th><th scope="col">Entry</th></tr></thead>
              <tbody>
                {res.records.map((r) => (
                  <tr key={`${r.name} ${r.type}`}><td>{r.name}</td><td>{r.type}</td><td>{r.ttl}</td><td>{r.values.map(rdataText).join(", ")}</td><td><a href={`#/ledger/${r.index}`}>{r.index}</a></td></tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
      )}
      {imvu && res && (
        <Section title="Workloads, routes, grants and mailboxes" id="compute">
          <h3>Workloads</h3>
          <Rows rows={res.workloads} empty="No workloads yet (deploy one below, from an image or from a directory on this computer)." caption="Workloads" />
          <h3>Routes</h3>
          <Rows rows={res.routes} empty="No routes." caption="Routes" />
          <h3>Grants of private routes</h3>
          <Rows rows={res.grants} empty="No grants." caption="Grants" />
          <h3>Mailboxes</h3>
          {mailboxes === undefined ? (
            <p>The mail part does not answer here.</p>
          ) : mailboxes.length === 0 ? (
            <p>No mailboxes yet (add one below: the password and its verifier are made in this page).</p>
          ) : (
            <ul class="plain" data-testid="mailboxes">
              {mailboxes.map((m) => (
                <li key={m.address}><code>{m.address}</code> · {m.status}{m.verifierStored === false ? " · NO PASSWORD stored (logins fail)" : " · password set"} · bound to <code title={m.identity}>{m.identity === me.id ? "you" : `${m.identity.slice(0, 14)}…`}</code></li>
              ))}
            </ul>
          )}
        </Section>
      )}
      <Section title="Set a DNS record" id="set-dns">
        <form onSubmit={(e) => void send(e, { type: "dns.rrset.set", imvu: name, body: { name: owner, type: rtype, ...(Number.isInteger(ttlNum) ? { ttl: ttlNum } : {}), values: [rdata(rtype, rvalue)] } }, setDnsResult)} class="grid">
          <label for="dns-name">Owner name (absolute)</label>
          <input id="dns-name" required value={owner} onInput={(e) => setOwner(e.currentTarget.value)} />
          <label for="dns-type">Type</label>
          <select id="dns-type" value={rtype} onChange={(e) => setRtype(e.currentTarget.value as typeof rtype)}>
            {RECORD_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
          <label for="dns-value">Value {rtype === "MX" ? "(preference and exchange, e.g. 10 mail.example.org.)" : ""}</label>
          <input id="dns-value" required value={rvalue} onInput={(e) => setRvalue(e.currentTarget.value)} />
          <label for="dns-ttl">TTL (seconds)</label>
          <input id="dns-ttl" inputMode="numeric" value={ttl} onInput={(e) => setTtl(e.currentTarget.value)} />
          <button type="submit" disabled={busy} class="span">Sign and set the record</button>
        </form>
        <CommandResult result={dnsResult} what="Setting the record" />
      </Section>
      <AddMailbox {...actions} />
      <ChangeMailboxPassword {...actions} />
      <DeployWorkload {...actions} />
      <AddRoute {...actions} />
      <GrantRoute {...actions} />
      <Section title="Exit" id="exit">
        <p>
          The owner's exit request is always accepted (gate 13), suspended or not. Requesting it here records a signed <code>imvu.exit.request</code>. The
          download of the exit bundle (every resource in standard formats, with proofs) comes with a later release; the request is recorded now.
        </p>
        <form onSubmit={(e) => void send(e, { type: "imvu.exit.request", imvu: name, body: {} }, setExitResult)}>
          <button type="submit" disabled={busy}>Sign and request exit</button>
        </form>
        <CommandResult result={exitResult} what="Requesting exit" />
      </Section>
      {imvu && (
        <Section title="Feed" id="feed">
          <p>Every command that touched {name}, by anyone, applied or denied.</p>
          <table data-testid="feed">
            <caption class="sr-only">Feed of {name}</caption>
            <thead><tr><th scope="col">Entry</th><th scope="col">Command</th><th scope="col">Actor</th><th scope="col">Outcome</th></tr></thead>
            <tbody>
              {[...feed].reverse().map((f) => (
                <tr key={f.index} class={f.outcome === "denied" ? "fail" : ""}>
                  <td><a href={`#/ledger/${f.index}`}>{f.index}</a></td>
                  <td>{f.type}{f.redirect ? " (redirects traffic)" : ""}</td>
                  <td><code title={f.actor}>{f.actor === me.id ? "you" : `${f.actor.slice(0, 14)}…`}</code></td>
                  <td>{f.outcome === "denied" ? "✗ denied" : "✓ applied"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      )}
    </>
  );
}
