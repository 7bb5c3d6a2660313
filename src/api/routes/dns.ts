/**
 * DNS reads of an IMVU (gate 16: only its owner or a delegate sees them; anyone else gets 404, as
 * for a name that does not exist) and the on-demand check of a custom-domain challenge:
 *   GET /v1/imvus/:name/dns                            the served zones with every record, and pending claims
 *   GET /v1/imvus/:name/dns/export[?zone=<origin>]     RFC 1035 master files (text/dns, or JSON on Accept: application/json)
 *   GET /v1/imvus/:name/domains/:domain/verification   look the challenge up now through the resolver; when it is
 *                                                      observed the DNS service submits `domain.verify` (what its
 *                                                      periodic check would do anyway), so repeating it is harmless
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { CHALLENGE_LABEL, servedZoneInput } from "../../core/policy/dns-zones.ts";
import { DomainName, ImvuName } from "../../core/policy/schemas.ts";
import { dnsErrors } from "../../services/dns/errors.ts";
import { toAbsoluteName, type Name } from "../../services/dns/name.ts";
import { rdataText } from "../../services/dns/rdata.ts";
import { buildZone, type Zone } from "../../services/dns/zone.ts";
import { exportZone } from "../../services/dns/zonefile.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { parseInput } from "../params.ts";
import { sharedTokenAuthority } from "./commands.ts";

/** The DNS service's on-demand challenge check (src/platform/services/dns.ts implements it). */
export interface DomainVerifier {
  verifyNow(imvu: string, domain: string): Promise<unknown>;
}

/** What the DNS routes need. */
export interface DnsRoutesOptions {
  /** The platform (only its committed state is read). */
  readonly platform: { readonly state: StateReader };
  /** The running DNS service, for `domain verify`; absent: that route answers DNS_SERVICE_DOWN. */
  readonly verifier?: DomainVerifier | undefined;
  readonly tokens?: TokenAuthority;
  readonly clockSec?: () => number;
}

/** One record as the API shows it. */
export interface DnsRecordView {
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /** Presentation text of the data (RFC 1035 §5.1), names absolute. */
  readonly value: string;
  /** `platform`: the SOA and apex NS (gate 4: the platform DNS service's alone); `imvu`: the IMVU's to change. */
  readonly managedBy: "platform" | "imvu";
}

/** One zone as the API shows it. */
export interface DnsZoneView {
  readonly origin: string;
  readonly kind: "base" | "custom";
  readonly serial: number;
  readonly records: readonly DnsRecordView[];
}

const nameParams = z.strictObject({ name: ImvuName });
const domainParams = z.strictObject({ name: ImvuName, domain: DomainName });
const exportQuery = z.strictObject({ zone: z.string().min(1).max(255).optional() });
const errorRef = { $ref: "#/components/schemas/Error" };
const security = [{ httpSignature: [] }, { bearer: [] }];
const common = {
  "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef),
  "404": jsonResponse("No IMVU of that name among the caller's (NOT_FOUND): another's IMVU answers the same", errorRef),
};
const nameParam = parameter("name", "path", ImvuName, "the IMVU's name", true);

/** The OpenAPI description of the DNS routes. */
export const dnsDocs: OpenApiPaths = {
  "/v1/imvus/{name}/dns": {
    get: {
      summary: "The IMVU's served zones with every record (SOA and apex NS marked as the platform's) and its pending domain claims",
      security,
      parameters: [nameParam],
      responses: { "200": jsonResponse("Zones and claims", { type: "object", required: ["imvu", "zones", "claims"] }), ...common },
    },
  },
  "/v1/imvus/{name}/dns/export": {
    get: {
      summary: "The IMVU's zones as RFC 1035 master files (text/dns; JSON {zones:[{origin, masterFile}]} when Accept is application/json)",
      security,
      parameters: [nameParam, parameter("zone", "query", z.string(), "one zone's origin (default: every zone of the IMVU)", false)],
      responses: {
        "200": { description: "Master files", content: { "text/dns": { schema: { type: "string" } }, "application/json": { schema: { type: "object", required: ["zones"] } } } },
        ...common,
      },
    },
  },
  "/v1/imvus/{name}/domains/{domain}/verification": {
    get: {
      summary: "Looks the claim's challenge (_nexus-challenge.<domain> TXT) up now through the resolver; when observed, the DNS service submits domain.verify",
      security,
      parameters: [nameParam, parameter("domain", "path", DomainName, "the claimed domain", true)],
      responses: {
        "200": jsonResponse("What the check found: status bound, pending or no-claim, the TXT strings observed, the receipt of domain.verify if one was submitted", {
          type: "object",
          required: ["imvu", "domain", "challenge", "status", "observed"],
        }),
        "503": jsonResponse("The DNS service is not running here (DNS_SERVICE_DOWN)", errorRef),
        ...common,
      },
    },
  },
};

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The served zones of an IMVU, built (validated) as the server serves them. */
export function imvuZones(state: StateReader, imvu: string): { kind: "base" | "custom"; zone: Zone }[] {
  const out: { kind: "base" | "custom"; zone: Zone }[] = [];
  for (const [origin, z] of state.list("dns-zone")) {
    if (z.imvu !== imvu) continue;
    const input = servedZoneInput(state, origin);
    if (input !== undefined) out.push({ kind: z.kind, zone: buildZone(input) });
  }
  return out.sort((a, b) => (a.kind === b.kind ? (a.zone.origin < b.zone.origin ? -1 : 1) : a.kind === "base" ? -1 : 1));
}

/** The API view of a zone. */
export function zoneView(kind: "base" | "custom", zone: Zone): DnsZoneView {
  const records: DnsRecordView[] = [{ name: zone.origin, type: "SOA", ttl: zone.soa.ttl, value: rdataText(zone.soa.data), managedBy: "platform" }];
  for (const r of zone.records) {
    const platform = r.name === zone.origin && r.data.type === "NS";
    records.push({ name: r.name, type: r.data.type, ttl: r.ttl, value: rdataText(r.data), managedBy: platform ? "platform" : "imvu" });
  }
  return { origin: zone.origin, kind, serial: zone.soa.data.serial, records };
}

/** The DNS routes as an API module (mount it beside imvuRoutes). */
export function dnsRoutes(opts: DnsRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const state = (): StateReader => opts.platform.state;
  /** The IMVU named in the path when the caller owns it or is its delegate; 404 otherwise (gate 16). */
  const mine = (req: FastifyRequest, name: string): string => {
    const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
    const who = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
    if (who === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
    const rec = state().get("imvu", name);
    if (!rec || (rec.owner !== who && !state().get("delegation", `${name}/${who}`))) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
    return name;
  };
  return {
    name: "dns",
    docs: dnsDocs,
    register: (app: FastifyInstance) => {
      app.get("/v1/imvus/:name/dns", async (req) => {
        const imvu = mine(req, parseInput(nameParams, req.params, "path").name);
        const s = state();
        const claims = s
          .list("domain-claim")
          .map(([, c]) => c)
          .filter((c) => c.imvu === imvu)
          .map((c) => ({ domain: c.domain, challenge: `${CHALLENGE_LABEL}.${c.domain}`, token: c.token, claimedIndex: c.claimedIndex }));
        return { imvu, zones: imvuZones(s, imvu).map((z) => zoneView(z.kind, z.zone)), claims };
      });
      app.get("/v1/imvus/:name/dns/export", async (req, reply) => {
        const imvu = mine(req, parseInput(nameParams, req.params, "path").name);
        const { zone } = parseInput(exportQuery, req.query, "query");
        let zones = imvuZones(state(), imvu);
        if (zone !== undefined) {
          let origin: Name;
          try {
            origin = toAbsoluteName(zone);
          } catch {
            throw commonErrors.make("INPUT_INVALID", `query.zone: ${zone} is not a domain name`, { field: "query.zone" });
          }
          zones = zones.filter((z) => z.zone.origin === origin);
          if (zones.length === 0) throw dnsErrors.make("DNS_ZONE_NOT_FOUND", `${imvu} has no zone ${origin}`);
        }
        const files = zones.map((z) => ({ origin: z.zone.origin, masterFile: exportZone(z.zone) }));
        if ((req.headers.accept ?? "").includes("application/json")) return { zones: files };
        return reply.type("text/dns; charset=utf-8").send(files.map((f) => f.masterFile).join("\n"));
      });
      app.get("/v1/imvus/:name/domains/:domain/verification", async (req) => {
        const p = parseInput(domainParams, req.params, "path");
        const imvu = mine(req, p.name);
        if (opts.verifier === undefined) throw dnsErrors.make("DNS_SERVICE_DOWN");
        return opts.verifier.verifyNow(imvu, p.domain);
      });
    },
  };
}
