/** Reads the rows of one part's section of docs/errors.md (shared by the crypto and identity doc tests). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../support/paths.ts";

/** The rows of a docs/errors.md section: code → "HTTP | exit | meaning". */
export function errorRows(heading: string, prefix: string): Map<string, string> {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `docs/errors.md has a ## ${heading} heading`);
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(new RegExp(`^\\| (${prefix}[A-Z_]+) \\| (.*) \\|$`, "gm"))) rows.set(m[1] ?? "", m[2] ?? "");
  return rows;
}
