/**
 * The podman driver: the container port over the `podman` CLI (JSON output), with runc and
 * cgroupfs passed on every call (crun fails on hybrid cgroup hierarchies), explicit ulimits
 * (root may lack CAP_SYS_RESOURCE), every call bounded by a timeout, every failure typed COMPUTE_*.
 * Inter-IMVU isolation on the wire is an iptables chain (see ensureIsolation).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { ensureGroup, readCounters, readLayout, readNetCounters, removeGroup, type CgroupLayout, type GroupLimits } from "./cgroup.ts";
import type { ContainerDriver, ContainerInfo, ContainerState, ContainerUsage, Labels, NetworkInfo, RunSpec } from "./driver.ts";
import { cpusFlag } from "./envelope.ts";
import { computeErrors } from "./errors.ts";
import { execBounded } from "./exec.ts";
import { oomKillsOf, readOomKills } from "./kernel-log.ts";

/** Bound on one podman call (no pulls happen: images are local or loaded). */
export const PODMAN_TIMEOUT_MS = 60_000;
/** Bound on a log tail. */
export const LOG_TAIL_LINES_MAX = 10_000;
/** Container log files rotate at this size (k8s-file driver). */
export const LOG_FILE_BYTES_MAX = 10 * 1024 * 1024;
/** The default pool IMVU networks are cut from, one /24 each. */
export const DEFAULT_SUBNET_POOL = "10.213.0.0/16";
/** The iptables chain that drops traffic between IMVU networks. */
export const ISOLATION_CHAIN = "NEXUS-ISOLATE";
/** Where Debian's podman finds catatonit for --init (a PID 1 that forwards SIGTERM). */
const CATATONIT = "/usr/libexec/podman/catatonit";
const NETWORK_CREATE_TRIES_MAX = 16;

/** Options of the podman driver. */
export interface PodmanOptions {
  readonly binary?: string;
  readonly runtime?: string;
  readonly cgroupManager?: string;
  readonly timeoutMs?: number;
  /** ulimits given to every container ("nofile=1024:1024"). */
  readonly ulimits?: readonly string[];
  /** The /16 that IMVU networks are cut from. */
  readonly subnetPool?: string;
  /** Working directory of podman and its conmons (conmon 2.1 drops an "oom" file in its cwd). */
  readonly workDir?: string;
}

/** What `podmanAvailable` found. */
export interface PodmanStatus {
  readonly available: boolean;
  readonly version: string | undefined;
  /** What was found, or what to do about it. */
  readonly message: string;
}

/** Whether podman and runc are installed, with the message to show when they are not. */
export function podmanAvailable(binary = "podman"): PodmanStatus {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) return { available: false, version: undefined, message: computeErrors.specs.COMPUTE_PODMAN_MISSING.message };
  const version = /(\d+\.\d+\.\d+)/.exec(r.stdout)?.[1];
  const runc = spawnSync("runc", ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (runc.status !== 0) {
    return { available: false, version, message: "runc is not installed: run `./nexus up` as root on Debian or `apt-get install runc`" };
  }
  return { available: true, version, message: `podman ${version ?? "?"} with runc` };
}

/** Packages the podman driver needs on Debian. */
export const PODMAN_PACKAGES: readonly string[] = ["podman", "runc", "catatonit", "iptables", "e2fsprogs"];

/** Installs podman, runc and what they need when run as root on Debian; returns the status after. */
export function ensurePodman(log: (line: string) => void = () => {}): PodmanStatus {
  const before = podmanAvailable();
  const missing = PODMAN_PACKAGES.filter((p) => spawnSync("dpkg-query", ["-W", "-f=${Status}", p], { encoding: "utf8" }).stdout?.includes("install ok installed") !== true);
  if (before.available && missing.length === 0) return before;
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  if (!root || !existsSync("/usr/bin/apt-get")) {
    log(`compute: ${before.message}`);
    return before;
  }
  log(`compute: installing ${missing.join(" ")} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore", env, timeout: 300_000 });
  spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "ignore", env, timeout: 600_000 });
  const after = podmanAvailable();
  log(`compute: ${after.message}`);
  return after;
}

/** The podman arguments that start `spec` (pure; the flags are the isolation contract). */
export function runArgs(spec: RunSpec, opts: { ulimits: readonly string[]; init: boolean }): string[] {
  const a = ["run", "-d", "--pull=never", "--name", spec.name, "--hostname", spec.hostname];
  a.push("--read-only", "--security-opt", "no-new-privileges", "--cap-drop", "all", "--user", spec.user);
  a.push("--memory", spec.memoryBytes.toString(), "--memory-swap", spec.memoryBytes.toString());
  a.push("--cpus", cpusFlag(spec.cpuMillis), "--pids-limit", String(spec.pids));
  for (const u of opts.ulimits) a.push("--ulimit", u);
  if (spec.group !== undefined) a.push("--cgroup-parent", spec.group);
  a.push("--network", spec.network);
  if (spec.port !== undefined) a.push("-p", `127.0.0.1::${spec.port}`);
  for (const m of spec.mounts) a.push("-v", `${m.hostPath}:${m.containerPath}:${m.readOnly ? "ro" : "rw"},nosuid,nodev`);
  for (const [k, v] of Object.entries(spec.env).sort(([x], [y]) => (x < y ? -1 : 1))) a.push("--env", `${k}=${v}`);
  for (const [k, v] of Object.entries(spec.labels).sort(([x], [y]) => (x < y ? -1 : 1))) a.push("--label", `${k}=${v}`);
  a.push("--log-driver", "k8s-file", "--log-opt", `max-size=${LOG_FILE_BYTES_MAX}`, "--stop-timeout", "5");
  if (opts.init) a.push("--init");
  if (spec.root.kind === "rootfs") a.push("--rootfs", `${spec.root.dir}:O`);
  else a.push(spec.root.ref);
  if (spec.cmd !== undefined) a.push(...spec.cmd);
  return a;
}

const PsEntry = z.object({
  Id: z.string(),
  Names: z.array(z.string()).default([]),
  Labels: z.record(z.string(), z.string()).nullable().default({}),
  State: z.string(),
  ExitCode: z.number().default(0),
  Pid: z.number().default(0),
  StartedAt: z.number().default(0),
  ExitedAt: z.number().default(0),
  Ports: z.array(z.object({ host_ip: z.string().optional(), container_port: z.number(), host_port: z.number() })).nullable().default([]),
});

const STATES: readonly ContainerState[] = ["running", "exited", "created", "paused", "stopping"];

/** Parses `podman ps --format json` (pure; OOM state is filled in by the caller). */
export function parsePs(json: string): ContainerInfo[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json === "" ? "[]" : json);
  } catch {
    throw computeErrors.make("COMPUTE_PODMAN_OUTPUT", "ps: not JSON");
  }
  const r = z.array(PsEntry).safeParse(raw);
  if (!r.success) throw computeErrors.make("COMPUTE_PODMAN_OUTPUT", `ps: ${r.error.issues[0]?.message ?? ""}`);
  return r.data.map((c) => ({
    id: c.Id,
    name: c.Names[0] ?? c.Id,
    labels: c.Labels ?? {},
    state: STATES.includes(c.State as ContainerState) ? (c.State as ContainerState) : c.State === "stopped" ? "exited" : "unknown",
    exitCode: c.ExitCode,
    pid: c.State === "running" ? c.Pid : 0,
    startedAtMs: c.StartedAt > 0 ? c.StartedAt * 1000 : 0,
    finishedAtMs: c.ExitedAt > 0 ? c.ExitedAt * 1000 : 0,
    hostPort: c.Ports?.find((p) => p.host_ip === undefined || p.host_ip === "127.0.0.1")?.host_port,
    oomKilled: false,
  }));
}

function ipToInt(ip: string): number {
  const p = ip.split(".").map(Number);
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The first /24 of a /16 pool that no `used` subnet overlaps (pure). */
export function pickSubnet(pool: string, used: readonly string[], skip = 0): string | undefined {
  const [base, bitsText] = pool.split("/");
  const bits = Number(bitsText);
  if (base === undefined || !(bits >= 8 && bits <= 24)) return undefined;
  const start = ipToInt(base) & (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);
  const count = 2 ** (24 - bits);
  const taken = used.map((s) => {
    const [b, m] = s.split("/");
    const mask = Number(m);
    const lo = ipToInt(b ?? "0.0.0.0") & ((~0 << (32 - mask)) >>> 0);
    return [lo >>> 0, (lo + 2 ** (32 - mask) - 1) >>> 0] as const;
  });
  let skipped = 0;
  for (let i = 0; i < count; i++) {
    const lo = (start + i * 256) >>> 0;
    const hi = lo + 255;
    if (taken.some(([a, b]) => a <= hi && lo <= b)) continue;
    if (skipped++ < skip) continue;
    return `${intToIp(lo)}/24`;
  }
  return undefined;
}

const NetEntry = z.object({
  name: z.string(),
  subnets: z.array(z.object({ subnet: z.string() })).nullable().default([]),
  labels: z.record(z.string(), z.string()).nullable().default({}),
});

function labelFilters(labels: Labels): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--filter", `label=${k}=${v}`]);
}

/** The podman implementation of the container port. */
export class PodmanDriver implements ContainerDriver {
  readonly kind = "podman";
  readonly #bin: string;
  readonly #global: string[];
  readonly #timeoutMs: number;
  readonly #ulimits: readonly string[];
  readonly #pool: string;
  readonly #init: boolean;
  readonly #layout: CgroupLayout | undefined;
  readonly #cwd: string;

  constructor(opts: PodmanOptions = {}) {
    this.#cwd = opts.workDir ?? join(tmpdir(), "nexus-podman");
    mkdirSync(this.#cwd, { recursive: true, mode: 0o700 });
    this.#bin = opts.binary ?? "podman";
    this.#global = ["--runtime", opts.runtime ?? "runc", "--cgroup-manager", opts.cgroupManager ?? "cgroupfs"];
    this.#timeoutMs = opts.timeoutMs ?? PODMAN_TIMEOUT_MS;
    this.#ulimits = opts.ulimits ?? ["nofile=1024:1024", "nproc=4096:4096"];
    this.#pool = opts.subnetPool ?? DEFAULT_SUBNET_POOL;
    this.#init = existsSync(CATATONIT);
    this.#layout = readLayout();
  }

  /** The /16 IMVU networks are cut from. */
  get subnetPool(): string {
    return this.#pool;
  }

  /** Runs `podman <args>` with the global flags and the call's timeout. */
  podman(args: readonly string[], okCodes?: readonly number[]): Promise<{ stdout: string; stderr: string; code: number }> {
    const opts = { timeoutMs: this.#timeoutMs, what: `podman ${args.slice(0, 2).join(" ")}`, cwd: this.#cwd, ...(okCodes ? { okCodes } : {}) };
    return execBounded(this.#bin, [...this.#global, ...args], opts);
  }

  async listNetworks(labels: Labels): Promise<NetworkInfo[]> {
    const { stdout } = await this.podman(["network", "ls", "--format", "json", ...labelFilters(labels)]);
    const r = z.array(NetEntry).safeParse(JSON.parse(stdout === "" ? "[]" : stdout));
    if (!r.success) throw computeErrors.make("COMPUTE_PODMAN_OUTPUT", "network ls");
    return r.data.map((n) => ({ name: n.name, subnet: n.subnets?.[0]?.subnet ?? "", labels: n.labels ?? {} }));
  }

  async ensureNetwork(name: string, labels: Labels): Promise<NetworkInfo> {
    let all = await this.listNetworks({});
    let net = all.find((n) => n.name === name);
    for (let attempt = 0; net === undefined && attempt < NETWORK_CREATE_TRIES_MAX; attempt++) {
      if (attempt > 0) all = await this.listNetworks({});
      // Another process may take the same free /24 at the same moment: then try the next one.
      const subnet = pickSubnet(this.#pool, all.map((n) => n.subnet).filter((s) => s !== ""), attempt);
      if (subnet === undefined) throw computeErrors.make("COMPUTE_NETWORK_FAILED", `no free /24 left in ${this.#pool}`);
      const labelArgs = Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
      const r = await this.podman(["network", "create", "--disable-dns", "--subnet", subnet, ...labelArgs, name], [125]);
      if (r.code === 0) net = { name, subnet, labels };
      else if (/already exists/.test(r.stderr)) net = (await this.listNetworks({})).find((n) => n.name === name);
      else if (!/subnet|overlap|in use/i.test(r.stderr)) throw computeErrors.make("COMPUTE_NETWORK_FAILED", r.stderr.trim());
    }
    if (net === undefined) throw computeErrors.make("COMPUTE_NETWORK_FAILED", `${name}: no subnet could be taken`);
    await ensureIsolation(net.subnet, this.#pool, this.#timeoutMs);
    return net;
  }

  async removeNetwork(name: string): Promise<void> {
    const net = (await this.listNetworks({})).find((n) => n.name === name);
    if (net === undefined) return;
    await this.podman(["network", "rm", "-f", name]);
    if (net.subnet !== "") await removeIsolation(net.subnet, this.#timeoutMs);
  }

  async ensureGroup(path: string, limits: GroupLimits): Promise<boolean> {
    if (this.#layout === undefined) throw computeErrors.make("COMPUTE_CGROUP_FAILED", "no cgroup file system is mounted");
    return ensureGroup(this.#layout, path, limits);
  }

  async removeGroup(path: string): Promise<void> {
    if (this.#layout !== undefined) removeGroup(this.#layout, path);
  }

  async run(spec: RunSpec): Promise<ContainerInfo> {
    const { stdout } = await this.podman(runArgs(spec, { ulimits: this.#ulimits, init: this.#init }));
    const id = stdout.trim().split("\n").pop() ?? "";
    const [info] = await this.#ps(["--filter", `id=${id}`]);
    if (info === undefined) throw computeErrors.make("COMPUTE_PODMAN_FAILED", `container ${spec.name} vanished after start`);
    return info;
  }

  async start(id: string): Promise<void> {
    await this.podman(["start", id]);
  }

  async stop(id: string, timeoutMs: number): Promise<void> {
    await this.podman(["stop", "--ignore", "-t", String(Math.ceil(timeoutMs / 1000)), id]);
  }

  async pause(id: string): Promise<void> {
    await this.podman(["pause", id]);
  }

  async unpause(id: string): Promise<void> {
    await this.podman(["unpause", id]);
  }

  async remove(id: string): Promise<void> {
    await this.podman(["rm", "-f", "--ignore", "-t", "2", id]);
  }

  async list(labels: Labels): Promise<ContainerInfo[]> {
    return this.#ps(labelFilters(labels));
  }

  async #ps(filters: string[]): Promise<ContainerInfo[]> {
    const { stdout } = await this.podman(["ps", "-a", "--format", "json", ...filters]);
    const list = parsePs(stdout);
    const exited = list.filter((c) => c.state === "exited" && c.exitCode === 137);
    if (exited.length === 0) return list;
    // podman's own OOMKilled first; the kernel log for what conmon missed (see kernel-log.ts).
    const { stdout: insp } = await this.podman(["inspect", "--type", "container", "--format", "json", ...exited.map((c) => c.id)], [125]);
    const oomByRuntime = new Set<string>();
    try {
      for (const c of JSON.parse(insp === "" ? "[]" : insp) as { Id?: string; State?: { OOMKilled?: boolean } }[]) {
        if (c.State?.OOMKilled === true && c.Id !== undefined) oomByRuntime.add(c.Id);
      }
    } catch {
      // A container removed between the two calls: inspect printed nothing parseable.
    }
    const kills = readOomKills();
    return list.map((c) => (exited.includes(c) && (oomByRuntime.has(c.id) || oomKillsOf(kills, c.id).length > 0) ? { ...c, oomKilled: true } : c));
  }

  async stats(c: ContainerInfo): Promise<ContainerUsage | undefined> {
    if (c.state !== "running" || c.pid <= 0 || this.#layout === undefined) return undefined;
    const counters = readCounters(this.#layout, c.pid);
    if (counters === undefined) return undefined;
    const net = readNetCounters(c.pid);
    return { ...counters, netRxBytes: net.rx, netTxBytes: net.tx };
  }

  async logs(id: string, tailLines: number): Promise<string> {
    const n = Math.max(0, Math.min(LOG_TAIL_LINES_MAX, Math.floor(tailLines)));
    const { stdout, stderr } = await this.podman(["logs", "--tail", String(n), id]);
    return stdout + stderr;
  }

  async load(archivePath: string): Promise<string[]> {
    let out: string;
    try {
      out = (await this.podman(["load", "-q", "-i", archivePath])).stdout;
    } catch (e) {
      throw computeErrors.make("COMPUTE_IMAGE_LOAD_FAILED", (e as Error).message);
    }
    const refs = out
      .split("\n")
      .map((l) => /^Loaded image(?:\(s\))?:\s*(.+)$/.exec(l.trim())?.[1])
      .filter((s): s is string => s !== undefined)
      .flatMap((s) => s.split(","))
      .map((s) => s.trim())
      .filter((s) => s !== "");
    if (refs.length === 0) throw computeErrors.make("COMPUTE_IMAGE_LOAD_FAILED", `no image in ${archivePath}`);
    return refs;
  }

  async importRootfs(tarPath: string, ref: string, env: Readonly<Record<string, string>>): Promise<void> {
    const changes = Object.entries(env).flatMap(([k, v]) => ["--change", `ENV ${k}=${v}`]);
    await this.podman(["import", "-q", ...changes, tarPath, ref]);
  }

  async imageExists(ref: string): Promise<boolean> {
    const r = await this.podman(["image", "exists", ref], [1]);
    return r.code === 0;
  }
}

async function iptables(args: readonly string[], timeoutMs: number, okCodes: readonly number[] = []): Promise<number> {
  const r = await execBounded("iptables", ["-w", "10", ...args], { timeoutMs, what: `iptables ${args.join(" ")}`, okCodes }).catch((e: unknown) => {
    throw computeErrors.make("COMPUTE_FIREWALL_FAILED", (e as Error).message);
  });
  return r.code;
}

/**
 * Drops forwarded traffic between IMVU networks. Podman's bridges are routed through the host, so
 * without this any IMVU reaches any other's containers. One chain, jumped to first from FORWARD and
 * from CNI-ADMIN (the CNI firewall plugin's admin chain, evaluated before its own ACCEPTs):
 *   -s S -d S -j RETURN      (one per IMVU network: its own subnet)
 *   -s POOL -d POOL -j DROP  (anything else between two IMVU subnets)
 * Fails closed: an IMVU network whose rule cannot be installed is reported as an error.
 */
export async function ensureIsolation(subnet: string, pool: string, timeoutMs: number): Promise<void> {
  if ((await iptables(["-n", "-L", ISOLATION_CHAIN], timeoutMs, [1])) !== 0) await iptables(["-N", ISOLATION_CHAIN], timeoutMs, [1]);
  for (const parent of ["FORWARD", "CNI-ADMIN"]) {
    if (parent === "CNI-ADMIN" && (await iptables(["-n", "-L", parent], timeoutMs, [1])) !== 0) await iptables(["-N", parent], timeoutMs, [1]);
    if ((await iptables(["-C", parent, "-j", ISOLATION_CHAIN], timeoutMs, [1])) !== 0) await iptables(["-I", parent, "1", "-j", ISOLATION_CHAIN], timeoutMs);
  }
  if ((await iptables(["-C", ISOLATION_CHAIN, "-s", subnet, "-d", subnet, "-j", "RETURN"], timeoutMs, [1])) !== 0) {
    await iptables(["-I", ISOLATION_CHAIN, "1", "-s", subnet, "-d", subnet, "-j", "RETURN"], timeoutMs);
  }
  if ((await iptables(["-C", ISOLATION_CHAIN, "-s", pool, "-d", pool, "-j", "DROP"], timeoutMs, [1])) !== 0) {
    await iptables(["-A", ISOLATION_CHAIN, "-s", pool, "-d", pool, "-j", "DROP"], timeoutMs);
  }
}

/** Removes a network's RETURN rule (the pool's DROP stays: it only ever denies). */
export async function removeIsolation(subnet: string, timeoutMs: number): Promise<void> {
  await iptables(["-D", ISOLATION_CHAIN, "-s", subnet, "-d", subnet, "-j", "RETURN"], timeoutMs, [1, 2]);
}
