/** RFC 9421 HTTP message signatures: the Appendix B.2.6 Ed25519 vector, round trips and tampering. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ed25519FromSeed, generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { fromHex } from "../../src/core/crypto/bytes.ts";
import { signRequest, verifyRequest, type SignableRequest } from "../../src/core/crypto/httpsig.ts";

// RFC 9421 Appendix B.1.4 test-key-ed25519 (seed) and the B.2.6 request; expected signature from B.2.6.
const KEY = ed25519FromSeed(fromHex("9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5")!);
const REQ: SignableRequest = {
  method: "POST",
  url: "https://example.com/foo?param=Value&Pet=dog",
  headers: {
    Host: "example.com",
    Date: "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Length": "18",
  },
};
const COMPONENTS = ["date", "@method", "@path", "@authority", "content-type", "content-length"];
const B26_SIG = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";

test("RFC 9421 B.2.6: signing reproduces the published Ed25519 signature", () => {
  const s = signRequest(REQ, { label: "sig-b26", components: COMPONENTS, params: { created: 1618884473, keyid: "test-key-ed25519" }, privateKey: KEY.privateKey });
  assert.equal(s.signature, B26_SIG);
  assert.equal(s.signatureInput, 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"');
});

test("RFC 9421 B.2.6: the published signature verifies; any changed component fails", () => {
  const headers = { ...REQ.headers, "Signature-Input": 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"', Signature: B26_SIG };
  const policy = { resolveKey: (k: string) => (k === "test-key-ed25519" ? KEY.publicKey : undefined), required: ["@method", "@path"], nowSec: 1618884473, maxAgeSec: 300 };
  assert.equal(verifyRequest({ ...REQ, headers }, policy).ok, true);
  assert.equal(verifyRequest({ ...REQ, method: "PUT", headers }, policy).ok, false);
  assert.equal(verifyRequest({ ...REQ, url: "https://example.com/bar", headers }, policy).ok, false);
  assert.equal(verifyRequest({ ...REQ, headers: { ...headers, "Content-Length": "19" } }, policy).ok, false);
  assert.equal(verifyRequest({ ...REQ, headers }, { ...policy, nowSec: 1618884473 + 301 }).ok, false, "too old");
  assert.equal(verifyRequest({ ...REQ, headers }, { ...policy, required: ["@query"] }).ok, false, "required component");
  assert.equal(verifyRequest({ ...REQ, headers }, { ...policy, resolveKey: () => undefined }).ok, false, "unknown key");
});

test("round trip with random paths and a fresh key; malformed headers never throw", () => {
  const kp = generateEd25519();
  fc.assert(
    fc.property(fc.webPath(), fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), (path, junkInput, junkSig) => {
      const req: SignableRequest = { method: "GET", url: `http://api.test${path.startsWith("/") ? path : "/" + path}`, headers: { Host: "api.test" } };
      const s = signRequest(req, { components: ["@method", "@path", "@authority"], params: { created: 1000, keyid: "k" }, privateKey: kp.privateKey });
      const policy = { resolveKey: () => kp.publicKey, required: ["@method", "@path"], nowSec: 1000, maxAgeSec: 60 };
      const signed = { ...req, headers: { ...req.headers, "Signature-Input": s.signatureInput, Signature: s.signature } };
      assert.equal(verifyRequest(signed, policy).ok, true);
      const junk = { ...req, headers: { ...req.headers, "Signature-Input": junkInput, Signature: junkSig } };
      assert.equal(verifyRequest(junk, policy).ok, false);
    }),
    { numRuns: 300 },
  );
});
