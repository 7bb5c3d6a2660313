/** `nexus ledger ...` as a real child process: local data directory, --api, hostile flags, tampering. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { DEFAULT_LEDGER_ORIGIN, loadPlatformKey } from "../../src/cli/commands/ledger.ts";
import { utf8 } from "../../src/core/crypto/bytes.ts";
import type { Ed25519KeyPair } from "../../src/core/crypto/ed25519.ts";
import { Ledger } from "../../src/core/ledger/ledger.ts";
import { noteSignerFromEd25519, openNote, parseCheckpoint, verifierKey } from "../../src/core/ledger/note.ts";
import { openStore } from "../../src/store/index.ts";
import type { Store } from "../../src/store/types.ts";
import { REPO_ROOT } from "../support/paths.ts";

const entryOf = (i: number): Uint8Array => utf8(`{"n":${i}}`);
const dirs: string[] = [];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], home: string, extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NEXUS_HOME: home, ...extraEnv };
    delete env.NEXUS_DATABASE_URL;
    delete env.NEXUS_LEDGER_ORIGIN;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], { env, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A data directory holding a 300-entry ledger (3 batches) signed by its platform.key. */
async function populated(): Promise<{ home: string; key: Ed25519KeyPair; vkey: string }> {
  const home = mkdtempSync(join(tmpdir(), "nexus-cli-"));
  dirs.push(home);
  const key = loadPlatformKey(home, true) as Ed25519KeyPair;
  const store = await openStore({ dataDir: home });
  const ledger = await Ledger.open(store, { origin: DEFAULT_LEDGER_ORIGIN, signer: noteSignerFromEd25519(DEFAULT_LEDGER_ORIGIN, key.privateKey, key.publicKey) });
  for (let round = 0; round < 3; round++) {
    await ledger.submit(async (ctx) => {
      for (let i = 0; i < 100; i++) await ctx.append(entryOf(round * 100 + i));
    });
  }
  await ledger.close();
  await store.close();
  return { home, key, vkey: verifierKey(DEFAULT_LEDGER_ORIGIN, key.publicKey) };
}

let local: { home: string; vkey: string };
let served: { home: string; vkey: string; store: Store; ledger: Ledger; app: FastifyInstance; url: string };

before(async () => {
  local = await populated();
  const s = await populated();
  const store = await openStore({ dataDir: s.home });
  const ledger = await Ledger.open(store, { origin: DEFAULT_LEDGER_ORIGIN, signer: noteSignerFromEd25519(DEFAULT_LEDGER_ORIGIN, s.key.privateKey, s.key.publicKey) });
  const app = await buildApi({ ledger });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  served = { ...s, store, ledger, app, url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}` };
});

after(async () => {
  await served.app.close();
  await served.ledger.close();
  await served.store.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("local: checkpoint, entry, prove, prove-consistency and verify (human and --json)", async () => {
  const cp = await cli(["ledger", "checkpoint", "--json"], local.home);
  assert.equal(cp.code, 0, cp.stderr);
  const body = JSON.parse(cp.stdout) as { note: string; size: string; verifierKey: string };
  assert.equal(body.size, "300");
  assert.equal(body.verifierKey, local.vkey);
  assert.equal(parseCheckpoint(openNote(body.note, [local.vkey]).text).size, 300n);
  const human = await cli(["ledger", "checkpoint"], local.home);
  assert.match(human.stdout, /^nexus\.local\/ledger\n300\n/);
  const e = await cli(["ledger", "entry", "42", "--json"], local.home);
  assert.equal(e.code, 0, e.stderr);
  assert.equal((JSON.parse(e.stdout) as { text: string }).text, '{"n":42}');
  const p = await cli(["ledger", "prove", "--index", "42", "--size", "100", "--json"], local.home);
  assert.equal(p.code, 0, p.stderr);
  const proof = JSON.parse(p.stdout) as { verified: boolean; size: string; proof: string[] };
  assert.equal(proof.verified, true);
  assert.equal(proof.size, "100");
  assert.equal(proof.proof.length, 7);
  const c = await cli(["ledger", "prove-consistency", "--from", "10", "--json"], local.home);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((JSON.parse(c.stdout) as { verified: boolean; to: string }).verified, true);
  const v = await cli(["ledger", "verify"], local.home);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^ok: 300 entries/);
});

const HOSTILE: string[][] = [
  ["ledger", "entry", "abc"],
  ["ledger", "entry", "-1"],
  ["ledger", "entry", "1e99"],
  ["ledger", "entry", "007"],
  ["ledger", "entry", ""],
  ["ledger", "entry", "99999999999999999999"],
  ["ledger", "entry", "300"],
  ["ledger", "entry"],
  ["ledger", "entry", "1", "2"],
  ["ledger", "prove"],
  ["ledger", "prove", "--index"],
  ["ledger", "prove", "--index", "-5"],
  ["ledger", "prove", "--index", "5", "--size", "abc"],
  ["ledger", "prove", "--index", "5", "--size", "9".repeat(40)],
  ["ledger", "prove", "--index", "300"],
  ["ledger", "prove", "--index", "1", "--size", "1000"],
  ["ledger", "prove", "--index", "1", "--size", "0"],
  ["ledger", "prove-consistency"],
  ["ledger", "prove-consistency", "--from", "x"],
  ["ledger", "prove-consistency", "--from", "5", "--to", "3"],
  ["ledger", "prove-consistency", "--from", "5", "--to", "301"],
  ["ledger", "verify", "--bogus"],
  ["ledger", "nope"],
  ["ledger", "checkpoint", "--api", "ftp://example.org"],
  ["ledger", "checkpoint", "--api", "not a url"],
  ["ledger", "checkpoint", "--api", "http://user:pw@127.0.0.1:1"],
  ["ledger", "checkpoint", "--api", "http://127.0.0.1:1", "--verifier-key", "garbage"],
];

test("hostile flags and arguments exit 2 with a one-line error, never a stack", async () => {
  for (let i = 0; i < HOSTILE.length; i += 6) {
    const runs = await Promise.all(HOSTILE.slice(i, i + 6).map((args) => cli(args, local.home).then((r) => ({ args, r }))));
    for (const { args, r } of runs) {
      assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${args.join(" ")} printed a stack`);
    }
  }
});

test("local: a missing data directory, a world-readable key and an unreachable API are refused", async () => {
  const missing = await cli(["ledger", "checkpoint"], join(local.home, "nope"));
  assert.equal(missing.code, 2);
  const home = mkdtempSync(join(tmpdir(), "nexus-cli-"));
  dirs.push(home);
  loadPlatformKey(home, true);
  chmodSync(join(home, "platform.key"), 0o644);
  const open = await cli(["ledger", "verify"], home);
  assert.equal(open.code, 2);
  assert.match(open.stderr, /INPUT_INVALID/);
  const down = await cli(["ledger", "checkpoint", "--api", "http://127.0.0.1:1", "--verifier-key", local.vkey], local.home);
  assert.equal(down.code, 3, down.stderr);
  assert.match(down.stderr, /LEDGER_API_UNREACHABLE/);
});

test("local verify names the first bad entry after a raw edit and exits 1", async () => {
  const t = await populated();
  const store = await openStore({ dataDir: t.home });
  await store.run("UPDATE ledger_entries SET bytes = ? WHERE idx = ?", [utf8("forged"), 123]);
  await store.close();
  const v = await cli(["ledger", "verify", "--json"], t.home);
  assert.equal(v.code, 1, v.stderr);
  const report = JSON.parse(v.stdout) as { ok: boolean; firstBadIndex: string; kind: string };
  assert.equal(report.ok, false);
  assert.equal(report.firstBadIndex, "123");
  const e = await cli(["ledger", "entry", "123"], t.home);
  assert.equal(e.code, 1, "reading a damaged entry is a failed check");
  assert.match(e.stderr, /LEDGER_STORAGE_CORRUPT/);
});

test("--api: every verb verifies the server's answers against the signed checkpoint", async () => {
  const api = ["--api", served.url, "--verifier-key", served.vkey];
  const cp = await cli(["ledger", "checkpoint", "--json", ...api], local.home);
  assert.equal(cp.code, 0, cp.stderr);
  assert.equal((JSON.parse(cp.stdout) as { size: string }).size, "300");
  const e = await cli(["ledger", "entry", "7", "--json", ...api], local.home);
  assert.equal(e.code, 0, e.stderr);
  assert.deepEqual(JSON.parse(e.stdout), { index: "7", leafHash: (JSON.parse(e.stdout) as { leafHash: string }).leafHash, entry: Buffer.from('{"n":7}').toString("base64"), text: '{"n":7}', verified: true, size: "300" });
  for (const args of [["prove", "--index", "150", "--size", "200"], ["prove", "--index", "299"], ["prove-consistency", "--from", "37", "--to", "250"], ["prove-consistency", "--from", "1"]]) {
    const r = await cli(["ledger", ...args, "--json", ...api], local.home);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { verified: boolean }).verified, true);
  }
  const v = await cli(["ledger", "verify", "--json", ...api], local.home);
  assert.equal(v.code, 0, v.stderr);
  assert.equal((JSON.parse(v.stdout) as { entriesChecked: string }).entriesChecked, "300");
  const beyond = await cli(["ledger", "entry", "300", ...api], local.home);
  assert.equal(beyond.code, 2);
  assert.match(beyond.stderr, /LEDGER_INDEX_OUT_OF_RANGE/);
  const wrongKey = await cli(["ledger", "checkpoint", "--api", served.url, "--verifier-key", local.vkey], local.home);
  assert.equal(wrongKey.code, 1, "a checkpoint not signed by the expected key fails the check");
});

test("--api against a lying server: verify names the altered entry, prove refuses it", async () => {
  const liar: Server = createServer((req, res) => {
    void (async () => {
      const upstream = await fetch(served.url + (req.url ?? "/"));
      let text = await upstream.text();
      if ((req.url ?? "").startsWith("/v1/ledger/entries")) {
        text = text.replace(Buffer.from('{"n":42}').toString("base64"), Buffer.from('{"n":-1}').toString("base64"));
      }
      res.writeHead(upstream.status, { "content-type": "application/json" });
      res.end(text);
    })();
  });
  await new Promise<void>((r) => liar.listen(0, "127.0.0.1", r));
  try {
    const addr = liar.address();
    const api = ["--api", `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`, "--verifier-key", served.vkey];
    const v = await cli(["ledger", "verify", "--json", ...api], local.home);
    assert.equal(v.code, 1, v.stderr);
    const report = JSON.parse(v.stdout) as { ok: boolean; firstBadIndex: string };
    assert.equal(report.ok, false);
    assert.equal(report.firstBadIndex, "42");
    const p = await cli(["ledger", "prove", "--index", "42", "--json", ...api], local.home);
    assert.equal(p.code, 1);
    assert.equal((JSON.parse(p.stdout) as { verified: boolean }).verified, false);
    const ok = await cli(["ledger", "prove", "--index", "41", ...api], local.home);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await new Promise<void>((r) => liar.close(() => r()));
  }
});
