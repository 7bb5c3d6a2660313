/** The zone model: validation per type and per zone rule (asserting codes), serials, diffs, the store and its journal. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { isNexusError } from "../../src/core/errors.ts";
import { isSubdomain, nameToWire, parentName, toName, type Name } from "../../src/services/dns/name.ts";
import { ZoneStore, JOURNAL_VERSIONS_MAX } from "../../src/services/dns/store.ts";
import {
  buildZone, compareNames, diffZones, nextSerial, normalizeRecord, serialGreater, zoneToInput, TTL_MAX_S, TTL_MIN_S, type RecordInput, type ZoneInput,
} from "../../src/services/dns/zone.ts";
import { exampleZone } from "./support.ts";

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isNexusError(e)) return e.code;
    throw e;
  }
  return "none";
}

function withRecords(extra: RecordInput[], base: ZoneInput = exampleZone()): ZoneInput {
  return { ...base, records: [...base.records, ...extra] };
}

test("names: escapes, case, bounds, relative and absolute forms", () => {
  assert.equal(toName("WWW.Example.COM."), "www.example.com.");
  assert.equal(toName("www", "example.com." as Name), "www.example.com.");
  assert.equal(toName("@", "example.com." as Name), "example.com.");
  assert.equal(toName("."), ".");
  assert.equal(toName("a\\.b.example."), "a\\.b.example.");
  assert.equal(toName("\\065bc.example."), "abc.example.", "\\DDD letters fold to lower case");
  assert.equal(toName("\\000x.example."), "\\000x.example.");
  assert.equal(parentName("a\\.b.example." as Name), "example.");
  assert.ok(!isSubdomain("a\\.example.com." as Name, "example.com." as Name));
  assert.ok(isSubdomain("x.example.com." as Name, "example.com." as Name));
  assert.ok(!isSubdomain("xexample.com." as Name, "example.com." as Name));
  for (const bad of ["a..b.", ".a.", "a b.", "\\1.", `${"a".repeat(64)}.`, `${"a.".repeat(128)}`, "x"]) {
    assert.equal(code(() => toName(bad)), "DNS_NAME_INVALID", bad);
  }
  assert.equal(nameToWire(toName(`${"a".repeat(63)}.`)).length, 65);
});

test("names: canonical form round-trips through labels for any octets (property)", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ minLength: 1, maxLength: 20 }), { minLength: 0, maxLength: 8 }), (labels) => {
      const text = labels.map((l) => Array.from(l, (o) => `\\${String(o).padStart(3, "0")}`).join("")).join(".") + ".";
      const n = toName(labels.length === 0 ? "." : text);
      assert.equal(toName(n), n);
      const wire = nameToWire(n);
      assert.equal(wire.length, labels.reduce((s, l) => s + l.length + 1, 1));
    }),
  );
});

test("canonical order (RFC 4034 §6.1 example)", () => {
  const want = ["example.", "a.example.", "yljkjljk.a.example.", "z.a.example.", "zabc.a.example.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."];
  const sorted = [...want].reverse().map((n) => toName(n)).sort(compareNames);
  assert.deepEqual(sorted, want.map((n) => toName(n)));
});

test("records are validated per type", () => {
  const o = "example.test." as Name;
  const cases: [RecordInput, string][] = [
    [{ name: "a", data: { type: "A", address: "192.0.2.256" } }, "DNS_RDATA_INVALID"],
    [{ name: "a", data: { type: "A", address: "192.0.02.1" } }, "DNS_RDATA_INVALID"],
    [{ name: "a", data: { type: "AAAA", address: "2001:db8:::1" } }, "DNS_RDATA_INVALID"],
    [{ name: "a", data: { type: "TXT", text: ["x".repeat(256)] } }, "DNS_RDATA_INVALID"],
    [{ name: "a", data: { type: "CAA", flags: 0, tag: "is-sue", value: "x" } }, "DNS_RDATA_INVALID"],
    [{ name: "a", data: { type: "MX", preference: 1, exchange: "mail_x" } }, "DNS_NAME_INVALID"],
    [{ name: "_x", data: { type: "A", address: "192.0.2.1" } }, "DNS_NAME_INVALID"],
    [{ name: "a", data: { type: "NS", host: "-bad-" } }, "DNS_NAME_INVALID"],
    [{ name: "a", ttl: TTL_MIN_S - 1, data: { type: "A", address: "192.0.2.1" } }, "DNS_TTL_OUT_OF_RANGE"],
    [{ name: "a", ttl: TTL_MAX_S + 1, data: { type: "A", address: "192.0.2.1" } }, "DNS_TTL_OUT_OF_RANGE"],
    [{ name: "www.example.org.", data: { type: "A", address: "192.0.2.1" } }, "DNS_OUT_OF_ZONE"],
  ];
  for (const [rec, want] of cases) assert.equal(code(() => normalizeRecord(rec, o)), want, JSON.stringify(rec));
  const ok = normalizeRecord({ name: "*.W", data: { type: "AAAA", address: "2001:DB8:0:0:0:0:0:1" } }, o);
  assert.deepEqual(ok, { name: "*.w.example.test.", ttl: 3600, data: { type: "AAAA", address: "2001:db8::1" } });
  assert.equal(normalizeRecord({ name: "m", data: { type: "MX", preference: 0, exchange: "." } }, o).data.type, "MX", "RFC 7505 null MX");
});

test("zone rules: no CNAME at the apex or beside data, apex NS, glue, delegations, wildcards, RRset TTLs", () => {
  assert.equal(code(() => buildZone(withRecords([{ name: "@", data: { type: "CNAME", target: "www" } }]))), "DNS_CNAME_AT_APEX");
  assert.equal(code(() => buildZone(withRecords([{ name: "www", data: { type: "CNAME", target: "mail" } }]))), "DNS_CNAME_CONFLICT");
  assert.equal(code(() => buildZone(withRecords([{ name: "alias", data: { type: "CNAME", target: "mail" } }]))), "DNS_CNAME_CONFLICT");
  const noNs = exampleZone();
  assert.equal(code(() => buildZone({ ...noNs, records: noNs.records.filter((r) => !(r.name === "@" && r.data.type === "NS")) })), "DNS_APEX_NS_MISSING");
  assert.equal(code(() => buildZone(withRecords([{ name: "@", data: { type: "NS", host: "ns3" } }]))), "DNS_NS_ADDRESS_MISSING");
  assert.equal(code(() => buildZone(withRecords([{ name: "@", data: { type: "MX", preference: 5, exchange: "alias" } }]))), "DNS_TARGET_IS_ALIAS");
  assert.equal(code(() => buildZone(withRecords([{ name: "sub", data: { type: "TXT", text: ["x"] } }]))), "DNS_DELEGATION_CONFLICT");
  assert.equal(code(() => buildZone(withRecords([{ name: "x.sub", data: { type: "MX", preference: 1, exchange: "mail" } }]))), "DNS_DELEGATION_CONFLICT");
  assert.equal(code(() => buildZone(withRecords([{ name: "*.d", data: { type: "NS", host: "ns1" } }]))), "DNS_WILDCARD_INVALID");
  assert.equal(code(() => buildZone(withRecords([{ name: "www", ttl: 60, data: { type: "A", address: "192.0.2.3" } }]))), "DNS_RRSET_TTL_MISMATCH");
  assert.equal(code(() => buildZone({ origin: "x.", soa: exampleZone().soa, records: [], extra: 1 })), "DNS_ZONE_INVALID");
  assert.equal(code(() => buildZone(withRecords([{ name: "x", data: { type: "SOA", mname: "a", rname: "b", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 } }]))), "DNS_ZONE_INVALID");
  // Duplicates are suppressed (RFC 2181 §5), glue below a delegation is fine.
  const dup = buildZone(withRecords([{ name: "www", ttl: 300, data: { type: "A", address: "192.0.2.80" } }]));
  assert.equal(dup.records.length, buildZone(exampleZone()).records.length);
});

test("zoneToInput round-trips; diffs and serial arithmetic (RFC 1982)", () => {
  const z = buildZone(exampleZone());
  assert.deepEqual(buildZone(zoneToInput(z)), z);
  assert.ok(serialGreater(2, 1));
  assert.ok(!serialGreater(1, 1));
  assert.ok(serialGreater(0, 0xffffffff), "wraps");
  assert.ok(!serialGreater(0x80000000, 0), "2^31 apart is undefined: not greater");
  assert.equal(nextSerial(0xffffffff), 0);
  const z2 = buildZone(withRecords([{ name: "n", data: { type: "A", address: "192.0.2.5" } }], exampleZone(2)));
  const d = diffZones(z, z2);
  assert.deepEqual(d.removed, []);
  assert.deepEqual(d.added.map((r) => r.name), ["n.example.test."]);
});

test("store: serial must increase on change (or be bumped), identical puts are no-ops, events and journal", () => {
  const s = new ZoneStore();
  const events: string[] = [];
  s.on((c) => events.push(`${c.type} ${c.type === "put" ? c.zone.soa.data.serial : c.origin}`));
  s.put(exampleZone(1));
  s.put(exampleZone(1));
  assert.deepEqual(events, ["put 1"]);
  const changed = withRecords([{ name: "n", data: { type: "A", address: "192.0.2.5" } }], exampleZone(1));
  assert.equal(code(() => s.put(changed)), "DNS_SERIAL_NOT_INCREASED");
  const bumped = s.put(changed, { bumpSerial: true });
  assert.equal(bumped.soa.data.serial, 2);
  assert.equal(bumped.nodes.get(bumped.origin)?.rrsets.get("SOA")?.rdata[0]?.type, "SOA");
  assert.deepEqual(s.journal(bumped.origin, 1)?.map((j) => [j.from.data.serial, j.to.data.serial]), [[1, 2]]);
  assert.equal(s.journal(bumped.origin, 0), undefined);
  for (let i = 3; i < JOURNAL_VERSIONS_MAX + 10; i++) s.put(withRecords([{ name: `n${i}`, data: { type: "A", address: "192.0.2.6" } }], exampleZone(i)));
  assert.equal(s.journal(bumped.origin, 1), undefined, "the journal is bounded");
  assert.ok((s.journal(bumped.origin, JOURNAL_VERSIONS_MAX + 5)?.length ?? 0) > 0);
  assert.ok(s.remove("example.test"));
  assert.ok(!s.remove("example.test."));
  assert.equal(events.at(-1), "remove example.test.");
});
