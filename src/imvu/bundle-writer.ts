/**
 * Writes an IMVU's exit bundle (gate 13) into a directory: everything the IMVU owns, in standard
 * formats, with the ledger entries about it and their proofs, and a manifest signed by the
 * platform identity (docs/exit.md). Reads the committed projection and the data directory only;
 * writes nothing but the bundle. The owner's countersignature is added by the owner's CLI.
 */
import { Encrypter } from "age-encryption";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { canonicalize, ed25519DsseSigner, signDsse, toHex, utf8 } from "../core/crypto/index.ts";
import { buildZone } from "../core/dns/zone.ts";
import { verifyKel, type LocalIdentity } from "../core/identity/index.ts";
import type { Ledger } from "../core/ledger/ledger.ts";
import { leafHash } from "../core/ledger/merkle.ts";
import type { ImvuRecord, StateReader } from "../core/pipeline/state.ts";
import { imvuZoneInput, platformDnsOf } from "../core/policy/dns-zones.ts";
import { computeEnvelope, workloadSpecOf } from "../services/compute/projection.ts";
import { manifestList, renderManifests } from "../services/compute/k8s.ts";
import { installationFabric, slug } from "../services/compute/names.ts";
import { sourceTarPath } from "../services/compute/sources.ts";
import { BufferRing, collectEntries, entryHeader, fileChunks, tarChunks, tarSize } from "../services/compute/tar.ts";
import { exportZone } from "../services/dns/zonefile.ts";
import { maildirPath, maildirRoot, MailSecretStore } from "../services/mail/directory.ts";
import {
  EXIT_FORMAT, EXIT_MANIFEST_PAYLOAD_TYPE, MANIFEST_FILE, PATHS, maildirBundlePath, mboxBundlePath, snapshotPath, sourcePath, statementPath, zonePath,
  type ExitManifest, type FileEntry,
} from "./bundle-layout.ts";
import { maildirFolders, mboxOf } from "./mbox.ts";
import { monthlyStatements } from "./statements.ts";

/** scrypt work factor of the secrets file (age's default is 18; 2^16 keeps a JS encrypt near a second). */
export const SECRETS_SCRYPT_LOG2_N = 16;

/** What the writer reads: a Platform satisfies it. */
export interface ExportSource {
  readonly state: StateReader;
  readonly ledger: Ledger;
  readonly home: string;
  readonly verifierKey: string;
  platformIdentity(): LocalIdentity;
}

/** What the owner's request adds. */
export interface ExportRequest {
  readonly imvu: string;
  /** The passphrase the secrets are encrypted to (age scrypt recipient). */
  readonly passphrase: string;
  /** The owner's key event log (verified here against the registered key state). */
  readonly ownerKel: readonly unknown[];
  /** Tree sizes of checkpoints the owner's CLI saw (consistency proofs to the bundle's). */
  readonly seenSizes: readonly bigint[];
  /** scrypt work factor override (tests). */
  readonly scryptLog2N?: number;
  /** The compute fabric whose volume and snapshots are exported (default: the installation's, installationFabric). */
  readonly fabric?: string;
  readonly now?: Date;
}

/** One file of the bundle: where it goes, its size, and its bytes on demand (read once, when sent or written). */
export interface BundlePart {
  readonly path: string;
  readonly bytes: number;
  /** The part's bytes; large data comes in the `ring`'s buffers when one is given (valid as BufferRing says). */
  chunks(ring?: BufferRing): Iterable<Buffer>;
}

/** A bundle ready to be written or streamed: its parts, then the manifest signed over their digests. */
export interface BundlePlan {
  /** Directories that exist even when empty (a Maildir's cur, new and tmp). */
  readonly dirs: readonly string[];
  readonly parts: readonly BundlePart[];
  /** When the bundle was made (the manifest's createdAt). */
  readonly createdAt: Date;
  /** The platform-signed manifest, once every part's digest is known (`files` in any order). */
  sign(files: readonly FileEntry[]): { manifest: ExitManifest; envelopeJson: string };
}

/** Collects the bundle's files as parts; nothing is read or copied until the plan is written or streamed. */
class BundleParts {
  readonly parts: BundlePart[] = [];
  readonly dirs: string[] = [];

  write(rel: string, data: Uint8Array | string): void {
    const bytes = typeof data === "string" ? utf8(data) : data;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.parts.push({ path: rel, bytes: buf.length, chunks: () => [buf] });
  }

  json(rel: string, value: unknown): void {
    this.write(rel, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** A file of the data directory, as it is when the part is read (its size is fixed now). */
  copy(src: string, rel: string): void {
    const size = statSync(src).size;
    this.parts.push({ path: rel, bytes: size, chunks: (ring) => fileChunks(src, size, ring) });
  }

  /** The deterministic tar of a directory (tar.ts), its entries listed now; returns their count. */
  tree(root: string, rel: string, exclude: (p: string) => boolean): number {
    const entries = collectEntries(root, { exclude });
    this.parts.push({ path: rel, bytes: tarSize(entries), chunks: (ring) => tarChunks(root, { entries, ...(ring ? { ring } : {}) }) });
    return entries.length;
  }
}

/** Bytes read per call when hashing a file. */
const HASH_CHUNK_BYTES = 1024 * 1024;

/** SHA-256 hex of a file, read in chunks (volumes and snapshots can be large). */
export function hashFile(path: string): string {
  const h = createHash("sha256");
  const buf = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const fd = openSync(path, "r");
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Passes a part's chunks on, hashing them; `done` gets its file entry (and checks its size held). */
function* hashed(part: BundlePart, done: (f: FileEntry) => void, ring?: BufferRing): Generator<Buffer> {
  const h = createHash("sha256");
  let n = 0;
  for (const c of part.chunks(ring)) {
    h.update(c);
    n += c.length;
    yield c;
  }
  if (n !== part.bytes) throw new Error(`invariant: ${part.path} gave ${n} bytes, ${part.bytes} were listed`);
  done({ path: part.path, sha256: h.digest("hex"), bytes: n });
}

/** Writes the bundle of `req.imvu` into the empty directory `dir`; returns the signed manifest envelope. */
export async function writeBundle(src: ExportSource, req: ExportRequest, dir: string): Promise<{ manifest: ExitManifest; envelopeJson: string }> {
  const plan = await planBundle(src, req);
  for (const d of plan.dirs) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  const files: FileEntry[] = [];
  const ring = new BufferRing(1); // each chunk is written before the next is read
  for (const part of plan.parts) {
    const p = join(dir, part.path);
    mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
    const fd = openSync(p, "wx", 0o600);
    try {
      for (const c of hashed(part, (f) => files.push(f), ring)) for (let off = 0; off < c.length; ) off += writeSync(fd, c, off);
    } finally {
      closeSync(fd);
    }
  }
  const signed = plan.sign(files);
  writeFileSync(join(dir, MANIFEST_FILE), signed.envelopeJson, { mode: 0o600 });
  return signed;
}

/**
 * The bundle as one tar stream (the exit route's answer): every part read once, hashed on the way
 * out, and the signed manifest last, since it carries their digests. Directories 0700, files 0600,
 * owner 0:0, mtime the bundle's creation. File data comes in the `ring`'s buffers when one is given.
 */
export function* bundleTarChunks(plan: BundlePlan, ring?: BufferRing): Generator<Buffer> {
  const mtimeSec = Math.floor(plan.createdAt.getTime() / 1000);
  const meta = { uid: 0, gid: 0, mtimeSec, linkTarget: "" };
  for (const d of plan.dirs) yield entryHeader({ ...meta, path: d, type: "dir", mode: 0o700, size: 0 });
  const files: FileEntry[] = [];
  const fileHeader = (path: string, size: number): Buffer => entryHeader({ ...meta, path, type: "file", mode: 0o600, size });
  const pad = (size: number): Buffer => Buffer.alloc((512 - (size % 512)) % 512);
  for (const part of plan.parts) {
    yield fileHeader(part.path, part.bytes);
    yield* hashed(part, (f) => files.push(f), ring);
    if (part.bytes % 512 !== 0) yield pad(part.bytes);
  }
  const manifest = Buffer.from(plan.sign(files).envelopeJson);
  yield fileHeader(MANIFEST_FILE, manifest.length);
  yield manifest;
  yield pad(manifest.length);
  yield Buffer.alloc(1024);
}

/** Reads what the bundle of `req.imvu` holds and lists its parts; the data is read when the plan is written or streamed. */
export async function planBundle(src: ExportSource, req: ExportRequest): Promise<BundlePlan> {
  const state = src.state;
  const rec = state.get("imvu", req.imvu);
  const genesis = state.get("platform", "genesis");
  if (!rec || !genesis) throw new Error(`invariant: no IMVU ${req.imvu} or no genesis`);
  if (!rec.exit) throw new Error(`invariant: ${req.imvu} has no exit request`);
  const ownerState = verifyKel(req.ownerKel);
  const registered = state.get("identity", rec.owner);
  if (ownerState.id !== rec.owner || registered?.publicKey !== ownerState.publicKey) throw new Error("owner key event log does not match the registered owner");
  const exitRequestedIndex = rec.exit.requestedIndex;
  const cp = await src.ledger.checkpoint();
  const out = new BundleParts();
  const platformId = src.platformIdentity();
  const createdAt = req.now ?? new Date();
  out.json(PATHS.imvu, rec);
  out.json(PATHS.platform, { platformId: genesis.platformId, baseDomain: genesis.baseDomain, origin: src.ledger.origin, verifierKey: src.verifierKey, genesisIndex: genesis.genesisIndex, constitution: { version: genesis.constitutionVersion, hash: genesis.constitutionHash } });
  out.json(PATHS.ownerKel, req.ownerKel);
  out.json(PATHS.platformKel, platformId.kel);
  const zones = writeZones(out, state, req.imvu);
  const mailboxes = writeMail(out, state, src.home, req.imvu);
  const { volumeEntries, ...compute } = writeCompute(out, state, src.home, req.fabric ?? installationFabric(src.home), rec);
  const network = writeNetwork(out, state, rec);
  const policies = writePolicies(out, state, rec);
  writeRecords(out, state, rec.name);
  const ledgerEntries = await writeLedger(out, src, req, cp.checkpoint.size, cp.note);
  const statements = await monthlyStatements(state, src.ledger, rec, cp.checkpoint.size, cp.note, createdAt);
  for (const s of statements) out.json(statementPath(s.month), { ...s.proven, verifierKey: src.verifierKey });
  const secretNames = await writeSecrets(out, src.home, req);
  const sign = (given: readonly FileEntry[]): { manifest: ExitManifest; envelopeJson: string } => {
    const files = [...given].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const volumeSha = files.find((f) => f.path === PATHS.volume)?.sha256;
    if (volumeEntries !== undefined && volumeSha === undefined) throw new Error("invariant: the volume archive has no digest");
    const manifest: ExitManifest = {
      format: EXIT_FORMAT,
      imvu: rec.name,
      owner: rec.owner,
      class: rec.class,
      jurisdiction: rec.jurisdiction,
      status: rec.status,
      exitRequestedIndex,
      createdAt: createdAt.toISOString(),
      constitution: { version: genesis.constitutionVersion, hash: genesis.constitutionHash },
      platform: { platformId: genesis.platformId, baseDomain: genesis.baseDomain, origin: src.ledger.origin, verifierKey: src.verifierKey, genesisIndex: genesis.genesisIndex },
      checkpoint: { size: cp.checkpoint.size.toString(), root: toHex(cp.checkpoint.root) },
      inventory: {
        zones,
        mailboxes,
        ...compute,
        volume: volumeEntries === undefined || volumeSha === undefined ? null : { file: PATHS.volume, sha256: volumeSha, entries: volumeEntries },
        ...network,
        ...policies,
        ledgerEntries: ledgerEntries.indices,
        statements: statements.map((s) => ({ month: s.month, file: statementPath(s.month), entries: s.entries })),
        secrets: { file: PATHS.secrets, format: "age", contents: secretNames },
        consistency: ledgerEntries.consistency,
      },
      files,
    };
    const envelope = signDsse(EXIT_MANIFEST_PAYLOAD_TYPE, utf8(canonicalize(manifest)), [ed25519DsseSigner(platformId.current.privateKey, platformId.id)]);
    return { manifest, envelopeJson: `${JSON.stringify(envelope, null, 2)}\n` };
  };
  return { dirs: out.dirs, parts: out.parts, createdAt, sign };
}

function writeZones(out: BundleParts, state: StateReader, imvu: string): ExitManifest["inventory"]["zones"] {
  const d = platformDnsOf(state);
  if (d === undefined) return [];
  const zones: ExitManifest["inventory"]["zones"] = [];
  for (const [origin, z] of state.list("dns-zone")) {
    if (z.imvu !== imvu) continue;
    // Built from the rows, not from what is served: a departed IMVU's zones still export.
    const zone = buildZone(imvuZoneInput(state, d, z));
    const file = zonePath(origin);
    out.write(file, exportZone(zone));
    zones.push({ origin, kind: z.kind, file, records: zone.records.length + 1 });
  }
  return zones;
}

function writeMail(out: BundleParts, state: StateReader, home: string, imvu: string): ExitManifest["inventory"]["mailboxes"] {
  const boxes = state.list("mail-mailbox", `${imvu}/`).map(([, m]) => m).filter((m) => m.imvu === imvu);
  out.json(PATHS.mailboxes, boxes);
  const result: ExitManifest["inventory"]["mailboxes"] = [];
  for (const m of boxes) {
    const srcRoot = maildirPath(maildirRoot(home), imvu, m.address);
    const dst = maildirBundlePath(m.address);
    for (const sub of ["cur", "new", "tmp"]) out.dirs.push(`${dst}/${sub}`);
    const folders: ExitManifest["inventory"]["mailboxes"][number]["folders"] = [];
    let messages = 0;
    let bytes = 0;
    for (const f of maildirFolders(srcRoot)) {
      const prefix = f.name === "INBOX" ? dst : `${dst}/.${f.name}`;
      for (const p of f.messages) {
        const sub = p.slice(0, p.lastIndexOf("/")).endsWith("/new") ? "new" : "cur";
        out.copy(p, `${prefix}/${sub}/${p.slice(p.lastIndexOf("/") + 1)}`);
        bytes += out.parts[out.parts.length - 1]?.bytes ?? 0;
      }
      const mbox = mboxBundlePath(m.address, f.name);
      out.write(mbox, mboxOf(f.messages));
      folders.push({ name: f.name, messages: f.messages.length, mbox });
      messages += f.messages.length;
    }
    result.push({ address: m.address, maildir: dst, messages, bytes, folders });
  }
  return result;
}

type ComputeInventory = Pick<ExitManifest["inventory"], "workloads" | "snapshots" | "sources"> & { volumeEntries: number | undefined };

function writeCompute(out: BundleParts, state: StateReader, home: string, fabricName: string, rec: ImvuRecord): ComputeInventory {
  const fabric = join(home, "compute", fabricName);
  const records = state.list("compute-workload", `${rec.name}/`).map(([, w]) => w).filter((w) => w.imvu === rec.name);
  out.json(PATHS.workloads, records);
  const envelope = computeEnvelope(rec);
  const specs = records.map((w) => workloadSpecOf(w, { sourceDir: (_i, sha) => `sources/${sha}` }, false));
  const image = (w: { name: string; source: { kind: string; ref?: string } }): string =>
    w.source.kind === "image" && w.source.ref !== undefined ? w.source.ref : `registry.local/${slug(rec.name)}/${w.name}:latest`;
  const k8s = envelope === undefined ? { apiVersion: "v1", kind: "List", items: [] } : manifestList(renderManifests({ imvu: rec.name, envelope, workloads: specs, image }));
  out.json(PATHS.k8s, k8s);
  const volumeDir = join(fabric, "volumes", slug(rec.name), "data");
  const volumeEntries = existsSync(volumeDir) ? out.tree(volumeDir, PATHS.volume, (p) => p === "lost+found" || p.startsWith(".nexus-")) : undefined;
  const snapshots: ComputeInventory["snapshots"] = [];
  const snapDir = join(fabric, "snapshots", slug(rec.name));
  for (const [, s] of state.list("compute-snapshot", `${rec.name}/`)) {
    if (s.imvu !== rec.name || s.deletedIndex !== undefined) continue;
    const hex = s.sha256.replace(/^sha256:/, "");
    const file = join(snapDir, `${hex}.tar`);
    if (!existsSync(file)) continue;
    out.copy(file, snapshotPath(hex));
    snapshots.push({ sha256: hex, file: snapshotPath(hex), kind: s.kind });
  }
  const sources: ComputeInventory["sources"] = [];
  for (const sha of new Set(records.flatMap((w) => (w.source.kind === "image" ? [] : [w.source.sha256])))) {
    const file = sourceTarPath(home, rec.name, sha);
    if (!existsSync(file)) continue;
    out.copy(file, sourcePath(sha));
    sources.push({ sha256: sha, file: sourcePath(sha) });
  }
  return { workloads: records.map((w) => w.name), volumeEntries, snapshots, sources };
}

function writeNetwork(out: BundleParts, state: StateReader, rec: ImvuRecord): Pick<ExitManifest["inventory"], "routes" | "grants"> {
  const routes = state.list("net-route", `${rec.name}/`).map(([, r]) => r).filter((r) => r.imvu === rec.name);
  const grants = state.list("net-grant", `${rec.name}/`).map(([, g]) => g).filter((g) => g.imvu === rec.name);
  out.json(PATHS.routes, routes);
  out.json(PATHS.grants, grants);
  // The slice is the network part of the envelope: what the gateway holds the IMVU to.
  const e = rec.envelope as unknown as Record<string, unknown>;
  const slice: Record<string, unknown> = { imvu: rec.name, jurisdiction: rec.jurisdiction };
  for (const k of Object.keys(e).sort()) if (/bandwidth|route|request|connection/i.test(k)) slice[k] = e[k];
  out.json(PATHS.slice, slice);
  return { routes: routes.map((r) => r.route), grants: grants.length };
}

function writePolicies(out: BundleParts, state: StateReader, rec: ImvuRecord): Pick<ExitManifest["inventory"], "delegations" | "consents"> {
  const delegations = state.list("delegation", `${rec.name}/`).map(([, d]) => d).filter((d) => d.imvu === rec.name);
  const consents = state.list("consent").map(([, c]) => c).filter((c) => c.imvu === rec.name);
  out.json(PATHS.envelope, { imvu: rec.name, class: rec.class, jurisdiction: rec.jurisdiction, envelope: rec.envelope });
  out.json(PATHS.delegations, delegations);
  out.json(PATHS.consents, consents);
  return { delegations: delegations.length, consents: consents.length };
}

/** The rows of the IMVU's domains, revenue accounts, usage reports and throttling episodes, as JSON. */
function writeRecords(out: BundleParts, state: StateReader, imvu: string): void {
  out.json(PATHS.domains, state.list("domain").map(([, d]) => d).filter((d) => d.imvu === imvu));
  out.json(PATHS.accounts, state.list("revenue-account", `${imvu}/`).map(([, a]) => a).filter((a) => a.imvu === imvu));
  out.json(PATHS.usage, state.list("usage", `${imvu}/`).map(([, u]) => u).filter((u) => u.imvu === imvu));
  out.json(PATHS.throttle, state.list("throttle", `${imvu}/`).map(([, t]) => t).filter((t) => t.imvu === imvu));
}

async function writeLedger(
  out: BundleParts,
  src: ExportSource,
  req: ExportRequest,
  size: bigint,
  note: string,
): Promise<{ indices: string[]; consistency: { fromSize: string; toSize: string }[] }> {
  const genesis = src.state.get("platform", "genesis");
  const indices = new Set<bigint>(genesis ? [BigInt(genesis.genesisIndex)] : []);
  for (const [, f] of src.state.list("feed", `${req.imvu}/`)) if (BigInt(f.index) < size) indices.add(BigInt(f.index));
  const sorted = [...indices].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries = [];
  for (const i of sorted) {
    const bytes = await src.ledger.entry(i);
    const proof = await src.ledger.inclusionProof(i, size);
    entries.push({ index: i.toString(), leafHash: toHex(leafHash(bytes)), entry: Buffer.from(bytes).toString("base64"), inclusionProof: proof.map(toHex) });
  }
  out.write(PATHS.checkpoint, note);
  out.json(PATHS.entries, { treeSize: size.toString(), entries });
  const consistency = [];
  for (const from of [...new Set(req.seenSizes)].filter((s) => s > 0n && s <= size)) {
    const proof = await src.ledger.consistencyProof(from, size);
    const at = await src.ledger.checkpointAt(from);
    consistency.push({
      fromSize: from.toString(),
      fromRoot: toHex(await src.ledger.rootAt(from)),
      ...(at === undefined ? {} : { fromCheckpoint: at.note }),
      toSize: size.toString(),
      proof: proof.map(toHex),
    });
  }
  out.json(PATHS.consistency, consistency);
  return { indices: sorted.map(String), consistency: consistency.map((c) => ({ fromSize: c.fromSize, toSize: c.toSize })) };
}

async function writeSecrets(out: BundleParts, home: string, req: ExportRequest): Promise<string[]> {
  const secrets = new MailSecretStore(home).read(req.imvu);
  const e = new Encrypter();
  e.setPassphrase(req.passphrase);
  e.setScryptWorkFactor(req.scryptLog2N ?? SECRETS_SCRYPT_LOG2_N);
  out.write(PATHS.secrets, await e.encrypt(JSON.stringify(secrets, null, 2)));
  const names = [...Object.keys(secrets.passwords).map((a) => `verifier:${a}`), ...Object.entries(secrets.dkim).flatMap(([d, ks]) => ks.map((k) => `dkim:${k.selector}._domainkey.${d}`))];
  return names.sort();
}

/** Every file under `dir` (relative POSIX paths), for the verifier's "not in the manifest" check. */
export function listFiles(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const d of readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const rel = prefix === "" ? d.name : `${prefix}/${d.name}`;
    if (d.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}
