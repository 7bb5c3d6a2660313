/**
 * The compute fabric of one Nexus installation: driver, volumes, snapshots, reconciler and
 * metering wired together under $NEXUS_HOME/compute. The CLI verbs (deploy, list, stop, logs,
 * usage, snapshot, restore, manifests) are thin calls on this once the gates have passed.
 */
import { join } from "node:path";
import { ensureBaseImage } from "./base-image.ts";
import { readLayout, resetMemoryPeak } from "./cgroup.ts";
import type { ContainerDriver, ContainerInfo, ContainerUsage } from "./driver.ts";
import type { Envelope } from "./envelope.ts";
import { computeErrors } from "./errors.ts";
import { manifestList, renderManifests, type KubeObject } from "./k8s.ts";
import { Sampler } from "./metering.ts";
import { FabricSchema, LABEL_FABRIC, LABEL_IMVU, LABEL_WORKLOAD, slug } from "./names.ts";
import { PodmanDriver, podmanAvailable } from "./podman.ts";
import { Reconciler, STOP_TIMEOUT_MS, type DesiredState, type ImvuDesired, type ReconcileReport, type WorkloadSpec } from "./reconciler.ts";
import { createSnapshot, deleteSnapshot, extractSnapshot, listSnapshots, type SnapshotInfo } from "./snapshot.ts";
import { Volumes, type VolumeInfo, type VolumeMode } from "./volumes.ts";

/** Options of a fabric. */
export interface ComputeOptions {
  /** $NEXUS_HOME: compute keeps volumes, snapshots and its cache under <home>/compute. */
  readonly home: string;
  /** Separates installations (and test runs) on one machine; default "main". */
  readonly fabric?: string;
  /** Default: podman (fails with COMPUTE_PODMAN_MISSING when it is not installed). */
  readonly driver?: ContainerDriver;
  readonly volumeMode?: VolumeMode | "auto";
  readonly log?: (line: string) => void;
}

/** One workload as `compute list` shows it. */
export interface WorkloadStatus {
  readonly imvu: string;
  readonly name: string;
  readonly containerId: string;
  readonly state: ContainerInfo["state"];
  readonly exitCode: number;
  readonly oomKilled: boolean;
  /** Where the gateway reaches it: 127.0.0.1:<hostPort>. */
  readonly hostPort: number | undefined;
  readonly startedAtMs: number;
}

/** What restoring did. */
export interface RestoreResult {
  /** The snapshot of the state just before the restore (gate 12). */
  readonly preRestore: SnapshotInfo;
  readonly restored: string;
  readonly entries: number;
}

/** A compute fabric. */
export class ComputeFabric {
  readonly fabric: string;
  readonly driver: ContainerDriver;
  readonly volumes: Volumes;
  readonly reconciler: Reconciler;
  readonly #root: string;
  readonly #log: (line: string) => void;
  #base: Promise<string> | undefined;

  constructor(opts: ComputeOptions) {
    this.fabric = FabricSchema.parse(opts.fabric ?? "main");
    if (opts.driver === undefined) {
      const status = podmanAvailable();
      if (!status.available) throw computeErrors.make("COMPUTE_PODMAN_MISSING", status.version === undefined ? undefined : status.message);
    }
    this.#root = join(opts.home, "compute", this.fabric);
    this.driver = opts.driver ?? new PodmanDriver({ workDir: join(this.#root, "run") });
    this.#log = opts.log ?? (() => {});
    this.volumes = new Volumes({ root: join(this.#root, "volumes"), mode: opts.volumeMode ?? "auto" });
    this.reconciler = new Reconciler({
      driver: this.driver, volumes: this.volumes, fabric: this.fabric, baseImage: () => this.baseImage(), log: this.#log,
    });
  }

  /** The base image reference (built once, then cached by podman). */
  baseImage(): Promise<string> {
    this.#base ??= ensureBaseImage(this.driver, { cacheDir: join(this.#root, "..", "cache"), log: this.#log }).catch((e: unknown) => {
      this.#base = undefined;
      throw e;
    });
    return this.#base;
  }

  /** Converges the runtime to `desired` once. */
  reconcile(desired: DesiredState): Promise<ReconcileReport> {
    return this.reconciler.reconcile(desired);
  }

  #labels(imvu?: string): Record<string, string> {
    return { [LABEL_FABRIC]: this.fabric, ...(imvu !== undefined ? { [LABEL_IMVU]: imvu } : {}) };
  }

  /** The workloads of one IMVU (or all), as the runtime shows them. */
  async list(imvu?: string): Promise<WorkloadStatus[]> {
    const cs = await this.driver.list(this.#labels(imvu));
    return cs
      .map((c) => ({
        imvu: c.labels[LABEL_IMVU] ?? "", name: c.labels[LABEL_WORKLOAD] ?? "", containerId: c.id, state: c.state,
        exitCode: c.exitCode, oomKilled: c.oomKilled, hostPort: c.hostPort, startedAtMs: c.startedAtMs,
      }))
      .sort((a, b) => (a.imvu + a.name < b.imvu + b.name ? -1 : 1));
  }

  async #container(imvu: string, name: string): Promise<ContainerInfo> {
    const [c] = await this.driver.list({ ...this.#labels(imvu), [LABEL_WORKLOAD]: name });
    if (c === undefined) throw computeErrors.make("COMPUTE_WORKLOAD_NOT_FOUND", `${imvu}/${name}`);
    return c;
  }

  /** The last lines a workload printed. */
  async logs(imvu: string, name: string, tailLines: number): Promise<string> {
    return this.driver.logs((await this.#container(imvu, name)).id, tailLines);
  }

  /** Current counters of each running workload and the volume's usage. */
  async usage(imvu: string, envelope: Envelope): Promise<{ workloads: { name: string; usage: ContainerUsage }[]; volume: VolumeInfo }> {
    const workloads: { name: string; usage: ContainerUsage }[] = [];
    for (const c of await this.driver.list(this.#labels(imvu))) {
      const u = await this.driver.stats(c);
      if (u !== undefined) workloads.push({ name: c.labels[LABEL_WORKLOAD] ?? "", usage: u });
    }
    return { workloads, volume: this.volumes.usage(imvu, envelope.diskBytes) };
  }

  /** Loads an OCI archive a creator brings; returns its image references. */
  load(archivePath: string): Promise<string[]> {
    return this.driver.load(archivePath);
  }

  #snapshots(imvu: string): string {
    return join(this.#root, "snapshots", slug(imvu));
  }

  /** Snapshots an IMVU's volume, freezing its running containers meanwhile. */
  async snapshot(imvu: string): Promise<SnapshotInfo> {
    const running = (await this.driver.list(this.#labels(imvu))).filter((c) => c.state === "running");
    const paused: string[] = [];
    try {
      for (const c of running) {
        await this.driver.pause(c.id);
        paused.push(c.id);
      }
      return await createSnapshot(await this.volumes.ready(imvu), this.#snapshots(imvu));
    } finally {
      for (const id of paused) await this.driver.unpause(id).catch(() => undefined);
    }
  }

  /** The snapshots of an IMVU. */
  listSnapshots(imvu: string): SnapshotInfo[] {
    return listSnapshots(this.#snapshots(imvu));
  }

  /** Deletes a snapshot (only after the gate has checked the owner asked). */
  deleteSnapshot(imvu: string, digest: string): Promise<void> {
    return deleteSnapshot(this.#snapshots(imvu), digest);
  }

  /** Restores a snapshot: stops the IMVU's workloads, snapshots the current state, replaces, restarts. */
  async restore(imvu: string, digest: string): Promise<RestoreResult> {
    const path = await this.volumes.ready(imvu);
    this.reconciler.hold(imvu);
    const stopped: string[] = [];
    try {
      for (const c of await this.driver.list(this.#labels(imvu))) {
        if (c.state !== "running" && c.state !== "paused") continue;
        await this.driver.stop(c.id, STOP_TIMEOUT_MS);
        stopped.push(c.id);
      }
      const preRestore = await createSnapshot(path, this.#snapshots(imvu));
      const { entries } = await extractSnapshot(this.#snapshots(imvu), digest, path);
      return { preRestore, restored: digest, entries };
    } finally {
      for (const id of stopped) await this.driver.start(id).catch(() => undefined);
      this.reconciler.release(imvu);
    }
  }

  /** A sampler of this fabric's workloads (memory peaks reset at each boundary where possible). */
  sampler(intervalMs: number): Sampler {
    const layout = readLayout();
    return new Sampler({
      driver: this.driver, fabric: this.fabric, intervalMs,
      ...(layout !== undefined && this.driver.kind === "podman" ? { resetPeak: (c: { pid: number }) => void resetMemoryPeak(layout, c.pid) } : {}),
    });
  }

  /** The IMVU as Kubernetes objects (`compute manifests --imvu X`). */
  manifests(desired: ImvuDesired, image: (w: WorkloadSpec) => string): { apiVersion: "v1"; kind: "List"; items: readonly KubeObject[] } {
    return manifestList(renderManifests({ imvu: desired.imvu, envelope: desired.envelope, workloads: desired.workloads, image }));
  }

  /** Removes every container, network and group of the fabric, and unmounts its volumes (data kept unless `volumes`). */
  async teardown(opts: { volumes?: boolean } = {}): Promise<void> {
    await this.reconciler.stop();
    const report = await this.reconcile({ imvus: [] });
    const failed = report.results.filter((r) => !r.ok);
    await this.volumes.unmountAll(opts.volumes === true);
    await this.driver.removeGroup(`/nexus/${this.fabric}`);
    if (failed.length > 0) throw computeErrors.make("COMPUTE_PODMAN_FAILED", `teardown: ${failed.map((f) => f.error?.message).join("; ")}`);
  }
}
