/** The pure core: normalisation and matching (fast-check properties), the route schema, regions, buckets, QoS, episodes, sessions. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { isNexusError } from "../../src/core/errors.ts";
import {
  buildRegionTable, buildRouteTable, EpisodeTracker, hostFromAuthority, issueSession, matchRoute, normalizeTarget, prefixCovers,
  QosQueue, regionOf, SliceState, TokenBucket, verifySession, type RouteInput,
} from "../../src/services/net/index.ts";
import { newIdentity, ROOMY, table } from "./support.ts";

const segChar = fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;=:@%/\\?#".split(""), "%2e", "%2E", "%2f", "%5C", "%25", "%00", "%41", "%7e", "%C3%A9", "%C0%AE", "é", "\u0000", " ", "..", ".");
const hostileTarget = fc.array(segChar, { maxLength: 30 }).map((cs) => `/${cs.join("")}`);
const niceSeg = fc.stringMatching(/^[a-z0-9_~-][a-z0-9._~-]{0,7}$/);
const nicePath = fc.array(niceSeg, { maxLength: 6 }).map((s) => `/${s.join("/")}`);

describe("path normalisation", () => {
  it("is idempotent and its output is free of every trick (property)", () => {
    fc.assert(
      fc.property(hostileTarget, (t) => {
        const n = normalizeTarget(t);
        if (!n.ok) return;
        const again = normalizeTarget(`${n.path}${n.query}`);
        assert.ok(again.ok);
        assert.equal(again.path, n.path);
        assert.ok(!/\/\.\.?(\/|$)/.test(n.path), n.path);
        assert.ok(!n.path.includes("//"), n.path);
        assert.ok(!/%(2f|5c|25|00)/i.test(n.path), n.path);
        assert.ok(/^[\x21-\x7e]*$/.test(n.path), n.path);
        assert.ok(!n.path.includes("\\"));
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws on arbitrary strings (property)", () => {
    fc.assert(fc.property(fc.string({ maxLength: 200, unit: "binary" }), (s) => void normalizeTarget(s)), { numRuns: 500 });
  });

  it("refuses each named trick", () => {
    for (const t of ["/../a", "/a/..", "/./a", "/%2e%2e/a", "/.%2E/a", "/a%2fb", "/a%2Fb", "/a%5cb", "/a\\b", "/%252e", "/a%00", "/a?x%00", "/é", "/%C0%AE", "/%E2%82", "/a%g0", "a", "", "/a b", "/a#b"]) {
      assert.equal(normalizeTarget(t).ok, false, t);
    }
  });

  it("merges slashes, decodes unreserved escapes, upper-cases the others, keeps the query", () => {
    assert.deepEqual(normalizeTarget("//a///b/"), { ok: true, path: "/a/b/", query: "" });
    assert.deepEqual(normalizeTarget("/%7euser/%41%3f?q=%2F"), { ok: true, path: "/~user/A%3F", query: "?q=%2F" });
    assert.deepEqual(normalizeTarget("/caf%c3%a9"), { ok: true, path: "/caf%C3%A9", query: "" });
    assert.deepEqual(normalizeTarget("/.well-known/x"), { ok: true, path: "/.well-known/x", query: "" });
  });
});

describe("host canonicalisation", () => {
  it("folds case, port and one final dot; refuses the rest (property)", () => {
    fc.assert(
      fc.property(fc.domain(), fc.option(fc.integer({ min: 0, max: 65535 })), fc.boolean(), (d, port, dot) => {
        const mixed = d.split("").map((c, i) => (i % 2 ? c.toUpperCase() : c)).join("");
        const a = `${mixed}${dot ? "." : ""}${port === null ? "" : `:${port}`}`;
        assert.equal(hostFromAuthority(a), d.toLowerCase());
      }),
    );
    for (const h of ["a..b", "a.b..", "-a.b", "a_b.c", "bücher.de", "a b", "[::1]", "a.b:x", "a.b:123456", "", ".", "a@b"]) assert.equal(hostFromAuthority(h), undefined, h);
  });
});

describe("route table and matching", () => {
  const r = (id: string, host: string, pathPrefix: string): RouteInput => ({ id, imvu: "i", host, pathPrefix, kind: "public", upstream: { host: "127.0.0.1", port: 1 } });

  it("matches the longest prefix at a segment boundary, as a brute-force scan does (property)", () => {
    fc.assert(
      fc.property(fc.uniqueArray(nicePath, { minLength: 1, maxLength: 8 }), nicePath, (prefixes, path) => {
        const norm = prefixes.map((p) => (p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p));
        if (new Set(norm).size !== norm.length) return;
        const t = table(1, prefixes.map((p, i) => r(`r${i}`, "h.test", p)));
        const got = matchRoute(t, "h.test", path);
        const covering = t.routes.filter((x) => prefixCovers(x.pathPrefix, path));
        const best = covering.sort((a, b) => b.pathPrefix.length - a.pathPrefix.length)[0];
        assert.equal(got?.id, best?.id);
        if (got) assert.ok(path === got.pathPrefix || got.pathPrefix === "/" || path.startsWith(`${got.pathPrefix}/`));
      }),
    );
  });

  it("canonicalises configured hosts (IDNA, case, final dot) and prefixes", () => {
    const t = table(5, [r("a", "Bücher.Example.", "/Api/"), r("b", "WWW.example", "/")]);
    assert.equal(t.version, "5");
    assert.equal(t.routes[0]?.host, "xn--bcher-kva.example");
    assert.equal(t.routes[0]?.pathPrefix, "/Api");
    assert.equal(matchRoute(t, "xn--bcher-kva.example", "/Api/x")?.id, "a");
    assert.equal(matchRoute(t, "xn--bcher-kva.example", "/api/x"), undefined, "paths are case-sensitive");
    assert.equal(matchRoute(t, "www.example", "/anything")?.id, "b");
  });

  it("refuses invalid routes, conflicts, a host split between IMVUs, missing slices", () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return isNexusError(e) ? e.code : String(e);
      }
      return undefined;
    };
    assert.equal(code(() => table(1, [r("a", "a..b", "/")])), "NET_ROUTE_INVALID");
    assert.equal(code(() => table(1, [r("a", "a.b", "/../x")])), "NET_ROUTE_INVALID");
    assert.equal(code(() => table(1, [{ ...r("a", "a.b", "/"), kind: "restricted" }])), "NET_ROUTE_INVALID");
    assert.equal(code(() => table(1, [{ ...r("a", "a.b", "/"), grants: [newIdentity().id] }])), "NET_ROUTE_INVALID");
    assert.equal(code(() => table(1, [{ ...r("a", "a.b", "/"), kind: "private", grants: ["not-an-id"] }])), "NET_ROUTE_INVALID");
    assert.equal(code(() => table(1, [r("a", "a.b", "/x"), r("b", "A.B", "/x/")])), "NET_ROUTE_CONFLICT");
    assert.equal(code(() => table(1, [r("a", "a.b", "/"), r("a", "c.d", "/")])), "NET_ROUTE_CONFLICT");
    assert.equal(code(() => table(1, [r("a", "a.b", "/"), { ...r("b", "a.b", "/x"), imvu: "other" }])), "NET_ROUTE_CONFLICT");
    assert.equal(code(() => buildRouteTable({ version: 1, routes: [r("a", "a.b", "/")], slices: {} })), "NET_SLICE_MISSING");
    assert.equal(code(() => buildRouteTable({ version: -1, routes: [], slices: {} })), "NET_ROUTE_INVALID");
    assert.equal(buildRouteTable({ version: 2n ** 60n, routes: [], slices: { i: ROOMY } }).version, "1152921504606846976");
  });
});

describe("regions", () => {
  const t = buildRegionTable([
    { cidr: "192.0.2.0/24", region: "FR" },
    { cidr: "192.0.2.128/25", region: "DE" },
    { cidr: "0.0.0.0/0", region: "ZZ" },
    { cidr: "2001:db8::/32", region: "NL" },
    { cidr: "2001:db8:1::/48", region: "BE" },
  ]);
  it("takes the longest prefix, for IPv4, IPv6 and IPv4-mapped IPv6", () => {
    assert.equal(regionOf(t, "192.0.2.1"), "FR");
    assert.equal(regionOf(t, "192.0.2.200"), "DE");
    assert.equal(regionOf(t, "198.51.100.1"), "ZZ");
    assert.equal(regionOf(t, "::ffff:192.0.2.200"), "DE");
    assert.equal(regionOf(t, "2001:db8:2::1"), "NL");
    assert.equal(regionOf(t, "2001:DB8:1:ffff::1"), "BE");
    assert.equal(regionOf(t, "2001:db9::1"), undefined);
    assert.equal(regionOf(t, "not an ip"), undefined);
  });
  it("refuses malformed rows", () => {
    for (const row of [{ cidr: "192.0.2.0/33", region: "FR" }, { cidr: "192.0.2.0", region: "FR" }, { cidr: "1.2.3.4/8", region: "fr" }, { cidr: "::ffff:1.2.3.4/120", region: "FR" }]) {
      assert.throws(() => buildRegionTable([row]), (e) => isNexusError(e, "NET_REGION_TABLE_INVALID"), JSON.stringify(row));
    }
  });
});

describe("slices, QoS, episodes", () => {
  it("a token bucket never admits more than burst + rate × elapsed (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (rate, gaps) => {
        const b = new TokenBucket(rate, rate, 0);
        let now = 0;
        let admitted = 0;
        for (const g of gaps) {
          now += g;
          if (b.tryTake(1, now) === 0) admitted++;
        }
        assert.ok(admitted <= rate + (rate * now) / 1000 + 1e-9);
      }),
    );
  });

  it("a slice refuses beyond requestsPerSec (429) and connections (503), naming the limit", () => {
    const s = new SliceState({ bandwidthBytesPerSec: 1000, requestsPerSec: 2, connections: 3, qos: "bronze" }, 0);
    assert.equal(s.admit(0), undefined);
    assert.equal(s.admit(0), undefined);
    assert.deepEqual(s.admit(0), { limit: "requestsPerSec", declared: 2, status: 429, retryAfterS: 1 });
    assert.equal(s.admit(600), undefined);
    assert.deepEqual(s.admit(2000), { limit: "connections", declared: 3, status: 503, retryAfterS: 1 });
    s.release();
    assert.equal(s.admit(2000), undefined);
  });

  it("QoS queue: weighted 4:2:1 under contention, FIFO within a class, nobody starved", () => {
    const q = new QosQueue<string>(100);
    for (let i = 0; i < 10; i++) {
      q.push("bronze", `b${i}`);
      q.push("silver", `s${i}`);
      q.push("gold", `g${i}`);
    }
    const first7 = Array.from({ length: 7 }, () => q.shift());
    assert.deepEqual(first7, ["g0", "g1", "g2", "g3", "s0", "s1", "b0"]);
    const rest: string[] = [];
    for (let x = q.shift(); x !== undefined; x = q.shift()) rest.push(x);
    assert.equal(rest.length, 23);
    assert.ok(rest.indexOf("b1") < rest.indexOf("g9"), "bronze is served before gold drains");
  });

  it("episodes: one report per quiet-separated run of throttling, with its count", () => {
    const t = new EpisodeTracker(1000);
    t.hit("x", "requestsPerSec", 5, 0, "1");
    t.hit("x", "requestsPerSec", 5, 500, "1");
    t.hit("y", "connections", 2, 600, "1");
    assert.deepEqual(t.sweep(1200), []);
    const first = t.sweep(1500);
    assert.deepEqual(first, [{ imvu: "x", limit: "requestsPerSec", declared: 5, startedAtMs: 0, lastAtMs: 500, count: 2, version: "1" }]);
    t.hit("x", "requestsPerSec", 5, 3000, "2");
    assert.equal(t.sweep(9000, true).length, 2);
    assert.equal(t.openCount, 0);
  });
});

describe("session tokens", () => {
  const k = generateEd25519();
  const signer = { keyId: "gw1", ...k };
  const keys = new Map([["gw1", k.publicKey]]);
  const who = newIdentity().id;
  it("verify for their host only, until they expire, under a known key only", () => {
    const { token } = issueSession(signer, who, "a.test", 1000, 60);
    assert.equal(verifySession(token, keys, "a.test", 1001).ok, true);
    assert.deepEqual(verifySession(token, keys, "b.test", 1001), { ok: false, reason: "issued for another host" });
    assert.deepEqual(verifySession(token, keys, "a.test", 1060), { ok: false, reason: "expired" });
    assert.deepEqual(verifySession(token, new Map([["gw1", generateEd25519().publicKey]]), "a.test", 1001), { ok: false, reason: "bad signature" });
    assert.deepEqual(verifySession(token, new Map(), "a.test", 1001), { ok: false, reason: "unknown key" });
  });
  it("reject any altered byte (property)", () => {
    const { token } = issueSession(signer, who, "a.test", 1000, 60);
    fc.assert(
      fc.property(fc.integer({ min: 5, max: token.length - 1 }), fc.constantFrom(..."ABCabc012-_"), (i, c) => {
        if (token[i] === c) return;
        const bad = `${token.slice(0, i)}${c}${token.slice(i + 1)}`;
        assert.equal(verifySession(bad, keys, "a.test", 1001).ok, false);
      }),
    );
  });
});
