/**
 * core/dns: the pure DNS data model the gates and the projection share with the server: canonical
 * names, record data per type (schema, normalisation, canonical wire form), zone validation and
 * serial arithmetic. No sockets, no clock. services/dns re-exports it and adds the server.
 */
export { dnsErrors, type DnsErrorCode } from "./errors.ts";
export { toName, toAbsoluteName, isSubdomain, isHostName, isWildcard, relativeName, type Name } from "./name.ts";
export { RDataSchema, RECORD_TYPES, normalizeRData, rdataText, type RData, type RDataOf, type RecordType } from "./rdata.ts";
export {
  buildZone, normalizeRecord, serialGreater, nextSerial, TTL_MIN_S, TTL_MAX_S, TTL_DEFAULT_S, RECORDS_PER_ZONE_MAX, RRSET_RECORDS_MAX,
  type Zone, type ZoneInput, type RecordInput, type ZoneRecord,
} from "./zone.ts";
