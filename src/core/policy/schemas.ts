/**
 * Wire schemas of commands: the common shape `{type, v, actor, imvu?, nonce, issuedAt, body}`
 * (ARCHITECTURE.md, "Commands and the ledger") and one body schema per command type. The
 * TypeScript types are derived from these schemas; nothing is declared twice.
 */
import { z } from "zod";
import { COMPUTE_BODY_SCHEMAS } from "./compute-schemas.ts";
import { NET_BODY_SCHEMAS } from "./net-schemas.ts";
import { MAIL_BODY_SCHEMAS } from "./mail-schemas.ts";
import { EnvelopeSchema } from "./envelope.ts";
import { parseIPv4, parseIPv6, RDataSchema } from "../dns/rdata.ts";
import { RRSET_RECORDS_MAX } from "../dns/zone.ts";

/** Bounds on command fields (named so docs and tests can cite them). */
export const LIMITS = {
  nonceCharsMin: 16,
  nonceCharsMax: 64,
  reasonCharsMax: 1000,
  nameCharsMax: 63,
  scopeTypesMax: 64,
  metricsMax: 32,
  envelopeBytesMax: 64 * 1024,
} as const;

/** An identity id (see docs/identity.md): "nx1" + lower-case base32. */
export const IdentityId = z.string().regex(/^nx1[a-z2-7]{20,80}$/, "an identity id (nx1…)");
/** An IMVU name: one DNS label, lower-case letters, digits and inner hyphens. */
export const ImvuName = z
  .string()
  .min(1)
  .max(LIMITS.nameCharsMax)
  .regex(/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/, "an IMVU name: a lower-case DNS label");
/** ISO 3166-1 alpha-2 jurisdiction tag, or "ZZ" for unspecified. */
export const Jurisdiction = z.string().regex(/^[A-Z]{2}$/, "a two-letter ISO 3166-1 country code");
/** A lower-case hex SHA-256. */
export const Digest = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256");
/** An ISO 8601 UTC timestamp with milliseconds, as `Date.prototype.toISOString` writes it. */
export const Timestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/, "an ISO 8601 UTC time like 2026-01-02T03:04:05.000Z");
/** A signed decimal amount of minor units (JSON carries money as strings). */
export const MinorUnits = z.string().regex(/^-?(0|[1-9][0-9]{0,30})$/, "an integer amount of minor units");
/** A positive decimal amount of minor units. */
export const PositiveMinorUnits = z.string().regex(/^[1-9][0-9]{0,30}$/, "a positive integer amount of minor units");
/** An ISO 4217 alphabetic code. */
export const CurrencyCode = z.string().regex(/^[A-Z]{3}$/, "an ISO 4217 currency code");
/** A processor's event id (idempotency key). */
export const EventId = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces");
/** A public reason (emergency class, gate 10). */
export const Reason = z.string().min(10, "a public reason of at least 10 characters").max(LIMITS.reasonCharsMax);

/** A key event (inception or rotation) as carried in commands; checked by core/identity. */
export const KeyEventWire = z
  .object({ event: z.record(z.string(), z.unknown()), signature: z.string().max(200) })
  .strict();

/** Service roles a service identity can hold. */
export const SERVICE_ROLES = ["dns", "mail", "compute", "gateway", "revenue-source", "meter"] as const;
/** Split classes of the handshake. */
export const SPLIT_CLASSES = ["imvu", "mini-platform"] as const;

const empty = z.object({}).strict();

/** A lower-case host name of two or more labels (domains, name servers, mail hosts). */
export const DomainName = z
  .string()
  .min(3)
  .max(253)
  .regex(/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, "a lower-case domain name like example.org");
/** Record types of `dns.rrset.*` (SOA is accepted by the schema so gate 4 denies it on the record). */
export const DNS_RRSET_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "SOA"] as const;
/** An owner name of `dns.rrset.*` (absolute, with or without the final dot); gate 4 checks it. */
const DnsOwnerName = z.string().min(1).max(1024);
/** Optional DNS facts of genesis; absent fields take the defaults of core/policy/dns-zones.ts. */
const GenesisDns = z
  .object({
    nameservers: z.array(DomainName).min(1).max(8).optional(),
    gatewayIpv4: z.string().max(15).refine((s) => parseIPv4(s) !== undefined, "a dotted-quad IPv4 address").optional(),
    gatewayIpv6: z.string().max(45).refine((s) => parseIPv6(s) !== undefined, "an IPv6 address").optional(),
    mailHost: DomainName.optional(),
  })
  .strict();

/** The body schema of each command type of constitution v1. */
export const BODY_SCHEMAS = {
  "platform.genesis": z
    .object({
      constitutionVersion: z.literal(1),
      constitutionHash: Digest,
      baseDomain: z.string().min(3).max(200).regex(/^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]$/),
      inception: KeyEventWire,
      dns: GenesisDns.optional(),
    })
    .strict(),
  "admin.add": z.object({ identity: IdentityId }).strict(),
  "admin.remove": z.object({ identity: IdentityId }).strict(),
  "service.register": z.object({ inception: KeyEventWire, roles: z.array(z.enum(SERVICE_ROLES)).min(1).max(6) }).strict(),
  "identity.inception": z.object({ inception: KeyEventWire }).strict(),
  "identity.rotate": z.object({ rotation: KeyEventWire }).strict(),
  "delegation.grant": z
    .object({ delegate: IdentityId, scope: z.array(z.string().min(3).max(64)).min(1).max(LIMITS.scopeTypesMax) })
    .strict(),
  "delegation.revoke": z.object({ delegate: IdentityId }).strict(),
  "imvu.create": z
    .object({
      name: ImvuName,
      jurisdiction: Jurisdiction,
      class: z.enum(SPLIT_CLASSES),
      envelope: EnvelopeSchema,
    })
    .strict(),
  "imvu.envelope.change": z.object({ envelope: EnvelopeSchema }).strict(),
  "imvu.suspend": z.object({ reason: Reason, emergency: z.literal(true) }).strict(),
  "imvu.resume": z.object({ reason: Reason }).strict(),
  "imvu.exit.request": empty,
  "imvu.depart": empty,
  "imvu.exit.expire": empty,
  // The import of an exit bundle made elsewhere (docs/exit.md, "Import"): the origin's signed checkpoint and key.
  "imvu.import": z
    .object({
      originImvu: ImvuName,
      verifierKey: z.string().min(1).max(1000),
      checkpoint: z.string().min(1).max(65_536),
      manifest: z.string().regex(/^[0-9a-f]{64}$/, "the SHA-256 hex of the bundle's manifest payload"),
    })
    .strict(),
  "consent.give": z.object({ digest: Digest, note: z.string().max(LIMITS.reasonCharsMax).optional() }).strict(),
  "revenue.record": z
    .object({
      class: z.enum(SPLIT_CLASSES),
      currency: CurrencyCode,
      amount: PositiveMinorUnits,
      source: z.string().min(1).max(100),
      eventId: EventId,
    })
    .strict(),
  "revenue.refund": z
    .object({ currency: CurrencyCode, amount: PositiveMinorUnits, refOf: EventId, eventId: EventId, source: z.string().min(1).max(100) })
    .strict(),
  "revenue.payout": z.object({ currency: CurrencyCode, amount: PositiveMinorUnits, eventId: EventId }).strict(),
  "usage.report": z
    .object({
      service: z.enum(SERVICE_ROLES),
      intervalStart: Timestamp,
      intervalEnd: Timestamp,
      metrics: z
        .record(z.string().regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,62}$/), z.string().regex(/^(0|[1-9][0-9]{0,30})$/))
        .refine((m) => Object.keys(m).length <= LIMITS.metricsMax, `at most ${LIMITS.metricsMax} metrics`),
    })
    .strict(),
  "throttle.report": z
    .object({
      service: z.enum(SERVICE_ROLES),
      limit: z.string().min(1).max(64),
      declared: z.string().min(1).max(64),
      episodeId: z.string().min(1).max(100),
      startedAt: Timestamp,
      count: z.number().int().min(1).max(1e12),
    })
    .strict(),
  "dns.rrset.set": z
    .object({
      name: DnsOwnerName,
      type: z.enum(DNS_RRSET_TYPES),
      // Bounds are gate 4's (recorded as a denial), not the schema's.
      ttl: z.number().int().min(0).max(4_294_967_295).optional(),
      values: z.array(RDataSchema).min(1).max(RRSET_RECORDS_MAX),
    })
    .strict(),
  "dns.rrset.delete": z.object({ name: DnsOwnerName, type: z.enum(DNS_RRSET_TYPES) }).strict(),
  "domain.claim": z.object({ domain: DomainName }).strict(),
  "domain.verify": z.object({ domain: DomainName, observed: z.array(z.string().max(255)).max(32) }).strict(),
  ...COMPUTE_BODY_SCHEMAS,
  ...NET_BODY_SCHEMAS,
  ...MAIL_BODY_SCHEMAS,
} as const;

/** Every command type of constitution v1. */
export type CommandType = keyof typeof BODY_SCHEMAS;
/** The body of command type T after validation. */
export type CommandBody<T extends CommandType> = z.output<(typeof BODY_SCHEMAS)[T]>;

/** The common part of every command. */
export const CommandHeaderSchema = z
  .object({
    type: z.string().min(1).max(64),
    v: z.literal(1),
    actor: IdentityId,
    imvu: ImvuName.optional(),
    nonce: z
      .string()
      .min(LIMITS.nonceCharsMin)
      .max(LIMITS.nonceCharsMax)
      .regex(/^[A-Za-z0-9_-]+$/, "a base64url nonce"),
    issuedAt: Timestamp,
    body: z.record(z.string(), z.unknown()),
  })
  .strict();

/** A validated command: the header plus the typed body of its type. */
export type Command = {
  [T in CommandType]: {
    readonly type: T;
    readonly v: 1;
    readonly actor: string;
    readonly imvu?: string;
    readonly nonce: string;
    readonly issuedAt: string;
    readonly body: CommandBody<T>;
  };
}[CommandType];

/** True when `t` names a command type of the catalogue. */
export function isCommandType(t: string): t is CommandType {
  return Object.hasOwn(BODY_SCHEMAS, t);
}
