/**
 * The web console's two route modules.
 *
 * `consoleRoutes({distDir})` serves the built console (console/dist, made by `vite build`) at /:
 * only files that exist under distDir at scan time are served, looked up by exact path in an
 * index (so a request can never name a file outside it: no traversal, no symlink escape), with
 * a content type per extension, a strict Content-Security-Policy (scripts, styles and fetches
 * from this origin only, no inline code, no framing) and cache headers (hashed assets immutable,
 * index.html revalidated).
 *
 * `consoleReadRoutes({pipeline})` adds the reads the console needs that no other module serves
 * (under /v1/console/ so they never collide with a part's own routes): an IMVU's resources
 * (DNS records, workloads, routes, grants, usage, throttling) for its owner or delegates only
 * (gate 16, answered 404 for anyone else exactly as for a name that does not exist); and the
 * public platform totals (GET /v1/platform/totals: IMVUs by status and class, entries applied and
 * denied, revenue per currency with its creator and platform parts), aggregates of the projection
 * and of the public ledger only, never one IMVU's private data.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { Ledger } from "../../core/ledger/ledger.ts";
import { ENTRIES_PAGE_MAX } from "../../core/ledger/ledger.ts";
import type { Pipeline } from "../../core/pipeline/pipeline.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { parseInput } from "../params.ts";
import { sharedTokenAuthority } from "./commands.ts";

/** The built console of this checkout (console/dist, made by `vite build`; see console/build.ts). */
export const CONSOLE_DIST_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "console", "dist");
/** Most files served from the console's dist directory. */
export const CONSOLE_FILES_MAX = 2000;
/** Largest single file served (the bundle is far smaller). */
export const CONSOLE_FILE_BYTES_MAX = 16 * 1024 * 1024;
/** Deepest directory nesting scanned under distDir. */
export const CONSOLE_DEPTH_MAX = 8;
/** Most rows of one table the resources read returns. */
export const CONSOLE_ROWS_MAX = 5000;

/**
 * The console's Content-Security-Policy: same-origin scripts, styles, images and fetches only; no
 * inline script or style elements, no eval, no plugins, no framing, no form posts elsewhere.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

/** A served file: its bytes and headers, read once at scan time. */
interface ServedFile {
  readonly body: Buffer;
  readonly type: string;
  readonly immutable: boolean;
}

/** Every servable file under `dir` by URL path ("/index.html", "/assets/x.js"); symlinks and unknown types skipped. */
function scanDist(dir: string): Map<string, ServedFile> {
  const files = new Map<string, ServedFile>();
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    return files;
  }
  const walk = (at: string, depth: number): void => {
    if (depth > CONSOLE_DEPTH_MAX) return;
    for (const name of readdirSync(at).sort()) {
      if (files.size >= CONSOLE_FILES_MAX) return;
      const path = join(at, name);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) continue; // never follow a link out of dist
      if (st.isDirectory()) {
        walk(path, depth + 1);
        continue;
      }
      const type = CONTENT_TYPES[extname(name).toLowerCase()];
      if (!st.isFile() || type === undefined || st.size > CONSOLE_FILE_BYTES_MAX) continue;
      const rel = relative(root, path).split(sep).join("/");
      files.set(`/${rel}`, { body: readFileSync(path), type, immutable: rel.startsWith("assets/") });
    }
  };
  walk(root, 0);
  return files;
}

function securityHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header("content-security-policy", CONSOLE_CSP)
    .header("x-content-type-options", "nosniff")
    .header("referrer-policy", "no-referrer")
    .header("x-frame-options", "DENY")
    .header("cross-origin-opener-policy", "same-origin")
    .header("cross-origin-resource-policy", "same-origin")
    .header("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()");
}

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Nexus console not built</title>
<h1>The console is not built</h1><p>Run <code>./nexus up</code> (or <code>./nexus test</code>), which builds it into console/dist.</p></html>`;

/** What the static console module needs. */
export interface ConsoleRoutesOptions {
  /** The built console (console/dist). */
  readonly distDir: string;
}

/** The OpenAPI description of the console's static files. */
export const consoleStaticDocs: OpenApiPaths = {
  "/": {
    get: {
      summary: "The web console (HTML, with a strict Content-Security-Policy)",
      responses: { "200": { description: "index.html" }, "503": { description: "The console is not built (run ./nexus up or ./nexus test)" } },
    },
  },
  "/assets/{file}": {
    get: {
      summary: "A file of the built console (hashed name, cached as immutable); only files present in console/dist are served",
      parameters: [{ name: "file", in: "path", required: true, schema: { type: "string" } }],
      responses: { "200": { description: "The file, with its content type" }, "404": { description: "No such file (NOT_FOUND)" } },
    },
  },
};

/** Serves the built console at / (exact files of distDir only). */
export function consoleRoutes(opts: ConsoleRoutesOptions): ApiModule {
  let files = scanDist(opts.distDir);
  const lookup = (path: string): ServedFile | undefined => {
    // A path not in the index may be a rebuilt bundle: rescan once, still exact-match only.
    if (!files.has(path)) files = scanDist(opts.distDir);
    return files.get(path);
  };
  const send = (reply: FastifyReply, f: ServedFile): FastifyReply =>
    securityHeaders(reply)
      .header("cache-control", f.immutable ? "public, max-age=31536000, immutable" : "no-cache")
      .type(f.type)
      .send(f.body);
  return {
    name: "console",
    docs: consoleStaticDocs,
    register: (app: FastifyInstance) => {
      const index = async (_req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const f = lookup("/index.html");
        if (f === undefined) return securityHeaders(reply).code(503).type("text/html; charset=utf-8").send(NOT_BUILT);
        return send(reply, f);
      };
      app.get("/", index);
      app.get("/index.html", index);
      const asset = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        const path = req.url.split("?")[0] ?? "";
        // Exact lookup in the scanned index: "..", "%2e%2e", "//" and the like simply are not keys.
        const f = /^\/[A-Za-z0-9._/-]{1,300}$/.test(path) && !path.includes("..") ? lookup(path) : undefined;
        if (f === undefined) throw commonErrors.make("NOT_FOUND", `GET ${path.slice(0, 300)}`);
        return send(reply, f);
      };
      app.get("/assets/*", asset);
      app.get("/favicon.svg", asset);
    },
  };
}

/** Most ledger entries one totals request reads to bring its outcome counts up to date. */
export const TOTALS_ENTRIES_PER_REQUEST_MAX = 100_000;

/** The answer of GET /v1/platform/totals (counts and amounts as decimal strings). */
export interface PlatformTotals {
  readonly version: 1;
  readonly at: string;
  /** The ledger's size when the totals were read. */
  readonly treeSize: string;
  /** Entries by outcome among the first `counted` (all of them once counting caught up). */
  readonly entries: { readonly counted: string; readonly applied: string; readonly denied: string; readonly other: string };
  readonly imvus: {
    readonly total: number;
    readonly byStatus: Readonly<Record<string, number>>;
    readonly byClass: Readonly<Record<string, number>>;
    readonly exitRequested: number;
    readonly departed: number;
  };
  readonly identities: { readonly total: number; readonly byKind: Readonly<Record<string, number>> };
  readonly resources: { readonly domains: number; readonly dnsRecords: number; readonly mailboxes: number; readonly workloads: number; readonly routes: number };
  /** Per currency, in minor units: gross, the creators' and the platform's parts, paid out; and the same per class. */
  readonly revenue: Readonly<Record<string, RevenueTotal & { readonly byClass: Readonly<Record<string, RevenueTotal>> }>>;
}

/** Revenue sums of a currency (minor units, decimal strings). */
export interface RevenueTotal {
  readonly gross: string;
  readonly creator: string;
  readonly platform: string;
  readonly paidOut: string;
}

/**
 * Counts ledger entries by outcome, each entry read once per process: a request brings the count
 * forward by at most `step` entries (so a long ledger costs no single request more than that),
 * and requests queue behind each other.
 */
export class OutcomeTally {
  readonly #ledger: Ledger;
  readonly #step: number;
  #counted = 0n;
  readonly #by = { applied: 0n, denied: 0n, other: 0n };
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ledger: Ledger, step = TOTALS_ENTRIES_PER_REQUEST_MAX) {
    this.#ledger = ledger;
    this.#step = step;
  }

  /** The counts after reading forward (up to `step` entries) towards the ledger's current size. */
  advance(): Promise<PlatformTotals["entries"]> {
    const run = this.#queue.then(async () => {
      const target = this.#ledger.size;
      let budget = this.#step;
      while (this.#counted < target && budget > 0) {
        const rows = await this.#ledger.entries(this.#counted, Math.min(ENTRIES_PAGE_MAX, budget));
        if (rows.length === 0) break;
        for (const r of rows) {
          let outcome: unknown;
          try {
            outcome = (JSON.parse(Buffer.from(r.bytes).toString("utf8")) as { outcome?: unknown }).outcome;
          } catch {
            outcome = undefined;
          }
          if (outcome === "applied") this.#by.applied++;
          else if (outcome === "denied") this.#by.denied++;
          else this.#by.other++;
        }
        this.#counted += BigInt(rows.length);
        budget -= rows.length;
      }
      return { counted: this.#counted.toString(), applied: this.#by.applied.toString(), denied: this.#by.denied.toString(), other: this.#by.other.toString() };
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** The projection's aggregates (everything of the totals but the entry counts). */
export function projectionTotals(state: StateReader): Omit<PlatformTotals, "version" | "at" | "treeSize" | "entries"> {
  const byStatus: Record<string, number> = { active: 0, suspended: 0 };
  const byClass: Record<string, number> = { imvu: 0, "mini-platform": 0 };
  let total = 0;
  let exitRequested = 0;
  let departed = 0;
  for (const [, i] of state.list("imvu")) {
    total++;
    bump(byStatus, i.status);
    bump(byClass, i.class);
    if (i.exit?.departedIndex !== undefined) departed++;
    else if (i.exit !== undefined) exitRequested++;
  }
  const byKind: Record<string, number> = {};
  let identities = 0;
  for (const [, id] of state.list("identity")) {
    identities++;
    bump(byKind, id.kind);
  }
  type Sums = { gross: bigint; creator: bigint; platform: bigint; paidOut: bigint };
  const zero = (): Sums => ({ gross: 0n, creator: 0n, platform: 0n, paidOut: 0n });
  const add = (a: Sums, r: { gross: string; creator: string; platform: string; paidOut: string }): void => {
    a.gross += BigInt(r.gross);
    a.creator += BigInt(r.creator);
    a.platform += BigInt(r.platform);
    a.paidOut += BigInt(r.paidOut);
  };
  const sums = new Map<string, { all: Sums; byClass: Map<string, Sums> }>();
  for (const [, a] of state.list("revenue-account")) {
    let c = sums.get(a.currency);
    if (c === undefined) {
      c = { all: zero(), byClass: new Map() };
      sums.set(a.currency, c);
    }
    add(c.all, a);
    let k = c.byClass.get(a.class);
    if (k === undefined) {
      k = zero();
      c.byClass.set(a.class, k);
    }
    add(k, a);
  }
  const text = (x: Sums): RevenueTotal => ({ gross: x.gross.toString(), creator: x.creator.toString(), platform: x.platform.toString(), paidOut: x.paidOut.toString() });
  const byKey = <T,>([a]: [string, T], [b]: [string, T]): number => (a < b ? -1 : a > b ? 1 : 0);
  const revenue: PlatformTotals["revenue"] = Object.fromEntries(
    [...sums.entries()].sort(byKey).map(([cur, c]) => [cur, { ...text(c.all), byClass: Object.fromEntries([...c.byClass.entries()].sort(byKey).map(([k, v]) => [k, text(v)])) }]),
  );
  return {
    imvus: { total, byStatus, byClass, exitRequested, departed },
    identities: { total: identities, byKind },
    resources: {
      domains: state.list("domain").length,
      dnsRecords: state.list("dns-rrset").length,
      mailboxes: state.list("mail-mailbox").length,
      workloads: state.list("compute-workload").length,
      routes: state.list("net-route").length,
    },
    revenue,
  };
}

/** What the console's read routes need. */
export interface ConsoleReadRoutesOptions {
  readonly pipeline: Pipeline;
  /** The ledger, for the entry counts of GET /v1/platform/totals (without it the route is not mounted). */
  readonly ledger?: Ledger;
  /** Checks read tokens (default: the process's shared one, which POST /v1/auth/token issues). */
  readonly tokens?: TokenAuthority;
  /** Seconds clock for signature freshness. */
  readonly clockSec?: () => number;
}

const nameParams = z.strictObject({ name: ImvuName });
const emptyQuery = z.strictObject({});
const errorRef = { $ref: "#/components/schemas/Error" };

/** The OpenAPI description of the console's reads. */
export const consoleReadDocs: OpenApiPaths = {
  "/v1/platform/totals": {
    get: {
      summary: "Public platform totals: IMVUs by status and class, identities, resources, ledger entries applied and denied, revenue per currency with the creators' and the platform's parts (aggregates only)",
      responses: {
        "200": jsonResponse("The totals", {
          type: "object",
          required: ["version", "at", "treeSize", "entries", "imvus", "identities", "resources", "revenue"],
        }),
        ...errorResponses(400),
      },
    },
  },
  "/v1/console/imvus/{name}/resources": {
    get: {
      summary: "What an IMVU holds, for its owner or delegates (gate 16): DNS zones and records, workloads, routes, grants, usage reports and throttling episodes",
      security: [{ httpSignature: [] }, { bearer: [] }],
      parameters: [parameter("name", "path", ImvuName, "the IMVU's name", true)],
      responses: {
        "200": jsonResponse("The resources", {
          type: "object",
          required: ["zones", "records", "workloads", "routes", "grants", "usage", "throttles"],
        }),
        "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef),
        "404": jsonResponse("No IMVU of that name among the caller's (NOT_FOUND)", errorRef),
      },
    },
  },
};

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** Rows of a table whose record names the IMVU (field `imvu`), bounded. */
function rowsOf(state: StateReader, table: "dns-zone" | "dns-rrset" | "compute-workload" | "net-route" | "net-grant" | "usage" | "throttle", imvu: string): unknown[] {
  const out: unknown[] = [];
  for (const [key, rec] of state.list(table)) {
    if ((rec as { imvu?: unknown }).imvu !== imvu) continue;
    out.push({ key, ...rec });
    if (out.length >= CONSOLE_ROWS_MAX) break;
  }
  return out;
}

/** The console's reads as an API module. */
export function consoleReadRoutes(opts: ConsoleReadRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const tally = opts.ledger === undefined ? undefined : new OutcomeTally(opts.ledger);
  return {
    name: "console-reads",
    docs: consoleReadDocs,
    register: (app: FastifyInstance) => {
      if (tally !== undefined && opts.ledger !== undefined) {
        const ledger = opts.ledger;
        app.get("/v1/platform/totals", async (req): Promise<PlatformTotals> => {
          parseInput(emptyQuery, req.query, "query");
          const treeSize = ledger.size.toString();
          const entries = await tally.advance();
          return { version: 1, at: new Date().toISOString(), treeSize, entries, ...projectionTotals(opts.pipeline.state) };
        });
      }
      app.get("/v1/console/imvus/:name/resources", async (req) => {
        const state = opts.pipeline.state;
        const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
        const who = callerOf(state, tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
        if (who === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
        const { name } = parseInput(nameParams, req.params, "path");
        parseInput(emptyQuery, req.query, "query");
        const rec = state.get("imvu", name);
        const allowed = rec !== undefined && (rec.owner === who || state.get("delegation", `${name}/${who}`) !== undefined);
        if (!allowed) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
        return {
          zones: rowsOf(state, "dns-zone", name),
          records: rowsOf(state, "dns-rrset", name),
          workloads: rowsOf(state, "compute-workload", name),
          routes: rowsOf(state, "net-route", name),
          grants: rowsOf(state, "net-grant", name),
          usage: rowsOf(state, "usage", name),
          throttles: rowsOf(state, "throttle", name),
        };
      });
    },
  };
}
