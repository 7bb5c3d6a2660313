/**
 * The batched UDP transport (native/udp_batch.c: recvmmsg/sendmmsg, one JavaScript call per batch)
 * against node:dgram as the oracle: the same datagrams get byte-identical answers from both, bursts
 * larger than a batch are answered in full, hostile datagrams in a burst lose no good query, and a
 * closed socket frees its port at once. `./nexus test` installs gcc, so the addon must build here.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import fc from "fast-check";
import { udpBatch, udpBatchStatus } from "../../src/services/dns/native/udp-batch.ts";
import { startDnsServer, type DnsServer } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { dig, exampleZone } from "./support.ts";

/**
 * Run in a child (the test runner fails any test an uncaught exception reaches): a batch callback
 * that answers, then throws, itself (THROW=sync) or from a microtask it queued (THROW=microtask).
 * Prints what the client got and what reached process "uncaughtException".
 */
const THROW_AFTER_BATCH = `
import { createSocket } from "node:dgram";
import { udpBatch } from ${JSON.stringify(new URL("../../src/services/dns/native/udp-batch.ts", import.meta.url).href)};
const addon = udpBatch();
const inb = new Uint8Array(addon.SLOTS * addon.IN_SLOT), out = new Uint8Array(addon.SLOTS * addon.OUT_SLOT), meta = new Int32Array(addon.SLOTS * 2);
const uncaught = [];
process.on("uncaughtException", (e) => uncaught.push(e.message));
const [h, port] = addon.open("127.0.0.1", 0, false, inb, out, meta, (n) => {
  for (let i = 0; i < n; i++) { out.set(inb.subarray(i * addon.IN_SLOT, i * addon.IN_SLOT + meta[2 * i]), i * addon.OUT_SLOT); meta[2 * i + 1] = meta[2 * i]; }
  if (process.env.THROW === "sync") throw new Error("thrown after the batch");
  queueMicrotask(() => { throw new Error("thrown after the batch"); });
});
const c = createSocket("udp4");
const replies = [];
c.on("message", (m) => replies.push(m.toString()));
for (const text of ["one", "two"]) {
  c.send(text, port, "127.0.0.1");
  for (let t = 0; t < 100 && !replies.includes(text); t++) await new Promise((r) => setTimeout(r, 20));
}
addon.close(h);
c.close();
console.log(JSON.stringify({ replies, uncaught }));
`;

/** Queries in flight at most: a window fits the sockets' buffers (net.core.rmem_default) however slow the machine. */
const WINDOW = 100;

/**
 * Sends every datagram from one socket, WINDOW at a time (the next window once the answers to the
 * last have come), and collects the answers by ID: IDs 1..want are the ones counted.
 */
async function burst(port: number, packets: readonly Uint8Array[], want: number, host = "127.0.0.1"): Promise<Map<number, Buffer>> {
  const s = createSocket(host.includes(":") ? "udp6" : "udp4");
  const got = new Map<number, Buffer>();
  let dupes = 0;
  let wake = (): void => {};
  s.on("message", (m) => {
    if (m.length < 2) return;
    const id = m.readUInt16BE(0);
    if (id < 1 || id > want) return;
    if (got.has(id)) dupes++;
    got.set(id, m);
    wake();
  });
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  const counted = (p: Uint8Array): boolean => p.length >= 2 && ((p[0] ?? 0) << 8 | (p[1] ?? 0)) >= 1 && ((p[0] ?? 0) << 8 | (p[1] ?? 0)) <= want;
  let expected = 0;
  for (let i = 0; i < packets.length; i += WINDOW) {
    const wave = packets.slice(i, i + WINDOW);
    expected += wave.filter(counted).length;
    for (const p of wave) s.send(p, port, host);
    const deadline = Date.now() + 5_000;
    while (got.size < expected && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }
  s.close();
  assert.equal(dupes, 0, "no datagram answered twice");
  return got;
}

const NAMES = ["www.example.test", "WWW.Example.TEST", "mail.example.test", "nothing.example.test", "example.test", "x.y.example.test", "other.invalid"];
const TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CAA", "SRV"] as const;

function query(id: number, name: string, type: string, edns: boolean): Buffer {
  return dnsPacket.encode({
    type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: type as "A" }],
    ...(edns ? { additionals: [{ type: "OPT" as const, name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] } : {}),
  });
}

async function withServers<T>(f: (batch: DnsServer, dgram: DnsServer) => Promise<T>): Promise<T> {
  const store = new ZoneStore();
  store.put(exampleZone());
  const batch = await startDnsServer({ port: 0, zones: store, udp: "batch" });
  const dgram = await startDnsServer({ port: 0, zones: store, udp: "dgram" });
  try {
    return await f(batch, dgram);
  } finally {
    await batch.close();
    await dgram.close();
  }
}

describe("batched UDP transport", () => {
  it("builds here and is what the server serves with by default", async () => {
    const st = udpBatchStatus();
    assert.ok(st.available, `the addon must build where ./nexus test installed gcc: ${st.detail}`);
    const store = new ZoneStore();
    store.put(exampleZone());
    const server = await startDnsServer({ port: 0, zones: store });
    try {
      assert.equal(server.udpTransport, "batch");
      assert.deepEqual((await dig(server.port, "www.example.test.", "A")).answer, ["www.example.test. 300 IN A 192.0.2.80"]);
    } finally {
      await server.close();
    }
    // A service stopped twice (its own stop, then the stack's) closes once.
    await new Promise((r) => setImmediate(r));
    await assert.doesNotReject(server.close());
  });

  it("answers byte for byte as node:dgram does (fast path, slow path, case, EDNS, refusals)", async () => {
    await withServers(async (batch, dgram) => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.record({ name: fc.constantFrom(...NAMES), type: fc.constantFrom(...TYPES), edns: fc.boolean() }), { minLength: 1, maxLength: 40 }), async (qs) => {
          const packets = qs.map((q, i) => query(i + 1, q.name, q.type, q.edns));
          const a = await burst(batch.port, packets, packets.length);
          const b = await burst(dgram.port, packets, packets.length);
          assert.equal(a.size, packets.length);
          for (const [id, m] of b) assert.deepEqual(a.get(id), m, `answer ${id}`);
        }),
        { numRuns: 25 },
      );
    });
  });

  it("answers a burst of 2,000 queries, many batches, each once and in full", async () => {
    await withServers(async (batch) => {
      const packets = Array.from({ length: 2_000 }, (_, i) => query(i + 1, NAMES[i % NAMES.length] ?? "", TYPES[i % TYPES.length] ?? "A", i % 3 === 0));
      const got = await burst(batch.port, packets, packets.length);
      assert.equal(got.size, packets.length, "every query answered");
      const m = dnsPacket.decode(got.get(1) ?? Buffer.alloc(0));
      assert.equal(m.id, 1);
      assert.ok(m.flag_aa);
    });
  });

  it("loses no good query to hostile datagrams in the same batches, and keeps serving", async () => {
    await withServers(async (batch) => {
      const good = Array.from({ length: 300 }, (_, i) => query(i + 1, "www.example.test", "A", false));
      const hostile = [
        Buffer.alloc(0), Buffer.from([0]), randomBytes(11), randomBytes(12), randomBytes(512), randomBytes(4096), randomBytes(65_000),
        // a compression loop in the question, huge counts, a response bit set
        Buffer.from("ffff00000001000000000000c00c00010001", "hex"), Buffer.from("fffe0000ffffffffffffffff", "hex"), Buffer.from("fffd8000000100000000000003777777076578616d706c650474657374000001000100", "hex"),
      ];
      const mixed: Buffer[] = [];
      good.forEach((g, i) => {
        mixed.push(g);
        if (i % 10 === 0) mixed.push(hostile[(i / 10) % hostile.length] ?? Buffer.alloc(0));
      });
      const got = await burst(batch.port, mixed, good.length);
      for (let id = 1; id <= good.length; id++) assert.deepEqual(dnsPacket.decode(got.get(id) ?? Buffer.alloc(0)).answers?.map((a) => ("data" in a ? a.data : undefined)), ["192.0.2.80"], `query ${id}`);
      assert.deepEqual((await dig(batch.port, "www.example.test.", "A")).answer, ["www.example.test. 300 IN A 192.0.2.80"]);
    });
  });

  it("serves IPv6 (::1)", async () => {
    const store = new ZoneStore();
    store.put(exampleZone());
    const server = await startDnsServer({ host: "::1", port: 0, zones: store, udp: "batch" });
    try {
      const got = await burst(server.port, [query(1, "www.example.test", "AAAA", true)], 1, "::1");
      const m = dnsPacket.decode(got.get(1) ?? Buffer.alloc(0));
      assert.equal(m.flags !== undefined ? m.flags & 0x0f : -1, 0, "NOERROR");
      assert.deepEqual(m.answers?.map((a) => ("data" in a ? a.data : undefined)), ["2001:db8::80"]);
    } finally {
      await server.close();
    }
  });

  it("an exception thrown by or after the batch callback is uncaught, as after any I/O callback, and the answers still go out", async () => {
    for (const mode of ["sync", "microtask"]) {
      const printed = await new Promise<string>((resolve, reject) =>
        execFile(process.execPath, ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", THROW_AFTER_BATCH], { timeout: 30_000, env: { ...process.env, THROW: mode } }, (e, stdout, stderr) =>
          e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout)),
      );
      const twice = ["thrown after the batch", "thrown after the batch"];
      assert.deepEqual(JSON.parse(printed), { replies: ["one", "two"], uncaught: twice }, `${mode}: each batch answered, each exception reported, the socket kept serving`);
    }
  });

  it("frees its port on close, refuses a taken port, and rejects bad arguments with DNS_UDP_BATCH", async () => {
    const addon = udpBatch();
    assert.ok(addon !== undefined);
    const inb = new Uint8Array(addon.SLOTS * addon.IN_SLOT);
    const out = new Uint8Array(addon.SLOTS * addon.OUT_SLOT);
    const meta = new Int32Array(addon.SLOTS * 2);
    const [h, port] = addon.open("127.0.0.1", 0, false, inb, out, meta, () => {});
    assert.ok(port > 0);
    assert.throws(() => addon.open("127.0.0.1", port, false, inb, out, meta, () => {}), /bind: Address already in use/);
    addon.close(h);
    addon.close(h); // twice is harmless, at once and after the handle's close has completed
    await new Promise((r) => setImmediate(r));
    addon.close(h);
    assert.deepEqual(addon.stats(h).length, 4);
    const s = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(port, "127.0.0.1", () => resolve());
    });
    s.close();
    assert.throws(() => addon.open("not-an-address", 0, false, inb, out, meta, () => {}), (e: unknown) => (e as { code?: string }).code === "DNS_UDP_BATCH");
    assert.throws(() => addon.open("127.0.0.1", 0, false, new Uint8Array(16), out, meta, () => {}), /bad arguments/);
    assert.throws(() => addon.open("127.0.0.1", 70_000, false, inb, out, meta, () => {}), /bad arguments/);
  });
});
