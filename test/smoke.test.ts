import { test } from "node:test";
import assert from "node:assert/strict";
import { NexusError, defineErrors } from "../src/core/errors.ts";

test("defineErrors builds NexusErrors carrying their stable code", () => {
  const t = defineErrors({ X_BAD: { message: "bad", http: 400, exit: 2 } });
  const e = t.make("X_BAD", "detail");
  assert.ok(e instanceof NexusError);
  assert.equal(e.code, "X_BAD");
  assert.equal(e.message, "bad: detail");
});
