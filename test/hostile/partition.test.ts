/**
 * Network partition (CONSTITUTION.md, "Hostile actors"), end to end: on a running stack with two
 * IMVUs, the DNS service, then the mail service, then one IMVU's workload go down. The rest keep
 * serving (the gateway routes, SMTP accepts, DNS answers); commands submitted meanwhile are
 * recorded; on recovery each service catches up from the ledger (a record set during the outage
 * is answered, a mailbox added during it receives mail, mail queued before it is delivered exactly
 * once), and nothing is double-counted (a processor's retried revenue event, usage intervals).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { swaks } from "../mail/support-smtp.ts";
import { answer, cleanup, cli, denied, must, person, siteRootfs, startSite, until, viaGateway, type Site } from "./support.ts";

const ALICE_MAIL = "creator@alpha.nexus.test";
const PODMAN = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

describe("network partition", () => {
  let site: Site;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let password: string;

  before(async () => {
    site = await startSite("nexus-hostile-partition-", { compute: true });
    alice = person(site.api, "alice");
    bob = person(site.api, "bob");
    await Promise.all([must(["imvu", "create", "--name", "alpha", "--bare"], alice), must(["imvu", "create", "--name", "beta", "--bare"], bob)]);
    const cmd = ["--port", "8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www"];
    await Promise.all([
      must(["compute", "deploy", "--imvu", "alpha", "--name", "web", "--rootfs", siteRootfs("alpha site"), ...cmd], alice),
      must(["compute", "deploy", "--imvu", "beta", "--name", "web", "--rootfs", siteRootfs("beta site"), ...cmd], bob),
    ]);
    const [mail] = await Promise.all([
      must(["mail", "add", "--imvu", "alpha", ALICE_MAIL], alice),
      must(["net", "route", "add", "--imvu", "alpha", "--host", "alpha.nexus.test", "--to", "web:8080"], alice),
      must(["net", "route", "add", "--imvu", "beta", "--host", "beta.nexus.test", "--to", "web:8080"], bob),
      must(["dns", "set", "--imvu", "alpha", "www", "A", "192.0.2.10"], alice),
    ]);
    password = /^password: (\S+)$/m.exec(mail)?.[1] ?? "";
    for (const [host, text] of [["alpha.nexus.test", "alpha site"], ["beta.nexus.test", "beta site"]] as const) {
      await until(`${host} served`, async () => ((await viaGateway(site, host)).body.includes(text) ? true : undefined), 90_000, 250);
    }
  });

  after(async () => {
    await site?.done();
    cleanup();
  });

  test("DNS service down: the gateway still routes, SMTP still accepts, commands are recorded; back up, it answers the record set during the outage", async () => {
    await site.dns.stop();
    try {
      assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), [], "DNS is down");
      assert.match((await viaGateway(site, "alpha.nexus.test")).body, /alpha site/);
      assert.match((await viaGateway(site, "beta.nexus.test")).body, /beta site/);
      const sent = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ALICE_MAIL, "--h-Subject", "during the DNS outage"]);
      assert.equal(sent.code, 0, sent.stdout + sent.stderr);
      await must(["dns", "set", "--imvu", "alpha", "during", "A", "192.0.2.77"], alice);
      await must(["revenue", "record", "--imvu", "alpha", "--amount", "10.00", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_outage"], site.operator);
    } finally {
      await site.dns.start();
    }
    assert.deepEqual(await until("the outage's record", async () => ((await answer(site, "during.alpha.nexus.test", "A")).length > 0 ? answer(site, "during.alpha.nexus.test", "A") : undefined), 10_000), ["192.0.2.77"]);
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"]);
  });

  test("mail service down: DNS answers and the gateway routes; mail queued before the outage is delivered exactly once after it, and a mailbox added meanwhile receives mail", async () => {
    site.mx.tempfail = true;
    const queued = await swaks(site.ports.submission, [
      "--tls", "--auth", "PLAIN", "--auth-user", ALICE_MAIL, "--auth-password", password, "--from", ALICE_MAIL, "--to", "partner@remote.example",
      "--h-Subject", "queued across the outage", "--header", "Message-Id: <outage-1@alpha.nexus.test>",
    ]);
    assert.equal(queued.code, 0, queued.stdout + queued.stderr);
    await until("a refused delivery attempt", () => (site.mx.attempts > 0 ? true : undefined), 10_000);
    await site.mail.stop();
    try {
      const refused = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ALICE_MAIL]);
      assert.notEqual(refused.code, 0, "SMTP is down");
      assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"]);
      assert.match((await viaGateway(site, "alpha.nexus.test")).body, /alpha site/);
      await must(["mail", "add", "--imvu", "alpha", "second@alpha.nexus.test"], alice);
    } finally {
      site.mx.tempfail = false;
      await site.mail.start();
    }
    await until("the queued message", () => (site.mx.received.length > 0 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(site.mx.received, ["<outage-1@alpha.nexus.test>"], "delivered exactly once, after several retry periods");
    const late = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", "second@alpha.nexus.test"]);
    assert.equal(late.code, 0, `the restarted service knows the mailbox added during the outage: ${late.stdout}`);
  });

  test("one IMVU's workload down: the other IMVU is still served; the reconciler brings it back and reports the restart in the ledger", async () => {
    const ps = spawnSync("podman", [...PODMAN, "ps", "-q", "--filter", `label=nexus.fabric=${site.fabric}`, "--filter", "label=nexus.imvu=alpha"], { encoding: "utf8" });
    const ids = ps.stdout.trim().split("\n").filter((l) => l !== "");
    assert.equal(ids.length, 1, `alpha's container: ${ps.stdout}${ps.stderr}`);
    assert.equal(spawnSync("podman", [...PODMAN, "kill", ids[0] ?? ""], { encoding: "utf8" }).status, 0);
    assert.match((await viaGateway(site, "beta.nexus.test")).body, /beta site/, "beta keeps serving");
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"], "alpha's names keep answering");
    await until("alpha served again", async () => ((await viaGateway(site, "alpha.nexus.test")).body.includes("alpha site") ? true : undefined), 60_000, 250);
    await until("the restart in the ledger", () => (site.stack.platform.state.list("compute-event", "alpha/").some(([, e]) => e.kind === "restarted") ? true : undefined), 30_000);
  });

  test("nothing is double-counted: the processor's retry of the outage's revenue event is denied (gate 6), balances are exact, usage intervals never overlap, the ledger verifies", async () => {
    await denied(["revenue", "record", "--imvu", "alpha", "--amount", "10.00", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_outage"], site.operator, [6]);
    const acct = site.stack.platform.state.get("revenue-account", "alpha/imvu/EUR");
    assert.deepEqual({ gross: acct?.gross, creator: acct?.creator, platform: acct?.platform }, { gross: "1000", creator: "550", platform: "450" });
    const byService = new Map<string, { start: number; end: number }[]>();
    for (const [, u] of site.stack.platform.state.list("usage", "")) {
      const k = `${u.imvu}/${u.service}`;
      byService.set(k, [...(byService.get(k) ?? []), { start: Date.parse(u.intervalStart), end: Date.parse(u.intervalEnd) }]);
    }
    assert.ok(byService.size > 0, "services reported usage across the restarts");
    for (const [k, list] of byService) {
      list.sort((a, b) => a.start - b.start);
      for (let i = 1; i < list.length; i++) assert.ok((list[i]?.start ?? 0) >= (list[i - 1]?.end ?? 0), `${k}: interval ${i} overlaps the one before`);
    }
    const v = await cli(["ledger", "verify", "--json", "--api", site.api, "--verifier-key", site.stack.platform.verifierKey], alice);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
