/** The caching resolver: platform zones answered authoritatively, the rest forwarded, cached by TTL, never rewritten. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { startDnsServer } from "../../src/services/dns/server.ts";
import { startResolver } from "../../src/services/dns/resolver.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { dig, exampleZone } from "./support.ts";

test("resolver: authoritative for platform zones, forwards and caches the rest, passes NXDOMAIN through, SERVFAIL when upstreams fail", async () => {
  const upstreamZones = new ZoneStore();
  const uz = exampleZone(1, "upstream.test.");
  // Over the 1232 octets of EDNS: the upstream answers TC over UDP and the resolver must ask again over TCP.
  upstreamZones.put({ ...uz, records: [...uz.records, { name: "huge", data: { type: "TXT", text: Array.from({ length: 7 }, (_, i) => `${i}`.padEnd(200, "y")) } }] });
  const upstream = await startDnsServer({ port: 0, zones: upstreamZones });
  const platform = new ZoneStore();
  platform.put(exampleZone(1, "platform.test."));
  const resolver = await startResolver({ port: 0, zones: platform, upstreams: [{ host: "127.0.0.1", port: upstream.port }], upstreamTimeoutMs: 500 });
  let upstreamClosed = false;
  try {
    const own = await dig(resolver.port, "www.platform.test.", "A");
    assert.deepEqual(own.answer, ["www.platform.test. 300 IN A 192.0.2.80"]);
    assert.ok(own.flags.includes("aa") && own.flags.includes("ra"));

    const fwd = await dig(resolver.port, "WWW.upstream.test.", "A");
    assert.equal(fwd.status, "NOERROR");
    assert.deepEqual(fwd.answer, ["WWW.upstream.test. 300 IN A 192.0.2.80"], "answer as received, the question's case echoed");
    assert.ok(fwd.flags.includes("ra") && !fwd.flags.includes("aa"));

    const chain = await dig(resolver.port, "alias2.upstream.test.", "A");
    assert.equal(chain.answer.length, 3);

    const nx = await dig(resolver.port, "nope.upstream.test.", "A");
    assert.equal(nx.status, "NXDOMAIN", "no NXDOMAIN redirection");
    assert.deepEqual(nx.answer, []);
    assert.match(nx.authority[0] ?? "", /upstream\.test\. \d+ IN SOA /);

    // Large answers: TC over UDP to a client that cannot take them, in full over TCP.
    const big = await dig(resolver.port, "big.upstream.test.", "TXT", "+bufsize=512", "+ignore");
    assert.ok(big.flags.includes("tc"));
    const bigTcp = await dig(resolver.port, "big.upstream.test.", "TXT", "+tcp");
    assert.equal(bigTcp.answer.length, 1);
    const huge = await dig(resolver.port, "huge.upstream.test.", "TXT", "+tcp");
    assert.equal(huge.answer.length, 1, "fetched from the upstream over TCP after its TC");
    assert.match(huge.answer[0] ?? "", /"6y+"$/);

    const before = resolver.stats();
    await dig(resolver.port, "www.upstream.test.", "A");
    assert.ok(resolver.stats().cacheHits > before.cacheHits, "the second ask is a cache hit");

    await upstream.close();
    upstreamClosed = true;
    await new Promise((r) => setTimeout(r, 1_100));
    const cached = await dig(resolver.port, "www.upstream.test.", "A");
    assert.match(cached.answer[0] ?? "", /^www\.upstream\.test\. (29[0-9]) IN A 192\.0\.2\.80$/, "cached, TTL aged");
    const cachedNx = await dig(resolver.port, "nope.upstream.test.", "A");
    assert.equal(cachedNx.status, "NXDOMAIN", "negative answers cached for the SOA's negative TTL");
    const fail = await dig(resolver.port, "uncached.upstream.test.", "A");
    assert.equal(fail.status, "SERVFAIL");
    assert.ok(resolver.stats().upstreamFailures >= 1);

    // Garbage does not stop it.
    const s = createSocket("udp4");
    for (let i = 0; i < 50; i++) s.send(Buffer.from(Array.from({ length: i + 1 }, (_, j) => (i * 31 + j * 7) & 0xff)), resolver.port, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 100));
    s.close();
    assert.equal((await dig(resolver.port, "www.platform.test.", "A")).status, "NOERROR");
  } finally {
    await resolver.close();
    if (!upstreamClosed) await upstream.close();
  }
});

test("resolver options are checked", async () => {
  await assert.rejects(startResolver({ port: 0, zones: new ZoneStore(), upstreams: [] }), (e: unknown) => isNexusError(e, "DNS_CONFIG_INVALID"));
  await assert.rejects(startResolver({ port: 0, zones: new ZoneStore(), upstreams: [{ host: "resolver.example", port: 53 }] }), (e: unknown) => isNexusError(e, "DNS_CONFIG_INVALID"));
});
