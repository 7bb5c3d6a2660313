/**
 * DNS wired to the ledger, end to end: signed commands through the pipeline change what the
 * authoritative server answers (dig is the oracle) within a second; every record type; negative
 * answers with the SOA; SOA serials from the ledger; named-checkzone accepts every exported zone;
 * a custom domain is bound only after its challenge is observed through the resolver; hostile
 * commands are recorded as denied with their gates and change nothing served; usage reports.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import type { Receipt } from "../../src/core/pipeline/pipeline.ts";
import { exportZone } from "../../src/services/dns/zonefile.ts";
import { startDnsServer, type DnsServer } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { toAbsoluteName } from "../../src/services/dns/name.ts";
import { zoneToInput } from "../../src/services/dns/zone.ts";
import { zonesFromState } from "../../src/services/dns/projection.ts";
import { ledgerEntries, replay } from "../../src/core/pipeline/replay.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";
import { act, expectApplied, expectDenied, person } from "../pipeline/support.ts";
import { creatorWithImvu, setRRset, startDns, type DnsInstallation } from "./integration-support.ts";
import { dig, run, tempDir, waitFor } from "./support.ts";

const SECOND_MS = 1_000;

describe("DNS from the ledger", () => {
  let d: DnsInstallation;
  let upstream: DnsServer;
  const upstreamZones = new ZoneStore();
  let owner: LocalIdentity;
  let other: LocalIdentity;

  before(async () => {
    // The "internet" the resolver forwards to: a second server holding example.org (negative TTL 1 s).
    upstreamZones.put({
      origin: "example.org.",
      soa: { mname: "ns.example.org.", rname: "hostmaster.example.org.", serial: 1, refresh: 3600, retry: 600, expire: 604800, minimum: 1, ttl: 30 },
      records: [{ name: "@", ttl: 30, data: { type: "NS", host: "ns.example.net." } }],
    });
    upstream = await startDnsServer({ port: 0, zones: upstreamZones });
    d = await startDns({ config: { upstreams: [{ host: "127.0.0.1", port: upstream.port }] } });
    owner = (await creatorWithImvu(d, "stage")).owner;
    other = (await creatorWithImvu(d, "other")).owner;
  });
  after(async () => {
    await d?.stop();
    await upstream?.close();
  });

  test("an IMVU created by a signed command is answered by dig within a second, with its default records", async () => {
    const t0 = Date.now();
    await creatorWithImvu(d, "fresh");
    await waitFor(async () => (await dig(d.port, "fresh.nexus.test.", "A")).answer.some((l) => l.endsWith("A 127.0.0.1")), SECOND_MS, "the new zone");
    assert.ok(Date.now() - t0 < 2 * SECOND_MS);
    const soa = await dig(d.port, "fresh.nexus.test.", "SOA");
    assert.equal(soa.status, "NOERROR");
    assert.ok(soa.flags.includes("aa"));
    assert.match(soa.answer[0] ?? "", /SOA ns1\.nexus\.test\. hostmaster\.nexus\.test\. \d+ 3600 600 604800 300$/);
    for (const [name, type, want] of [
      ["fresh.nexus.test.", "AAAA", "AAAA ::1"],
      ["fresh.nexus.test.", "MX", "MX 10 mail.nexus.test."],
      ["fresh.nexus.test.", "TXT", 'TXT "v=spf1 mx -all"'],
      ["_dmarc.fresh.nexus.test.", "TXT", 'TXT "v=DMARC1; p=quarantine"'],
      ["fresh.nexus.test.", "NS", "NS ns1.nexus.test."],
    ] as const) {
      const r = await dig(d.port, name, type);
      assert.ok(r.answer.some((l) => l.endsWith(want)), `${name} ${type}: ${r.answer.join(" | ")}`);
    }
    // The platform zone serves its own hosts and delegates to the IMVU zone.
    assert.ok((await dig(d.port, "ns1.nexus.test.", "A")).answer.some((l) => l.endsWith("A 127.0.0.1")));
    const ref = await dig(d.port, "fresh.nexus.test.", "NS", "+norecurse");
    assert.equal(ref.status, "NOERROR");
  });

  test("every record type set through the pipeline is answered by dig, and the serial increases each time", async () => {
    const cases: [string, string, unknown[], string, string][] = [
      ["www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.10" }], "A", "A 192.0.2.10"],
      ["www.stage.nexus.test", "AAAA", [{ type: "AAAA", address: "2001:db8::10" }], "AAAA", "AAAA 2001:db8::10"],
      ["alias.stage.nexus.test", "CNAME", [{ type: "CNAME", target: "www.stage.nexus.test." }], "A", "CNAME www.stage.nexus.test."],
      ["stage.nexus.test", "MX", [{ type: "MX", preference: 5, exchange: "mx.example.net." }], "MX", "MX 5 mx.example.net."],
      ["note.stage.nexus.test", "TXT", [{ type: "TXT", text: ["hello world"] }], "TXT", 'TXT "hello world"'],
      ["_sip._tcp.stage.nexus.test", "SRV", [{ type: "SRV", priority: 1, weight: 2, port: 5060, target: "www.stage.nexus.test." }], "SRV", "SRV 1 2 5060 www.stage.nexus.test."],
      ["stage.nexus.test", "CAA", [{ type: "CAA", flags: 0, tag: "issue", value: "letsencrypt.org" }], "CAA", 'CAA 0 issue "letsencrypt.org"'],
      ["1.2.stage.nexus.test", "PTR", [{ type: "PTR", target: "www.stage.nexus.test." }], "PTR", "PTR www.stage.nexus.test."],
    ];
    let serial = Number((await dig(d.port, "stage.nexus.test.", "SOA")).answer[0]?.split(" ")[6]);
    for (const [name, type, values, qtype, want] of cases) {
      const r = await expectApplied(d.inst, setRRset(d, owner, "stage", name, type, values, 300));
      const t0 = Date.now();
      await waitFor(async () => (await dig(d.port, `${name}.`, qtype)).answer.some((l) => l.endsWith(want)), SECOND_MS, `${name} ${type}`);
      assert.ok(Date.now() - t0 <= SECOND_MS + 200);
      const next = Number((await dig(d.port, "stage.nexus.test.", "SOA")).answer[0]?.split(" ")[6]);
      assert.ok(next > serial, `serial ${next} after ${serial}`);
      assert.equal(next, Number(r.index), "the serial is the ledger index of the change");
      serial = next;
    }
    // NS below the apex delegates: a referral, not authoritative.
    await expectApplied(d.inst, setRRset(d, owner, "stage", "sub.stage.nexus.test", "NS", [{ type: "NS", host: "ns.example.net." }]));
    const ref = await dig(d.port, "host.sub.stage.nexus.test.", "A", "+norecurse");
    assert.equal(ref.status, "NOERROR");
    assert.ok(!ref.flags.includes("aa"));
    assert.ok(ref.authority.some((l) => l.endsWith("NS ns.example.net.")));
    // Delete: the RRset disappears (NODATA).
    await expectApplied(d.inst, act(d.inst, owner, { type: "dns.rrset.delete", imvu: "stage", body: { name: "note.stage.nexus.test", type: "TXT" } }));
    await waitFor(async () => (await dig(d.port, "note.stage.nexus.test.", "TXT")).status === "NXDOMAIN", SECOND_MS, "the deletion");
  });

  test("NXDOMAIN and NODATA carry the zone's SOA in the authority section", async () => {
    const nx = await dig(d.port, "nope.stage.nexus.test.", "A");
    assert.equal(nx.status, "NXDOMAIN");
    assert.ok(nx.flags.includes("aa"));
    assert.ok(nx.authority.some((l) => l.includes("SOA ns1.nexus.test.")));
    const nodata = await dig(d.port, "_dmarc.stage.nexus.test.", "A");
    assert.equal(nodata.status, "NOERROR");
    assert.equal(nodata.answer.length, 0);
    assert.ok(nodata.authority.some((l) => l.startsWith("stage.nexus.test. 300 IN SOA")), nodata.authority.join(" | "));
    assert.equal((await dig(d.port, "www.example.com.", "A")).status, "REFUSED");
  });

  test("named-checkzone accepts every zone the projection serves, exported as a master file", async () => {
    const t = tempDir("checkzone");
    try {
      const zones = d.dns.store.all();
      assert.ok(zones.length >= 3);
      for (const z of zones) {
        const file = join(t.dir, `${z.origin}zone`);
        writeFileSync(file, exportZone(z));
        const r = await run("named-checkzone", ["-i", "local", z.origin, file]);
        assert.equal(r.code, 0, `${z.origin}: ${r.stdout}${r.stderr}`);
      }
      assert.equal(zonesFromState(d.inst.platform.state).length, zones.length, "the store serves exactly the projection");
    } finally {
      t.remove();
    }
  });

  test("custom domain: claim → TXT observed through the resolver → bound to the IMVU and served", async () => {
    const r = await expectApplied(d.inst, act(d.inst, owner, { type: "domain.claim", imvu: "stage", body: { domain: "example.org" } }));
    const claim = d.inst.platform.state.get("domain-claim", "example.org stage");
    assert.ok(claim !== undefined && claim.token.startsWith("nexus-"));
    const early = await d.dns.verifyNow("stage", "example.org");
    assert.equal(early.status, "pending", "nothing is bound before the challenge is published");
    assert.equal(d.inst.platform.state.get("domain", "example.org"), undefined);
    // The owner publishes the challenge where the domain lives now (the upstream).
    upstreamZones.put({
      ...zoneToInput(upstreamZones.get(toAbsoluteName("example.org")) ?? assert.fail("upstream zone")),
      records: [
        { name: "example.org.", ttl: 30, data: { type: "NS", host: "ns.example.net." } },
        { name: "_nexus-challenge.example.org.", ttl: 30, data: { type: "TXT", text: [claim.token] } },
      ],
    }, { bumpSerial: true });
    await waitFor(() => d.inst.platform.state.get("domain", "example.org")?.imvu === "stage", 10 * SECOND_MS, "the verifier to bind example.org");
    const verifyEntry = d.inst.platform.state.list("feed", "stage/").find(([, f]) => f.type === "domain.verify" && f.outcome === "applied");
    assert.ok(verifyEntry && BigInt(verifyEntry[1].index) > BigInt(r.index));
    await waitFor(async () => (await dig(d.port, "example.org.", "SOA")).answer.some((l) => l.includes("SOA ns1.nexus.test.")), SECOND_MS, "the custom zone");
    await expectApplied(d.inst, setRRset(d, owner, "stage", "www.example.org", "A", [{ type: "A", address: "192.0.2.77" }]));
    await waitFor(async () => (await dig(d.port, "www.example.org.", "A")).answer.some((l) => l.endsWith("A 192.0.2.77")), SECOND_MS, "www.example.org");
    // One domain, one IMVU: the other IMVU cannot claim it or write into it.
    await expectDenied(d.inst, act(d.inst, other, { type: "domain.claim", imvu: "other", body: { domain: "example.org" } }), [2, 3, 16]);
    await expectDenied(d.inst, setRRset(d, other, "other", "www.example.org", "A", [{ type: "A", address: "203.0.113.1" }]), [2, 4, 16]);
  });

  test("hostile commands are recorded as denied with their gates, and nothing served changes", async () => {
    const admin = await person(d.inst, "admin");
    await expectApplied(d.inst, d.inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: admin.id } }));
    const tiny = await creatorWithImvu(d, "tiny", { dnsRecords: 5 });
    const served = (): string => d.dns.store.all().map((z) => exportZone(z)).join("\n");
    const sizeBefore = d.inst.platform.ledger.size;
    const servedBefore = served();
    const hostile: [string, Promise<Receipt>, number[]][] = [
      ["an IMVU writes into another's zone", setRRset(d, other, "other", "www.stage.nexus.test", "A", [{ type: "A", address: "203.0.113.1" }]), [2, 4, 16]],
      ["an admin repoints the apex A without consent", setRRset(d, admin, "stage", "stage.nexus.test", "A", [{ type: "A", address: "203.0.113.66" }]), [10, 14]],
      ["an admin repoints the MX without consent", setRRset(d, admin, "stage", "stage.nexus.test", "MX", [{ type: "MX", preference: 1, exchange: "mx.evil.example." }]), [10, 14]],
      ["apex CNAME", setRRset(d, owner, "stage", "stage.nexus.test", "CNAME", [{ type: "CNAME", target: "evil.example." }]), [4]],
      ["CNAME beside data", setRRset(d, owner, "stage", "www.stage.nexus.test", "CNAME", [{ type: "CNAME", target: "evil.example." }]), [4]],
      ["out-of-zone name", setRRset(d, owner, "stage", "www.example.com", "A", [{ type: "A", address: "192.0.2.1" }]), [4]],
      ["TTL out of bounds", setRRset(d, owner, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }], 1), [4]],
      ["apex NS taken over", setRRset(d, owner, "stage", "stage.nexus.test", "NS", [{ type: "NS", host: "ns.evil.example." }]), [4]],
      ["record count beyond the envelope", setRRset(d, tiny.owner, "tiny", "www.tiny.nexus.test", "A", [{ type: "A", address: "192.0.2.1" }]), [7]],
    ];
    for (const [what, p, gates] of hostile) {
      const r = await expectDenied(d.inst, p, gates).catch((e: unknown) => assert.fail(`${what}: ${String(e)}`));
      const feedImvu = what.startsWith("an IMVU writes") ? "other" : what.startsWith("record count") ? "tiny" : "stage";
      const item = d.inst.platform.state.get("feed", `${feedImvu}/${r.index.padStart(20, "0")}`);
      assert.equal(item?.outcome, "denied", `${what} is in the feed`);
      assert.equal(item?.redirect, true, `${what} is flagged as a redirect attempt`);
    }
    assert.equal(d.inst.platform.ledger.size, sizeBefore + BigInt(hostile.length), "every attempt was recorded");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(served(), servedBefore, "nothing served changed");
    assert.ok((await dig(d.port, "stage.nexus.test.", "A")).answer.some((l) => l.endsWith("A 127.0.0.1")));
  });

  test("query metering becomes usage reports of the DNS service, idempotent by interval", async () => {
    for (let i = 0; i < 3; i++) await dig(d.port, "stage.nexus.test.", "A");
    const n = await d.dns.reportUsage();
    assert.ok(n >= 1);
    const usage = d.inst.platform.state.list("usage", "stage/dns/");
    assert.ok(usage.length >= 1);
    const last = usage[usage.length - 1]?.[1];
    assert.ok(Number(last?.metrics["queries"]) >= 3, JSON.stringify(last));
    assert.equal(await d.dns.reportUsage(), 0, "no queries since: nothing reported");
  });

  test("replaying the ledger reproduces the DNS projection (zones, RRsets, claims, serials) byte for byte", async () => {
    const r = await replay(ledgerEntries(d.inst.platform.ledger), identityVerifiers);
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.digest, d.inst.platform.pipeline.stateDigest());
    assert.deepEqual(zonesFromState(r.state), zonesFromState(d.inst.platform.state));
  });
});
