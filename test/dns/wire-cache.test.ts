/** The fast path answers byte for byte what the slow path (lookup + encode) answers, for any zone and query. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import dnsPacket from "dns-packet";
import { Meter } from "../../src/services/dns/meter.ts";
import { Responder } from "../../src/services/dns/responder.ts";
import { WireCache } from "../../src/services/dns/wire-cache.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { toName } from "../../src/services/dns/name.ts";
import type { ZoneInput } from "../../src/services/dns/zone.ts";
import { nameArb, recordArb, zoneOf } from "./arbitraries.ts";
import { exampleZone } from "./support.ts";

function firstData(m: Buffer): unknown {
  const a = dnsPacket.decode(m).answers?.[0];
  return a !== undefined && "data" in a ? a.data : undefined;
}

const ORIGIN = "p.test.";

const queryArb = fc.record({
  name: fc.oneof(nameArb.map((n) => (n === "@" ? ORIGIN : `${n}.${ORIGIN}`)), fc.constant("other.org.")),
  upper: fc.array(fc.boolean(), { maxLength: 40 }),
  type: fc.constantFrom("A", "AAAA", "MX", "TXT", "CNAME", "NS", "SOA", "ANY", "SRV", "CAA", "PTR", "DS"),
  id: fc.integer({ min: 0, max: 65535 }),
  rd: fc.boolean(),
  cd: fc.boolean(),
  edns: fc.option(fc.record({ size: fc.constantFrom(0, 512, 1000, 1232, 4096), do: fc.boolean() }), { nil: undefined }),
  tcp: fc.boolean(),
});

type Query = typeof queryArb extends fc.Arbitrary<infer T> ? T : never;

function encodeQuery(q: Query): Buffer {
  const name = [...q.name].map((c, i) => (q.upper[i] === true ? c.toUpperCase() : c)).join("").replace(/\.$/, "");
  const flags = (q.rd ? dnsPacket.RECURSION_DESIRED : 0) | (q.cd ? dnsPacket.CHECKING_DISABLED : 0);
  return dnsPacket.encode({
    type: "query",
    id: q.id,
    flags,
    questions: [{ name, type: q.type as "A" }],
    additionals: q.edns === undefined ? [] : [{ type: "OPT", name: ".", udpPayloadSize: q.edns.size, extendedRcode: 0, ednsVersion: 0, flags: q.edns.do ? dnsPacket.DNSSEC_OK : 0, flag_do: q.edns.do, options: [] }],
  });
}

test("fast path = slow path, byte for byte (random zones, case, EDNS sizes, DO, RD/CD, UDP/TCP)", () => {
  let fastServed = 0;
  let total = 0;
  let zones = 0;
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 12 }), fc.array(queryArb, { minLength: 1, maxLength: 25 }), (records, queries) => {
      const zone = zoneOf(records);
      if (zone === undefined) return;
      zones++;
      const store = new ZoneStore();
      store.put(zone);
      const slow = new Responder({ zones: store, keys: new Map(), meter: new Meter(), now: () => 1 });
      const meter = new Meter();
      const cache = new WireCache(store, meter);
      cache.rebuildAll(store.all());
      const warmResponder = new Responder({ zones: store, keys: new Map(), meter, now: () => 1 });
      for (const q of queries) {
        const msg = encodeQuery(q);
        const transport = q.tcp ? "tcp" : "udp";
        const want = slow.handle(msg, transport);
        assert.equal(want.kind, "reply");
        if (want.kind !== "reply") return;
        for (let round = 0; round < 2; round++) {
          total++;
          // UDP: the in-place variant (batched transport) from a query at an offset, into a slot of a larger buffer.
          const src = Buffer.alloc(msg.length + 40, 0xee);
          msg.copy(src, 29);
          const dst = Buffer.alloc(4096, 0xab);
          const into = q.tcp ? -1 : cache.answerInto(src, 29, msg.length, dst, 101, 2048);
          let got = cache.answer(msg, q.tcp);
          if (got !== undefined) {
            fastServed++;
            if (!q.tcp) {
              assert.equal(into, got.length, "answerInto finds what answer finds");
              assert.equal(dst.subarray(101, 101 + into).toString("hex"), got.toString("hex"));
              assert.ok(dst.subarray(0, 101).every((b) => b === 0xab) && dst.subarray(101 + into).every((b) => b === 0xab), "nothing written outside the slot");
            }
          } else {
            assert.equal(into, -1, "answerInto misses where answer misses");
            const h = warmResponder.handle(msg, transport);
            assert.equal(h.kind, "reply");
            if (h.kind !== "reply") return;
            if (h.lookup !== undefined) cache.remember(h.lookup.question, h.lookup.result);
            got = h.message;
          }
          assert.deepEqual(got.toString("hex"), want.message.toString("hex"), `${q.name} ${q.type} round ${round}`);
          // Every answer decodes with an independent codec and echoes ID and question.
          const d = dnsPacket.decode(got);
          assert.equal(d.id, q.id);
          assert.equal(d.questions?.[0]?.name.toLowerCase(), q.name.replace(/\.$/, "").toLowerCase());
          if (!q.tcp) assert.ok(got.length <= (q.edns === undefined ? 512 : Math.min(Math.max(q.edns.size, 512), 1232)));
        }
      }
    }),
    { numRuns: 300 },
  );
  assert.ok(fastServed > total / 3, `the fast path served ${fastServed} of ${total}`);
  assert.ok(zones >= 100, `only ${zones} of the drawn zones were valid`);
});

test("a zone change replaces precomputed answers (and those of the parent zone for a new child zone)", () => {
  const store = new ZoneStore();
  store.put(exampleZone(1));
  const meter = new Meter();
  const cache = new WireCache(store, meter);
  cache.rebuildAll(store.all());
  const q = (name: string): Buffer => dnsPacket.encode({ type: "query", id: 1, questions: [{ name, type: "A" }] });
  const before = cache.answer(q("www.example.test"), false);
  assert.ok(before !== undefined);
  const z = exampleZone(2);
  store.put({ ...z, records: z.records.map((r) => (r.name === "www" && r.data.type === "A" ? { ...r, data: { type: "A", address: "192.0.2.81" } } : r)) });
  cache.zoneChanged(toName("example.test."));
  const after = cache.answer(q("www.example.test"), false);
  assert.ok(after !== undefined);
  assert.equal(firstData(after), "192.0.2.81");
  // A child zone carved out of the parent: the parent's precomputed answers below it go.
  store.put({
    origin: "www.example.test.",
    soa: { mname: "ns.www.example.test.", rname: "h", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 },
    records: [
      { name: "@", data: { type: "NS", host: "ns" } },
      { name: "ns", data: { type: "A", address: "192.0.2.9" } },
      { name: "@", data: { type: "A", address: "192.0.2.200" } },
    ],
  });
  cache.zoneChanged(toName("www.example.test."));
  const child = cache.answer(q("www.example.test"), false);
  assert.ok(child !== undefined);
  assert.equal(firstData(child), "192.0.2.200");
  cache.flush();
  assert.ok((meter.snapshot().zones["example.test."]?.queries ?? 0) >= 2);
  assert.equal(meter.snapshot().zones["www.example.test."]?.queries, 1);
});

test("after zone changes the fast path serves the new answers only, whatever the table grew through (no ghost entry)", () => {
  // The table rehashes while a zone is warmed or answers are remembered; an entry indexed twice then
  // would survive its removal and keep serving the old answer.
  const soa = { mname: "ns.g.test.", rname: "h", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60 };
  const zone = (names: number, octet: number, serial: number): ZoneInput => ({
    origin: "g.test.",
    soa: { ...soa, serial },
    records: [
      { name: "@", data: { type: "NS", host: "ns" } },
      { name: "ns", data: { type: "A", address: "192.0.2.53" } },
      ...Array.from({ length: names }, (_, i) => ({ name: `h${i}`, data: { type: "A" as const, address: `192.0.2.${octet}` } })),
    ],
  });
  const q = (name: string): Buffer => dnsPacket.encode({ type: "query", id: 7, questions: [{ name, type: "A" }] });
  fc.assert(
    fc.property(fc.integer({ min: 200, max: 1_200 }), fc.array(fc.integer({ min: 0, max: 2_000 }), { maxLength: 600 }), (names, missing) => {
      const store = new ZoneStore();
      store.put(zone(names, 1, 1));
      const meter = new Meter();
      const cache = new WireCache(store, meter);
      const responder = new Responder({ zones: store, keys: new Map(), meter, now: () => 1 });
      cache.rebuildAll(store.all());
      // On-demand answers (NXDOMAIN for names past the zone's) grow the table further.
      for (const i of missing) {
        const h = responder.handle(q(`h${i + names}.g.test`), "udp");
        if (h.kind === "reply" && h.lookup !== undefined) cache.remember(h.lookup.question, h.lookup.result);
      }
      for (const [octet, serial] of [[2, 2], [3, 3]] as const) {
        store.put(zone(names, octet, serial));
        cache.zoneChanged(toName("g.test."));
        assert.equal(cache.size, names + 3, "one entry per RRset: the NS, the SOA, ns A and each name's A");
        for (let i = 0; i < names; i++) {
          const got = cache.answer(q(`h${i}.g.test`), false);
          assert.ok(got !== undefined, `h${i} precomputed`);
          assert.equal(firstData(got), `192.0.2.${octet}`, `h${i} after change ${serial}`);
        }
      }
    }),
    { numRuns: 10 },
  );
});
