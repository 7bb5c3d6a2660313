/**
 * The console's in-page verification code (console/src/lib, WebCrypto) against the reference
 * implementation in src/core, run under Node's WebCrypto: RFC 8785 canonical JSON, RFC 9162
 * inclusion and consistency proofs (valid ones accepted, systematic corruptions rejected, the
 * same verdict as the server's verifier every time), C2SP signed checkpoints, identities made in
 * the browser and CLI identity files imported, commands signed in the page, mailbox password
 * verifiers derived in the page (byte-identical to Node's scrypt, accepted by the mail servers),
 * directories packed in the page (byte-identical to the CLI's writeTarSync for the same tree) and
 * RFC 9421 request signatures made in the page (the server's bytes, accepted by its verifier).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes as nodeRandomBytes, scryptSync } from "node:crypto";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
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
import { readTarSync, writeTarSync } from "../../src/services/compute/tar.ts";
import { signRequest as serverSignRequest, verifyRequest } from "../../src/core/crypto/httpsig.ts";
import { packDirectory, PackError, type SourceFile } from "../../console/src/lib/tar.ts";
import { signRequest } from "../../console/src/lib/httpsig.ts";

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

/** A tree to write: relative file path -> [content, mtime in seconds]. */
type TreeSpec = ReadonlyMap<string, readonly [Uint8Array, number]>;

/**
 * Writes `spec` under `root` with the metadata the page assumes (files 0644, directories 0755,
 * the given owner, each directory's mtime the newest beneath it) and returns what a browser
 * would hand the page for it (webkitRelativePath "<name>/<path>", the bytes, lastModified in ms).
 */
function writeTree(root: string, name: string, spec: TreeSpec, owner: { uid: number; gid: number }): SourceFile[] {
  const top = join(root, name);
  mkdirSync(top, { recursive: true });
  for (const [rel, [bytes, mtime]] of spec) {
    const abs = join(top, rel);
    mkdirSync(join(abs, ".."), { recursive: true });
    writeFileSync(abs, bytes);
    chmodSync(abs, 0o644);
    utimesSync(abs, mtime, mtime);
  }
  const fix = (dir: string): number => {
    let newest = Number.NEGATIVE_INFINITY;
    for (const n of readdirSync(dir)) {
      const p = join(dir, n);
      const st = lstatSync(p);
      newest = Math.max(newest, st.isDirectory() ? fix(p) : Math.floor(st.mtimeMs / 1000));
    }
    chmodSync(dir, 0o755);
    if (typeof process.getuid === "function" && process.getuid() === 0) chownSync(dir, owner.uid, owner.gid);
    utimesSync(dir, newest, newest);
    return newest;
  };
  for (const [rel] of spec) if (typeof process.getuid === "function" && process.getuid() === 0) chownSync(join(top, rel), owner.uid, owner.gid);
  fix(top);
  return [...spec.keys()].map((rel) => {
    const st = lstatSync(join(top, rel));
    return { relativePath: `${name}/${rel}`, blob: new Blob([readFileSync(join(top, rel))]), lastModified: Math.floor(st.mtimeMs) };
  });
}

/** The CLI's archive of `dir` (writeTarSync), its bytes and digest. */
function cliTar(dir: string, out: string): { bytes: Buffer; sha256: string; entries: number } {
  const r = writeTarSync(dir, out);
  return { bytes: readFileSync(out), sha256: r.sha256, entries: r.entries };
}

describe("console: a directory packed in the page is the CLI's deterministic tar, byte for byte", () => {
  const owner = { uid: typeof process.getuid === "function" ? process.getuid() : 0, gid: typeof process.getgid === "function" ? process.getgid() : 0 };
  const meta = { uid: owner.uid, gid: owner.gid };
  const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

  test("a site with nested, long, non-ASCII and byte-order-sensitive names, empty and block-sized files", async () => {
    const work = mkdtempSync(join(tmpdir(), "nexus-console-tar-"));
    try {
      const long = `${"deep/".repeat(30)}${"n".repeat(120)}.txt`;
      const spec: TreeSpec = new Map<string, readonly [Uint8Array, number]>([
        ["index.html", [b("<h1>hello from the page</h1>\n"), 1_700_000_000]],
        ["css/site.css", [b("h1{color:#123}\n"), 1_700_000_100]],
        ["empty", [new Uint8Array(0), 1_600_000_000]],
        ["block512", [new Uint8Array(512).fill(7), 1_700_000_001]],
        ["block513", [new Uint8Array(513).fill(8), 1_700_000_002]],
        [".well-known/security.txt", [b("Contact: mailto:x@example.org\n"), 1_700_000_003]],
        ["café/ü.txt", [b("unicode"), 1_700_000_004]],
        // UTF-16 order puts U+1F600 before U+E000; UTF-8 byte order (the CLI's) the other way.
        ["order/\u{E000}", [b("private use"), 1_700_000_005]],
        ["order/\u{1F600}", [b("emoji"), 1_700_000_006]],
        ["order/Z", [b("Z"), 1_700_000_007]],
        ["order/a", [b("a"), 1_700_000_008]],
        [long, [new Uint8Array(nodeRandomBytes(3000)), 1_700_000_009]],
      ]);
      const files = writeTree(work, "site", spec, owner);
      const cli = cliTar(join(work, "site"), join(work, "cli.tar"));
      let last = -1;
      const page = await packDirectory([...files].reverse(), { ...meta, onProgress: (f) => (last = f) });
      assert.equal(page.root, "site");
      assert.equal(page.entries, cli.entries);
      assert.equal(page.sha256, cli.sha256);
      assert.equal(page.sizeBytes, cli.bytes.length);
      assert.deepEqual(Buffer.from(await page.blob.arrayBuffer()), cli.bytes, "byte-identical archives");
      assert.equal(page.blob.type, "application/x-tar");
      assert.equal(last, 1);
      // The server's reader takes the page's archive back, with every file's bytes.
      writeFileSync(join(work, "page.tar"), Buffer.from(await page.blob.arrayBuffer()));
      const seen = new Map<string, Buffer>();
      readTarSync(join(work, "page.tar"), (e, data) => {
        if (e.type !== "file") return;
        const chunks: Buffer[] = [];
        data((c) => chunks.push(Buffer.from(c)));
        seen.set(e.path, Buffer.concat(chunks));
      });
      for (const [rel, [bytes]] of spec) assert.deepEqual(seen.get(rel), Buffer.from(bytes), rel);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test("random trees: the page's digest is the CLI's every time", async () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._\u00e9\u00fc\u4e2d-]{1,12}$/).filter((n) => n !== "." && n !== "..");
    const tree = fc.uniqueArray(fc.tuple(fc.array(name, { minLength: 1, maxLength: 3 }), fc.uint8Array({ maxLength: 1100 }), fc.integer({ min: 0, max: 2_000_000_000 })), {
      minLength: 1,
      maxLength: 12,
      selector: ([parts]) => parts.join("/"),
    });
    await fc.assert(
      fc.asyncProperty(tree, async (items) => {
        // Drop items whose path is a prefix directory of another (a name cannot be a file and a directory).
        const paths = items.map(([p]) => p.join("/"));
        const kept = items.filter(([p]) => !paths.some((q) => q.startsWith(`${p.join("/")}/`)));
        const spec: TreeSpec = new Map(kept.map(([p, bytes, mtime]) => [p.join("/"), [bytes, mtime] as const]));
        const work = mkdtempSync(join(tmpdir(), "nexus-console-tar-"));
        try {
          const files = writeTree(work, "app", spec, owner);
          const cli = cliTar(join(work, "app"), join(work, "cli.tar"));
          const page = await packDirectory(files, meta);
          assert.equal(page.sha256, cli.sha256);
          assert.deepEqual(Buffer.from(await page.blob.arrayBuffer()), cli.bytes);
        } finally {
          rmSync(work, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
  });

  test("what the CLI would not pack the same way is refused with a stable code", async () => {
    const f = (relativePath: string, size = 1): SourceFile => ({ relativePath, blob: new Blob([new Uint8Array(size)]), lastModified: 0 });
    const refused = async (files: SourceFile[], why: RegExp, opts = {}): Promise<void> => {
      await assert.rejects(packDirectory(files, opts), (e: unknown) => e instanceof PackError && e.code === "CONSOLE_SOURCE_INVALID" && why.test(e.message));
    };
    await refused([], /no file/);
    await refused([f("a/x"), f("b/y")], /two directories/);
    await refused([f("a/../x")], /not a path/);
    await refused([f("a/./x")], /not a path/);
    await refused([f("a//x")], /not a path/);
    await refused([f("x")], /not a path/);
    await refused([f("a/x"), f("a/x")], /listed twice/);
    await refused([f("a/x"), f("a/x/y")], /listed twice|both a file and a directory/);
    await refused([f("a/x/y"), f("a/x")], /listed twice|both a file and a directory/);
    await refused([f(`a/${"d/".repeat(129)}x`)], /too long or too deep/);
    await refused([f("a/big", 4096)], /exceed 4096 bytes/, { maxBytes: 4096 });
  });
});

describe("console: RFC 9421 request signatures made in the page are the CLI's", () => {
  test("same key, same request, same second: the server's exact headers, accepted by its verifier; altered requests refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nexus-console-sig-"));
    try {
      const cli = createIdentity(join(dir, "keyring"), { name: "carol" });
      const who = await importCliIdentity(readFileSync(cli.path, "utf8"));
      const url = `http://127.0.0.1:8780/v1/compute/imvus/stage/sources/${"ab".repeat(32)}`;
      const now = 1_750_000_000;
      const mine = await signRequest(who, "put", url, now);
      const server = serverSignRequest(
        { method: "PUT", url, headers: {} },
        { components: ["@method", "@target-uri"], params: { created: now, keyid: cli.id, alg: "ed25519" }, privateKey: cli.current.privateKey },
      );
      assert.equal(mine["signature-input"], server.signatureInput);
      assert.equal(mine.signature, server.signature, "Ed25519 is deterministic: the same bytes");
      const key = Buffer.from(who.publicKey, "base64");
      const policy = { resolveKey: (k: string) => (k === cli.id ? key : undefined), required: ["@method", "@target-uri"], nowSec: now + 5, maxAgeSec: 300 };
      const ok = verifyRequest({ method: "PUT", url, headers: { ...mine } }, policy);
      assert.ok(ok.ok, ok.ok ? "" : ok.reason);
      assert.equal(ok.keyid, cli.id);
      for (const [what, req] of [
        ["another method", { method: "POST", url, headers: { ...mine } }],
        ["another digest", { method: "PUT", url: url.replace("abab", "abac"), headers: { ...mine } }],
        ["another host", { method: "PUT", url: url.replace("127.0.0.1", "localhost"), headers: { ...mine } }],
      ] as const) {
        assert.equal(verifyRequest(req, policy).ok, false, what);
      }
      assert.equal(verifyRequest({ method: "PUT", url, headers: { ...mine } }, { ...policy, nowSec: now + 3600 }).ok, false, "too old");
      const browser = await createBrowserIdentity();
      const other = await signRequest(browser, "PUT", url, now);
      assert.equal(verifyRequest({ method: "PUT", url, headers: { ...other } }, policy).ok, false, "an unknown key");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
