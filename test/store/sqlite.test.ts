/** The store conformance suite on SQLite (a real file in a temp dir), plus SQLite-only duties. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { storeConformance } from "./conformance.ts";
import { sqliteHarness } from "./harness.ts";
import { openStore } from "../../src/store/index.ts";
import { isNexusError } from "../../src/core/errors.ts";

storeConformance(sqliteHarness);

test("sqlite: WAL journal, synchronous=FULL, file mode 0600", async () => {
  const h = sqliteHarness();
  const store = await openStore({ url: h.url });
  try {
    await store.run("CREATE TABLE t (k INTEGER PRIMARY KEY)");
    const path = h.url.slice("sqlite:".length);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const raw = new DatabaseSync(path);
    try {
      assert.equal(raw.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    } finally {
      raw.close();
    }
    const sync = await store.all<{ synchronous: bigint }>("SELECT * FROM pragma_synchronous");
    assert.equal(sync[0]?.synchronous, 2n, "FULL");
  } finally {
    await store.close();
    await h.cleanup();
  }
});

test("sqlite: a file that is not a database is STORE_CORRUPT; bad URLs are STORE_URL_INVALID", async () => {
  const h = sqliteHarness();
  try {
    const path = h.url.slice("sqlite:".length);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(path, "this is not a database, just text that is long enough to be read as a header.".repeat(20));
    await assert.rejects(
      (async () => {
        const s = await openStore({ url: h.url });
        await s.get("SELECT count(*) AS c FROM sqlite_master");
      })(),
      (e: unknown) => isNexusError(e, "STORE_CORRUPT"),
    );
    for (const url of ["mysql://x", "http://x", "nonsense"]) {
      await assert.rejects(openStore({ url }), (e: unknown) => isNexusError(e, "STORE_URL_INVALID"));
    }
    await assert.rejects(openStore({}), (e: unknown) => isNexusError(e, "STORE_URL_INVALID"));
  } finally {
    await h.cleanup();
  }
});

test("sqlite: another process holding the write lock past the busy timeout gives STORE_BUSY", { timeout: 30_000 }, async () => {
  const h = sqliteHarness();
  const store = await openStore({ url: h.url });
  const path = h.url.slice("sqlite:".length);
  const raw = new DatabaseSync(path);
  try {
    await store.run("CREATE TABLE t (k INTEGER PRIMARY KEY)");
    raw.exec("BEGIN IMMEDIATE");
    await assert.rejects(store.run("INSERT INTO t (k) VALUES (1)"), (e: unknown) => isNexusError(e, "STORE_BUSY"));
    raw.exec("ROLLBACK");
    await store.run("INSERT INTO t (k) VALUES (1)");
  } finally {
    raw.close();
    await store.close();
    await h.cleanup();
  }
});

test("registered migrations are applied by migrateRegistered", async () => {
  const { registerMigrations, migrateRegistered } = await import("../../src/store/index.ts");
  const h = sqliteHarness();
  const store = await openStore({ url: h.url });
  try {
    const list = [{ version: 1, name: "t", up: { sqlite: ["CREATE TABLE reg_t (k INTEGER)"], postgres: ["CREATE TABLE reg_t (k BIGINT)"] } }];
    registerMigrations("reg-test", list);
    registerMigrations("reg-test", list);
    assert.throws(() => registerMigrations("reg-test", [...list]));
    assert.throws(() => registerMigrations("Bad Name", list));
    assert.throws(() => registerMigrations("gap", [{ ...list[0]!, version: 2 }]));
    const got = await migrateRegistered(store);
    assert.equal(got["reg-test"], 1);
    await store.run("INSERT INTO reg_t (k) VALUES (1)");
  } finally {
    await store.close();
    await h.cleanup();
  }
});
