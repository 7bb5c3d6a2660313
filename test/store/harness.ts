/** Real stores for tests: a SQLite file in a temp dir, or a fresh schema in the test PostgreSQL. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Store } from "../../src/store/types.ts";
import { openStore } from "../../src/store/index.ts";

/** Opens stores on one database (each `open()` a new handle on the same data) and removes it. */
export interface StoreHarness {
  readonly name: "sqlite" | "postgres";
  /** What to give openStore / the CLI to reach the same database. */
  readonly url: string;
  readonly schema: string | undefined;
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** A SQLite harness on a fresh temp dir. */
export function sqliteHarness(): StoreHarness {
  const dir = mkdtempSync(join(tmpdir(), "nexus-store-"));
  return {
    name: "sqlite",
    url: `sqlite:${join(dir, "nexus.db")}`,
    schema: undefined,
    open: () => openStore({ dataDir: dir }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The test PostgreSQL URL; throws (the suite fails, never skips) when `./nexus test` did not set it. */
export function testDatabaseUrl(): string {
  const url = process.env.NEXUS_TEST_DATABASE_URL;
  if (url === undefined || url === "") {
    throw new Error("NEXUS_TEST_DATABASE_URL is not set: run the tests with ./nexus test (it starts PostgreSQL)");
  }
  return url;
}

/** A PostgreSQL harness on a fresh schema, so test files running in parallel never collide. */
export function postgresHarness(): StoreHarness {
  const url = testDatabaseUrl();
  const schema = `t_${process.pid}_${randomBytes(6).toString("hex")}`;
  return {
    name: "postgres",
    url,
    schema,
    open: () => openStore({ url, schema }),
    cleanup: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
