/**
 * The hostile IMVU (CONSTITUTION.md, "Hostile actors"), end to end: a running stack (DNS, compute
 * on podman, gateway, mail), two creators each with an IMVU, a workload, a public route and a
 * mailbox, and the real CLI. Bob (IMVU beta) exceeds quotas, changes Alice's records, reads her
 * mail, routes her host, forges revenue, replays an old command and borrows her key. Each attempt
 * is refused: recorded as denied naming its gate (and shown in Alice's feed when it named her
 * IMVU), or, when it is not even authentic, refused before the gates with a typed error and no
 * trace. Nothing Alice serves changes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { canonicalize } from "../../src/core/crypto/index.ts";
import { commandPayload, newNonce, signPayload } from "../../src/core/pipeline/sign.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { runPython } from "../mail/support-imap.ts";
import { swaks } from "../mail/support-smtp.ts";
import {
  answer, appendedBy, cleanup, cli, denied, deniedExactly, entryAt, feed, identityOf, must, person, post, signAs, signedGet, siteRootfs, startSite, until, viaGateway,
  type Site,
} from "./support.ts";

const ALICE_MAIL = "creator@alpha.nexus.test";
const BOB_MAIL = "fan@beta.nexus.test";

const IMAP_LOGIN = String.raw`
import imaplib, json, os, ssl
def login(user, pw):
    c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    c.starttls(ssl_context=ctx)
    try:
        c.login(user, pw)
    except imaplib.IMAP4.error as e:
        return {"login": "NO"}
    typ, data = c.select("INBOX")
    n = int(data[0])
    typ, boxes = c.list()
    c.logout()
    return {"login": "OK", "exists": n, "boxes": [b.decode() for b in boxes]}
print(json.dumps([login(os.environ["VICTIM"], os.environ["PW"]), login(os.environ["SELF"], os.environ["PW"])]))
`;

describe("hostile IMVU", () => {
  let site: Site;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let bobPassword: string;

  before(async () => {
    site = await startSite("nexus-hostile-imvu-", { compute: true });
    alice = person(site.api, "alice");
    bob = person(site.api, "bob");
    await Promise.all([
      must(["imvu", "create", "--name", "alpha", "--bare", "--mailboxes", "1"], alice),
      must(["imvu", "create", "--name", "beta", "--bare"], bob),
    ]);
    const cmd = ["--port", "8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www"];
    await Promise.all([
      must(["compute", "deploy", "--imvu", "alpha", "--name", "alphaweb", "--rootfs", siteRootfs("alpha site"), ...cmd], alice),
      must(["compute", "deploy", "--imvu", "beta", "--name", "betaweb", "--rootfs", siteRootfs("beta site"), ...cmd], bob),
    ]);
    const [, , , bobMail] = await Promise.all([
      must(["net", "route", "add", "--imvu", "alpha", "--host", "alpha.nexus.test", "--to", "alphaweb:8080"], alice),
      must(["net", "route", "add", "--imvu", "beta", "--host", "beta.nexus.test", "--to", "betaweb:8080"], bob),
      must(["mail", "add", "--imvu", "alpha", ALICE_MAIL], alice),
      must(["mail", "add", "--imvu", "beta", BOB_MAIL], bob),
      must(["dns", "set", "--imvu", "alpha", "www", "A", "192.0.2.10"], alice),
    ]);
    bobPassword = /^password: (\S+)$/m.exec(bobMail)?.[1] ?? "";
    for (const [host, text] of [["alpha.nexus.test", "alpha site"], ["beta.nexus.test", "beta site"]] as const) {
      await until(`${host} served`, async () => ((await viaGateway(site, host)).body.includes(text) ? true : undefined), 90_000, 250);
    }
  });

  after(async () => {
    await site?.done();
    cleanup();
  });

  test("exceeding a quota is denied by gate 7 and recorded: a mailbox, DNS records and a route beyond the envelope", async () => {
    await denied(["mail", "add", "--imvu", "alpha", "second@alpha.nexus.test"], alice, [7]);
    const show = JSON.parse(await must(["imvu", "show", "alpha", "--json"], alice)) as { envelope: Record<string, unknown> };
    const shrink = (over: Record<string, unknown>) => post(site, signAs(alice, { type: "imvu.envelope.change", imvu: "alpha", body: { envelope: { ...show.envelope, ...over } } }).json);
    const below = deniedExactly(await shrink({ dnsRecords: 1 }), [7]);
    const used = Number(/DNS records in use (\d+)/.exec(below.gates.find((g) => g.gate === 7)?.reason ?? "")?.[1]);
    assert.ok(used > 1, `the denial says how many records are in use: ${JSON.stringify(below.gates)}`);
    const tight = await shrink({ dnsRecords: used + 1, routes: 1 });
    assert.equal(tight.receipt?.outcome, "applied", JSON.stringify(tight.receipt?.gates));
    await must(["dns", "set", "--imvu", "alpha", "one", "TXT", "fits"], alice);
    await denied(["dns", "set", "--imvu", "alpha", "two", "TXT", "does not fit"], alice, [7]);
    await denied(["net", "route", "add", "--imvu", "alpha", "--host", "alpha.nexus.test", "--path", "/more", "--to", "alphaweb:8080"], alice, [7]);
    assert.deepEqual(await answer(site, "two.alpha.nexus.test", "TXT"), [], "the denied record is not served");
  });

  test("changing another IMVU's records is denied (gates 2, 4, 16 from its own IMVU; gate 1 on the victim's), shown in the victim's feed, and dig still answers the owner's value", async () => {
    const own = await denied(["dns", "set", "--imvu", "beta", "www.alpha.nexus.test.", "A", "203.0.113.66"], bob, [2, 4, 16]);
    assert.equal((await entryAt(site, own.index)).outcome, "denied");
    const r = await post(site, signAs(bob, { type: "dns.rrset.set", imvu: "alpha", body: { name: "www.alpha.nexus.test.", type: "A", values: [{ type: "A", address: "203.0.113.66" }] } }).json);
    assert.equal(r.receipt?.outcome, "denied");
    assert.ok(r.receipt.gates.some((g) => g.gate === 1 && !g.pass), JSON.stringify(r.receipt.gates));
    const seen = (await feed(alice, "alpha")).find((f) => f.index === r.receipt?.index);
    assert.ok(seen, "the attempt on alpha is in alpha's feed");
    assert.deepEqual({ outcome: seen.outcome, redirect: seen.redirect, actor: seen.actor }, { outcome: "denied", redirect: true, actor: identityOf(bob).id });
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"]);
  });

  test("another IMVU's mail stays unreadable: IMAP refuses the intruder, and API reads of its mailboxes and feed are the same 404 as for no IMVU", async () => {
    const sent = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ALICE_MAIL, "--h-Subject", "for alice only"]);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    const [victim, self] = (await runPython(IMAP_LOGIN, { PORT: String(site.ports.imap), VICTIM: ALICE_MAIL, SELF: BOB_MAIL, PW: bobPassword })) as [{ login: string }, { login: string; exists: number; boxes: string[] }];
    assert.equal(victim.login, "NO", "bob's password does not open alice's mailbox");
    assert.equal(self.login, "OK");
    assert.equal(self.exists, 0, "bob's own INBOX holds none of alice's mail");
    assert.ok(!self.boxes.some((b) => b.includes("alpha")), `no mailbox of alpha is listed: ${self.boxes.join(" | ")}`);
    for (const path of ["/v1/mail/mailboxes?imvu=%s", "/v1/imvus/%s/feed", "/v1/imvus/%s", "/v1/compute/imvus/%s/workloads", "/v1/imvus/%s/dns"]) {
      const theirs = await signedGet(site, bob, path.replace("%s", "alpha"));
      const none = await signedGet(site, bob, path.replace("%s", "nosuch"));
      assert.deepEqual({ status: theirs.status, code: theirs.code }, { status: 404, code: "NOT_FOUND" }, path);
      assert.deepEqual({ status: none.status, code: none.code }, { status: 404, code: "NOT_FOUND" }, path);
    }
    const list = await cli(["mail", "list", "--json"], bob);
    assert.equal(list.code, 0, list.stderr);
    assert.doesNotMatch(list.stdout, /alpha/, "bob's mailbox list shows only his own");
  });

  test("routing a host it does not own (gate 8) or to another IMVU's workload (gate 2) is denied and the gateway keeps serving each site its own workload", async () => {
    await denied(["net", "route", "add", "--imvu", "beta", "--host", "alpha.nexus.test", "--path", "/steal", "--to", "betaweb:8080"], bob, [8]);
    await denied(["net", "route", "add", "--imvu", "beta", "--host", "beta.nexus.test", "--path", "/x", "--to", "alphaweb:8080"], bob, [2]);
    const r = await post(site, signAs(bob, { type: "net.route.add", imvu: "alpha", body: { route: "hijack", host: "alpha.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "alphaweb", port: 9999 } } }).json);
    assert.equal(r.receipt?.outcome, "denied");
    assert.ok((await feed(alice, "alpha")).some((f) => f.index === r.receipt?.index && f.redirect), "the attempt on alpha's route is in alpha's feed as a redirect");
    for (const path of ["/", "/steal", "/x"]) assert.match((await viaGateway(site, "alpha.nexus.test", path)).body, /alpha site/, `alpha.nexus.test${path} is alpha's`);
    assert.match((await viaGateway(site, "beta.nexus.test", "/x")).body, /beta site/, "beta cannot reach alpha's workload through its own host");
  });

  test("a creator cannot forge revenue: a revenue.record signed with its own key is denied by gate 1, recorded in its feed, and no balance moves", async () => {
    const r = await post(site, signAs(alice, { type: "revenue.record", imvu: "alpha", body: { class: "imvu", currency: "EUR", amount: "100000", source: "self", eventId: "evt_forged" } }).json);
    assert.equal(r.receipt?.outcome, "denied");
    assert.ok(r.receipt.gates.some((g) => g.gate === 1 && !g.pass), JSON.stringify(r.receipt.gates));
    assert.ok((await feed(alice, "alpha")).some((f) => f.index === r.receipt?.index && f.type === "revenue.record" && f.outcome === "denied"));
    assert.equal(site.stack.platform.state.get("revenue-account", "alpha/imvu/EUR"), undefined, "no revenue was booked");
    const viaCli = await cli(["revenue", "record", "--imvu", "alpha", "--amount", "1000", "--currency", "EUR", "--source", "self", "--event-id", "evt_cli"], alice);
    assert.notEqual(viaCli.code, 0, "the creator's CLI holds no revenue-source key");
  });

  test("a replayed signed command (same nonce) is refused with PIPELINE_NONCE_REUSED, an altered or stale copy does not authenticate, and none leaves a trace", async () => {
    const original = signAs(alice, { type: "dns.rrset.set", imvu: "alpha", body: { name: "one.alpha.nexus.test.", type: "TXT", values: [{ type: "TXT", text: ["first"] }] } });
    assert.equal((await post(site, original.json)).receipt?.outcome, "applied");
    const size = site.stack.platform.ledger.size;
    assert.deepEqual(await post(site, original.json), { status: 409, code: "PIPELINE_NONCE_REUSED" });
    const payload = JSON.parse(Buffer.from(original.envelope.payload, "base64").toString("utf8")) as Record<string, unknown>;
    const altered = { ...original.envelope, payload: Buffer.from(canonicalize({ ...payload, body: { name: "one.alpha.nexus.test.", type: "TXT", values: [{ type: "TXT", text: ["evil"] }] } })).toString("base64") };
    assert.equal((await post(site, JSON.stringify(altered))).code, "PIPELINE_BAD_SIGNATURE");
    const stale = signPayload(commandPayload({ type: "dns.rrset.set", imvu: "alpha", body: { name: "one.alpha.nexus.test.", type: "TXT", values: [{ type: "TXT", text: ["old"] }] } }, identityOf(alice).id, new Date(Date.now() - 3_600_000), newNonce()), signerOf(identityOf(alice)));
    assert.deepEqual(await post(site, stale.json), { status: 400, code: "PIPELINE_STALE" });
    assert.deepEqual(await appendedBy(site, size, [identityOf(alice).id, identityOf(bob).id]), [], "refused before the gates: nothing appended");
    assert.deepEqual(await answer(site, "one.alpha.nexus.test", "TXT"), ['"first"']);
  });

  test("another identity's key: the owner's name with the intruder's signature is refused, a signature attributed to the owner's key is denied by gate 17, and the owner's inception cannot be re-registered", async () => {
    const a = identityOf(alice);
    const b = signerOf(identityOf(bob));
    const size = site.stack.platform.ledger.size;
    const asAlice = signPayload(commandPayload({ type: "dns.rrset.set", imvu: "alpha", body: { name: "www.alpha.nexus.test.", type: "A", values: [{ type: "A", address: "203.0.113.66" }] } }, a.id, new Date(), newNonce()), b);
    assert.equal((await post(site, JSON.stringify({ ...asAlice.envelope, signatures: [{ keyid: `${a.id}#0`, sig: asAlice.envelope.signatures[0]?.sig ?? "" }] }))).code, "PIPELINE_BAD_SIGNATURE");
    assert.equal((await post(site, signPayload(commandPayload({ type: "identity.inception", body: { inception: a.kel[0] } }, a.id, new Date(), newNonce()), b).json)).code, "PIPELINE_IDENTITY_EXISTS");
    assert.deepEqual(await appendedBy(site, size, [a.id, identityOf(bob).id]), [], "not authentic: nothing appended");
    const own = signAs(bob, { type: "dns.rrset.set", imvu: "beta", body: { name: "www.beta.nexus.test.", type: "A", values: [{ type: "A", address: "192.0.2.20" }] } });
    const borrowed = { ...own.envelope, signatures: [{ keyid: `${a.id}#0`, sig: own.envelope.signatures[0]?.sig ?? "" }] };
    const r = deniedExactly(await post(site, JSON.stringify(borrowed)), [17]);
    assert.equal((await entryAt(site, r.index)).actor, identityOf(bob).id, "recorded, attributed to its real signer");
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"]);
  });

  test("after every attack the whole ledger, denials included, verifies from the victim's CLI", async () => {
    const v = await cli(["ledger", "verify", "--json", "--api", site.api, "--verifier-key", site.stack.platform.verifierKey], alice);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal((JSON.parse(v.stdout) as { ok: boolean }).ok, true);
  });
});
