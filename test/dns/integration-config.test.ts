/**
 * The DNS service module's operator configuration (<home>/dns.json, $NEXUS_DNS_CONFIG,
 * $NEXUS_DNS_UPSTREAMS, /etc/resolv.conf) and its metering arithmetic, as docs/dns.md states them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { isNexusError } from "../../src/core/errors.ts";
import { MemoryState, put } from "../../src/core/pipeline/state.ts";
import { loadDnsConfig, parseUpstreams, resolvConfUpstreams, usageByImvu } from "../../src/platform/services/dns.ts";
import { tempDir } from "./support.ts";

const invalid = (e: unknown): boolean => isNexusError(e, "DNS_CONFIG_INVALID");

test("dns.json in the data directory configures TSIG keys, NOTIFY targets and upstreams; the environment overrides", () => {
  const t = tempDir("config");
  try {
    assert.deepEqual(loadDnsConfig(t.dir, {}), {}, "no file: no configuration");
    const cfg = { tsig: [{ name: "k", secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQ=" }], notify: [{ host: "192.0.2.53", port: 53, key: "k" }], upstreams: [{ host: "192.0.2.1", port: 53 }] };
    writeFileSync(join(t.dir, "dns.json"), JSON.stringify(cfg));
    assert.deepEqual(loadDnsConfig(t.dir, {}), cfg);
    assert.deepEqual(loadDnsConfig(t.dir, { NEXUS_DNS_UPSTREAMS: "198.51.100.1:5353, [2001:db8::1]:53, 2001:db8::2" }).upstreams, [
      { host: "198.51.100.1", port: 5353 }, { host: "2001:db8::1", port: 53 }, { host: "2001:db8::2", port: 53 },
    ]);
    const other = join(t.dir, "other.json");
    writeFileSync(other, JSON.stringify({ workers: 2 }));
    assert.deepEqual(loadDnsConfig(t.dir, { NEXUS_DNS_CONFIG: other }), { workers: 2 });
    assert.throws(() => loadDnsConfig(t.dir, { NEXUS_DNS_CONFIG: join(t.dir, "missing.json") }), invalid);
    writeFileSync(join(t.dir, "dns.json"), "{not json");
    assert.throws(() => loadDnsConfig(t.dir, {}), invalid);
    writeFileSync(join(t.dir, "dns.json"), JSON.stringify({ notify: [{ host: "x", port: 70000 }] }));
    assert.throws(() => loadDnsConfig(t.dir, {}), invalid);
    writeFileSync(join(t.dir, "dns.json"), JSON.stringify({ surprise: true }));
    assert.throws(() => loadDnsConfig(t.dir, {}), invalid, "unknown keys are refused");
  } finally {
    t.remove();
  }
});

test("upstream lists accept IP addresses with optional ports only", () => {
  assert.deepEqual(parseUpstreams("192.0.2.1"), [{ host: "192.0.2.1", port: 53 }]);
  for (const bad of ["resolver.example", "192.0.2.1:0", "192.0.2.1:99999", "[::1", "300.1.1.1"]) assert.throws(() => parseUpstreams(bad), invalid, bad);
});

test("/etc/resolv.conf name servers are the default upstreams (at most three)", () => {
  const t = tempDir("resolv");
  try {
    const f = join(t.dir, "resolv.conf");
    writeFileSync(f, "# comment\nsearch example\nnameserver 192.0.2.1\nnameserver 2001:db8::53\nnameserver not-an-ip\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n");
    assert.deepEqual(resolvConfUpstreams(f), [{ host: "192.0.2.1", port: 53 }, { host: "2001:db8::53", port: 53 }, { host: "192.0.2.2", port: 53 }]);
    assert.deepEqual(resolvConfUpstreams(join(t.dir, "absent")), []);
  } finally {
    t.remove();
  }
});

test("query counters are summed per IMVU over its zones; zones of no IMVU are not reported", () => {
  const s = new MemoryState();
  s.apply([
    put("dns-zone", "a.nexus.test.", { origin: "a.nexus.test.", imvu: "a", kind: "base", createdIndex: "1", changedIndex: "1" }),
    put("dns-zone", "a.example.", { origin: "a.example.", imvu: "a", kind: "custom", createdIndex: "2", changedIndex: "2" }),
  ]);
  const c = (queries: number) => ({ queries, nxdomain: 1, nodata: 0, referrals: 0, transfers: 0 });
  const u = usageByImvu(s, { "a.nexus.test.": c(3), "a.example.": c(4), "nexus.test.": c(100) });
  assert.deepEqual([...u.keys()], ["a"]);
  assert.deepEqual(u.get("a"), { queries: 7, nxdomain: 2, nodata: 0, referrals: 0, transfers: 0, zones: 2 });
});
