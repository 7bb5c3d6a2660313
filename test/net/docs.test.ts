/** docs/errors.md lists every NET_ code; docs/net.md states the contract and limits. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GATEWAY_LIMITS, netErrors } from "../../src/services/net/index.ts";
import { REPO_ROOT } from "../support/paths.ts";

test('docs/errors.md lists every NET_ code, with its HTTP status, exit code and message, under "## net"', () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf("\n## net\n");
  assert.ok(start >= 0, "docs/errors.md has a ## net heading");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| (NET_[A-Z_]+) \| (.*) \|$/gm)) rows.set(m[1] ?? "", m[2] ?? "");
  const specs = Object.entries(netErrors.specs);
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) {
    assert.ok(c.startsWith("NET_"));
    assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
  }
});

test("docs/net.md states goals, duties, limits (every named limit) and the error codes", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "net.md"), "utf8");
  for (const s of ["## Goals", "## Non-goals", "## Duties", "MUST NOT", "## Limits", "## Errors", "nexus-route-version", "## Kernel shaping"]) assert.ok(doc.includes(s), s);
  for (const k of Object.keys(GATEWAY_LIMITS)) assert.ok(doc.includes(`\`${k}\``), `limit ${k} documented`);
  for (const c of Object.keys(netErrors.specs)) assert.ok(doc.includes(c), `${c} in docs/net.md`);
});
