import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { computeErrors } from "../../src/services/compute/errors.ts";
import { REPO_ROOT } from "../support/paths.ts";

test("docs/errors.md lists every compute code under ## compute, with its HTTP status and exit code", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/errors.md"), "utf8");
  const start = doc.indexOf("\n## compute\n");
  assert.ok(start >= 0, "a ## compute section");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const listed = new Map<string, string>();
  for (const m of section.matchAll(/^\| (COMPUTE_[A-Z_]+) \| (\d+) \| (\d+) \|/gm)) listed.set(m[1] ?? "", `${m[2]}/${m[3]}`);
  for (const [code, spec] of Object.entries(computeErrors.specs)) {
    assert.equal(listed.get(code), `${spec.http}/${spec.exit}`, code);
    assert.ok(code.startsWith("COMPUTE_"));
  }
  assert.equal(listed.size, Object.keys(computeErrors.specs).length, "no stale codes in the doc");
});
