/** docs/errors.md lists every PIPELINE_, GATE_ and API_ code with its HTTP status, exit code and message. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { apiErrors } from "../../src/api/errors.ts";
import type { ErrorTable } from "../../src/core/errors.ts";
import { pipelineErrors } from "../../src/core/pipeline/errors.ts";
import { policyErrors } from "../../src/core/policy/errors.ts";
import { errorRows } from "../crypto/doc-rows.ts";

for (const [heading, prefix, table] of [
  ["pipeline", "PIPELINE_", pipelineErrors],
  ["policy", "GATE_", policyErrors],
  ["api", "API_", apiErrors],
] as [string, string, ErrorTable<string>][]) {
  test(`docs/errors.md lists every ${prefix} code under "## ${heading}"`, () => {
    const rows = errorRows(heading, prefix);
    const specs = Object.entries(table.specs);
    assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
    for (const [c, s] of specs) {
      assert.ok(c.startsWith(prefix), c);
      assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
    }
  });
}
