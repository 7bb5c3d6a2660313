/** The store conformance suite on the real PostgreSQL (NEXUS_TEST_DATABASE_URL), plus PostgreSQL-only duties. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { storeConformance } from "./conformance.ts";
import { postgresHarness, testDatabaseUrl } from "./harness.ts";
import { openStore, rewritePlaceholders } from "../../src/store/index.ts";
import { isNexusError } from "../../src/core/errors.ts";

test("the PostgreSQL conformance suite has a database (fails, never skips, without one)", () => {
  assert.match(testDatabaseUrl(), /^postgres(ql)?:\/\//);
});

storeConformance(postgresHarness);

test("postgres: placeholder rewriting skips literals, identifiers, comments and dollar quotes", () => {
  const cases: [string, string, number][] = [
    ["SELECT ?, ?", "SELECT $1, $2", 2],
    ["SELECT '?', ?", "SELECT '?', $1", 1],
    ["SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , $1", 1],
    ["SELECT E'\\' ?', ?", "SELECT E'\\' ?', $1", 1],
    ['SELECT "a?b" FROM t WHERE x = ?', 'SELECT "a?b" FROM t WHERE x = $1', 1],
    ["SELECT ? -- ?\n, ?", "SELECT $1 -- ?\n, $2", 2],
    ["SELECT /* ? /* ? */ ? */ ?", "SELECT /* ? /* ? */ ? */ $1", 1],
    ["SELECT $$ ? $$, $tag$ ? $tag$, ?", "SELECT $$ ? $$, $tag$ ? $tag$, $1", 1],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?", 0],
  ];
  for (const [sql, text, count] of cases) assert.deepEqual(rewritePlaceholders(sql), { text, count }, sql);
});

test("postgres: a wrong parameter count, an unreachable server and a bad schema are typed errors", async () => {
  const h = postgresHarness();
  const store = await h.open();
  try {
    await assert.rejects(store.get("SELECT ? AS a", []), (e: unknown) => isNexusError(e, "STORE_QUERY_FAILED"));
  } finally {
    await store.close();
    await h.cleanup();
  }
  await assert.rejects(openStore({ url: "postgres://nobody@127.0.0.1:1/none" }), (e: unknown) => isNexusError(e, "STORE_UNAVAILABLE"));
  await assert.rejects(openStore({ url: testDatabaseUrl(), schema: "Bad; DROP" }), (e: unknown) => isNexusError(e, "STORE_URL_INVALID"));
});

test("postgres: committing a transaction PostgreSQL aborted is an error, not a silent rollback", async () => {
  const h = postgresHarness();
  const store = await h.open();
  try {
    await store.run("CREATE TABLE t (k BIGINT PRIMARY KEY)");
    await store.run("INSERT INTO t (k) VALUES (?)", [1]);
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.run("INSERT INTO t (k) VALUES (?)", [2]);
        await tx.run("INSERT INTO t (k) VALUES (?)", [1]).catch(() => undefined);
      }),
      (e: unknown) => isNexusError(e, "STORE_CONFLICT") || isNexusError(e, "STORE_QUERY_FAILED"),
    );
    assert.deepEqual((await store.all<{ k: bigint }>("SELECT k FROM t")).map((r) => r.k), [1n]);
    await store.transaction(async (tx) => tx.run("INSERT INTO t (k) VALUES (?)", [3]));
  } finally {
    await store.close();
    await h.cleanup();
  }
});
