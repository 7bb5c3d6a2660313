/**
 * The `nexus` CLI as a creator, an intruder and an operator use it, as real child processes
 * against a running stack: signed commands, verified receipts, denied commands naming their
 * gates, hostile flags, and a platform that shows two different histories (a fork) being caught
 * by the creator's CLI.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { REPO_ROOT } from "../support/paths.ts";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function cli(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const full: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete full.NEXUS_DATABASE_URL;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], {
      env: full,
      cwd: tmpdir(),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function stackAt(home: string, apiPort: number): Promise<Stack> {
  return startStack({ home, config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: apiPort }, public: false }, modules: [], log: () => {} });
}

describe("nexus CLI against a running stack", () => {
  let home: string;
  let forkHome: string;
  let port: number;
  let stack: Stack | undefined;
  let creator: Record<string, string>;
  let mallory: Record<string, string>;
  let operator: Record<string, string>;

  before(async () => {
    home = tempDir("nexus-gov-");
    forkHome = tempDir("nexus-gov-fork-");
    port = await freePort();
    stack = await stackAt(home, port);
    // The fork: a copy of the installation right after genesis (same keys, same first entries).
    await stack.stop();
    cpSync(home, forkHome, { recursive: true });
    stack = await stackAt(home, port);
    const api = `http://127.0.0.1:${port}`;
    const person = (name: string): Record<string, string> => {
      const d = tempDir(`nexus-${name}-`);
      return { NEXUS_API: api, NEXUS_KEYRING: join(d, "keyring"), NEXUS_TRUST_DIR: join(d, "trust") };
    };
    creator = person("creator");
    mallory = person("mallory");
    operator = { NEXUS_API: api, NEXUS_HOME: home, NEXUS_TRUST_DIR: join(tempDir("nexus-op-"), "trust") };
  });

  after(async () => {
    await stack?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("imvu create makes and registers the identity, then the IMVU, with a verified receipt", async () => {
    const r = await cli(["imvu", "create", "--name", "stage", "--jurisdiction", "de", "--cpu", "0.5", "--memory", "256M", "--bare"], creator);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /created identity nx1/);
    assert.match(r.stderr, /registered nx1/);
    assert.match(r.stdout, /^imvu\s+done\s+stage, zone stage\.nexus\.test \(ledger index \d+; receipt verified\)/m);
    const rec = stack?.platform.state.get("imvu", "stage");
    assert.equal(rec?.jurisdiction, "DE");
    assert.equal(rec?.envelope.cpuMillis, 500);
    assert.equal(rec?.envelope.memoryBytes, String(256 * 1024 * 1024));
  });

  test("imvu list and show are the owner's reads", async () => {
    const list = await cli(["imvu", "list", "--json"], creator);
    assert.equal(list.code, 0, list.stderr);
    const names = (JSON.parse(list.stdout) as { imvus: { name: string }[] }).imvus.map((i) => i.name);
    assert.deepEqual(names, ["stage"]);
    const show = await cli(["imvu", "show", "stage", "--json"], creator);
    assert.equal(show.code, 0, show.stderr);
  });

  test("an intruder's command on the IMVU is recorded, denied, and the CLI exits 1 naming the gate", async () => {
    const reg = await cli(["id", "register"], mallory);
    assert.equal(reg.code, 0, reg.stderr);
    const before = stack?.platform.ledger.size ?? 0n;
    const r = await cli(["imvu", "exit-request", "stage"], mallory);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /GATE_DENIED: .*gate 1:/);
    assert.equal(stack?.platform.ledger.size, before + 1n, "the denied attempt is in the ledger");
    assert.equal(stack?.platform.state.get("imvu", "stage")?.exit, undefined, "nothing applied");
    const peek = await cli(["imvu", "show", "stage"], mallory);
    assert.equal(peek.code, 3, "another's IMVU is not even visible (404)");
    assert.match(peek.stderr, /NOT_FOUND/);
  });

  test("revenue enters through the operator's revenue-source identity and splits 55/45 exactly", async () => {
    const r = await cli(["revenue", "record", "--imvu", "stage", "--amount", "10.01", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_1"], operator);
    assert.equal(r.code, 0, r.stderr);
    const acct = stack?.platform.state.get("revenue-account", "stage/imvu/EUR");
    assert.equal(acct?.gross, "1001");
    assert.equal(acct?.creator, "551", "ceil(1001 × 55 / 100) = 551");
    const again = await cli(["revenue", "record", "--imvu", "stage", "--amount", "10.01", "--currency", "EUR", "--source", "checkout", "--event-id", "evt_1"], operator);
    assert.equal(again.code, 1, "a replayed processor event id is denied");
    assert.match(again.stderr, /gate 6:/);
  });

  test("the owner's statement is verified, saved, re-verified offline, and any alteration is caught", async () => {
    const day = new Date().toISOString().slice(0, 10);
    const out = join(tempDir("nexus-stmt-"), "statement.json");
    const r = await cli(["revenue", "statement", "--imvu", "stage", "--from", day, "--to", day, "--out", out], creator);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /statement verified: 1 entries/);
    const ok = await cli(["revenue", "verify-statement", out], {});
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const saved = JSON.parse(readFileSync(out, "utf8")) as { statement: { entries: { creatorShare?: string; amount: string }[] }; proofs: { inclusionProof: string[]; entry: string }[] };
    const tamper = async (name: string, change: (s: typeof saved) => void): Promise<void> => {
      const copy = JSON.parse(JSON.stringify(saved)) as typeof saved;
      change(copy);
      const f = join(tempDir("nexus-stmt-"), `${name}.json`);
      writeFileSync(f, JSON.stringify(copy));
      const bad = await cli(["revenue", "verify-statement", f], {});
      assert.equal(bad.code, 1, `${name}: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stdout, /STATEMENT INVALID/);
    };
    await tamper("amount", (s) => {
      const e = s.statement.entries[0];
      if (e) e.amount = "2002";
    });
    await tamper("proof", (s) => {
      const p = s.proofs[0];
      if (p?.inclusionProof[0]) p.inclusionProof[0] = "0".repeat(64);
    });
    await tamper("entry", (s) => {
      const p = s.proofs[0];
      if (p) p.entry = Buffer.from(Buffer.from(p.entry, "base64").toString("utf8").replace("\"time\":\"20", "\"time\":\"19")).toString("base64");
    });
  });

  test("a creator cannot record its own revenue: the creator's keyring has no revenue-source key", async () => {
    const r = await cli(["revenue", "record", "--imvu", "stage", "--amount", "1", "--currency", "EUR", "--source", "me", "--event-id", "evt_self"], {
      ...creator,
      NEXUS_HOME: tempDir("nexus-notplatform-"),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /IDENTITY_/);
  });

  test("hostile flags are bad input (exit 2) and nothing is sent", async () => {
    const before = stack?.platform.ledger.size;
    const cases: string[][] = [
      ["imvu", "create", "--name", "Bad_Name"],
      ["imvu", "create", "--name", "ok", "--cpu", "1.5.2"],
      ["imvu", "create", "--name", "ok", "--memory", "lots"],
      ["imvu", "create", "--name", "ok", "--jurisdiction", "XX"],
      ["imvu", "create", "--name", "ok", "--profile", "huge"],
      ["consent", "give", "--imvu", "stage", "--digest", "zz"],
      ["revenue", "record", "--imvu", "stage", "--amount", "1.234", "--currency", "EUR", "--source", "s", "--event-id", "e"],
      ["revenue", "record", "--imvu", "stage", "--amount", "1e3", "--currency", "EUR", "--source", "s", "--event-id", "e"],
      ["imvu", "create"],
    ];
    for (const args of cases) {
      const r = await cli(args, args[0] === "revenue" ? operator : creator);
      assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
    }
    assert.equal(stack?.platform.ledger.size, before);
  });

  test("the CLI refuses a platform that shows a different history (shorter, then forked)", async () => {
    const seen = await cli(["imvu", "create", "--name", "second", "--bare"], creator);
    assert.equal(seen.code, 0, seen.stderr);
    await stack?.stop();
    // The same platform keys serve the copy taken after genesis: a history that forks from the
    // one the creator saw.
    stack = await stackAt(forkHome, port);
    const shorter = await cli(["id", "register", "--as", "creator"], creator);
    const r1 = await cli(["imvu", "create", "--name", "elsewhere", "--bare"], creator);
    assert.equal(r1.code, 1, `${shorter.stderr}\n${r1.stderr}`);
    assert.match(r1.stderr, /CLIENT_INCONSISTENT/);
    // Grow the fork past what the creator saw: now it needs a consistency proof, which cannot exist.
    const p = stack.platform;
    for (let i = 0; i < 12; i++) {
      await p.submitAsService("meter", {
        type: "throttle.report",
        imvu: "nonexistent",
        body: { service: "meter", limit: "x", declared: "1", episodeId: `e${i}`, startedAt: new Date().toISOString(), count: 1 },
      }).catch(() => undefined);
    }
    const other = await cli(["id", "register"], mallory);
    const r2 = await cli(["imvu", "create", "--name", "elsewhere2", "--bare"], creator);
    assert.equal(r2.code, 1, `${other.stderr}\n${r2.stderr}`);
    assert.match(r2.stderr, /CLIENT_INCONSISTENT/);
  });
});
