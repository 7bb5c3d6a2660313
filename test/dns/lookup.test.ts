/** Pure lookup: RFC 4592 §2.2.1's wildcard examples, chains, loops, delegations, DS at a cut. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { lookup, CNAME_CHAIN_MAX, RCODE, type LookupResult } from "../../src/services/dns/lookup.ts";
import { toName } from "../../src/services/dns/name.ts";
import { TYPE } from "../../src/services/dns/rdata.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { parseZoneFile } from "../../src/services/dns/zonefile.ts";

// RFC 4592 §2.2.1, with SOA and SRV data filled in.
const RFC4592 = `$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 3600 600 86400 300
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host1.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
`;

function zones(): ZoneStore {
  const s = new ZoneStore();
  s.put(parseZoneFile(RFC4592, { origin: "example." }).zone);
  return s;
}

function ask(s: ZoneStore, name: string, type: number): LookupResult {
  return lookup(s, toName(name), type);
}

test("RFC 4592 §2.2.1: which queries the wildcard answers", () => {
  const s = zones();
  const mx = ask(s, "host3.example.", TYPE.MX);
  assert.equal(mx.kind, "answer");
  assert.deepEqual(mx.answer.map((r) => [r.name, r.data]), [["host3.example.", { type: "MX", preference: 10, exchange: "host1.example." }]]);
  assert.deepEqual(mx.additional.flatMap((a) => a.records.map((r) => r.name)), ["host1.example."]);
  assert.equal(ask(s, "host3.example.", TYPE.A).kind, "nodata");
  assert.equal(ask(s, "foo.bar.example.", TYPE.TXT).answer[0]?.name, "foo.bar.example.");
  assert.equal(ask(s, "host1.example.", TYPE.MX).kind, "nodata", "an existing name is not covered");
  assert.equal(ask(s, "sub.*.example.", TYPE.MX).kind, "nodata", "nor is the literal sub.*");
  assert.equal(ask(s, "_telnet._tcp.host1.example.", TYPE.SRV).kind, "nxdomain", "the closest encloser _tcp.host1 is an empty non-terminal");
  assert.equal(ask(s, "ghost.*.example.", TYPE.MX).kind, "nxdomain", "no *.*.example");
  const ref = ask(s, "host.subdel.example.", TYPE.A);
  assert.equal(ref.kind, "referral");
  assert.equal(ref.aa, false);
  assert.deepEqual(ref.authority.map((r) => r.data), [{ type: "NS", host: "ns.example.com." }, { type: "NS", host: "ns.example.net." }]);
  const nx = ask(s, "_telnet._tcp.host1.example.", TYPE.SRV);
  assert.equal(nx.rcode, RCODE.NXDOMAIN);
  assert.equal(nx.authority[0]?.data.type, "SOA");
  assert.equal(nx.authority[0]?.ttl, 300, "RFC 2308 §3: min(SOA TTL, MINIMUM)");
});

test("DS at a delegation is answered by the parent (NODATA), not referred", () => {
  const r = ask(zones(), "subdel.example.", TYPE.DS);
  assert.equal(r.kind, "nodata");
  assert.ok(r.aa);
});

test("refused outside the zones; the longest zone wins", () => {
  const s = zones();
  assert.equal(ask(s, "example.org.", TYPE.A).kind, "refused");
  s.put(
    parseZoneFile(`$ORIGIN subdel.example.\n@ 3600 SOA ns.example.com. h.example. 1 1 1 1 60\n@ 3600 NS ns.example.com.\nhost 3600 A 192.0.2.9\n`, {
      origin: "subdel.example.",
    }).zone,
  );
  const r = ask(s, "host.subdel.example.", TYPE.A);
  assert.equal(r.kind, "answer");
  assert.equal(r.zone, "subdel.example.");
});

test("CNAME chains: loops and long chains stop, wildcard CNAMEs chain, chains into a delegation refer", () => {
  const lines = ["$ORIGIN c.example.", "@ 3600 SOA ns h 1 1 1 1 60", "@ 3600 NS ns", "ns 3600 A 192.0.2.1", "loop1 3600 CNAME loop2", "loop2 3600 CNAME loop1"];
  for (let i = 0; i < CNAME_CHAIN_MAX + 3; i++) lines.push(`c${i} 3600 CNAME c${i + 1}`);
  lines.push(`c${CNAME_CHAIN_MAX + 3} 3600 A 192.0.2.2`, "*.w 3600 CNAME ns", "d 3600 CNAME x.del", "del 3600 NS ns.del", "ns.del 3600 A 192.0.2.3");
  const s = new ZoneStore();
  s.put(parseZoneFile(lines.join("\n"), { origin: "c.example." }).zone);
  const loop = ask(s, "loop1.c.example.", TYPE.A);
  assert.equal(loop.rcode, RCODE.NOERROR);
  assert.equal(loop.answer.length, 2);
  assert.equal(ask(s, "c0.c.example.", TYPE.A).answer.length, CNAME_CHAIN_MAX);
  const w = ask(s, "x.w.c.example.", TYPE.A);
  assert.deepEqual(w.answer.map((r) => `${r.name} ${r.data.type}`), ["x.w.c.example. CNAME", "ns.c.example. A"]);
  const d = ask(s, "d.c.example.", TYPE.A);
  assert.deepEqual(d.answer.map((r) => r.data.type), ["CNAME"]);
  assert.deepEqual(d.authority.map((r) => r.data.type), ["NS"]);
  assert.ok(d.aa);
  assert.equal(ask(s, "d.c.example.", TYPE.CNAME).answer.length, 1, "qtype CNAME stops at the CNAME");
  assert.equal(ask(s, "c.example.", TYPE.ANY).answer.length, 1, "ANY: one RRset (RFC 8482)");
});
