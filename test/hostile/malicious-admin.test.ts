/**
 * The malicious admin (CONSTITUTION.md, "Hostile actors"), end to end on a running stack: an
 * admin with its own key tries to reroute Alice's traffic (apex A, MX, route), siphon resources
 * (shrink her envelope, delete or restore over her snapshot, remove her workload), change a split,
 * block her exit by suspending her, and then, with root on the machine, edits and deletes ledger
 * rows in SQLite and serves two different histories from two copies of the data directory. The
 * gates deny the first kind (recorded, attributed to the admin, in Alice's feed); Alice's CLI
 * detects the second kind (`ledger verify --api`, `ledger prove`, CLIENT_INCONSISTENT, and a
 * consistency proof that cannot exist between two creators' checkpoints).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFileSync, cpSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { z } from "zod";
import { freePort } from "../../src/cli/dev/system.ts";
import { loadPlatformKey } from "../../src/cli/commands/ledger.ts";
import { Ledger } from "../../src/core/ledger/ledger.ts";
import { noteSignerFromEd25519 } from "../../src/core/ledger/note.ts";
import { openStore } from "../../src/store/index.ts";
import { BODY_SCHEMAS } from "../../src/core/policy/schemas.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import {
  admin, answer, cleanup, cli, denied, deniedExactly, entryAt, feed, must, person, post, signAs, signedGet, siteRootfs, startSite, tempDir, until, viaGateway,
  type Site,
} from "./support.ts";

/** Opens the installation's SQLite file beside the running platform, as root on the machine would. */
function database(site: Site): DatabaseSync {
  const db = new DatabaseSync(join(site.home, "nexus.db"));
  db.exec("PRAGMA busy_timeout = 10000");
  return db;
}

const leaf = (bytes: Uint8Array): Buffer => createHash("sha256").update(Buffer.concat([Buffer.from([0]), bytes])).digest();

/** A proxy that forwards to whichever API it is pointed at (Host kept, so signed reads verify): one URL, two histories. */
async function switchingProxy(target: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const up = new URL(target());
    const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    fwd.on("error", () => res.writeHead(502).end());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return {
    url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** The installation's data and keys copied as root would (a consistent copy of the database: VACUUM INTO). */
function copyInstallation(site: Site, prefix: string): string {
  const home = join(tempDir(prefix), "home");
  mkdirSync(home, { recursive: true });
  const db = database(site);
  db.exec(`VACUUM INTO '${join(home, "nexus.db")}'`);
  db.close();
  copyFileSync(join(site.home, "platform.key"), join(home, "platform.key"));
  cpSync(join(site.home, "keys"), join(home, "keys"), { recursive: true });
  return home;
}

/** The API alone on a data directory, on a free port: what an admin serves from a copy. */
async function apiOnly(home: string): Promise<Stack> {
  return startStack({ home, config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: await freePort() }, public: false }, modules: [], log: () => {} });
}

interface SeenCheckpoint {
  readonly size: string;
  readonly rootHash: string;
}

/** The latest checkpoint at `url`, verified with `vkey` by the CLI of `env`. */
async function checkpointOf(env: Record<string, string>, url: string, vkey: string): Promise<SeenCheckpoint> {
  return JSON.parse(await must(["ledger", "checkpoint", "--json", "--api", url, "--verifier-key", vkey], env)) as SeenCheckpoint;
}

/** `tlog verify-consistency` between two checkpoints, with the proof from the smaller given by the server of the larger. */
async function consistencyCheck(a: { cp: SeenCheckpoint; url: string }, b: { cp: SeenCheckpoint; url: string }, env: Record<string, string>, vkey: string): Promise<{ code: number | null; valid: boolean; out: string }> {
  const [small, big] = BigInt(a.cp.size) <= BigInt(b.cp.size) ? [a, b] : [b, a];
  let proof: string[] = [];
  if (small.cp.size !== big.cp.size) {
    proof = (JSON.parse(await must(["ledger", "prove-consistency", "--from", small.cp.size, "--api", big.url, "--verifier-key", vkey, "--json"], env)) as { proof: string[] }).proof;
  }
  const check = await cli(["tlog", "verify-consistency", "--size1", small.cp.size, "--size2", big.cp.size, "--root1", small.cp.rootHash, "--root2", big.cp.rootHash, "--proof", proof.join(","), "--json"], {});
  return { code: check.code, valid: (JSON.parse(check.stdout) as { valid: boolean }).valid, out: check.stdout + check.stderr };
}

describe("malicious admin", () => {
  let site: Site;
  let alice: Record<string, string>;
  let mallory: { env: Record<string, string>; id: string };
  let wwwIndex: bigint;

  before(async () => {
    site = await startSite("nexus-hostile-admin-", { compute: true });
    alice = person(site.api, "alice");
    await must(["imvu", "create", "--name", "alpha", "--bare"], alice);
    const [, adm] = await Promise.all([
      must(["compute", "deploy", "--imvu", "alpha", "--name", "web", "--rootfs", siteRootfs("alpha site"), "--port", "8080", "--", "httpd", "-f", "-p", "8080", "-h", "/www"], alice),
      admin(site, "mallory"),
    ]);
    mallory = adm;
    const [www] = await Promise.all([
      must(["dns", "set", "--imvu", "alpha", "www", "A", "192.0.2.10"], alice),
      must(["net", "route", "add", "--imvu", "alpha", "--host", "alpha.nexus.test", "--to", "web:8080", "--id", "site"], alice),
      must(["mail", "add", "--imvu", "alpha", "creator@alpha.nexus.test"], alice),
    ]);
    wwwIndex = BigInt(/ledger index (\d+)/.exec(www)?.[1] ?? "-1");
    await until("alpha served", async () => ((await viaGateway(site, "alpha.nexus.test")).body.includes("alpha site") ? true : undefined), 90_000, 250);
  });

  after(async () => {
    await site?.done();
    cleanup();
  });

  test("repointing the apex A, the MX or a route without the owner's consent is denied by gates 10 and 14, attributed to the admin, in the owner's feed as a redirect; nothing served changes", async () => {
    const mxBefore = await answer(site, "alpha.nexus.test", "MX");
    const attempts = [
      { type: "dns.rrset.set", imvu: "alpha", body: { name: "alpha.nexus.test.", type: "A", values: [{ type: "A", address: "203.0.113.66" }] } },
      { type: "dns.rrset.set", imvu: "alpha", body: { name: "alpha.nexus.test.", type: "MX", values: [{ type: "MX", preference: 1, exchange: "mx.siphon.example." }] } },
      { type: "net.route.add", imvu: "alpha", body: { route: "site", host: "alpha.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 9999 } } },
    ];
    const indices: string[] = [];
    for (const a of attempts) {
      const r = deniedExactly(await post(site, signAs(mallory.env, a).json), [10, 14]);
      assert.equal((await entryAt(site, r.index)).actor, mallory.id, "signed and recorded as the admin's own act (gate 17)");
      indices.push(r.index);
    }
    const f = await feed(alice, "alpha");
    for (const i of indices) assert.ok(f.some((e) => e.index === i && e.redirect && e.outcome === "denied" && e.actor === mallory.id), `entry ${i} is in alpha's feed`);
    assert.notDeepEqual(await answer(site, "alpha.nexus.test", "A"), ["203.0.113.66"]);
    assert.ok((await answer(site, "alpha.nexus.test", "A")).length > 0);
    assert.deepEqual(await answer(site, "alpha.nexus.test", "MX"), mxBefore);
    assert.match((await viaGateway(site, "alpha.nexus.test")).body, /alpha site/);
  });

  test("siphoning the envelope: an admin's shrink is denied by gate 10, and even the owner cannot lower it below use (gate 7)", async () => {
    const show = (await signedGet(site, alice, "/v1/imvus/alpha")).json as { envelope: Record<string, unknown> };
    const change = (env: Record<string, string>, over: Record<string, unknown>) => post(site, signAs(env, { type: "imvu.envelope.change", imvu: "alpha", body: { envelope: { ...show.envelope, ...over } } }).json);
    const byAdmin = await change(mallory.env, { memoryBytes: String(64 * 1024 * 1024), mailboxes: 1 });
    assert.equal(byAdmin.receipt?.outcome, "denied");
    assert.ok(byAdmin.receipt.gates.some((g) => g.gate === 10 && !g.pass), JSON.stringify(byAdmin.receipt.gates));
    deniedExactly(await change(alice, { mailboxes: 0 }), [7]);
    const after = (await signedGet(site, alice, "/v1/imvus/alpha")).json as { envelope: Record<string, unknown> };
    assert.deepEqual(after.envelope, show.envelope, "the envelope is unchanged");
  });

  test("an admin cannot delete a snapshot (gate 12), restore over the volume or remove the workload (gate 10); the snapshot stays byte for byte", async () => {
    const out = await must(["compute", "snapshot", "--imvu", "alpha"], alice);
    const digest = /sha256:([0-9a-f]{64})/.exec(out)?.[1] ?? "";
    assert.equal(digest.length, 64, out);
    const del = await post(site, signAs(mallory.env, { type: "compute.snapshot.delete", imvu: "alpha", body: { snapshot: digest } }).json);
    assert.equal(del.receipt?.outcome, "denied");
    assert.ok(del.receipt.gates.some((g) => g.gate === 12 && !g.pass), `gate 12 denies: ${JSON.stringify(del.receipt.gates)}`);
    for (const draft of [
      { type: "compute.snapshot.restore", imvu: "alpha", body: { snapshot: digest } },
      { type: "compute.workload.remove", imvu: "alpha", body: { name: "web" } },
    ]) {
      const r = await post(site, signAs(mallory.env, draft).json);
      assert.equal(r.receipt?.outcome, "denied", draft.type);
      assert.ok(r.receipt.gates.some((g) => g.gate === 10 && !g.pass), `${draft.type}: ${JSON.stringify(r.receipt.gates)}`);
    }
    const compute = site.stack.services.find((s) => s.name === "compute") as unknown as { fabric: { listSnapshots(i: string): { digest: string; path: string }[] } };
    const snap = compute.fabric.listSnapshots("alpha").find((s) => s.digest === `sha256:${digest}`);
    assert.ok(snap, "the snapshot is still there");
    assert.equal(createHash("sha256").update(readFileSync(snap.path)).digest("hex"), digest, "and unaltered");
    assert.match((await viaGateway(site, "alpha.nexus.test")).body, /alpha site/, "the workload still serves");
  });

  test("no command can change a split: none carries a ratio, a revenue.record naming another split class is denied (gate 6), an admin's is denied (gate 1), and revenue splits 55/45", async () => {
    for (const [type, schema] of Object.entries(BODY_SCHEMAS)) {
      const fields = JSON.stringify(z.toJSONSchema(schema as z.ZodType, { unrepresentable: "any" }));
      assert.doesNotMatch(fields, /"(split|ratio|percent|creatorShare|platformShare|share)[A-Za-z]*":/i, `${type} carries no split field`);
    }
    await denied(["revenue", "record", "--imvu", "alpha", "--amount", "10.00", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_class", "--class", "mini-platform"], site.operator, [6]);
    const byAdmin = await post(site, signAs(mallory.env, { type: "revenue.record", imvu: "alpha", body: { class: "imvu", currency: "EUR", amount: "1001", source: "admin", eventId: "evt_admin" } }).json);
    assert.ok(byAdmin.receipt?.gates.some((g) => g.gate === 1 && !g.pass), JSON.stringify(byAdmin.receipt?.gates));
    await must(["revenue", "record", "--imvu", "alpha", "--amount", "10.01", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_real"], site.operator);
    const acct = site.stack.platform.state.get("revenue-account", "alpha/imvu/EUR");
    assert.deepEqual({ gross: acct?.gross, creator: acct?.creator, platform: acct?.platform }, { gross: "1001", creator: "551", platform: "450" });
  });

  test("a ledger row edited in SQLite (entry and leaf hash rewritten) is found by the creator's CLI: ledger verify --api names it, ledger prove fails", async () => {
    const vkey = site.stack.platform.verifierKey;
    const api = ["--api", site.api, "--verifier-key", vkey, "--json"];
    const db = database(site);
    const row = db.prepare("SELECT bytes, leaf_hash FROM ledger_entries WHERE idx = ?").get(wwwIndex) as { bytes: Uint8Array; leaf_hash: Uint8Array };
    const forged = Buffer.from(Buffer.from(row.bytes).toString("utf8").replace('"outcome":"applied"', '"outcome":"denied"'));
    assert.notDeepEqual(forged, Buffer.from(row.bytes), "the forgery changes the entry");
    db.prepare("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?").run(forged, leaf(forged), wwwIndex);
    try {
      const v = await cli(["ledger", "verify", ...api], alice);
      assert.equal(v.code, 1, v.stdout + v.stderr);
      assert.equal((JSON.parse(v.stdout) as { firstBadIndex: string }).firstBadIndex, String(wwwIndex));
      const p = await cli(["ledger", "prove", "--index", String(wwwIndex), ...api], alice);
      assert.equal(p.code, 1, p.stdout + p.stderr);
      assert.equal((JSON.parse(p.stdout) as { verified: boolean }).verified, false);
    } finally {
      db.prepare("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?").run(row.bytes, row.leaf_hash, wwwIndex);
      db.close();
    }
    const ok = await cli(["ledger", "verify", ...api], alice);
    assert.equal(ok.code, 0, `restored, the same check passes (so it is not vacuous): ${ok.stdout}${ok.stderr}`);
  });

  test("a ledger row deleted in SQLite is found by the creator's CLI: ledger verify --api and ledger entry fail", async () => {
    const api = ["--api", site.api, "--verifier-key", site.stack.platform.verifierKey, "--json"];
    const db = database(site);
    const row = db.prepare("SELECT bytes, leaf_hash FROM ledger_entries WHERE idx = ?").get(wwwIndex) as { bytes: Uint8Array; leaf_hash: Uint8Array };
    db.prepare("DELETE FROM ledger_entries WHERE idx = ?").run(wwwIndex);
    try {
      const v = await cli(["ledger", "verify", ...api], alice);
      assert.notEqual(v.code, 0, v.stdout + v.stderr);
      assert.match(v.stdout + v.stderr, new RegExp(`${wwwIndex}|LEDGER_STORAGE_CORRUPT`));
      const e = await cli(["ledger", "entry", String(wwwIndex), ...api], alice);
      assert.notEqual(e.code, 0, e.stdout + e.stderr);
    } finally {
      db.prepare("INSERT INTO ledger_entries (idx, bytes, leaf_hash) VALUES (?, ?, ?)").run(wwwIndex, row.bytes, row.leaf_hash);
      db.close();
    }
  });

  test("a forked log: two API processes on two copies of the data serve diverging histories; the creator shown both gets CLIENT_INCONSISTENT, and two creators' checkpoints admit no consistency proof", async () => {
    // Carol talks to "the platform" at one URL (a proxy the platform controls); her IMVU exists before the fork.
    let target = site.api;
    const proxy = await switchingProxy(() => target);
    let fork: Stack | undefined;
    try {
      const carol = person(proxy.url, "carol");
      await must(["imvu", "create", "--name", "gamma", "--bare"], carol);
      // The fork: a consistent copy of the database with the same platform keys.
      const forkHome = copyInstallation(site, "nexus-hostile-fork-");
      fork = await apiOnly(forkHome);
      // The histories diverge: Carol's next command lands on the original, Dave's on the fork.
      const dave = person(fork.apiUrl, "dave");
      await must(["dns", "set", "--imvu", "gamma", "www", "A", "192.0.2.30"], carol);
      await must(["imvu", "create", "--name", "delta", "--bare"], dave);
      target = fork.apiUrl;
      const r = await cli(["dns", "set", "--imvu", "gamma", "www", "A", "192.0.2.31"], carol);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /CLIENT_INCONSISTENT/);
      // Gossip: each creator's latest checkpoint verifies with the same key, yet no consistency proof joins them.
      const vkey = site.stack.platform.verifierKey;
      const mine = await checkpointOf(carol, site.api, vkey);
      const theirs = await checkpointOf(dave, fork.apiUrl, vkey);
      const check = await consistencyCheck({ cp: mine, url: site.api }, { cp: theirs, url: fork.apiUrl }, carol, vkey);
      assert.equal(check.code, 1, `the two signed checkpoints are not consistent: ${check.out}`);
      assert.equal(check.valid, false);
    } finally {
      await proxy.close();
      await fork?.stop();
    }
  });

  test("a rewritten history re-signed with the platform's own key: self-consistent to a newcomer, refused by the creator's CLI, and two signed checkpoints prove it", async () => {
    // Root and the signing key: the admin rebuilds the whole log with one of Erin's entries rewritten and signs it anew.
    let target = site.api;
    const proxy = await switchingProxy(() => target);
    let forged: Stack | undefined;
    try {
      const erin = person(proxy.url, "erin");
      await must(["imvu", "create", "--name", "epsilon", "--bare"], erin);
      await must(["dns", "set", "--imvu", "epsilon", "www", "A", "192.0.2.40"], erin);
      const vkey = site.stack.platform.verifierKey;
      const seen = await checkpointOf(erin, proxy.url, vkey);
      const home = copyInstallation(site, "nexus-hostile-rewrite-");
      const copy = new DatabaseSync(join(home, "nexus.db"));
      const rows = copy.prepare("SELECT bytes FROM ledger_entries ORDER BY idx").all() as { bytes: Uint8Array }[];
      copy.exec("DELETE FROM ledger_entries; DELETE FROM ledger_tiles; DELETE FROM ledger_checkpoints");
      copy.close();
      let rewritten = 0;
      const store = await openStore({ dataDir: home });
      const key = loadPlatformKey(home, false);
      assert.ok(key, "the platform's signing key, as root on the machine has it");
      const origin = site.stack.platform.ledger.origin;
      const ledger = await Ledger.open(store, { origin, signer: noteSignerFromEd25519(origin, key.privateKey, key.publicKey), verifierKey: vkey });
      // Erin's signed command cannot be changed without her key; the platform's verdict on it can:
      // her record now reads as denied.
      const isErinsRecord = (text: string): boolean => {
        const payload = /"payload":"([A-Za-z0-9+/=]+)"/.exec(text)?.[1];
        return payload !== undefined && Buffer.from(payload, "base64").toString("utf8").includes('"address":"192.0.2.40"');
      };
      for (const r of rows) {
        const text = Buffer.from(r.bytes).toString("utf8");
        const edited = isErinsRecord(text) ? text.replace('"outcome":"applied"', '"outcome":"denied"') : text;
        if (edited !== text) rewritten++;
        await ledger.append(Buffer.from(edited));
      }
      await ledger.close();
      await store.close();
      assert.equal(rewritten, 1, "Erin's record rewritten as denied");
      forged = await apiOnly(home);
      // A newcomer who never saw the original finds nothing wrong: the rewrite is a well-formed, signed log.
      const newcomer = person(forged.apiUrl, "frank");
      const fresh = await cli(["ledger", "verify", "--api", forged.apiUrl, "--verifier-key", vkey, "--json"], newcomer);
      assert.equal(fresh.code, 0, `self-consistent: ${fresh.stdout}${fresh.stderr}`);
      // Erin's CLI remembers the checkpoint it saw: the same URL now serving the rewrite is refused.
      target = forged.apiUrl;
      const r = await cli(["dns", "set", "--imvu", "epsilon", "www", "A", "192.0.2.41"], erin);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /CLIENT_INCONSISTENT/);
      // The evidence anyone can check offline: two checkpoints signed with the platform's key that no consistency proof joins.
      const now = await checkpointOf(newcomer, forged.apiUrl, vkey);
      assert.ok(BigInt(now.size) >= BigInt(seen.size));
      const check = await consistencyCheck({ cp: seen, url: site.api }, { cp: now, url: forged.apiUrl }, newcomer, vkey);
      assert.equal(check.code, 1, `the two signed checkpoints are not consistent: ${check.out}`);
      assert.equal(check.valid, false);
    } finally {
      await proxy.close();
      await forged?.stop();
    }
  });

  test("an admin's suspension (public reason, in the feed) does not block the owner's exit request", async () => {
    await must(["imvu", "suspend", "alpha", "--reason", "abuse report 7 under review"], mallory.env);
    assert.equal(site.stack.platform.state.get("imvu", "alpha")?.status, "suspended");
    assert.ok((await feed(alice, "alpha")).some((f) => f.type === "imvu.suspend" && f.actor === mallory.id && f.outcome === "applied"), "the owner is told");
    await must(["imvu", "exit-request", "alpha"], alice);
    assert.ok(site.stack.platform.state.get("imvu", "alpha")?.exit, "the exit request is applied while suspended");
  });
});
