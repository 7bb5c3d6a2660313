/**
 * Body schemas of the network command types (docs/net.md, "Commands"): routes through the edge
 * gateway and the grants of private routes. Spread into BODY_SCHEMAS by schemas.ts; no imports
 * from schemas.ts (it imports this file).
 */
import { z } from "zod";

/** Bounds of network command fields. */
export const NET_LIMITS = {
  pathPrefixCharsMax: 512,
  regionsMax: 64,
} as const;

/** Route kinds (gate 8). */
export const ROUTE_KINDS = ["public", "private", "restricted"] as const;

/** A route id: a DNS label, unique within its IMVU. */
export const RouteId = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, "a route id: a DNS label of at most 40 characters");
/** A host the gateway serves: a lower-case domain name (no port, no trailing dot). */
export const RouteHost = z
  .string()
  .min(1)
  .max(253)
  .regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "a lower-case host name like stage.nexus.test");
/** A normalised path prefix: starts with "/", no dot segments, no empty segments, no encoded or reserved bytes. */
export const PathPrefix = z
  .string()
  .min(1)
  .max(NET_LIMITS.pathPrefixCharsMax)
  .regex(/^\/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]+(?:\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*)?$/, "a path prefix like / or /api (no %, no //, no trailing /)")
  .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "no . or .. segments");
/** An ISO 3166-1 alpha-2 region. */
const Region = z.string().regex(/^[A-Z]{2}$/, "a two-letter ISO 3166-1 code");
const identityId = z.string().regex(/^nx1[a-z2-7]{20,80}$/, "an identity id (nx1…)");

/** The body schema of each network command type. */
export const NET_BODY_SCHEMAS = {
  "net.route.add": z
    .object({
      route: RouteId,
      host: RouteHost,
      pathPrefix: PathPrefix,
      kind: z.enum(ROUTE_KINDS),
      allowRegions: z.array(Region).min(1).max(NET_LIMITS.regionsMax).optional(),
      upstream: z.object({ workload: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/), port: z.number().int().min(1).max(65_535) }).strict(),
    })
    .strict(),
  "net.route.delete": z.object({ route: RouteId }).strict(),
  "net.grant.add": z.object({ route: RouteId, identity: identityId }).strict(),
  "net.grant.revoke": z.object({ route: RouteId, identity: identityId }).strict(),
} as const;
