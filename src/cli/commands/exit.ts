/**
 * `nexus imvu exit` and `nexus imvu verify-export` (docs/exit.md).
 *
 * exit: submits the owner's `imvu.exit.request` (always accepted, gate 13), downloads the bundle
 * (owner-signed POST), unpacks it into --out, verifies it offline as verify-export does, checks
 * that its ledger proofs start from the checkpoints this CLI saw, and only then countersigns the
 * manifest with the owner's key. Exit 0 done, 1 the bundle does not verify (nothing countersigned).
 *
 * verify-export: offline, no server; exit 0 valid, 1 with the list of what is missing or altered.
 *
 * import: on another installation, verifies the bundle, then re-creates the IMVU through the
 * owner's signed commands (src/imvu/import-plan.ts) and uploads each mailbox's Maildir.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import { isNexusError } from "../../core/errors.ts";
import { parseDsse } from "../../core/crypto/index.ts";
import { signRequest } from "../../core/crypto/httpsig.ts";
import { keyringDir } from "../../core/identity/index.ts";
import { safeRelPath, TarStreamReader } from "../../services/compute/tar.ts";
import { Decrypter } from "age-encryption";
import { tmpdir } from "node:os";
import { writeTarSync } from "../../services/compute/tar.ts";
import { type KnownDigests } from "../../imvu/bundle-verify.ts";
import { countersign, EXIT_MANIFEST_BYTES_MAX, exitErrors, MANIFEST_FILE, PATHS, verifyBundle, verifySignaturesOnly, type BundleReport } from "../../imvu/index.ts";
import { importPlan, readManifest } from "../../imvu/import-plan.ts";
import { apiBase, apiGet, apiGetPublic, clientErrors, localIdentity, observeCheckpoint, submitDraft, trustedVerifierKey } from "../client.ts";
import { action, emit } from "../output.ts";
import { apiFlags, clientOpts, ensureRegistered, printReceipt, type ApiFlags } from "./imvu.ts";
import { putTar } from "./compute.ts";
import { UnpackedFile, WriteBehind } from "../unpack-writer.ts";

/** Time limit of the bundle download. */
export const EXIT_DOWNLOAD_TIMEOUT_MS = 30 * 60_000;
/** Largest passphrase file read. */
export const PASSPHRASE_FILE_BYTES_MAX = 4096;

interface ExitFlags extends ApiFlags {
  readonly imvu: string;
  readonly out: string;
  readonly passphraseFile?: string;
}

const TrustView = z.object({ size: z.string(), root: z.string() }).passthrough();

/** The last checkpoint this CLI saw of `api` (the trust file of src/cli/client.ts, read only). */
function lastSeen(api: string): { size: string; root: string } | undefined {
  const dir = process.env.NEXUS_TRUST_DIR ?? join(dirname(keyringDir()), "trust");
  const p = join(dir, `${createHash("sha256").update(api).digest("hex").slice(0, 32)}.json`);
  if (!existsSync(p)) return undefined;
  const r = TrustView.safeParse(JSON.parse(readFileSync(p, "utf8")));
  return r.success ? { size: r.data.size, root: r.data.root } : undefined;
}

async function readPassphrase(file: string | undefined): Promise<string> {
  let text: string;
  if (file !== undefined) {
    const buf = readFileSync(file);
    if (buf.length > PASSPHRASE_FILE_BYTES_MAX) throw commonErrors.make("INPUT_INVALID", "--passphrase-file: too large", { field: "passphrase-file" });
    text = buf.toString("utf8");
  } else if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString("utf8");
  } else {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    text = await rl.question("passphrase for the bundle's secrets: ");
    rl.close();
  }
  const p = text.replace(/\r?\n$/, "");
  if (p.length < 8) throw commonErrors.make("INPUT_INVALID", "the passphrase needs at least 8 characters", { field: "passphrase" });
  return p;
}

async function signedPost(f: ApiFlags, path: string, contentType: string, body: string | Uint8Array): Promise<Response> {
  const url = `${apiBase(clientOpts(f))}${path}`;
  const id = localIdentity(clientOpts(f));
  const headers: Record<string, string> = { "content-type": contentType, accept: "application/x-tar, application/json" };
  const sig = signRequest(
    { method: "POST", url, headers },
    { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey },
  );
  headers["signature-input"] = sig.signatureInput;
  headers.signature = sig.signature;
  try {
    return await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(EXIT_DOWNLOAD_TIMEOUT_MS) });
  } catch (e) {
    throw clientErrors.make("CLIENT_API_UNREACHABLE", `${url}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The owner-signed POST of the bundle download, answered as a byte stream (node:http: less work per byte than fetch). */
function downloadRequest(f: ApiFlags, path: string, body: string): Promise<IncomingMessage> {
  const url = `${apiBase(clientOpts(f))}${path}`;
  const id = localIdentity(clientOpts(f));
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/x-tar, application/json" };
  const sig = signRequest(
    { method: "POST", url, headers },
    { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey },
  );
  headers["signature-input"] = sig.signatureInput;
  headers.signature = sig.signature;
  const send = new URL(url).protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolveRes, reject) => {
    const req = send(url, { method: "POST", headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, signal: AbortSignal.timeout(EXIT_DOWNLOAD_TIMEOUT_MS) }, resolveRes);
    req.on("error", (e) => reject(clientErrors.make("CLIENT_API_UNREACHABLE", `${url}: ${e.message}`)));
    req.end(body);
  });
}

/** The text of a (small) answer, at most 64 KiB of it. */
async function answerText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    if (bytes < 65_536) parts.push(c);
    bytes += c.length;
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Downloads the bundle and unpacks it into `dir` as it arrives: regular files and directories
 * only, paths kept inside `dir`, each file hashed as it is written. Returns those digests (the
 * verification after it reads nothing twice); throws on an archive cut short or malformed.
 */
async function downloadInto(f: ExitFlags, body: string, dir: string): Promise<KnownDigests> {
  const res = await downloadRequest(f, `/v1/imvus/${f.imvu}/exit/bundle`, body);
  if (res.statusCode !== 200) {
    const text = await answerText(res).catch(() => "");
    const code = /"code":"([A-Z_]+)"/.exec(text)?.[1];
    if (code === "NOT_FOUND") throw commonErrors.make("NOT_FOUND", `no IMVU ${f.imvu} among yours`);
    throw clientErrors.make("CLIENT_BAD_RESPONSE", `bundle download: HTTP ${res.statusCode ?? "?"} ${code ?? ""} ${text.slice(0, 500)}`);
  }
  const digests = new Map<string, { sha256: string; bytes: number }>();
  const made = new Set<string>([dir]);
  const mkdirOnce = (d: string): void => {
    if (made.has(d)) return;
    mkdirSync(d, { recursive: true, mode: 0o700 });
    made.add(d);
  };
  const behind = new WriteBehind();
  let open: UnpackedFile | undefined;
  const reader = new TarStreamReader((e) => {
    const rel = safeRelPath(e.path);
    const target = join(dir, rel);
    if (e.type === "dir") {
      mkdirOnce(target);
      return undefined;
    }
    if (e.type !== "file") throw exitErrors.make("EXIT_BUNDLE_INVALID", `${rel}: a ${e.type} in the bundle archive`);
    mkdirOnce(dirname(target));
    const file = new UnpackedFile(target, behind);
    open = file;
    const h = createHash("sha256");
    let bytes = 0;
    return {
      data: (chunk) => {
        h.update(chunk);
        bytes += chunk.length;
        file.write(chunk);
      },
      end: () => {
        open = undefined;
        file.close();
        digests.set(rel, { sha256: h.digest("hex"), bytes });
      },
    };
  });
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      reader.write(chunk);
      await behind.room();
    }
    if (!res.complete) throw new Error("the connection closed before the end of the answer");
    reader.end();
    await behind.drain();
  } catch (e) {
    open?.abort();
    await behind.drain().catch(() => undefined);
    if (isNexusError(e, "EXIT_BUNDLE_INVALID")) throw e;
    if (isNexusError(e)) throw exitErrors.make("EXIT_BUNDLE_INVALID", `the download: ${e.message}`);
    if (e instanceof Error && "syscall" in e && (e as { syscall?: string }).syscall !== "read") throw e; // writing into --out failed: the file system's own error
    throw clientErrors.make("CLIENT_BAD_RESPONSE", `bundle download cut short: ${e instanceof Error ? e.message : String(e)}`);
  }
  return digests;
}

function printReport(r: BundleReport, json: boolean | undefined, dir: string): void {
  emit(r, json, (v) => {
    const counts = Object.entries(v.checked).map(([k, n]) => `${n} ${k}`).join(", ");
    const key = v.verifierKeySource === "bundle" ? " (platform key taken from the bundle: pin it with --verifier-key)" : "";
    if (v.ok) return `${dir}: the exit bundle of ${v.imvu ?? "?"} verifies: ${counts}${key}`;
    return [`${dir}: the exit bundle does NOT verify (${v.problems.length} problems)${key}:`, ...v.problems.map((p) => `  ${p}`)].join("\n");
  });
}

async function exitCmd(f: ExitFlags): Promise<void> {
  const out = resolve(f.out);
  if (existsSync(out) && readdirSync(out).length > 0) throw exitErrors.make("EXIT_OUT_NOT_EMPTY", out);
  const passphrase = await readPassphrase(f.passphraseFile);
  await ensureRegistered(f);
  const api = apiBase(clientOpts(f));
  const before = lastSeen(api);
  const receipt = await submitDraft({ type: "imvu.exit.request", imvu: f.imvu, body: {} }, clientOpts(f));
  if (!f.json) printReceipt(`exit request of ${f.imvu}`, receipt, false);
  const afterRequest = lastSeen(api);
  const seen = [before, afterRequest].filter((s): s is { size: string; root: string } => s !== undefined && s.size !== "0");
  const me = localIdentity(clientOpts(f));
  mkdirSync(out, { recursive: true, mode: 0o700 });
  let digests: KnownDigests;
  try {
    digests = await downloadInto(f, JSON.stringify({ passphrase, ownerKel: me.kel, seen: [...new Set(seen.map((s) => s.size))] }), out);
  } catch (e) {
    // --out was empty: leave it so again, for the retry.
    for (const name of readdirSync(out)) rmSync(join(out, name), { recursive: true, force: true });
    throw e;
  }
  const report = verifyBundle(out, { verifierKey: await trustedVerifierKey(api), ownerSigned: false, digests });
  const problems = [...report.problems];
  // The bundle's checkpoint must extend what this CLI saw (and is remembered as seen).
  await observeCheckpoint(api, readFileSync(join(out, PATHS.checkpoint), "utf8"));
  const proofs = JSON.parse(readFileSync(join(out, PATHS.consistency), "utf8")) as { fromSize: string; fromRoot: string }[];
  for (const s of seen) {
    if (!proofs.some((p) => p.fromSize === s.size && p.fromRoot === s.root)) problems.push(`${PATHS.consistency}: no proof from the checkpoint this CLI saw (tree size ${s.size})`);
  }
  if (problems.length > 0) {
    printReport({ ...report, ok: false, problems }, f.json, out);
    process.exitCode = 1;
    return;
  }
  const env = parseDsse(readFileSync(join(out, MANIFEST_FILE), "utf8"), { payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
  writeFileSync(join(out, MANIFEST_FILE), `${JSON.stringify(countersign(env, me.id, me.current.privateKey), null, 2)}\n`, { mode: 0o600 });
  // The files were verified above; the countersignature changed manifest.json only.
  const signed = verifySignaturesOnly(out, { verifierKey: await trustedVerifierKey(api) });
  const final = { ...report, checked: { ...report.checked, signatures: (report.checked.signatures ?? 1) + 1 }, ok: signed.length === 0, problems: signed };
  printReport(final, f.json, out);
  if (!final.ok) process.exitCode = 1;
  else if (!f.json) process.stdout.write(`countersigned by ${me.id}; the platform keeps serving ${f.imvu} until \`nexus imvu depart ${f.imvu}\` or the grace period ends\n`);
}

/** What an earlier run of the same import left (GET /v1/imvus/:name, the owner's view). */
interface ExistingImvu {
  readonly importedFrom?: { readonly manifest: string };
}

interface ImportFlags extends ApiFlags {
  readonly name?: string;
  readonly passphraseFile?: string;
  readonly verifierKey?: string;
}

async function submitOk(what: string, draft: Parameters<typeof submitDraft>[0], f: ImportFlags): Promise<void> {
  const r = await submitDraft(draft, clientOpts(f));
  if (!f.json) printReceipt(what, r, false);
}

async function importCmd(dirArg: string, f: ImportFlags): Promise<void> {
  const dir = resolve(dirArg);
  const report = verifyBundle(dir, { verifierKey: f.verifierKey });
  if (!report.ok) {
    printReport(report, f.json, dir);
    throw exitErrors.make("EXIT_BUNDLE_INVALID", `${report.problems.length} problems; nothing imported`);
  }
  const { manifest } = readManifest(dir);
  const me = localIdentity(clientOpts(f));
  if (me.id !== manifest.owner) throw commonErrors.make("INPUT_INVALID", `the bundle is ${manifest.owner}'s; import it with that identity's keyring (--as)`, { field: "as" });
  let verifiers: Record<string, string> = {};
  if (manifest.inventory.mailboxes.length > 0) {
    const d = new Decrypter();
    d.addPassphrase(await readPassphrase(f.passphraseFile));
    const secrets = JSON.parse(await d.decrypt(readFileSync(join(dir, PATHS.secrets)), "text")) as { passwords: Record<string, string> };
    verifiers = secrets.passwords;
  }
  await ensureRegistered(f);
  const platform = await apiGetPublic<{ baseDomain: string }>("/v1/platform", clientOpts(f));
  const plan = importPlan(dir, { name: f.name ?? manifest.imvu, baseDomain: platform.baseDomain, verifiers });
  // Each step first reads whether an earlier run of the same import did it: running the command
  // again after a failure part-way completes the import (docs/exit.md, "Import").
  const opts = clientOpts(f);
  const said = (what: string): void => void (f.json ? undefined : process.stdout.write(`${what}: done by an earlier run of this import\n`));
  const existing = await apiGet<ExistingImvu>(`/v1/imvus/${plan.imvu}`, opts).catch((e: unknown) => {
    if (isNexusError(e, "NOT_FOUND")) return undefined;
    throw e;
  });
  const digest = String(plan.record.body.manifest);
  if (existing?.importedFrom !== undefined && existing.importedFrom.manifest !== digest) {
    throw commonErrors.make("INPUT_INVALID", `${plan.imvu} was imported here from another bundle (manifest ${existing.importedFrom.manifest}); import this one under another --name`, { field: "name" });
  }
  if (existing !== undefined && existing.importedFrom === undefined) {
    // Not taken for a half-done import: an IMVU of one's own must not become an import's target.
    throw commonErrors.make("INPUT_INVALID", `you already have an IMVU ${plan.imvu} that was not imported; import under another --name (or, if an import stopped between its two first commands, remove it with imvu exit and imvu depart)`, { field: "name" });
  }
  if (existing === undefined) {
    await submitOk(`imvu ${plan.imvu}`, plan.create, f);
    await submitOk(`import of ${manifest.imvu} (origin tree size ${manifest.checkpoint.size})`, plan.record, f);
  } else said(`imvu ${plan.imvu} and the record of its import`);
  // Setting an RRset is idempotent: set again, they are the bundle's whatever an earlier run did.
  for (const d of plan.rrsets) await submitOk(`${String(d.body.name)} ${String(d.body.type)}`, d, f);
  const boxes = new Map((await apiGet<{ mailboxes: { address: string; verifierStored?: boolean }[] }>(`/v1/mail/mailboxes?imvu=${plan.imvu}`, opts)).mailboxes.map((b) => [b.address.toLowerCase(), b]));
  const imported: { address: string; messages: number }[] = [];
  for (const m of plan.mailboxes) {
    const box = boxes.get(m.address.toLowerCase());
    if (box === undefined) await submitOk(`mailbox ${m.address}`, m.draft, f);
    else said(`mailbox ${m.address}`);
    const v = await fetch(`${apiBase(opts)}/v1/mail/verifiers`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imvu: plan.imvu, address: m.address, verifier: m.verifier }),
    });
    if (v.status !== 200) throw clientErrors.make("CLIENT_BAD_RESPONSE", `verifier of ${m.address}: HTTP ${v.status} ${await v.text()}`);
    const tar = join(tmpdir(), `nexus-import-${process.pid}-${imported.length}.tar`);
    try {
      writeTarSync(join(dir, m.maildir), tar, { durable: false });
      const r = await signedPost(f, `/v1/imvus/${plan.imvu}/import/maildir?address=${encodeURIComponent(m.address)}`, "application/x-tar", readFileSync(tar));
      const body = (await r.json()) as { messages?: number; present?: number };
      if (r.status !== 200) throw clientErrors.make("CLIENT_BAD_RESPONSE", `Maildir of ${m.address}: HTTP ${r.status} ${JSON.stringify(body)}`);
      imported.push({ address: m.address, messages: (body.messages ?? 0) + (body.present ?? 0) });
    } finally {
      rmSync(tar, { force: true });
    }
  }
  const skipped = [...plan.skipped];
  const compute = await apiGetPublic<{ running: boolean; available: boolean; degraded?: string }>("/v1/compute/status", clientOpts(f));
  const workloads: string[] = [];
  let volumeEntries: number | undefined;
  if (!compute.running || !compute.available) {
    if (plan.volume) skipped.push(`the volume: compute does not run on this installation${compute.degraded ? ` (${compute.degraded})` : ""}`);
    for (const w of plan.workloads) skipped.push(`workload ${w.name}: compute does not run on this installation`);
  } else {
    const declared = new Map((await apiGet<{ workloads: { name: string; state: string }[] }>(`/v1/compute/imvus/${plan.imvu}/workloads`, opts)).workloads.map((w) => [w.name, w]));
    // The volume is restored before any workload (the route refuses it after): once one exists, an earlier run restored it.
    if (plan.volume && declared.size > 0) said("the volume");
    else if (plan.volume) {
      const r = (await putTar(`/v1/compute/imvus/${plan.imvu}/volume/${plan.volume.sha256}`, join(dir, plan.volume.file), f)) as { entries?: number };
      volumeEntries = r.entries ?? 0;
      if (!f.json) process.stdout.write(`volume: ${volumeEntries} entries restored from ${plan.volume.file}\n`);
    }
    for (const w of plan.workloads) {
      const had = declared.get(w.name);
      if (had === undefined) {
        if (w.source) await putTar(`/v1/compute/imvus/${plan.imvu}/sources/${w.source.sha256}`, join(dir, w.source.file), f);
        await submitOk(`workload ${w.name}`, w.deploy, f);
      } else said(`workload ${w.name}`);
      if (w.stop && had?.state !== "stopped") await submitOk(`stop ${w.name} (stopped at the origin)`, w.stop, f);
      workloads.push(w.name);
    }
  }
  let routes = 0;
  const made = new Map((await apiGet<{ routes: { route: string; grants: string[] }[] }>(`/v1/imvus/${plan.imvu}/routes`, opts)).routes.map((r) => [r.route, r]));
  for (const r of plan.routes) {
    if (!workloads.includes(String((r.body.upstream as { workload: string }).workload))) {
      skipped.push(`route ${String(r.body.route)}: its workload is not re-created`);
      continue;
    }
    if (made.has(String(r.body.route))) said(`route ${String(r.body.host)}${String(r.body.pathPrefix)}`);
    else await submitOk(`route ${String(r.body.host)}${String(r.body.pathPrefix)}`, r, f);
    routes++;
  }
  for (const g of plan.grants) {
    if (made.get(String(g.body.route))?.grants.includes(String(g.body.identity)) === true) {
      said(`grant on ${String(g.body.route)} to ${String(g.body.identity)}`);
      continue;
    }
    try {
      await submitOk(`grant on ${String(g.body.route)} to ${String(g.body.identity)}`, g, f);
    } catch (e) {
      if (!isNexusError(e, "GATE_DENIED")) throw e;
      skipped.push(`grant on ${String(g.body.route)} to ${String(g.body.identity)}: ${e.message} (the identity registers here first, then \`nexus net grant add\`)`);
    }
  }
  emit({ imvu: plan.imvu, rrsets: plan.rrsets.length, mailboxes: imported, volumeEntries: volumeEntries ?? null, workloads, routes, skipped }, f.json, (v) =>
    [
      `imported ${manifest.imvu} as ${v.imvu}: ${v.rrsets} RRsets, ${v.mailboxes.map((m) => `${m.address} (${m.messages} messages)`).join(", ") || "no mailboxes"}, ` +
        `${v.volumeEntries === null ? "no volume" : `volume (${v.volumeEntries} entries)`}, workloads ${v.workloads.join(", ") || "none"}, ${v.routes} routes`,
      ...v.skipped.map((s) => `not imported: ${s}`),
    ].join("\n"),
  );
}

/** Adds `exit`, `verify-export` and `import` to the existing `imvu` command. */
export function register(program: Command): void {
  const imvu = program.commands.find((c) => c.name() === "imvu");
  if (!imvu) throw new Error("invariant: `imvu` is registered before its exit verbs");
  apiFlags(imvu.command("exit"))
    .description("exit: record the exit request, download the bundle into --out, verify it and countersign its manifest")
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--out <dir>", "directory to write the bundle into (new or empty)")
    .option("--passphrase-file <file>", "passphrase the secrets are encrypted to (default: stdin, or a prompt)")
    .action(action(exitCmd));
  imvu
    .command("verify-export")
    .argument("<dir>", "an exit bundle")
    .description("offline: check every digest, signature, proof and statement of an exit bundle (exit 0 valid, 1 with what is missing or altered)")
    .option("--verifier-key <vkey>", "the platform's checkpoint verifier key (default: $NEXUS_VERIFIER_KEY, else the one in the bundle)")
    .option("--json", "print JSON")
    .action(
      action((dir: string, f: { verifierKey?: string; json?: boolean }) => {
        const r = verifyBundle(resolve(dir), { verifierKey: f.verifierKey ?? process.env.NEXUS_VERIFIER_KEY });
        printReport(r, f.json, dir);
        if (!r.ok) process.exitCode = 1;
      }),
    );
  apiFlags(imvu.command("import").argument("<dir>", "a verified exit bundle"))
    .description("re-create an exited IMVU here from its bundle (signed commands; the ledger records the origin's checkpoint)")
    .option("--name <label>", "the IMVU's name here (default: its name at the origin)")
    .option("--passphrase-file <file>", "passphrase of the bundle's secrets (default: stdin, or a prompt)")
    .option("--verifier-key <vkey>", "the origin platform's checkpoint verifier key (default: the one in the bundle; NEXUS_VERIFIER_KEY pins this installation's)")
    .action(action(importCmd));
}
