/**
 * The reconciler: desired state in, runtime converged, report out. `plan` is pure (desired run
 * specifications + what the runtime shows → actions and events); `Reconciler` is the shell that
 * observes, plans, executes and reports. It adopts containers by label after a restart of Nexus:
 * a running container whose spec-hash label matches what is desired is kept as it is.
 */
import { z } from "zod";
import { sha256Hex } from "../../core/crypto/hash.ts";
import { isNexusError } from "../../core/errors.ts";
import { appCommand as defaultAppCommand, NODE_PATH } from "./base-image.ts";
import type { ContainerDriver, ContainerInfo, NetworkInfo, RunSpec } from "./driver.ts";
import type { Envelope } from "./envelope.ts";
import { computeErrors } from "./errors.ts";
import { containerName, groupPath, LABEL_FABRIC, LABEL_IMVU, LABEL_SPEC, LABEL_WORKLOAD, networkName, WorkloadNameSchema } from "./names.ts";
import { WORKLOAD_GID, WORKLOAD_UID, type Volumes } from "./volumes.ts";

/** Bounds on what one IMVU may declare. */
export const WORKLOADS_PER_IMVU_MAX = 32;
export const ENV_VARS_MAX = 128;
/** Restart back-off: doubles from the base per restart within the window, up to the cap. */
export const RESTART_BACKOFF_BASE_MS = 1000;
export const RESTART_BACKOFF_MAX_MS = 60_000;
export const RESTART_WINDOW_MS = 10 * 60_000;
/** Actions of one phase run this many at a time (podman calls are mostly waiting on the kernel). */
export const ACTIONS_PARALLEL_MAX = 4;
/** Grace given to a workload between SIGTERM and SIGKILL. */
export const STOP_TIMEOUT_MS = 5000;

/** Where a workload's root file system comes from. */
export const WorkloadSourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("image"), ref: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,511}$/, "an image reference") }),
  z.object({ kind: z.literal("rootfs"), dir: z.string().regex(/^\/[^\0:,]{0,4095}$/, "an absolute directory without ':' or ','") }),
  z.object({ kind: z.literal("app"), dir: z.string().regex(/^\/[^\0:,]{0,4095}$/, "an absolute directory without ':' or ','") }),
]);

/** One workload as the desired state declares it (from `deploy --imvu X --name web ...`). */
export const WorkloadSpecSchema = z
  .object({
    name: WorkloadNameSchema,
    source: WorkloadSourceSchema,
    cmd: z.array(z.string().max(4096)).min(1).max(256).optional(),
    port: z.number().int().min(1).max(65_535).optional(),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(32_768))
      .refine((e) => Object.keys(e).length <= ENV_VARS_MAX, `at most ${ENV_VARS_MAX} variables`)
      .optional(),
    state: z.enum(["running", "stopped"]).optional(),
    /** The workload's own limits inside the IMVU's (each capped by the envelope; the IMVU's parent group caps the sum). */
    resources: z
      .object({ cpuMillis: z.number().int().min(10).optional(), memoryBytes: z.bigint().optional(), pids: z.number().int().min(8).optional() })
      .strict()
      .optional(),
  })
  .strict();

/** A workload declaration. */
export type WorkloadSpec = z.output<typeof WorkloadSpecSchema>;

/** One IMVU's desired compute. */
export interface ImvuDesired {
  readonly imvu: string;
  readonly envelope: Envelope;
  readonly workloads: readonly WorkloadSpec[];
}

/** Everything the fabric should run. */
export interface DesiredState {
  readonly imvus: readonly ImvuDesired[];
}

/** Where the desired state comes from (the lead's ledger projection implements it). */
export interface DesiredStateSource {
  desired(): Promise<DesiredState>;
}

/** What a run specification needs beyond the declaration. */
export interface SpecContext {
  readonly fabric: string;
  readonly baseImage: string | undefined;
  readonly volumePath: string;
  readonly volumeReadOnly: boolean;
  readonly appCommand: (dir: string) => string[];
}

/** Canonical JSON of a run specification without labels (bigints as strings, keys sorted). */
function canonical(v: unknown): string {
  if (typeof v === "bigint") return JSON.stringify(v.toString());
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The hash a container is labelled with: any change of what it runs or its limits changes it. */
export function specHash(spec: RunSpec): string {
  const { labels: _labels, ...rest } = spec;
  return sha256Hex(canonical(rest)).slice(0, 32);
}

/** The run specification of a declared workload (pure given `ctx`). */
export function runSpecFor(imvu: string, envelope: Envelope, w: WorkloadSpec, ctx: SpecContext): RunSpec {
  const env: Record<string, string> = { HOME: "/data", ...(w.port !== undefined ? { PORT: String(w.port) } : {}), ...(w.env ?? {}) };
  const mounts = [{ hostPath: ctx.volumePath, containerPath: "/data", readOnly: ctx.volumeReadOnly }];
  let root: RunSpec["root"];
  let cmd = w.cmd;
  if (w.source.kind === "image") root = { kind: "image", ref: w.source.ref };
  else if (w.source.kind === "rootfs") root = { kind: "rootfs", dir: w.source.dir };
  else {
    if (ctx.baseImage === undefined) throw computeErrors.make("COMPUTE_BASE_IMAGE_FAILED", "an app workload needs the base image");
    root = { kind: "image", ref: ctx.baseImage };
    mounts.push({ hostPath: w.source.dir, containerPath: "/app", readOnly: true });
    cmd = w.cmd ?? ctx.appCommand(w.source.dir);
    if (cmd[0] === "node") cmd = [NODE_PATH, ...cmd.slice(1)];
  }
  const base: RunSpec = {
    name: containerName(ctx.fabric, imvu, w.name),
    root,
    cmd,
    env,
    labels: {},
    network: networkName(ctx.fabric, imvu),
    group: groupPath(ctx.fabric, imvu),
    cpuMillis: Math.min(envelope.cpuMillis, w.resources?.cpuMillis ?? envelope.cpuMillis),
    memoryBytes: w.resources?.memoryBytes !== undefined && w.resources.memoryBytes < envelope.memoryBytes ? w.resources.memoryBytes : envelope.memoryBytes,
    pids: Math.min(envelope.pids, w.resources?.pids ?? envelope.pids),
    mounts,
    port: w.port,
    user: `${WORKLOAD_UID}:${WORKLOAD_GID}`,
    hostname: w.name,
  };
  const hash = specHash(base);
  return { ...base, labels: { [LABEL_FABRIC]: ctx.fabric, [LABEL_IMVU]: imvu, [LABEL_WORKLOAD]: w.name, [LABEL_SPEC]: hash } };
}

/** A workload the planner should converge. */
export interface DesiredWorkload {
  readonly imvu: string;
  readonly name: string;
  readonly state: "running" | "stopped";
  readonly spec: RunSpec;
}

/** What the runtime shows for one fabric. */
export interface Observed {
  readonly containers: readonly ContainerInfo[];
  readonly networks: readonly NetworkInfo[];
}

/** Planner inputs that are not state. */
export interface PlanContext {
  readonly fabric: string;
  readonly nowMs: number;
  /** Containers this process already manages (others running and matching are adopted). */
  readonly known: ReadonlySet<string>;
  /** Earliest restart time per "imvu/workload" (back-off). */
  readonly notBefore: ReadonlyMap<string, number>;
  /** "imvu/workload" keys whose declaration could not be resolved this pass: their containers are left as they are. */
  readonly untouchable?: ReadonlySet<string>;
}

/** One step toward the desired state. */
export type Action =
  | { readonly type: "create-network"; readonly imvu: string; readonly network: string }
  | { readonly type: "run"; readonly imvu: string; readonly workload: string; readonly spec: RunSpec }
  | { readonly type: "start"; readonly imvu: string; readonly workload: string; readonly containerId: string; readonly reason: "exited" | "oom-killed" | "created" }
  | { readonly type: "stop"; readonly imvu: string; readonly workload: string; readonly containerId: string }
  | { readonly type: "remove"; readonly imvu: string; readonly workload: string; readonly containerId: string; readonly reason: "spec-changed" | "undesired" | "duplicate" | "broken" }
  | { readonly type: "adopt"; readonly imvu: string; readonly workload: string; readonly containerId: string }
  | { readonly type: "wait"; readonly imvu: string; readonly workload: string; readonly containerId: string; readonly untilMs: number }
  | { readonly type: "remove-network"; readonly imvu: string; readonly network: string };

/** Something the runtime did on its own that the ledger should hear about. */
export type ComputeEvent =
  | { readonly type: "oom-killed"; readonly imvu: string; readonly workload: string; readonly containerId: string; readonly atMs: number }
  | { readonly type: "exited"; readonly imvu: string; readonly workload: string; readonly containerId: string; readonly exitCode: number; readonly atMs: number }
  | { readonly type: "disk-over-envelope"; readonly imvu: string; readonly usedBytes: bigint; readonly limitBytes: bigint };

const ORDER: Record<Action["type"], number> = {
  stop: 0, remove: 0, "create-network": 1, adopt: 2, wait: 2, run: 3, start: 3, "remove-network": 4,
};

function key(imvu: string, workload: string): string {
  return `${imvu}/${workload}`;
}

/** The actions and events that take `observed` to `desired` (pure, deterministic order). */
export function plan(desired: readonly DesiredWorkload[], desiredImvus: readonly string[], observed: Observed, ctx: PlanContext): { actions: Action[]; events: ComputeEvent[] } {
  const actions: Action[] = [];
  const events: ComputeEvent[] = [];
  const byKey = new Map<string, ContainerInfo[]>();
  for (const c of observed.containers) {
    if (c.labels[LABEL_FABRIC] !== ctx.fabric) continue;
    const k = key(c.labels[LABEL_IMVU] ?? "", c.labels[LABEL_WORKLOAD] ?? "");
    byKey.set(k, [...(byKey.get(k) ?? []), c]);
    if (c.state === "exited" && c.finishedAtMs > 0) {
      const base = { imvu: c.labels[LABEL_IMVU] ?? "", workload: c.labels[LABEL_WORKLOAD] ?? "", containerId: c.id, atMs: c.finishedAtMs };
      events.push(c.oomKilled ? { type: "oom-killed", ...base } : { type: "exited", ...base, exitCode: c.exitCode });
    }
  }
  const wanted = new Set(desired.map((d) => key(d.imvu, d.name)));
  for (const [k, list] of byKey) {
    if (wanted.has(k) || ctx.untouchable?.has(k) === true) continue;
    for (const c of list) actions.push({ type: "remove", imvu: c.labels[LABEL_IMVU] ?? "", workload: c.labels[LABEL_WORKLOAD] ?? "", containerId: c.id, reason: "undesired" });
  }
  const nets = new Set(observed.networks.map((n) => n.name));
  for (const imvu of desiredImvus) {
    const network = networkName(ctx.fabric, imvu);
    if (!nets.has(network)) actions.push({ type: "create-network", imvu, network });
  }
  const desiredNets = new Set(desiredImvus.map((i) => networkName(ctx.fabric, i)));
  for (const n of observed.networks) {
    if (n.labels[LABEL_FABRIC] === ctx.fabric && !desiredNets.has(n.name)) actions.push({ type: "remove-network", imvu: n.labels[LABEL_IMVU] ?? "", network: n.name });
  }
  for (const d of desired) actions.push(...planWorkload(d, byKey.get(key(d.imvu, d.name)) ?? [], ctx));
  actions.sort((a, b) => ORDER[a.type] - ORDER[b.type]);
  return { actions, events };
}

function planWorkload(d: DesiredWorkload, found: readonly ContainerInfo[], ctx: PlanContext): Action[] {
  const out: Action[] = [];
  const id = { imvu: d.imvu, workload: d.name };
  const hash = d.spec.labels[LABEL_SPEC];
  const current = found.filter((c) => c.labels[LABEL_SPEC] === hash && c.state !== "unknown");
  for (const c of found) if (!current.includes(c)) out.push({ type: "remove", ...id, containerId: c.id, reason: c.state === "unknown" ? "broken" : "spec-changed" });
  // Keep one: a running one first (newest), else the newest of the rest.
  const ranked = [...current].sort((a, b) => Number(b.state === "running") - Number(a.state === "running") || b.startedAtMs - a.startedAtMs || (a.id < b.id ? -1 : 1));
  const [keep, ...extra] = ranked;
  for (const c of extra) out.push({ type: "remove", ...id, containerId: c.id, reason: "duplicate" });
  if (d.state === "stopped") {
    if (keep !== undefined && (keep.state === "running" || keep.state === "paused")) out.push({ type: "stop", ...id, containerId: keep.id });
    return out;
  }
  if (keep === undefined) {
    out.push({ type: "run", ...id, spec: d.spec });
    return out;
  }
  if (keep.state === "running" || keep.state === "paused" || keep.state === "stopping") {
    if (!ctx.known.has(keep.id) && keep.state === "running") out.push({ type: "adopt", ...id, containerId: keep.id });
    return out;
  }
  const until = ctx.notBefore.get(key(d.imvu, d.name)) ?? 0;
  if (until > ctx.nowMs) out.push({ type: "wait", ...id, containerId: keep.id, untilMs: until });
  else out.push({ type: "start", ...id, containerId: keep.id, reason: keep.state === "created" ? "created" : keep.oomKilled ? "oom-killed" : "exited" });
  return out;
}

/** The outcome of one executed action. */
export interface ActionResult {
  readonly action: Action;
  readonly ok: boolean;
  readonly containerId?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

/** What one reconcile pass did. */
export interface ReconcileReport {
  readonly startedAtMs: number;
  readonly durationMs: number;
  readonly results: readonly ActionResult[];
  /** Events not reported by an earlier pass of this process. */
  readonly events: readonly ComputeEvent[];
  /** Declarations that could not be turned into a run specification. */
  readonly rejected: readonly { readonly imvu: string; readonly workload: string; readonly code: string; readonly message: string }[];
  /** Running containers of the fabric after the pass. */
  readonly running: number;
}

/** Options of the reconciler. */
export interface ReconcilerOptions {
  readonly driver: ContainerDriver;
  readonly volumes: Volumes;
  readonly fabric: string;
  /** The base image reference, built on first need. */
  readonly baseImage: () => Promise<string>;
  readonly appCommand?: (dir: string) => string[];
  readonly log?: (line: string) => void;
  readonly now?: () => number;
}

function errorOf(e: unknown): { code: string; message: string } {
  return isNexusError(e) ? { code: e.code, message: e.message } : { code: "INTERNAL", message: (e as Error).message };
}

/** The imperative shell around `plan`; one pass at a time. */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #known = new Set<string>();
  readonly #restarts = new Map<string, number[]>();
  readonly #reported = new Set<string>();
  readonly #held = new Set<string>();
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
  }

  /** Leaves an IMVU alone (no action on its containers) until `release`, e.g. during a restore. */
  hold(imvu: string): void {
    this.#held.add(imvu);
  }

  /** Ends a `hold`. */
  release(imvu: string): void {
    this.#held.delete(imvu);
  }

  /** Runs one pass (queued behind a pass in progress). */
  reconcile(desired: DesiredState): Promise<ReconcileReport> {
    const run = this.#chain.then(() => this.#pass(desired));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #specs(desired: DesiredState, rejected: ReconcileReport["rejected"][number][], events: ComputeEvent[]): Promise<DesiredWorkload[]> {
    const out: DesiredWorkload[] = [];
    let base: string | undefined;
    for (const i of desired.imvus) {
      let vol;
      try {
        await this.#o.driver.ensureGroup(groupPath(this.#o.fabric, i.imvu), i.envelope);
        vol = await this.#o.volumes.ensure(i.imvu, i.envelope.diskBytes);
      } catch (e) {
        for (const w of i.workloads) rejected.push({ imvu: i.imvu, workload: w.name, ...errorOf(e) });
        continue;
      }
      if (vol.overQuota) events.push({ type: "disk-over-envelope", imvu: i.imvu, usedBytes: vol.usedBytes, limitBytes: vol.limitBytes });
      for (const raw of i.workloads.slice(0, WORKLOADS_PER_IMVU_MAX)) {
        const parsed = WorkloadSpecSchema.safeParse(raw);
        if (!parsed.success) {
          rejected.push({ imvu: i.imvu, workload: String(raw.name), code: "COMPUTE_SPEC_INVALID", message: parsed.error.issues[0]?.message ?? "" });
          continue;
        }
        const w = parsed.data;
        try {
          const appCommand = this.#o.appCommand ?? defaultAppCommand;
          if (w.source.kind === "app") {
            if (w.cmd === undefined) appCommand(w.source.dir); // refuse an app without entry before building anything
            base ??= await this.#o.baseImage();
          }
          const ctx: SpecContext = {
            fabric: this.#o.fabric, baseImage: base, volumePath: vol.path, volumeReadOnly: vol.overQuota && vol.mode === "dir", appCommand,
          };
          out.push({ imvu: i.imvu, name: w.name, state: w.state ?? "running", spec: runSpecFor(i.imvu, i.envelope, w, ctx) });
        } catch (e) {
          rejected.push({ imvu: i.imvu, workload: w.name, ...errorOf(e) });
        }
      }
    }
    return out;
  }

  async #pass(all: DesiredState): Promise<ReconcileReport> {
    const now = this.#o.now ?? Date.now;
    const held = (imvu: string | undefined): boolean => imvu !== undefined && this.#held.has(imvu);
    const desired = { imvus: all.imvus.filter((i) => !held(i.imvu)) };
    const startedAtMs = now();
    const rejected: ReconcileReport["rejected"][number][] = [];
    const diskEvents: ComputeEvent[] = [];
    const workloads = await this.#specs(desired, rejected, diskEvents);
    const fabricLabel = { [LABEL_FABRIC]: this.#o.fabric };
    // Both reads at once: each is a podman process start.
    const [containers, networks] = await Promise.all([this.#o.driver.list(fabricLabel), this.#o.driver.listNetworks(fabricLabel)]);
    const observed = {
      containers: containers.filter((c) => !held(c.labels[LABEL_IMVU])),
      networks: networks.filter((n) => !held(n.labels[LABEL_IMVU])),
    };
    const notBefore = new Map<string, number>();
    for (const [k, times] of this.#restarts) {
      const recent = times.filter((t) => startedAtMs - t < RESTART_WINDOW_MS);
      const last = recent[recent.length - 1];
      if (last !== undefined) notBefore.set(k, last + Math.min(RESTART_BACKOFF_MAX_MS, RESTART_BACKOFF_BASE_MS * 2 ** (recent.length - 1)));
    }
    // A declaration that failed to resolve (volume, base image, entry point) must not cost the
    // workload its running container: it is left alone until the declaration resolves again.
    const untouchable = new Set(rejected.map((r) => key(r.imvu, r.workload)));
    const p = plan(workloads, desired.imvus.map((i) => i.imvu), observed, { fabric: this.#o.fabric, nowMs: startedAtMs, known: this.#known, notBefore, untouchable });
    const results: ActionResult[] = [];
    // Phases in order (removals, networks, runs, network removals); inside a phase the actions touch
    // different containers or networks, so a few run at once.
    for (const phase of [...new Set(p.actions.map((a) => ORDER[a.type]))]) {
      const batch = p.actions.filter((a) => ORDER[a.type] === phase);
      const out: ActionResult[] = new Array<ActionResult>(batch.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < batch.length; i = next++) out[i] = await this.#execute(batch[i] as Action, startedAtMs);
      };
      await Promise.all(Array.from({ length: Math.min(ACTIONS_PARALLEL_MAX, batch.length) }, worker));
      results.push(...out);
    }
    const events = [...diskEvents, ...p.events].filter((e) => {
      if (e.type === "disk-over-envelope") return true;
      const k = `${e.containerId}@${e.atMs}`;
      if (this.#reported.has(k)) return false;
      this.#reported.add(k);
      return true;
    });
    for (const e of events) if (e.type === "oom-killed") this.#o.log?.(`compute: ${e.imvu}/${e.workload} was OOM-killed`);
    const after = await this.#o.driver.list(fabricLabel);
    for (const id of [...this.#known]) if (!after.some((c) => c.id === id)) this.#known.delete(id);
    return { startedAtMs, durationMs: now() - startedAtMs, results, events, rejected, running: after.filter((c) => c.state === "running").length };
  }

  async #execute(a: Action, nowMs: number): Promise<ActionResult> {
    const d = this.#o.driver;
    try {
      switch (a.type) {
        case "create-network":
          await d.ensureNetwork(a.network, { [LABEL_FABRIC]: this.#o.fabric, [LABEL_IMVU]: a.imvu });
          return { action: a, ok: true };
        case "remove-network":
          await d.removeNetwork(a.network);
          await d.removeGroup(groupPath(this.#o.fabric, a.imvu));
          return { action: a, ok: true };
        case "run": {
          const c = await d.run(a.spec);
          this.#known.add(c.id);
          return { action: a, ok: true, containerId: c.id };
        }
        case "start": {
          const k = key(a.imvu, a.workload);
          this.#restarts.set(k, [...(this.#restarts.get(k) ?? []).filter((t) => nowMs - t < RESTART_WINDOW_MS), nowMs]);
          await d.start(a.containerId);
          this.#known.add(a.containerId);
          return { action: a, ok: true, containerId: a.containerId };
        }
        case "stop":
          await d.stop(a.containerId, STOP_TIMEOUT_MS);
          return { action: a, ok: true, containerId: a.containerId };
        case "remove":
          await d.remove(a.containerId);
          this.#known.delete(a.containerId);
          return { action: a, ok: true, containerId: a.containerId };
        case "adopt":
          this.#known.add(a.containerId);
          return { action: a, ok: true, containerId: a.containerId };
        case "wait":
          return { action: a, ok: true, containerId: a.containerId };
        default: {
          const never: never = a;
          throw new Error(`unknown action ${JSON.stringify(never)}`);
        }
      }
    } catch (e) {
      return { action: a, ok: false, error: errorOf(e) };
    }
  }

  /** Reconciles every `intervalMs` from `source` until `stop`; each report goes to `onReport`. */
  start(source: DesiredStateSource, intervalMs: number, onReport: (r: ReconcileReport) => void = () => {}): void {
    if (this.#timer !== undefined || this.#loop !== undefined) return;
    const tick = async (): Promise<void> => {
      try {
        onReport(await this.reconcile(await source.desired()));
      } catch (e) {
        this.#o.log?.(`compute: reconcile failed: ${(e as Error).message}`);
      }
    };
    this.#loop = tick();
    this.#timer = setInterval(() => {
      this.#loop = (this.#loop ?? Promise.resolve()).then(tick);
    }, intervalMs);
  }

  /** Stops the loop and waits for the pass in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#loop;
    this.#loop = undefined;
  }
}
