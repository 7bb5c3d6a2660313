/** `nexus ledger replay [--verify] [--json]` as a real child process on a local data directory. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalize } from "../../src/core/crypto/index.ts";
import { utf8 } from "../../src/core/crypto/bytes.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { act, expectApplied, imvu, install, person, service, sign, type Installation } from "./support.ts";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], home: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NEXUS_HOME: home };
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

let inst: Installation;
before(async () => {
  inst = await install("sqlite");
  const ann = await person(inst, "ann-cli");
  await imvu(inst, ann, "annsite");
  await expectApplied(inst, act(inst, service(inst, "revenue-source"), { type: "revenue.record", imvu: "annsite", body: { class: "imvu", currency: "EUR", amount: "1234", source: "stripe", eventId: "evt_ann" } }));
  await act(inst, ann, { type: "admin.add", body: { identity: ann.id } }); // denied, recorded
  await inst.platform.close();
});
after(async () => {
  await inst.cleanup();
});

test("replay --verify on an honest data directory: the digests match, exit 0", async () => {
  const r = await cli(["ledger", "replay", "--verify", "--json"], inst.home);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const out = JSON.parse(r.stdout) as { ok: boolean; size: string; digest: string; storedDigest: string; mismatches: unknown[] };
  assert.equal(out.ok, true);
  assert.equal(out.digest, out.storedDigest);
  assert.deepEqual(out.mismatches, []);
});

test("replay --verify names the projection row edited in the database, exit 1", async () => {
  const p = await inst.reopen();
  const key = "annsite/imvu/EUR";
  const row = p.state.get("revenue-account", key);
  await p.store.run("UPDATE projection SET v = ? WHERE tbl = ? AND k = ?", [JSON.stringify({ ...row, creator: "1", platform: "1233" }), "revenue-account", key]);
  await p.close();
  const r = await cli(["ledger", "replay", "--verify"], inst.home);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /STORED PROJECTION DIFFERS/);
  assert.match(r.stdout, /^replayed \d+ entries: state digest [0-9a-f]{64}\n/);
  assert.match(r.stdout, /differs revenue-account annsite\/imvu\/EUR/);
  assert.match(r.stdout, /FAILED\n$/);
  const p2 = await inst.reopen();
  await p2.store.run("UPDATE projection SET v = ? WHERE tbl = ? AND k = ?", [JSON.stringify(row), "revenue-account", key]);
  await p2.close();
});

test("replay names a forged entry appended behind the gates, exit 1", async () => {
  const p = await inst.reopen();
  const ann = p.state.list("imvu").find(([k]) => k === "annsite")?.[1];
  assert.ok(ann);
  const forger = await person(inst, "forger-cli");
  const cmd = sign(inst, forger, { type: "revenue.record", imvu: "annsite", body: { class: "imvu", currency: "EUR", amount: "1", source: "x", eventId: "evt_forger" } });
  const index = p.ledger.size;
  await p.ledger.append(utf8(canonicalize({ index: index.toString(), time: inst.now.toISOString(), envelope: cmd.envelope, outcome: "applied", gates: [] })));
  await p.close();
  const r = await cli(["ledger", "replay", "--json"], inst.home);
  assert.equal(r.code, 1);
  const out = JSON.parse(r.stdout) as { ok: boolean; mismatches: { index: string; problem: string }[] };
  assert.equal(out.ok, false);
  assert.ok(out.mismatches.some((m) => m.index === index.toString() && m.problem.includes("the gates say denied")), r.stdout);
});
