/**
 * The store conformance suite: every driver behind the Store port must pass it unchanged
 * (run by test/store/sqlite.test.ts and test/store/postgres.test.ts).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Migration, Store } from "../../src/store/types.ts";
import { isNexusError } from "../../src/core/errors.ts";
import type { StoreHarness } from "./harness.ts";

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function kv(table: string): Migration {
  return {
    version: 1,
    name: `${table} table`,
    up: {
      sqlite: [`CREATE TABLE ${table} (k INTEGER PRIMARY KEY, n INTEGER, b BLOB, s TEXT)`],
      postgres: [`CREATE TABLE ${table} (k BIGINT PRIMARY KEY, n BIGINT, b BYTEA, s TEXT)`],
    },
  };
}

interface Row {
  k: bigint;
  n: bigint | null;
  b: Uint8Array | null;
  s: string | null;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isNexusError(e), `expected a NexusError ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Registers the conformance tests for the driver `harness` opens. */
export function storeConformance(makeHarness: () => StoreHarness): void {
  let h: StoreHarness;
  let store: Store;
  let tableNo = 0;
  const fresh = async (): Promise<string> => {
    const table = `conf_${++tableNo}`;
    assert.equal(await store.migrate(table.replace("_", "-"), [kv(table)]), 1);
    return table;
  };

  before(async () => {
    h = makeHarness();
    store = await h.open();
  });
  after(async () => {
    await store.close();
    await h.cleanup();
  });

  test("dialect names the driver", () => {
    assert.equal(store.dialect, h.name);
  });

  test("integers round-trip as bigint across the whole int64 range, blobs as plain Uint8Array", async () => {
    const t = await fresh();
    const blobs = [new Uint8Array(0), new Uint8Array([0, 1, 0, 255]), new Uint8Array(1 << 20).fill(7)];
    const ns = [0n, 1n, -1n, 2n ** 53n + 1n, INT64_MAX, INT64_MIN];
    for (let i = 0; i < ns.length; i++) {
      await store.run(`INSERT INTO ${t} (k, n, b, s) VALUES (?, ?, ?, ?)`, [i, ns[i] ?? null, blobs[i % 3] ?? null, "é ? '\u0000x".replace("\u0000", "")]);
    }
    const rows = await store.all<Row>(`SELECT k, n, b, s FROM ${t} ORDER BY k`);
    assert.equal(rows.length, ns.length);
    rows.forEach((r, i) => {
      assert.equal(typeof r.k, "bigint");
      assert.equal(r.k, BigInt(i));
      assert.equal(r.n, ns[i]);
      assert.ok(r.b instanceof Uint8Array);
      assert.equal(Object.getPrototypeOf(r.b), Uint8Array.prototype, "a plain Uint8Array, not a Buffer");
      assert.deepEqual(r.b, blobs[i % 3]);
      assert.equal(r.s, "é ? 'x");
    });
    const count = await store.get<{ c: bigint }>(`SELECT count(*) AS c FROM ${t}`);
    assert.equal(count?.c, BigInt(ns.length));
    assert.equal(await store.get(`SELECT k FROM ${t} WHERE k = ?`, [99]), undefined);
  });

  test("a ? inside literals, quoted identifiers and comments is not a placeholder", async () => {
    const row = await store.get<{ q: string; p: string; "w?": string }>(
      `SELECT '?' AS q, /* ? */ ? AS p, 'it''s ?' AS "w?" -- ?\n`,
      ["x"],
    );
    assert.deepEqual({ ...row }, { q: "?", p: "x", "w?": "it's ?" });
  });

  test("run reports the rows changed; NULL round-trips", async () => {
    const t = await fresh();
    for (let i = 0; i < 5; i++) await store.run(`INSERT INTO ${t} (k, n) VALUES (?, ?)`, [i, null]);
    assert.deepEqual(await store.run(`UPDATE ${t} SET s = ? WHERE k >= ?`, ["u", 2]), { changes: 3 });
    const r = await store.get<Row>(`SELECT k, n, b, s FROM ${t} WHERE k = ?`, [0n]);
    assert.equal(r?.n, null);
    assert.equal(r?.b, null);
  });

  test("typed errors: constraint, bad SQL, use after the transaction ended", async () => {
    const t = await fresh();
    await store.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]);
    await rejectsWith(store.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]), "STORE_CONSTRAINT");
    await rejectsWith(store.all("SELECT nope FROM no_such_table"), "STORE_QUERY_FAILED");
    let leaked: Store | undefined;
    await store.transaction(async (tx) => {
      leaked = tx as Store;
    });
    await rejectsWith(leaked!.run(`INSERT INTO ${t} (k) VALUES (?)`, [2]), "STORE_CLOSED");
  });

  test("a transaction commits, and a throwing one rolls back and rethrows the same error", async () => {
    const t = await fresh();
    const v = await store.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]);
      return (await tx.get<{ c: bigint }>(`SELECT count(*) AS c FROM ${t}`))?.c;
    });
    assert.equal(v, 1n);
    const boom = new Error("boom");
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [2]);
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.deepEqual((await store.all<Row>(`SELECT k FROM ${t}`)).map((r) => r.k), [1n]);
  });

  test("a failed statement caught inside a savepoint leaves the transaction usable", async () => {
    const t = await fresh();
    await store.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]);
    await store.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [2]);
      await tx.run("SAVEPOINT dup");
      await rejectsWith(tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]), "STORE_CONSTRAINT");
      await tx.run("ROLLBACK TO SAVEPOINT dup");
      await tx.run("RELEASE SAVEPOINT dup");
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [3]);
    });
    assert.deepEqual((await store.all<Row>(`SELECT k FROM ${t} ORDER BY k`)).map((r) => r.k), [1n, 2n, 3n]);
  });

  test("savepoints roll back only their own writes", async () => {
    const t = await fresh();
    await store.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]);
      await tx.run("SAVEPOINT w1");
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [2]);
      await tx.run("ROLLBACK TO SAVEPOINT w1");
      await tx.run("RELEASE SAVEPOINT w1");
      await tx.run("SAVEPOINT w2");
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [3]);
      await tx.run("RELEASE SAVEPOINT w2");
    });
    assert.deepEqual((await store.all<Row>(`SELECT k FROM ${t} ORDER BY k`)).map((r) => r.k), [1n, 3n]);
  });

  test("transactions are serialised: no lost update between concurrent read-modify-writes", async () => {
    const t = await fresh();
    await store.run(`INSERT INTO ${t} (k, n) VALUES (?, ?)`, [1, 0]);
    const bump = (): Promise<void> =>
      store.transaction(async (tx) => {
        const r = await tx.get<Row>(`SELECT n FROM ${t} WHERE k = ?`, [1]);
        await new Promise((res) => setTimeout(res, 5));
        await tx.run(`UPDATE ${t} SET n = ? WHERE k = ?`, [(r?.n ?? 0n) + 1n, 1]);
      });
    await Promise.all(Array.from({ length: 8 }, bump));
    assert.equal((await store.get<Row>(`SELECT n FROM ${t} WHERE k = ?`, [1]))?.n, 8n);
  });

  test("reads outside a transaction see only committed state", async () => {
    const t = await fresh();
    const inside = deferred();
    const proceed = deferred();
    const txDone = store.transaction(async (tx) => {
      await tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]);
      inside.resolve();
      await proceed.promise;
    });
    await inside.promise;
    assert.equal((await store.get<{ c: bigint }>(`SELECT count(*) AS c FROM ${t}`))?.c, 0n);
    proceed.resolve();
    await txDone;
    assert.equal((await store.get<{ c: bigint }>(`SELECT count(*) AS c FROM ${t}`))?.c, 1n);
  });

  test("committed data survives closing and reopening; a closed store refuses work", async () => {
    const t = await fresh();
    await store.transaction(async (tx) => tx.run(`INSERT INTO ${t} (k, s) VALUES (?, ?)`, [7, "kept"]));
    await store.close();
    await rejectsWith(store.get("SELECT 1 AS one"), "STORE_CLOSED");
    await rejectsWith(store.transaction(async () => undefined), "STORE_CLOSED");
    store = await h.open();
    assert.equal((await store.get<Row>(`SELECT s FROM ${t} WHERE k = ?`, [7]))?.s, "kept");
  });

  test("migrations: numbered, recorded, idempotent, refused when the database is newer", async () => {
    const list: Migration[] = [
      kv("mig_a"),
      { version: 2, name: "add column", up: { sqlite: ["ALTER TABLE mig_a ADD COLUMN extra TEXT"], postgres: ["ALTER TABLE mig_a ADD COLUMN extra TEXT"] } },
    ];
    assert.equal(await store.migrate("mig-a", list), 2);
    assert.equal(await store.migrate("mig-a", list), 2);
    const rows = await store.all<{ version: bigint; name: string }>("SELECT version, name FROM schema_version WHERE part = ? ORDER BY version", ["mig-a"]);
    assert.deepEqual(rows.map((r) => [r.version, r.name]), [[1n, "mig_a table"], [2n, "add column"]]);
    await store.run("INSERT INTO mig_a (k, extra) VALUES (?, ?)", [1, "x"]);
    await rejectsWith(store.migrate("mig-a", list.slice(0, 1)), "STORE_SCHEMA_TOO_NEW");
  });

  test("a failing migration is rolled back whole and reported", async () => {
    const bad: Migration[] = [
      { version: 1, name: "half", up: { sqlite: ["CREATE TABLE mig_b (k INTEGER)", "NOT SQL"], postgres: ["CREATE TABLE mig_b (k BIGINT)", "NOT SQL"] } },
    ];
    await rejectsWith(store.migrate("mig-b", bad), "STORE_MIGRATION_FAILED");
    await rejectsWith(store.all("SELECT k FROM mig_b"), "STORE_QUERY_FAILED");
    assert.equal((await store.get<{ c: bigint }>("SELECT count(*) AS c FROM schema_version WHERE part = ?", ["mig-b"]))?.c, 0n);
  });

  test("migrations from two handles at once apply each step exactly once", async () => {
    const other = await h.open();
    try {
      const list = [kv("mig_c")];
      const got = await Promise.all([store.migrate("mig-c", list), other.migrate("mig-c", list)]);
      assert.deepEqual(got, [1, 1]);
      assert.equal((await store.get<{ c: bigint }>("SELECT count(*) AS c FROM schema_version WHERE part = ?", ["mig-c"]))?.c, 1n);
    } finally {
      await other.close();
    }
  });

  test("a second handle sees the first one's commits", async () => {
    const t = await fresh();
    const other = await h.open();
    try {
      await store.transaction(async (tx) => tx.run(`INSERT INTO ${t} (k) VALUES (?)`, [1]));
      assert.equal((await other.get<{ c: bigint }>(`SELECT count(*) AS c FROM ${t}`))?.c, 1n);
    } finally {
      await other.close();
    }
  });
}
