/**
 * Compute reads and source uploads (docs/compute.md, "API"). Every route but /v1/compute/status
 * is an authenticated read (RFC 9421 signature or bearer token) filtered by gate 16: the caller
 * sees an IMVU's workloads, logs, usage, snapshots and manifests only as its owner or one of its
 * delegates; anyone else gets 404 exactly as for an IMVU that does not exist.
 *   GET /v1/compute/status
 *   GET /v1/compute/imvus/:name/workloads | /workloads/:workload/logs | /usage | /snapshots | /events | /manifests
 *   PUT /v1/compute/imvus/:name/sources/:sha256   (application/x-tar: the deterministic tar of an --app/--rootfs DIR)
 *   PUT /v1/compute/imvus/:name/volume/:sha256    (application/x-tar: an exit bundle's compute/volume.tar, into an
 *       imported IMVU's volume before any workload; the owner only)
 * Writes are commands (POST /v1/commands); an upload only stores bytes under their own digest,
 * which a later deploy command names.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { ComputeWorkloadRecord } from "../../core/pipeline/compute-state.ts";
import type { ImvuRecord, StateReader } from "../../core/pipeline/state.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import { WorkloadName } from "../../core/policy/compute-schemas.ts";
import type { Platform } from "../../platform/platform.ts";
import type { RunningCompute } from "../../platform/services/compute.ts";
import { computeErrors } from "../../services/compute/errors.ts";
import { manifestList, renderManifests } from "../../services/compute/k8s.ts";
import { slug } from "../../services/compute/names.ts";
import { desiredImvu } from "../../services/compute/projection.ts";
import { extractSnapshot, SNAPSHOT_BYTES_MAX } from "../../services/compute/snapshot.ts";
import { SOURCE_BYTES_MAX, sourceStoreDir, sourceTreePath, storeSource } from "../../services/compute/sources.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { parseInput } from "../params.ts";
import { sharedTokenAuthority } from "./commands.ts";

/** Most log lines one request returns. */
export const LOG_LINES_MAX = 10_000;
/** Most usage reports one request returns (the latest). */
export const USAGE_REPORTS_MAX = 1000;
/** Most events one request returns (the latest). */
export const EVENTS_MAX = 1000;
/** The registry prefix manifests name for workloads built from uploaded sources. */
export const SOURCE_IMAGE_PREFIX = "nexus-source";

/** What the compute routes need. */
export interface ComputeRoutesOptions {
  readonly platform: Platform;
  /** The running compute service (undefined: runtime reads answer COMPUTE_UNAVAILABLE). */
  readonly compute?: RunningCompute | undefined;
  readonly tokens?: TokenAuthority;
  readonly clockSec?: () => number;
}

const imvuName = z.object({ name: ImvuName });
const workloadParams = z.strictObject({ name: ImvuName, workload: WorkloadName });
const sourceParams = z.strictObject({ name: ImvuName, sha256: z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256") });
const tailQuery = z.strictObject({
  tail: z.string().regex(/^[1-9][0-9]{0,4}$/, `1 to ${LOG_LINES_MAX}`).transform(Number).refine((n) => n <= LOG_LINES_MAX, `at most ${LOG_LINES_MAX}`).optional(),
});
const emptyQuery = z.strictObject({});

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The IMVU if `caller` owns it or is one of its delegates (gate 16), else undefined. */
function visible(state: StateReader, caller: string, name: string): ImvuRecord | undefined {
  const rec = state.get("imvu", name);
  if (!rec) return undefined;
  if (rec.owner === caller || state.get("delegation", `${name}/${caller}`)) return rec;
  return undefined;
}

/** The image a workload runs from in a cluster: its own reference, or the name its uploaded source is pushed under. */
export function clusterImage(w: ComputeWorkloadRecord): string {
  if (w.source.kind === "image") return w.source.ref;
  return `${SOURCE_IMAGE_PREFIX}/${slug(w.imvu)}-${w.name}:${w.source.sha256.slice(0, 32)}`;
}

/** The compute routes as an API module (name "compute"). */
export function computeRoutes(opts: ComputeRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const state = (): StateReader => opts.platform.state;
  const runtime = (): RunningCompute => {
    if (!opts.compute) throw computeErrors.make("COMPUTE_UNAVAILABLE");
    return opts.compute;
  };
  const mine = (req: FastifyRequest, params: unknown): ImvuRecord => {
    const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
    const who = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
    if (who === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
    const { name } = parseInput(imvuName, params, "path");
    const rec = visible(state(), who, name);
    if (!rec) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
    return rec;
  };
  const home = opts.platform.home;
  return {
    name: "compute",
    docs: computeDocs,
    register: (app: FastifyInstance) => {
      app.get("/v1/compute/status", async (req) => {
        parseInput(emptyQuery, req.query, "query");
        const c = opts.compute;
        return { running: c !== undefined, available: c !== undefined && c.degraded === undefined, ...(c?.degraded === undefined ? {} : { degraded: c.degraded }), endpoints: c?.endpoints ?? [] };
      });
      app.get("/v1/compute/imvus/:name/workloads", async (req) => {
        const imvu = mine(req, req.params);
        parseInput(emptyQuery, req.query, "query");
        const declared = state().list("compute-workload", `${imvu.name}/`).map(([, w]) => w);
        const c = opts.compute;
        const live = c && c.degraded === undefined ? await c.status(imvu.name) : [];
        const workloads = declared.map((w) => {
          const r = live.find((l) => l.name === w.name);
          const addr = r?.hostPort === undefined || r.state !== "running" ? {} : { address: `127.0.0.1:${r.hostPort}` };
          return { ...w, runtime: r ? { state: r.state, containerId: r.containerId, exitCode: r.exitCode, oomKilled: r.oomKilled, startedAtMs: r.startedAtMs, ...addr } : null };
        });
        return { imvu: imvu.name, workloads, ...(c?.degraded === undefined ? {} : { degraded: c.degraded }) };
      });
      app.get("/v1/compute/imvus/:name/workloads/:workload/logs", async (req) => {
        mine(req, req.params);
        const { name, workload } = parseInput(workloadParams, req.params, "path");
        const { tail } = parseInput(tailQuery, req.query, "query");
        if (!state().get("compute-workload", `${name}/${workload}`)) throw computeErrors.make("COMPUTE_WORKLOAD_NOT_FOUND", `${name}/${workload}`);
        return { imvu: name, workload, logs: await runtime().logs(name, workload, tail ?? 100) };
      });
      app.get("/v1/compute/imvus/:name/usage", async (req) => {
        const imvu = mine(req, req.params);
        parseInput(emptyQuery, req.query, "query");
        const reports = state().list("usage", `${imvu.name}/compute/`).map(([, u]) => u).slice(-USAGE_REPORTS_MAX);
        const c = opts.compute;
        let live: unknown = null;
        if (c && c.degraded === undefined) {
          const u = await c.liveUsage(imvu.name);
          live = { workloads: u.workloads, volume: { mode: u.volume.mode, usedBytes: u.volume.usedBytes.toString(), limitBytes: u.volume.limitBytes.toString(), overQuota: u.volume.overQuota } };
        }
        return JSON.parse(JSON.stringify({ imvu: imvu.name, envelope: imvu.envelope, reports, live }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as unknown;
      });
      app.get("/v1/compute/imvus/:name/snapshots", async (req) => {
        const imvu = mine(req, req.params);
        parseInput(emptyQuery, req.query, "query");
        const snapshots = state().list("compute-snapshot", `${imvu.name}/`).map(([, s]) => s);
        const ops = state().list("compute-op", `${imvu.name}/`).map(([, o]) => o);
        return { imvu: imvu.name, snapshots, ops };
      });
      app.get("/v1/compute/imvus/:name/events", async (req) => {
        const imvu = mine(req, req.params);
        parseInput(emptyQuery, req.query, "query");
        const events = state().list("compute-event", `${imvu.name}/`).map(([, e]) => e).sort((a, b) => (BigInt(a.index) < BigInt(b.index) ? -1 : 1)).slice(-EVENTS_MAX);
        return { imvu: imvu.name, events };
      });
      app.get("/v1/compute/imvus/:name/manifests", async (req) => {
        const imvu = mine(req, req.params);
        parseInput(emptyQuery, req.query, "query");
        const desired = desiredImvu(state(), imvu.name, { sourceDir: (i, sha) => sourceTreePath(home, i, sha) });
        if (!desired) throw computeErrors.make("COMPUTE_WORKLOAD_NOT_FOUND", `${imvu.name} declares no workload`);
        const images = new Map(state().list("compute-workload", `${imvu.name}/`).map(([, w]) => [w.name, clusterImage(w)]));
        return JSON.parse(JSON.stringify(manifestList(renderManifests({ ...desired, image: (w) => images.get(w.name) ?? "" })), (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))) as unknown;
      });
      void app.register(async (scope) => {
        // The tar is streamed to disk and hashed on the way; it is never buffered whole.
        scope.addContentTypeParser("application/x-tar", { bodyLimit: SOURCE_BYTES_MAX }, (_req, payload, done) => done(null, payload));
        scope.put("/v1/compute/imvus/:name/sources/:sha256", { bodyLimit: SOURCE_BYTES_MAX }, async (req, reply) => {
          const imvu = mine(req, req.params);
          const { sha256 } = parseInput(sourceParams, req.params, "path");
          if (req.headers["content-type"] !== "application/x-tar") throw apiErrors.make("API_MEDIA_TYPE", "send the tar as application/x-tar");
          const body = req.body as AsyncIterable<Buffer>;
          const r = await storeSource(home, imvu.name, sha256, body);
          void reply.code(r.existed ? 200 : 201);
          return { imvu: imvu.name, sha256, sizeBytes: r.sizeBytes };
        });
        scope.put("/v1/compute/imvus/:name/volume/:sha256", { bodyLimit: SNAPSHOT_BYTES_MAX }, async (req) => {
          const imvu = mine(req, req.params);
          const { sha256 } = parseInput(sourceParams, req.params, "path");
          if (req.headers["content-type"] !== "application/x-tar") throw apiErrors.make("API_MEDIA_TYPE", "send the volume as application/x-tar");
          const who = callerOf(state(), tokens, { method: req.method, url: `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`, headers: headersOf(req) }, clockSec());
          if (who !== imvu.owner) throw commonErrors.make("NOT_FOUND", `no IMVU ${imvu.name} among yours`);
          if (imvu.importedFrom === undefined) throw computeErrors.make("COMPUTE_VOLUME_IMPORT_REFUSED", `${imvu.name} was not imported (nexus imvu import records it first)`);
          if (state().list("compute-workload", `${imvu.name}/`).length > 0) throw computeErrors.make("COMPUTE_VOLUME_IMPORT_REFUSED", `${imvu.name} already has workloads`);
          const fabric = runtime().fabric;
          if (!fabric) throw computeErrors.make("COMPUTE_PODMAN_MISSING", runtime().degraded);
          const r = await storeSource(home, imvu.name, sha256, req.body as AsyncIterable<Buffer>, SNAPSHOT_BYTES_MAX);
          const vol = await fabric.volumes.ensure(imvu.name, BigInt(imvu.envelope.diskBytes));
          const { entries } = await extractSnapshot(sourceStoreDir(home, imvu.name), `sha256:${sha256}`, vol.path);
          return { imvu: imvu.name, sha256, sizeBytes: r.sizeBytes, entries };
        });
      });
    },
  };
}

const errorRef = { $ref: "#/components/schemas/Error" };
const security = [{ httpSignature: [] }, { bearer: [] }];
const nameParam = parameter("name", "path", ImvuName, "the IMVU's name", true);
const authed = {
  "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef),
  "404": jsonResponse("No IMVU of that name among the caller's (NOT_FOUND): another's IMVU answers the same", errorRef),
};
const unavailable = { "503": jsonResponse("Compute cannot run here (COMPUTE_PODMAN_MISSING) or is not running (COMPUTE_UNAVAILABLE)", errorRef) };
const obj = (required: string[]) => ({ type: "object", required });

/** The OpenAPI description of the compute routes. */
export const computeDocs: OpenApiPaths = {
  "/v1/compute/status": {
    get: { summary: "Whether compute runs in this installation (podman present) and where", responses: { "200": jsonResponse("Status", obj(["running", "available", "endpoints"])), ...errorResponses(400) } },
  },
  "/v1/compute/imvus/{name}/workloads": {
    get: { summary: "Declared workloads (the projection) with what the runtime shows (state, 127.0.0.1 address)", security, parameters: [nameParam], responses: { "200": jsonResponse("Workloads", obj(["imvu", "workloads"])), ...authed } },
  },
  "/v1/compute/imvus/{name}/workloads/{workload}/logs": {
    get: {
      summary: "The last lines a workload printed",
      security,
      parameters: [nameParam, parameter("workload", "path", WorkloadName, "the workload", true), parameter("tail", "query", z.string(), `lines (default 100, at most ${LOG_LINES_MAX})`, false)],
      responses: { "200": jsonResponse("Logs", obj(["imvu", "workload", "logs"])), ...authed, ...unavailable },
    },
  },
  "/v1/compute/imvus/{name}/usage": {
    get: { summary: "Usage reports recorded in the ledger (latest last) and the live counters", security, parameters: [nameParam], responses: { "200": jsonResponse("Usage", obj(["imvu", "reports"])), ...authed } },
  },
  "/v1/compute/imvus/{name}/snapshots": {
    get: { summary: "Recorded snapshots (digest, size, why) and compute operations", security, parameters: [nameParam], responses: { "200": jsonResponse("Snapshots", obj(["imvu", "snapshots", "ops"])), ...authed } },
  },
  "/v1/compute/imvus/{name}/events": {
    get: { summary: "Runtime events the compute service reported (OOM kills, exits, restarts, rejections)", security, parameters: [nameParam], responses: { "200": jsonResponse("Events", obj(["imvu", "events"])), ...authed } },
  },
  "/v1/compute/imvus/{name}/manifests": {
    get: { summary: "The IMVU as Kubernetes objects (a v1 List)", security, parameters: [nameParam], responses: { "200": jsonResponse("A Kubernetes List", obj(["apiVersion", "kind", "items"])), ...authed } },
  },
  "/v1/compute/imvus/{name}/volume/{sha256}": {
    put: {
      summary: "Imports an exit bundle's volume tar into an imported IMVU's volume, before any workload (the owner only)",
      security,
      parameters: [nameParam, parameter("sha256", "path", z.string(), "hex SHA-256 of the tar", true)],
      requestBody: { required: true, content: { "application/x-tar": { schema: { type: "string", format: "binary" } } } },
      responses: {
        "200": jsonResponse("Unpacked into the volume", obj(["imvu", "sha256", "sizeBytes", "entries"])),
        "409": jsonResponse("Not an imported IMVU, or it already has workloads (COMPUTE_VOLUME_IMPORT_REFUSED)", errorRef),
        "413": jsonResponse("Too large (COMPUTE_SOURCE_TOO_LARGE)", errorRef),
        "422": jsonResponse("The bytes do not hash to the SHA-256 (COMPUTE_SOURCE_MISMATCH)", errorRef),
        ...authed,
        ...unavailable,
      },
    },
  },
  "/v1/compute/imvus/{name}/sources/{sha256}": {
    put: {
      summary: "Uploads the deterministic tar of an --app/--rootfs directory under its SHA-256 (refused when the bytes hash otherwise)",
      security,
      parameters: [nameParam, parameter("sha256", "path", z.string(), "hex SHA-256 of the tar", true)],
      requestBody: { required: true, content: { "application/x-tar": { schema: { type: "string", format: "binary" } } } },
      responses: {
        "200": jsonResponse("Already there", obj(["imvu", "sha256", "sizeBytes"])),
        "201": jsonResponse("Stored", obj(["imvu", "sha256", "sizeBytes"])),
        "413": jsonResponse("Too large (COMPUTE_SOURCE_TOO_LARGE)", errorRef),
        "422": jsonResponse("The bytes do not hash to the SHA-256 (COMPUTE_SOURCE_MISMATCH)", errorRef),
        ...authed,
      },
    },
  },
};
