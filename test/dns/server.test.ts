/** The authoritative server against dig: every record type and every protocol edge case of the issue. */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import dnsPacket from "dns-packet";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { startDnsServer, type DnsServer } from "../../src/services/dns/server.ts";
import { meterDelta } from "../../src/services/dns/meter.ts";
import { dig, exampleZone, waitFor } from "./support.ts";

function udpAsk(port: number, msg: Buffer, timeoutMs = 2_000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on("message", (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(msg, port, "127.0.0.1");
  });
}

function tcpAsk(port: number, msg: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    s.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      s.write(Buffer.concat([len, msg]));
    });
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        s.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    s.on("error", reject);
  });
}

// Every case runs on both UDP transports: the batched addon (recvmmsg/sendmmsg) and node:dgram.
for (const udp of ["batch", "dgram"] as const) describe(`authoritative server answered by dig (UDP: ${udp})`, () => {
  const store = new ZoneStore();
  let server: DnsServer;
  let port = 0;
  before(async () => {
    store.put(exampleZone());
    server = await startDnsServer({ port: 0, zones: store, udp });
    port = server.port;
    assert.equal(server.udpTransport, udp);
  });
  after(async () => {
    await server.close();
  });

  it("answers each record type authoritatively (AA)", async () => {
    const cases: [string, string, string][] = [
      ["example.test.", "A", "example.test. 3600 IN A 192.0.2.10"],
      ["www.example.test.", "AAAA", "www.example.test. 300 IN AAAA 2001:db8::80"],
      ["example.test.", "MX", "example.test. 3600 IN MX 10 mail.example.test."],
      ["example.test.", "TXT", 'example.test. 3600 IN TXT "v=spf1 mx -all"'],
      ["example.test.", "CAA", 'example.test. 3600 IN CAA 0 issue "letsencrypt.org"'],
      ["_sip._tcp.example.test.", "SRV", "_sip._tcp.example.test. 3600 IN SRV 10 5 5060 sip.example.test."],
      ["10.2.0.192.in-addr.example.test.", "PTR", "10.2.0.192.in-addr.example.test. 3600 IN PTR www.example.test."],
      ["alias.example.test.", "CNAME", "alias.example.test. 3600 IN CNAME www.example.test."],
      ["example.test.", "SOA", "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300"],
    ];
    for (const [name, type, want] of cases) {
      const r = await dig(port, name, type);
      assert.equal(r.status, "NOERROR", `${name} ${type}`);
      assert.ok(r.flags.includes("aa"), `${name} ${type} has AA`);
      assert.ok(!r.flags.includes("ra"), "no recursion available");
      assert.deepEqual(r.answer, [want], `${name} ${type}`);
    }
    const ns = await dig(port, "example.test.", "NS");
    assert.deepEqual([...ns.answer].sort(), ["example.test. 3600 IN NS ns1.example.test.", "example.test. 3600 IN NS ns2.example.test."]);
    // Additional-section addresses for NS and MX targets (RFC 1035 §3.3.9, §3.3.11).
    assert.ok(ns.additional.includes("ns1.example.test. 3600 IN A 192.0.2.1"));
    assert.ok(ns.additional.includes("ns2.example.test. 3600 IN AAAA 2001:db8::2"));
    const mx = await dig(port, "example.test.", "MX");
    assert.ok(mx.additional.includes("mail.example.test. 3600 IN A 192.0.2.25"));
  });

  it("tells NXDOMAIN from NODATA, both with the SOA (negative TTL) in authority", async () => {
    const nx = await dig(port, "nope.example.test.", "A");
    assert.equal(nx.status, "NXDOMAIN");
    assert.ok(nx.flags.includes("aa"));
    assert.deepEqual(nx.answer, []);
    assert.deepEqual(nx.authority, ["example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300"]);
    const nodata = await dig(port, "www.example.test.", "MX");
    assert.equal(nodata.status, "NOERROR");
    assert.deepEqual(nodata.answer, []);
    assert.equal(nodata.authority.length, 1);
    assert.match(nodata.authority[0] ?? "", / SOA /);
    // An empty non-terminal exists: NODATA, not NXDOMAIN (RFC 4592 §2.2.2).
    const ent = await dig(port, "empty.example.test.", "A");
    assert.equal(ent.status, "NOERROR");
    assert.deepEqual(ent.answer, []);
  });

  it("follows CNAME chains inside the zone and reports the end of the chain", async () => {
    const r = await dig(port, "alias2.example.test.", "A");
    assert.deepEqual(r.answer, [
      "alias2.example.test. 3600 IN CNAME alias.example.test.",
      "alias.example.test. 3600 IN CNAME www.example.test.",
      "www.example.test. 300 IN A 192.0.2.80",
    ]);
    const dangling = await dig(port, "dangling.example.test.", "A");
    assert.equal(dangling.status, "NXDOMAIN", "RFC 6604: the RCODE is the chain's last name");
    assert.deepEqual(dangling.answer, ["dangling.example.test. 3600 IN CNAME nowhere.example.test."]);
    const outside = await dig(port, "outside.example.test.", "A");
    assert.equal(outside.status, "NOERROR");
    assert.deepEqual(outside.answer, ["outside.example.test. 3600 IN CNAME www.example.org."]);
  });

  it("synthesises wildcards (RFC 4592) with the query name as owner, NODATA for missing types", async () => {
    const r = await dig(port, "anything.wild.example.test.", "A");
    assert.deepEqual(r.answer, ["anything.wild.example.test. 3600 IN A 192.0.2.99"]);
    const deeper = await dig(port, "a.b.wild.example.test.", "TXT");
    assert.deepEqual(deeper.answer, ['a.b.wild.example.test. 3600 IN TXT "wildcard"']);
    const nodata = await dig(port, "x.wild.example.test.", "MX");
    assert.equal(nodata.status, "NOERROR");
    assert.deepEqual(nodata.answer, []);
    // The wildcard does not cover its own parent, nor names beside existing ones.
    assert.equal((await dig(port, "wild.example.test.", "A")).status, "NOERROR");
    assert.equal((await dig(port, "x.deep.empty.example.test.", "A")).status, "NXDOMAIN");
  });

  it("refers delegated names with glue and without AA", async () => {
    const r = await dig(port, "host.sub.example.test.", "A", "+norecurse");
    assert.equal(r.status, "NOERROR");
    assert.ok(!r.flags.includes("aa"));
    assert.deepEqual(r.answer, []);
    assert.deepEqual(r.authority, ["sub.example.test. 3600 IN NS ns.sub.example.test."]);
    assert.deepEqual(r.additional, ["ns.sub.example.test. 3600 IN A 192.0.2.53"]);
  });

  it("refuses names outside its zones, and non-IN classes", async () => {
    const r = await dig(port, "www.example.org.", "A");
    assert.equal(r.status, "REFUSED");
    assert.ok(!r.flags.includes("aa"));
    assert.equal((await dig(port, "version.bind.", "TXT", "-c", "CH")).status, "REFUSED");
  });

  it("echoes the query's case and matches without case", async () => {
    const r = await dig(port, "WwW.ExAmPlE.TeSt.", "A");
    assert.deepEqual(r.answer, ["WwW.ExAmPlE.TeSt. 300 IN A 192.0.2.80"]);
    assert.match(r.raw, /;WwW\.ExAmPlE\.TeSt\.\s+IN\s+A/);
  });

  it("answers ANY minimally (RFC 8482): one RRset", async () => {
    const r = await dig(port, "www.example.test.", "ANY");
    assert.equal(r.status, "NOERROR");
    assert.equal(r.answer.length, 1);
  });

  it("honours EDNS0 payload sizes, sets TC when an answer does not fit, and answers in full over TCP", async () => {
    const plain = await dig(port, "big.example.test.", "TXT", "+noedns", "+ignore");
    assert.ok(plain.flags.includes("tc"), "over 512 octets without EDNS: TC");
    assert.deepEqual(plain.answer, []);
    const edns = await dig(port, "big.example.test.", "TXT", "+bufsize=4096", "+ignore");
    assert.ok(!edns.flags.includes("tc"), "fits the 1232 we serve");
    assert.equal(edns.answer.length, 1);
    assert.match(edns.raw, /udp: 1232/);
    const small = await dig(port, "big.example.test.", "TXT", "+bufsize=1000", "+ignore");
    assert.ok(small.flags.includes("tc"));
    const retried = await dig(port, "big.example.test.", "TXT", "+noedns");
    assert.ok(!retried.flags.includes("tc"), "dig retries over TCP after TC");
    assert.equal(retried.answer.length, 1);
    const tcp = await dig(port, "www.example.test.", "A", "+tcp");
    assert.deepEqual(tcp.answer, ["www.example.test. 300 IN A 192.0.2.80"]);
    // BADVERS for an unknown EDNS version (RFC 6891 §6.1.3).
    assert.equal((await dig(port, "www.example.test.", "A", "+edns=1", "+noednsneg")).status, "BADVERS");
  });

  it("compresses names (RFC 1035 §4.1.4)", async () => {
    const q = dnsPacket.encode({ type: "query", id: 7, questions: [{ name: "example.test", type: "NS" }] });
    const r = await udpAsk(port, q);
    assert.ok(r !== undefined);
    // Uncompressed, each NS and glue owner would repeat "example.test." in full.
    const uncompressed = dnsPacket.encode(dnsPacket.decode(r)).length;
    assert.ok(r.length < uncompressed - 40, `${r.length} < ${uncompressed}`);
    assert.ok(r.includes(Buffer.from([0xc0, 0x0c])), "pointers to the question name");
  });

  it("answers FORMERR to malformed queries and NOTIMP to unsupported opcodes", async () => {
    const twoQuestions = dnsPacket.encode({ type: "query", id: 9, questions: [{ name: "a.example.test", type: "A" }, { name: "b.example.test", type: "A" }] });
    const f = await udpAsk(port, twoQuestions);
    assert.equal(f === undefined ? -1 : f.readUInt16BE(2) & 0xf, 1);
    const update = Buffer.from(dnsPacket.encode({ type: "query", id: 10, questions: [{ name: "example.test", type: "SOA" }] }));
    update[2] = (5 << 3) | ((update[2] ?? 0) & 0x87);
    const u = await udpAsk(port, update);
    assert.equal(u === undefined ? -1 : u.readUInt16BE(2) & 0xf, 4);
    const notify = await dig(port, "example.test.", "SOA", "+opcode=notify");
    assert.equal(notify.status, "NOTIMP");
    const garbage = Buffer.from("0001000000010000000000000377777700", "hex"); // truncated question
    const g = await udpAsk(port, garbage);
    assert.equal(g === undefined ? -1 : g.readUInt16BE(2) & 0xf, 1);
    // A response (QR=1) is never answered.
    const resp = Buffer.from(q0());
    resp[2] = (resp[2] ?? 0) | 0x80;
    assert.equal(await udpAsk(port, resp, 300), undefined);
  });

  it("refuses AXFR without TSIG, and over UDP", async () => {
    const r = await dig(port, "example.test.", "AXFR");
    assert.match(r.raw, /Transfer failed|REFUSED/);
    const q = dnsPacket.encode({ type: "query", id: 11, questions: [{ name: "example.test", type: "AXFR" }] });
    const a = await udpAsk(port, q);
    assert.equal(a === undefined ? -1 : a.readUInt16BE(2) & 0xf, 1);
    const t = await tcpAsk(port, q);
    assert.equal(t.readUInt16BE(2) & 0xf, 5);
  });

  it("answers a change within one second and counts queries per zone", async () => {
    const before = await server.meter();
    const z = exampleZone(2);
    store.put({ ...z, records: [...z.records, { name: "new", data: { type: "A", address: "192.0.2.123" } }] });
    // The change is applied before put() returns, so the very next query sees it (well within one second).
    assert.deepEqual((await dig(port, "new.example.test.", "A")).answer, ["new.example.test. 3600 IN A 192.0.2.123"]);
    assert.match((await dig(port, "example.test.", "SOA")).answer[0] ?? "", / 2 3600 600 /);
    const after = await server.meter();
    assert.ok((after.zones["example.test."]?.queries ?? 0) > (before.zones["example.test."]?.queries ?? 0));
    const delta = meterDelta(before, after);
    assert.ok((delta["example.test."]?.queries ?? 0) >= 2, "the usage-report body");
    assert.ok((after.server.refused ?? 0) >= 1);
  });
});

function q0(): Buffer {
  return dnsPacket.encode({ type: "query", id: 12, questions: [{ name: "www.example.test", type: "A" }] });
}

describe("worker threads share the UDP port", () => {
  for (const udp of ["batch", "dgram"] as const) it(`answers from every thread and sums their counters (UDP: ${udp})`, async () => {
    const store = new ZoneStore();
    store.put(exampleZone());
    const server = await startDnsServer({ port: 0, zones: store, workers: 2, udp });
    try {
      // Distinct source ports spread over the SO_REUSEPORT sockets.
      for (let i = 0; i < 20; i++) {
        const r = await dig(server.port, "www.example.test.", "A");
        assert.deepEqual(r.answer, ["www.example.test. 300 IN A 192.0.2.80"]);
      }
      const z = exampleZone(5);
      store.put({ ...z, records: [...z.records, { name: "late", data: { type: "A", address: "192.0.2.124" } }] });
      // Worker threads get the zone by message: every thread (fresh source ports spread over them) answers within 1 s.
      const late = dnsPacket.encode({ type: "query", id: 5, questions: [{ name: "late.example.test", type: "A" }] });
      await waitFor(async () => {
        const answers = await Promise.all(Array.from({ length: 16 }, () => udpAsk(server.port, late)));
        return answers.every((a) => a !== undefined && a.readUInt16BE(6) === 1);
      }, 1_000, "the change on every thread");
      const m = await server.meter();
      assert.ok((m.zones["example.test."]?.queries ?? 0) >= 26);
    } finally {
      await server.close();
    }
  });
});
