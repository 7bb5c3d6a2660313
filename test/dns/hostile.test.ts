/**
 * Hostile packets against a live server: random octets, mutated and truncated queries, compression
 * loops, huge counts over UDP and TCP, oversized TCP lengths, idle and flooding TCP clients. The
 * server never crashes, answers only with well-formed messages, and still answers a normal query.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import dnsPacket from "dns-packet";
import { decodeMessage } from "../../src/services/dns/reader.ts";
import { startDnsServer, type DnsServer } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { dig, exampleZone, waitFor } from "./support.ts";

const CONNECTIONS_MAX = 20;
const IDLE_MS = 400;

function query(): Buffer {
  return dnsPacket.encode({ type: "query", id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: "www.example.test", type: "A" }] });
}

/** Sends datagrams and collects whatever comes back within a short window. */
async function blast(port: number, packets: readonly Uint8Array[]): Promise<Buffer[]> {
  const s: UdpSocket = createSocket("udp4");
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  for (const p of packets) s.send(p, port, "127.0.0.1");
  await new Promise((r) => setTimeout(r, 150));
  s.close();
  return got;
}

function tcpOpen(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
}

function closed(s: Socket, withinMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const t = setTimeout(() => resolve(false), withinMs);
    s.once("close", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe("hostile input", () => {
  const store = new ZoneStore();
  let server: DnsServer;
  before(async () => {
    store.put(exampleZone());
    server = await startDnsServer({ port: 0, zones: store, tcpConnectionsMax: CONNECTIONS_MAX, tcpIdleMs: IDLE_MS });
  });
  after(async () => {
    await server.close();
  });

  const stillAnswers = async (): Promise<void> => {
    const r = await dig(server.port, "www.example.test.", "A");
    assert.deepEqual(r.answer, ["www.example.test. 300 IN A 192.0.2.80"]);
    const t = await dig(server.port, "www.example.test.", "A", "+tcp");
    assert.deepEqual(t.answer, ["www.example.test. 300 IN A 192.0.2.80"]);
  };

  it("random octets, mutations and truncations over UDP get well-formed answers or none", async () => {
    const base = query();
    const packets: Uint8Array[] = [];
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 700 }),
          fc.tuple(fc.nat(base.length - 1), fc.nat(255)).map(([at, v]) => {
            const m = Buffer.from(base);
            m[at] = v;
            return m;
          }),
          fc.nat(base.length).map((n) => base.subarray(0, n)),
          fc.uint8Array({ minLength: 1, maxLength: 64 }).map((tail) => Buffer.concat([base.subarray(0, 12), tail])),
        ),
        (p) => {
          packets.push(p);
        },
      ),
      { numRuns: 3000 },
    );
    for (let i = 0; i < packets.length; i += 500) {
      const answers = await blast(server.port, packets.slice(i, i + 500));
      for (const a of answers) {
        const m = decodeMessage(a); // throws (fails the test) when an answer is malformed
        assert.ok(m.qr);
      }
    }
    await stillAnswers();
  });

  it("compression loops, forward pointers and huge counts are FORMERR, not a hang", async () => {
    const h = (qd: number, an: number, ns: number, ar: number): Buffer => {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(99, 0);
      b.writeUInt16BE(qd, 4);
      b.writeUInt16BE(an, 6);
      b.writeUInt16BE(ns, 8);
      b.writeUInt16BE(ar, 10);
      return b;
    };
    const cases = [
      Buffer.concat([h(1, 0, 0, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]), // the question points at itself
      Buffer.concat([h(1, 0, 0, 0), Buffer.from([1, 0x61, 0xc0, 12, 0, 1, 0, 1])]), // a label, then a pointer back to it
      Buffer.concat([h(1, 0, 0, 0), Buffer.from([0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 0x61, 0])]), // forward pointer
      Buffer.concat([h(65535, 65535, 65535, 65535), Buffer.from([0, 0, 1, 0, 1])]),
      Buffer.concat([h(1, 0, 0, 0), Buffer.alloc(300, 63)]),
    ];
    const answers = await blast(server.port, cases);
    assert.equal(answers.length, cases.length);
    for (const a of answers) assert.equal(a.readUInt16BE(2) & 0xf, 1, "FORMERR");
    await stillAnswers();
  });

  it("TCP: a length shorter than a header or above the bound closes the connection; random frames are survived", async () => {
    for (const len of [0, 5, 0xffff]) {
      const s = await tcpOpen(server.port);
      const b = Buffer.alloc(2);
      b.writeUInt16BE(len);
      s.write(b);
      assert.ok(await closed(s, 2_000), `length ${len}`);
    }
    const s = await tcpOpen(server.port);
    let got = Buffer.alloc(0);
    s.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
    s.on("error", () => {});
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 300 }), (p) => {
        const b = Buffer.alloc(2);
        b.writeUInt16BE(p.length);
        s.write(Buffer.concat([b, p]));
      }),
      { numRuns: 30 },
    );
    await new Promise((r) => setTimeout(r, 200));
    for (let p = 0; p + 2 <= got.length; ) {
      const n = got.readUInt16BE(p);
      decodeMessage(got.subarray(p + 2, p + 2 + n));
      p += 2 + n;
    }
    s.destroy();
    await stillAnswers();
  });

  it("TCP: idle and half-sent clients are closed; a flood of connections is bounded and the server still answers", async () => {
    const idle = await tcpOpen(server.port);
    const partial = await tcpOpen(server.port);
    partial.write(Buffer.from([0, 40, 1, 2, 3]));
    assert.ok(await closed(idle, IDLE_MS * 5));
    assert.ok(await closed(partial, IDLE_MS * 5));
    const flood: Socket[] = [];
    const errors: unknown[] = [];
    for (let i = 0; i < CONNECTIONS_MAX * 3; i++) {
      const c = connect(server.port, "127.0.0.1");
      c.on("error", (e) => errors.push(e));
      flood.push(c);
    }
    await waitFor(() => flood.filter((c) => c.destroyed || c.closed).length >= CONNECTIONS_MAX * 2 - 5, 5_000, "connections over the bound to be closed");
    const open = flood.filter((c) => !c.destroyed && !c.closed).length;
    assert.ok(open <= CONNECTIONS_MAX, `${open} connections left open`);
    for (const c of flood) c.destroy();
    await waitFor(async () => (await dig(server.port, "www.example.test.", "A", "+tcp")).answer.length === 1, 3_000, "TCP to answer again");
    await stillAnswers();
    const m = await server.meter();
    assert.ok(m.server.dropped > 0 && m.server.formerr > 0);
  });

  it("pipelined queries are answered in order, and too many queued queries close the connection", async () => {
    const s = await tcpOpen(server.port);
    let got = Buffer.alloc(0);
    s.on("data", (d: Buffer) => (got = Buffer.concat([got, d])));
    const frames = Array.from({ length: 5 }, (_, i) => {
      const q = dnsPacket.encode({ type: "query", id: i, questions: [{ name: "www.example.test", type: "A" }] });
      const b = Buffer.alloc(2);
      b.writeUInt16BE(q.length);
      return Buffer.concat([b, q]);
    });
    s.write(Buffer.concat(frames));
    await waitFor(() => {
      let n = 0;
      for (let p = 0; p + 2 <= got.length; p += 2 + got.readUInt16BE(p)) n++;
      return n === 5;
    }, 2_000, "five answers");
    const ids: number[] = [];
    for (let p = 0; p + 2 <= got.length; p += 2 + got.readUInt16BE(p)) ids.push(got.readUInt16BE(p + 2));
    assert.deepEqual(ids, [0, 1, 2, 3, 4]);
    s.destroy();
    const t = await tcpOpen(server.port);
    t.on("error", () => {});
    const big = frames[0] ?? Buffer.alloc(0);
    t.write(Buffer.concat(Array.from({ length: 200 }, () => big)));
    assert.ok(await closed(t, 2_000), "over TCP_PIPELINE_MAX queued queries");
    t.destroy();
    await stillAnswers();
  });
});
