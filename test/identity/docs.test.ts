import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { identityErrors } from "../../src/core/identity/index.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { errorRows } from "../crypto/doc-rows.ts";

test('docs/errors.md lists every IDENTITY_ code, with its HTTP status, exit code and message, under "## identity"', () => {
  const rows = errorRows("identity", "IDENTITY_");
  const specs = Object.entries(identityErrors.specs);
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
});

test("docs/identity.md states the formats, the id derivation, the duties and the limits", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "identity.md"), "utf8");
  for (const s of ['"kind":"inception"', '"kind":"rotation"', "nx1", "RFC 4648", "## Non-goals", "MUST NOT", "chmod 600", "## Limits", "KEL_EVENTS_MAX"]) {
    assert.ok(doc.includes(s), s);
  }
});
