import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import fc from "fast-check";
import { isNexusError } from "../../src/core/errors.ts";
import { MaildirWriter, ensureMaildir, maildirContent } from "../../src/services/mail/maildir-deliver.ts";
import {
  MaildirStore,
  folderDirName,
  formatUidlist,
  lfToCrlf,
  normalizeMailboxName,
  parseName,
  parseUidlist,
  withUidlistLock,
  type Uidlist,
} from "../../src/services/mail/maildir/index.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isNexusError(e) ? e.code : `not a NexusError: ${String(e)}`;
  }
  return "none";
}

async function codeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isNexusError(e) ? e.code : `not a NexusError: ${String(e)}`;
  }
  return "none";
}

function tempMaildir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "nexus-maildir-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const md = join(dir, "Maildir");
  ensureMaildir(md);
  return md;
}

const msg = (i: number): Buffer => Buffer.from(`Subject: m${i}\r\nFrom: a@b.example\r\n\r\nbody ${i}\r\n`);

test("dovecot-uidlist: Dovecot 2.3's own file reads back, with N below the last UID corrected", () => {
  // Written by Dovecot 2.3.19 after giving UID 1 (it appends lines without rewriting N).
  const u = parseUidlist("3 V1795397251 N1 G5d51661c8396036b983a000083ecc375\n1 :1700000000.M1P1Q1.host,S=103\n");
  assert.equal(u.uidValidity, 1795397251);
  assert.equal(u.nextUid, 2);
  assert.equal(u.guid, "5d51661c8396036b983a000083ecc375");
  assert.deepEqual(u.entries, [{ uid: 1, base: "1700000000.M1P1Q1.host,S=103", ext: "" }]);
  const ext = parseUidlist("3 V7 N9 G00000000000000000000000000000000\n4 W120 G1234 :x.y:2,S\n");
  assert.deepEqual(ext.entries, [{ uid: 4, base: "x.y", ext: "W120 G1234" }]);
  const v1 = parseUidlist("1 77 5\n2 a.b:2,S\n");
  assert.equal(v1.uidValidity, 77);
  assert.deepEqual(v1.entries, [{ uid: 2, base: "a.b", ext: "" }]);
});

test("dovecot-uidlist: malformed files are MAILDIR_UIDLIST_INVALID", () => {
  for (const bad of ["", "2 V1 N1", "3 N1 G00", "3 V0 N1", "3 V1 N1\n0 :a", "3 V1 N1\n2 :a\n2 :b", "3 V1 N1\n5 a", "3 V1 N1\n4294967296 :a", "3 V1 N1\n1 :../x/y"]) {
    assert.equal(codeOf(() => parseUidlist(bad)), "MAILDIR_UIDLIST_INVALID", JSON.stringify(bad));
  }
});

test("property: formatUidlist then parseUidlist is the identity", () => {
  const entries = fc
    .uniqueArray(fc.integer({ min: 1, max: 0xffff_fffe }), { maxLength: 30 })
    .map((uids) => uids.sort((a, b) => a - b))
    .chain((uids) =>
      fc.tuple(
        fc.constant(uids),
        fc.array(fc.string({ unit: fc.constantFrom(..."abc019.,=MPQ".split("")), minLength: 1, maxLength: 20 }), { minLength: uids.length, maxLength: uids.length }),
        fc.array(fc.constantFrom("", "W12", "W5 G0a"), { minLength: uids.length, maxLength: uids.length }),
      ),
    );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0xffff_ffff }), fc.string({ unit: fc.constantFrom(..."0123456789abcdef".split("")), minLength: 32, maxLength: 32 }), entries, (v, g, [uids, names, exts]) => {
      const guid = g.toLowerCase();
      const last = uids[uids.length - 1] ?? 0;
      const u: Uidlist = { uidValidity: v, nextUid: last + 1, guid, entries: uids.map((uid, i) => ({ uid, base: names[i] ?? "x", ext: exts[i] ?? "" })) };
      assert.deepEqual(parseUidlist(formatUidlist(u)), u);
    }),
  );
});

test("Maildir names: base, sorted flag letters, S= and W=; dot files skipped", () => {
  assert.deepEqual(parseName("1700.M1P2Q3.host,S=100,W=104:2,SRa"), { base: "1700.M1P2Q3.host,S=100,W=104", letters: "RSa", size: 100, vsize: 104 });
  assert.deepEqual(parseName("1700.x"), { base: "1700.x", letters: "", size: undefined, vsize: undefined });
  assert.equal(parseName(".hidden"), undefined);
  assert.equal(parseName(""), undefined);
  assert.equal(lfToCrlf(Buffer.from("a\nb\r\nc\n")).toString(), "a\r\nb\r\nc\r\n");
});

test("mailbox names: INBOX in any case, Maildir++ directories, and every escape attempt refused", () => {
  assert.equal(normalizeMailboxName("inbox"), "INBOX");
  assert.equal(normalizeMailboxName("InBox.Work"), "INBOX.Work");
  assert.equal(folderDirName("INBOX"), "");
  assert.equal(folderDirName("Archive.2024"), ".Archive.2024");
  assert.equal(normalizeMailboxName("&AOk-t&AOk-"), "&AOk-t&AOk-");
  for (const bad of ["", ".", "..", "...", "a..b", ".a", "a.", "a/b", "../x", "..%2f", "~root", "a*", "a%", "a\\b", "x\u0000", "caf\u00e9", "&Jjo", "&A-", "a".repeat(201), Array(17).fill("a").join(".")]) {
    assert.equal(codeOf(() => normalizeMailboxName(bad)), "MAILDIR_NAME_INVALID", JSON.stringify(bad));
  }
});

test("property: a name that is accepted maps to one directory strictly inside the Maildir root", () => {
  const root = resolve("/srv/mail/alpha/alice@a.example/Maildir");
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: fc.constantFrom(..."./~&-a\\*%".split("")), maxLength: 12 })), (name) => {
      let n: string;
      try {
        n = normalizeMailboxName(name);
      } catch (e) {
        assert.ok(isNexusError(e, "MAILDIR_NAME_INVALID"));
        return;
      }
      const dir = folderDirName(n);
      const path = resolve(root, dir);
      assert.ok(!dir.includes("/"));
      assert.ok(path === root || (path.startsWith(root + sep) && path.slice(root.length + 1) === dir), `${name} -> ${path}`);
    }),
    { numRuns: 5000 },
  );
});

test("a folder gives UIDs in delivery order, keeps them across reopen, and moves new/ to cur/ only on SELECT", async (t) => {
  const md = tempMaildir(t);
  const w = new MaildirWriter("mx.test");
  for (let i = 1; i <= 3; i++) await w.deliver([md], maildirContent([msg(i)]));
  const store = new MaildirStore(md);
  const examine = await store.open("INBOX");
  assert.deepEqual((await examine.sync(false)).recent, []);
  assert.deepEqual(
    examine.messages().map((m) => [m.uid, m.sub]),
    [
      [1, "new"],
      [2, "new"],
      [3, "new"],
    ],
  );
  const uidlist = readFileSync(join(md, "dovecot-uidlist"), "utf8");
  assert.match(uidlist, /^3 V\d+ N4 G[0-9a-f]{32}\n1 :\d+\.M\d+P\d+Q1\.mx\.test,S=\d+,W=\d+\n2 :/);
  const select = await store.open("INBOX");
  assert.deepEqual((await select.sync(true)).recent, [1, 2, 3]);
  assert.deepEqual(readdirSync(join(md, "new")), []);
  assert.ok(readdirSync(join(md, "cur")).every((n) => n.endsWith(":2,")));
  const again = await store.open("INBOX");
  await again.sync(true);
  assert.equal(again.uidValidity, examine.uidValidity);
  assert.deepEqual(
    again.messages().map((m) => m.uid),
    [1, 2, 3],
  );
  assert.equal(again.uidNext, 4);
  assert.equal((await again.read(again.messages()[0] ?? assert.fail())).toString(), "Subject: m1\nFrom: a@b.example\n\nbody 1\n");
});

test("flags rename within cur/, keywords go to dovecot-keywords, APPEND and EXPUNGE keep UIDs ascending", async (t) => {
  const md = tempMaildir(t);
  const store = new MaildirStore(md);
  const f = await store.open("INBOX");
  await f.sync(true);
  const date = new Date("2024-02-01T10:00:00Z");
  const uid1 = await f.append(msg(1), await f.lettersFor(["\\Seen"]), date);
  const uid2 = await f.append(msg(2), await f.lettersFor(["\\Flagged", "$Work", "Junk"]), undefined);
  assert.deepEqual([uid1, uid2], [1, 2]);
  assert.equal(readFileSync(join(md, "dovecot-keywords"), "utf8"), "0 $Work\n1 Junk\n");
  const e2 = f.byUid(2) ?? assert.fail();
  assert.deepEqual(f.flagsOf(e2), ["\\Flagged", "$Work", "Junk"]);
  assert.ok(e2.name.endsWith(":2,Fab"));
  assert.equal((await f.internalDate(f.byUid(1) ?? assert.fail())).toISOString(), date.toISOString());
  const e1 = await f.setLetters(f.byUid(1) ?? assert.fail(), "ST");
  assert.ok(readdirSync(join(md, "cur")).includes(e1.name));
  assert.deepEqual(await f.expunge([e1]), [1]);
  const uid3 = await f.append(msg(3), "", undefined);
  assert.equal(uid3, 3, "a UID is never reused after an expunge");
  const other = await store.open("INBOX");
  await other.sync(false);
  assert.deepEqual(
    other.messages().map((m) => [m.uid, other.flagsOf(m).join(" ")]),
    [
      [2, "\\Flagged $Work Junk"],
      [3, ""],
    ],
  );
});

test("a missing or broken uidlist gets a new, larger UIDVALIDITY (RFC 3501 2.3.1.1)", async (t) => {
  const md = tempMaildir(t);
  const w = new MaildirWriter("mx.test");
  await w.deliver([md], maildirContent([msg(1)]));
  const store = new MaildirStore(md);
  const f = await store.open("INBOX");
  await f.sync(false);
  const v1 = f.uidValidity;
  writeFileSync(join(md, "dovecot-uidlist"), "garbage\n");
  const g = await store.open("INBOX");
  await g.sync(false);
  assert.ok(g.uidValidity > v1);
  rmSync(join(md, "dovecot-uidlist"));
  const h = await store.open("INBOX");
  await h.sync(false);
  assert.ok(h.uidValidity > g.uidValidity);
});

test("concurrent sessions and deliveries never give one UID twice or one message two UIDs", async (t) => {
  const md = tempMaildir(t);
  const w = new MaildirWriter("mx.test");
  const store = new MaildirStore(md);
  const folders = await Promise.all([0, 1, 2].map(() => store.open("INBOX")));
  const work: Array<Promise<unknown>> = [];
  for (let i = 0; i < 40; i++) {
    work.push(w.deliver([md], maildirContent([msg(i)])));
    work.push((folders[i % 3] ?? assert.fail()).sync(i % 2 === 0));
  }
  await Promise.all(work);
  await Promise.all(folders.map((f) => f.sync(true)));
  const maps = folders.map((f) => f.messages().map((m) => `${m.uid}=${m.base}`));
  assert.equal(maps[0]?.length, 40);
  assert.deepEqual(maps[1], maps[0]);
  assert.deepEqual(maps[2], maps[0]);
  assert.equal(new Set(folders[0]?.messages().map((m) => m.uid)).size, 40);
});

test("the uidlist lock: a fresh lock held elsewhere times out, a stale one is broken", async (t) => {
  const md = tempMaildir(t);
  const lock = join(md, "dovecot-uidlist.lock");
  writeFileSync(lock, "");
  assert.equal(await codeOfAsync(withUidlistLock(md, async () => undefined, 100)), "MAILDIR_LOCK_TIMEOUT");
  const old = new Date(Date.now() - 10 * 60_000);
  utimesSync(lock, old, old);
  assert.equal(await withUidlistLock(md, async () => "got it", 1000), "got it");
  assert.deepEqual(
    readdirSync(md).filter((n) => n.includes("lock")),
    [],
  );
});

test("folders: Maildir++ layout, children, rename with inferiors, delete, Dovecot's subscriptions file", async (t) => {
  const md = tempMaildir(t);
  const store = new MaildirStore(md);
  await store.create("Archive");
  await store.create("Archive.2024");
  await store.create("Sent");
  assert.ok(readdirSync(join(md, ".Archive.2024")).includes("maildirfolder"));
  assert.deepEqual(
    (await store.list()).map((f) => f.name),
    ["INBOX", "Archive", "Archive.2024", "Sent"],
  );
  assert.equal(await codeOfAsync(store.create("Sent")), "MAILDIR_EXISTS");
  assert.equal(await codeOfAsync(store.create("INBOX")), "MAILDIR_EXISTS");
  assert.equal(await codeOfAsync(store.delete("Archive")), "MAILDIR_HAS_CHILDREN");
  assert.equal(await codeOfAsync(store.delete("INBOX")), "MAILDIR_INBOX_FIXED");
  assert.equal(await codeOfAsync(store.open("Nope")), "MAILDIR_NOT_FOUND");
  await store.subscribe("Archive.2024");
  await store.subscribe("Sent");
  assert.equal(readFileSync(join(md, "subscriptions"), "utf8"), "V\t2\n\nArchive\t2024\nSent\n");
  await store.rename("Archive", "Old");
  assert.deepEqual(
    (await store.list()).map((f) => f.name),
    ["INBOX", "Old", "Old.2024", "Sent"],
  );
  assert.deepEqual(await store.subscriptions(), ["Old.2024", "Sent"]);
  const sent = await store.open("Sent");
  await sent.sync(false);
  const v = sent.uidValidity;
  await store.delete("Sent");
  await store.create("Sent");
  const again = await store.open("Sent");
  await again.sync(false);
  assert.ok(again.uidValidity > v, "a re-created folder gets a larger UIDVALIDITY");
  mkdirSync(join(md, ".evil..x"));
  assert.ok(!(await store.list()).some((f) => f.name.includes("evil")), "unservable directory names are not listed");
});

test("renaming INBOX moves its messages into the new folder and leaves INBOX empty (RFC 3501 6.3.5)", async (t) => {
  const md = tempMaildir(t);
  const w = new MaildirWriter("mx.test");
  for (let i = 0; i < 3; i++) await w.deliver([md], maildirContent([msg(i)]));
  const store = new MaildirStore(md);
  await store.rename("INBOX", "Old");
  const inbox = await store.open("INBOX");
  await inbox.sync(false);
  assert.equal(inbox.messages().length, 0);
  const old = await store.open("Old");
  await old.sync(false);
  assert.equal(old.messages().length, 3);
});
