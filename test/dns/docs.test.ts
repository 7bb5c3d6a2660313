/** docs/errors.md lists every DNS_ code; docs/dns.md states the duties and limits. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dnsErrors } from "../../src/services/dns/index.ts";
import { REPO_ROOT } from "../support/paths.ts";

test('docs/errors.md lists every DNS_ code, with its HTTP status, exit code and message, under "## dns"', () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf("\n## dns\n");
  assert.ok(start >= 0, "docs/errors.md has a ## dns heading");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| (DNS_[A-Z_]+) \| (.*) \|$/gm)) rows.set(m[1] ?? "", m[2] ?? "");
  const specs = Object.entries(dnsErrors.specs);
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) {
    assert.ok(c.startsWith("DNS_"));
    assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
  }
});

test("docs/dns.md exists and states duties, support and limits", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "dns.md"), "utf8");
  for (const s of ["## Duties", "MUST NOT", "## Supported", "## Not supported", "## Limits", "ZoneStore"]) assert.ok(doc.includes(s), s);
});
