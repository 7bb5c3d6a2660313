import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import fc from "fast-check";
import { isNexusError } from "../../src/core/errors.ts";
import { createSnapshot, deleteSnapshot, extractSnapshot, listSnapshots, verifySnapshot } from "../../src/services/compute/snapshot.ts";
import { entryHeader, parsePax, readTarSync, safeRelPath, tarChunks, TarStreamReader, writeTarSync, type TarEntry } from "../../src/services/compute/tar.ts";

const work = mkdtempSync(join(tmpdir(), "nexus-compute-snap-"));
after(() => {
  chmodAllWritable(work);
  rmSync(work, { recursive: true, force: true });
});

function chmodAllWritable(dir: string): void {
  execFileSync("chmod", ["-R", "u+w", dir]);
}

let n = 0;
function dir(): string {
  const d = join(work, `d${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
}

function sampleTree(root: string): void {
  mkdirSync(join(root, "site/assets"), { recursive: true });
  writeFileSync(join(root, "site/index.html"), "<h1>hi</h1>\n");
  writeFileSync(join(root, "site/assets/app.js"), "console.log(1)\n".repeat(1000));
  writeFileSync(join(root, "empty"), "");
  writeFileSync(join(root, "big.bin"), Buffer.alloc(3 * 1024 * 1024 + 7, 0xab));
  symlinkSync("site/index.html", join(root, "link"));
  const long = "x".repeat(120);
  mkdirSync(join(root, long), { recursive: true });
  writeFileSync(join(root, long, `${"y".repeat(110)}.txt`), "long name\n");
  writeFileSync(join(root, "é-unicode.txt"), "unicode\n");
  chmodSync(join(root, "site/index.html"), 0o640);
  chownSync(join(root, "empty"), 10000, 10000);
  for (const p of ["site/index.html", "empty", "big.bin", "site"]) utimesSync(join(root, p), 1_700_000_000, 1_700_000_000);
}

test("the same tree gives the same digest; a change gives another", async () => {
  const a = dir();
  sampleTree(a);
  const store = dir();
  const s1 = await createSnapshot(a, store);
  const s2 = await createSnapshot(a, store);
  assert.match(s1.digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(s1.digest, s2.digest);
  assert.equal(listSnapshots(store).length, 1);
  writeFileSync(join(a, "empty"), "x");
  const s3 = await createSnapshot(a, store);
  assert.notEqual(s3.digest, s1.digest);
  assert.equal(s1.sizeBytes % 512, 0);
});

test("snapshots are stored read-only and verified against their digest", async () => {
  const a = dir();
  sampleTree(a);
  const store = dir();
  const s = await createSnapshot(a, store);
  assert.equal(statSync(s.path).mode & 0o777, 0o444);
  assert.equal(statSync(store).mode & 0o777, 0o555);
  assert.equal((await verifySnapshot(store, s.digest)).sizeBytes, s.sizeBytes);
  // Root can still write: corruption is detected by the digest, not prevented by the mode.
  chmodSync(s.path, 0o644);
  const bytes = readFileSync(s.path);
  bytes[700] = (bytes[700] ?? 0) ^ 1;
  writeFileSync(s.path, bytes);
  await assert.rejects(verifySnapshot(store, s.digest), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"));
  await assert.rejects(extractSnapshot(store, s.digest, dir()), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"));
  await assert.rejects(verifySnapshot(store, `sha256:${"0".repeat(64)}`), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_NOT_FOUND"));
  await assert.rejects(verifySnapshot(store, "md5:abc"), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_NOT_FOUND"));
  await deleteSnapshot(store, s.digest);
  assert.equal(listSnapshots(store).length, 0);
});

test("restore reproduces content and metadata, and re-snapshots to the same digest", async () => {
  const a = dir();
  sampleTree(a);
  const store = dir();
  const s = await createSnapshot(a, store);
  const b = dir();
  writeFileSync(join(b, "stale"), "to be replaced");
  const { entries } = await extractSnapshot(store, s.digest, b);
  assert.equal(entries, s.entries);
  assert.ok(!existsSync(join(b, "stale")));
  assert.equal(readFileSync(join(b, "site/index.html"), "utf8"), "<h1>hi</h1>\n");
  assert.equal(statSync(join(b, "site/index.html")).mode & 0o777, 0o640);
  assert.equal(statSync(join(b, "empty")).uid, 10000);
  assert.equal(readlinkSync(join(b, "link")), "site/index.html");
  assert.equal(Math.floor(statSync(join(b, "big.bin")).mtimeMs / 1000), 1_700_000_000);
  assert.equal(Math.floor(statSync(join(b, "site")).mtimeMs / 1000), 1_700_000_000);
  const again = await createSnapshot(b, dir());
  assert.equal(again.digest, s.digest);
});

test("GNU tar reads the archives and gives back the same tree", async () => {
  const a = dir();
  sampleTree(a);
  const s = await createSnapshot(a, dir());
  const listing = execFileSync("tar", ["-tf", s.path], { encoding: "utf8" }).split("\n").filter((l) => l !== "");
  assert.ok(listing.includes("site/index.html"));
  assert.ok(listing.some((l) => l.endsWith(`${"y".repeat(110)}.txt`)), "pax long names");
  assert.ok(listing.includes("é-unicode.txt"));
  const out = dir();
  execFileSync("tar", ["-xpf", s.path, "-C", out]);
  assert.equal((await createSnapshot(out, dir())).digest, s.digest);
});

test("round trip holds for random trees (property)", async () => {
  const name = fc.stringMatching(/^[a-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.tuple(name, fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 0, max: 2 })), { maxLength: 8, selector: (t) => t[0] }), async (files) => {
      const src = dir();
      for (const [f, data, sub] of files) {
        const d = sub === 0 ? src : join(src, `sub${sub}`);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, f), data);
      }
      const store = dir();
      const s = await createSnapshot(src, store);
      const dst = dir();
      await extractSnapshot(store, s.digest, dst);
      assert.equal((await createSnapshot(dst, dir())).digest, s.digest);
    }),
    { numRuns: 25 },
  );
});

function handArchive(entries: { e: TarEntry; data?: Buffer }[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const { e, data } of entries) {
    parts.push(entryHeader(e));
    if (data) parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function storeArchive(bytes: Buffer): Promise<{ store: string; digest: string }> {
  const store = dir();
  const { createHash } = await import("node:crypto");
  const hex = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(store, `${hex}.tar`), bytes);
  return { store, digest: `sha256:${hex}` };
}

const base = { mode: 0o644, uid: 0, gid: 0, mtimeSec: 0, size: 0, linkTarget: "" };

test("hostile archives are refused with typed errors and write nothing outside", async () => {
  const cases: [string, Buffer, string][] = [
    ["dot-dot", handArchive([{ e: { ...base, path: "../escape", type: "file", size: 1 }, data: Buffer.from("x") }]), "COMPUTE_SNAPSHOT_UNSAFE"],
    ["absolute", handArchive([{ e: { ...base, path: "/etc/escape", type: "file", size: 1 }, data: Buffer.from("x") }]), "COMPUTE_SNAPSHOT_UNSAFE"],
    [
      "through a symlink",
      handArchive([
        { e: { ...base, path: "l", type: "symlink", linkTarget: work } },
        { e: { ...base, path: "l/escaped", type: "file", size: 1 }, data: Buffer.from("x") },
      ]),
      "COMPUTE_SNAPSHOT_UNSAFE",
    ],
    ["truncated", handArchive([{ e: { ...base, path: "a", type: "file", size: 1 }, data: Buffer.from("x") }], { end: false }), "COMPUTE_SNAPSHOT_CORRUPT"],
    ["garbage", Buffer.alloc(1024, 0x41), "COMPUTE_SNAPSHOT_CORRUPT"],
  ];
  const hardlink = entryHeader({ ...base, path: "h", type: "file" });
  hardlink.write("1", 156);
  let sum = 0;
  hardlink.write("        ", 148);
  for (const b of hardlink.subarray(0, 512)) sum += b;
  hardlink.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  cases.push(["hard link type", Buffer.concat([hardlink, Buffer.alloc(1024)]), "COMPUTE_SNAPSHOT_CORRUPT"]);
  for (const [desc, bytes, code] of cases) {
    const { store, digest } = await storeArchive(bytes);
    const target = dir();
    await assert.rejects(extractSnapshot(store, digest, target), (e) => isNexusError(e, code), desc);
  }
  assert.ok(!existsSync(join(work, "escaped")) && !existsSync("/etc/escape") && !existsSync(join(work, "..", "escape")));
});

test("path and pax parsing refuse malformed input", () => {
  for (const p of ["", "..", "a/../b", "/x", "a//b", "./", "a/./b"]) {
    assert.throws(() => safeRelPath(p), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_UNSAFE"), p);
  }
  assert.equal(safeRelPath("./a/b/"), "a/b");
  assert.deepEqual([...parsePax(Buffer.from("12 path=abc\n"))], [["path", "abc"]]);
  for (const bad of ["99 path=abc\n", "x path=abc\n", "12 pathabc\n\n", "11 path=abc"]) {
    assert.throws(() => parsePax(Buffer.from(bad)), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"), bad);
  }
});

test("a snapshot larger than its bound is refused and leaves nothing", async () => {
  const a = dir();
  writeFileSync(join(a, "f"), Buffer.alloc(100_000));
  const store = dir();
  await assert.rejects(createSnapshot(a, store, { maxBytes: 50_000 }), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_TOO_LARGE"));
  assert.equal(listSnapshots(store).length, 0);
  const out = join(dir(), "x.tar");
  const r = writeTarSync(a, out);
  assert.equal(lstatSync(out).size, r.sizeBytes);
});

test("tarChunks streams byte for byte the archive writeTarSync writes (files of every padding, empty files, dirs, symlinks)", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), fc.integer({ min: 0, max: 3 * 1024 * 1024 + 700 })), { minLength: 1, maxLength: 6 }), (files) => {
      const a = dir();
      mkdirSync(join(a, "sub", "deeper"), { recursive: true });
      for (const [i, [name, size]] of files.entries()) writeFileSync(join(a, i % 2 === 0 ? "sub" : ".", `${name}${i}`), Buffer.alloc(size, i + 1));
      writeFileSync(join(a, "empty"), "");
      symlinkSync("sub/deeper", join(a, "link"));
      const out = join(dir(), "x.tar");
      const r = writeTarSync(a, out, { durable: false });
      const streamed = Buffer.concat([...tarChunks(a)]);
      assert.equal(streamed.length, r.sizeBytes);
      assert.ok(streamed.equals(readFileSync(out)), "the same bytes");
    }),
    { numRuns: 8 },
  );
});

/** What a reader saw: each entry and its data. */
function readAll(feed: (onEntry: (e: TarEntry) => { data(c: Buffer): void; end(): void } | undefined) => void): { e: TarEntry; data: Buffer }[] {
  const seen: { e: TarEntry; data: Buffer }[] = [];
  feed((e) => {
    const parts: Buffer[] = [];
    const item = { e, data: Buffer.alloc(0) };
    seen.push(item);
    return { data: (c) => parts.push(Buffer.from(c)), end: () => void (item.data = Buffer.concat(parts)) };
  });
  return seen;
}

test("TarStreamReader, fed the archive in any chunks, sees what readTarSync sees (property)", () => {
  const a = dir();
  sampleTree(a);
  const out = join(dir(), "x.tar");
  writeTarSync(a, out, { durable: false });
  const bytes = readFileSync(out);
  const expected = readAll((onEntry) =>
    readTarSync(out, (e, data) => {
      const s = onEntry(e);
      if (e.type === "file") data((c) => s?.data(c));
      s?.end();
    }),
  );
  assert.ok(expected.length >= 8);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 40 }), (cuts) => {
      const got = readAll((onEntry) => {
        const r = new TarStreamReader((e) => {
          const s = onEntry(e);
          // Entries without data get their end at once, as readTarSync's callers do.
          if (e.type !== "file" || e.size === 0) s?.end();
          return e.type === "file" && e.size > 0 ? s : undefined;
        });
        let off = 0;
        for (let i = 0; off < bytes.length; i++) {
          const n = cuts[i % cuts.length] ?? 1;
          r.write(bytes.subarray(off, off + n));
          off += n;
        }
        assert.equal(r.end(), expected.length);
      });
      assert.deepEqual(got.map((x) => x.e), expected.map((x) => x.e));
      for (const [i, x] of got.entries()) assert.ok(x.data.equals(expected[i]?.data ?? Buffer.alloc(0)), x.e.path);
    }),
    { numRuns: 30 },
  );
});

test("TarStreamReader refuses what readTarSync refuses, and an archive cut anywhere before its end marker", () => {
  const a = dir();
  sampleTree(a);
  const out = join(dir(), "x.tar");
  writeTarSync(a, out, { durable: false });
  const bytes = readFileSync(out);
  const feed = (b: Buffer): number => {
    const r = new TarStreamReader(() => undefined);
    r.write(b);
    return r.end();
  };
  const endAt = bytes.length - 1024;
  for (const cut of [1, 511, 512, 513, 4096, endAt - 1]) {
    assert.throws(() => feed(bytes.subarray(0, cut)), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"), `cut at ${cut}`);
  }
  assert.ok(feed(bytes.subarray(0, endAt + 512)) > 0, "the first zero block ends the archive");
  const flipped = Buffer.from(bytes);
  flipped[100] = (flipped[100] ?? 0) ^ 0xff;
  assert.throws(() => feed(flipped), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"), "a header checksum");
  assert.throws(() => feed(handArchive([{ e: { ...base, path: "../escape", type: "file", size: 1 }, data: Buffer.from("x") }])), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_UNSAFE"));
  assert.throws(() => feed(Buffer.alloc(1024, 0x41)), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"));
});

test("readTarSync seeks over data it is not asked for, and still finds an archive whose data was cut", () => {
  const a = dir();
  writeFileSync(join(a, "big"), Buffer.alloc(5 * 1024 * 1024, 7));
  writeFileSync(join(a, "small"), "x");
  const out = join(dir(), "x.tar");
  writeTarSync(a, out, { durable: false });
  assert.deepEqual(readAll((onEntry) => readTarSync(out, (e) => void onEntry(e))).map((x) => x.e.path), ["big", "small"]);
  const cut = join(dir(), "cut.tar");
  writeFileSync(cut, readFileSync(out).subarray(0, 512 + 3 * 1024 * 1024));
  assert.throws(() => readTarSync(cut, () => {}), (e) => isNexusError(e, "COMPUTE_SNAPSHOT_CORRUPT"));
});
