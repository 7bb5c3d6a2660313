/**
 * DSSE: every vector of ../shared/vectors/dsse.json (PAE bytes, accept/reject at the DSSE layer,
 * Ed25519 signatures reproduced), the protocol.md ECDSA example, tampering, keyid semantics,
 * malformed envelopes and a threshold property.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import fc from "fast-check";
import {
  DSSE_PAYLOAD_BYTES_MAX,
  DSSE_SIGNATURES_MAX,
  ed25519DsseSigner,
  ed25519FromSeed,
  ed25519Verify,
  fromBase64,
  fromHex,
  pae,
  parseDsse,
  signDsse,
  toHex,
  utf8,
  verifyDsse,
  type DsseEnvelope,
  type DsseTrustedKey,
  type Ed25519KeyPair,
} from "../../src/core/crypto/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { readJsonVector } from "../support/paths.ts";

interface Vector {
  id: string;
  description: string;
  envelope: DsseEnvelope;
  trustedKeys: string[];
  threshold: number;
  supportedPayloadTypes: string[];
  pae: string;
  expect: "accept" | "reject";
}
interface VectorFile {
  protocolExample: {
    payloadType: string;
    serializedBody: string;
    pae: string;
    key: { algorithm: string; x: string; y: string };
    envelope: DsseEnvelope;
    expect: string;
  };
  keys: Record<string, { algorithm: string; seed: string; public: string }>;
  vectors: Vector[];
}

const file = readJsonVector<VectorFile>("dsse.json");
const keyPairs = new Map<string, Ed25519KeyPair>(Object.entries(file.keys).map(([name, k]) => [name, ed25519FromSeed(fromHex(k.seed) ?? new Uint8Array())]));

/** The reject reason each rejecting vector is about (by id); a new rejecting vector fails until listed. */
const REJECT_CODES: Record<string, string> = {
  "payload-type-swapped": "CRYPTO_DSSE_UNVERIFIED",
  "empty-payload-type": "CRYPTO_DSSE_PAYLOAD_TYPE",
  "threshold-two-one-key-twice": "CRYPTO_DSSE_UNVERIFIED",
};

function trustedOf(names: readonly string[]): Map<string, DsseTrustedKey> {
  return new Map(names.map((n) => [n, keyPairs.get(n)?.publicKey ?? new Uint8Array()]));
}

function code(fn: () => unknown): string {
  try {
    fn();
    return "accepted";
  } catch (e) {
    return isNexusError(e) ? e.code : `untyped: ${String(e)}`;
  }
}

test("vectors: the keys are RFC 8032 §7.1 TEST 1 and TEST 2", () => {
  for (const [name, k] of Object.entries(file.keys)) {
    assert.equal(k.algorithm, "ed25519");
    assert.equal(toHex(keyPairs.get(name)?.publicKey ?? new Uint8Array()), k.public, name);
  }
});

test("vectors: PAE of every vector and of the protocol.md example", () => {
  assert.ok(file.vectors.length >= 9);
  for (const v of file.vectors) {
    const payload = fromBase64(v.envelope.payload, true);
    assert.ok(payload, `${v.id}: payload decodes`);
    // `pae` is what the signatures cover: each verifies over it with one of the keys.
    const signed = fromHex(v.pae) ?? new Uint8Array();
    for (const s of v.envelope.signatures) {
      const sig = fromBase64(s.sig, true) ?? new Uint8Array();
      assert.ok([...keyPairs.values()].some((kp) => ed25519Verify(kp.publicKey, signed, sig)), `${v.id}: a key signed the pae`);
    }
    // It is also PAE(envelope) except where the envelope claims another type than was signed.
    const mine = toHex(pae(v.envelope.payloadType, payload));
    if (v.id === "payload-type-swapped") assert.notEqual(mine, v.pae, v.id);
    else assert.equal(mine, v.pae, v.id);
  }
  const ex = file.protocolExample;
  assert.equal(Buffer.from(pae(ex.payloadType, utf8(ex.serializedBody))).toString("latin1"), ex.pae);
  assert.equal(Buffer.from(pae("", new Uint8Array())).toString("latin1"), "DSSEv1 0  0 ");
});

test("vectors: accept/reject of every vector at the DSSE layer", () => {
  const ids = new Set<string>();
  for (const v of file.vectors) {
    assert.ok(!ids.has(v.id), `unique id ${v.id}`);
    ids.add(v.id);
    const run = (): unknown => verifyDsse(v.envelope, trustedOf(v.trustedKeys), { threshold: v.threshold, acceptedTypes: v.supportedPayloadTypes });
    if (v.expect === "accept") {
      const r = verifyDsse(v.envelope, trustedOf(v.trustedKeys), { threshold: v.threshold, acceptedTypes: v.supportedPayloadTypes });
      assert.equal(r.payloadType, v.envelope.payloadType, v.id);
      assert.deepEqual(r.payload, fromBase64(v.envelope.payload, true), v.id);
      assert.ok(r.keyids.length >= v.threshold, v.id);
      assert.equal(new Set(r.keyids).size, r.keyids.length, `${v.id}: distinct keys`);
    } else {
      assert.equal(code(run), REJECT_CODES[v.id] ?? "(unlisted rejecting vector)", v.id);
    }
  }
});

test("vectors: Ed25519 being deterministic, each valid vector signature is reproduced by its key", () => {
  for (const v of file.vectors.filter((x) => x.expect === "accept")) {
    const payload = fromBase64(v.envelope.payload, true) ?? new Uint8Array();
    for (const s of v.envelope.signatures) {
      const sig = toHex(fromBase64(s.sig, true) ?? new Uint8Array());
      const signers = [...keyPairs.entries()].filter(([, kp]) => {
        const env = signDsse(v.envelope.payloadType, payload, [ed25519DsseSigner(kp.privateKey)]);
        return toHex(fromBase64(env.signatures[0]?.sig ?? "") ?? new Uint8Array()) === sig;
      });
      assert.equal(signers.length, 1, `${v.id}: one key reproduces ${s.sig}`);
      if (s.keyid !== undefined) assert.equal(signers[0]?.[0], s.keyid, v.id);
    }
  }
});

test("vectors: the protocol.md example (ECDSA P-256, r||s) verifies", () => {
  const ex = file.protocolExample;
  const b64url = (dec: string): string => Buffer.from(BigInt(dec).toString(16).padStart(64, "0"), "hex").toString("base64url");
  const key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64url(ex.key.x), y: b64url(ex.key.y) }, format: "jwk" });
  const trusted = new Map<string, DsseTrustedKey>([["example", key]]);
  const r = verifyDsse(ex.envelope, trusted, { threshold: 1, acceptedTypes: [ex.payloadType] });
  assert.equal(Buffer.from(r.payload).toString(), ex.serializedBody);
  assert.equal(ex.expect, "accept");
  const tampered = { ...ex.envelope, payload: Buffer.from("hello World").toString("base64") };
  assert.equal(code(() => verifyDsse(tampered, trusted, { threshold: 1, acceptedTypes: [ex.payloadType] })), "CRYPTO_DSSE_UNVERIFIED");
});

// ---------------------------------------------------------------------------------------------
// Own cases

const A = keyPairs.get("A") as Ed25519KeyPair;
const B = keyPairs.get("B") as Ed25519KeyPair;
const TYPE = "application/vnd.nexus.test+json";
const both = new Map<string, DsseTrustedKey>([
  ["A", A.publicKey],
  ["B", B.publicKey],
]);
const opts = (threshold = 1, acceptedTypes: string[] = [TYPE]) => ({ threshold, acceptedTypes });

test("sign → JSON → parseDsse → verify round trip, standard and URL-safe unpadded base64", () => {
  const env = signDsse(TYPE, utf8('{"a":1}'), [ed25519DsseSigner(A.privateKey, "A"), ed25519DsseSigner(B.privateKey)]);
  assert.deepEqual(env.signatures.map((s) => s.keyid), ["A", undefined]);
  assert.ok(!("keyid" in (env.signatures[1] ?? {})), "no keyid field when none is given");
  const parsed = parseDsse(JSON.stringify(env));
  assert.deepEqual(verifyDsse(parsed, both, opts(2)).keyids, ["A", "B"]);
  const url = (s: string): string => Buffer.from(s, "base64").toString("base64url");
  const urlEnv = { ...env, payload: url(env.payload), signatures: env.signatures.map((s) => ({ ...s, sig: url(s.sig) })) };
  assert.ok(!/[+/=]/.test(JSON.stringify(urlEnv.signatures)));
  assert.deepEqual(verifyDsse(urlEnv, both, opts(2)).payload, utf8('{"a":1}'));
});

test("tamper: any bit flip in payload, payloadType or signature is rejected", () => {
  const payload = utf8('{"type":"imvu.create","body":{"name":"stage"}}');
  const env = signDsse(TYPE, payload, [ed25519DsseSigner(A.privateKey, "A")]);
  const sig = fromBase64(env.signatures[0]?.sig ?? "") ?? new Uint8Array();
  for (let bit = 0; bit < payload.length * 8; bit++) {
    const p = new Uint8Array(payload);
    p[bit >> 3] = (p[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    const t = { ...env, payload: Buffer.from(p).toString("base64") };
    assert.equal(code(() => verifyDsse(t, both, opts())), "CRYPTO_DSSE_UNVERIFIED", `payload bit ${bit}`);
  }
  for (let bit = 0; bit < sig.length * 8; bit++) {
    const s = new Uint8Array(sig);
    s[bit >> 3] = (s[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    const t = { ...env, signatures: [{ keyid: "A", sig: Buffer.from(s).toString("base64") }] };
    assert.equal(code(() => verifyDsse(t, both, opts())), "CRYPTO_DSSE_UNVERIFIED", `sig bit ${bit}`);
  }
  const typeBytes = utf8(TYPE);
  for (let bit = 0; bit < typeBytes.length * 8; bit++) {
    const b = new Uint8Array(typeBytes);
    b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    const type = new TextDecoder().decode(b);
    const t = { ...env, payloadType: type };
    // Accept the tampered type too, so the signature check is what rejects it.
    assert.equal(code(() => verifyDsse(t, both, opts(1, [TYPE, type]))), "CRYPTO_DSSE_UNVERIFIED", `type bit ${bit}`);
    assert.equal(code(() => verifyDsse(t, both, opts())), "CRYPTO_DSSE_PAYLOAD_TYPE", `type bit ${bit}`);
  }
  assert.equal(code(() => verifyDsse(env, both, opts())), "accepted");
});

test("keyid is only a hint: wrong or missing keyids still verify, the signing key is what counts", () => {
  const bySigner = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(A.privateKey, "B")]);
  assert.deepEqual(verifyDsse(bySigner, both, opts()).keyids, ["A"]);
  const noKeyid = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(A.privateKey)]);
  assert.deepEqual(verifyDsse(noKeyid, both, opts()).keyids, ["A"]);
  const unknownKeyid = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(B.privateKey, "nobody")]);
  assert.deepEqual(verifyDsse(unknownKeyid, both, opts()).keyids, ["B"]);
});

test("threshold counts distinct trusted keys: aliases count once, untrusted signers not at all", () => {
  const env = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(A.privateKey, "A"), ed25519DsseSigner(A.privateKey, "alias")]);
  const aliased = new Map<string, DsseTrustedKey>([
    ["A", A.publicKey],
    ["alias", new Uint8Array(A.publicKey)],
  ]);
  assert.equal(code(() => verifyDsse(env, aliased, opts(2))), "CRYPTO_DSSE_UNVERIFIED");
  assert.deepEqual(verifyDsse(env, aliased, opts(1)).keyids, ["A"]);
  const outsider = ed25519FromSeed(new Uint8Array(32).fill(7));
  const mixed = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(A.privateKey), ed25519DsseSigner(outsider.privateKey)]);
  assert.equal(code(() => verifyDsse(mixed, both, opts(2))), "CRYPTO_DSSE_UNVERIFIED");
  assert.equal(code(() => verifyDsse(mixed, new Map(), opts(1))), "CRYPTO_DSSE_UNVERIFIED");
  const none = { payload: "", payloadType: TYPE, signatures: [] };
  assert.equal(code(() => verifyDsse(none, both, opts(1))), "CRYPTO_DSSE_UNVERIFIED");
  assert.throws(() => verifyDsse(env, both, opts(0)), RangeError);
});

test("malformed envelopes are CRYPTO_DSSE_MALFORMED; unknown fields are ignored", () => {
  const good = signDsse(TYPE, utf8("x"), [ed25519DsseSigner(A.privateKey, "A")]);
  const sig = good.signatures[0] ?? { sig: "" };
  const cases: [string, unknown][] = [
    ["null", null],
    ["array", [good]],
    ["string", JSON.stringify(good)],
    ["no payload", { payloadType: TYPE, signatures: good.signatures }],
    ["no payloadType", { payload: good.payload, signatures: good.signatures }],
    ["no signatures", { payload: good.payload, payloadType: TYPE }],
    ["payload not a string", { ...good, payload: 5 }],
    ["payload not base64", { ...good, payload: "a+b_" }],
    ["payload bad length", { ...good, payload: "abcde" }],
    ["sig not base64", { ...good, signatures: [{ sig: "!!!!" }] }],
    ["sig missing", { ...good, signatures: [{ keyid: "A" }] }],
    ["keyid not a string", { ...good, signatures: [{ ...sig, keyid: 1 }] }],
    ["keyid too long", { ...good, signatures: [{ ...sig, keyid: "k".repeat(257) }] }],
    ["sig too long", { ...good, signatures: [{ sig: "A".repeat(1028) }] }],
    ["payloadType too long", { ...good, payloadType: "t".repeat(257) }],
    ["too many signatures", { ...good, signatures: Array.from({ length: DSSE_SIGNATURES_MAX + 1 }, () => sig) }],
    ["payload over 1 MiB", { ...good, payload: Buffer.alloc(1024 * 1024 + 3).toString("base64") }],
  ];
  for (const [what, env] of cases) assert.equal(code(() => verifyDsse(env, both, opts())), "CRYPTO_DSSE_MALFORMED", what);
  const extra = { ...good, extension: { kind: "x" }, signatures: [{ ...sig, future: true }] };
  assert.deepEqual(verifyDsse(extra, both, opts()).keyids, ["A"]);
  for (const text of ["{", `{"payload":"","payload":"","payloadType":"t","signatures":[]}`, "[]", `"x"`]) {
    assert.equal(code(() => parseDsse(text)), "CRYPTO_DSSE_MALFORMED", text);
  }
});

test("property: accepted exactly when at least `threshold` distinct trusted keys signed", () => {
  const seeds = Array.from({ length: 5 }, (_, i) => ed25519FromSeed(new Uint8Array(32).fill(i + 1)));
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }),
      fc.uniqueArray(fc.nat(4), { maxLength: 5 }),
      fc.integer({ min: 1, max: 4 }),
      (payload, signerIdx, trustedIdx, threshold) => {
        const env = signDsse(TYPE, payload, signerIdx.map((i) => ed25519DsseSigner((seeds[i] as Ed25519KeyPair).privateKey, `k${i}`)));
        const trusted = new Map<string, DsseTrustedKey>(trustedIdx.map((i) => [`k${i}`, (seeds[i] as Ed25519KeyPair).publicKey]));
        const distinct = new Set(signerIdx.filter((i) => trustedIdx.includes(i))).size;
        const got = code(() => verifyDsse(env, trusted, opts(threshold)));
        assert.equal(got, distinct >= threshold ? "accepted" : "CRYPTO_DSSE_UNVERIFIED");
      },
    ),
    { numRuns: 150 },
  );
});

test("a payload over the default bound is refused unless the caller raises it for a large document (an exit manifest)", () => {
  const payload = utf8(JSON.stringify({ files: "x".repeat(DSSE_PAYLOAD_BYTES_MAX + 1) }));
  const text = JSON.stringify(signDsse(TYPE, payload, [ed25519DsseSigner(A.privateKey, "A")]));
  assert.equal(code(() => parseDsse(text)), "CRYPTO_DSSE_MALFORMED");
  const big = 4 * DSSE_PAYLOAD_BYTES_MAX;
  const env = parseDsse(text, { payloadBytesMax: big });
  assert.equal(code(() => verifyDsse(env, both, opts())), "CRYPTO_DSSE_MALFORMED", "verification keeps the default bound too");
  assert.deepEqual(verifyDsse(env, both, { ...opts(), payloadBytesMax: big }).payload, payload);
  assert.equal(code(() => verifyDsse(env, both, { ...opts(), payloadBytesMax: payload.length - 1 })), "CRYPTO_DSSE_MALFORMED", "the raised bound still holds, to the byte");
});
