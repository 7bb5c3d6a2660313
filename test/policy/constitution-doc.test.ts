/** docs/constitution.md embeds the command catalogue exactly as the code declares it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { catalogueMarkdown } from "../../src/cli/commands/gates.ts";
import { REPO_ROOT } from "../support/paths.ts";

test("the catalogue table in docs/constitution.md is the code's (regenerate with ./nexus gates --markdown)", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs/constitution.md"), "utf8");
  const m = /<!-- catalogue:begin -->\n([\s\S]*?)\n<!-- catalogue:end -->/.exec(doc);
  assert.ok(m?.[1], "docs/constitution.md has the catalogue markers");
  assert.equal(m[1], catalogueMarkdown());
});
