/**
 * The download writer of `nexus imvu exit` (src/cli/unpack-writer.ts): whatever the sizes and
 * however the bytes are cut into chunks, each file lands byte for byte, with O_DIRECT (padded last
 * write, then truncated) and with plain writes; files within one slot are written at once; an
 * existing file is never overwritten; a write failure is kept and reported.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { UNPACK_SLOT_BYTES, UnpackedFile, WriteBehind } from "../../src/cli/unpack-writer.ts";

/** Deterministic bytes (fast to make and to compare). */
function bytesOf(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const SIZES = [0, 1, 511, 4095, 4096, 4097, UNPACK_SLOT_BYTES - 1, UNPACK_SLOT_BYTES, UNPACK_SLOT_BYTES + 1, 2 * UNPACK_SLOT_BYTES + 12_345];

for (const direct of [true, false]) {
  test(`files land byte for byte however they are cut (${direct ? "O_DIRECT" : "plain writes"})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-unpack-"));
    try {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...SIZES), fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 8 }), async (size, cuts) => {
          const data = bytesOf(size, ++n);
          const behind = new WriteBehind({ direct });
          const path = join(dir, `f${n}`);
          const file = new UnpackedFile(path, behind);
          for (let off = 0, i = 0; off < size; i++) {
            const len = Math.min(cuts[i % cuts.length] ?? 1, size - off);
            file.write(data.subarray(off, off + len));
            off += len;
            await behind.room();
          }
          file.close();
          await behind.drain();
          assert.equal(statSync(path).size, size);
          assert.ok(readFileSync(path).equals(data), `file of ${size} bytes`);
        }),
        { numRuns: 40 },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("an existing file is never overwritten: a small one fails at once, a large one through drain", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nexus-unpack-"));
  try {
    const small = join(dir, "small");
    writeFileSync(small, "already here");
    const a = new UnpackedFile(small, new WriteBehind());
    a.write(bytesOf(10, 7));
    assert.throws(() => a.close(), /EEXIST/);
    const large = join(dir, "large");
    writeFileSync(large, "already here");
    const behind = new WriteBehind();
    const b = new UnpackedFile(large, behind);
    b.write(bytesOf(3 * UNPACK_SLOT_BYTES, 8));
    b.close();
    await assert.rejects(behind.drain(), /EEXIST/);
    await assert.rejects(behind.room(), /EEXIST/, "the first failure stays");
    assert.equal(readFileSync(small, "utf8"), "already here");
    assert.equal(readFileSync(large, "utf8"), "already here");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
