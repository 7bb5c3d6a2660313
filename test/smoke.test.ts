import { test } from "node:test";
import assert from "node:assert/strict";
import { NexusError, defineErrors } from "../src/core/errors.ts";
import { ed25519FromSeed, ed25519Sign, ed25519Verify } from "../src/core/crypto/ed25519.ts";
import { fromHex, toHex } from "../src/core/crypto/bytes.ts";

test("defineErrors builds NexusErrors carrying their stable code", () => {
  const t = defineErrors({ X_BAD: { message: "bad", http: 400, exit: 2 } });
  const e = t.make("X_BAD", "detail");
  assert.ok(e instanceof NexusError);
  assert.equal(e.code, "X_BAD");
  assert.equal(e.message, "bad: detail");
});

test("Ed25519 matches RFC 8032 section 7.1 TEST 2", () => {
  const kp = ed25519FromSeed(fromHex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")!);
  assert.equal(toHex(kp.publicKey), "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  const sig = ed25519Sign(kp.privateKey, fromHex("72")!);
  assert.equal(
    toHex(sig),
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  );
  assert.ok(ed25519Verify(kp.publicKey, fromHex("72")!, sig));
  const bad = new Uint8Array(sig);
  bad[0] = (bad[0] ?? 0) ^ 1;
  assert.equal(ed25519Verify(kp.publicKey, fromHex("72")!, bad), false);
});
