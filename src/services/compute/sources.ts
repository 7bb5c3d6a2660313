/**
 * Workload sources bound by content: `--app DIR` and `--rootfs DIR` become the deterministic tar
 * of DIR (tar.ts), stored per IMVU under `<home>/compute/sources/<imvu>/<sha256>.tar` (0444) and
 * named in the deploy command by that SHA-256, so the ledger binds the exact bytes a workload
 * runs, never a path on some machine. The compute service unpacks a source once into
 * `<sha256>/` beside it (verified against the digest first) and mounts that tree. An IMVU can
 * only run what was uploaded into its own area (gate 2 in effect: another IMVU's digest does not
 * resolve).
 */
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { computeErrors } from "./errors.ts";
import { slug } from "./names.ts";
import { extractSnapshot, inWorker } from "./snapshot.ts";
import type { TarResult } from "./tar.ts";

/** Largest source accepted. */
export const SOURCE_BYTES_MAX = 512 * 1024 * 1024;
const SHA_RE = /^[0-9a-f]{64}$/;

function checkSha(sha256: string): string {
  if (!SHA_RE.test(sha256)) throw computeErrors.make("COMPUTE_SPEC_INVALID", `not a sha256: ${sha256}`);
  return sha256;
}

/** The source area of one IMVU. */
export function sourceStoreDir(home: string, imvu: string): string {
  return join(home, "compute", "sources", slug(imvu));
}

/** Where a source's tar is kept. */
export function sourceTarPath(home: string, imvu: string, sha256: string): string {
  return join(sourceStoreDir(home, imvu), `${checkSha(sha256)}.tar`);
}

/** Where a source is unpacked (what the workload mounts). */
export function sourceTreePath(home: string, imvu: string, sha256: string): string {
  return join(sourceStoreDir(home, imvu), checkSha(sha256));
}

function openArea(home: string, imvu: string): string {
  const dir = sourceStoreDir(home, imvu);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

function seal(tmp: string, final: string): void {
  if (existsSync(final)) {
    rmSync(tmp, { force: true });
    return;
  }
  chmodSync(tmp, 0o444);
  renameSync(tmp, final);
}

/** Packs `dir` as a deterministic tar at `outPath` (in a worker thread); returns its digest. */
export function packSource(dir: string, outPath: string): Promise<TarResult> {
  return inWorker<TarResult>({ op: "tar", root: dir, outPath });
}

/** Packs `dir` straight into the IMVU's source area (same machine); returns the digest to deploy. */
export async function stageSourceDir(home: string, imvu: string, dir: string): Promise<{ sha256: string; sizeBytes: number }> {
  const area = openArea(home, imvu);
  const tmp = join(area, `.tmp-${randomBytes(8).toString("hex")}.tar`);
  try {
    const r = await packSource(dir, tmp);
    if (r.sizeBytes > SOURCE_BYTES_MAX) throw computeErrors.make("COMPUTE_SOURCE_TOO_LARGE", `${r.sizeBytes} bytes`);
    seal(tmp, sourceTarPath(home, imvu, r.sha256));
    return { sha256: r.sha256, sizeBytes: r.sizeBytes };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Stores uploaded bytes under the digest they claim; refuses bytes that hash otherwise. */
export async function storeSource(home: string, imvu: string, sha256: string, chunks: AsyncIterable<Buffer | Uint8Array>, maxBytes = SOURCE_BYTES_MAX): Promise<{ sizeBytes: number; existed: boolean }> {
  const final = sourceTarPath(home, imvu, sha256);
  const area = openArea(home, imvu);
  const tmp = join(area, `.tmp-${randomBytes(8).toString("hex")}.tar`);
  const hash = createHash("sha256");
  let size = 0;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    for await (const c of chunks) {
      size += c.length;
      if (size > maxBytes) throw computeErrors.make("COMPUTE_SOURCE_TOO_LARGE", `more than ${maxBytes} bytes`);
      hash.update(c);
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off);
    }
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  const got = hash.digest("hex");
  if (got !== sha256) {
    rmSync(tmp, { force: true });
    throw computeErrors.make("COMPUTE_SOURCE_MISMATCH", `the bytes hash to ${got}`);
  }
  const existed = existsSync(final);
  seal(tmp, final);
  return { sizeBytes: size, existed };
}

/** Whether a source was uploaded into the IMVU's area. */
export function hasSource(home: string, imvu: string, sha256: string): boolean {
  return existsSync(sourceTarPath(home, imvu, sha256));
}

/** Unpacks a source once (verified against its digest) and returns the tree to mount. */
export async function ensureSourceTree(home: string, imvu: string, sha256: string): Promise<string> {
  const tree = sourceTreePath(home, imvu, sha256);
  if (existsSync(tree) && statSync(tree).isDirectory()) return tree;
  if (!hasSource(home, imvu, sha256)) throw computeErrors.make("COMPUTE_SOURCE_MISSING", `${imvu}: ${sha256}`);
  const tmp = join(sourceStoreDir(home, imvu), `.tmp-${randomBytes(8).toString("hex")}`);
  mkdirSync(tmp, { mode: 0o755 });
  try {
    await extractSnapshot(sourceStoreDir(home, imvu), `sha256:${sha256}`, tmp);
    chmodSync(tmp, 0o755);
    if (!existsSync(tree)) renameSync(tmp, tree);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return tree;
}
