/** The wire codec: bounded decoding of hostile octets, compression, RDATA round trips against dns-packet. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import dnsPacket from "dns-packet";
import { isNexusError } from "../../src/core/errors.ts";
import { encodeAnswer } from "../../src/services/dns/message.ts";
import { lookup } from "../../src/services/dns/lookup.ts";
import { labelsToName, toName } from "../../src/services/dns/name.ts";
import { readRData, rdataWire, TYPE, typeCode } from "../../src/services/dns/rdata.ts";
import { decodeMessage, readName, POINTER_JUMPS_MAX } from "../../src/services/dns/reader.ts";
import { WireWriter } from "../../src/services/dns/writer.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { recordArb, zoneOf } from "./arbitraries.ts";

function malformed(f: () => unknown): boolean {
  try {
    f();
    return false;
  } catch (e) {
    if (isNexusError(e, "DNS_WIRE_MALFORMED")) return true;
    throw e;
  }
}

test("names: pointer loops, forward pointers, jump and length bounds, reserved label types, truncation", () => {
  const header = Buffer.alloc(12);
  const self = Buffer.concat([header, Buffer.from([0xc0, 12])]);
  assert.ok(malformed(() => readName(self, 12)), "pointer to itself");
  const forward = Buffer.concat([header, Buffer.from([0xc0, 14, 1, 0x61, 0])]);
  assert.ok(malformed(() => readName(forward, 12)), "pointer forwards");
  const loop = Buffer.concat([header, Buffer.from([1, 0x61, 0xc0, 14, 0xc0, 12])]);
  assert.ok(malformed(() => readName(loop, 16)), "two pointers in a cycle");
  assert.ok(malformed(() => readName(Buffer.concat([header, Buffer.from([0x40, 0])]), 12)), "extended label type");
  assert.ok(malformed(() => readName(Buffer.concat([header, Buffer.from([5, 0x61])]), 12)), "label past the end");
  assert.ok(malformed(() => readName(Buffer.concat([header, Buffer.from([0xc0])]), 12)), "half a pointer");
  const long = Buffer.concat([header, ...Array.from({ length: 5 }, () => Buffer.from([63, ...Buffer.alloc(63, 0x61)])), Buffer.from([0])]);
  assert.ok(malformed(() => readName(long, 12)), "over 255 octets");
  // A chain of backward pointers, each to a one-label name: bounded by POINTER_JUMPS_MAX and by 255 octets.
  const parts: number[] = [0];
  for (let i = 0; i < POINTER_JUMPS_MAX + 5; i++) {
    const prev = 12 + parts.length - (i === 0 ? 1 : 4);
    parts.push(1, 0x62, 0xc0 | (prev >> 8), prev & 0xff);
  }
  const chain = Buffer.concat([header, Buffer.from(parts)]);
  assert.ok(malformed(() => readName(chain, chain.length - 4)));
  const ok = readName(Buffer.concat([header, Buffer.from([1, 0x41, 0]), Buffer.from([1, 0x62, 0xc0, 12])]), 15);
  assert.equal(labelsToName(ok.labels), "b.a.");
  assert.equal(ok.end, 19);
});

test("messages: huge counts, trailing octets and short headers are malformed, never a stray RangeError", () => {
  const q = dnsPacket.encode({ type: "query", id: 1, questions: [{ name: "a.example", type: "A" }] });
  const huge = Buffer.from(q);
  huge.writeUInt16BE(65535, 6);
  assert.ok(malformed(() => decodeMessage(huge)));
  assert.ok(malformed(() => decodeMessage(Buffer.concat([q, Buffer.from([0])]))));
  assert.ok(malformed(() => decodeMessage(q.subarray(0, 11))));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      try {
        decodeMessage(bytes);
      } catch (e) {
        assert.ok(isNexusError(e, "DNS_WIRE_MALFORMED"), String(e));
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 0, max: q.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, v) => {
      const m = Buffer.from(q);
      m[at] = v;
      try {
        decodeMessage(m);
      } catch (e) {
        assert.ok(isNexusError(e, "DNS_WIRE_MALFORMED"), String(e));
      }
    }),
  );
});

test("compression: written names decode (with dns-packet) to the names written, and pointers save space", () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.constantFrom("a", "b", "example", "www", "co"), { minLength: 0, maxLength: 4 }), { minLength: 1, maxLength: 12 }), (names) => {
      const w = new WireWriter();
      w.bytes(Buffer.alloc(12));
      const canon = names.map((ls) => toName(ls.length === 0 ? "." : `${ls.join(".")}.`));
      const at: number[] = [];
      for (const n of canon) {
        at.push(w.pos);
        w.name(n, true);
      }
      const buf = w.finish();
      canon.forEach((n, i) => assert.equal(labelsToName(readName(buf, at[i] ?? 0).labels), n));
      const plain = canon.reduce((s, n) => s + (n === "." ? 1 : n.length + 1), 12);
      assert.ok(buf.length <= plain);
    }),
  );
});

test("answers of random zones decode with dns-packet to the records lookup returned", () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 15 }), fc.integer({ min: 0, max: 16 }), (records, pick) => {
      const z = zoneOf(records);
      if (z === undefined) return;
      const store = new ZoneStore();
      store.put(z);
      const names = [...z.nodes.keys()];
      const name = names[pick % names.length] ?? z.origin;
      for (const t of ["A", "AAAA", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "CNAME", "SOA"] as const) {
        const res = lookup(store, name, TYPE[t]);
        const out = encodeAnswer({ name, type: TYPE[t], klass: 1 }, res, { id: 3, opcode: 0, rd: false, cd: false, limit: 65535, opt: undefined });
        const d = dnsPacket.decode(out);
        assert.equal(d.answers?.length, res.answer.length);
        assert.equal(d.authorities?.length, res.authority.length);
        // Re-encoding dns-packet's view uncompressed and re-reading each RDATA gives the same data.
        const m = decodeMessage(out);
        m.answers.forEach((r, i) => {
          const want = res.answer[i];
          assert.ok(want !== undefined);
          assert.equal(r.type, typeCode(want.data.type));
          assert.equal(r.ttl, want.ttl);
          assert.deepEqual(readRData(r.type, out, r.rdataStart, r.rdataEnd), want.data);
        });
      }
    }),
    { numRuns: 150 },
  );
});

test("RDATA: canonical wire form round-trips for every type", () => {
  fc.assert(
    fc.property(recordArb, (rec) => {
      const z = zoneOf([rec]);
      if (z === undefined) return;
      for (const r of z.records) {
        const w = rdataWire(r.data);
        assert.deepEqual(readRData(typeCode(r.data.type), w, 0, w.length), r.data);
      }
    }),
  );
});
