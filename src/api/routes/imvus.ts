/**
 * Reads of the registry. Authenticated reads (an RFC 9421 signature by the caller's identity key,
 * or a bearer token from POST /v1/auth/token) filtered by gate 16: a caller sees an IMVU only as
 * its owner or one of its delegates; to anyone else it answers 404 exactly as for a name that
 * does not exist, so nobody learns that another's IMVU exists.
 *   GET /v1/imvus, /v1/imvus/:name, /v1/imvus/:name/feed, /v1/imvus/:name/revenue/statement
 * Public reads: GET /v1/identities/:id (key state, for clients and auditors) and GET /v1/platform
 * (genesis facts, constitution version and hash, the checkpoint verifier key).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import { canonicalize } from "../../core/crypto/index.ts";
import { toHex } from "../../core/crypto/bytes.ts";
import { buildStatement, statementToJson, STATEMENT_EVENTS_MAX, type MoneyEvent } from "../../core/handshake/index.ts";
import type { Ledger } from "../../core/ledger/ledger.ts";
import { leafHash } from "../../core/ledger/merkle.ts";
import { decodeCommand } from "../../core/pipeline/authenticate.ts";
import { parseEntry, type Pipeline } from "../../core/pipeline/pipeline.ts";
import type { ImvuRecord, StateReader } from "../../core/pipeline/state.ts";
import { CONSTITUTION_VERSION, constitutionHash } from "../../core/policy/constitution.ts";
import { IdentityId, ImvuName } from "../../core/policy/schemas.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { parseInput } from "../params.ts";
import { sharedTokenAuthority } from "./commands.ts";

/** Most feed items one page holds. */
export const FEED_PAGE_MAX = 1000;
/** Most days one statement period spans. */
export const STATEMENT_DAYS_MAX = 3660;

/** What the read routes need. */
export interface ImvuRoutesOptions {
  readonly pipeline: Pipeline;
  readonly ledger: Ledger;
  /** The platform's checkpoint verifier key (served by GET /v1/platform). */
  readonly verifierKey: string;
  /** Checks read tokens (default: the process's shared one, which POST /v1/auth/token issues). */
  readonly tokens?: TokenAuthority;
  /** Seconds clock for signature freshness (tests move it). */
  readonly clockSec?: () => number;
  /** The running services and where each listens (served by GET /v1/platform as `services`). */
  readonly services?: () => Readonly<Record<string, Readonly<Record<string, string>>>>;
}

const DAY_RE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const day = z
  .string()
  .regex(DAY_RE, "a date YYYY-MM-DD")
  .refine((s) => !DAY_RE.test(s) || new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), "a calendar date");
const nameParams = z.strictObject({ name: ImvuName });
const idParams = z.strictObject({ id: IdentityId });
const emptyQuery = z.strictObject({});
const feedQuery = z.strictObject({
  from: z.string().regex(/^(0|[1-9][0-9]{0,18})$/, "a ledger index").optional(),
  limit: z.string().regex(/^[1-9][0-9]{0,3}$/, `1 to ${FEED_PAGE_MAX}`).transform(Number).refine((n) => n <= FEED_PAGE_MAX, `at most ${FEED_PAGE_MAX}`).optional(),
});
const statementQuery = z.strictObject({ from: day, to: day });

const errorRef = { $ref: "#/components/schemas/Error" };
const unauthorized = { "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef) };
const notYours = { "404": jsonResponse("No IMVU of that name among the caller's (NOT_FOUND): another's IMVU answers the same", errorRef) };
const security = [{ httpSignature: [] }, { bearer: [] }];
const imvuSchema = {
  type: "object",
  required: ["name", "owner", "jurisdiction", "class", "envelope", "status", "createdIndex", "role"],
  properties: {
    name: { type: "string" },
    owner: { type: "string" },
    jurisdiction: { type: "string" },
    class: { enum: ["imvu", "mini-platform"] },
    envelope: { type: "object" },
    status: { enum: ["active", "suspended"] },
    suspension: { type: "object" },
    exit: { type: "object" },
    createdIndex: { type: "string" },
    role: { enum: ["owner", "delegate"] },
    scope: { type: "array", items: { type: "string" } },
  },
};
const nameParam = parameter("name", "path", ImvuName, "the IMVU's name", true);

/** The OpenAPI description of the read routes. */
export const imvuDocs: OpenApiPaths = {
  "/v1/imvus": {
    get: {
      summary: "The caller's IMVUs (owned or delegated to it)",
      security,
      responses: { "200": jsonResponse("The IMVUs", { type: "object", required: ["imvus"], properties: { imvus: { type: "array", items: imvuSchema } } }), ...unauthorized },
    },
  },
  "/v1/imvus/{name}": {
    get: { summary: "One of the caller's IMVUs", security, parameters: [nameParam], responses: { "200": jsonResponse("The IMVU", imvuSchema), ...unauthorized, ...notYours } },
  },
  "/v1/imvus/{name}/feed": {
    get: {
      summary: "Every command that touched the IMVU, by anyone, applied or denied (suspensions and redirects included: gates 10 and 14)",
      security,
      parameters: [
        nameParam,
        parameter("from", "query", z.string(), "first ledger index (default 0)", false),
        parameter("limit", "query", z.string(), `items wanted (default and maximum ${FEED_PAGE_MAX})`, false),
      ],
      responses: {
        "200": jsonResponse("The feed, in ledger order", {
          type: "object",
          required: ["feed"],
          properties: { feed: { type: "array", items: { type: "object", required: ["index", "type", "actor", "outcome", "redirect"] } }, next: { type: "string" } },
        }),
        ...unauthorized,
        ...notYours,
      },
    },
  },
  "/v1/imvus/{name}/revenue/statement": {
    get: {
      summary: "The revenue statement of the IMVU for the days from..to (inclusive, UTC), with every entry's inclusion proof and the checkpoint they lead to",
      security,
      parameters: [nameParam, parameter("from", "query", day, "first day, YYYY-MM-DD", true), parameter("to", "query", day, "last day, YYYY-MM-DD", true)],
      responses: {
        "200": jsonResponse("The statement (format nexus-handshake-statement/1) and its proofs", {
          type: "object",
          required: ["statement", "proofs", "checkpoint", "treeSize"],
          properties: {
            statement: { type: "object" },
            proofs: {
              type: "array",
              items: { type: "object", required: ["index", "leafHash", "entry", "inclusionProof"], properties: { index: { type: "string" }, leafHash: { type: "string" }, entry: { type: "string", contentEncoding: "base64" }, inclusionProof: { type: "array", items: { type: "string" } } } },
            },
            checkpoint: { type: "string" },
            treeSize: { type: "string" },
          },
        }),
        "400": jsonResponse("Bad dates (INPUT_INVALID)", errorRef),
        ...unauthorized,
        ...notYours,
      },
    },
  },
  "/v1/identities/{id}": {
    get: {
      summary: "An identity's current key state (public)",
      parameters: [parameter("id", "path", IdentityId, "the identity id (nx1…)", true)],
      responses: {
        "200": jsonResponse("The key state", { type: "object", required: ["id", "kind", "roles", "publicKey", "seq", "nextKeyDigest", "lastEventDigest", "admin"] }),
        "404": jsonResponse("No such identity (NOT_FOUND)", errorRef),
        ...errorResponses(400),
      },
    },
  },
  "/v1/imvus/{name}/routes": {
    get: {
      summary: "The IMVU's routes through the edge gateway, each with the identities granted on it (owner and delegates only)",
      security: [{ httpSignature: [] }, { bearer: [] }],
      parameters: [parameter("name", "path", ImvuName, "the IMVU's name", true)],
      responses: {
        "200": jsonResponse("Routes", { type: "object", required: ["imvu", "routes"], properties: { imvu: { type: "string" }, routes: { type: "array", items: { type: "object" } } } }),
        ...errorResponses(400, 401, 404),
      },
    },
  },
  "/v1/platform": {
    get: {
      summary: "The platform's genesis facts, its constitution (version, hash) and its checkpoint verifier key (public)",
      responses: {
        "200": jsonResponse("The platform", {
          type: "object",
          required: ["platformId", "baseDomain", "genesisIndex", "constitution", "verifierKey", "origin"],
          properties: {
            platformId: { type: "string" },
            baseDomain: { type: "string" },
            genesisIndex: { type: "string" },
            constitution: { type: "object", properties: { version: { type: "integer" }, hash: { type: "string" }, codeVersion: { type: "integer" }, codeHash: { type: "string" } } },
            verifierKey: { type: "string" },
            origin: { type: "string" },
            services: {
              type: "object",
              description: "each running service and where it listens: protocol → host:port (e.g. dns, smtp, submission, imap, http, https)",
              additionalProperties: { type: "object", additionalProperties: { type: "string" } },
            },
          },
        }),
        "404": jsonResponse("No genesis yet (NOT_FOUND)", errorRef),
      },
    },
  },
};

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The IMVU as the caller may see it (owner or delegate), or undefined: gate 16 for reads. */
function visible(state: StateReader, caller: string, name: string): (ImvuRecord & { role: "owner" | "delegate"; scope?: readonly string[] }) | undefined {
  const rec = state.get("imvu", name);
  if (!rec) return undefined;
  if (rec.owner === caller) return { ...rec, role: "owner" };
  const d = state.get("delegation", `${name}/${caller}`);
  return d ? { ...rec, role: "delegate", scope: d.scope } : undefined;
}

/** The unit's money events in ledger order, read from the signed commands of their entries. */
async function moneyEvents(state: StateReader, ledger: Ledger, unit: string): Promise<{ events: MoneyEvent[]; entries: Map<bigint, Uint8Array> }> {
  const records = state
    .list("revenue-event")
    .map(([, r]) => r)
    .filter((r) => r.imvu === unit);
  if (records.length > STATEMENT_EVENTS_MAX) throw commonErrors.make("INPUT_TOO_LARGE", `${records.length} money events`);
  records.sort((a, b) => (BigInt(a.index) < BigInt(b.index) ? -1 : 1));
  const events: MoneyEvent[] = [];
  const entries = new Map<bigint, Uint8Array>();
  for (const r of records) {
    const index = BigInt(r.index);
    const bytes = await ledger.entry(index);
    entries.set(index, bytes);
    const entry = parseEntry(bytes);
    const d = decodeCommand(canonicalize(entry.envelope));
    if (!d.ok) throw new Error(`invariant: the applied entry ${index} does not decode: ${d.error.code}`);
    const cmd = d.cmd;
    const base = { index, time: entry.time, unit, eventId: r.eventId };
    switch (cmd.type) {
      case "revenue.record":
        events.push({ ...base, kind: "revenue", source: cmd.body.source, currency: cmd.body.currency, amount: BigInt(cmd.body.amount), class: cmd.body.class, version: CONSTITUTION_VERSION });
        break;
      case "revenue.refund":
        events.push({ ...base, kind: "refund", source: cmd.body.source, currency: cmd.body.currency, amount: BigInt(cmd.body.amount), refOf: cmd.body.refOf });
        break;
      case "revenue.payout":
        events.push({ ...base, kind: "payout", source: "payout", currency: cmd.body.currency, amount: BigInt(cmd.body.amount) });
        break;
      default:
        throw new Error(`invariant: revenue event ${r.eventId} is recorded by a ${cmd.type} entry`);
    }
  }
  return { events, entries };
}

function nextDay(d: string): string {
  const t = new Date(`${d}T00:00:00Z`);
  t.setUTCDate(t.getUTCDate() + 1);
  return t.toISOString().slice(0, 10);
}

/** The registry read routes as an API module. */
export function imvuRoutes(opts: ImvuRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const state = (): StateReader => opts.pipeline.state;
  const caller = (req: FastifyRequest): string => {
    const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
    const id = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
    if (id === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
    return id;
  };
  const mine = (req: FastifyRequest): ReturnType<typeof visible> & object => {
    const who = caller(req);
    const { name } = parseInput(nameParams, req.params, "path");
    const rec = visible(state(), who, name);
    if (!rec) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
    return rec;
  };
  return {
    name: "imvus",
    docs: imvuDocs,
    register: (app: FastifyInstance) => {
      app.get("/v1/imvus", async (req) => {
        const who = caller(req);
        parseInput(emptyQuery, req.query, "query");
        const names = new Set<string>();
        for (const [name, r] of state().list("imvu")) if (r.owner === who) names.add(name);
        for (const [, d] of state().list("delegation")) if (d.delegate === who) names.add(d.imvu);
        const imvus = [...names].sort().flatMap((n) => visible(state(), who, n) ?? []);
        return { imvus };
      });
      app.get("/v1/imvus/:name", async (req) => {
        const rec = mine(req);
        parseInput(emptyQuery, req.query, "query");
        return rec;
      });
      app.get("/v1/imvus/:name/feed", async (req) => {
        const rec = mine(req);
        const q = parseInput(feedQuery, req.query, "query");
        const from = BigInt(q.from ?? "0");
        const limit = q.limit ?? FEED_PAGE_MAX;
        const all = state().list("feed", `${rec.name}/`).map(([, f]) => f).filter((f) => BigInt(f.index) >= from);
        const feed = all.slice(0, limit);
        const more = all[limit];
        return { feed, ...(more ? { next: more.index } : {}) };
      });
      app.get("/v1/imvus/:name/routes", async (req) => {
        const rec = mine(req);
        parseInput(emptyQuery, req.query, "query");
        const grants = state().list("net-grant", `${rec.name}/`).map(([, g]) => g);
        const routes = state()
          .list("net-route", `${rec.name}/`)
          .map(([, r]) => ({ ...r, grants: grants.filter((g) => g.route === r.route).map((g) => g.identity) }));
        return { imvu: rec.name, routes };
      });
      app.get("/v1/imvus/:name/revenue/statement", async (req) => {
        const rec = mine(req);
        const q = parseInput(statementQuery, req.query, "query");
        const days = (Date.parse(`${q.to}T00:00:00Z`) - Date.parse(`${q.from}T00:00:00Z`)) / 86_400_000;
        if (days < 0 || days >= STATEMENT_DAYS_MAX) {
          throw commonErrors.make("INPUT_INVALID", `query.to: from ${q.from} to ${q.to} must be 0 to ${STATEMENT_DAYS_MAX - 1} days`, { field: "query.to" });
        }
        const cp = await opts.ledger.checkpoint();
        const { events, entries } = await moneyEvents(state(), opts.ledger, rec.name);
        const statement = buildStatement({ unit: rec.name, period: { from: `${q.from}T00:00:00Z`, to: `${nextDay(q.to)}T00:00:00Z` }, events });
        const proofs = [];
        for (const e of statement.entries) {
          const bytes = entries.get(e.index);
          if (!bytes) throw new Error(`invariant: no entry bytes for ${e.index}`);
          const proof = await opts.ledger.inclusionProof(e.index, cp.checkpoint.size);
          proofs.push({ index: e.index.toString(), leafHash: toHex(leafHash(bytes)), entry: Buffer.from(bytes).toString("base64"), inclusionProof: proof.map(toHex) });
        }
        return { statement: statementToJson(statement), proofs, checkpoint: cp.note, treeSize: cp.checkpoint.size.toString() };
      });
      app.get("/v1/identities/:id", async (req) => {
        const { id } = parseInput(idParams, req.params, "path");
        parseInput(emptyQuery, req.query, "query");
        const rec = state().get("identity", id);
        if (!rec) throw commonErrors.make("NOT_FOUND", `no identity ${id}`);
        return { ...rec, admin: state().get("admin", id) !== undefined };
      });
      app.get("/v1/platform", async (req) => {
        parseInput(emptyQuery, req.query, "query");
        const g = state().get("platform", "genesis");
        if (!g) throw commonErrors.make("NOT_FOUND", "no genesis yet");
        return {
          platformId: g.platformId,
          baseDomain: g.baseDomain,
          genesisIndex: g.genesisIndex,
          constitution: { version: g.constitutionVersion, hash: g.constitutionHash, codeVersion: CONSTITUTION_VERSION, codeHash: constitutionHash() },
          verifierKey: opts.verifierKey,
          origin: opts.ledger.origin,
          services: opts.services?.() ?? {},
        };
      });
    },
  };
}
