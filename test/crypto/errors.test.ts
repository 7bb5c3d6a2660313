import { test } from "node:test";
import assert from "node:assert/strict";
import { cryptoErrors } from "../../src/core/crypto/index.ts";
import { errorRows } from "./doc-rows.ts";

test('docs/errors.md lists every CRYPTO_ code, with its HTTP status, exit code and message, under "## crypto"', () => {
  const rows = errorRows("crypto", "CRYPTO_");
  const specs = Object.entries(cryptoErrors.specs);
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
});
