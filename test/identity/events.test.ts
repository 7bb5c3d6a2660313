/**
 * Key events: the id derivation recomputed independently (RFC 4648 §10 base32 vectors, JCS by
 * hand), pre-rotation against a thief of the current key, replayed and reordered events,
 * tampering, malformed events, and properties over random rotation chains.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ed25519FromSeed, ed25519Sign, fromHex, pae, sha256, sha256Hex, toBase64, utf8, type Ed25519KeyPair } from "../../src/core/crypto/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import {
  KEL_EVENTS_MAX,
  KEY_EVENT_PAYLOAD_TYPE,
  applyEvent,
  base32LowerNoPad,
  checkInception,
  checkRotation,
  identityIdOf,
  inceptionEvent,
  keyDigest,
  rotationEvent,
  signKeyEvent,
  verifyKel,
  type IdentityState,
  type KeyEvent,
  type SignedKeyEvent,
} from "../../src/core/identity/index.ts";
import type { InceptionVerifier, RotationVerifier } from "../../src/core/pipeline/identity-events.ts";

// RFC 8032 §7.1 TEST 1, 2 and 3 secret keys.
const A = ed25519FromSeed(fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60") as Uint8Array);
const B = ed25519FromSeed(fromHex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb") as Uint8Array);
const C = ed25519FromSeed(fromHex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7") as Uint8Array);
const keyOf = (n: number): Ed25519KeyPair => ed25519FromSeed(new Uint8Array(32).fill(n));

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "accepted";
  } catch (e) {
    return isNexusError(e) ? e.code : `untyped: ${String(e)}`;
  }
}

/** A KEL over `keys`: inception by keys[0] committing to keys[1], then rotations to each next key. */
function chain(keys: readonly Ed25519KeyPair[], name?: string): { events: SignedKeyEvent[]; states: IdentityState[] } {
  const [k0, k1] = keys;
  assert.ok(k0 && k1);
  const events = [signKeyEvent(inceptionEvent(k0.publicKey, k1.publicKey, name), k0.privateKey)];
  const states = [applyEvent(undefined, events[0])];
  for (let i = 1; i + 1 < keys.length; i++) {
    const [cur, nxt] = [keys[i] as Ed25519KeyPair, keys[i + 1] as Ed25519KeyPair];
    const ev = signKeyEvent(rotationEvent(states[i - 1] as IdentityState, cur.publicKey, nxt.publicKey), cur.privateKey);
    events.push(ev);
    states.push(applyEvent(states[i - 1], ev));
  }
  return { events, states };
}

/** Signs an arbitrary event body (possibly invalid) with `key`, the way a forger would. */
function forge(event: Record<string, unknown>, key: Ed25519KeyPair): SignedKeyEvent {
  return signKeyEvent(event as KeyEvent, key.privateKey);
}

/** Base32 (RFC 4648 §6, lower case, no padding) through a bit string: independent of id.ts. */
function base32Reference(bytes: Uint8Array): string {
  const bits = [...bytes].map((b) => b.toString(2).padStart(8, "0")).join("");
  const padded = bits.padEnd(Math.ceil(bits.length / 5) * 5, "0");
  return (padded.match(/.{5}/g) ?? []).map((g) => "abcdefghijklmnopqrstuvwxyz234567"[parseInt(g, 2)]).join("");
}

test("base32: RFC 4648 §10 test vectors (lower case, padding removed) and a reference", () => {
  const vectors: [string, string][] = [
    ["", ""],
    ["f", "my"],
    ["fo", "mzxq"],
    ["foo", "mzxw6"],
    ["foob", "mzxw6yq"],
    ["fooba", "mzxw6ytb"],
    ["foobar", "mzxw6ytboi"],
  ];
  for (const [input, want] of vectors) assert.equal(base32LowerNoPad(utf8(input)), want, input);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 70 }), (b) => assert.equal(base32LowerNoPad(b), base32Reference(b))));
});

test("id: nx1 + base32(SHA-256(JCS(inception))), recomputed by hand; golden value pinned", () => {
  const signed = signKeyEvent(inceptionEvent(A.publicKey, B.publicKey), A.privateKey);
  const jcs = `{"kind":"inception","nextKeyDigest":"${sha256Hex(B.publicKey)}","publicKey":"${toBase64(A.publicKey)}","v":1}`;
  const want = `nx1${base32Reference(sha256(utf8(jcs)))}`;
  const state = applyEvent(undefined, signed);
  assert.equal(state.id, want);
  assert.equal(identityIdOf(signed.event as Parameters<typeof identityIdOf>[0]), want);
  assert.match(state.id, /^nx1[a-z2-7]{52}$/);
  assert.equal(state.lastEventDigest, sha256Hex(utf8(jcs)));
  assert.deepEqual({ ...state, id: "" }, { id: "", publicKey: toBase64(A.publicKey), nextKeyDigest: keyDigest(B.publicKey), seq: 0, lastEventDigest: sha256Hex(utf8(jcs)) });
  // Golden: changing the id format breaks every registered identity; this must never change silently.
  assert.equal(state.id, "nx1eiu5p3bgxmdxfrkwo54a6u725datn3agtyijvnemrjcvfmnc22xa");
  // The signature is over PAE(key-event type, JCS), and RFC 8032 signatures are deterministic.
  assert.equal(signed.signature, toBase64(ed25519Sign(A.privateKey, pae(KEY_EVENT_PAYLOAD_TYPE, utf8(jcs)))));
  const named = applyEvent(undefined, signKeyEvent(inceptionEvent(A.publicKey, B.publicKey, "alice"), A.privateKey));
  assert.notEqual(named.id, state.id, "the name is part of the inception, hence of the id");
  assert.equal(named.name, "alice");
});

test("a rotation chain verifies, and each state is the previous one advanced by one key", () => {
  const keys = [A, B, C, keyOf(4), keyOf(5)];
  const { events, states } = chain(keys, "alice");
  const final = verifyKel(events);
  assert.deepEqual(final, states.at(-1));
  assert.equal(final.seq, 3);
  assert.equal(final.publicKey, toBase64((keys[3] as Ed25519KeyPair).publicKey));
  assert.equal(final.nextKeyDigest, keyDigest((keys[4] as Ed25519KeyPair).publicKey));
  assert.equal(final.name, "alice");
  for (const s of states) assert.equal(s.id, states[0]?.id);
  assert.deepEqual(verifyKel(JSON.parse(JSON.stringify(events))), final, "survives a JSON round trip");
});

test("pre-rotation: a thief holding only the current key cannot produce a valid rotation", () => {
  const { events, states } = chain([A, B, C]); // current B (seq 1), next committed: C
  const state = states[1] as IdentityState;
  const thief = keyOf(66);
  const thiefNext = keyOf(67);
  const body = (publicKey: Uint8Array): Record<string, unknown> => ({ ...rotationEvent(state, publicKey, thiefNext.publicKey) });
  // The thief rotates to the key it holds, or to a key it makes, signing with either.
  assert.equal(codeOf(() => applyEvent(state, forge(body(B.publicKey), B))), "IDENTITY_KEY_NOT_COMMITTED");
  assert.equal(codeOf(() => applyEvent(state, forge(body(thief.publicKey), thief))), "IDENTITY_KEY_NOT_COMMITTED");
  assert.equal(codeOf(() => applyEvent(state, forge(body(thief.publicKey), B))), "IDENTITY_KEY_NOT_COMMITTED");
  // Even knowing the committed next PUBLIC key, it cannot sign for it with the current key.
  assert.equal(codeOf(() => applyEvent(state, forge(body(C.publicKey), B))), "IDENTITY_SIGNATURE_INVALID");
  assert.equal(codeOf(() => applyEvent(state, forge(body(C.publicKey), thief))), "IDENTITY_SIGNATURE_INVALID");
  const reused = { event: rotationEvent(state, C.publicKey, thief.publicKey), signature: events[1]?.signature ?? "" };
  assert.equal(codeOf(() => applyEvent(state, reused)), "IDENTITY_SIGNATURE_INVALID");
  // A fresh inception by the thief is another identity, not a takeover.
  const fresh = forge({ ...inceptionEvent(B.publicKey, thief.publicKey) }, B);
  assert.equal(codeOf(() => applyEvent(state, fresh)), "IDENTITY_EVENT_OUT_OF_ORDER");
  assert.notEqual(applyEvent(undefined, fresh).id, state.id);
  // The owner, holding C, can.
  assert.equal(applyEvent(state, forge(body(C.publicKey), C)).seq, 2);
});

test("property: whatever a current-key thief signs, the rotation is rejected", () => {
  const { states } = chain([A, B, C]);
  const state = states[1] as IdentityState;
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.constantFrom("current", "thief", "committed"), fc.constantFrom("current", "thief"), fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed, claimed, signer, nextSeed) => {
      const thief = ed25519FromSeed(seed);
      const pub = { current: B.publicKey, thief: thief.publicKey, committed: C.publicKey }[claimed];
      const key = signer === "current" ? B : thief;
      const nextPub = ed25519FromSeed(nextSeed).publicKey;
      const got = codeOf(() => applyEvent(state, forge({ ...rotationEvent(state, pub, nextPub) }, key)));
      if (toBase64(pub) === toBase64(nextPub)) assert.equal(got, "IDENTITY_EVENT_MALFORMED", "self-commitment");
      else assert.ok(got === "IDENTITY_KEY_NOT_COMMITTED" || got === "IDENTITY_SIGNATURE_INVALID", got);
    }),
    { numRuns: 200 },
  );
});

test("replayed, reordered, skipped and foreign events are rejected", () => {
  const { events, states } = chain([A, B, C, keyOf(4)]);
  const [inc, r1, r2] = events as [SignedKeyEvent, SignedKeyEvent, SignedKeyEvent];
  const [s0, s1] = states as [IdentityState, IdentityState];
  assert.equal(codeOf(() => applyEvent(s0, inc)), "IDENTITY_EVENT_OUT_OF_ORDER", "inception replayed");
  assert.equal(codeOf(() => applyEvent(s1, r1)), "IDENTITY_EVENT_OUT_OF_ORDER", "rotation replayed");
  assert.equal(codeOf(() => applyEvent(s0, r2)), "IDENTITY_EVENT_OUT_OF_ORDER", "rotation 2 before 1");
  assert.equal(codeOf(() => applyEvent(undefined, r1)), "IDENTITY_EVENT_OUT_OF_ORDER", "rotation without inception");
  assert.equal(codeOf(() => verifyKel([inc, r2, r1])), "IDENTITY_EVENT_OUT_OF_ORDER");
  assert.equal(codeOf(() => verifyKel([inc, r1, r1, r2])), "IDENTITY_EVENT_OUT_OF_ORDER");
  // Right seq and right key, but prevDigest does not name the previous event: not chained.
  const unchained = forge({ ...rotationEvent(s0, B.publicKey, C.publicKey), prevDigest: "0".repeat(64) }, B);
  assert.equal(codeOf(() => applyEvent(s0, unchained)), "IDENTITY_EVENT_OUT_OF_ORDER");
  // Skipping a seq number, correctly signed by the committed key.
  const skipped = forge({ ...rotationEvent(s0, B.publicKey, C.publicKey), seq: 2 }, B);
  assert.equal(codeOf(() => applyEvent(s0, skipped)), "IDENTITY_EVENT_OUT_OF_ORDER");
  // Another identity's valid rotation applied to this one.
  const other = chain([keyOf(7), keyOf(8), keyOf(9)]);
  assert.equal(codeOf(() => applyEvent(s0, other.events[1])), "IDENTITY_ID_MISMATCH");
  const msg = (() => {
    try {
      verifyKel([inc, r2]);
    } catch (e) {
      return e instanceof Error ? e.message : "";
    }
    return "";
  })();
  assert.match(msg, /event 1: seq 2, expected 1/);
});

test("tampering with any field or bit of a signed event is rejected", () => {
  const { events, states } = chain([A, B, C], "alice");
  const [inc, r1] = events as [SignedKeyEvent, SignedKeyEvent];
  const s0 = states[0] as IdentityState;
  const incFields: Record<string, unknown>[] = [
    { publicKey: toBase64(C.publicKey) },
    { nextKeyDigest: keyDigest(C.publicKey) },
    { name: "mallory" },
    { name: undefined },
  ];
  for (const change of incFields) {
    const event = JSON.parse(JSON.stringify({ ...inc.event, ...change })) as Record<string, unknown>;
    assert.equal(codeOf(() => applyEvent(undefined, { event, signature: inc.signature })), "IDENTITY_SIGNATURE_INVALID", JSON.stringify(change));
  }
  const rotFields: Record<string, unknown>[] = [{ nextKeyDigest: keyDigest(A.publicKey) }];
  for (const change of rotFields) {
    assert.equal(codeOf(() => applyEvent(s0, { event: { ...r1.event, ...change }, signature: r1.signature })), "IDENTITY_SIGNATURE_INVALID");
  }
  const sig = Buffer.from(r1.signature, "base64");
  for (let bit = 0; bit < sig.length * 8; bit++) {
    const s = Buffer.from(sig);
    s[bit >> 3] = (s[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    assert.equal(codeOf(() => applyEvent(s0, { event: r1.event, signature: s.toString("base64") })), "IDENTITY_SIGNATURE_INVALID", `bit ${bit}`);
  }
});

test("signatures are domain-separated: raw JCS or a command's PAE does not sign a key event", () => {
  const event = inceptionEvent(A.publicKey, B.publicKey);
  const jcs = utf8(`{"kind":"inception","nextKeyDigest":"${event.nextKeyDigest}","publicKey":"${event.publicKey}","v":1}`);
  for (const msg of [jcs, pae("application/vnd.nexus.command+json", jcs)]) {
    const signature = toBase64(ed25519Sign(A.privateKey, msg));
    assert.equal(codeOf(() => applyEvent(undefined, { event, signature })), "IDENTITY_SIGNATURE_INVALID");
  }
});

test("malformed events are IDENTITY_EVENT_MALFORMED", () => {
  const { events, states } = chain([A, B, C]);
  const [inc, r1] = events as [SignedKeyEvent, SignedKeyEvent];
  const s0 = states[0] as IdentityState;
  const url = toBase64(A.publicKey).replace(/\+/g, "-").replace(/\//g, "_");
  const incCases: unknown[] = [
    null,
    "x",
    [],
    { event: inc.event },
    { signature: inc.signature },
    { ...inc, extra: 1 },
    { event: { ...inc.event, extra: 1 }, signature: inc.signature },
    { event: { ...inc.event, v: 2 }, signature: inc.signature },
    { event: { ...inc.event, kind: "interaction" }, signature: inc.signature },
    { event: { ...inc.event, publicKey: toBase64(A.publicKey).replace(/=$/, "") }, signature: inc.signature },
    { event: { ...inc.event, publicKey: url }, signature: inc.signature },
    { event: { ...inc.event, publicKey: toBase64(new Uint8Array(31)) }, signature: inc.signature },
    { event: { ...inc.event, nextKeyDigest: inc.event.nextKeyDigest.toUpperCase() }, signature: inc.signature },
    { event: { ...inc.event, name: "" }, signature: inc.signature },
    { event: { ...inc.event, name: "../x" }, signature: inc.signature },
    { event: { ...inc.event, name: "a".repeat(64) }, signature: inc.signature },
    { event: inc.event, signature: inc.signature.replace(/==$/, "") },
    { event: inc.event, signature: toBase64(new Uint8Array(63)) },
    { event: inc.event, signature: 5 },
    // An event committing to its own key defeats pre-rotation.
    forge({ ...inceptionEvent(A.publicKey, A.publicKey) }, A),
  ];
  for (const wire of incCases) assert.equal(codeOf(() => applyEvent(undefined, wire)), "IDENTITY_EVENT_MALFORMED", JSON.stringify(wire));
  const rotCases: unknown[] = [
    { event: { ...r1.event, seq: 0 }, signature: r1.signature },
    { event: { ...r1.event, seq: 1.5 }, signature: r1.signature },
    { event: { ...r1.event, seq: "1" }, signature: r1.signature },
    { event: { ...r1.event, seq: KEL_EVENTS_MAX }, signature: r1.signature },
    { event: { ...r1.event, id: "nx1abc" }, signature: r1.signature },
    { event: { ...r1.event, prevDigest: "zz" }, signature: r1.signature },
  ];
  for (const wire of rotCases) assert.equal(codeOf(() => applyEvent(s0, wire)), "IDENTITY_EVENT_MALFORMED", JSON.stringify(wire));
  assert.equal(codeOf(() => verifyKel([])), "IDENTITY_EVENT_MALFORMED");
  assert.equal(codeOf(() => verifyKel({ 0: inc })), "IDENTITY_EVENT_MALFORMED");
  assert.equal(codeOf(() => verifyKel(new Array(KEL_EVENTS_MAX + 1).fill(inc))), "IDENTITY_KEL_TOO_LARGE");
  assert.equal(codeOf(() => inceptionEvent(A.publicKey, B.publicKey, "bad name")), "IDENTITY_NAME_INVALID");
});

test("checkInception and checkRotation report instead of throwing, and fit the pipeline's verifier types", () => {
  const { events, states } = chain([A, B, C]);
  const inception: InceptionVerifier = checkInception;
  const rotation: RotationVerifier = checkRotation;
  const ok = inception({ event: events[0]?.event as Record<string, unknown>, signature: events[0]?.signature ?? "" });
  assert.ok(ok.ok && ok.state.id === states[0]?.id);
  const bad = checkRotation(states[0] as IdentityState, events[0]);
  assert.deepEqual(bad.ok ? "accepted" : bad.code, "IDENTITY_EVENT_OUT_OF_ORDER");
  const record = { ...(states[0] as IdentityState), kind: "person" as const, roles: [] };
  const r = rotation(record, { event: events[1]?.event as Record<string, unknown>, signature: events[1]?.signature ?? "" });
  assert.ok(r.ok && r.state.seq === 1);
});

test("property: random rotation chains verify; dropping, swapping or repeating an event breaks them", () => {
  const seedsArb = fc.uniqueArray(fc.uint8Array({ minLength: 32, maxLength: 32 }), { minLength: 2, maxLength: 7, selector: (s) => toBase64(s) });
  fc.assert(
    fc.property(seedsArb, fc.nat(), fc.nat(), fc.constantFrom("drop", "swap", "repeat"), (seeds, i0, j0, op) => {
      const keys = seeds.map((s) => ed25519FromSeed(s));
      const { events, states } = chain(keys);
      const final = verifyKel(events);
      assert.deepEqual(final, states.at(-1));
      assert.equal(final.seq, keys.length - 2);
      assert.equal(final.publicKey, toBase64((keys.at(-2) as Ed25519KeyPair).publicKey));
      const n = events.length;
      const mutated = [...events];
      if (op === "drop") {
        if (n < 2) return;
        mutated.splice(i0 % (n - 1), 1); // not the last one: a prefix is a valid (older) log
      } else if (op === "swap") {
        if (n < 2) return;
        const i = i0 % n;
        const j = (i + 1 + (j0 % (n - 1))) % n;
        [mutated[i], mutated[j]] = [mutated[j] as SignedKeyEvent, mutated[i] as SignedKeyEvent];
      } else {
        const i = i0 % n;
        mutated.splice(i + 1, 0, mutated[i] as SignedKeyEvent);
      }
      const got = codeOf(() => verifyKel(mutated));
      assert.match(got, /^IDENTITY_/, `${op}: ${got}`);
    }),
    { numRuns: 150 },
  );
});
