/**
 * `nexus id ...` as a real child process (the ./nexus entry point) on a temporary keyring: every
 * verb, its JSON checked against core/identity, hostile flags and arguments (exit 2), loose file
 * modes, unknown identities, a corrupt keyring, the lock, and concurrent rotations.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { applyEvent, verifyKel, verifyPublicIdentity, type IdentityState, type SignedKeyEvent } from "../../src/core/identity/index.ts";
import { REPO_ROOT } from "../support/paths.ts";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface View {
  id: string;
  name?: string;
  seq: number;
  publicKey: string;
  nextKeyDigest: string;
  lastEventDigest: string;
  isDefault: boolean;
  path: string;
  event?: SignedKeyEvent;
}

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A temp HOME and a keyring path inside it (created by the first `id create`). */
function sandbox(): { home: string; keyring: string } {
  const home = mkdtempSync(join(tmpdir(), "nexus-id-cli-"));
  roots.push(home);
  return { home, keyring: join(home, "keyring") };
}

function nexus(args: readonly string[], box: { home: string; keyring: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NEXUS_KEYRING: box.keyring, HOME: box.home, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
    const child = spawn(join(REPO_ROOT, "nexus"), ["id", ...args], { env, cwd: box.home });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(args: readonly string[], box: { home: string; keyring: string }): Promise<string> {
  const r = await nexus(args, box);
  assert.equal(r.code, 0, `nexus id ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

async function okJson<T>(args: readonly string[], box: { home: string; keyring: string }): Promise<T> {
  return JSON.parse(await ok(args, box)) as T;
}

/** Asserts a failing run: exit code, the error code (or text) on stderr, nothing on stdout, no stack. */
async function fails(args: readonly string[], box: { home: string; keyring: string }, exit: number, text: string): Promise<Run> {
  const r = await nexus(args, box);
  assert.equal(r.code, exit, `nexus id ${args.join(" ")}: exit ${r.code}, stderr ${r.stderr}`);
  assert.ok(r.stderr.includes(text), `nexus id ${args.join(" ")}: stderr lacks ${JSON.stringify(text)}: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.doesNotMatch(r.stderr, /INTERNAL|\n\s+at /);
  return r;
}

test("create, show, rotate, export-public, list, default: the output verifies with core/identity", async () => {
  const box = sandbox();
  const alice = await okJson<View>(["create", "--name", "alice", "--json"], box);
  assert.match(alice.id, /^nx1[a-z2-7]{52}$/);
  assert.equal(alice.name, "alice");
  assert.equal(alice.seq, 0);
  assert.ok(alice.isDefault);
  assert.equal(statSync(alice.path).mode & 0o777, 0o600);
  assert.equal(statSync(box.keyring).mode & 0o777, 0o700);
  const s0 = applyEvent(undefined, alice.event);
  assert.equal(s0.id, alice.id, "the printed inception establishes the printed id");

  assert.equal((await okJson<View>(["show", "--json"], box)).id, alice.id);
  assert.equal((await okJson<View>(["show", "alice", "--json"], box)).id, alice.id);
  assert.equal((await okJson<View>(["show", alice.id, "--json"], box)).lastEventDigest, s0.lastEventDigest);
  assert.match(await ok(["show"], box), new RegExp(`^id\\s+${alice.id}$`, "m"));

  const r1 = await okJson<View>(["rotate", "--json"], box);
  assert.equal(r1.seq, 1);
  const s1 = applyEvent(s0, r1.event);
  assert.deepEqual({ publicKey: s1.publicKey, nextKeyDigest: s1.nextKeyDigest }, { publicKey: r1.publicKey, nextKeyDigest: r1.nextKeyDigest });
  assert.match(await ok(["rotate", "alice"], box), /rotated to seq 2/);

  const exported = await ok(["export-public"], box);
  assert.doesNotMatch(exported, /Seed/);
  const state: IdentityState = verifyPublicIdentity(JSON.parse(exported));
  assert.equal(state.seq, 2);
  assert.equal(state.id, alice.id);
  assert.equal(await ok(["export-public", "alice", "--json"], box), exported);

  const bob = await okJson<View>(["create", "--name", "bob", "--json"], box);
  assert.equal(bob.isDefault, false);
  const list = await okJson<{ id: string; name?: string; seq: number; isDefault: boolean }[]>(["list", "--json"], box);
  assert.deepEqual(list.map((l) => [l.name, l.seq, l.isDefault]), [["alice", 2, true], ["bob", 0, false]]);
  assert.match(await ok(["list"], box), new RegExp(`^\\* ${alice.id}\\s+alice`, "m"));
  assert.equal((await okJson<View>(["default", "bob", "--json"], box)).id, bob.id);
  assert.equal((await okJson<View>(["default", "--json"], box)).id, bob.id);
  assert.equal((await okJson<View>(["show", "--json"], box)).id, bob.id);
  const third = await okJson<View>(["create", "--default", "--json"], box);
  assert.ok(third.isDefault);
  assert.equal(third.name, undefined);
});

test("hostile flags and arguments exit 2 with a message", async () => {
  const box = sandbox();
  await ok(["create", "--name", "alice"], box);
  const cases: [string[], string][] = [
    [["create", "--bogus"], "unknown option '--bogus'"],
    [["create", "--name"], "argument missing"],
    [["create", "--name", ""], "IDENTITY_NAME_INVALID"],
    [["create", "--name", "../../etc"], "IDENTITY_NAME_INVALID"],
    [["create", "--name", "x".repeat(64)], "IDENTITY_NAME_INVALID"],
    [["create", "--name", "alice"], "IDENTITY_NAME_TAKEN"],
    [["create", "surplus"], "too many arguments"],
    [["show", "alice", "bob"], "too many arguments"],
    [["show", "not a name!"], "IDENTITY_NAME_INVALID"],
    [["show", "--format", "x"], "unknown option"],
    [["rotate", "--json", "a", "b"], "too many arguments"],
    [["export-public", "--pem"], "unknown option"],
    [["list", "--name", "x"], "unknown option"],
    [["list", "extra"], "too many arguments"],
    [["default", "-x"], "unknown option"],
    [["frobnicate"], "unknown command"],
    [[], "Usage: nexus id"],
  ];
  // Independent runs (none but the name-taken one reaches the keyring lock): a few at a time.
  for (let i = 0; i < cases.length; i += 6) await Promise.all(cases.slice(i, i + 6).map(([args, text]) => fails(args, box, 2, text)));
  assert.equal((await okJson<unknown[]>(["list", "--json"], box)).length, 1, "nothing was created by the failures");
});

test("unknown identities and an empty keyring: exit 3 with what to do", async () => {
  const empty = sandbox();
  await fails(["show"], empty, 3, "nexus id create");
  await fails(["rotate"], empty, 3, "IDENTITY_NOT_FOUND");
  await fails(["export-public"], empty, 3, "IDENTITY_NOT_FOUND");
  assert.match(await ok(["list"], empty), /no identities/);
  const box = sandbox();
  await ok(["create", "--name", "alice"], box);
  await fails(["show", "carol"], box, 3, "nexus id list");
  await fails(["rotate", "carol"], box, 3, "IDENTITY_NOT_FOUND");
  await fails(["export-public", `nx1${"a".repeat(52)}`], box, 3, "IDENTITY_NOT_FOUND");
  await fails(["default", "carol"], box, 3, "IDENTITY_NOT_FOUND");
});

test("a key file or keyring readable by others is refused: exit 2 and the chmod to run; nothing changes", async () => {
  const box = sandbox();
  const alice = await okJson<View>(["create", "--name", "alice", "--json"], box);
  const before = readFileSync(alice.path, "utf8");
  chmodSync(alice.path, 0o644);
  await fails(["show"], box, 2, `chmod 600 ${alice.path}`);
  await fails(["rotate"], box, 2, "IDENTITY_KEY_FILE_MODE");
  await fails(["export-public"], box, 2, "IDENTITY_KEY_FILE_MODE");
  await fails(["list"], box, 2, "IDENTITY_KEY_FILE_MODE");
  assert.equal(readFileSync(alice.path, "utf8"), before, "the refused rotation wrote nothing");
  chmodSync(alice.path, 0o600);
  chmodSync(box.keyring, 0o755);
  await fails(["show"], box, 2, `chmod 700 ${box.keyring}`);
  await fails(["create"], box, 2, "IDENTITY_KEY_FILE_MODE");
  chmodSync(box.keyring, 0o700);
  assert.equal((await okJson<View>(["show", "--json"], box)).seq, 0);
});

test("a tampered keyring is IDENTITY_KEYRING_CORRUPT (exit 1); a held lock is IDENTITY_KEYRING_BUSY (exit 3)", async () => {
  const box = sandbox();
  const alice = await okJson<View>(["create", "--json"], box);
  await ok(["rotate"], box);
  const text = readFileSync(alice.path, "utf8");
  const file = JSON.parse(text) as { currentSeed: string; nextSeed: string };
  writeFileSync(alice.path, JSON.stringify({ ...file, currentSeed: file.nextSeed, nextSeed: file.currentSeed }));
  await fails(["show"], box, 1, "IDENTITY_KEYRING_CORRUPT");
  writeFileSync(alice.path, text.replace(/"seq": 1/, '"seq": 2'));
  await fails(["export-public"], box, 1, "IDENTITY_KEYRING_CORRUPT");
  writeFileSync(alice.path, text);
  writeFileSync(join(box.keyring, "lock"), "1\n", { mode: 0o600 });
  await fails(["rotate"], box, 3, "IDENTITY_KEYRING_BUSY");
  await fails(["create"], box, 3, "remove it");
  rmSync(join(box.keyring, "lock"));
  assert.equal((await okJson<View>(["rotate", "--json"], box)).seq, 2);
});

test("concurrent rotations: each one either commits or is refused as busy; the log stays valid", async () => {
  const box = sandbox();
  await ok(["create"], box);
  const runs = await Promise.all(Array.from({ length: 4 }, () => nexus(["rotate", "--json"], box)));
  for (const r of runs) assert.ok(r.code === 0 || (r.code === 3 && r.stderr.includes("IDENTITY_KEYRING_BUSY")), `${r.code} ${r.stderr}`);
  const committed = runs.filter((r) => r.code === 0).length;
  assert.ok(committed >= 1);
  const exported = JSON.parse(await ok(["export-public"], box)) as { kel: unknown[] };
  assert.equal(verifyKel(exported.kel).seq, committed);
});
