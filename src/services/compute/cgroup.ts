/**
 * Linux control groups, v1 and v2: where the controllers are mounted, the per-IMVU parent group
 * that caps all of an IMVU's containers together, and the counters metering reads. The parsers are
 * pure; the rest reads and writes under /sys/fs/cgroup (kernel documentation:
 * admin-guide/cgroup-v1/{memory,cpuacct,pids,blkio-controller}.rst and admin-guide/cgroup-v2.rst).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { computeErrors } from "./errors.ts";

/** Where the cgroup controllers are mounted on this machine. */
export interface CgroupLayout {
  readonly version: 1 | 2;
  /** v1: controller name → mount point; v2: every controller → the unified mount point. */
  readonly mounts: ReadonlyMap<string, string>;
}

/** The CFS period used for CPU quotas (100 ms, the kernel default). */
export const CFS_PERIOD_US = 100_000;
/** Bound on the lines read from one cgroup or /proc file. */
const LINES_MAX = 10_000;

/** Parses /proc/self/mountinfo (proc(5)) into the cgroup layout; undefined when none is mounted. */
export function parseMountinfo(text: string): CgroupLayout | undefined {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of text.split("\n").slice(0, LINES_MAX)) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const right = line.slice(sep + 3).split(" ");
    const mountPoint = left[4];
    const fsType = right[0];
    if (mountPoint === undefined) continue;
    if (fsType === "cgroup2") unified = mountPoint;
    if (fsType !== "cgroup") continue;
    for (const opt of (right[2] ?? "").split(",")) {
      if (["cpu", "cpuacct", "memory", "pids", "blkio"].includes(opt) && !v1.has(opt)) v1.set(opt, mountPoint);
    }
  }
  if (v1.has("memory")) return { version: 1, mounts: v1 };
  if (unified !== undefined) {
    const all = new Map(["cpu", "cpuacct", "memory", "pids", "blkio", "io"].map((c) => [c, unified] as [string, string]));
    return { version: 2, mounts: all };
  }
  return undefined;
}

/** The layout of this machine (reads /proc/self/mountinfo). */
export function readLayout(): CgroupLayout | undefined {
  try {
    return parseMountinfo(readFileSync("/proc/self/mountinfo", "utf8"));
  } catch {
    return undefined;
  }
}

/** Parses /proc/PID/cgroup: controller → group path (v2's single line is keyed ""). */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n").slice(0, LINES_MAX)) {
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (controllers === "") out.set("", path);
    for (const c of controllers.split(",")) if (c !== "") out.set(c, path);
  }
  return out;
}

/** The directory of a controller for a group path, or undefined when the controller is absent. */
export function groupDir(layout: CgroupLayout, controller: string, groupPath: string): string | undefined {
  const mount = layout.mounts.get(controller);
  return mount === undefined ? undefined : join(mount, groupPath);
}

/** Cumulative counters of one group (bytes and nanoseconds since the group was made). */
export interface CgroupCounters {
  readonly cpuNanos: bigint;
  readonly memoryBytes: bigint;
  /** Peak memory since the group was made or the peak was last reset. */
  readonly memoryPeakBytes: bigint;
  readonly blkReadBytes: bigint;
  readonly blkWriteBytes: bigint;
  readonly pids: number;
  /** How often a fork was refused at the pids limit. */
  readonly pidsLimitHits: number;
  /** OOM kills inside the group (v1: memory.oom_control; v2: memory.events). */
  readonly oomKills: number;
}

/** Parses "key value" lines (memory.stat, cpu.stat, memory.events, pids.events). */
export function parseKeyValues(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n").slice(0, LINES_MAX)) {
    const m = /^(\S+)\s+(\d+)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], BigInt(m[2]));
  }
  return out;
}

/** Sums Read and Write of blkio.throttle.io_service_bytes (v1) over devices. */
export function parseBlkio(text: string): { read: bigint; write: bigint } {
  let read = 0n;
  let write = 0n;
  for (const line of text.split("\n").slice(0, LINES_MAX)) {
    const m = /^\d+:\d+ (Read|Write) (\d+)$/.exec(line.trim());
    if (m?.[1] === "Read") read += BigInt(m[2] ?? "0");
    if (m?.[1] === "Write") write += BigInt(m[2] ?? "0");
  }
  return { read, write };
}

/** Sums rbytes and wbytes of io.stat (v2) over devices. */
export function parseIoStat(text: string): { read: bigint; write: bigint } {
  let read = 0n;
  let write = 0n;
  for (const line of text.split("\n").slice(0, LINES_MAX)) {
    for (const m of line.matchAll(/\b(rbytes|wbytes)=(\d+)/g)) {
      if (m[1] === "rbytes") read += BigInt(m[2] ?? "0");
      else write += BigInt(m[2] ?? "0");
    }
  }
  return { read, write };
}

/** Sums received and sent bytes over the non-loopback interfaces of /proc/PID/net/dev. */
export function parseNetDev(text: string): { rx: bigint; tx: bigint } {
  let rx = 0n;
  let tx = 0n;
  for (const line of text.split("\n").slice(2, LINES_MAX)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim() === "lo") continue;
    const f = line.slice(colon + 1).trim().split(/\s+/);
    rx += BigInt(f[0] ?? "0");
    tx += BigInt(f[8] ?? "0");
  }
  return { rx, tx };
}

function readOr(path: string | undefined, fallback = ""): string {
  if (path === undefined) return fallback;
  try {
    return readFileSync(path, "utf8");
  } catch {
    return fallback;
  }
}

function big(text: string): bigint {
  const t = text.trim();
  return /^\d+$/.test(t) ? BigInt(t) : 0n;
}

/** Reads the counters of the groups a process belongs to; undefined when the process is gone. */
export function readCounters(layout: CgroupLayout, pid: number): CgroupCounters | undefined {
  const procText = readOr(`/proc/${pid}/cgroup`);
  if (procText === "") return undefined;
  const paths = parseProcCgroup(procText);
  const dir = (c: string): string | undefined => {
    const p = layout.version === 2 ? paths.get("") : paths.get(c);
    return p === undefined ? undefined : groupDir(layout, c, p);
  };
  const f = (c: string, file: string): string | undefined => {
    const d = dir(c);
    return d === undefined ? undefined : join(d, file);
  };
  if (layout.version === 1) {
    const oom = parseKeyValues(readOr(f("memory", "memory.oom_control")));
    const blk = parseBlkio(readOr(f("blkio", "blkio.throttle.io_service_bytes_recursive")) || readOr(f("blkio", "blkio.throttle.io_service_bytes")));
    return {
      cpuNanos: big(readOr(f("cpuacct", "cpuacct.usage"))),
      memoryBytes: big(readOr(f("memory", "memory.usage_in_bytes"))),
      memoryPeakBytes: big(readOr(f("memory", "memory.max_usage_in_bytes"))),
      blkReadBytes: blk.read,
      blkWriteBytes: blk.write,
      pids: Number(big(readOr(f("pids", "pids.current")))),
      pidsLimitHits: Number(parseKeyValues(readOr(f("pids", "pids.events"))).get("max") ?? 0n),
      oomKills: Number(oom.get("oom_kill") ?? 0n),
    };
  }
  const cpu = parseKeyValues(readOr(f("cpu", "cpu.stat")));
  const io = parseIoStat(readOr(f("io", "io.stat")));
  const current = big(readOr(f("memory", "memory.current")));
  return {
    cpuNanos: (cpu.get("usage_usec") ?? 0n) * 1000n,
    memoryBytes: current,
    memoryPeakBytes: big(readOr(f("memory", "memory.peak"), String(current))),
    blkReadBytes: io.read,
    blkWriteBytes: io.write,
    pids: Number(big(readOr(f("pids", "pids.current")))),
    pidsLimitHits: Number(parseKeyValues(readOr(f("pids", "pids.events"))).get("max") ?? 0n),
    oomKills: Number(parseKeyValues(readOr(f("memory", "memory.events"))).get("oom_kill") ?? 0n),
  };
}

/** Network counters of a process's network namespace (its container's interfaces). */
export function readNetCounters(pid: number): { rx: bigint; tx: bigint } {
  return parseNetDev(readOr(`/proc/${pid}/net/dev`));
}

/** Resets the memory peak of a process's group so the next reading covers one interval (v1 only). */
export function resetMemoryPeak(layout: CgroupLayout, pid: number): boolean {
  if (layout.version !== 1) return false;
  const p = parseProcCgroup(readOr(`/proc/${pid}/cgroup`)).get("memory");
  const d = p === undefined ? undefined : groupDir(layout, "memory", p);
  if (d === undefined) return false;
  try {
    writeFileSync(join(d, "memory.max_usage_in_bytes"), "0");
    return true;
  } catch {
    return false;
  }
}

/** The limits a parent group applies to all of an IMVU's containers together. */
export interface GroupLimits {
  readonly cpuMillis: number;
  readonly memoryBytes: bigint;
  readonly pids: number;
}

function writeIfChanged(file: string, value: string): boolean {
  const cur = readOr(file).trim();
  if (cur === value) return false;
  writeFileSync(file, value);
  return true;
}

function ensureV1(layout: CgroupLayout, groupPath: string, limits: GroupLimits): boolean {
  let changed = false;
  for (const c of ["memory", "cpu", "pids"]) {
    const d = groupDir(layout, c, groupPath);
    if (d !== undefined) mkdirSync(d, { recursive: true });
  }
  const mem = groupDir(layout, "memory", groupPath);
  if (mem !== undefined) {
    const memFile = join(mem, "memory.limit_in_bytes");
    const swFile = join(mem, "memory.memsw.limit_in_bytes");
    const value = limits.memoryBytes.toString();
    const raising = big(readOr(memFile)) < limits.memoryBytes;
    // memsw must stay >= the memory limit: raise it first, lower it last.
    if (raising && existsSync(swFile)) changed = writeIfChanged(swFile, value) || changed;
    changed = writeIfChanged(memFile, value) || changed;
    if (!raising && existsSync(swFile)) changed = writeIfChanged(swFile, value) || changed;
  }
  const cpu = groupDir(layout, "cpu", groupPath);
  if (cpu !== undefined) {
    changed = writeIfChanged(join(cpu, "cpu.cfs_period_us"), String(CFS_PERIOD_US)) || changed;
    changed = writeIfChanged(join(cpu, "cpu.cfs_quota_us"), String(Math.floor((limits.cpuMillis * CFS_PERIOD_US) / 1000))) || changed;
  }
  const pids = groupDir(layout, "pids", groupPath);
  if (pids !== undefined) changed = writeIfChanged(join(pids, "pids.max"), String(limits.pids)) || changed;
  return changed;
}

function ensureV2(layout: CgroupLayout, groupPath: string, limits: GroupLimits): boolean {
  const root = layout.mounts.get("memory");
  if (root === undefined) return false;
  // Enable the controllers down the path (cgroup-v2.rst, "Enabling and Disabling").
  let dir = root;
  for (const part of groupPath.split("/").filter((p) => p !== "")) {
    try {
      writeFileSync(join(dir, "cgroup.subtree_control"), "+cpu +memory +pids +io");
    } catch {
      // Already enabled, or io unavailable: the limit writes below fail loudly if it matters.
    }
    dir = join(dir, part);
    mkdirSync(dir, { recursive: true });
  }
  let changed = writeIfChanged(join(dir, "memory.max"), limits.memoryBytes.toString());
  changed = writeIfChanged(join(dir, "cpu.max"), `${Math.floor((limits.cpuMillis * CFS_PERIOD_US) / 1000)} ${CFS_PERIOD_US}`) || changed;
  changed = writeIfChanged(join(dir, "pids.max"), String(limits.pids)) || changed;
  return changed;
}

/** Creates the group (all controllers) and writes its limits; true when a limit changed. */
export function ensureGroup(layout: CgroupLayout, groupPath: string, limits: GroupLimits): boolean {
  try {
    return layout.version === 1 ? ensureV1(layout, groupPath, limits) : ensureV2(layout, groupPath, limits);
  } catch (e) {
    throw computeErrors.make("COMPUTE_CGROUP_FAILED", `${groupPath}: ${(e as Error).message}`);
  }
}

/** The limits a group has now, or undefined when it does not exist. */
export function readGroupLimits(layout: CgroupLayout, groupPath: string): GroupLimits | undefined {
  const mem = groupDir(layout, "memory", groupPath);
  if (mem === undefined || !existsSync(mem)) return undefined;
  if (layout.version === 1) {
    const quota = Number(readOr(join(groupDir(layout, "cpu", groupPath) ?? "", "cpu.cfs_quota_us"), "-1").trim());
    return {
      memoryBytes: big(readOr(join(mem, "memory.limit_in_bytes"))),
      cpuMillis: Math.floor((quota * 1000) / CFS_PERIOD_US),
      pids: Number(readOr(join(groupDir(layout, "pids", groupPath) ?? "", "pids.max"), "0").trim()),
    };
  }
  const [q] = readOr(join(mem, "cpu.max")).trim().split(" ");
  return {
    memoryBytes: big(readOr(join(mem, "memory.max"))),
    cpuMillis: Math.floor((Number(q) * 1000) / CFS_PERIOD_US),
    pids: Number(readOr(join(mem, "pids.max"), "0").trim()),
  };
}

function rmdirTree(dir: string, depth: number): void {
  if (depth > 8 || !existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name), depth + 1);
  try {
    rmdirSync(dir);
  } catch {
    // Still has tasks (a container is running in it): left for the next pass.
  }
}

/** Removes an empty group and its empty children (conmon's) from every controller. */
export function removeGroup(layout: CgroupLayout, groupPath: string): void {
  const dirs = new Set<string>();
  for (const c of ["memory", "cpu", "cpuacct", "pids", "blkio", "io", "cpuset", "devices", "freezer"]) {
    const d = groupDir(layout, c, groupPath);
    if (d !== undefined) dirs.add(d);
  }
  for (const mount of ["cpuset", "devices", "freezer", "systemd"]) {
    // podman also creates the group in the controllers it does not limit.
    dirs.add(join("/sys/fs/cgroup", mount, groupPath));
  }
  for (const d of dirs) rmdirTree(d, 0);
}
