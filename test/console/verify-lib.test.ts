/**
 * The console's in-page verification code (console/src/lib, WebCrypto) against the reference
 * implementation in src/core, run under Node's WebCrypto: RFC 8785 canonical JSON, RFC 9162
 * inclusion and consistency proofs (valid ones accepted, systematic corruptions rejected, the
 * same verdict as the server's verifier every time), C2SP signed checkpoints, identities made in
 * the browser and CLI identity files imported, commands signed in the page, and mailbox password
 * verifiers derived in the page (byte-identical to Node's scrypt, accepted by the mail servers).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes as nodeRandomBytes, scryptSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { canonicalize as serverCanonicalize } from "../../src/core/crypto/index.ts";
import { verifyDsse } from "../../src/core/crypto/dsse.ts";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { checkInception, createIdentity, rotateIdentity } from "../../src/core/identity/index.ts";
import * as ref from "../../src/core/ledger/merkle.ts";
import { formatCheckpoint, noteSignerFromEd25519, signNote, verifierKey } from "../../src/core/ledger/note.ts";
import { COMMAND_PAYLOAD_TYPE, decodeCommand } from "../../src/core/pipeline/authenticate.ts";
import { signCommand } from "../../console/src/lib/api.ts";
import { canonicalize } from "../../console/src/lib/jcs.ts";
import { createBrowserIdentity, importCliIdentity } from "../../console/src/lib/identity.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../../console/src/lib/merkle.ts";
import { NoteError, openCheckpoint, parseVerifierKey } from "../../console/src/lib/note.ts";
import { createPasswordVerifier, generatePassword, GENERATED_PASSWORD_BYTES, verifierCommitment } from "../../console/src/lib/mail.ts";
import { GENERATED_PASSWORD_BYTES as CLI_GENERATED_PASSWORD_BYTES } from "../../src/cli/commands/mail.ts";
import * as mailRef from "../../src/services/mail/directory.ts";

/** Leaf hashes of a tree of `n` entries "entry-0".. */
function leaves(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => ref.leafHash(Buffer.from(`entry-${i}`)));
}

/** The hash of complete subtree (level, index) from the leaves (what the tiles store). */
function subtree(ls: readonly Uint8Array[], level: number, index: bigint): Uint8Array {
  const span = 2 ** level;
  const start = Number(index) * span;
  return ref.rootOf(ls.slice(start, start + span));
}

function proofOf(plan: ref.ProofPlan, ls: readonly Uint8Array[]): Uint8Array[] {
  return plan.assemble(plan.nodes.map((n) => subtree(ls, n.level, n.index)));
}

/** Systematic corruptions of a proof (transparency-dev/merkle's style): each must fail. */
function corruptions(proof: readonly Uint8Array[]): { what: string; proof: Uint8Array[] }[] {
  const out: { what: string; proof: Uint8Array[] }[] = [{ what: "extra hash", proof: [...proof, new Uint8Array(32)] }];
  if (proof.length > 0) {
    out.push({ what: "last hash dropped", proof: proof.slice(0, -1) });
    proof.forEach((_, i) => {
      const bad = proof.map((h) => h.slice());
      (bad[i] as Uint8Array)[31] ^= 0x01;
      out.push({ what: `bit flipped in hash ${i}`, proof: bad });
    });
    if (proof.length > 1) out.push({ what: "two hashes swapped", proof: [proof[1] as Uint8Array, proof[0] as Uint8Array, ...proof.slice(2)] });
  }
  return out;
}

describe("console: RFC 8785 canonical JSON equals the server's", () => {
  test("random JSON values canonicalise to the same text", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => canonicalize(v) === serverCanonicalize(v)), { numRuns: 500 });
  });
});

describe("console: RFC 9162 proofs verified in the page agree with the reference", () => {
  test("inclusion: every leaf of trees up to 70 entries, and each corruption rejected", async () => {
    for (let size = 1; size <= 70; size++) {
      const ls = leaves(size);
      const root = ref.rootOf(ls);
      for (let i = 0; i < size; i++) {
        const proof = proofOf(ref.inclusionPlan(BigInt(i), BigInt(size)), ls);
        const leaf = ls[i] as Uint8Array;
        assert.equal(await verifyInclusion(leaf, BigInt(i), BigInt(size), proof, root), true, `leaf ${i} of ${size}`);
        for (const c of corruptions(proof)) {
          const server = ref.verifyInclusion(leaf, BigInt(i), BigInt(size), c.proof, root);
          assert.equal(await verifyInclusion(leaf, BigInt(i), BigInt(size), c.proof, root), server, `${c.what}: leaf ${i} of ${size}`);
          assert.equal(server, false, `${c.what} must fail`);
        }
        // Off-by-one index and size: the same verdict as the reference (a wrong index never passes).
        if (size > 1) assert.equal(await verifyInclusion(leaf, BigInt((i + 1) % size), BigInt(size), proof, root), false, "wrong index");
        for (const s2 of [size - 1, size + 1]) {
          assert.equal(await verifyInclusion(leaf, BigInt(i), BigInt(s2), proof, root), ref.verifyInclusion(leaf, BigInt(i), BigInt(s2), proof, root), `size ${s2} for ${size}`);
        }
      }
    }
  });

  test("consistency: every pair of sizes up to 40, and each corruption rejected", async () => {
    const ls = leaves(40);
    for (let n = 1; n <= 40; n++) {
      const root2 = ref.rootOf(ls.slice(0, n));
      for (let m = 1; m <= n; m++) {
        const root1 = ref.rootOf(ls.slice(0, m));
        const proof = proofOf(ref.consistencyPlan(BigInt(m), BigInt(n)), ls.slice(0, n));
        assert.equal(await verifyConsistency(BigInt(m), BigInt(n), root1, root2, proof), true, `${m} → ${n}`);
        for (const c of corruptions(proof)) {
          const server = ref.verifyConsistency(BigInt(m), BigInt(n), root1, root2, c.proof);
          assert.equal(await verifyConsistency(BigInt(m), BigInt(n), root1, root2, c.proof), server, `${c.what}: ${m} → ${n}`);
        }
        if (m < n) {
          const forked = ref.rootOf([...ls.slice(0, m - 1), ref.leafHash(Buffer.from("forged"))]);
          assert.equal(await verifyConsistency(BigInt(m), BigInt(n), forked, root2, proof), false, `a forked old root ${m} → ${n}`);
        }
      }
    }
    assert.equal(await verifyConsistency(0n, 5n, ref.EMPTY_ROOT, ref.rootOf(ls.slice(0, 5)), []), true, "the empty tree is a prefix of any");
  });

  test("leaf hashes: SHA-256(0x00 || entry)", async () => {
    const entry = Buffer.from('{"index":"0"}');
    assert.deepEqual(await leafHash(entry), ref.leafHash(entry));
  });
});

describe("console: C2SP signed checkpoints opened in the page", () => {
  test("a server-signed checkpoint opens; altered text, root or key is refused", async () => {
    // Keys whose base64 holds "+" and "/" too (a verifier key splits at its first two "+" only).
    let plus = false;
    for (let k = 0; k < 40; k++) {
      const kp = generateEd25519();
      const name = "nexus.local/ledger";
      const vkey = verifierKey(name, kp.publicKey);
      plus ||= vkey.split("+").length > 3;
      const signer = noteSignerFromEd25519(name, kp.privateKey, kp.publicKey);
      const root = ref.rootOf(leaves(7));
      const note = signNote(formatCheckpoint({ origin: name, size: 7n, root, extensions: [] }), [signer]);
      const key = await parseVerifierKey(vkey);
      const cp = await openCheckpoint(note, key);
      assert.equal(cp.size, 7n);
      assert.deepEqual(cp.root, root);
      const altered = note.replace("\n7\n", "\n8\n");
      await assert.rejects(openCheckpoint(altered, key), (e: unknown) => e instanceof NoteError && e.code === "NOTE_SIGNATURE_INVALID");
      const other = await parseVerifierKey(verifierKey(name, generateEd25519().publicKey));
      await assert.rejects(openCheckpoint(note, other), (e: unknown) => e instanceof NoteError && e.code === "NOTE_UNVERIFIED");
    }
    assert.ok(plus, "some verifier key held a '+' in its base64");
    await assert.rejects(parseVerifierKey("nexus.local/ledger+00000000+AbJanoJw/mUifCpVuJb8UaSoQ7azdTPYg+IZTdA/TxGG"), (e: unknown) => e instanceof NoteError && e.code === "NOTE_KEY_MALFORMED");
  });
});

describe("console: identities and commands made in the page are the server's", () => {
  test("a browser identity's inception checks with the server and derives the same id", async () => {
    const who = await createBrowserIdentity("alice");
    assert.equal(who.current.extractable, false);
    assert.equal(who.next?.extractable, false);
    const r = checkInception(who.kel[0]);
    assert.ok(r.ok, r.ok ? "" : r.reason);
    assert.equal(r.state.id, who.id);
    assert.equal(r.state.publicKey, who.publicKey);
  });

  test("a CLI identity file (rotated once) imports with its current key and sequence", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-console-lib-"));
    try {
      const keyring = join(dir, "keyring");
      const id = createIdentity(keyring, { name: "bob" });
      const { identity } = rotateIdentity(keyring, id.id);
      const imported = await importCliIdentity(readFileSync(identity.path, "utf8"));
      assert.equal(imported.id, id.id);
      assert.equal(imported.seq, 1);
      assert.equal(imported.publicKey, identity.state.publicKey);
      assert.equal(imported.current.extractable, false);
      const file = JSON.parse(readFileSync(identity.path, "utf8")) as { currentSeed: string; nextSeed: string };
      const swapped = JSON.stringify({ ...file, currentSeed: file.nextSeed, nextSeed: file.currentSeed });
      await assert.rejects(importCliIdentity(swapped), /not the identity's current key/);
      await assert.rejects(importCliIdentity(JSON.stringify({ v: 1, kel: [{ event: { v: 1, kind: "inception", publicKey: "x" }, signature: "y" }] })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a command signed in the page decodes canonically and verifies with the identity's key", async () => {
    const who = await createBrowserIdentity();
    const signed = await signCommand(who, { type: "imvu.exit.request", imvu: "stage", body: {} });
    const d = decodeCommand(signed.json);
    assert.ok(d.ok, d.ok ? "" : d.error.message);
    assert.equal(d.cmd.actor, who.id);
    assert.equal(d.cmd.type, "imvu.exit.request");
    const v = verifyDsse(JSON.parse(signed.json), new Map([[`${who.id}#0`, Buffer.from(who.publicKey, "base64")]]), { threshold: 1, acceptedTypes: [COMMAND_PAYLOAD_TYPE] });
    assert.deepEqual(v.keyids, [`${who.id}#0`]);
  });
});

describe("console: mailbox password verifiers derived in the page are the mail servers'", () => {
  /** The verifier src/services/mail/directory.ts would make for `password` with `salt` (Node's scrypt). */
  function nodeVerifier(password: string, salt: Uint8Array): string {
    const key = scryptSync(password, salt, mailRef.SCRYPT_KEY_BYTES, { N: 2 ** mailRef.SCRYPT_LOG2_N, r: mailRef.SCRYPT_BLOCK_SIZE, p: mailRef.SCRYPT_PARALLELISM, maxmem: 256 * 1024 * 1024 });
    const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64").replace(/=+$/, "");
    return `$scrypt$ln=${mailRef.SCRYPT_LOG2_N},r=${mailRef.SCRYPT_BLOCK_SIZE},p=${mailRef.SCRYPT_PARALLELISM}$${b64(salt)}$${b64(key)}`;
  }

  test("same password and salt: byte-identical to Node's scrypt; the server accepts it and commits to the same hash", async () => {
    for (const password of [generatePassword(), "pässwörd ✓ 🔑", "x"]) {
      const salt = new Uint8Array(nodeRandomBytes(mailRef.SCRYPT_SALT_BYTES));
      const mine = await createPasswordVerifier(password, { salt });
      assert.equal(mine, nodeVerifier(password, salt));
      mailRef.parseVerifier(mine);
      assert.equal(await mailRef.checkPassword(mine, password), true);
      assert.equal(await mailRef.checkPassword(mine, `${password}!`), false);
      assert.equal(await verifierCommitment(mine), mailRef.commitment(mine));
    }
  });

  test("a fresh verifier has a random salt; a server-made verifier has the page's shape", async () => {
    const pw = generatePassword();
    const [a, b] = [await createPasswordVerifier(pw), await createPasswordVerifier(pw)];
    assert.notEqual(a, b, "a fresh salt each time");
    assert.equal(await mailRef.checkPassword(a, pw), true);
    const server = await mailRef.createPasswordVerifier(pw);
    assert.equal(a.split("$").slice(0, 3).join("$"), server.split("$").slice(0, 3).join("$"), "same parameters");
    assert.equal(a.length, server.length);
    assert.equal(GENERATED_PASSWORD_BYTES, CLI_GENERATED_PASSWORD_BYTES);
    assert.match(pw, /^[A-Za-z0-9_-]{24}$/);
    await assert.rejects(createPasswordVerifier(""));
    await assert.rejects(createPasswordVerifier("x".repeat(mailRef.PASSWORD_BYTES_MAX + 1)));
  });
});
