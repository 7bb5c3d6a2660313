/** Serving threads: a gateway with two threads on one port serves, shares route changes, splits slices, reports from every thread. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Agent, request } from "undici";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { startGateway, type ThrottleEpisode, type UsageReport } from "../../src/services/net/index.ts";
import { newIdentity, signedHeaders, startUpstream, table, waitFor } from "./support.ts";

describe("gateway: serving threads (SO_REUSEPORT)", () => {
  it("serves from both threads, follows setRoutes, resolves keys through the main thread, sums meters and reports", async () => {
    const up = await startUpstream("web");
    const alice = newIdentity();
    const episodes: ThrottleEpisode[] = [];
    const usage: UsageReport[] = [];
    const u = { host: "127.0.0.1", port: up.port };
    const gw = await startGateway({
      port: 0,
      workers: 2,
      routes: table(
        1,
        [
          { id: "w", imvu: "w", host: "w.nexus.test", kind: "public", upstream: u },
          { id: "p", imvu: "p", host: "p.nexus.test", kind: "private", grants: [alice.id], upstream: u },
        ],
        { w: { bandwidthBytesPerSec: "10000000", requestsPerSec: 20, connections: 100, qos: "silver" } },
      ),
      resolveKey: (id) => (id === alice.id ? alice.keys.publicKey : undefined),
      session: { signer: { keyId: "gw", ...generateEd25519() } },
      onThrottle: (e) => episodes.push(e),
      onUsage: (r) => usage.push(r),
      usageIntervalMs: 200,
      limits: { episodeQuietMs: 200 },
    });
    try {
      const base = `http://127.0.0.1:${gw.port}`;
      // Fresh connections each time, so the kernel spreads them over both threads.
      let ok = 0;
      let limited = 0;
      const t0 = Date.now();
      for (let i = 0; i < 60; i++) {
        const agent = new Agent({ pipelining: 0 });
        const r = await request(`${base}/`, { headers: { host: "w.nexus.test" }, dispatcher: agent });
        if (r.statusCode === 200) ok++;
        if (r.statusCode === 429) limited++;
        await r.body.dump();
        await agent.close();
      }
      // 20/s declared, each thread enforcing 10/s with a burst of 10: never more than declared.
      const elapsedS = (Date.now() - t0) / 1000;
      assert.ok(ok <= 20 + 20 * elapsedS + 1, `ok ${ok} in ${elapsedS} s`);
      assert.ok(limited > 0);
      const signed = await request(`${base}/x`, { headers: { host: "p.nexus.test", ...signedHeaders(alice, "GET", "http://p.nexus.test/x") } });
      assert.equal(signed.statusCode, 200);
      await signed.body.dump();
      gw.setRoutes(table(2, [{ id: "w", imvu: "w", host: "w.nexus.test", kind: "public", upstream: u }]));
      for (let i = 0; i < 6; i++) {
        const agent = new Agent({ pipelining: 0 });
        const r = await request(`${base}/`, { headers: { host: "p.nexus.test" }, dispatcher: agent });
        assert.equal(r.statusCode, 404);
        assert.equal(r.headers["nexus-route-version"], "2");
        await r.body.dump();
        await agent.close();
      }
      const m = await gw.meter();
      assert.equal(m.routes["w"]?.requests, 60);
      assert.equal((m.routes["w"]?.s2xx ?? 0) + (m.routes["w"]?.throttled ?? 0), 60);
      await waitFor(() => episodes.length > 0 && usage.length > 0);
      assert.equal(episodes[0]?.declared, 20, "episodes name the declared limit");
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
