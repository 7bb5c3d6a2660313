/**
 * `nexus ledger ...`: read, prove and verify the ledger, either on the local data directory
 * ($NEXUS_HOME, default ./.nexus; PostgreSQL when NEXUS_DATABASE_URL is set) or against a running
 * API (`--api URL`), where every answer is verified here against the signed checkpoint.
 * Exit codes: 0 ok, 1 a check failed, 2 bad input (3 the API or database is unreachable).
 */
import type { Command } from "commander";
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { commonErrors } from "../../core/common-errors.ts";
import { fromBase64, toBase64, toHex } from "../../core/crypto/bytes.ts";
import { type Ed25519KeyPair, ed25519FromSeed, ed25519Seed, generateEd25519, SEED_BYTES } from "../../core/crypto/ed25519.ts";
import { Ledger } from "../../core/ledger/ledger.ts";
import { LEDGER_MIGRATIONS } from "../../core/ledger/ledger-schema.ts";
import { verifyLedgerStorage, type VerifyReport } from "../../core/ledger/ledger-verify.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../../core/ledger/merkle.ts";
import { type Checkpoint, noteSignerFromEd25519, openNote, parseCheckpoint, parseVerifierKey, verifierKey } from "../../core/ledger/note.ts";
import { readProjection } from "../../core/pipeline/pipeline.ts";
import { diffStates, ledgerEntries, replay } from "../../core/pipeline/replay.ts";
import { identityVerifiers } from "../../platform/verifiers.ts";
import { openStore } from "../../store/index.ts";
import type { Store } from "../../store/types.ts";
import { RemoteLedger, type RemoteVerifyReport } from "../ledger-remote.ts";
import { action, emit } from "../output.ts";

/** The log's origin unless NEXUS_LEDGER_ORIGIN says otherwise. */
export const DEFAULT_LEDGER_ORIGIN = "nexus.local/ledger";
/** The platform key's file in the data directory (until the platform identity owns it). */
export const PLATFORM_KEY_FILE = "platform.key";
const KEY_PREFIX = "ed25519-seed:";
const DECIMAL_RE = /^(0|[1-9][0-9]{0,18})$/;
const INDEX_MAX = (1n << 63n) - 1n;

interface Common {
  readonly json?: boolean;
  readonly api?: string;
  readonly verifierKey?: string;
}

/** The data directory: $NEXUS_HOME or ./.nexus. */
export function dataDir(): string {
  return resolve(process.env.NEXUS_HOME || ".nexus");
}

/** The ledger origin: $NEXUS_LEDGER_ORIGIN or nexus.local/ledger. */
export function ledgerOrigin(): string {
  return process.env.NEXUS_LEDGER_ORIGIN || DEFAULT_LEDGER_ORIGIN;
}

/** Parses a decimal index or size flag (bad input, exit 2, when malformed). */
export function parseIndex(s: unknown, flag: string): bigint {
  if (typeof s !== "string" || !DECIMAL_RE.test(s) || BigInt(s) > INDEX_MAX) {
    throw commonErrors.make("INPUT_INVALID", `${flag} must be a decimal integer from 0 to 2^63-1`, { field: flag });
  }
  return BigInt(s);
}

/**
 * Loads the platform key from `<dir>/platform.key` ("ed25519-seed:<base64>", mode 0600), creating
 * it when `create` and absent. A key file readable by others is refused, like ssh does.
 */
export function loadPlatformKey(dir: string, create: boolean): Ed25519KeyPair | undefined {
  const path = join(dir, PLATFORM_KEY_FILE);
  if (!existsSync(path)) {
    if (!create) return undefined;
    const kp = generateEd25519();
    const fd = openSync(path, "wx", 0o600);
    try {
      writeSync(fd, `${KEY_PREFIX}${toBase64(ed25519Seed(kp.privateKey))}\n`);
    } finally {
      closeSync(fd);
    }
    return kp;
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    throw commonErrors.make("INPUT_INVALID", `${path} must not be readable by group or others (chmod 600)`, { field: "platform.key" });
  }
  const text = readFileSync(path, "utf8").trim();
  const seed = text.startsWith(KEY_PREFIX) ? fromBase64(text.slice(KEY_PREFIX.length)) : undefined;
  if (seed?.length !== SEED_BYTES) throw commonErrors.make("INPUT_INVALID", `${path} is not an Ed25519 seed file`, { field: "platform.key" });
  return ed25519FromSeed(seed);
}

function localDir(): string {
  const dir = dataDir();
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw commonErrors.make("INPUT_INVALID", `no data directory at ${dir} (set NEXUS_HOME)`, { field: "NEXUS_HOME" });
  }
  return dir;
}

/**
 * Opens the local store and ledger, runs `fn`, and closes them. With `createKey: false` a data
 * directory without platform.key is refused (INPUT_INVALID) instead of given one.
 */
export async function withLocal<T>(fn: (ledger: Ledger, store: Store, vkey: string) => Promise<T>, opts: { createKey?: boolean } = {}): Promise<T> {
  const dir = localDir();
  const key = loadPlatformKey(dir, opts.createKey ?? true);
  if (key === undefined) throw commonErrors.make("INPUT_INVALID", `${dir} holds no platform.key: not an installation`, { field: "NEXUS_HOME" });
  const origin = ledgerOrigin();
  const vkey = verifierKey(origin, key.publicKey);
  const store = await openStore({ url: process.env.NEXUS_DATABASE_URL, dataDir: dir });
  try {
    const ledger = await Ledger.open(store, { origin, signer: noteSignerFromEd25519(origin, key.privateKey, key.publicKey), verifierKey: vkey });
    try {
      return await fn(ledger, store, vkey);
    } finally {
      await ledger.close();
    }
  } finally {
    await store.close();
  }
}

/** The verifier key for --api: --verifier-key, else the local platform key's (never created here). */
function remote(opts: Common): RemoteLedger {
  if (opts.api === undefined) throw new Error("remote() without --api");
  let vkey = opts.verifierKey;
  if (vkey === undefined) {
    const dir = dataDir();
    const key = existsSync(dir) ? loadPlatformKey(dir, false) : undefined;
    if (key === undefined) {
      throw commonErrors.make("INPUT_INVALID", "--api needs --verifier-key (or a local platform.key to derive it)", { field: "verifier-key" });
    }
    vkey = verifierKey(ledgerOrigin(), key.publicKey);
  }
  parseVerifierKey(vkey); // a malformed key is bad input (exit 2), found before any request
  return new RemoteLedger(opts.api, vkey);
}

const hex = (b: Uint8Array): string => toHex(b);

function checkpointJson(c: Checkpoint, note: string, vkey?: string): Record<string, unknown> {
  return { origin: c.origin, size: c.size, rootHash: hex(c.root), note, ...(vkey === undefined ? {} : { verifierKey: vkey }) };
}

function entryText(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function checkpointCmd(opts: Common): Promise<void> {
  const out = opts.api
    ? await (async () => {
        const r = await remote(opts).checkpoint();
        return checkpointJson(r.checkpoint, r.note);
      })()
    : await withLocal(async (ledger, _s, vkey) => {
        const cp = await ledger.checkpoint();
        parseCheckpoint(openNote(cp.note, [vkey]).text);
        return checkpointJson(cp.checkpoint, cp.note, vkey);
      });
  emit(out, opts.json, (o) => String(o.note).trimEnd());
}

async function entryCmd(indexArg: string, opts: Common): Promise<void> {
  const index = parseIndex(indexArg, "index");
  let out: Record<string, unknown>;
  if (opts.api) {
    const client = remote(opts);
    const signed = (await client.checkpoint()).checkpoint;
    const p = await client.proveInclusion(index, undefined, signed);
    out = { index, leafHash: hex(p.leafHash), entry: toBase64(p.entry), text: entryText(p.entry), verified: p.verified, size: p.size };
  } else {
    out = await withLocal(async (ledger) => {
      const bytes = await ledger.entry(index);
      return { index, leafHash: hex(leafHash(bytes)), entry: toBase64(bytes), text: entryText(bytes) };
    });
  }
  emit(out, opts.json, (o) => `entry ${o.index}\nleaf hash ${o.leafHash}\n${String(o.text ?? `base64 ${String(o.entry)}`)}`);
  if (out.verified === false) process.exitCode = 1;
}

interface ProveOpts extends Common {
  readonly index: string;
  readonly size?: string;
}

async function proveCmd(opts: ProveOpts): Promise<void> {
  const index = parseIndex(opts.index, "--index");
  const size = opts.size === undefined ? undefined : parseIndex(opts.size, "--size");
  const r = opts.api
    ? await (async () => {
        const client = remote(opts);
        return client.proveInclusion(index, size, (await client.checkpoint()).checkpoint);
      })()
    : await withLocal(async (ledger) => {
        const s = size ?? ledger.size;
        const proof = await ledger.inclusionProof(index, s);
        const leaf = leafHash(await ledger.entry(index));
        const root = await ledger.rootAt(s);
        return { index, size: s, leafHash: leaf, rootHash: root, proof, verified: verifyInclusion(leaf, index, s, proof, root) };
      });
  const out = { index: r.index, size: r.size, leafHash: hex(r.leafHash), rootHash: hex(r.rootHash), proof: r.proof.map(hex), verified: r.verified };
  emit(out, opts.json, (o) =>
    [`entry ${o.index} in the tree of size ${o.size}`, `leaf hash ${o.leafHash}`, `root ${o.rootHash}`, `proof (${o.proof.length} hashes):`, ...o.proof.map((h) => `  ${h}`), o.verified ? "verified" : "NOT VERIFIED"].join("\n"),
  );
  if (!r.verified) process.exitCode = 1;
}

interface ConsistencyOpts extends Common {
  readonly from: string;
  readonly to?: string;
}

async function proveConsistencyCmd(opts: ConsistencyOpts): Promise<void> {
  const from = parseIndex(opts.from, "--from");
  const to = opts.to === undefined ? undefined : parseIndex(opts.to, "--to");
  const r = opts.api
    ? await (async () => {
        const client = remote(opts);
        return client.proveConsistency(from, to, (await client.checkpoint()).checkpoint);
      })()
    : await withLocal(async (ledger) => {
        const t = to ?? ledger.size;
        const proof = await ledger.consistencyProof(from, t);
        const [fromRoot, toRoot] = [await ledger.rootAt(from), await ledger.rootAt(t)];
        return { from, to: t, fromRoot, toRoot, proof, verified: verifyConsistency(from, t, fromRoot, toRoot, proof) };
      });
  const out = { from: r.from, to: r.to, fromRoot: hex(r.fromRoot), toRoot: hex(r.toRoot), proof: r.proof.map(hex), verified: r.verified };
  emit(out, opts.json, (o) =>
    [`tree ${o.from} → tree ${o.to}`, `old root ${o.fromRoot}`, `new root ${o.toRoot}`, `proof (${o.proof.length} hashes):`, ...o.proof.map((h) => `  ${h}`), o.verified ? "verified" : "NOT VERIFIED"].join("\n"),
  );
  if (!r.verified) process.exitCode = 1;
}

async function verifyLocal(): Promise<VerifyReport> {
  const dir = localDir();
  const key = loadPlatformKey(dir, true) as Ed25519KeyPair;
  const origin = ledgerOrigin();
  const vkey = verifierKey(origin, key.publicKey);
  const store = await openStore({ url: process.env.NEXUS_DATABASE_URL, dataDir: dir });
  try {
    await store.migrate("ledger", LEDGER_MIGRATIONS);
    return await verifyLedgerStorage(store, {
      checkNote: (note) => {
        try {
          const checkpoint = parseCheckpoint(openNote(note, [vkey]).text);
          return checkpoint.origin === origin ? { ok: true, checkpoint } : { ok: false, problem: `origin ${checkpoint.origin}` };
        } catch (e) {
          return { ok: false, problem: e instanceof Error ? e.message : String(e) };
        }
      },
    });
  } finally {
    await store.close();
  }
}

async function verifyCmd(opts: Common): Promise<void> {
  let report: VerifyReport | RemoteVerifyReport;
  if (opts.api) {
    const client = remote(opts);
    report = await client.verifyAll((await client.checkpoint()).checkpoint);
  } else {
    report = await verifyLocal();
  }
  emit(report, opts.json, (r) =>
    r.ok
      ? `ok: ${r.entriesChecked} entries and the tree of size ${r.size} verified`
      : `FAILED${r.firstBadIndex === undefined ? "" : ` at entry ${r.firstBadIndex}`}: ${r.problem ?? "unknown problem"}`,
  );
  if (!report.ok) process.exitCode = 1;
}

interface ReplayOpts {
  readonly json?: boolean;
  readonly verify?: boolean;
}

/**
 * `ledger replay [--verify]`: rebuilds the projection from the ledger alone into a fresh state,
 * re-checking every entry (signature, nonce, time window, gates); with --verify, compares its
 * digest with the stored projection's and names every row that differs. Exit 1 on any mismatch.
 */
async function replayCmd(opts: ReplayOpts): Promise<void> {
  const out = await withLocal(async (ledger, store) => {
    const report = await replay(ledgerEntries(ledger), identityVerifiers);
    const base = { size: report.size, digest: report.digest, mismatches: report.mismatches };
    if (!opts.verify) return { ...base, ok: report.mismatches.length === 0 };
    const stored = await readProjection(store);
    const storedDigest = stored.digest();
    const rows = storedDigest === report.digest ? [] : diffStates(report.state, stored);
    return { ...base, storedDigest, rows, ok: report.mismatches.length === 0 && storedDigest === report.digest };
  });
  emit(out, opts.json, (o) => {
    const lines = [`replayed ${o.size} entries: state digest ${o.digest}`];
    for (const m of o.mismatches) lines.push(`MISMATCH at entry ${m.index}: ${m.problem}`);
    if ("storedDigest" in o) {
      lines.push(o.storedDigest === o.digest ? "the stored projection has the same digest" : `STORED PROJECTION DIFFERS: digest ${o.storedDigest}`);
      for (const r of o.rows) lines.push(`  ${r.kind} ${r.table} ${r.key}`);
    }
    lines.push(o.ok ? "ok" : "FAILED");
    return lines.join("\n");
  });
  if (!out.ok) process.exitCode = 1;
}

function common(cmd: Command): Command {
  return cmd
    .option("--json", "print JSON")
    .option("--api <url>", "ask a running API (verifying its answers here) instead of the local data directory")
    .option("--verifier-key <vkey>", "with --api: the platform's note verifier key (name+hash+base64); default: the local platform.key's");
}

/** Adds the `ledger` group to the program. */
export function register(program: Command): void {
  const ledger = program.command("ledger").description("read, prove and verify the ledger (local data directory, or --api URL)");
  common(ledger.command("checkpoint").description("print the latest signed checkpoint (C2SP signed note)")).action(action(checkpointCmd));
  common(ledger.command("entry").description("print entry N").argument("<N>", "entry index")).action(action(entryCmd));
  common(
    ledger
      .command("prove")
      .description("inclusion proof of entry --index in the tree of --size (default: current), verified here")
      .requiredOption("--index <N>", "entry index")
      .option("--size <S>", "tree size"),
  ).action(action(proveCmd));
  common(
    ledger
      .command("prove-consistency")
      .description("consistency proof from the tree of --from to the tree of --to (default: current), verified here")
      .requiredOption("--from <S1>", "older tree size")
      .option("--to <S2>", "newer tree size"),
  ).action(action(proveConsistencyCmd));
  common(
    ledger.command("verify").description("recompute every leaf and the tree, check every checkpoint; name the first bad entry"),
  ).action(action(verifyCmd));
  ledger
    .command("replay")
    .description("rebuild the projection from the ledger alone (re-checking every entry); --verify compares it with the stored one")
    .option("--verify", "compare the rebuilt state's digest with the stored projection's and name the rows that differ")
    .option("--json", "print JSON")
    .action(action(replayCmd));
}
