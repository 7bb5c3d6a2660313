/** fast-check generators of zones for the DNS property tests. */
import fc from "fast-check";
import { isNexusError } from "../../src/core/errors.ts";
import { buildZone, type RecordInput, type Zone } from "../../src/services/dns/zone.ts";

/** Labels the generated names use (wildcards, hyphens, an underscore label and escaped octets among them). */
export const LABELS = ["a", "b", "www", "mail", "*", "x-1", "deep", "_tcp", "q\\.dot", "sp\\032ace"] as const;

/** A name relative to the zone ("@" for the apex). */
export const nameArb = fc.array(fc.constantFrom(...LABELS), { minLength: 0, maxLength: 3 }).map((ls) => (ls.length === 0 ? "@" : ls.join(".")));
/** A host name inside the zone. */
export const hostArb = fc.array(fc.constantFrom("a", "b", "www", "mail", "ns"), { minLength: 1, maxLength: 2 }).map((ls) => ls.join("."));
const ttlArb = fc.constantFrom(60, 300, 3600, 86400);
const textArb = fc.string({ maxLength: 60, unit: fc.constantFrom("a", "Z", " ", '"', "\\", ";", "(", ")", "é", "€", "\t", "0", "$", "@") });

/** One record of any served type. */
export const recordArb: fc.Arbitrary<RecordInput> = fc.oneof(
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("A" as const), address: fc.ipV4() }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("AAAA" as const), address: fc.ipV6() }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("CNAME" as const), target: fc.oneof(nameArb, fc.constant("elsewhere.org.")) }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("MX" as const), preference: fc.integer({ min: 0, max: 65535 }), exchange: hostArb }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("TXT" as const), text: fc.array(textArb, { minLength: 1, maxLength: 4 }) }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("NS" as const), host: hostArb }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("PTR" as const), target: hostArb }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("SRV" as const), priority: fc.nat(65535), weight: fc.nat(65535), port: fc.nat(65535), target: hostArb }) }),
  fc.record({ name: nameArb, ttl: ttlArb, data: fc.record({ type: fc.constant("CAA" as const), flags: fc.constantFrom(0, 128), tag: fc.constantFrom("issue", "issuewild", "iodef"), value: textArb }) }),
);

/** A zone of the generated records, or undefined when the draw breaks a zone rule. */
export function zoneOf(records: readonly RecordInput[], origin = "p.test.", serial = 1): Zone | undefined {
  try {
    return buildZone({
      origin,
      ttl: 3600,
      soa: { mname: "ns", rname: "host\\.master", serial, refresh: 3600, retry: 600, expire: 604800, minimum: 300 },
      records: [{ name: "@", data: { type: "NS", host: "ns" } }, { name: "ns", data: { type: "A", address: "192.0.2.1" } }, ...records],
    });
  } catch (e) {
    if (isNexusError(e)) return undefined;
    throw e;
  }
}
