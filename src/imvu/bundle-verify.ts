/**
 * Offline verification of an exit bundle (docs/exit.md, "Verifying"): no server, no trust in the
 * platform beyond its checkpoint verifier key (pinned by the caller, else the one the bundle
 * names, reported as such). `verifyBundle` reads as a list of checks; each problem names the file
 * or the entry it is about, and every check runs, so one report lists everything missing or altered.
 */
import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { canonicalize, fromBase64, fromHex, parseDsse, parseJsonStrict, verifyDsse, type DsseEnvelope } from "../core/crypto/index.ts";
import { buildZone } from "../core/dns/zone.ts";
import { verifyKel, type IdentityState } from "../core/identity/index.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../core/ledger/merkle.ts";
import { openNote, parseCheckpoint } from "../core/ledger/note.ts";
import { verifyProvenStatement } from "../core/handshake/proven-statement.ts";
import { decodeCommand } from "../core/pipeline/authenticate.ts";
import { parseEntry } from "../core/pipeline/pipeline.ts";
import { readTarSync } from "../services/compute/tar.ts";
import { parseZoneFile } from "../services/dns/zonefile.ts";
import {
  BUNDLE_JSON_BYTES_MAX, ConsistencyFileSchema, EntriesFileSchema, EXIT_MANIFEST_BYTES_MAX, EXIT_MANIFEST_PAYLOAD_TYPE, ExitManifestSchema, MANIFEST_FILE, PATHS, type ExitManifest,
} from "./bundle-layout.ts";
import { hashFile, listFiles } from "./bundle-writer.ts";
import { countMbox, maildirFolders } from "./mbox.ts";

/** What the verification found. */
export interface BundleReport {
  readonly ok: boolean;
  readonly imvu?: string;
  /** Where the checkpoint verifier key came from. */
  readonly verifierKeySource: "given" | "bundle";
  readonly problems: readonly string[];
  /** What was checked, for the report. */
  readonly checked: Readonly<Record<string, number>>;
}

interface Ctx {
  readonly dir: string;
  readonly m: ExitManifest;
  readonly vkey: string;
  readonly problems: string[];
  readonly checked: Record<string, number>;
  /** Paths whose digest matched the manifest. */
  readonly intact: Set<string>;
  root?: Uint8Array;
}

function readJson(dir: string, rel: string): unknown {
  const p = join(dir, rel);
  if (statSync(p).size > BUNDLE_JSON_BYTES_MAX) throw new RangeError(`${rel}: larger than ${BUNDLE_JSON_BYTES_MAX} bytes`);
  return parseJsonStrict(readFileSync(p, "utf8"), { charsMax: BUNDLE_JSON_BYTES_MAX });
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Verifies the bundle in `dir`; `verifierKey` pins the platform's checkpoint key. */
/** Digests already taken of the bundle's files (the exit CLI hashes them as it unpacks the download). */
export type KnownDigests = ReadonlyMap<string, { readonly sha256: string; readonly bytes: number }>;

export function verifyBundle(dir: string, opts: { verifierKey?: string | undefined; ownerSigned?: boolean; digests?: KnownDigests } = {}): BundleReport {
  const source = opts.verifierKey === undefined ? "bundle" : "given";
  let env: DsseEnvelope;
  let m: ExitManifest;
  try {
    env = parseDsse(readFileSync(join(dir, MANIFEST_FILE), "utf8"), { payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
    const payload = fromBase64(env.payload) ?? new Uint8Array();
    const parsed = ExitManifestSchema.safeParse(parseJsonStrict(Buffer.from(payload).toString("utf8"), { charsMax: EXIT_MANIFEST_BYTES_MAX }));
    if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
    m = parsed.data;
  } catch (e) {
    return { ok: false, verifierKeySource: source, problems: [`${MANIFEST_FILE}: unreadable or not a signed exit manifest: ${errText(e)}`], checked: {} };
  }
  const ctx: Ctx = { dir, m, vkey: opts.verifierKey ?? m.platform.verifierKey, problems: [], checked: {}, intact: new Set() };
  checkFiles(ctx, opts.digests);
  checkSignatures(ctx, env, opts.ownerSigned ?? true);
  checkCheckpoint(ctx);
  checkEntries(ctx);
  checkConsistency(ctx);
  checkStatements(ctx);
  checkZones(ctx);
  checkMail(ctx);
  checkCompute(ctx);
  checkSecrets(ctx);
  return { ok: ctx.problems.length === 0, imvu: m.imvu, verifierKeySource: source, problems: ctx.problems, checked: ctx.checked };
}

/**
 * The manifest's signatures only (the platform's and the owner's countersignature), for a bundle
 * whose files `verifyBundle` has just checked: a countersignature touches manifest.json alone.
 */
export function verifySignaturesOnly(dir: string, opts: { verifierKey?: string | undefined } = {}): string[] {
  let env: DsseEnvelope;
  let m: ExitManifest;
  try {
    env = parseDsse(readFileSync(join(dir, MANIFEST_FILE), "utf8"), { payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
    m = ExitManifestSchema.parse(parseJsonStrict(Buffer.from(fromBase64(env.payload) ?? new Uint8Array()).toString("utf8"), { charsMax: EXIT_MANIFEST_BYTES_MAX }));
  } catch (e) {
    return [`${MANIFEST_FILE}: unreadable or not a signed exit manifest: ${errText(e)}`];
  }
  const ctx: Ctx = { dir, m, vkey: opts.verifierKey ?? m.platform.verifierKey, problems: [], checked: {}, intact: new Set() };
  checkSignatures(ctx, env, true);
  return ctx.problems;
}

/** Every listed file is present with its digest and size; nothing unlisted is present. */
function checkFiles(ctx: Ctx, known: KnownDigests | undefined): void {
  const listed = new Set<string>();
  for (const f of ctx.m.files) {
    listed.add(f.path);
    const p = join(ctx.dir, f.path);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st === undefined) {
      ctx.problems.push(`${f.path}: missing`);
      continue;
    }
    if (!st.isFile()) {
      ctx.problems.push(`${f.path}: not a regular file`);
      continue;
    }
    const bytes = st.size;
    const k = known?.get(f.path);
    const sha = k !== undefined && k.bytes === bytes ? k.sha256 : hashFile(p);
    if (sha !== f.sha256 || bytes !== f.bytes) ctx.problems.push(`${f.path}: altered (sha256 ${sha}, manifest says ${f.sha256})`);
    else ctx.intact.add(f.path);
  }
  for (const rel of listFiles(ctx.dir)) if (rel !== MANIFEST_FILE && !listed.has(rel)) ctx.problems.push(`${rel}: not in the manifest`);
  ctx.checked.files = ctx.m.files.length;
}

function kelOf(ctx: Ctx, rel: string, id: string, who: string): IdentityState | undefined {
  try {
    const s = verifyKel(readJson(ctx.dir, rel));
    if (s.id !== id) {
      ctx.problems.push(`${rel}: the key event log is of ${s.id}, not the ${who} ${id}`);
      return undefined;
    }
    return s;
  } catch (e) {
    ctx.problems.push(`${rel}: ${who} key event log does not verify: ${errText(e)}`);
    return undefined;
  }
}

function signedBy(env: DsseEnvelope, id: string, key: IdentityState): boolean {
  try {
    verifyDsse(env, new Map([[id, fromBase64(key.publicKey) ?? new Uint8Array()]]), { threshold: 1, acceptedTypes: [EXIT_MANIFEST_PAYLOAD_TYPE], payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
    return true;
  } catch {
    return false;
  }
}

/** The platform identity's signature and the owner's countersignature on the manifest. */
function checkSignatures(ctx: Ctx, env: DsseEnvelope, ownerSigned: boolean): void {
  const platform = kelOf(ctx, PATHS.platformKel, ctx.m.platform.platformId, "platform");
  if (platform && !signedBy(env, platform.id, platform)) ctx.problems.push(`${MANIFEST_FILE}: the platform's signature does not verify`);
  const owner = kelOf(ctx, PATHS.ownerKel, ctx.m.owner, "owner");
  if (owner && ownerSigned && !signedBy(env, owner.id, owner)) ctx.problems.push(`${MANIFEST_FILE}: the owner's countersignature is missing or does not verify`);
  ctx.checked.signatures = env.signatures.length;
}

function checkCheckpoint(ctx: Ctx): void {
  try {
    const cp = parseCheckpoint(openNote(readFileSync(join(ctx.dir, PATHS.checkpoint), "utf8"), [ctx.vkey]).text);
    if (cp.size.toString() !== ctx.m.checkpoint.size || Buffer.from(cp.root).toString("hex") !== ctx.m.checkpoint.root) {
      ctx.problems.push(`${PATHS.checkpoint}: size or root differs from the manifest's`);
    }
    ctx.root = cp.root;
  } catch (e) {
    ctx.problems.push(`${PATHS.checkpoint}: the signed checkpoint does not verify with the platform's key: ${errText(e)}`);
  }
}

/** Each entry's leaf hash, its inclusion proof, that it is about this IMVU, and that the list is the manifest's. */
function checkEntries(ctx: Ctx): void {
  let file;
  try {
    file = EntriesFileSchema.parse(readJson(ctx.dir, PATHS.entries));
  } catch (e) {
    ctx.problems.push(`${PATHS.entries}: unreadable: ${errText(e)}`);
    return;
  }
  const size = BigInt(ctx.m.checkpoint.size);
  const seen = new Set<string>();
  for (const e of file.entries) {
    seen.add(e.index);
    const bytes = fromBase64(e.entry) ?? new Uint8Array();
    const leaf = leafHash(bytes);
    if (Buffer.from(leaf).toString("hex") !== e.leafHash) ctx.problems.push(`ledger entry ${e.index}: the entry bytes do not hash to its leaf hash`);
    const proof = e.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array());
    if (ctx.root === undefined || !verifyInclusion(leaf, BigInt(e.index), size, proof, ctx.root)) ctx.problems.push(`ledger entry ${e.index}: inclusion proof does not lead to the signed checkpoint`);
    try {
      const entry = parseEntry(bytes);
      const d = decodeCommand(canonicalize(entry.envelope));
      if (!d.ok) throw new Error(d.error.code);
      const genesis = e.index === ctx.m.platform.genesisIndex && d.cmd.type === "platform.genesis" && d.cmd.actor === ctx.m.platform.platformId;
      if (!genesis && d.cmd.imvu !== ctx.m.imvu) ctx.problems.push(`ledger entry ${e.index}: a command about ${d.cmd.imvu ?? "no IMVU"}, not ${ctx.m.imvu}`);
      if (entry.index !== e.index) ctx.problems.push(`ledger entry ${e.index}: the entry says index ${entry.index}`);
    } catch (x) {
      ctx.problems.push(`ledger entry ${e.index}: not a ledger entry: ${errText(x)}`);
    }
  }
  const want = new Set(ctx.m.inventory.ledgerEntries);
  for (const i of want) if (!seen.has(i)) ctx.problems.push(`ledger entry ${i}: in the manifest, missing from ${PATHS.entries}`);
  for (const i of seen) if (!want.has(i)) ctx.problems.push(`ledger entry ${i}: in ${PATHS.entries}, not in the manifest`);
  if (!seen.has(ctx.m.exitRequestedIndex)) ctx.problems.push(`ledger entry ${ctx.m.exitRequestedIndex}: the exit request is not in the bundle`);
  if (!seen.has(ctx.m.platform.genesisIndex)) ctx.problems.push(`ledger entry ${ctx.m.platform.genesisIndex}: the genesis entry (the platform's key) is not in the bundle`);
  ctx.checked.entries = file.entries.length;
}

/** From each checkpoint the owner's CLI saw to the bundle's: the history the owner saw is a prefix of it. */
function checkConsistency(ctx: Ctx): void {
  let file;
  try {
    file = ConsistencyFileSchema.parse(readJson(ctx.dir, PATHS.consistency));
  } catch (e) {
    ctx.problems.push(`${PATHS.consistency}: unreadable: ${errText(e)}`);
    return;
  }
  for (const c of file) {
    const fromRoot = fromHex(c.fromRoot) ?? new Uint8Array();
    const proof = c.proof.map((h) => fromHex(h) ?? new Uint8Array());
    if (c.toSize !== ctx.m.checkpoint.size || ctx.root === undefined || !verifyConsistency(BigInt(c.fromSize), BigInt(c.toSize), fromRoot, ctx.root, proof)) {
      ctx.problems.push(`${PATHS.consistency}: the proof from tree size ${c.fromSize} to ${c.toSize} does not verify`);
    }
    if (c.fromCheckpoint !== undefined) {
      try {
        const cp = parseCheckpoint(openNote(c.fromCheckpoint, [ctx.vkey]).text);
        if (cp.size.toString() !== c.fromSize || Buffer.from(cp.root).toString("hex") !== c.fromRoot) ctx.problems.push(`${PATHS.consistency}: the checkpoint of size ${c.fromSize} is not the proof's start`);
      } catch (e) {
        ctx.problems.push(`${PATHS.consistency}: the checkpoint of size ${c.fromSize} does not verify: ${errText(e)}`);
      }
    }
  }
  const listed = ctx.m.inventory.consistency.map((c) => `${c.fromSize}>${c.toSize}`).sort().join(",");
  if (listed !== file.map((c) => `${c.fromSize}>${c.toSize}`).sort().join(",")) ctx.problems.push(`${PATHS.consistency}: the proofs are not the ones the manifest lists`);
  ctx.checked.consistencyProofs = file.length;
}

function checkStatements(ctx: Ctx): void {
  for (const s of ctx.m.inventory.statements) {
    try {
      const json = readJson(ctx.dir, s.file) as Record<string, unknown>;
      const r = verifyProvenStatement(json, ctx.vkey);
      for (const p of r.problems) ctx.problems.push(`${s.file}: ${p}`);
      const unit = (json.statement as { unit?: unknown } | undefined)?.unit;
      if (unit !== ctx.m.imvu) ctx.problems.push(`${s.file}: a statement of ${String(unit)}, not ${ctx.m.imvu}`);
      if (r.entries !== s.entries) ctx.problems.push(`${s.file}: ${r.entries} entries, the manifest says ${s.entries}`);
      if (json.treeSize !== ctx.m.checkpoint.size) ctx.problems.push(`${s.file}: proven to tree size ${String(json.treeSize)}, not the bundle's ${ctx.m.checkpoint.size}`);
    } catch (e) {
      ctx.problems.push(`${s.file}: unreadable: ${errText(e)}`);
    }
  }
  ctx.checked.statements = ctx.m.inventory.statements.length;
}

function checkZones(ctx: Ctx): void {
  for (const z of ctx.m.inventory.zones) {
    try {
      const zone = buildZone(parseZoneFile(readFileSync(join(ctx.dir, z.file), "utf8"), { origin: z.origin }).zone);
      if (zone.records.length + 1 !== z.records) ctx.problems.push(`${z.file}: ${zone.records.length + 1} records, the manifest says ${z.records}`);
    } catch (e) {
      ctx.problems.push(`${z.file}: does not parse as the zone ${z.origin}: ${errText(e)}`);
    }
  }
  ctx.checked.zones = ctx.m.inventory.zones.length;
}

function checkMail(ctx: Ctx): void {
  let messages = 0;
  for (const box of ctx.m.inventory.mailboxes) {
    const found = new Map(maildirFolders(join(ctx.dir, box.maildir)).map((f) => [f.name, f.messages.length]));
    for (const f of box.folders) {
      const n = found.get(f.name) ?? 0;
      if (n !== f.messages) ctx.problems.push(`${box.maildir}: folder ${f.name} holds ${n} messages, the manifest says ${f.messages}`);
      try {
        const inMbox = countMbox(readFileSync(join(ctx.dir, f.mbox), "latin1"));
        if (inMbox !== f.messages) ctx.problems.push(`${f.mbox}: ${inMbox} messages, the manifest says ${f.messages}`);
      } catch (e) {
        ctx.problems.push(`${f.mbox}: unreadable: ${errText(e)}`);
      }
      messages += n;
    }
  }
  ctx.checked.mailboxes = ctx.m.inventory.mailboxes.length;
  ctx.checked.messages = messages;
}

function checkCompute(ctx: Ctx): void {
  const tars = [...(ctx.m.inventory.volume ? [ctx.m.inventory.volume.file] : []), ...ctx.m.inventory.snapshots.map((s) => s.file), ...ctx.m.inventory.sources.map((s) => s.file)];
  for (const t of tars) {
    if (!ctx.intact.has(t)) continue; // already reported as missing or altered
    try {
      // Headers, paths and end marker; the data is skipped (its bytes are covered by the digest).
      readTarSync(join(ctx.dir, t), () => {});
    } catch (e) {
      ctx.problems.push(`${t}: not a readable tar archive: ${errText(e)}`);
    }
  }
  for (const s of [...ctx.m.inventory.snapshots, ...ctx.m.inventory.sources]) {
    const f = ctx.m.files.find((x) => x.path === s.file);
    if (f && f.sha256 !== s.sha256) ctx.problems.push(`${s.file}: the archive's content address is not its digest`);
  }
  ctx.checked.archives = tars.length;
}

function checkSecrets(ctx: Ctx): void {
  const p = join(ctx.dir, ctx.m.inventory.secrets.file);
  if (existsSync(p) && !readFileSync(p).subarray(0, 22).toString("latin1").startsWith("age-encryption.org/v1\n")) {
    ctx.problems.push(`${ctx.m.inventory.secrets.file}: not an age file`);
  }
}
