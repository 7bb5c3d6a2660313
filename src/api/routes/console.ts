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
 * (gate 16, answered 404 for anyone else exactly as for a name that does not exist).
 */
import { lstatSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { Pipeline } from "../../core/pipeline/pipeline.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
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

/** What the console's read routes need. */
export interface ConsoleReadRoutesOptions {
  readonly pipeline: Pipeline;
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
  return {
    name: "console-reads",
    docs: consoleReadDocs,
    register: (app: FastifyInstance) => {
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
