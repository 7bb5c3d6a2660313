/**
 * The IMVU overview's gated actions beyond DNS and exit: add a mailbox (`mail.mailbox.add`) and
 * change a mailbox's password (`mail.mailbox.passwd`), the password generated or typed and its
 * scrypt verifier derived in the page, the verifier handed to POST /v1/mail/verifiers once the
 * command applied; deploy a workload (`compute.workload.deploy`) from an image or from a directory
 * chosen in the page, packed here as the CLI's deterministic tar and uploaded under its SHA-256;
 * add a route (`net.route.add`) and grant an identity on a private route (`net.grant.add`). Each
 * is a command signed in the page; the gates decide, and a denial shows the refusing gate and its
 * reason (CommandResult).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { CommandResult, ErrorBox, errorText, Section } from "../components.tsx";
import { getPublic, postJson, submit, uploadSource, type Draft, type Submitted, type UploadedSource } from "../lib/api.ts";
import type { StoredIdentity } from "../lib/db.ts";
import { createPasswordVerifier, PASSWORD_BYTES_MAX, SCRYPT_BLOCK_SIZE, SCRYPT_LOG2_N, SCRYPT_PARALLELISM, generatePassword, verifierCommitment } from "../lib/mail.ts";
import { utf8 } from "../lib/bytes.ts";
import { packDirectory, SOURCE_BYTES_MAX, type PackedSource } from "../lib/tar.ts";

/** Route kinds (src/core/policy/net-schemas.ts ROUTE_KINDS). */
const ROUTE_KINDS = ["public", "private", "restricted"] as const;
type RouteKind = (typeof ROUTE_KINDS)[number];

/** What each action form is given by the overview. */
export interface ActionProps {
  readonly me: StoredIdentity;
  /** The IMVU. */
  readonly name: string;
  /** The platform's base domain ("" until known). */
  readonly base: string;
  /** The IMVU's workloads and routes as the resources read lists them (empty when hidden). */
  readonly workloads: readonly Record<string, unknown>[];
  readonly routes: readonly Record<string, unknown>[];
  /** The IMVU's mailbox addresses (empty when hidden or the mail part does not answer). */
  readonly mailboxes: readonly string[];
  /** Re-reads the overview after an applied command. */
  readonly refresh: () => Promise<void>;
}

/** One signed command at a time: busy, the last result, an error of the page itself. */
function useCommand(me: StoredIdentity, refresh: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Submitted | undefined>();
  const [error, setError] = useState<unknown>();
  const run = async (draft: Draft): Promise<Submitted | undefined> => {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const r = await submit(me, draft);
      setResult(r);
      await refresh();
      return r;
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, setBusy, result, setResult, error, setError, run };
}

const applied = (r: Submitted | undefined): boolean => r?.kind === "receipt" && r.receipt.outcome === "applied";
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** Add a mailbox: password and verifier made here; the ledger gets the verifier's SHA-256 only. */
export function AddMailbox({ me, name, base, refresh }: ActionProps) {
  const [address, setAddress] = useState("");
  const [identity, setIdentity] = useState("");
  const [progress, setProgress] = useState<string | undefined>();
  /** The verifier of an applied command not yet stored (a retry hands it over again). */
  const [pending, setPending] = useState<{ address: string; verifier: string; password: string } | undefined>();
  const [shown, setShown] = useState<{ address: string; password: string } | undefined>();
  const cmd = useCommand(me, refresh);
  const domain = base ? `${name}.${base}` : "";

  const store = async (p: { address: string; verifier: string; password: string }): Promise<void> => {
    try {
      await postJson<{ stored: boolean; commitment: string }>("/v1/mail/verifiers", { imvu: name, address: p.address, verifier: p.verifier });
      setPending(undefined);
      setShown({ address: p.address, password: p.password });
      await refresh();
    } catch (e) {
      setPending(p);
      cmd.setError(new Error(`The mailbox was added, but its verifier was not stored (${errorText(e)}): logins fail until it is. Retry below.`));
    }
  };

  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    const addr = address.trim().toLowerCase();
    setShown(undefined);
    setPending(undefined);
    cmd.setError(undefined);
    cmd.setResult(undefined);
    cmd.setBusy(true);
    let verifier: string;
    let password: string;
    try {
      password = generatePassword();
      setProgress("Deriving the scrypt verifier in this page… 0 %");
      verifier = await createPasswordVerifier(password, { onProgress: (f) => setProgress(`Deriving the scrypt verifier in this page… ${Math.floor(f * 100)} %`) });
    } catch (err) {
      cmd.setError(err);
      cmd.setBusy(false);
      return;
    } finally {
      setProgress(undefined);
    }
    const body = { address: addr, ...(identity.trim() === "" ? {} : { identity: identity.trim() }), verifierCommitment: await verifierCommitment(verifier) };
    const r = await cmd.run({ type: "mail.mailbox.add", imvu: name, body });
    if (applied(r)) {
      cmd.setBusy(true);
      await store({ address: addr, verifier, password });
      cmd.setBusy(false);
    }
  };

  return (
    <Section title="Add a mailbox" id="add-mailbox">
      <p class="hint">
        A password is generated in this page and shown once. Its salted scrypt verifier (N = 2^{SCRYPT_LOG2_N}, r = {SCRYPT_BLOCK_SIZE}, p = {SCRYPT_PARALLELISM}) is
        derived here too; the signed <code>mail.mailbox.add</code> carries only the verifier's SHA-256, and once the command applied the verifier goes to the
        IMVU's secret store (<code>POST /v1/mail/verifiers</code>), which takes it only because it hashes to that commitment. The password itself is sent nowhere.
      </p>
      <form onSubmit={(e) => void add(e)} class="grid">
        <label for="mail-address">Mailbox address</label>
        <input id="mail-address" required autocomplete="off" placeholder={domain ? `creator@${domain}` : "creator@…"} value={address} onInput={(e) => setAddress(e.currentTarget.value)} aria-describedby="mail-address-hint" />
        <span id="mail-address-hint" class="hint span">In a domain bound to {name}{domain ? ` (${domain})` : ""}.</span>
        <label for="mail-identity">Bound to identity (optional, default the owner)</label>
        <input id="mail-identity" autocomplete="off" placeholder="nx1…" value={identity} onInput={(e) => setIdentity(e.currentTarget.value)} />
        <button type="submit" disabled={cmd.busy} class="span">Generate a password, sign and add the mailbox</button>
      </form>
      {progress && <p role="status">{progress}</p>}
      <ErrorBox error={cmd.error} />
      {pending && (
        <button type="button" disabled={cmd.busy} onClick={() => { cmd.setError(undefined); void store(pending); }}>
          Retry storing the verifier of {pending.address}
        </button>
      )}
      {shown && (
        <div class="note" role="status" data-testid="mailbox-password">
          <p>
            Password of <code>{shown.address}</code> (shown once: it is stored nowhere, only its salted scrypt verifier is kept):
          </p>
          <p><code class="secret" data-testid="password">{shown.password}</code></p>
          <button type="button" onClick={() => setShown(undefined)}>I have saved it: hide the password</button>
        </div>
      )}
      <CommandResult result={cmd.result} what="Adding the mailbox" />
    </Section>
  );
}

type PasswordChoice = "generate" | "type";

/** Change a mailbox's password: the new verifier made here; the ledger gets its SHA-256 only. */
export function ChangeMailboxPassword({ me, name, mailboxes, refresh }: ActionProps) {
  const [address, setAddress] = useState("");
  const [choice, setChoice] = useState<PasswordChoice>("generate");
  const [typed, setTyped] = useState("");
  const [again, setAgain] = useState("");
  const [progress, setProgress] = useState<string | undefined>();
  const [pending, setPending] = useState<{ address: string; verifier: string; password?: string } | undefined>();
  const [done, setDone] = useState<{ address: string; password?: string } | undefined>();
  const cmd = useCommand(me, refresh);
  useEffect(() => {
    const first = mailboxes[0];
    if (first !== undefined) setAddress((a) => a || first);
  }, [mailboxes.length]);

  const store = async (p: { address: string; verifier: string; password?: string }): Promise<void> => {
    try {
      await postJson<{ stored: boolean; commitment: string }>("/v1/mail/verifiers", { imvu: name, address: p.address, verifier: p.verifier });
      setPending(undefined);
      setDone({ address: p.address, ...(p.password === undefined ? {} : { password: p.password }) });
      await refresh();
    } catch (e) {
      setPending(p);
      cmd.setError(new Error(`The new password was recorded, but its verifier was not stored (${errorText(e)}): logins fail until it is. Retry below.`));
    }
  };

  const change = async (e: Event): Promise<void> => {
    e.preventDefault();
    const addr = address.trim().toLowerCase();
    setDone(undefined);
    setPending(undefined);
    cmd.setError(undefined);
    cmd.setResult(undefined);
    if (choice === "type") {
      if (typed !== again) {
        cmd.setError(new Error("The two passwords differ."));
        return;
      }
      const n = utf8(typed).length;
      if (n === 0 || n > PASSWORD_BYTES_MAX) {
        cmd.setError(new Error(`A password of 1 to ${PASSWORD_BYTES_MAX} bytes.`));
        return;
      }
    }
    cmd.setBusy(true);
    const password = choice === "generate" ? generatePassword() : typed;
    let verifier: string;
    try {
      setProgress("Deriving the scrypt verifier in this page… 0 %");
      verifier = await createPasswordVerifier(password, { onProgress: (f) => setProgress(`Deriving the scrypt verifier in this page… ${Math.floor(f * 100)} %`) });
    } catch (err) {
      cmd.setError(err);
      cmd.setBusy(false);
      return;
    } finally {
      setProgress(undefined);
    }
    const r = await cmd.run({ type: "mail.mailbox.passwd", imvu: name, body: { address: addr, verifierCommitment: await verifierCommitment(verifier) } });
    if (applied(r)) {
      setTyped("");
      setAgain("");
      cmd.setBusy(true);
      await store({ address: addr, verifier, ...(choice === "generate" ? { password } : {}) });
      cmd.setBusy(false);
    }
  };

  return (
    <Section title="Change a mailbox password" id="mail-passwd">
      <p class="hint">
        As <code>nexus mail passwd</code>: the new password's scrypt verifier is derived in this page, the signed <code>mail.mailbox.passwd</code> carries only
        its SHA-256, and once the command applied the verifier replaces the old one in the IMVU's secret store (<code>POST /v1/mail/verifiers</code>). The old
        password stops working then. The password itself is sent nowhere.
      </p>
      <form onSubmit={(e) => void change(e)} class="grid">
        <label for="pw-address">Mailbox</label>
        <input id="pw-address" required autocomplete="off" list="pw-addresses" value={address} onInput={(e) => setAddress(e.currentTarget.value)} />
        <datalist id="pw-addresses">
          {mailboxes.map((m) => <option key={m} value={m} />)}
        </datalist>
        <fieldset class="span">
          <legend>New password</legend>
          <input type="radio" id="pw-generate" name="pw-choice" checked={choice === "generate"} onChange={() => setChoice("generate")} />
          <label for="pw-generate" class="radio">Generate one in this page (shown once)</label>
          <input type="radio" id="pw-type" name="pw-choice" checked={choice === "type"} onChange={() => setChoice("type")} />
          <label for="pw-type" class="radio">Type my own</label>
        </fieldset>
        {choice === "type" && (
          <>
            <label for="pw-new">New password</label>
            <input id="pw-new" type="password" required autocomplete="new-password" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
            <label for="pw-again">New password again</label>
            <input id="pw-again" type="password" required autocomplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
          </>
        )}
        <button type="submit" disabled={cmd.busy} class="span">Sign and change the password</button>
      </form>
      {progress && <p role="status">{progress}</p>}
      <ErrorBox error={cmd.error} />
      {pending && (
        <button type="button" disabled={cmd.busy} onClick={() => { cmd.setError(undefined); void store(pending); }}>
          Retry storing the verifier of {pending.address}
        </button>
      )}
      {done && (
        <div class="note" role="status" data-testid="passwd-done">
          <p>The password of <code>{done.address}</code> is changed; the old one no longer logs in.</p>
          {done.password !== undefined && (
            <>
              <p>New password (shown once: it is stored nowhere, only its salted scrypt verifier is kept):</p>
              <p><code class="secret" data-testid="new-password">{done.password}</code></p>
              <button type="button" onClick={() => setDone(undefined)}>I have saved it: hide the password</button>
            </>
          )}
        </div>
      )}
      <CommandResult result={cmd.result} what="Changing the password" />
    </Section>
  );
}

interface ComputeStatus { readonly running: boolean; readonly available: boolean; readonly degraded?: string }

type SourceKind = "image" | "directory";

/** The files of a directory input, as the packer takes them. */
function chosenFiles(input: HTMLInputElement | null): { relativePath: string; blob: File; lastModified: number }[] {
  return Array.from(input?.files ?? []).map((f) => ({ relativePath: f.webkitRelativePath || f.name, blob: f, lastModified: f.lastModified }));
}

function bytesText(n: number): string {
  return n < 1024 ? `${n} bytes` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Deploy a workload from an image reference, or from a directory chosen in the page: packed here
 * as `nexus compute deploy --app DIR` packs it, uploaded under its SHA-256, then deployed as the
 * `app` source of that digest (a static site with an index.html, or a Node.js app).
 */
export function DeployWorkload({ me, name, refresh }: ActionProps) {
  const [wname, setWname] = useState("");
  const [kind, setKind] = useState<SourceKind>("image");
  const [image, setImage] = useState("");
  const [port, setPort] = useState("");
  const [command, setCommand] = useState("");
  const [status, setStatus] = useState<ComputeStatus | undefined>();
  const [picked, setPicked] = useState<{ root: string; files: number; bytes: number } | undefined>();
  const [progress, setProgress] = useState<string | undefined>();
  const [packed, setPacked] = useState<{ source: Pick<PackedSource, "sha256" | "sizeBytes" | "entries" | "root">; upload: UploadedSource } | undefined>();
  const dirInput = useRef<HTMLInputElement>(null);
  const cmd = useCommand(me, refresh);
  useEffect(() => {
    void getPublic<ComputeStatus>("/v1/compute/status").then(setStatus, () => setStatus(undefined));
  }, []);
  useEffect(() => {
    // No JSX attribute for it in every typing: set the property itself.
    if (dirInput.current) dirInput.current.webkitdirectory = true;
  }, [kind]);

  const onPick = (): void => {
    const files = chosenFiles(dirInput.current);
    setPacked(undefined);
    if (files.length === 0) {
      setPicked(undefined);
      return;
    }
    setPicked({ root: files[0]?.relativePath.split("/")[0] ?? "", files: files.length, bytes: files.reduce((n, f) => n + f.blob.size, 0) });
  };

  const sourceOf = async (): Promise<Record<string, unknown> | undefined> => {
    if (kind === "image") return { kind: "image", ref: image.trim() };
    const files = chosenFiles(dirInput.current);
    if (files.length === 0) throw new Error("Choose a directory first.");
    setProgress("Packing the directory as the CLI's deterministic tar… 0 %");
    const tar = await packDirectory(files, { onProgress: (f) => setProgress(`Packing the directory as the CLI's deterministic tar… ${Math.floor(f * 100)} %`) });
    setProgress(`Uploading ${bytesText(tar.sizeBytes)} (sha256 ${tar.sha256.slice(0, 16)}…)…`);
    const upload = await uploadSource(me, name, tar);
    setPacked({ source: { sha256: tar.sha256, sizeBytes: tar.sizeBytes, entries: tar.entries, root: tar.root }, upload });
    return { kind: "app", sha256: tar.sha256 };
  };

  const deploy = async (e: Event): Promise<void> => {
    e.preventDefault();
    cmd.setError(undefined);
    cmd.setResult(undefined);
    setPacked(undefined);
    cmd.setBusy(true);
    let source: Record<string, unknown> | undefined;
    try {
      source = await sourceOf();
    } catch (err) {
      cmd.setError(err);
      cmd.setBusy(false);
      return;
    } finally {
      setProgress(undefined);
    }
    const args = command.trim().split(/\s+/).filter((a) => a !== "");
    const p = port.trim();
    const body = {
      name: wname.trim(),
      source,
      ...(args.length === 0 ? {} : { cmd: args }),
      ...(p === "" ? {} : { port: Number(p) }),
    };
    await cmd.run({ type: "compute.workload.deploy", imvu: name, body });
  };

  return (
    <Section title="Deploy a workload" id="deploy">
      <p class="hint">
        From an image reference (an image present on the platform's machine), or from a directory on this computer: a static site (an <code>index.html</code> at
        its top or in <code>public/</code>, <code>dist/</code>, <code>build/</code>, <code>site/</code>) or a Node.js app (<code>package.json</code> start or main,
        or <code>server.js</code>, <code>index.js</code>…). The directory is packed in this page as the same deterministic tar{" "}
        <code>nexus compute deploy --app DIR</code> makes, uploaded under its SHA-256, and the signed command names that digest: the ledger binds the exact bytes.
        The browser shows no file modes, owners or symlinks: files are packed as mode 0644, directories 0755, owner 0:0 (use the CLI for a tree that needs more,
        or <code>--rootfs</code>).
      </p>
      {status && !status.running && (
        <p class="note" data-testid="compute-status">
          The compute service is not running on this platform: a deploy is still gated and recorded, and the workload starts when compute runs.
        </p>
      )}
      {status?.running && !status.available && <p class="note" data-testid="compute-status">Compute is degraded: {status.degraded ?? "unavailable"}.</p>}
      <form onSubmit={(e) => void deploy(e)} class="grid">
        <label for="wl-name">Workload name</label>
        <input id="wl-name" required autocomplete="off" placeholder="web" value={wname} onInput={(e) => setWname(e.currentTarget.value)} />
        <fieldset class="span">
          <legend>Source</legend>
          <input type="radio" id="wl-kind-image" name="wl-kind" checked={kind === "image"} onChange={() => setKind("image")} />
          <label for="wl-kind-image" class="radio">An image</label>
          <input type="radio" id="wl-kind-dir" name="wl-kind" checked={kind === "directory"} onChange={() => setKind("directory")} />
          <label for="wl-kind-dir" class="radio">A directory on this computer (static site or Node.js app)</label>
        </fieldset>
        {kind === "image" ? (
          <>
            <label for="wl-image">Image reference</label>
            <input id="wl-image" required autocomplete="off" placeholder="docker.io/library/nginx:1.27" value={image} onInput={(e) => setImage(e.currentTarget.value)} />
          </>
        ) : (
          <>
            <label for="wl-dir">Directory to deploy</label>
            <input id="wl-dir" type="file" required multiple ref={dirInput} onChange={onPick} aria-describedby="wl-dir-hint" />
            <span id="wl-dir-hint" class="hint span" data-testid="picked">
              {picked ? `${picked.root}: ${picked.files} files, ${bytesText(picked.bytes)} (at most ${bytesText(SOURCE_BYTES_MAX)} packed)` : "No directory chosen."}
            </span>
          </>
        )}
        <label for="wl-port">Port the workload listens on (optional)</label>
        <input id="wl-port" inputMode="numeric" autocomplete="off" placeholder="8080" value={port} onInput={(e) => setPort(e.currentTarget.value)} />
        <label for="wl-cmd">Command (optional, arguments separated by spaces)</label>
        <input id="wl-cmd" autocomplete="off" value={command} onInput={(e) => setCommand(e.currentTarget.value)} />
        <button type="submit" disabled={cmd.busy} class="span">{kind === "image" ? "Sign and deploy" : "Pack, upload, sign and deploy"}</button>
      </form>
      {progress && <p role="status">{progress}</p>}
      <ErrorBox error={cmd.error} />
      {packed && (
        <p class="note" data-testid="source" data-sha256={packed.source.sha256}>
          {packed.source.root}: {packed.source.entries} entries, {bytesText(packed.source.sizeBytes)} packed, sha256 <code>{packed.source.sha256}</code>,{" "}
          {packed.upload.existed ? "already uploaded" : "uploaded"} to {name}'s sources.
        </p>
      )}
      <CommandResult result={cmd.result} what="Deploying the workload" />
    </Section>
  );
}

/** Add a route through the edge gateway to one of the IMVU's workloads. */
export function AddRoute({ me, name, base, workloads, refresh }: ActionProps) {
  const [route, setRoute] = useState("");
  const [host, setHost] = useState("");
  const [path, setPath] = useState("/");
  const [kind, setKind] = useState<RouteKind>("public");
  const [regions, setRegions] = useState("");
  const [workload, setWorkload] = useState("");
  const [port, setPort] = useState("");
  const cmd = useCommand(me, refresh);
  useEffect(() => {
    if (base) setHost((h) => h || `${name}.${base}`);
  }, [base, name]);
  const known = workloads.find((w) => w["name"] === workload.trim());
  const knownPort = typeof known?.["port"] === "number" ? known["port"] : undefined;

  const add = (e: Event): void => {
    e.preventDefault();
    const allow = regions.split(/[\s,]+/).map((r) => r.trim().toUpperCase()).filter((r) => r !== "");
    const p = port.trim() === "" && knownPort !== undefined ? knownPort : Number(port.trim());
    const body = {
      route: route.trim(),
      host: host.trim().toLowerCase().replace(/\.$/, ""),
      pathPrefix: path.trim(),
      kind,
      ...(kind === "restricted" && allow.length > 0 ? { allowRegions: allow } : {}),
      upstream: { workload: workload.trim(), port: p },
    };
    void cmd.run({ type: "net.route.add", imvu: name, body });
  };

  return (
    <Section title="Add a route" id="add-route">
      <p class="hint">
        The edge gateway sends requests for the host and path prefix to a workload of {name} (gate 2) on a host in a domain bound to it (gate 8). A private
        route serves only the identities granted on it; a restricted one only the listed regions.
      </p>
      <form onSubmit={add} class="grid">
        <label for="rt-id">Route id</label>
        <input id="rt-id" required autocomplete="off" placeholder="www" value={route} onInput={(e) => setRoute(e.currentTarget.value)} />
        <label for="rt-host">Host</label>
        <input id="rt-host" required autocomplete="off" value={host} onInput={(e) => setHost(e.currentTarget.value)} />
        <label for="rt-path">Path prefix</label>
        <input id="rt-path" required autocomplete="off" value={path} onInput={(e) => setPath(e.currentTarget.value)} />
        <label for="rt-kind">Kind</label>
        <select id="rt-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as RouteKind)}>
          {ROUTE_KINDS.map((k) => <option key={k} value={k}>{k}</option>)}
        </select>
        <label for="rt-regions">Allowed regions (restricted routes only; ISO codes, e.g. DE, FR)</label>
        <input id="rt-regions" autocomplete="off" disabled={kind !== "restricted"} required={kind === "restricted"} value={regions} onInput={(e) => setRegions(e.currentTarget.value)} />
        <label for="rt-workload">Upstream workload</label>
        <input id="rt-workload" required autocomplete="off" list="rt-workloads" value={workload} onInput={(e) => setWorkload(e.currentTarget.value)} />
        <datalist id="rt-workloads">
          {workloads.map((w) => <option key={str(w["name"])} value={str(w["name"])} />)}
        </datalist>
        <label for="rt-port">Upstream port{knownPort === undefined ? "" : ` (default ${knownPort}, the workload's)`}</label>
        <input id="rt-port" inputMode="numeric" autocomplete="off" required={knownPort === undefined} value={port} onInput={(e) => setPort(e.currentTarget.value)} />
        <button type="submit" disabled={cmd.busy} class="span">Sign and add the route</button>
      </form>
      <ErrorBox error={cmd.error} />
      <CommandResult result={cmd.result} what="Adding the route" />
    </Section>
  );
}

/** Grant an identity on a private route. */
export function GrantRoute({ me, name, routes, refresh }: ActionProps) {
  const [route, setRoute] = useState("");
  const [identity, setIdentity] = useState("");
  const cmd = useCommand(me, refresh);
  const privateRoutes = routes.filter((r) => r["kind"] === "private");
  useEffect(() => {
    const first = str(privateRoutes[0]?.["route"]);
    if (first) setRoute((r) => r || first);
  }, [privateRoutes.length]);

  const grant = (e: Event): void => {
    e.preventDefault();
    void cmd.run({ type: "net.grant.add", imvu: name, body: { route: route.trim(), identity: identity.trim() } });
  };

  return (
    <Section title="Grant an identity on a private route" id="grant">
      <p class="hint">A private route answers only requests signed by an identity granted on it.</p>
      <form onSubmit={grant} class="grid">
        <label for="gr-route">Private route</label>
        <input id="gr-route" required autocomplete="off" list="gr-routes" value={route} onInput={(e) => setRoute(e.currentTarget.value)} />
        <datalist id="gr-routes">
          {privateRoutes.map((r) => <option key={str(r["route"])} value={str(r["route"])} />)}
        </datalist>
        <label for="gr-identity">Identity to grant</label>
        <input id="gr-identity" required autocomplete="off" placeholder="nx1…" value={identity} onInput={(e) => setIdentity(e.currentTarget.value)} />
        <button type="submit" disabled={cmd.busy} class="span">Sign and grant</button>
      </form>
      <ErrorBox error={cmd.error} />
      <CommandResult result={cmd.result} what="Granting" />
    </Section>
  );
}
