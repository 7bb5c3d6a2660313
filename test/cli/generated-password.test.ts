/** Generated mailbox passwords: 24 base64url characters, never a leading "-" (swaks would read it as an option). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generatedPassword } from "../../src/cli/commands/mail.ts";

test("generated passwords are 24 base64url characters and never start with '-'", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const p = generatedPassword();
    assert.match(p, /^[A-Za-z0-9_][A-Za-z0-9_-]{23}$/);
    seen.add(p);
  }
  assert.equal(seen.size, 20_000, "no repeats");
});

test("swaks reads a leading '-' as an option: the reason for the rule", () => {
  const r = spawnSync("swaks", ["--to", "a@b.example", "--server", "127.0.0.1:9", "--auth-user", "u", "--auth-password", "-abc", "--quit-after", "CONNECT"], { encoding: "utf8", timeout: 20_000 });
  assert.match(r.stdout + r.stderr, /Unknown option: abc/);
});
