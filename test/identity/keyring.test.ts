/**
 * The keyring on a real filesystem: layout and modes, create/load/rotate/export/list/default,
 * refusal of loose modes and symlinks, corrupt and inconsistent files, the lock, leftovers of a crash.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toBase64 } from "../../src/core/crypto/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import {
  IDENTITY_FILE_BYTES_MAX,
  createIdentity,
  exportPublic,
  keyDigest,
  keyringDir,
  listIdentities,
  loadIdentity,
  rotateIdentity,
  setDefaultIdentity,
  verifyKel,
  verifyPublicIdentity,
} from "../../src/core/identity/index.ts";

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A fresh keyring path (not yet created) under a private temp dir. */
function fresh(): string {
  const root = mkdtempSync(join(tmpdir(), "nexus-keyring-"));
  roots.push(root);
  return join(root, "a", "keyring");
}

function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
    return { code: "accepted", message: "" };
  } catch (e) {
    return isNexusError(e) ? { code: e.code, message: e.message } : { code: `untyped: ${String(e)}`, message: "" };
  }
}
const codeOf = (fn: () => unknown): string => failure(fn).code;
const mode = (p: string): number => statSync(p).mode & 0o777;

test("keyringDir: $NEXUS_KEYRING, else ~/.config/nexus/keyring", () => {
  assert.equal(keyringDir({ NEXUS_KEYRING: "/x/y", HOME: "/home/u" }), "/x/y");
  assert.equal(keyringDir({ HOME: "/home/u" }), "/home/u/.config/nexus/keyring");
  assert.equal(keyringDir({ NEXUS_KEYRING: "", HOME: "/home/u" }), "/home/u/.config/nexus/keyring");
  assert.equal(keyringDir({ NEXUS_KEYRING: "rel" }), join(process.cwd(), "rel"));
});

test("create: directory 0700, identity file 0600, first identity is the default", () => {
  const dir = fresh();
  const alice = createIdentity(dir, { name: "alice" });
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(alice.path), 0o600);
  assert.equal(mode(join(dir, "default")), 0o600);
  assert.equal(alice.path, join(dir, `${alice.id}.json`));
  assert.ok(alice.isDefault);
  assert.equal(alice.state.seq, 0);
  assert.equal(toBase64(alice.current.publicKey), alice.state.publicKey);
  const bob = createIdentity(dir, { name: "bob" });
  assert.equal(bob.isDefault, false);
  const anon = createIdentity(dir);
  assert.equal(anon.name, undefined);
  assert.deepEqual(
    listIdentities(dir).map((s) => [s.name, s.isDefault]),
    [["alice", true], ["bob", false], [undefined, false]],
  );
  assert.deepEqual(readdirSync(dir).sort(), [`${alice.id}.json`, `${bob.id}.json`, `${anon.id}.json`, "default"].sort(), "no tmp or lock left");
});

test("load by id, by name and by default; unknown ones are IDENTITY_NOT_FOUND", () => {
  const dir = fresh();
  assert.equal(codeOf(() => loadIdentity(dir)), "IDENTITY_NOT_FOUND", "no keyring yet");
  assert.deepEqual(listIdentities(dir), []);
  const alice = createIdentity(dir, { name: "alice" });
  const bob = createIdentity(dir, { name: "bob", makeDefault: true });
  assert.equal(loadIdentity(dir).id, bob.id);
  assert.equal(loadIdentity(dir, "alice").id, alice.id);
  assert.equal(loadIdentity(dir, alice.id).name, "alice");
  assert.equal(codeOf(() => loadIdentity(dir, "carol")), "IDENTITY_NOT_FOUND");
  assert.equal(codeOf(() => loadIdentity(dir, `nx1${"a".repeat(52)}`)), "IDENTITY_NOT_FOUND");
  assert.equal(codeOf(() => loadIdentity(dir, "../etc/passwd")), "IDENTITY_NAME_INVALID");
  assert.equal(codeOf(() => createIdentity(dir, { name: "alice" })), "IDENTITY_NAME_TAKEN");
  assert.equal(codeOf(() => createIdentity(dir, { name: "a b" })), "IDENTITY_NAME_INVALID");
  assert.equal(setDefaultIdentity(dir, "alice").id, alice.id);
  assert.equal(loadIdentity(dir).id, alice.id);
});

test("rotate: the new current key is the committed one; the KEL and the export verify", () => {
  const dir = fresh();
  const alice = createIdentity(dir, { name: "alice" });
  const { identity: r1, event } = rotateIdentity(dir);
  assert.equal(r1.state.seq, 1);
  assert.equal(keyDigest(r1.current.publicKey), alice.state.nextKeyDigest, "rotated to the pre-committed key");
  assert.equal(event.event.kind, "rotation");
  const r2 = rotateIdentity(dir, "alice").identity;
  assert.equal(r2.state.seq, 2);
  assert.deepEqual(loadIdentity(dir, alice.id).state, r2.state);
  assert.equal(mode(r2.path), 0o600);
  const pub = exportPublic(dir, "alice");
  assert.equal(pub.kel.length, 3);
  assert.deepEqual(verifyPublicIdentity(JSON.parse(JSON.stringify(pub))), r2.state);
  assert.deepEqual(verifyKel(pub.kel), r2.state);
  assert.doesNotMatch(JSON.stringify(pub), /Seed/);
  assert.equal(codeOf(() => verifyPublicIdentity({ ...pub, id: createIdentity(dir).id })), "IDENTITY_ID_MISMATCH");
  assert.equal(codeOf(() => verifyPublicIdentity({ ...pub, kel: pub.kel.slice(1) })), "IDENTITY_EVENT_OUT_OF_ORDER");
  assert.equal(codeOf(() => verifyPublicIdentity({ kel: pub.kel })), "IDENTITY_EVENT_MALFORMED");
  assert.ok(!readdirSync(dir).some((f) => f.endsWith(".tmp") || f === "lock"));
});

test("a private file or directory readable by others is refused, with the chmod to run", () => {
  const dir = fresh();
  const alice = createIdentity(dir, { name: "alice" });
  for (const m of [0o640, 0o604, 0o660, 0o644, 0o666, 0o610]) {
    chmodSync(alice.path, m);
    const f = failure(() => loadIdentity(dir, alice.id));
    assert.equal(f.code, "IDENTITY_KEY_FILE_MODE", m.toString(8));
    assert.ok(f.message.includes(`chmod 600 ${alice.path}`), f.message);
    assert.equal(codeOf(() => rotateIdentity(dir, alice.id)), "IDENTITY_KEY_FILE_MODE");
    assert.equal(codeOf(() => listIdentities(dir)), "IDENTITY_KEY_FILE_MODE");
  }
  chmodSync(alice.path, 0o400);
  assert.equal(loadIdentity(dir).id, alice.id, "stricter than 0600 is fine");
  chmodSync(alice.path, 0o600);
  chmodSync(dir, 0o755);
  const d = failure(() => loadIdentity(dir));
  assert.equal(d.code, "IDENTITY_KEY_FILE_MODE");
  assert.ok(d.message.includes(`chmod 700 ${dir}`), d.message);
  assert.equal(codeOf(() => createIdentity(dir)), "IDENTITY_KEY_FILE_MODE");
  chmodSync(dir, 0o700);
  chmodSync(join(dir, "default"), 0o644);
  assert.equal(codeOf(() => loadIdentity(dir)), "IDENTITY_KEY_FILE_MODE");
  chmodSync(join(dir, "default"), 0o600);
  assert.equal(loadIdentity(dir).id, alice.id);
});

test("a symlinked identity file is refused", () => {
  const dir = fresh();
  const alice = createIdentity(dir);
  const elsewhere = join(dir, "..", "elsewhere.json");
  renameSync(alice.path, elsewhere);
  symlinkSync(elsewhere, alice.path);
  assert.equal(codeOf(() => loadIdentity(dir, alice.id)), "IDENTITY_KEY_FILE_MODE");
});

test("corrupt or inconsistent identity files are IDENTITY_KEYRING_CORRUPT", () => {
  const dir = fresh();
  const alice = createIdentity(dir, { name: "alice" });
  rotateIdentity(dir);
  const original = readFileSync(alice.path, "utf8");
  const file = JSON.parse(original) as { kel: { event: Record<string, unknown>; signature: string }[]; currentSeed: string; nextSeed: string };
  const variants: [string, string][] = [
    ["not JSON", "{"],
    ["duplicate key", original.replace('"v": 1,', '"v": 1, "v": 1,')],
    ["seeds swapped", JSON.stringify({ ...file, currentSeed: file.nextSeed, nextSeed: file.currentSeed })],
    ["KEL truncated", JSON.stringify({ ...file, kel: file.kel.slice(0, 1) })],
    ["KEL tampered", JSON.stringify({ ...file, kel: [file.kel[0], { ...file.kel[1], signature: file.kel[0]?.signature }] })],
    ["extra field", JSON.stringify({ ...file, note: "x" })],
    ["seed too short", JSON.stringify({ ...file, nextSeed: toBase64(new Uint8Array(31)) })],
    ["too large", " ".repeat(IDENTITY_FILE_BYTES_MAX + 1)],
  ];
  for (const [what, text] of variants) {
    writeFileSync(alice.path, text, { mode: 0o600 });
    assert.equal(codeOf(() => loadIdentity(dir, alice.id)), "IDENTITY_KEYRING_CORRUPT", what);
  }
  writeFileSync(alice.path, original, { mode: 0o600 });
  const bob = createIdentity(dir);
  const bobText = readFileSync(bob.path, "utf8");
  writeFileSync(alice.path, bobText, { mode: 0o600 });
  assert.equal(codeOf(() => loadIdentity(dir, alice.id)), "IDENTITY_KEYRING_CORRUPT", "a file holding another identity");
  writeFileSync(alice.path, original, { mode: 0o600 });
  writeFileSync(join(dir, "default"), "not-an-id\n", { mode: 0o600 });
  assert.equal(codeOf(() => loadIdentity(dir)), "IDENTITY_KEYRING_CORRUPT");
  writeFileSync(join(dir, "default"), `${alice.id}\n`, { mode: 0o600 });
  assert.equal(loadIdentity(dir).state.seq, 1);
});

test("the lock: a second writer is refused with IDENTITY_KEYRING_BUSY; leftovers of a crash are ignored", () => {
  const dir = fresh();
  const alice = createIdentity(dir);
  writeFileSync(join(dir, "lock"), "12345\n", { mode: 0o600 });
  assert.equal(codeOf(() => rotateIdentity(dir)), "IDENTITY_KEYRING_BUSY");
  assert.equal(codeOf(() => createIdentity(dir)), "IDENTITY_KEYRING_BUSY");
  assert.equal(codeOf(() => setDefaultIdentity(dir, alice.id)), "IDENTITY_KEYRING_BUSY");
  assert.equal(loadIdentity(dir).state.seq, 0, "reading needs no lock");
  rmSync(join(dir, "lock"));
  // A crash between writing the temporary file and the rename leaves a dot-file: it is ignored.
  writeFileSync(join(dir, `.${alice.id}.json.0123456789abcdef.tmp`), "partial", { mode: 0o600 });
  assert.equal(listIdentities(dir).length, 1);
  assert.equal(rotateIdentity(dir).identity.state.seq, 1);
  assert.ok(existsSync(alice.path));
});

test("a keyring path that is a file, not a directory, is an IO error", () => {
  const dir = fresh();
  mkdirSync(join(dir, ".."), { recursive: true });
  writeFileSync(dir, "x");
  assert.equal(codeOf(() => createIdentity(dir)), "IDENTITY_KEYRING_IO");
});
