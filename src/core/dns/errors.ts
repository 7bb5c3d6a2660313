/** Error codes of the DNS part (services/dns); docs/errors.md lists them under "## dns". */
import { defineErrors } from "../errors.ts";

/** The DNS part's error table. */
export const dnsErrors = defineErrors({
  DNS_NAME_INVALID: {
    message: "The domain name is not valid (label over 63 octets, name over 255, bad escape, empty label or not a host name)",
    http: 400,
    exit: 2,
  },
  DNS_RECORD_TYPE_UNSUPPORTED: {
    message: "Record type not supported: use A, AAAA, CNAME, MX, TXT, SRV, CAA, NS, PTR (SOA is the zone's own)",
    http: 400,
    exit: 2,
  },
  DNS_RDATA_INVALID: { message: "The record data is not valid for its type", http: 400, exit: 2 },
  DNS_TTL_OUT_OF_RANGE: { message: "The TTL is outside the bounds Nexus serves", http: 400, exit: 2 },
  DNS_RRSET_TTL_MISMATCH: { message: "Records of one name and type must share one TTL (RFC 2181 §5.2)", http: 400, exit: 2 },
  DNS_OUT_OF_ZONE: { message: "The record's name is not inside the zone", http: 400, exit: 2 },
  DNS_CNAME_AT_APEX: { message: "A CNAME cannot sit at the zone apex (it would sit beside the SOA and NS)", http: 422, exit: 1 },
  DNS_CNAME_CONFLICT: {
    message: "A name with a CNAME can have no other data, and at most one CNAME (RFC 1034 §3.6.2, RFC 2181 §10.1)",
    http: 422,
    exit: 1,
  },
  DNS_TARGET_IS_ALIAS: { message: "An NS, MX or SRV target inside the zone must not be a CNAME (RFC 2181 §10.3)", http: 422, exit: 1 },
  DNS_APEX_NS_MISSING: { message: "The zone apex needs at least one NS record", http: 422, exit: 1 },
  DNS_NS_ADDRESS_MISSING: {
    message: "An NS target inside the zone (or below its delegation) needs an A or AAAA record (glue)",
    http: 422,
    exit: 1,
  },
  DNS_DELEGATION_CONFLICT: {
    message: "A delegated name can hold only NS records, and names below it only A/AAAA glue",
    http: 422,
    exit: 1,
  },
  DNS_WILDCARD_INVALID: { message: "A wildcard name cannot own NS records (RFC 4592 §4.2)", http: 422, exit: 1 },
  DNS_ZONE_INVALID: { message: "The zone does not match the zone format", http: 400, exit: 2 },
  DNS_ZONE_TOO_LARGE: { message: "The zone has more records, or larger record sets, than Nexus serves", http: 413, exit: 2 },
  DNS_SERIAL_NOT_INCREASED: {
    message: "A changed zone must carry a SOA serial greater than the served one (RFC 1982 arithmetic)",
    http: 409,
    exit: 1,
  },
  DNS_ZONE_NOT_FOUND: { message: "No such zone is served", http: 404, exit: 3 },
  DNS_ZONEFILE_SYNTAX: { message: "The master file has a syntax error", http: 400, exit: 2 },
  DNS_ZONEFILE_UNSUPPORTED: { message: "The master file uses a directive or record type Nexus does not load", http: 422, exit: 2 },
  DNS_WIRE_MALFORMED: { message: "The DNS message is malformed", http: 400, exit: 2 },
  DNS_WIRE_TOO_LARGE: { message: "The DNS message would exceed 65,535 octets", http: 413, exit: 2 },
  DNS_TSIG_KEY_INVALID: {
    message: "The TSIG key is not valid (name, hmac-sha256 only, base64 secret of at least 16 octets)",
    http: 400,
    exit: 2,
  },
  DNS_TSIG_INVALID: { message: "The TSIG signature did not verify (BADKEY, BADSIG, BADTIME or BADTRUNC)", http: 401, exit: 1 },
  DNS_CONFIG_INVALID: { message: "The DNS server options are not valid", http: 400, exit: 2 },
  DNS_BIND_FAILED: { message: "The DNS server could not bind its UDP and TCP sockets", http: 503, exit: 3 },
  DNS_UPSTREAM_FAILED: { message: "No upstream resolver answered in time", http: 502, exit: 3 },
  DNS_SERVICE_DOWN: {
    message: "The DNS service is not running in this API process; pending domain claims are checked when it runs",
    http: 503,
    exit: 3,
  },
});

/** One DNS error code. */
export type DnsErrorCode = keyof typeof dnsErrors.specs;
