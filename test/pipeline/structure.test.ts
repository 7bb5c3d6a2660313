/**
 * "Nothing outside the pipeline writes state", made structural: no SQL outside
 * src/core/pipeline/pipeline.ts writes the projection table, and the writer is not exported
 * (it is reachable only from inside the transaction that appends the entry).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import * as pipelineModule from "../../src/core/pipeline/pipeline.ts";
import { REPO_ROOT } from "../support/paths.ts";

const WRITES_PROJECTION = /\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+TABLE(\s+IF\s+NOT\s+EXISTS)?|DROP\s+TABLE(\s+IF\s+EXISTS)?|ALTER\s+TABLE|TRUNCATE(\s+TABLE)?|REPLACE\s+INTO)\s+["`]?projection\b/i;
const FILES_MAX = 5000;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith(".ts")) out.push(p);
    assert.ok(out.length < FILES_MAX, "source scan bounded");
  }
  return out;
}

test("only src/core/pipeline/pipeline.ts has SQL that writes the projection table", () => {
  const writers = sources(join(REPO_ROOT, "src"))
    .filter((f) => WRITES_PROJECTION.test(readFileSync(f, "utf8")))
    .map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(writers, ["src/core/pipeline/pipeline.ts"]);
});

test("the projection writer is not exported, and no index module re-exports it", () => {
  assert.equal("writeChanges" in pipelineModule, false);
  for (const f of sources(join(REPO_ROOT, "src")).filter((p) => p.endsWith("index.ts"))) {
    assert.ok(!/writeChanges/.test(readFileSync(f, "utf8")), `${relative(REPO_ROOT, f)} does not mention writeChanges`);
  }
  // The only call of the writer is in the batch's ledger work (its transaction), after the batch
  // was sequenced (each command appended), with that work's context.
  const text = readFileSync(join(REPO_ROOT, "src/core/pipeline/pipeline.ts"), "utf8");
  const calls = [...text.matchAll(/await writeChanges\(ctx\.tx, overlay\.changes\)/g)];
  assert.equal(calls.length, 1);
  assert.equal([...text.matchAll(/writeChanges\(/g)].length, 2, "one definition, one call");
  const work = text.indexOf("await this.opts.ledger.submit(async (ctx) => {");
  const sequenced = text.indexOf("out.push(await this.sequence(item.raw, ctx, overlay))", work);
  const end = text.indexOf("});", sequenced);
  const at = calls[0]?.index ?? -1;
  assert.ok(work > 0 && sequenced > work && at > sequenced && at < end, "the writer runs inside the ledger work, after sequencing");
  assert.ok(text.indexOf("await ctx.append(", text.indexOf("private async sequence(")) > 0, "sequence() appends each entry");
});

test("the pattern itself catches the forms it must", () => {
  for (const sql of ["INSERT INTO projection (tbl) VALUES (?)", "update projection set v = 1", 'DELETE FROM "projection"', "CREATE TABLE IF NOT EXISTS projection (x)"]) {
    assert.ok(WRITES_PROJECTION.test(sql), sql);
  }
  assert.ok(!WRITES_PROJECTION.test("SELECT tbl, k, v FROM projection"));
});
