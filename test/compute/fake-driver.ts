/** An in-memory container driver: the reconciler's tests without podman; passes the conformance suite too. */
import type { ContainerDriver, ContainerInfo, ContainerUsage, Labels, NetworkInfo, RunSpec } from "../../src/services/compute/driver.ts";
import type { GroupLimits } from "../../src/services/compute/cgroup.ts";

interface FakeContainer {
  info: ContainerInfo;
  spec: RunSpec;
  logs: string[];
}

function matches(labels: Labels, want: Labels): boolean {
  return Object.entries(want).every(([k, v]) => labels[k] === v);
}

/** The fake runtime; `crash` and `oom` play what a real runtime does on its own. */
export class FakeDriver implements ContainerDriver {
  readonly kind = "fake";
  readonly containers = new Map<string, FakeContainer>();
  readonly networks = new Map<string, NetworkInfo>();
  readonly groups = new Map<string, GroupLimits>();
  readonly images = new Set<string>(["localhost/fake:1"]);
  calls: string[] = [];
  #next = 1;
  #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  #set(id: string, patch: Partial<ContainerInfo>): void {
    const c = this.containers.get(id);
    if (c) c.info = { ...c.info, ...patch };
  }

  /** The container exits on its own (code, or an OOM kill). */
  crash(id: string, opts: { exitCode?: number; oom?: boolean } = {}): void {
    this.#set(id, { state: "exited", pid: 0, exitCode: opts.oom ? 137 : (opts.exitCode ?? 1), oomKilled: opts.oom === true, finishedAtMs: this.#clock() });
  }

  async ensureNetwork(name: string, labels: Labels): Promise<NetworkInfo> {
    this.calls.push(`ensureNetwork ${name}`);
    const n = this.networks.get(name) ?? { name, subnet: `10.213.${this.networks.size}.0/24`, labels };
    this.networks.set(name, n);
    return n;
  }

  async removeNetwork(name: string): Promise<void> {
    this.calls.push(`removeNetwork ${name}`);
    this.networks.delete(name);
  }

  async listNetworks(labels: Labels): Promise<NetworkInfo[]> {
    return [...this.networks.values()].filter((n) => matches(n.labels, labels));
  }

  async ensureGroup(path: string, limits: GroupLimits): Promise<boolean> {
    const prev = this.groups.get(path);
    this.groups.set(path, limits);
    return prev === undefined || prev.cpuMillis !== limits.cpuMillis || prev.memoryBytes !== limits.memoryBytes || prev.pids !== limits.pids;
  }

  async removeGroup(path: string): Promise<void> {
    for (const p of [...this.groups.keys()]) if (p === path || p.startsWith(`${path}/`)) this.groups.delete(p);
  }

  async run(spec: RunSpec): Promise<ContainerInfo> {
    this.calls.push(`run ${spec.name}`);
    if ([...this.containers.values()].some((c) => c.info.name === spec.name)) throw new Error(`name ${spec.name} in use`);
    if (spec.root.kind === "image" && !this.images.has(spec.root.ref)) throw new Error(`no image ${spec.root.ref}`);
    if (!this.networks.has(spec.network)) throw new Error(`no network ${spec.network}`);
    const id = (this.#next++).toString(16).padStart(64, "0");
    const info: ContainerInfo = {
      id, name: spec.name, labels: spec.labels, state: "running", exitCode: 0, pid: 1000 + this.#next,
      startedAtMs: this.#clock(), finishedAtMs: 0, hostPort: spec.port === undefined ? undefined : 40000 + this.#next, oomKilled: false,
    };
    this.containers.set(id, { info, spec, logs: ["hello", `started ${spec.name}`] });
    return info;
  }

  #get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    return c;
  }

  async start(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    this.#get(id);
    this.#set(id, { state: "running", pid: 2000 + this.#next++, startedAtMs: this.#clock(), oomKilled: false });
  }

  async stop(id: string): Promise<void> {
    this.calls.push(`stop ${id}`);
    if (!this.containers.has(id)) return;
    if (this.#get(id).info.state === "running" || this.#get(id).info.state === "paused") this.#set(id, { state: "exited", exitCode: 143, pid: 0, finishedAtMs: this.#clock() });
  }

  async pause(id: string): Promise<void> {
    if (this.#get(id).info.state !== "running") throw new Error("not running");
    this.#set(id, { state: "paused" });
  }

  async unpause(id: string): Promise<void> {
    if (this.#get(id).info.state !== "paused") throw new Error("not paused");
    this.#set(id, { state: "running" });
  }

  async remove(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    this.containers.delete(id);
  }

  async list(labels: Labels): Promise<ContainerInfo[]> {
    return [...this.containers.values()].map((c) => c.info).filter((i) => matches(i.labels, labels));
  }

  async stats(c: ContainerInfo): Promise<ContainerUsage | undefined> {
    if (this.containers.get(c.id)?.info.state !== "running") return undefined;
    return {
      cpuNanos: 1_000_000n, memoryBytes: 1024n, memoryPeakBytes: 2048n, blkReadBytes: 0n, blkWriteBytes: 0n,
      pids: 1, pidsLimitHits: 0, oomKills: 0, netRxBytes: 0n, netTxBytes: 0n,
    };
  }

  async logs(id: string, tailLines: number): Promise<string> {
    return this.#get(id).logs.slice(-tailLines).join("\n") + "\n";
  }

  async load(archivePath: string): Promise<string[]> {
    const ref = `localhost/loaded:${archivePath.length}`;
    this.images.add(ref);
    return [ref];
  }

  async imageExists(ref: string): Promise<boolean> {
    return this.images.has(ref);
  }

  async importRootfs(_tar: string, ref: string): Promise<void> {
    this.images.add(ref);
  }
}
