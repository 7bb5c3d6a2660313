/** docs/exit.md and docs/errors.md stay in step with the code: every bundle path and every EXIT_ code is documented. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { exitErrors, PATHS } from "../../src/imvu/index.ts";
import { createErrors } from "../../src/cli/commands/imvu-create.ts";
import { REPO_ROOT } from "../support/paths.ts";

test("docs/exit.md names every fixed path of the bundle", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/exit.md"), "utf8");
  for (const p of Object.values(PATHS)) assert.ok(doc.includes(p), `${p} is not in docs/exit.md`);
});

test("docs/errors.md lists every EXIT_ code with its HTTP status and exit code", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/errors.md"), "utf8");
  for (const [code, spec] of Object.entries(exitErrors.specs)) {
    assert.ok(doc.includes(`| ${code} | ${spec.http} | ${spec.exit} |`), `${code} is not in docs/errors.md`);
  }
});

test("docs/errors.md lists every code of imvu create", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/errors.md"), "utf8");
  for (const [code, spec] of Object.entries(createErrors.specs)) {
    assert.ok(doc.includes(`| ${code} | ${spec.http} | ${spec.exit} | ${spec.message} |`), `${code} is not in docs/errors.md`);
  }
});
