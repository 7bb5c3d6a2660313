import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { handshakeErrors } from "../../src/core/handshake/index.ts";
import { REPO_ROOT } from "../support/paths.ts";

test('docs/errors.md lists every HANDSHAKE_ code, with its HTTP status, exit code and message, under "## handshake"', () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf("\n## handshake\n");
  assert.ok(start >= 0, "docs/errors.md has a ## handshake heading");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| (HANDSHAKE_[A-Z_]+) \| (.*) \|$/gm)) rows.set(m[1] ?? "", m[2] ?? "");
  const specs = Object.entries(handshakeErrors.specs);
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) {
    assert.ok(c.startsWith("HANDSHAKE_"));
    assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
  }
});

test("docs/handshake.md exists and states the formula and the duties", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "handshake.md"), "utf8");
  for (const s of ["C' = ceil(G' × p / 100)", "## Duties", "MUST NOT", "## Limits"]) assert.ok(doc.includes(s), s);
});
