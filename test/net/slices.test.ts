/**
 * Slices through the real gateway: request rate (429), connections (503), bandwidth shaping, the
 * gateway's shared capacity arbitrated by QoS; every refusal names its declared limit and every
 * episode is reported once through onThrottle.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { startGateway, type Gateway, type ThrottleEpisode } from "../../src/services/net/index.ts";
import { startUpstream, table, waitFor, type Upstream } from "./support.ts";

describe("gateway: slices and QoS", () => {
  let up: Upstream;
  let gw: Gateway;
  let frozenAt: number | undefined;
  const episodes: ThrottleEpisode[] = [];
  let base = "";
  const get = (host: string, path = "/") => request(`${base}${path}`, { headers: { host } });

  before(async () => {
    up = await startUpstream("web");
    const u = { host: "127.0.0.1", port: up.port };
    gw = await startGateway({
      port: 0,
      routes: table(
        3,
        [
          { id: "rate", imvu: "rate", host: "rate.nexus.test", kind: "public", upstream: u },
          { id: "conn", imvu: "conn", host: "conn.nexus.test", kind: "public", upstream: u },
          { id: "bw", imvu: "bw", host: "bw.nexus.test", kind: "public", upstream: u },
        ],
        {
          rate: { bandwidthBytesPerSec: "10000000", requestsPerSec: 5, connections: 100, qos: "bronze" },
          conn: { bandwidthBytesPerSec: "10000000", requestsPerSec: 1000, connections: 2, qos: "bronze" },
          bw: { bandwidthBytesPerSec: "262144", requestsPerSec: 1000, connections: 100, qos: "bronze" },
        },
      ),
      resolveKey: () => undefined,
      session: { signer: { keyId: "gw", ...generateEd25519() } },
      onThrottle: (e) => episodes.push(e),
      limits: { episodeQuietMs: 300 },
      // Frozen while a test counts admissions, so a slow machine's refill cannot change the count.
      now: () => frozenAt ?? Date.now(),
    });
    base = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it("answers 429 with Retry-After and nexus-limit beyond requestsPerSec, and reports one episode with its count", async () => {
    const statuses: number[] = [];
    frozenAt = Date.now();
    for (let i = 0; i < 12; i++) {
      const r = await get("rate.nexus.test");
      statuses.push(r.statusCode);
      if (r.statusCode === 429) {
        assert.equal(r.headers["nexus-limit"], "requestsPerSec=5");
        assert.ok(Number(r.headers["retry-after"]) >= 1);
        assert.match(await r.body.text(), /NET_RATE_LIMITED/);
      } else await r.body.dump();
    }
    frozenAt = undefined;
    const refused = statuses.filter((s) => s === 429).length;
    assert.ok(statuses.filter((s) => s === 200).length >= 5, statuses.join());
    assert.ok(refused >= 5, statuses.join());
    await waitFor(() => episodes.some((e) => e.imvu === "rate"));
    const mine = episodes.filter((e) => e.imvu === "rate");
    assert.equal(mine.length, 1, "one report per episode");
    assert.deepEqual({ ...mine[0], startedAtMs: 0, lastAtMs: 0 }, { imvu: "rate", limit: "requestsPerSec", declared: 5, count: refused, version: "3", startedAtMs: 0, lastAtMs: 0 });
    assert.equal((await gw.meter()).routes["rate"]?.throttled, refused);
  });

  it("answers 503 beyond the declared concurrent connections, naming the limit", async () => {
    const rs = await Promise.all(Array.from({ length: 4 }, () => get("conn.nexus.test", "/slow?ms=300")));
    const codes = rs.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 200, 503, 503]);
    for (const r of rs) {
      if (r.statusCode === 503) {
        assert.equal(r.headers["nexus-limit"], "connections=2");
        assert.equal(r.headers["retry-after"], "1");
      }
      await r.body.dump();
    }
    await waitFor(() => episodes.some((e) => e.imvu === "conn"));
    assert.equal(episodes.find((e) => e.imvu === "conn")?.count, 2);
    const after = await get("conn.nexus.test");
    assert.equal(after.statusCode, 200, "slots come back when requests end");
    await after.body.dump();
  });

  it("shapes responses to bandwidthBytesPerSec (a 768 KiB body at 256 KiB/s takes about 2 s) and reports it", async () => {
    const t0 = Date.now();
    const r = await get("bw.nexus.test", "/big?n=786432");
    const body = await r.body.arrayBuffer();
    const ms = Date.now() - t0;
    assert.equal(body.byteLength, 786432);
    // One second of burst, then the rest at the declared rate: ≥ ~2 s; allow scheduling slack.
    assert.ok(ms >= 1700, `took ${ms} ms`);
    assert.ok(ms < 6000, `took ${ms} ms`);
    await waitFor(() => episodes.some((e) => e.imvu === "bw" && e.limit === "bandwidthBytesPerSec"));
    assert.equal(episodes.find((e) => e.imvu === "bw")?.declared, 262144);
  });
});

describe("gateway: QoS decides who waits for the shared capacity", () => {
  it("admits a waiting gold request before waiting bronze ones; past the wait, 503 names gatewayCapacity", async () => {
    const up = await startUpstream("web");
    const u = { host: "127.0.0.1", port: up.port };
    const episodes: ThrottleEpisode[] = [];
    const roomy = { bandwidthBytesPerSec: "10000000", requestsPerSec: 1000, connections: 100 };
    const gw = await startGateway({
      port: 0,
      routes: table(
        1,
        [
          { id: "b", imvu: "bronze", host: "bronze.nexus.test", kind: "public", upstream: u },
          { id: "g", imvu: "gold", host: "gold.nexus.test", kind: "public", upstream: u },
        ],
        { bronze: { ...roomy, qos: "bronze" }, gold: { ...roomy, qos: "gold" } },
      ),
      resolveKey: () => undefined,
      session: { signer: { keyId: "gw", ...generateEd25519() } },
      onThrottle: (e) => episodes.push(e),
      limits: { capacityMax: 1, capacityWaitMs: 1500, episodeQuietMs: 200 },
    });
    try {
      const base = `http://127.0.0.1:${gw.port}`;
      const go = (host: string, path: string) => request(`${base}${path}`, { headers: { host } });
      const first = go("bronze.nexus.test", "/slow?ms=200&n=hold");
      await new Promise((r) => setTimeout(r, 50));
      const waiting = [go("bronze.nexus.test", "/slow?ms=50&n=b1"), go("bronze.nexus.test", "/slow?ms=50&n=b2")];
      await new Promise((r) => setTimeout(r, 30));
      const gold = go("gold.nexus.test", "/slow?ms=50&n=g1");
      const all = await Promise.all([first, ...waiting, gold]);
      for (const r of all) {
        assert.equal(r.statusCode, 200);
        await r.body.dump();
      }
      const order = up.seen.map((s) => new URL(s.url, "http://x").searchParams.get("n"));
      assert.deepEqual(order, ["hold", "g1", "b1", "b2"], "gold overtakes bronze that waited longer");

      const hold = go("bronze.nexus.test", "/slow?ms=2500");
      await new Promise((r) => setTimeout(r, 50));
      const late = await go("bronze.nexus.test", "/");
      assert.equal(late.statusCode, 503);
      assert.equal(late.headers["nexus-limit"], "gatewayCapacity=1");
      assert.match(await late.body.text(), /NET_CAPACITY_EXCEEDED/);
      await (await hold).body.dump();
      await waitFor(() => episodes.some((e) => e.limit === "gatewayCapacity"));
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
