/**
 * docs/threat-model.md cannot rot: its scenario table has at least 25 rows, and every row names a
 * test (`test/…test.ts › name`) that exists in that file under exactly that name.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../support/paths.ts";

const SCENARIOS_MIN = 25;

interface Row {
  readonly n: string;
  readonly actor: string;
  readonly file: string;
  readonly name: string;
}

/** The rows of the "## Scenarios" table. */
function rows(doc: string): Row[] {
  const section = doc.slice(doc.indexOf("## Scenarios"));
  const end = section.indexOf("\n## ", 3);
  const lines = (end < 0 ? section : section.slice(0, end)).split("\n").filter((l) => /^\|\s*\d+\s*\|/.test(l));
  return lines.map((l) => {
    const cells = l.split("|").slice(1, -1).map((c) => c.trim());
    assert.equal(cells.length, 5, `a row has # | actor | attack | defence | test: ${l}`);
    const m = /^`(test\/[^`]+\.test\.ts) › ([^`]+)`$/.exec(cells[4] ?? "");
    assert.ok(m, `the test cell reads \`test/….test.ts › name\`: ${cells[4] ?? ""}`);
    return { n: cells[0] ?? "", actor: cells[1] ?? "", file: m[1] ?? "", name: m[2] ?? "" };
  });
}

/** Whether `source` declares a test (test or it) with exactly `name`, in any quote style. */
function declares(source: string, name: string): boolean {
  const regex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return ['"', "'", "`"].some((q) => {
    const literal = name.replaceAll("\\", "\\\\").replaceAll(q, `\\${q}`);
    return new RegExp(`\\b(?:test|it)\\(\\s*${q}${regex(literal)}${q}\\s*,`).test(source);
  });
}

test("docs/threat-model.md lists at least 25 scenarios, numbered in order, covering every hostile actor of the constitution", () => {
  const list = rows(readFileSync(join(REPO_ROOT, "docs", "threat-model.md"), "utf8"));
  assert.ok(list.length >= SCENARIOS_MIN, `${list.length} scenarios`);
  assert.deepEqual(list.map((r) => r.n), list.map((_, i) => String(i + 1)));
  const actors = new Set(list.map((r) => r.actor.replace(/ \(.*\)$/, "")));
  for (const a of ["hostile IMVU", "malicious admin", "network attacker", "compromised service", "partition", "exit", "revenue math"]) assert.ok(actors.has(a), `a scenario of the ${a}`);
});

test("every scenario names a test file that exists and declares a test with that exact name", () => {
  const list = rows(readFileSync(join(REPO_ROOT, "docs", "threat-model.md"), "utf8"));
  const missing: string[] = [];
  for (const r of list) {
    const path = join(REPO_ROOT, r.file);
    if (!existsSync(path)) {
      missing.push(`${r.n}: no file ${r.file}`);
      continue;
    }
    if (!declares(readFileSync(path, "utf8"), r.name)) missing.push(`${r.n}: ${r.file} has no test named "${r.name}"`);
  }
  assert.deepEqual(missing, []);
});

test("the check is real: a misspelt name or file is reported", () => {
  assert.equal(declares('test("a b", () => {});', "a b"), true);
  assert.equal(declares('test("a b", () => {});', "a c"), false);
  assert.equal(declares("it('it\\'s', () => {});", "it's"), true);
  assert.throws(() => rows("## Scenarios\n| 1 | x | y | z | `src/a.ts › t` |\n"), /test cell/);
});
