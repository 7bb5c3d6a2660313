/**
 * Exit without retaliation (CONSTITUTION.md, "Hostile actors: Exit"), end to end. An admin first
 * acts against the IMVU (a denied repointing, then a suspension), and the owner exits anyway. The
 * platform then tries to retaliate: it rewrites an entry about the IMVU in its database, tries to
 * depart or expire the IMVU early, and would like to keep (or stop) serving its names at will.
 * The bundle keeps verifying offline as the evidence of the true history, the owner's CLI exposes
 * the rewrite against the live log, the names and mail are served until the owner departs, and
 * stop at once when it does. (Bundle completeness, tampering and import are test/imvu/exit.test.ts.)
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { fromBase64, parseDsse } from "../../src/core/crypto/index.ts";
import { ExitManifestSchema, PATHS, verifyBundle } from "../../src/imvu/index.ts";
import { swaks } from "../mail/support-smtp.ts";
import { admin, answer, cleanup, cli, deniedExactly, must, person, post, signAs, startSite, tempDir, until, type Site } from "./support.ts";

const ADDRESS = "creator@alpha.nexus.test";

describe("exit without retaliation", () => {
  let site: Site;
  let alice: Record<string, string>;
  let mallory: { env: Record<string, string>; id: string };
  let out: string;
  let passFile: string;
  let wwwIndex: bigint;
  let deniedIndex: string;
  let suspendIndex: string;

  before(async () => {
    site = await startSite("nexus-hostile-exit-");
    alice = person(site.api, "alice");
    await must(["imvu", "create", "--name", "alpha", "--bare"], alice);
    const [www, , adm] = await Promise.all([
      must(["dns", "set", "--imvu", "alpha", "www", "A", "192.0.2.10"], alice),
      must(["mail", "add", "--imvu", "alpha", ADDRESS], alice),
      admin(site, "mallory"),
      must(["revenue", "record", "--imvu", "alpha", "--amount", "12.34", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_x1"], site.operator),
    ]);
    mallory = adm;
    wwwIndex = BigInt(/ledger index (\d+)/.exec(www)?.[1] ?? "-1");
    const sent = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ADDRESS, "--h-Subject", "before the exit"]);
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    deniedIndex = deniedExactly(await post(site, signAs(mallory.env, { type: "dns.rrset.set", imvu: "alpha", body: { name: "www.alpha.nexus.test.", type: "A", values: [{ type: "A", address: "203.0.113.66" }] } }).json), [10, 14]).index;
    const s = JSON.parse(await must(["imvu", "suspend", "alpha", "--reason", "retaliation disguised as abuse", "--json"], mallory.env)) as { receipt?: { index: string }; index?: string };
    suspendIndex = s.receipt?.index ?? s.index ?? "";
    passFile = join(tempDir("nexus-pass-"), "pass");
    writeFileSync(passFile, "a passphrase of the owner\n", { mode: 0o600 });
    out = join(tempDir("nexus-exit-out-"), "bundle");
  });

  after(async () => {
    await site?.done();
    cleanup();
  });

  test("the admin's suspension blocks neither the exit nor the download: the bundle verifies offline and holds the admin's own acts against the IMVU", async () => {
    assert.equal(site.stack.platform.state.get("imvu", "alpha")?.status, "suspended");
    const r = await cli(["imvu", "exit", "--imvu", "alpha", "--out", out, "--passphrase-file", passFile], alice);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const v = await cli(["imvu", "verify-export", out, "--verifier-key", site.stack.platform.verifierKey], {});
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const env = parseDsse(readFileSync(join(out, "manifest.json"), "utf8"));
    const m = ExitManifestSchema.parse(JSON.parse(Buffer.from(fromBase64(env.payload) ?? new Uint8Array()).toString("utf8")));
    assert.ok(suspendIndex !== "", "the suspension's receipt names its entry");
    for (const i of [deniedIndex, suspendIndex, wwwIndex.toString()]) assert.ok(m.inventory.ledgerEntries.map(String).includes(i), `entry ${i} is in the bundle`);
    assert.equal(m.inventory.mailboxes[0]?.messages, 1);
  });

  test("the platform cannot rewrite the IMVU's history: an entry about it edited in the database is exposed by the owner's CLI, and the bundle still proves the original", async () => {
    const db = new DatabaseSync(join(site.home, "nexus.db"));
    db.exec("PRAGMA busy_timeout = 10000");
    const row = db.prepare("SELECT bytes, leaf_hash FROM ledger_entries WHERE idx = ?").get(wwwIndex) as { bytes: Uint8Array; leaf_hash: Uint8Array };
    const forged = Buffer.from(Buffer.from(row.bytes).toString("utf8").replace(/"time":"[^"]+"/, '"time":"2000-01-01T00:00:00.000Z"'));
    assert.notDeepEqual(forged, Buffer.from(row.bytes));
    const leaf = createHash("sha256").update(Buffer.concat([Buffer.from([0]), forged])).digest();
    db.prepare("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?").run(forged, leaf, wwwIndex);
    try {
      const live = (await (await fetch(`${site.api}/v1/ledger/entries/${wwwIndex}`)).json()) as { entry: string };
      assert.equal(Buffer.from(live.entry, "base64").toString("utf8"), forged.toString("utf8"), "the live log now serves the rewrite");
      const v = await cli(["ledger", "verify", "--json", "--api", site.api, "--verifier-key", site.stack.platform.verifierKey], alice);
      assert.equal(v.code, 1, v.stdout + v.stderr);
      assert.equal((JSON.parse(v.stdout) as { firstBadIndex: string }).firstBadIndex, String(wwwIndex));
      const bundled = (JSON.parse(readFileSync(join(out, PATHS.entries), "utf8")) as { entries: { index: string; entry: string }[] }).entries.find((e) => e.index === String(wwwIndex));
      assert.ok(bundled, "the bundle holds the entry");
      assert.equal(Buffer.from(bundled.entry, "base64").toString("utf8"), Buffer.from(row.bytes).toString("utf8"), "the bundle holds the original bytes");
      assert.deepEqual(verifyBundle(out, { verifierKey: site.stack.platform.verifierKey }).problems, [], "and they still prove into the signed checkpoint");
    } finally {
      db.prepare("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?").run(row.bytes, row.leaf_hash, wwwIndex);
      db.close();
    }
  });

  test("after exit the names and mail are served until the owner departs; the admin cannot depart or expire the IMVU early; the owner's departure stops both at once", async () => {
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"], "served after the exit, suspended or not");
    const mail = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ADDRESS, "--h-Subject", "after the exit"]);
    assert.equal(mail.code, 0, mail.stdout);
    for (const type of ["imvu.depart", "imvu.exit.expire"]) {
      const r = await post(site, signAs(mallory.env, { type, imvu: "alpha", body: {} }).json);
      assert.equal(r.receipt?.outcome, "denied", `${type} by the admin: ${JSON.stringify(r)}`);
    }
    assert.equal(site.stack.platform.state.get("imvu", "alpha")?.exit?.departedIndex, undefined, "not departed");
    assert.deepEqual(await answer(site, "www.alpha.nexus.test", "A"), ["192.0.2.10"]);
    await must(["imvu", "depart", "alpha"], alice);
    await until("DNS to stop answering", async () => ((await answer(site, "www.alpha.nexus.test", "A")).length === 0 ? true : undefined), 10_000);
    const refused = await swaks(site.ports.smtp, ["--from", "fan@example.org", "--to", ADDRESS]);
    assert.notEqual(refused.code, 0, "mail for a departed IMVU is refused");
    assert.match(refused.stdout, /^<[~*-]+\s+550 /m);
    assert.deepEqual(verifyBundle(out, { verifierKey: site.stack.platform.verifierKey }).problems, [], "the bundle outlives the departure");
  });
});
