/**
 * The ledger on a real store: group commit, savepoints, proofs against the reference Merkle math,
 * restart, tailing, O(log n) reads, and tamper tests doing raw SQL behind the ledger's back.
 * Run against SQLite (log-sqlite.test.ts) and PostgreSQL (log-postgres.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { APPENDS_PER_WORK_MAX, Ledger, type SignedCheckpoint } from "../../src/core/ledger/ledger.ts";
import { verifyLedgerStorage } from "../../src/core/ledger/ledger-verify.ts";
import { EMPTY_ROOT, leafHash, rootOf, verifyConsistency, verifyInclusion } from "../../src/core/ledger/merkle.ts";
import { noteSignerFromEd25519, openNote, parseCheckpoint, verifierKey } from "../../src/core/ledger/note.ts";
import { ed25519FromSeed } from "../../src/core/crypto/ed25519.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { utf8 } from "../../src/core/crypto/bytes.ts";
import type { SqlParam, Store } from "../../src/store/types.ts";
import type { StoreHarness } from "../store/harness.ts";
import { REPO_ROOT } from "../support/paths.ts";

const ORIGIN = "nexus.test/ledger";
const KEY = ed25519FromSeed(new Uint8Array(32).fill(9));
const SIGNER = noteSignerFromEd25519(ORIGIN, KEY.privateKey, KEY.publicKey);
const VKEY = verifierKey(ORIGIN, KEY.publicKey);

const entryOf = (i: number): Uint8Array => utf8(`{"n":${i}}`);

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  await assert.rejects(async () => (typeof p === "function" ? p() : p), (e: unknown) => {
    assert.ok(isNexusError(e), `expected ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** Appends `n` entries in works of `perWork` (submitted together, so several share a batch). */
async function fill(ledger: Ledger, n: number, perWork: number): Promise<void> {
  const works: Promise<unknown>[] = [];
  for (let start = Number(ledger.size), end = start + n; start < end; start += perWork) {
    const from = start;
    const to = Math.min(end, start + perWork);
    works.push(ledger.submit(async (ctx) => {
      for (let i = from; i < to; i++) await ctx.append(entryOf(i));
    }));
  }
  await Promise.all(works);
}

/** A Store wrapper counting read statements and the rows they return (to show proofs read O(log n) rows). */
function counting(store: Store): { store: Store; reads: () => { statements: number; rows: number }; reset: () => void } {
  let statements = 0;
  let rows = 0;
  const wrapped: Store = {
    dialect: store.dialect,
    run: (sql: string, p?: readonly SqlParam[]) => store.run(sql, p),
    all: async <T>(sql: string, p?: readonly SqlParam[]) => {
      statements++;
      const r = await store.all<T>(sql, p);
      rows += r.length;
      return r;
    },
    get: async <T>(sql: string, p?: readonly SqlParam[]) => {
      statements++;
      const r = await store.get<T>(sql, p);
      if (r !== undefined) rows++;
      return r;
    },
    transaction: (fn) => store.transaction(fn),
    migrate: (part, list) => store.migrate(part, list),
    close: () => store.close(),
  };
  return { store: wrapped, reads: () => ({ statements, rows }), reset: () => void ((statements = 0), (rows = 0)) };
}

/** Opens a ledger on a fresh database; `done` closes everything and removes the database. */
async function fresh(make: () => StoreHarness, opts: { verifierKey?: boolean } = {}) {
  const h = make();
  const store = await h.open();
  const ledger = await Ledger.open(store, { origin: ORIGIN, signer: SIGNER, ...(opts.verifierKey === false ? {} : { verifierKey: VKEY }) });
  return {
    h,
    store,
    ledger,
    done: async () => {
      await ledger.close();
      await store.close();
      await h.cleanup();
    },
  };
}

function checkNote(cp: SignedCheckpoint, size: bigint): void {
  const { text } = openNote(cp.note, [VKEY]);
  const parsed = parseCheckpoint(text);
  assert.equal(parsed.origin, ORIGIN);
  assert.equal(parsed.size, size);
  assert.deepEqual(parsed.root, cp.checkpoint.root);
}

/** Registers the suite against the stores `make` opens. */
export function ledgerStoreSuite(make: () => StoreHarness): void {
  test("an empty ledger: size 0, a signed checkpoint of the empty root, nothing to read", async () => {
    const t = await fresh(make);
    try {
      assert.equal(t.ledger.size, 0n);
      const cp = await t.ledger.checkpoint();
      checkNote(cp, 0n);
      assert.deepEqual(cp.checkpoint.root, EMPTY_ROOT);
      await rejectsWith(t.ledger.entry(0n), "LEDGER_INDEX_OUT_OF_RANGE");
      await rejectsWith(t.ledger.inclusionProof(0n), "LEDGER_INDEX_OUT_OF_RANGE");
      assert.deepEqual(await t.ledger.verifyAll(), { ok: true, size: 0n, entriesChecked: 0n, checkpointsChecked: 0 });
    } finally {
      await t.done();
    }
  });

  test("proofs and roots match the reference Merkle math at every size, across tile boundaries", async () => {
    const t = await fresh(make);
    try {
      const n = 600;
      await fill(t.ledger, n, 7);
      assert.equal(t.ledger.size, BigInt(n));
      const leaves = Array.from({ length: n }, (_, i) => leafHash(entryOf(i)));
      checkNote(await t.ledger.checkpoint(), BigInt(n));
      for (const size of [1, 2, 3, 255, 256, 257, 511, 512, 513, 599, 600]) {
        const s = BigInt(size);
        const root = await t.ledger.rootAt(s);
        assert.deepEqual(root, rootOf(leaves.slice(0, size)), `root at ${size}`);
        for (const i of new Set([0, 1, size >> 1, size - 2, size - 1].filter((x) => x >= 0 && x < size))) {
          const proof = await t.ledger.inclusionProof(BigInt(i), s);
          assert.ok(verifyInclusion(leaves[i] ?? new Uint8Array(0), BigInt(i), s, proof, root), `inclusion ${i} in ${size}`);
        }
        for (const size1 of [1, 2, 7, 256, 300].filter((x) => x < size)) {
          const proof = await t.ledger.consistencyProof(BigInt(size1), s);
          assert.ok(verifyConsistency(BigInt(size1), s, rootOf(leaves.slice(0, size1)), root, proof), `consistency ${size1}→${size}`);
        }
      }
      assert.deepEqual(await t.ledger.entry(123n), entryOf(123));
      assert.deepEqual((await t.ledger.entries(598n, 10)).map((r) => r.index), [598n, 599n]);
      const report = await t.ledger.verifyAll();
      assert.equal(report.ok, true, report.problem);
      assert.equal(report.entriesChecked, BigInt(n));
    } finally {
      await t.done();
    }
  });

  test("group commit: concurrent submits share batches, get contiguous indices, resolve only once committed", async () => {
    const t = await fresh(make);
    const other = await t.h.open();
    try {
      const seen: boolean[] = [];
      const got = await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          t.ledger.append(entryOf(i)).then(async (r) => {
            const row = await other.get<{ idx: bigint }>("SELECT idx FROM ledger_entries WHERE idx = ?", [r.index]);
            seen.push(row !== undefined);
            return r.index;
          }),
        ),
      );
      assert.deepEqual([...got].sort((a, b) => (a < b ? -1 : 1)), Array.from({ length: 64 }, (_, i) => BigInt(i)));
      assert.ok(seen.every(Boolean), "every append was visible to another connection when it resolved");
      const batches = (await other.get<{ c: bigint }>("SELECT count(*) AS c FROM ledger_checkpoints"))?.c ?? 0n;
      assert.ok(batches < 64n && batches >= 1n, `64 appends took ${batches} commits`);
      assert.equal((await t.ledger.verifyAll()).ok, true);
    } finally {
      await other.close();
      await t.done();
    }
  });

  test("a throwing work rolls back only its own appends and writes; the next work reuses its index", async () => {
    const t = await fresh(make);
    try {
      await t.store.run("CREATE TABLE proj_test (k BIGINT PRIMARY KEY, v TEXT NOT NULL)");
      const boom = new Error("gate said no");
      const a = t.ledger.submit(async (ctx) => {
        const r = await ctx.append(entryOf(0));
        await ctx.tx.run("INSERT INTO proj_test (k, v) VALUES (?, ?)", [r.index, "a"]);
        return r.index;
      });
      const b = t.ledger.submit(async (ctx) => {
        const r = await ctx.append(entryOf(1));
        await ctx.tx.run("INSERT INTO proj_test (k, v) VALUES (?, ?)", [r.index, "b"]);
        await ctx.append(entryOf(2));
        throw boom;
      });
      const c = t.ledger.submit(async (ctx) => {
        assert.equal(ctx.nextIndex, 1n);
        const r = await ctx.append(entryOf(3));
        await ctx.tx.run("INSERT INTO proj_test (k, v) VALUES (?, ?)", [r.index, "c"]);
        return r.index;
      });
      await assert.rejects(b, (e) => e === boom);
      assert.equal(await a, 0n);
      assert.equal(await c, 1n);
      assert.deepEqual(await t.ledger.entry(1n), entryOf(3));
      const rows = await t.store.all<{ k: bigint; v: string }>("SELECT k, v FROM proj_test ORDER BY k");
      assert.deepEqual(rows.map((r) => [r.k, r.v]), [[0n, "a"], [1n, "c"]]);
      assert.equal(t.ledger.size, 2n);
      assert.equal((await t.ledger.verifyAll()).ok, true);
    } finally {
      await t.done();
    }
  });

  test("hostile use: oversized entries, non-bytes, leaked contexts, bad indices, slow works are typed errors", async () => {
    const t = await fresh(make);
    try {
      await rejectsWith(t.ledger.append(new Uint8Array(256 * 1024 + 1)), "LEDGER_ENTRY_TOO_LARGE");
      await rejectsWith(t.ledger.append("text" as unknown as Uint8Array), "LEDGER_ENTRY_TOO_LARGE");
      let leaked: { append(e: Uint8Array): Promise<unknown>; tx: Store } | undefined;
      await t.ledger.submit(async (ctx) => {
        leaked = ctx as unknown as typeof leaked;
        await ctx.append(entryOf(0));
      });
      await rejectsWith(leaked!.append(entryOf(1)), "LEDGER_CONTEXT_CLOSED");
      await rejectsWith(leaked!.tx.run("SELECT 1"), "LEDGER_CONTEXT_CLOSED");
      await rejectsWith(t.ledger.entry(-1n), "LEDGER_RANGE");
      await rejectsWith(t.ledger.entry(1n), "LEDGER_INDEX_OUT_OF_RANGE");
      await rejectsWith(t.ledger.inclusionProof(0n, 2n), "LEDGER_SIZE_OUT_OF_RANGE");
      await rejectsWith(t.ledger.consistencyProof(2n, 1n), "LEDGER_SIZE_OUT_OF_RANGE");
      await rejectsWith(t.ledger.consistencyProof(-1n), "LEDGER_RANGE");
      await rejectsWith(t.ledger.rootAt(5n), "LEDGER_SIZE_OUT_OF_RANGE");
      assert.throws(() => t.ledger.subscribe(-1n, () => undefined), (e: unknown) => isNexusError(e, "LEDGER_RANGE"));
      await rejectsWith(
        t.ledger.submit(async (ctx) => {
          for (let i = 0; i <= APPENDS_PER_WORK_MAX; i++) await ctx.append(entryOf(i));
        }),
        "LEDGER_WORK_TOO_LARGE",
      );
      assert.equal(t.ledger.size, 1n);
    } finally {
      await t.done();
    }
    const slow = make();
    const store = await slow.open();
    try {
      const ledger = await Ledger.open(store, { origin: ORIGIN, signer: SIGNER, workTimeoutMs: 50 });
      const stuck = ledger.submit(async (ctx) => {
        await ctx.append(entryOf(0));
        await new Promise((r) => setTimeout(r, 300));
        await ctx.append(entryOf(1));
      });
      const next = ledger.append(entryOf(2));
      await rejectsWith(stuck, "LEDGER_WORK_TIMEOUT");
      assert.equal((await next).index, 0n);
      await new Promise((r) => setTimeout(r, 350));
      assert.equal(ledger.size, 1n);
      await ledger.close();
      await rejectsWith(ledger.append(entryOf(3)), "LEDGER_CLOSED");
    } finally {
      await store.close();
      await slow.cleanup();
    }
  });

  test("restart: reopening restores size, root, tiles and checkpoint; appends continue", { timeout: 120_000 }, async () => {
    const t = await fresh(make);
    try {
      await fill(t.ledger, 66_000, 6_000);
      const cp = await t.ledger.checkpoint();
      await t.ledger.close();
      const store2 = await t.h.open();
      try {
        const again = await Ledger.open(store2, { origin: ORIGIN, signer: SIGNER });
        assert.equal(again.size, 66_000n);
        assert.equal((await again.checkpoint()).note, cp.note);
        await fill(again, 100, 10);
        const leaves = Array.from({ length: 66_100 }, (_, i) => leafHash(entryOf(i)));
        const root = await again.rootAt(66_100n);
        assert.deepEqual(root, rootOf(leaves));
        for (const i of [0, 255, 256, 65_535, 65_536, 66_099]) {
          assert.ok(verifyInclusion(leaves[i] ?? EMPTY_ROOT, BigInt(i), 66_100n, await again.inclusionProof(BigInt(i)), root));
        }
        const report = await again.verifyAll();
        assert.equal(report.ok, true, report.problem);
        await again.close();
      } finally {
        await store2.close();
      }
    } finally {
      await t.done();
    }
  });

  test("proofs read O(log n) stored rows in one statement: at most two tiles per tile level", async () => {
    const t = await fresh(make);
    try {
      await fill(t.ledger, 70_000, 10_000);
      const c = counting(t.store);
      const tileLevels = 3; // 70,000 leaves: tile levels 0, 1 and 2
      const cases = [[0n, 70_000n], [12_345n, 65_537n], [69_999n, 70_000n], [300n, 301n], [65_535n, 65_536n], [4_097n, 70_000n]] as const;
      for (const [i, s] of cases) {
        // A fresh ledger each time: no tile cached, every tile a proof needs is read.
        const ledger = await Ledger.open(c.store, { origin: ORIGIN, signer: SIGNER, verifierKey: VKEY });
        for (const [what, proof] of [["inclusion", () => ledger.inclusionProof(i, s)], ["consistency", () => ledger.consistencyProof(i + 1n, s)]] as const) {
          c.reset();
          await proof();
          const r = c.reads();
          assert.ok(r.statements <= 1, `${what} ${i}/${s}: ${r.statements} statements`);
          assert.ok(r.rows <= 2 * tileLevels, `${what} ${i}/${s}: ${r.rows} rows`);
        }
      }
    } finally {
      await t.done();
    }
  });

  test("subscribe replays from an index, then follows live commits in order, with backpressure", async () => {
    const t = await fresh(make);
    try {
      await fill(t.ledger, 1500, 100);
      const got: bigint[] = [];
      let resolveDone: () => void = () => undefined;
      const done = new Promise<void>((r) => (resolveDone = r));
      const stop = t.ledger.subscribe(1490n, async (index, entry) => {
        assert.deepEqual(entry, entryOf(Number(index)));
        got.push(index);
        await new Promise((r) => setImmediate(r));
        if (index === 1519n) resolveDone();
      });
      await fill(t.ledger, 20, 3);
      await done;
      stop();
      await fill(t.ledger, 5, 5);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => 1490n + BigInt(i)));
      const errors: unknown[] = [];
      t.ledger.subscribe(0n, () => {
        throw new Error("consumer bug");
      }, (e) => errors.push(e));
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(errors.length, 1);
    } finally {
      await t.done();
    }
  });

  test("one sequencer per store: a second writer is refused, reloads, and can then append", async () => {
    const t = await fresh(make);
    const store2 = await t.h.open();
    try {
      const second = await Ledger.open(store2, { origin: ORIGIN, signer: SIGNER, verifierKey: VKEY });
      await t.ledger.append(entryOf(0));
      await rejectsWith(second.append(entryOf(1)), "LEDGER_SEQUENCER_CONFLICT");
      assert.equal(second.size, 1n, "reloaded after the conflict");
      assert.equal((await second.append(entryOf(1))).index, 1n);
      await second.close();
      await rejectsWith(Ledger.open(store2, { origin: "other.origin/log", signer: SIGNER }), "LEDGER_ORIGIN_MISMATCH");
    } finally {
      await store2.close();
      await t.done();
    }
  });

  test("an append that resolved survives the process being killed right after", { timeout: 60_000 }, async () => {
    const h = make();
    try {
      const script = `
        import { openStore } from "./src/store/index.ts";
        import { Ledger } from "./src/core/ledger/ledger.ts";
        import { noteSignerFromEd25519 } from "./src/core/ledger/note.ts";
        import { ed25519FromSeed } from "./src/core/crypto/ed25519.ts";
        const k = ed25519FromSeed(new Uint8Array(32).fill(9));
        const store = await openStore(${JSON.stringify({ url: h.url, schema: h.schema })});
        const ledger = await Ledger.open(store, { origin: ${JSON.stringify(ORIGIN)}, signer: noteSignerFromEd25519(${JSON.stringify(ORIGIN)}, k.privateKey, k.publicKey) });
        for (let i = 0; i < 20; i++) {
          const r = await ledger.append(new TextEncoder().encode('{"n":' + i + '}'));
          process.stdout.write(r.index + "\\n");
        }
        process.kill(process.pid, "SIGKILL");`;
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", "--input-type=module", "-e", script], { cwd: REPO_ROOT });
        let s = "";
        let err = "";
        child.stdout.on("data", (d: Buffer) => (s += d.toString()));
        child.stderr.on("data", (d: Buffer) => (err += d.toString()));
        child.on("error", reject);
        child.on("close", (_code, signal) => (signal === "SIGKILL" ? resolve(s) : reject(new Error(`child: ${err}`))));
      });
      const acknowledged = out.trim().split("\n").map(BigInt);
      assert.equal(acknowledged.length, 20);
      const store = await h.open();
      try {
        const ledger = await Ledger.open(store, { origin: ORIGIN, signer: SIGNER });
        assert.ok(ledger.size >= 20n);
        assert.equal((await ledger.verifyAll()).ok, true);
      } finally {
        await store.close();
      }
    } finally {
      await h.cleanup();
    }
  });

  tamperTests(make);
}

type Tamper = (db: Store, size: bigint) => Promise<void>;

async function flipByte(db: Store, sql: string, col: string, where: SqlParam[], offset: number, update: string): Promise<void> {
  const row = await db.get<Record<string, Uint8Array>>(sql, where);
  const b = new Uint8Array(row?.[col] ?? new Uint8Array(0));
  b[offset] = (b[offset] ?? 0) ^ 1;
  await db.run(update, [b, ...where]);
}

const TAMPERS: { name: string; tamper: Tamper; kind: string; firstBad?: (size: bigint) => bigint | undefined }[] = [
  {
    name: "entry bytes edited",
    tamper: (db) => db.run("UPDATE ledger_entries SET bytes = ? WHERE idx = ?", [utf8('{"n":"forged"}'), 123]).then(() => undefined),
    kind: "entry-hash",
    firstBad: () => 123n,
  },
  {
    name: "entry bytes and leaf hash edited together",
    tamper: (db) =>
      db.run("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?", [utf8("forged"), leafHash(utf8("forged")), 123]).then(() => undefined),
    kind: "tile-mismatch",
    firstBad: () => 123n,
  },
  { name: "entry deleted", tamper: (db) => db.run("DELETE FROM ledger_entries WHERE idx = ?", [200]).then(() => undefined), kind: "entry-missing", firstBad: () => 200n },
  {
    name: "last entry deleted",
    tamper: (db, size) => db.run("DELETE FROM ledger_entries WHERE idx = ?", [size - 1n]).then(() => undefined),
    kind: "entry-missing",
    firstBad: (size) => size - 1n,
  },
  {
    name: "entry inserted after the end",
    tamper: (db, size) => db.run("INSERT INTO ledger_entries (idx, bytes, leaf_hash) VALUES (?, ?, ?)", [size, utf8("x"), leafHash(utf8("x"))]).then(() => undefined),
    kind: "entry-extra",
    firstBad: (size) => size,
  },
  {
    name: "entry inserted with a negative index",
    tamper: (db) => db.run("INSERT INTO ledger_entries (idx, bytes, leaf_hash) VALUES (?, ?, ?)", [-5, utf8("x"), leafHash(utf8("x"))]).then(() => undefined),
    kind: "entry-extra",
    firstBad: () => 0n,
  },
  {
    name: "entries inserted in the middle by shifting indices",
    tamper: async (db, size) => {
      for (let i = size - 1n; i >= 300n; i--) await db.run("UPDATE ledger_entries SET idx = ? WHERE idx = ?", [i + 1n, i]);
      await db.run("INSERT INTO ledger_entries (idx, bytes, leaf_hash) VALUES (?, ?, ?)", [300, utf8("x"), leafHash(utf8("x"))]);
    },
    kind: "tile-mismatch",
    firstBad: () => 300n,
  },
  {
    name: "two entries reordered",
    tamper: async (db) => {
      await db.run("UPDATE ledger_entries SET idx = ? WHERE idx = ?", [-1, 50]);
      await db.run("UPDATE ledger_entries SET idx = ? WHERE idx = ?", [50, 51]);
      await db.run("UPDATE ledger_entries SET idx = ? WHERE idx = ?", [51, -1]);
    },
    kind: "tile-mismatch",
    firstBad: () => 50n,
  },
  {
    name: "a leaf hash in a tile edited",
    tamper: (db) =>
      flipByte(db, "SELECT hashes FROM ledger_tiles WHERE level = ? AND idx = ?", "hashes", [0, 1], (300 - 256) * 32, "UPDATE ledger_tiles SET hashes = ? WHERE level = ? AND idx = ?"),
    kind: "tile-mismatch",
    firstBad: () => 300n,
  },
  {
    name: "an inner node in a tile edited",
    tamper: (db) =>
      flipByte(db, "SELECT hashes FROM ledger_tiles WHERE level = ? AND idx = ?", "hashes", [0, 0], (256 + 10) * 32, "UPDATE ledger_tiles SET hashes = ? WHERE level = ? AND idx = ?"),
    kind: "tile-mismatch",
    firstBad: () => 20n,
  },
  {
    name: "a tile deleted",
    tamper: (db) => db.run("DELETE FROM ledger_tiles WHERE level = ? AND idx = ?", [0, 1]).then(() => undefined),
    kind: "tile-missing",
    firstBad: () => 256n,
  },
  {
    name: "a checkpoint's signature edited",
    tamper: async (db) => {
      const row = await db.get<{ size: bigint; note: string }>("SELECT size, note FROM ledger_checkpoints ORDER BY size LIMIT 1 OFFSET 3");
      assert.ok(row !== undefined, "at least four checkpoints");
      const note = row.note;
      const at = note.length - 10;
      const forged = note.slice(0, at) + (note[at] === "A" ? "B" : "A") + note.slice(at + 1);
      await db.run("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", [forged, row.size]);
    },
    kind: "checkpoint-signature",
  },
  {
    name: "the latest checkpoint deleted",
    tamper: (db, size) => db.run("DELETE FROM ledger_checkpoints WHERE size = ?", [size]).then(() => undefined),
    kind: "checkpoint-missing",
  },
];

function tamperTests(make: () => StoreHarness): void {
  for (const c of TAMPERS) {
    test(`verifyAll names the first bad index: ${c.name}`, async () => {
      const t = await fresh(make);
      const raw = await t.h.open();
      try {
        for (let round = 0; round < 6; round++) await fill(t.ledger, 100, 37); // several batches, several checkpoints
        const size = t.ledger.size;
        assert.equal((await t.ledger.verifyAll()).ok, true);
        await c.tamper(raw, size);
        const report = await t.ledger.verifyAll();
        assert.equal(report.ok, false);
        assert.equal(report.kind, c.kind, report.problem);
        if (c.firstBad) assert.equal(report.firstBadIndex, c.firstBad(size), report.problem);
        // The stored log alone (as `nexus ledger verify` reads it, no live size) is refused too.
        const cold = await verifyLedgerStorage(raw, {
          checkNote: (note) => {
            try {
              return { ok: true, checkpoint: parseCheckpoint(openNote(note, [VKEY]).text) };
            } catch {
              return { ok: false, problem: "bad signature" };
            }
          },
        });
        assert.equal(cold.ok, false, `cold verify missed: ${c.name}`);
      } finally {
        await raw.close();
        await t.done();
      }
    });
  }
}
