/**
 * The container driver port: the few operations the reconciler, metering and snapshots need from a
 * container runtime. podman.ts implements it on one machine; a Kubernetes driver would implement
 * the same port (k8s.ts already renders the objects it would apply). Every driver MUST pass
 * test/compute/driver-conformance.ts.
 */
import type { CgroupCounters, GroupLimits } from "./cgroup.ts";

/** Labels on containers and networks (podman labels, Kubernetes labels). */
export type Labels = Readonly<Record<string, string>>;

/** A host directory bound into a container. */
export interface Mount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly readOnly: boolean;
}

/** Where a container's root file system comes from. */
export type RootSource =
  | { readonly kind: "image"; readonly ref: string }
  /** A directory used as the root through an overlay (the directory itself is never written). */
  | { readonly kind: "rootfs"; readonly dir: string };

/** Everything a driver needs to start one container. */
export interface RunSpec {
  readonly name: string;
  readonly root: RootSource;
  /** The command; undefined keeps the image's own. */
  readonly cmd: readonly string[] | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly labels: Labels;
  readonly network: string;
  /** The IMVU's parent control group (its envelope caps all its containers together). */
  readonly group: string | undefined;
  readonly cpuMillis: number;
  readonly memoryBytes: bigint;
  readonly pids: number;
  readonly mounts: readonly Mount[];
  /** A container port published on 127.0.0.1 at a host port the runtime picks. */
  readonly port: number | undefined;
  /** "uid:gid" the workload runs as. */
  readonly user: string;
  readonly hostname: string;
}

/** Where a container is in its life. */
export type ContainerState = "running" | "exited" | "created" | "paused" | "stopping" | "unknown";

/** One container as the runtime reports it. */
export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly labels: Labels;
  readonly state: ContainerState;
  readonly exitCode: number;
  /** Host pid of the container's first process; 0 when not running. */
  readonly pid: number;
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  /** The 127.0.0.1 port the container's port is published on. */
  readonly hostPort: number | undefined;
  /** True when the container's last exit was an OOM kill (runtime state or kernel log). */
  readonly oomKilled: boolean;
}

/** A network's identity. */
export interface NetworkInfo {
  readonly name: string;
  readonly subnet: string;
  readonly labels: Labels;
}

/** Cumulative counters of one running container. */
export interface ContainerUsage extends CgroupCounters {
  readonly netRxBytes: bigint;
  readonly netTxBytes: bigint;
}

/** The container runtime port. */
export interface ContainerDriver {
  /** "podman", "fake", ... */
  readonly kind: string;
  /** Creates the network if absent (isolated from every other IMVU network); idempotent. */
  ensureNetwork(name: string, labels: Labels): Promise<NetworkInfo>;
  /** Removes a network and its isolation rule; absent is fine. */
  removeNetwork(name: string): Promise<void>;
  /** Networks carrying all of `labels`. */
  listNetworks(labels: Labels): Promise<NetworkInfo[]>;
  /** Creates the IMVU's parent control group and sets its limits; true when something changed. */
  ensureGroup(path: string, limits: GroupLimits): Promise<boolean>;
  /** Removes an IMVU's parent group once no container is left in it. */
  removeGroup(path: string): Promise<void>;
  /** Creates and starts a container. */
  run(spec: RunSpec): Promise<ContainerInfo>;
  /** Starts an existing stopped container. */
  start(id: string): Promise<void>;
  /** Stops a container (SIGTERM, then SIGKILL after `timeoutMs`). */
  stop(id: string, timeoutMs: number): Promise<void>;
  /** Freezes a running container's processes (consistent snapshots) and thaws them. */
  pause(id: string): Promise<void>;
  unpause(id: string): Promise<void>;
  /** Removes a container, stopping it first; absent is fine. */
  remove(id: string): Promise<void>;
  /** Containers carrying all of `labels`, running or not. */
  list(labels: Labels): Promise<ContainerInfo[]>;
  /** Cumulative counters of a running container; undefined when it is not running. */
  stats(container: ContainerInfo): Promise<ContainerUsage | undefined>;
  /** The last `tailLines` lines of a container's output. */
  logs(id: string, tailLines: number): Promise<string>;
  /** Loads an OCI or docker archive; returns the image references it held. */
  load(archivePath: string): Promise<string[]>;
  /** Whether an image is present. */
  imageExists(ref: string): Promise<boolean>;
  /** Makes an image `ref` of a root file system tarball (the base image is built this way). */
  importRootfs(tarPath: string, ref: string, env: Readonly<Record<string, string>>): Promise<void>;
}
