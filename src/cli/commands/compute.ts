/**
 * `nexus compute …`: the creator's compute verbs. Changes are signed commands (deploy, stop,
 * remove, snapshot, restore, snapshot-delete) posted to $NEXUS_API and verified by receipt; reads
 * (list, logs, usage, snapshots, events, manifests) are signed GETs of the compute API module.
 * `--app DIR` / `--rootfs DIR` are packed here as the deterministic tar of DIR, uploaded under its
 * SHA-256 (PUT /v1/compute/imvus/X/sources/SHA), and the deploy command carries that SHA-256:
 * the ledger binds the exact bytes, wherever the CLI runs.
 * Exit codes: 0 applied, 1 denied or failed check, 2 bad input, 3 API or compute unavailable.
 */
import type { Command } from "commander";
import { createReadStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { Readable } from "node:stream";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { commonErrors } from "../../core/common-errors.ts";
import { signRequest } from "../../core/crypto/httpsig.ts";
import { NexusError } from "../../core/errors.ts";
import type { Receipt } from "../../core/pipeline/pipeline.ts";
import { computeErrors } from "../../services/compute/errors.ts";
import { writeTarSync } from "../../services/compute/tar.ts";
import { apiBase, apiGet, apiGetPublic, localIdentity, submitDraft } from "../client.ts";
import { action, emit, toJson } from "../output.ts";
import { apiFlags, clientOpts, parseBytes, parseCpuMillis, printReceipt, type ApiFlags } from "./imvu.ts";

/** How long `compute snapshot` waits for the compute service to record the digest. */
export const SNAPSHOT_WAIT_MS = 120_000;
const WAIT_STEP_MS = 250;

interface ImvuFlags extends ApiFlags {
  readonly imvu: string;
}

interface DeployFlags extends ImvuFlags {
  readonly name: string;
  readonly image?: string;
  readonly rootfs?: string;
  readonly app?: string;
  readonly cmd?: string;
  readonly port?: string;
  readonly env?: string[];
  readonly cpu?: string;
  readonly memory?: string;
  readonly pids?: string;
  readonly disk?: string;
}

function checkLabel(s: string, flag: string, max = 63): string {
  if (s.length > max || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(s)) {
    throw commonErrors.make("INPUT_INVALID", `${flag} ${s}: a lower-case DNS label of at most ${max} characters`, { field: flag });
  }
  return s;
}

function checkSha(s: string): string {
  const hex = s.replace(/^sha256:/, "");
  if (!/^[0-9a-f]{64}$/.test(hex)) throw commonErrors.make("INPUT_INVALID", `${s}: a snapshot digest (64 hex digits, optionally sha256:)`, { field: "snapshot" });
  return hex;
}

function parseEnv(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const m = /^([A-Za-z_][A-Za-z0-9_]{0,127})=(.*)$/s.exec(kv);
    if (!m?.[1]) throw commonErrors.make("INPUT_INVALID", `--env ${kv}: use NAME=VALUE`, { field: "env" });
    out[m[1]] = m[2] ?? "";
  }
  return out;
}

function parsePort(s: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65_535) throw commonErrors.make("INPUT_INVALID", `--port ${s}: 1 to 65535`, { field: "port" });
  return Number(s);
}

/** Packs DIR as the deterministic tar and uploads it into the IMVU's source area; returns the SHA-256. */
export async function uploadSource(imvu: string, dir: string, f: ApiFlags): Promise<string> {
  const abs = resolve(dir);
  if (!statSync(abs, { throwIfNoEntry: false })?.isDirectory()) throw commonErrors.make("INPUT_INVALID", `${dir} is not a directory`, { field: "dir" });
  const tmp = mkdtempSync(join(tmpdir(), "nexus-source-"));
  try {
    const tar = join(tmp, "source.tar");
    const { sha256 } = writeTarSync(abs, tar, { durable: false });
    await putTar(`/v1/compute/imvus/${imvu}/sources/${sha256}`, tar, f);
    return sha256;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** PUTs a tar file (streamed, RFC 9421-signed by the identity) to an API path; returns the JSON answer. */
export async function putTar(path: string, tar: string, f: ApiFlags): Promise<unknown> {
  const url = `${apiBase(clientOpts(f))}${path}`;
  const id = localIdentity(clientOpts(f));
  const headers: Record<string, string> = { accept: "application/json", "content-type": "application/x-tar" };
  const sig = signRequest(
    { method: "PUT", url, headers },
    { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey },
  );
  headers["signature-input"] = sig.signatureInput;
  headers.signature = sig.signature;
  let res: Response;
  try {
    const body = Readable.toWeb(createReadStream(tar)) as ReadableStream<Uint8Array>;
    res = await fetch(url, { method: "PUT", headers, body, duplex: "half" } as RequestInit);
  } catch (e) {
    throw new NexusError("CLIENT_API_UNREACHABLE", { message: `${url}: ${e instanceof Error ? e.message : String(e)}`, http: 503, exit: 3 });
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (res.status !== 200 && res.status !== 201) {
    throw new NexusError(body.error?.code ?? "CLIENT_BAD_RESPONSE", { message: body.error?.message ?? `HTTP ${res.status}`, http: res.status, exit: res.status === 503 ? 3 : 1 });
  }
  return body;
}

/** Fails with COMPUTE_PODMAN_MISSING (exit 3) when the installation cannot run compute. */
async function requireCompute(f: ApiFlags): Promise<void> {
  const s = await apiGetPublic<{ running: boolean; available: boolean; degraded?: string }>("/v1/compute/status", clientOpts(f));
  if (!s.running) throw computeErrors.make("COMPUTE_UNAVAILABLE");
  if (!s.available) throw computeErrors.make("COMPUTE_PODMAN_MISSING", s.degraded);
}

async function deploy(rest: string[], f: DeployFlags): Promise<void> {
  const imvu = checkLabel(f.imvu, "--imvu");
  const name = checkLabel(f.name, "--name", 40);
  const sources = [f.image, f.rootfs, f.app].filter((x) => x !== undefined);
  if (sources.length !== 1) throw commonErrors.make("INPUT_INVALID", "give exactly one of --image REF, --rootfs DIR, --app DIR", { field: "source" });
  // The command: what follows `--` verbatim, else --cmd split at white space.
  const cmd = rest.length > 0 ? rest : (f.cmd ?? "").split(/\s+/).filter((a) => a !== "");
  await requireCompute(f);
  const source =
    f.image !== undefined
      ? { kind: "image", ref: f.image }
      : f.rootfs !== undefined
        ? { kind: "rootfs", sha256: await uploadSource(imvu, f.rootfs, f) }
        : { kind: "app", sha256: await uploadSource(imvu, f.app ?? "", f) };
  const resources = {
    ...(f.cpu === undefined ? {} : { cpuMillis: parseCpuMillis(f.cpu) }),
    ...(f.memory === undefined ? {} : { memoryBytes: parseBytes(f.memory, "--memory").toString() }),
    ...(f.pids === undefined ? {} : { pids: Number(f.pids) }),
    ...(f.disk === undefined ? {} : { diskBytes: parseBytes(f.disk, "--disk").toString() }),
  };
  const body = {
    name,
    source,
    ...(cmd.length === 0 ? {} : { cmd }),
    ...(f.port === undefined ? {} : { port: parsePort(f.port) }),
    ...(f.env === undefined || f.env.length === 0 ? {} : { env: parseEnv(f.env) }),
    ...(Object.keys(resources).length === 0 ? {} : { resources }),
  };
  printReceipt(`deploy ${imvu}/${name}`, await submitDraft({ type: "compute.workload.deploy", imvu, body }, clientOpts(f)), f.json);
}

interface WorkloadView {
  readonly name: string;
  readonly state: string;
  readonly source: { kind: string; ref?: string; sha256?: string };
  readonly removingIndex?: string;
  readonly runtime: { state: string; address?: string } | null;
}

interface SnapshotsView {
  readonly snapshots: { sha256: string; bytes: string; kind: string; of: string; recordedIndex: string; deletedIndex?: string }[];
  readonly ops: { index: string; type: string; status: string; recorded?: string; code?: string }[];
}

async function submitAndPrint(what: string, type: string, imvu: string, body: Record<string, unknown>, f: ApiFlags): Promise<Receipt> {
  const r = await submitDraft({ type, imvu, body }, clientOpts(f));
  printReceipt(what, r, f.json);
  return r;
}

/** Waits until the compute service has carried out the operation recorded at `index`. */
async function waitForOp(imvu: string, index: string, f: ApiFlags): Promise<SnapshotsView["ops"][number]> {
  const end = Date.now() + SNAPSHOT_WAIT_MS;
  for (;;) {
    const v = await apiGet<SnapshotsView>(`/v1/compute/imvus/${imvu}/snapshots`, clientOpts(f));
    const op = v.ops.find((o) => o.index === index);
    if (op && op.status !== "pending") return op;
    if (Date.now() > end) throw computeErrors.make("COMPUTE_UNAVAILABLE", `operation at entry ${index} is still pending`);
    await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
  }
}

function imvuOption(c: Command): Command {
  return apiFlags(c).requiredOption("--imvu <name>", "your IMVU");
}

function registerReads(compute: Command): void {
  imvuOption(compute.command("list"))
    .description("declared workloads and what the runtime shows (state, 127.0.0.1 address for the gateway)")
    .action(
      action(async (f: ImvuFlags) => {
        const v = await apiGet<{ workloads: WorkloadView[]; degraded?: string }>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/workloads`, clientOpts(f));
        emit(v, f.json, (x) => {
          const rows = x.workloads.map((w) => `${w.name}\t${w.state}${w.removingIndex ? " (removing)" : ""}\t${w.runtime?.state ?? "-"}\t${w.runtime?.address ?? "-"}\t${w.source.kind}:${w.source.ref ?? w.source.sha256?.slice(0, 12) ?? ""}`);
          return [...(rows.length === 0 ? ["(no workloads)"] : rows), ...(x.degraded ? [`compute degraded: ${x.degraded}`] : [])].join("\n");
        });
      }),
    );
  imvuOption(compute.command("logs"))
    .description("the last lines a workload printed")
    .requiredOption("--name <workload>", "the workload")
    .option("--tail <n>", "lines", "100")
    .action(
      action(async (f: ImvuFlags & { name: string; tail: string }) => {
        const v = await apiGet<{ logs: string }>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/workloads/${checkLabel(f.name, "--name", 40)}/logs?tail=${encodeURIComponent(f.tail)}`, clientOpts(f));
        emit(v, f.json, (x) => x.logs.replace(/\n$/, ""));
      }),
    );
  imvuOption(compute.command("usage"))
    .description("usage reports recorded in the ledger (per interval) and live counters")
    .action(
      action(async (f: ImvuFlags) => {
        const v = await apiGet<{ reports: { intervalStart: string; metrics: Record<string, string> }[]; live: unknown }>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/usage`, clientOpts(f));
        emit(v, f.json, (x) => (x.reports.length === 0 ? "(no usage reported yet)" : x.reports.map((r) => `${r.intervalStart}\tcpu ${r.metrics["cpuMs"] ?? "0"} ms\tmem peak ${r.metrics["memPeakBytes"] ?? "0"} B\tnet rx ${r.metrics["netRxBytes"] ?? "0"} tx ${r.metrics["netTxBytes"] ?? "0"} B`).join("\n")));
      }),
    );
  imvuOption(compute.command("snapshots"))
    .description("recorded snapshots (digest, bytes, why) and compute operations")
    .action(
      action(async (f: ImvuFlags) => {
        const v = await apiGet<SnapshotsView>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/snapshots`, clientOpts(f));
        emit(v, f.json, (x) => x.snapshots.filter((s) => s.deletedIndex === undefined).map((s) => `sha256:${s.sha256}\t${s.bytes} B\t${s.kind}\tentry ${s.recordedIndex}`).join("\n") || "(no snapshots)");
      }),
    );
  imvuOption(compute.command("events"))
    .description("runtime events the compute service reported (OOM kills, exits, restarts, rejections)")
    .action(
      action(async (f: ImvuFlags) => {
        const v = await apiGet<{ events: { index: string; kind: string; workload?: string; code?: string; detail?: string; at: string }[] }>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/events`, clientOpts(f));
        emit(v, f.json, (x) => x.events.map((e) => `${e.index}\t${e.at}\t${e.kind}\t${e.workload ?? "-"}\t${e.code ?? ""} ${e.detail ?? ""}`.trimEnd()).join("\n") || "(no events)");
      }),
    );
  imvuOption(compute.command("manifests"))
    .description("render the IMVU as Kubernetes objects (a v1 List: Namespace, ResourceQuota, LimitRange, NetworkPolicy, PVC, Deployments, Services)")
    .action(
      action(async (f: ImvuFlags) => {
        const v = await apiGet<unknown>(`/v1/compute/imvus/${checkLabel(f.imvu, "--imvu")}/manifests`, clientOpts(f));
        process.stdout.write(`${toJson(v)}\n`);
      }),
    );
}

/** Adds `compute` and its verbs to the program. */
export function register(program: Command): void {
  const compute = program.command("compute").description("workloads in the IMVU's envelope, snapshots, usage (signed commands through the API)");
  imvuOption(compute.command("deploy").argument("[cmd...]", "the command and its arguments, after --"))
    .description("deploy (or redeploy) a workload: an image, a root file system directory or an app directory")
    .requiredOption("--name <workload>", "workload name (a DNS label)")
    .option("--image <ref>", "an image present on the machine (podman load for OCI archives)")
    .option("--rootfs <dir>", "a root file system directory (uploaded as its deterministic tar)")
    .option("--app <dir>", "a Node.js app or static site directory, run on the base image (uploaded as its deterministic tar)")
    .option("--cmd <line>", "the command line, split at white space (or give it after --)")
    .option("--port <port>", "the port the workload listens on (published on 127.0.0.1 for the gateway)")
    .option("--env <NAME=VALUE...>", "environment variables")
    .option("--cpu <cores>", "this workload's CPU claim: cores (0.5) or millicores (500m)")
    .option("--memory <size>", "this workload's memory claim, e.g. 128M")
    .option("--pids <n>", "this workload's process claim")
    .option("--disk <size>", "this workload's disk claim (checked against the volume's envelope)")
    .action(action(deploy));
  for (const [verb, type, desc] of [
    ["stop", "compute.workload.stop", "stop a workload (its container is kept for its logs; deploy again to start)"],
    ["remove", "compute.workload.remove", "remove a workload (the volume is snapshotted first and the digest recorded)"],
  ] as const) {
    imvuOption(compute.command(verb))
      .description(desc)
      .requiredOption("--name <workload>", "the workload")
      .action(action(async (f: ImvuFlags & { name: string }) => void (await submitAndPrint(`${verb} ${f.imvu}/${f.name}`, type, checkLabel(f.imvu, "--imvu"), { name: checkLabel(f.name, "--name", 40) }, f))));
  }
  imvuOption(compute.command("snapshot"))
    .description("snapshot the IMVU's volume; prints the digest once the compute service has recorded it")
    .option("--no-wait", "return after the command is recorded")
    .action(
      action(async (f: ImvuFlags & { wait: boolean }) => {
        const imvu = checkLabel(f.imvu, "--imvu");
        const r = await submitDraft({ type: "compute.snapshot.create", imvu, body: {} }, clientOpts(f));
        if (!f.wait) return printReceipt(`snapshot of ${imvu}`, r, f.json);
        const op = await waitForOp(imvu, r.index, f);
        if (op.status === "failed") throw new NexusError(op.code ?? "COMPUTE_UNAVAILABLE", { message: `the snapshot failed (${op.code ?? "?"})`, http: 500, exit: 1 });
        emit({ receipt: r, snapshot: `sha256:${op.recorded ?? ""}` }, f.json, (v) => `snapshot of ${imvu}: ${v.snapshot} (command at ledger index ${r.index}; receipt verified)`);
      }),
    );
  imvuOption(compute.command("restore").argument("<snapshot>", "the snapshot digest (sha256:…)"))
    .description("restore a snapshot into the volume; the current state is snapshotted and recorded first")
    .action(action(async (snapshot: string, f: ImvuFlags) => void (await submitAndPrint(`restore of ${f.imvu}`, "compute.snapshot.restore", checkLabel(f.imvu, "--imvu"), { snapshot: checkSha(snapshot) }, f))));
  imvuOption(compute.command("snapshot-delete").argument("<snapshot>", "the snapshot digest (sha256:…)"))
    .description("delete a snapshot (the owner only; never an admin)")
    .action(action(async (snapshot: string, f: ImvuFlags) => void (await submitAndPrint(`deletion of ${snapshot}`, "compute.snapshot.delete", checkLabel(f.imvu, "--imvu"), { snapshot: checkSha(snapshot) }, f))));
  registerReads(compute);
}
