/** services/dns: the zone model, master files, the authoritative server with transfers, and the caching resolver. */
export { dnsErrors, type DnsErrorCode } from "./errors.ts";
export {
  toName, isSubdomain, isHostName, isWildcard, parentName, relativeName, nameToWire, ROOT, LABEL_OCTETS_MAX, NAME_OCTETS_MAX,
  type Name,
} from "./name.ts";
export { RDataSchema, RECORD_TYPES, TYPE, CLASS, normalizeRData, rdataText, typeCode, typeName, type RData, type RDataOf, type RecordType } from "./rdata.ts";
export {
  buildZone, normalizeRecord, zoneToInput, zoneSerial, serialGreater, nextSerial, withSerial, sameContent, diffZones, compareNames,
  ZoneInputSchema, RecordInputSchema, SoaInputSchema, TTL_MIN_S, TTL_MAX_S, TTL_DEFAULT_S, RECORDS_PER_ZONE_MAX, RRSET_RECORDS_MAX,
  type Zone, type ZoneInput, type RecordInput, type SoaInput, type ZoneRecord, type RRset, type ZoneNode, type ZoneDiff,
} from "./zone.ts";
export { lookup, findZone, RCODE, CNAME_CHAIN_MAX, type ZoneSet, type LookupResult, type LookupKind, type AdditionalSet } from "./lookup.ts";
export { ZoneStore, JOURNAL_VERSIONS_MAX, JOURNAL_RECORDS_MAX, type ZoneChange, type JournalStep, type PutOptions } from "./store.ts";
export { exportZone, parseZoneFile, parseRecordLine, scanZoneFile, type ScannedRecord, type ScanError, type SkippedRecord } from "./zonefile.ts";
export { tsigKey, type TsigKey, type TsigKeyConfig } from "./tsig.ts";
export { Meter, sumMeters, meterDelta, type MeterSnapshot, type ZoneCounters, type ServerCounters } from "./meter.ts";
export { startDnsServer, DNS_PORT_DEFAULT, type DnsServer, type DnsServerOptions, type DnsServerEvent } from "./server.ts";
export type { NotifyTarget, NotifyOutcome } from "./notify.ts";
export { startResolver, RESOLVER_PORT_DEFAULT, type Resolver, type ResolverOptions, type ResolverStats, type Upstream } from "./resolver.ts";
export { zonesFromState, syncZones, affectedOrigins, touchesZones, type SyncReport } from "./projection.ts";
