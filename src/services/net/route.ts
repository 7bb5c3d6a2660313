/**
 * The route model and the route table the gateway serves from. Pure: the table is an immutable
 * value built from plain JSON (the ledger projection's routes and the IMVUs' slices) and the
 * ledger index it was built from; matching is by canonical host, then longest path prefix at a
 * segment boundary.
 */
import { z } from "zod";
import { IDENTITY_ID_RE } from "../../core/identity/id.ts";
import { QOS_CLASSES } from "../../core/policy/envelope.ts";
import { netErrors } from "./errors.ts";
import { canonicalRouteHost, normalizeTarget, prefixCovers } from "./normalize.ts";

/** Most routes one table holds. */
export const ROUTES_MAX = 100_000;
/** Most routes (path prefixes) on one host. */
export const ROUTES_PER_HOST_MAX = 64;
/** Most identities granted on one private route. */
export const GRANTS_MAX = 1_000;
/** Most regions one restricted route allows. */
export const ALLOW_REGIONS_MAX = 250;

/** The three route kinds of gate 8. */
export const ROUTE_KINDS = ["public", "private", "restricted"] as const;
/** A route kind. */
export type RouteKind = (typeof ROUTE_KINDS)[number];

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const REGION_RE = /^[A-Z]{2}$/;

/** Wire schema of one route (what `net route add` records in the ledger). */
export const RouteSchema = z
  .object({
    id: z.string().regex(ID_RE, "a route id: letters, digits, . _ : -, at most 128"),
    imvu: z.string().regex(ID_RE, "an IMVU id"),
    host: z
      .string()
      .max(1024)
      .transform((h, ctx) => {
        const c = canonicalRouteHost(h);
        if (c === undefined) ctx.addIssue({ code: "custom", message: "a host name (LDH labels, or a Unicode name mapped by IDNA)" });
        return c ?? "";
      }),
    pathPrefix: z
      .string()
      .max(1024)
      .default("/")
      .transform((p, ctx) => {
        const n = normalizeTarget(p);
        if (!n.ok || n.query !== "") {
          ctx.addIssue({ code: "custom", message: `a path prefix: ${n.ok ? "no query allowed" : n.reason}` });
          return "/";
        }
        return n.path.length > 1 && n.path.endsWith("/") ? n.path.slice(0, -1) : n.path;
      }),
    kind: z.enum(ROUTE_KINDS),
    allowRegions: z.array(z.string().regex(REGION_RE, "an ISO 3166-1 alpha-2 code")).max(ALLOW_REGIONS_MAX).optional(),
    upstream: z
      .object({
        host: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:-]+$/, "an upstream host: a name or an IP address"),
        port: z.number().int().min(1).max(65_535),
      })
      .strict(),
    grants: z.array(z.string().regex(IDENTITY_ID_RE, "an identity id")).max(GRANTS_MAX).default([]),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.kind === "restricted" && (r.allowRegions === undefined || r.allowRegions.length === 0)) {
      ctx.addIssue({ code: "custom", message: "a restricted route needs allowRegions", path: ["allowRegions"] });
    }
    if (r.kind !== "restricted" && r.allowRegions !== undefined) {
      ctx.addIssue({ code: "custom", message: "only a restricted route carries allowRegions", path: ["allowRegions"] });
    }
    if (r.kind !== "private" && r.grants.length > 0) ctx.addIssue({ code: "custom", message: "only a private route carries grants", path: ["grants"] });
  });

/** A validated route (host canonical, path prefix normalised). */
export type Route = z.output<typeof RouteSchema>;
/** A route as carried in JSON. */
export type RouteInput = z.input<typeof RouteSchema>;

const bytesPerSec = z.union([
  z.string().regex(/^(0|[1-9][0-9]{0,15})$/).transform((s) => Number(s)),
  z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
]);

/** The part of an IMVU's envelope the gateway enforces (src/core/policy/envelope.ts); extra envelope fields are ignored. */
export const SliceSchema = z.object({
  bandwidthBytesPerSec: z.union([bytesPerSec, z.bigint().transform((b) => Number(b))]),
  requestsPerSec: z.number().int().min(0).max(1_000_000),
  connections: z.number().int().min(0).max(1_000_000),
  qos: z.enum(QOS_CLASSES),
});

/** An IMVU's network slice. */
export type Slice = z.output<typeof SliceSchema>;
/** A slice as carried in JSON (an envelope passes as is). */
export type SliceInput = z.input<typeof SliceSchema>;

/** What the ledger projection hands the gateway. */
export interface RouteTableInput {
  /** The ledger index the table reflects (sent as `nexus-route-version`). */
  readonly version: number | bigint;
  readonly routes: readonly RouteInput[];
  /** Slice (or whole envelope) per IMVU named by a route. */
  readonly slices: Readonly<Record<string, SliceInput>>;
}

/** An immutable route table. */
export interface RouteTable {
  /** The ledger index, as the decimal text of the response header. */
  readonly version: string;
  readonly routes: readonly Route[];
  readonly slices: ReadonlyMap<string, Slice>;
  /** Routes per canonical host, longest prefix first. */
  readonly byHost: ReadonlyMap<string, readonly Route[]>;
}

function fail(code: "NET_ROUTE_INVALID" | "NET_SLICE_MISSING", at: string, err: z.ZodError): never {
  const issue = err.issues[0];
  throw netErrors.make(code, `${at}${issue ? `${issue.path.join(".")}: ${issue.message}` : ""}`);
}

/** Validates routes and slices into a table. Throws NET_ROUTE_INVALID, NET_ROUTE_CONFLICT, NET_SLICE_MISSING, NET_TABLE_TOO_LARGE. */
export function buildRouteTable(input: RouteTableInput): RouteTable {
  const v = input.version;
  if (!(typeof v === "bigint" ? v >= 0n : Number.isSafeInteger(v) && v >= 0)) throw netErrors.make("NET_ROUTE_INVALID", "version must be a ledger index");
  if (input.routes.length > ROUTES_MAX) throw netErrors.make("NET_TABLE_TOO_LARGE", `at most ${ROUTES_MAX} routes`);
  const slices = new Map<string, Slice>();
  for (const [imvu, s] of Object.entries(input.slices)) {
    const p = SliceSchema.safeParse(s);
    if (!p.success) fail("NET_ROUTE_INVALID", `slice of ${imvu}: `, p.error);
    slices.set(imvu, p.data);
  }
  const routes: Route[] = [];
  const byHost = new Map<string, Route[]>();
  const ids = new Set<string>();
  for (const [i, r] of input.routes.entries()) {
    const p = RouteSchema.safeParse(r);
    if (!p.success) fail("NET_ROUTE_INVALID", `route ${i}: `, p.error);
    const route = p.data;
    if (ids.has(route.id)) throw netErrors.make("NET_ROUTE_CONFLICT", `route id ${route.id} twice`);
    ids.add(route.id);
    if (!slices.has(route.imvu)) throw netErrors.make("NET_SLICE_MISSING", `IMVU ${route.imvu} of route ${route.id}`);
    const list = byHost.get(route.host) ?? [];
    if (list.some((o) => o.pathPrefix === route.pathPrefix)) throw netErrors.make("NET_ROUTE_CONFLICT", `${route.host}${route.pathPrefix} twice`);
    // One host belongs to one IMVU (gate 3): a second IMVU on the same host would be a takeover by path.
    if (list.some((o) => o.imvu !== route.imvu)) throw netErrors.make("NET_ROUTE_CONFLICT", `${route.host} is routed for two IMVUs`);
    if (list.length >= ROUTES_PER_HOST_MAX) throw netErrors.make("NET_TABLE_TOO_LARGE", `at most ${ROUTES_PER_HOST_MAX} routes per host`);
    list.push(route);
    byHost.set(route.host, list);
    routes.push(route);
  }
  for (const list of byHost.values()) list.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length);
  return { version: v.toString(), routes, slices, byHost };
}

/** The route serving canonical `host` and normalised `path`, or undefined. */
export function matchRoute(table: RouteTable, host: string, path: string): Route | undefined {
  const list = table.byHost.get(host);
  if (list === undefined) return undefined;
  for (const r of list) if (prefixCovers(r.pathPrefix, path)) return r;
  return undefined;
}

/** The empty table at a version (a gateway before its first projection). */
export function emptyRouteTable(version: number | bigint = 0): RouteTable {
  return buildRouteTable({ version, routes: [], slices: {} });
}
