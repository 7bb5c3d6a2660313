/**
 * Gates 2, 3, 4, 7, 10, 14 and 16 on the DNS command types (dns.rrset.set/delete, domain.claim/
 * verify) and the domain imvu.create binds: each passes the lawful case and denies the hostile one,
 * and the zones derived from the resulting state are valid and change serial on every change.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildZone } from "../../src/core/dns/zone.ts";
import { evaluateGates, GATES } from "../../src/core/policy/gates.ts";
import type { GateNumber } from "../../src/core/policy/constitution.ts";
import { CATALOGUE } from "../../src/core/policy/constitution.ts";
import { servedZoneInputs } from "../../src/core/policy/dns-zones.ts";
import { BODY_SCHEMAS, type Command } from "../../src/core/policy/schemas.ts";
import { challengeToken } from "../../src/core/pipeline/dns-reducer.ts";
import { bookkeeping, reduce } from "../../src/core/pipeline/reducer.ts";
import { put, type MemoryState } from "../../src/core/pipeline/state.ts";
import { ADMIN, DELEGATE, DNS_SVC, OTHER, OWNER, baseState, cmd, ctxFor, envelope } from "./fixtures.ts";

let nextIndex = 100n;
const DIGEST = "c".repeat(64);

/** Applies `c` as the pipeline would when every gate passes (asserts they do). */
function apply(s: MemoryState, c: Command): bigint {
  const verdicts = evaluateGates(ctxFor(s, c));
  assert.deepEqual(verdicts.filter((v) => !v.pass), [], `${c.type} passes every gate`);
  const facts = { index: nextIndex++, time: "2026-11-23T00:00:00.000Z", digest: DIGEST };
  s.apply([...bookkeeping(c, facts, "applied"), ...reduce(s, c, facts)]);
  return facts.index;
}

/** The failing gates of `c` over `s`. */
function failing(s: MemoryState, c: Command): GateNumber[] {
  return evaluateGates(ctxFor(s, c)).filter((v) => !v.pass).map((v) => v.gate);
}

/** The fixture platform with stage and other created through imvu.create (zones with defaults). */
function dnsState(dnsRecords = 200): MemoryState {
  const s = baseState();
  s.apply([del("imvu", "stage"), del("imvu", "other")]);
  apply(s, cmd("imvu.create", OWNER, { name: "stage", jurisdiction: "DE", class: "imvu", envelope: envelope({ dnsRecords }) }, "stage"));
  apply(s, cmd("imvu.create", OTHER, { name: "other", jurisdiction: "FR", class: "imvu", envelope: envelope() }, "other"));
  s.apply([put("delegation", `stage/${DELEGATE}`, { imvu: "stage", delegate: DELEGATE, scope: ["dns.rrset.set", "domain.claim"], grantedIndex: "7" })]);
  return s;
}

function del(table: "imvu", key: string) {
  return { table, key, value: undefined };
}

const set = (actor: string, imvu: string, name: string, type: string, values: unknown[], ttl?: number) =>
  cmd("dns.rrset.set", actor, { name, type, values, ...(ttl === undefined ? {} : { ttl }) }, imvu);

function served(s: MemoryState, origin: string) {
  const z = servedZoneInputs(s).find((x) => x.origin === origin);
  assert.ok(z, `${origin} is served`);
  return buildZone(z);
}

describe("imvu.create binds <name>.<base> with a zone of default records (gate 3)", () => {
  test("the zone holds SOA, NS, apex A/AAAA, MX, SPF and DMARC, and the platform zone delegates to it", () => {
    const s = dnsState();
    assert.equal(s.get("domain", "stage.nexus.test")?.imvu, "stage");
    const z = served(s, "stage.nexus.test.");
    const types = z.records.map((r) => `${r.name} ${r.data.type}`);
    for (const want of ["stage.nexus.test. NS", "stage.nexus.test. A", "stage.nexus.test. AAAA", "stage.nexus.test. MX", "stage.nexus.test. TXT", "_dmarc.stage.nexus.test. TXT"]) {
      assert.ok(types.includes(want), want);
    }
    const p = served(s, "nexus.test.");
    assert.ok(p.cuts.has("stage.nexus.test." as never) && p.cuts.has("other.nexus.test." as never));
    assert.ok(p.records.some((r) => r.name === "ns1.nexus.test." && r.data.type === "A"));
  });
  test("the platform's own labels (ns1, mail) and bound names cannot be taken", () => {
    const s = dnsState();
    for (const name of ["ns1", "mail", "hostmaster"]) {
      assert.deepEqual(failing(s, cmd("imvu.create", OWNER, { name, jurisdiction: "DE", class: "imvu", envelope: envelope() }, name)), [3], name);
    }
    assert.equal(GATES[3](ctxFor(s, cmd("imvu.create", OWNER, { name: "fresh", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "fresh"))).pass, true);
  });
});

describe("gate 2 and gate 16: records only in the IMVU's own zones", () => {
  test("the owner writes in its zone; writing into another IMVU's zone is denied by 2, 4 and 16", () => {
    const s = dnsState();
    assert.deepEqual(failing(s, set(OWNER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }])), []);
    assert.deepEqual(failing(s, set(OWNER, "stage", "www.other.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }])), [2, 4, 16]);
    assert.deepEqual(failing(s, cmd("dns.rrset.delete", OWNER, { name: "other.nexus.test", type: "MX" }, "stage")), [2, 4, 16]);
  });
  test("names in the platform's zone or in no zone are refused by gate 4 (nobody else's: gate 2 passes)", () => {
    const s = dnsState();
    assert.deepEqual(failing(s, set(OWNER, "stage", "ns1.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }])), [4]);
    assert.deepEqual(failing(s, set(OWNER, "stage", "www.example.org", "A", [{ type: "A", address: "192.0.2.1" }])), [4]);
  });
});

describe("gate 4: DNS authority", () => {
  const ok = [
    ["www", "A", [{ type: "A", address: "192.0.2.10" }]],
    ["www", "AAAA", [{ type: "AAAA", address: "2001:DB8::0:1" }]],
    ["alias", "CNAME", [{ type: "CNAME", target: "www.stage.nexus.test." }]],
    ["@", "MX", [{ type: "MX", preference: 5, exchange: "mx.example.net." }]],
    ["note", "TXT", [{ type: "TXT", text: ["hello", "world"] }]],
    ["_sip._tcp", "SRV", [{ type: "SRV", priority: 1, weight: 2, port: 5060, target: "www.stage.nexus.test." }]],
    ["@", "CAA", [{ type: "CAA", flags: 0, tag: "issue", value: "letsencrypt.org" }]],
    ["sub", "NS", [{ type: "NS", host: "ns.example.net." }]],
    ["1.2", "PTR", [{ type: "PTR", target: "www.stage.nexus.test." }]],
  ] as const;
  test("every record type of the issue passes and is served in canonical form", () => {
    const s = dnsState();
    for (const [rel, type, values] of ok) {
      const name = rel === "@" ? "stage.nexus.test" : `${rel}.stage.nexus.test`;
      apply(s, set(OWNER, "stage", name, type, [...values]));
    }
    const z = served(s, "stage.nexus.test.");
    assert.ok(z.records.some((r) => r.data.type === "AAAA" && r.data.address === "2001:db8::1"), "AAAA stored in RFC 5952 form");
    assert.ok(z.cuts.has("sub.stage.nexus.test." as never));
    assert.ok(z.records.some((r) => r.data.type === "MX" && r.data.exchange === "mx.example.net."), "the apex MX replaced the default");
  });
  const hostile: [string, string, string, unknown[], number | undefined, string][] = [
    ["apex CNAME", "stage.nexus.test", "CNAME", [{ type: "CNAME", target: "example.net." }], undefined, "apex"],
    ["CNAME beside data", "_dmarc.stage.nexus.test", "CNAME", [{ type: "CNAME", target: "example.net." }], undefined, "beside"],
    ["TTL below bounds", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }], 5, "TTL"],
    ["TTL above bounds", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }], 10_000_000, "TTL"],
    ["bad address", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.01" }], undefined, "DNS_RDATA_INVALID"],
    ["value of another type", "www.stage.nexus.test", "A", [{ type: "AAAA", address: "::1" }], undefined, "AAAA value"],
    ["SOA", "stage.nexus.test", "SOA", [{ type: "SOA", mname: "x.", rname: "y.", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 1 }], undefined, "SOA"],
    ["apex NS", "stage.nexus.test", "NS", [{ type: "NS", host: "ns.evil.example." }], undefined, "apex NS"],
    ["in-zone NS without glue", "sub.stage.nexus.test", "NS", [{ type: "NS", host: "ns.sub.stage.nexus.test." }], undefined, "DNS_NS_ADDRESS_MISSING"],
    ["two CNAMEs", "alias.stage.nexus.test", "CNAME", [{ type: "CNAME", target: "a.example." }, { type: "CNAME", target: "b.example." }], undefined, "one CNAME"],
    ["MX host not a host name", "stage.nexus.test", "MX", [{ type: "MX", preference: 1, exchange: "bad_host.example." }], undefined, "DNS_NAME_INVALID"],
    ["name not a name", "a..stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }], undefined, "DNS_NAME_INVALID"],
  ];
  for (const [what, name, type, values, ttl, reason] of hostile) {
    test(`denied: ${what}`, () => {
      const s = dnsState();
      const c = set(OWNER, "stage", name, type, values, ttl);
      const v = GATES[4](ctxFor(s, c));
      assert.equal(v.pass, false);
      assert.ok(v.reason.includes(reason), `${v.reason} mentions ${reason}`);
      assert.deepEqual(failing(s, c), [4]);
    });
  }
  test("data beside a CNAME is denied", () => {
    const s = dnsState();
    apply(s, set(OWNER, "stage", "alias.stage.nexus.test", "CNAME", [{ type: "CNAME", target: "example.net." }]));
    assert.deepEqual(failing(s, set(OWNER, "stage", "alias.stage.nexus.test", "TXT", [{ type: "TXT", text: ["x"] }])), [4]);
  });
  test("delete: an existing RRset passes; absent ones, the apex NS and glue still needed are denied", () => {
    const s = dnsState();
    assert.deepEqual(failing(s, cmd("dns.rrset.delete", OWNER, { name: "_dmarc.stage.nexus.test", type: "TXT" }, "stage")), []);
    assert.deepEqual(failing(s, cmd("dns.rrset.delete", OWNER, { name: "nope.stage.nexus.test", type: "A" }, "stage")), [4]);
    assert.deepEqual(failing(s, cmd("dns.rrset.delete", OWNER, { name: "stage.nexus.test", type: "NS" }, "stage")), [4]);
    apply(s, set(OWNER, "stage", "ns.sub.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.53" }]));
    apply(s, set(OWNER, "stage", "sub.stage.nexus.test", "NS", [{ type: "NS", host: "ns.sub.stage.nexus.test." }]));
    const v = GATES[4](ctxFor(s, cmd("dns.rrset.delete", OWNER, { name: "ns.sub.stage.nexus.test", type: "A" }, "stage")));
    assert.equal(v.pass, false);
    assert.match(v.reason, /DNS_NS_ADDRESS_MISSING/);
  });
  test("every change raises the zone's SOA serial (the ledger index of the change)", () => {
    const s = dnsState();
    const before = served(s, "stage.nexus.test.").soa.data.serial;
    const i = apply(s, set(OWNER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }]));
    const after = served(s, "stage.nexus.test.").soa.data.serial;
    assert.ok(after > before);
    assert.equal(after, Number(i));
    const j = apply(s, cmd("dns.rrset.delete", OWNER, { name: "www.stage.nexus.test", type: "A" }, "stage"));
    assert.equal(served(s, "stage.nexus.test.").soa.data.serial, Number(j));
  });
});

describe("gate 7: the record count comes from the envelope", () => {
  test("adding beyond dnsRecords is denied; replacing within it passes", () => {
    const s = dnsState(6); // the five default records plus one
    apply(s, set(OWNER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }]));
    const more = set(OWNER, "stage", "www2.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.2" }]);
    assert.deepEqual(failing(s, more), [7]);
    assert.match(GATES[7](ctxFor(s, more)).reason, /dnsRecords=6/);
    assert.deepEqual(failing(s, set(OWNER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.3" }])), []);
  });
  test("lowering dnsRecords below the records in use is denied", () => {
    const s = dnsState();
    const c = cmd("imvu.envelope.change", OWNER, { envelope: envelope({ dnsRecords: 3 }) }, "stage");
    assert.equal(GATES[7](ctxFor(s, c)).pass, false);
    assert.equal(GATES[7](ctxFor(s, cmd("imvu.envelope.change", OWNER, { envelope: envelope({ dnsRecords: 5 }) }, "stage"))).pass, true);
  });
});

describe("gates 10 and 14: a change by anyone but the owner needs its consent and is a redirect", () => {
  test("record commands are marked as redirects in the catalogue and the feed", () => {
    assert.equal(CATALOGUE["dns.rrset.set"].redirects, true);
    assert.equal(CATALOGUE["dns.rrset.delete"].redirects, true);
    const s = dnsState();
    apply(s, set(OWNER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }]));
    assert.ok(s.list("feed", "stage/").some(([, f]) => f.type === "dns.rrset.set" && f.redirect));
  });
  test("an admin repointing the apex A or MX without consent is denied by 10 and 14; with consent it passes", () => {
    const s = dnsState();
    const a = set(ADMIN, "stage", "stage.nexus.test", "A", [{ type: "A", address: "203.0.113.66" }]);
    const mx = set(ADMIN, "stage", "stage.nexus.test", "MX", [{ type: "MX", preference: 1, exchange: "mx.evil.example." }]);
    assert.deepEqual(failing(s, a), [10, 14]);
    assert.deepEqual(failing(s, mx), [10, 14]);
    s.apply([put("consent", DIGEST, { imvu: "stage", owner: OWNER, digest: DIGEST, index: "50" })]);
    assert.deepEqual(failing(s, mx), []);
  });
  test("a delegate within its scope passes; another IMVU's owner is denied at gate 1", () => {
    const s = dnsState();
    assert.deepEqual(failing(s, set(DELEGATE, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }])), []);
    assert.ok(failing(s, set(OTHER, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }])).includes(1));
  });
});

describe("gate 3: custom domains, one domain one IMVU, bound on an observed challenge", () => {
  test("claim, wrong observation denied, right observation binds a zone with defaults", () => {
    const s = dnsState();
    const claimIndex = apply(s, cmd("domain.claim", OWNER, { domain: "example.org" }, "stage"));
    const claim = s.get("domain-claim", "example.org stage");
    assert.equal(claim?.token, challengeToken("example.org", "stage", claimIndex.toString(), DIGEST));
    const wrong = cmd("domain.verify", DNS_SVC, { domain: "example.org", observed: ["nexus-0000"] }, "stage");
    assert.deepEqual(failing(s, wrong), [3]);
    apply(s, cmd("domain.verify", DNS_SVC, { domain: "example.org", observed: ["unrelated", claim?.token ?? ""] }, "stage"));
    assert.equal(s.get("domain", "example.org")?.imvu, "stage");
    assert.equal(s.get("domain-claim", "example.org stage"), undefined);
    const z = served(s, "example.org.");
    assert.ok(z.records.some((r) => r.data.type === "MX"));
    assert.deepEqual(failing(s, set(OWNER, "stage", "www.example.org", "A", [{ type: "A", address: "192.0.2.7" }])), []);
    assert.deepEqual(failing(s, set(OTHER, "other", "www.example.org", "A", [{ type: "A", address: "192.0.2.7" }])), [2, 4, 16]);
  });
  test("a bound domain, an overlapping one or one under the base domain cannot be claimed", () => {
    const s = dnsState();
    const c = apply(s, cmd("domain.claim", OWNER, { domain: "example.org" }, "stage"));
    apply(s, cmd("domain.verify", DNS_SVC, { domain: "example.org", observed: [challengeToken("example.org", "stage", c.toString(), DIGEST)] }, "stage"));
    assert.deepEqual(failing(s, cmd("domain.claim", OTHER, { domain: "example.org" }, "other")), [2, 3, 16]);
    assert.deepEqual(failing(s, cmd("domain.claim", OTHER, { domain: "shop.example.org" }, "other")), [3]);
    assert.deepEqual(failing(s, cmd("domain.claim", OTHER, { domain: "x.nexus.test" }, "other")), [3]);
    assert.deepEqual(failing(s, cmd("domain.claim", OWNER, { domain: "example.org" }, "stage")), [3]);
  });
  test("a domain holding one of the platform's name servers cannot be claimed", () => {
    const s = dnsState();
    const g = s.get("platform", "genesis");
    assert.ok(g);
    s.apply([put("platform", "genesis", { ...g, dns: { nameservers: ["ns1.nexus.test", "ns.example.net"] } })]);
    assert.deepEqual(failing(s, cmd("domain.claim", OWNER, { domain: "example.net" }, "stage")), [3]);
    assert.deepEqual(failing(s, cmd("domain.claim", OWNER, { domain: "example.com" }, "stage")), []);
  });
  test("only the DNS service verifies, and only a pending claim of this IMVU", () => {
    const s = dnsState();
    apply(s, cmd("domain.claim", OWNER, { domain: "example.org" }, "stage"));
    const token = s.get("domain-claim", "example.org stage")?.token ?? "";
    assert.ok(failing(s, cmd("domain.verify", OWNER, { domain: "example.org", observed: [token] }, "stage")).includes(1));
    assert.deepEqual(failing(s, cmd("domain.verify", DNS_SVC, { domain: "example.org", observed: [token] }, "other")), [2, 3, 16]);
  });
});

describe("departure", () => {
  test("a departed IMVU's zones are no longer served nor delegated", () => {
    const s = dnsState();
    apply(s, cmd("imvu.exit.request", OWNER, {}, "stage"));
    const before = served(s, "nexus.test.").soa.data.serial;
    const i = apply(s, cmd("imvu.depart", OWNER, {}, "stage"));
    assert.equal(servedZoneInputs(s).some((z) => z.origin === "stage.nexus.test."), false);
    const p = served(s, "nexus.test.");
    assert.equal(p.cuts.has("stage.nexus.test." as never), false);
    assert.ok(p.soa.data.serial > before);
    assert.equal(p.soa.data.serial, Number(i));
  });
});

describe("platform DNS facts from genesis", () => {
  const genesisBody = (dns?: unknown) => ({
    constitutionVersion: 1, constitutionHash: "0".repeat(64), baseDomain: "nexus.test", inception: { event: {}, signature: "x" }, ...(dns === undefined ? {} : { dns }),
  });
  test("the dns object is optional, and its addresses are checked by the schema", () => {
    assert.equal(BODY_SCHEMAS["platform.genesis"].safeParse(genesisBody()).success, true);
    assert.equal(BODY_SCHEMAS["platform.genesis"].safeParse(genesisBody({ gatewayIpv4: "192.0.2.1", gatewayIpv6: "2001:db8::1" })).success, true);
    assert.equal(BODY_SCHEMAS["platform.genesis"].safeParse(genesisBody({ gatewayIpv4: "192.0.2.300" })).success, false);
    assert.equal(BODY_SCHEMAS["platform.genesis"].safeParse(genesisBody({ gatewayIpv6: "2001:db8::g" })).success, false);
  });
  test("name servers, gateway addresses and mail host from genesis shape every zone; their labels are reserved", () => {
    const s = baseState();
    const g = s.get("platform", "genesis");
    assert.ok(g);
    s.apply([
      put("platform", "genesis", { ...g, dns: { nameservers: ["ns-a.nexus.test", "ns.example.net"], gatewayIpv4: "192.0.2.1", gatewayIpv6: "2001:DB8::1", mailHost: "mx.nexus.test" } }),
      { table: "imvu", key: "stage", value: undefined },
    ]);
    apply(s, cmd("imvu.create", OWNER, { name: "stage", jurisdiction: "DE", class: "imvu", envelope: envelope() }, "stage"));
    const z = served(s, "stage.nexus.test.");
    assert.equal(z.soa.data.mname, "ns-a.nexus.test.");
    assert.deepEqual(z.records.filter((r) => r.name === z.origin && r.data.type === "NS").map((r) => (r.data.type === "NS" ? r.data.host : "")).sort(), ["ns-a.nexus.test.", "ns.example.net."]);
    assert.ok(z.records.some((r) => r.data.type === "AAAA" && r.data.address === "2001:db8::1"));
    assert.ok(z.records.some((r) => r.data.type === "MX" && r.data.exchange === "mx.nexus.test."));
    const p = served(s, "nexus.test.");
    assert.ok(p.records.some((r) => r.name === "ns-a.nexus.test." && r.data.type === "A" && r.data.address === "192.0.2.1"));
    for (const name of ["ns-a", "mx"]) {
      assert.deepEqual(failing(s, cmd("imvu.create", OTHER, { name, jurisdiction: "DE", class: "imvu", envelope: envelope() }, name)), [3], name);
    }
  });
});
