/**
 * Volume snapshots (gate 12): a snapshot is the deterministic tar of a volume (tar.ts), addressed
 * by the SHA-256 of its bytes and stored read-only (file 0444 in a 0555 directory). The caller
 * records {digest, sizeBytes} in the ledger; restoring first snapshots the current state.
 * Only the owner may delete a snapshot: that is the gate's to decide, before `deleteSnapshot`.
 *
 * The work is synchronous file I/O (several times faster than promise-based I/O for many small
 * files); the exported async functions run it in a worker thread so the event loop stays free.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync, closeSync, constants, existsSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readSync, renameSync,
  rmSync, statSync, symlinkSync, unlinkSync, writeSync,
} from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { isNexusError } from "../../core/errors.ts";
import { computeErrors, type ComputeErrorCode } from "./errors.ts";
import { readTarSync, writeTarSync, type TarEntry } from "./tar.ts";

/** A stored snapshot. */
export interface SnapshotInfo {
  /** "sha256:<64 hex>" of the archive bytes. */
  readonly digest: string;
  readonly sizeBytes: number;
  readonly path: string;
  /** Entries in the archive (0 when listed without reading it). */
  readonly entries: number;
}

/** Bound on one snapshot unless the caller gives a smaller one. */
export const SNAPSHOT_BYTES_MAX = 64 * 1024 * 1024 * 1024;
const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** Names at the top of a volume that are not the IMVU's data. */
export function isVolumeInternal(rel: string): boolean {
  return rel === "lost+found" || rel.startsWith(".nexus-");
}

function fileOf(storeDir: string, digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m?.[1]) throw computeErrors.make("COMPUTE_SNAPSHOT_NOT_FOUND", `not a sha256 digest: ${digest}`);
  return join(storeDir, `${m[1]}.tar`);
}

function openStore(storeDir: string): void {
  mkdirSync(storeDir, { recursive: true });
  chmodSync(storeDir, 0o755);
}

function sealStore(storeDir: string): void {
  chmodSync(storeDir, 0o555);
}

/** createSnapshot, synchronously (the worker's body). */
export function createSnapshotSync(srcDir: string, storeDir: string, opts: { maxBytes?: number } = {}): SnapshotInfo {
  openStore(storeDir);
  const tmp = join(storeDir, `.tmp-${randomBytes(8).toString("hex")}.tar`);
  try {
    const r = writeTarSync(srcDir, tmp, { maxBytes: opts.maxBytes ?? SNAPSHOT_BYTES_MAX, exclude: isVolumeInternal });
    const digest = `sha256:${r.sha256}`;
    const final = fileOf(storeDir, digest);
    if (existsSync(final)) unlinkSync(tmp);
    else {
      chmodSync(tmp, 0o444);
      renameSync(tmp, final);
    }
    return { digest, sizeBytes: r.sizeBytes, path: final, entries: r.entries };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    sealStore(storeDir);
  }
}

/** The snapshots in a store, by digest. */
export function listSnapshots(storeDir: string): SnapshotInfo[] {
  if (!existsSync(storeDir)) return [];
  return readdirSync(storeDir)
    .filter((n) => /^[0-9a-f]{64}\.tar$/.test(n))
    .sort()
    .map((n) => {
      const path = join(storeDir, n);
      return { digest: `sha256:${n.slice(0, 64)}`, sizeBytes: statSync(path).size, path, entries: 0 };
    });
}

/** verifySnapshot, synchronously. */
export function verifySnapshotSync(storeDir: string, digest: string): SnapshotInfo {
  const path = fileOf(storeDir, digest);
  if (!existsSync(path)) throw computeErrors.make("COMPUTE_SNAPSHOT_NOT_FOUND", digest);
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  let size = 0;
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  if (`sha256:${h.digest("hex")}` !== digest) throw computeErrors.make("COMPUTE_SNAPSHOT_CORRUPT", `${digest} no longer matches its bytes`);
  return { digest, sizeBytes: size, path, entries: 0 };
}

/** Deletes a snapshot (the caller has checked that the owner asked). */
export async function deleteSnapshot(storeDir: string, digest: string): Promise<void> {
  const path = fileOf(storeDir, digest);
  if (!existsSync(path)) throw computeErrors.make("COMPUTE_SNAPSHOT_NOT_FOUND", digest);
  openStore(storeDir);
  try {
    unlinkSync(path);
  } finally {
    sealStore(storeDir);
  }
}

function clearDir(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (isVolumeInternal(name)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
  }
}

function applyMeta(path: string, e: TarEntry, isRoot: boolean): void {
  if (isRoot) lchownSync(path, e.uid, e.gid);
  if (e.type !== "symlink") chmodSync(path, e.mode);
  lutimesSync(path, e.mtimeSec, e.mtimeSec);
}

/** extractSnapshot, synchronously. */
export function extractSnapshotSync(storeDir: string, digest: string, targetDir: string): { entries: number } {
  const info = verifySnapshotSync(storeDir, digest);
  clearDir(targetDir);
  const links = new Set<string>();
  const dirs: [string, TarEntry][] = [];
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  const extractEntry = (e: TarEntry, data: (sink: (chunk: Buffer) => void) => void): void => {
    const parts = e.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      if (links.has(parts.slice(0, i).join("/"))) throw computeErrors.make("COMPUTE_SNAPSHOT_UNSAFE", `${e.path} passes through a symlink`);
    }
    const dest = join(targetDir, e.path);
    if (e.type === "dir") {
      if (!existsSync(dest)) mkdirSync(dest, { mode: 0o700 });
      else if (!lstatSync(dest).isDirectory()) throw computeErrors.make("COMPUTE_SNAPSHOT_UNSAFE", `${e.path} is twice in the archive`);
      dirs.push([dest, e]);
      return;
    }
    if (e.type === "symlink") {
      symlinkSync(e.linkTarget, dest);
      links.add(e.path);
      applyMeta(dest, e, isRoot);
      return;
    }
    const fd = openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      data((chunk) => {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off);
      });
    } finally {
      closeSync(fd);
    }
    applyMeta(dest, e, isRoot);
  };
  const entries = readTarSync(info.path, (e, data) => {
    try {
      extractEntry(e, data);
    } catch (err) {
      if (isNexusError(err)) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT") throw computeErrors.make("COMPUTE_DISK_QUOTA", `restoring ${digest}`);
      throw computeErrors.make("COMPUTE_SNAPSHOT_CORRUPT", `${e.path}: ${(err as Error).message}`);
    }
  });
  // Directory modes and times last, deepest first, so writing their children does not undo them.
  for (const [dest, e] of dirs.reverse()) applyMeta(dest, e, isRoot);
  return { entries };
}

/** A job for the snapshot worker. */
export type SnapshotJob =
  | { readonly op: "create"; readonly srcDir: string; readonly storeDir: string; readonly maxBytes?: number }
  | { readonly op: "verify"; readonly storeDir: string; readonly digest: string }
  | { readonly op: "extract"; readonly storeDir: string; readonly digest: string; readonly targetDir: string }
  | { readonly op: "tar"; readonly root: string; readonly outPath: string };

/** Runs one job synchronously (in the worker, or inline). */
export function runSnapshotJob(job: SnapshotJob): unknown {
  switch (job.op) {
    case "create":
      return createSnapshotSync(job.srcDir, job.storeDir, job.maxBytes !== undefined ? { maxBytes: job.maxBytes } : {});
    case "verify":
      return verifySnapshotSync(job.storeDir, job.digest);
    case "extract":
      return extractSnapshotSync(job.storeDir, job.digest, job.targetDir);
    case "tar":
      return writeTarSync(job.root, job.outPath);
    default: {
      const never: never = job;
      throw new Error(`unknown job ${JSON.stringify(never)}`);
    }
  }
}

/** Runs a job in a worker thread; typed errors come back as the same typed errors. */
export function inWorker<T>(job: SnapshotJob): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./snapshot-worker.ts", import.meta.url), { workerData: job });
    let settled = false;
    w.once("message", (m: { ok: true; value: T } | { ok: false; code?: string; message: string }) => {
      settled = true;
      if (m.ok) resolve(m.value);
      else if (m.code !== undefined && m.code in computeErrors.specs) {
        const code = m.code as ComputeErrorCode;
        const prefix = `${computeErrors.specs[code].message}: `;
        reject(computeErrors.make(code, m.message.startsWith(prefix) ? m.message.slice(prefix.length) : undefined));
      } else reject(new Error(m.message));
    });
    w.once("error", (e) => {
      if (!settled) reject(e);
    });
    w.once("exit", (code) => {
      if (!settled) reject(new Error(`snapshot worker exited with ${code}`));
    });
  });
}

/** Archives `srcDir` into `storeDir` as <hex>.tar (0444); the same tree gives the same digest. */
export function createSnapshot(srcDir: string, storeDir: string, opts: { maxBytes?: number } = {}): Promise<SnapshotInfo> {
  return inWorker({ op: "create", srcDir, storeDir, ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}) });
}

/** Re-hashes a stored snapshot; throws COMPUTE_SNAPSHOT_NOT_FOUND or COMPUTE_SNAPSHOT_CORRUPT. */
export function verifySnapshot(storeDir: string, digest: string): Promise<SnapshotInfo> {
  return inWorker({ op: "verify", storeDir, digest });
}

/**
 * Replaces the contents of `targetDir` with a verified snapshot. Paths are checked (tar.ts) and
 * none may pass through a symlink the archive made, so nothing is written outside `targetDir`.
 * The caller snapshots the current state first and stops the IMVU's workloads.
 */
export function extractSnapshot(storeDir: string, digest: string, targetDir: string): Promise<{ entries: number }> {
  return inWorker({ op: "extract", storeDir, digest, targetDir });
}
