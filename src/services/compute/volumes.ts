/**
 * Per-IMVU volumes, mounted at /data in the IMVU's containers and nowhere else.
 *
 * Two ways to hold the disk envelope, chosen once per fabric:
 * - "loop" (default as root with loop devices): the volume is an ext4 file system in a sparse image
 *   file of exactly the envelope's size, loop-mounted. The kernel refuses writes beyond it (ENOSPC).
 * - "dir": a plain directory. Nothing in the kernel stops a write; `usage` walks the tree and the
 *   reconciler remounts the volume read-only in the IMVU's containers while it is over its envelope.
 *   A burst can overshoot until the next check: that mode is a check, not a limit.
 */
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, lstatSync, mkdirSync, openSync, closeSync, ftruncateSync, readdirSync, readFileSync, rmSync, statSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { execBounded } from "./exec.ts";
import { computeErrors } from "./errors.ts";
import { slug } from "./names.ts";

/** How a volume's size is held. */
export type VolumeMode = "loop" | "dir";

/** The smallest loop volume (ext4 needs room for its own metadata). */
export const VOLUME_BYTES_MIN = 8n * 1024n * 1024n;
/** Bound on the entries `usage` walks in dir mode. */
export const USAGE_ENTRIES_MAX = 1_000_000;
/** Bound on mkfs, mount, resize and umount. */
export const VOLUME_TOOL_TIMEOUT_MS = 60_000;
/** The uid and gid workloads run as (and own /data). */
export const WORKLOAD_UID = 10000;
export const WORKLOAD_GID = 10000;

/** Options of the volume manager. */
export interface VolumeOptions {
  /** Directory holding one subdirectory per IMVU. */
  readonly root: string;
  readonly mode?: VolumeMode | "auto";
  readonly uid?: number;
  readonly gid?: number;
}

/** The state of one IMVU's volume. */
export interface VolumeInfo {
  readonly imvu: string;
  /** The directory bound at /data. */
  readonly path: string;
  readonly mode: VolumeMode;
  readonly limitBytes: bigint;
  readonly usedBytes: bigint;
  readonly overQuota: boolean;
}

/** Whether loop-mounted ext4 volumes can be made here (root, loop devices, mkfs.ext4). */
export function loopVolumesSupported(): boolean {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (!root || !existsSync("/dev/loop-control")) return false;
  return spawnSync("mkfs.ext4", ["-V"], { stdio: "ignore", timeout: 10_000 }).status === 0;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The source device of the file system mounted at `dir`, if one is. */
export function mountSource(dir: string): string | undefined {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  let source: string | undefined;
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    if (f[4] === undefined || unescapeMount(f[4]) !== dir) continue;
    const sep = f.indexOf("-");
    source = sep > 0 ? f[sep + 2] : "";
  }
  return source;
}

function tool(file: string, args: string[]): Promise<unknown> {
  return execBounded(file, args, { timeoutMs: VOLUME_TOOL_TIMEOUT_MS }).catch((e: unknown) => {
    throw computeErrors.make("COMPUTE_VOLUME_FAILED", (e as Error).message);
  });
}

/** Allocated bytes under a directory (like du), bounded. */
export function dirUsage(dir: string): bigint {
  let total = 0n;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop() as string;
    for (const name of readdirSync(d)) {
      if (++seen > USAGE_ENTRIES_MAX) return total;
      const p = join(d, name);
      const st = lstatSync(p);
      total += BigInt(st.blocks) * 512n;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return total;
}

/** The per-IMVU volumes of one fabric. */
export class Volumes {
  readonly mode: VolumeMode;
  readonly #root: string;
  readonly #uid: number;
  readonly #gid: number;

  constructor(opts: VolumeOptions) {
    this.#root = opts.root;
    this.#uid = opts.uid ?? WORKLOAD_UID;
    this.#gid = opts.gid ?? WORKLOAD_GID;
    const mode = opts.mode ?? "auto";
    this.mode = mode === "auto" ? (loopVolumesSupported() ? "loop" : "dir") : mode;
  }

  /** The directory bound at /data for an IMVU. */
  pathOf(imvu: string): string {
    return join(this.#root, slug(imvu), "data");
  }

  #image(imvu: string): string {
    return join(this.#root, slug(imvu), "disk.ext4");
  }

  /** Creates (or grows) the volume and mounts it; idempotent. */
  async ensure(imvu: string, diskBytes: bigint): Promise<VolumeInfo> {
    const path = this.pathOf(imvu);
    mkdirSync(path, { recursive: true, mode: 0o700 });
    if (this.mode === "dir") {
      const st = statSync(path);
      if (st.uid !== this.#uid || st.gid !== this.#gid) chownSync(path, this.#uid, this.#gid);
      return this.usage(imvu, diskBytes);
    }
    const size = diskBytes < VOLUME_BYTES_MIN ? VOLUME_BYTES_MIN : diskBytes;
    const image = this.#image(imvu);
    if (!existsSync(image)) {
      const fd = openSync(image, "wx", 0o600);
      try {
        ftruncateSync(fd, Number(size));
      } finally {
        closeSync(fd);
      }
      await tool("mkfs.ext4", ["-q", "-F", "-m", "0", "-L", "nexus", "-E", `root_owner=${this.#uid}:${this.#gid}`, image]);
    }
    const current = BigInt(statSync(image).size);
    if (size < current) throw computeErrors.make("COMPUTE_VOLUME_SHRINK", `${imvu}: ${current} → ${size} bytes`);
    let source = mountSource(path);
    if (source === undefined) {
      await tool("mount", ["-o", "loop,nosuid,nodev", image, path]);
      source = mountSource(path);
    }
    if (size > current && source?.startsWith("/dev/loop") === true) {
      // Online grow (resize2fs(8)): enlarge the file, tell the loop device, grow the file system.
      const fd = openSync(image, "r+");
      try {
        ftruncateSync(fd, Number(size));
      } finally {
        closeSync(fd);
      }
      await tool("losetup", ["-c", source]);
      await tool("resize2fs", [source]);
    }
    return this.usage(imvu, size);
  }

  /** The path of an existing volume, mounted (a loop image left unmounted is mounted again). */
  async ready(imvu: string): Promise<string> {
    const path = this.pathOf(imvu);
    const image = this.#image(imvu);
    if (this.mode === "loop" && existsSync(image)) {
      if (mountSource(path) === undefined) await tool("mount", ["-o", "loop,nosuid,nodev", image, path]);
      return path;
    }
    if (this.mode === "dir" && existsSync(path)) return path;
    throw computeErrors.make("COMPUTE_VOLUME_FAILED", `${imvu} has no volume`);
  }

  /** Usage against the envelope's disk bytes. */
  usage(imvu: string, diskBytes: bigint): VolumeInfo {
    const path = this.pathOf(imvu);
    if (this.mode === "loop" && mountSource(path) !== undefined) {
      const s = statfsSync(path, { bigint: true });
      const used = (s.blocks - s.bfree) * s.bsize;
      return { imvu, path, mode: "loop", limitBytes: BigInt(statSync(this.#image(imvu)).size), usedBytes: used, overQuota: s.bavail === 0n };
    }
    const used = existsSync(path) ? dirUsage(path) : 0n;
    return { imvu, path, mode: this.mode, limitBytes: diskBytes, usedBytes: used, overQuota: used > diskBytes };
  }

  /** Unmounts a loop volume (data stays in its image); no-op in dir mode. */
  async unmount(imvu: string): Promise<void> {
    const path = this.pathOf(imvu);
    if (mountSource(path) !== undefined) await tool("umount", [path]);
  }

  /** Unmounts every volume of the fabric, and deletes them all when `deleteData` (tests, purge). */
  async unmountAll(deleteData: boolean): Promise<void> {
    if (!existsSync(this.#root)) return;
    for (const name of readdirSync(this.#root)) {
      const path = join(this.#root, name, "data");
      if (mountSource(path) !== undefined) await tool("umount", [path]);
      if (deleteData && mountSource(path) === undefined) rmSync(join(this.#root, name), { recursive: true, force: true });
    }
    if (deleteData) rmSync(this.#root, { recursive: true, force: true });
  }

  /** Deletes an IMVU's volume and its data (after the gate's snapshot). */
  async remove(imvu: string): Promise<void> {
    await this.unmount(imvu);
    if (mountSource(this.pathOf(imvu)) !== undefined) throw computeErrors.make("COMPUTE_VOLUME_FAILED", `${imvu} is still mounted`);
    rmSync(join(this.#root, slug(imvu)), { recursive: true, force: true });
  }
}
