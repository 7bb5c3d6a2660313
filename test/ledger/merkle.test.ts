/**
 * RFC 9162 Merkle math (src/core/ledger/merkle.ts) against the published transparency-dev/merkle
 * vectors (../shared/vectors/merkle-rfc6962.json) and against reference implementations written
 * here straight from RFC 9162 §2.1 (recursive MTH, PATH, PROOF, and recursive verifiers), with
 * fast-check properties over random trees.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  EMPTY_ROOT,
  HASH_BYTES,
  PROOF_HASHES_MAX,
  TREE_SIZE_MAX,
  appendLeaves,
  consistencyPlan,
  emptyRange,
  inclusionPlan,
  leafHash,
  nodeHash,
  rangeRoot,
  rootOf,
  rootPlan,
  verifyConsistency,
  verifyInclusion,
  type CompactRange,
  type NodeId,
  type ProofPlan,
} from "../../src/core/ledger/merkle.ts";
import { bytesEqual, fromHex, toHex } from "../../src/core/crypto/bytes.ts";
import { sha256 } from "../../src/core/crypto/hash.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { readJsonVector } from "../support/paths.ts";

// ---------------------------------------------------------------------------------------------
// The published vectors.

interface InclusionProbe {
  file: string;
  desc: string;
  leafIndex: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[];
  wantErr: boolean;
}
interface ConsistencyProbe {
  file: string;
  desc: string;
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[];
  wantErr: boolean;
  policyDependent: boolean;
}
interface MerkleVectors {
  description: string;
  hash: string;
  leaves: string[];
  roots: Record<string, string>;
  nodeHashes: string[][];
  inclusionProofs: { leafIndex: number; treeSize: number; proof: string[] }[];
  consistencyProofs: { size1: number; size2: number; proof: string[] }[];
  inclusionProbes: InclusionProbe[];
  consistencyProbes: ConsistencyProbe[];
}

const V = readJsonVector<MerkleVectors>("merkle-rfc6962.json");

function hex(s: string): Uint8Array {
  const b = fromHex(s);
  assert.ok(b !== undefined, `vector hex ${s}`);
  return b;
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isNexusError(e)) return e.code;
    throw e;
  }
  return "OK";
}

// ---------------------------------------------------------------------------------------------
// Reference implementations, written from RFC 9162 §2.1 independently of the code under test.

const H = (...parts: Uint8Array[]): Uint8Array => sha256(...parts);
const refLeaf = (d: Uint8Array): Uint8Array => H(new Uint8Array([0]), d);
const refNode = (l: Uint8Array, r: Uint8Array): Uint8Array => H(new Uint8Array([1]), l, r);

/** k: the largest power of two smaller than n (n > 1). */
function refSplit(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** §2.1.1 MTH over leaf hashes. */
function refMth(lh: readonly Uint8Array[]): Uint8Array {
  if (lh.length === 0) return H(new Uint8Array(0));
  if (lh.length === 1) return lh[0] as Uint8Array;
  const k = refSplit(lh.length);
  return refNode(refMth(lh.slice(0, k)), refMth(lh.slice(k)));
}

/** §2.1.3.1 PATH(m, D[n]). */
function refPath(m: number, lh: readonly Uint8Array[]): Uint8Array[] {
  if (lh.length <= 1) return [];
  const k = refSplit(lh.length);
  if (m < k) return [...refPath(m, lh.slice(0, k)), refMth(lh.slice(k))];
  return [...refPath(m - k, lh.slice(k)), refMth(lh.slice(0, k))];
}

/** §2.1.4.1 SUBPROOF(m, D[n], b). */
function refSubproof(m: number, lh: readonly Uint8Array[], b: boolean): Uint8Array[] {
  if (m === lh.length) return b ? [] : [refMth(lh)];
  const k = refSplit(lh.length);
  if (m <= k) return [...refSubproof(m, lh.slice(0, k), b), refMth(lh.slice(k))];
  return [...refSubproof(m - k, lh.slice(k), false), refMth(lh.slice(0, k))];
}

/** Recursive inclusion verifier: rebuild the root along PATH's recursion, consuming the proof from its end. */
function refVerifyInclusion(leaf: Uint8Array, m: bigint, n: bigint, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (m < 0n || m >= n || n > TREE_SIZE_MAX) return false;
  if (![leaf, root, ...proof].every((h) => h.length === HASH_BYTES)) return false;
  const rest = [...proof];
  const walk = (m: bigint, n: bigint): Uint8Array | undefined => {
    if (n === 1n) return leaf;
    const top = rest.pop();
    if (top === undefined) return undefined;
    let k = 1n;
    while (k * 2n < n) k *= 2n;
    const sub = m < k ? walk(m, k) : walk(m - k, n - k);
    if (sub === undefined) return undefined;
    return m < k ? refNode(sub, top) : refNode(top, sub);
  };
  const got = walk(m, n);
  return got !== undefined && rest.length === 0 && bytesEqual(got, root);
}

/**
 * Recursive consistency verifier: rebuild (old root, new root) along SUBPROOF's recursion.
 * size1 = 0 follows this project's documented policy (empty proof, root1 = EMPTY_ROOT).
 */
function refVerifyConsistency(m: bigint, n: bigint, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (m < 0n || m > n || n > TREE_SIZE_MAX) return false;
  if (![root1, root2, ...proof].every((h) => h.length === HASH_BYTES)) return false;
  const empty = H(new Uint8Array(0));
  if (m === 0n) return proof.length === 0 && bytesEqual(root1, empty) && (n > 0n || bytesEqual(root2, empty));
  if (m === n) return proof.length === 0 && bytesEqual(root1, root2);
  const rest = [...proof];
  const walk = (m: bigint, n: bigint, b: boolean): { old: Uint8Array; neu: Uint8Array } | undefined => {
    if (m === n) {
      if (b) return { old: root1, neu: root1 };
      const h = rest.pop();
      return h === undefined ? undefined : { old: h, neu: h };
    }
    const top = rest.pop();
    if (top === undefined) return undefined;
    let k = 1n;
    while (k * 2n < n) k *= 2n;
    if (m <= k) {
      const sub = walk(m, k, b);
      return sub && { old: sub.old, neu: refNode(sub.neu, top) };
    }
    const sub = walk(m - k, n - k, false);
    return sub && { old: refNode(top, sub.old), neu: refNode(top, sub.neu) };
  };
  const got = walk(m, n, true);
  return got !== undefined && rest.length === 0 && bytesEqual(got.old, root1) && bytesEqual(got.neu, root2);
}

// ---------------------------------------------------------------------------------------------
// An in-memory node store filled with appendLeaves' `created` nodes.

type NodeStore = Map<string, Uint8Array>;
const key = (id: NodeId): string => `${id.level}/${id.index}`;

function storeOf(leafHashes: readonly Uint8Array[]): { store: NodeStore; range: CompactRange } {
  const { range, created } = appendLeaves(emptyRange(), leafHashes);
  const store: NodeStore = new Map();
  for (const c of created) {
    assert.ok(!store.has(key(c.id)), `node ${key(c.id)} created twice`);
    store.set(key(c.id), c.hash);
  }
  return { store, range };
}

function run(plan: ProofPlan, store: NodeStore): Uint8Array[] {
  return plan.assemble(
    plan.nodes.map((id) => {
      const h = store.get(key(id));
      assert.ok(h !== undefined, `plan asked for node ${key(id)} the store does not hold`);
      return h;
    }),
  );
}

function isCompleteAt(id: NodeId, size: bigint): boolean {
  return id.level >= 0 && id.index >= 0n && (id.index + 1n) << BigInt(id.level) <= size;
}

const vectorLeaves = V.leaves.map((l) => leafHash(hex(l)));
const vectorStore = storeOf(vectorLeaves).store;

// ---------------------------------------------------------------------------------------------
// Published vectors.

test("vectors: the file is the RFC 6962 SHA-256 set this test expects", () => {
  assert.equal(V.hash, "sha256");
  assert.equal(V.leaves.length, 8);
  assert.equal(V.inclusionProbes.length > 0 && V.consistencyProbes.length > 0, true);
});

test("vectors: leaf hashes and every complete node (nodeHashes[level][index])", () => {
  let checked = 0;
  V.nodeHashes.forEach((row, level) =>
    row.forEach((want, index) => {
      assert.equal(toHex(vectorStore.get(`${level}/${index}`) ?? new Uint8Array(0)), want, `node ${level}/${index}`);
      checked++;
    }),
  );
  assert.equal(checked, 8 + 4 + 2 + 1);
  vectorLeaves.forEach((h, i) => assert.equal(toHex(h), V.nodeHashes[0]?.[i]));
});

test("vectors: roots of every prefix by rootOf, rangeRoot, rootPlan, and EMPTY_ROOT", () => {
  assert.equal(toHex(EMPTY_ROOT), V.roots["0"]);
  for (const [n, want] of Object.entries(V.roots)) {
    const size = Number(n);
    assert.equal(toHex(rootOf(vectorLeaves.slice(0, size))), want, `rootOf ${n}`);
    assert.equal(toHex(rangeRoot(appendLeaves(emptyRange(), vectorLeaves.slice(0, size)).range)), want, `rangeRoot ${n}`);
    const roots = run(rootPlan(BigInt(size)), vectorStore);
    assert.equal(roots.length, 1);
    assert.equal(toHex(roots[0] as Uint8Array), want, `rootPlan ${n}`);
  }
});

test("vectors: generated inclusion proofs equal the published ones and verify", () => {
  for (const v of V.inclusionProofs) {
    const got = run(inclusionPlan(BigInt(v.leafIndex), BigInt(v.treeSize)), vectorStore);
    assert.deepEqual(got.map(toHex), v.proof, `PATH(${v.leafIndex}, ${v.treeSize})`);
    const leaf = vectorLeaves[v.leafIndex] as Uint8Array;
    assert.equal(verifyInclusion(leaf, BigInt(v.leafIndex), BigInt(v.treeSize), got, hex(V.roots[String(v.treeSize)] ?? "")), true);
  }
});

test("vectors: generated consistency proofs equal the published ones and verify", () => {
  for (const v of V.consistencyProofs) {
    const got = run(consistencyPlan(BigInt(v.size1), BigInt(v.size2)), vectorStore);
    assert.deepEqual(got.map(toHex), v.proof, `PROOF(${v.size1}, ${v.size2})`);
    const r1 = hex(V.roots[String(v.size1)] ?? "");
    const r2 = hex(V.roots[String(v.size2)] ?? "");
    assert.equal(verifyConsistency(BigInt(v.size1), BigInt(v.size2), r1, r2, got), true);
  }
});

/** True when a probe hands the verifier something that is not a 32-byte hash. */
function hasNonHash(hexes: readonly string[]): boolean {
  return hexes.some((h) => h.length !== HASH_BYTES * 2);
}

test("vectors: inclusion probes (wantErr honoured; non-32-byte hashes are always rejected)", () => {
  let disagreements = 0;
  for (const p of V.inclusionProbes) {
    const got = verifyInclusion(hex(p.leafHash), BigInt(p.leafIndex), BigInt(p.treeSize), p.proof.map(hex), hex(p.root));
    // Our verifier is stricter than the Go library on one point only: every hash must be 32 bytes.
    const want = hasNonHash([p.leafHash, p.root, ...p.proof]) ? false : !p.wantErr;
    if (want !== !p.wantErr) disagreements++;
    assert.equal(got, want, `${p.file}: ${p.desc}`);
  }
  assert.equal(disagreements, 0, "every inclusion probe agrees with the Go library");
});

test("vectors: consistency probes (wantErr honoured; policyDependent ones judged by our size1 = 0 policy)", () => {
  // policyDependent probes (size1 = 0 with an empty proof) are the Go library's choice, not RFC
  // 9162's, which defines PROOF only for 0 < m. They are not checked against their wantErr: each
  // is checked against this project's own documented policy (docs/ledger.md): from size 0, a
  // proof is valid iff it is empty, root1 is EMPTY_ROOT and root2 is a 32-byte hash (EMPTY_ROOT
  // too when size2 = 0). Under that policy they all happen to be rejected (their roots are not
  // 32-byte hashes), which the count below pins. Every other probe must match wantErr, except
  // where a probe feeds a non-32-byte "hash", which this verifier always rejects.
  let policyProbes = 0;
  const disagreements: string[] = [];
  for (const p of V.consistencyProbes) {
    const r1 = hex(p.root1);
    const r2 = hex(p.root2);
    const proof = p.proof.map(hex);
    const got = verifyConsistency(BigInt(p.size1), BigInt(p.size2), r1, r2, proof);
    let want: boolean;
    if (p.policyDependent) {
      policyProbes++;
      assert.equal(p.size1, 0, `${p.file} is policyDependent with size1 = 0`);
      want = proof.length === 0 && bytesEqual(r1, EMPTY_ROOT) && r2.length === HASH_BYTES && (p.size2 > 0 || bytesEqual(r2, EMPTY_ROOT));
    } else {
      want = hasNonHash([p.root1, p.root2, ...p.proof]) ? false : !p.wantErr;
      if (want !== !p.wantErr) disagreements.push(p.file);
    }
    assert.equal(got, want, `${p.file}: ${p.desc}`);
  }
  assert.equal(policyProbes, 3);
  // "sizes are equal (one) and proof is empty" passes 12-byte roots; Go accepts it, we do not.
  assert.deepEqual(disagreements, ["testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"]);
});

// ---------------------------------------------------------------------------------------------
// Our size1 = 0 policy and range handling.

test("consistency from the empty tree: empty proof and EMPTY_ROOT only", () => {
  const r5 = rootOf(vectorLeaves.slice(0, 5));
  assert.equal(run(consistencyPlan(0n, 5n), vectorStore).length, 0);
  assert.equal(verifyConsistency(0n, 5n, EMPTY_ROOT, r5, []), true);
  assert.equal(verifyConsistency(0n, 0n, EMPTY_ROOT, EMPTY_ROOT, []), true);
  assert.equal(verifyConsistency(0n, 0n, EMPTY_ROOT, r5, []), false);
  assert.equal(verifyConsistency(0n, 5n, r5, r5, []), false);
  assert.equal(verifyConsistency(0n, 5n, EMPTY_ROOT, r5, [r5]), false);
});

test("plans reject out-of-range indices and sizes with LEDGER_RANGE", () => {
  assert.equal(code(() => inclusionPlan(0n, 0n)), "LEDGER_RANGE");
  assert.equal(code(() => inclusionPlan(5n, 5n)), "LEDGER_RANGE");
  assert.equal(code(() => inclusionPlan(-1n, 5n)), "LEDGER_RANGE");
  assert.equal(code(() => inclusionPlan(0n, TREE_SIZE_MAX + 1n)), "LEDGER_RANGE");
  assert.equal(code(() => inclusionPlan(0 as unknown as bigint, 5n)), "LEDGER_RANGE");
  assert.equal(code(() => consistencyPlan(6n, 5n)), "LEDGER_RANGE");
  assert.equal(code(() => consistencyPlan(-1n, 5n)), "LEDGER_RANGE");
  assert.equal(code(() => consistencyPlan(1n, TREE_SIZE_MAX + 1n)), "LEDGER_RANGE");
  assert.equal(code(() => rootPlan(-1n)), "LEDGER_RANGE");
  assert.equal(code(() => rootPlan(TREE_SIZE_MAX + 1n)), "LEDGER_RANGE");
  assert.equal(code(() => rootPlan(3 as unknown as bigint)), "LEDGER_RANGE");
});

test("assemble rejects the wrong number or size of hashes with LEDGER_HASH_INVALID", () => {
  const plan = inclusionPlan(2n, 7n);
  const hashes = plan.nodes.map((id) => vectorStore.get(key(id)) ?? new Uint8Array(0));
  assert.equal(plan.assemble(hashes).length, 3);
  assert.equal(code(() => plan.assemble(hashes.slice(1))), "LEDGER_HASH_INVALID");
  assert.equal(code(() => plan.assemble([...hashes, EMPTY_ROOT])), "LEDGER_HASH_INVALID");
  assert.equal(code(() => plan.assemble([new Uint8Array(31), ...hashes.slice(1)])), "LEDGER_HASH_INVALID");
  assert.equal(code(() => rootPlan(0n).assemble([EMPTY_ROOT])), "LEDGER_HASH_INVALID");
  assert.deepEqual(rootPlan(0n).assemble([]), [EMPTY_ROOT]);
});

test("compact ranges: malformed ranges, bad leaf hashes and overflow are typed errors", () => {
  const h = EMPTY_ROOT;
  assert.equal(code(() => appendLeaves({ size: 3n, hashes: [h] }, [h])), "LEDGER_HASH_INVALID");
  assert.equal(code(() => appendLeaves({ size: -1n, hashes: [] }, [h])), "LEDGER_RANGE");
  assert.equal(code(() => appendLeaves(emptyRange(), [new Uint8Array(33)])), "LEDGER_HASH_INVALID");
  assert.equal(code(() => rangeRoot({ size: 2n, hashes: [new Uint8Array(32), new Uint8Array(32)] })), "LEDGER_HASH_INVALID");
  const full: CompactRange = { size: TREE_SIZE_MAX, hashes: Array.from({ length: 64 }, () => h) };
  assert.equal(rangeRoot(full).length, HASH_BYTES);
  assert.equal(code(() => appendLeaves(full, [h])), "LEDGER_RANGE");
  assert.equal(appendLeaves(full, []).range.size, TREE_SIZE_MAX);
  assert.equal(code(() => rootOf([h, new Uint8Array(0)])), "LEDGER_HASH_INVALID");
});

test("huge trees: plans stay O(log n) and only name complete nodes; verifiers never throw", () => {
  const cases: [bigint, bigint][] = [
    [TREE_SIZE_MAX - 1n, TREE_SIZE_MAX],
    [0n, TREE_SIZE_MAX],
    [(1n << 63n) - 1n, (1n << 63n) + 1n],
    [12345678901234567n, 98765432109876543n],
  ];
  for (const [a, b] of cases) {
    for (const plan of [inclusionPlan(a, b), consistencyPlan(a + 1n, b), rootPlan(b)]) {
      assert.ok(plan.nodes.length <= 2 * 64, `${plan.nodes.length} nodes`);
      for (const id of plan.nodes) assert.ok(isCompleteAt(id, b), `node ${key(id)} complete at ${b}`);
    }
  }
  const h = EMPTY_ROOT;
  assert.equal(verifyInclusion(h, TREE_SIZE_MAX, TREE_SIZE_MAX, [], h), false);
  assert.equal(verifyInclusion(h, 0n, TREE_SIZE_MAX + 1n, [], h), false);
  assert.equal(verifyInclusion(h, -1n, 3n, [h], h), false);
  assert.equal(verifyInclusion(h, 0 as unknown as bigint, 1n, [], h), false);
  assert.equal(verifyInclusion(h, 0n, 1n, Array.from({ length: PROOF_HASHES_MAX + 1 }, () => h), h), false);
  assert.equal(verifyInclusion(h, 0n, 1n, "x" as unknown as Uint8Array[], h), false);
  assert.equal(verifyConsistency(1n, TREE_SIZE_MAX + 1n, h, h, [h]), false);
  assert.equal(verifyConsistency(2n, 1n, h, h, []), false);
  assert.equal(verifyConsistency(1n, 2n, h, h, [new Uint8Array(0)]), false);
  assert.equal(verifyConsistency(1n, 3n, h, h, null as unknown as Uint8Array[]), false);
});

test("EMPTY_ROOT is a copy: overwriting it changes no result", () => {
  const saved = EMPTY_ROOT.slice();
  EMPTY_ROOT.fill(7);
  try {
    assert.equal(toHex(rootOf([])), V.roots["0"]);
    assert.equal(toHex(rangeRoot(emptyRange())), V.roots["0"]);
  } finally {
    EMPTY_ROOT.set(saved);
  }
});

// ---------------------------------------------------------------------------------------------
// Properties over random trees of up to 300 leaves.

const LEAVES_MAX = 300;
const leaves = Array.from({ length: LEAVES_MAX }, (_, i) => refLeaf(new Uint8Array([i & 0xff, i >> 8, 0x5a])));
const { store: bigStore } = storeOf(leaves);
const rootCache = new Map<number, Uint8Array>();
function root(n: number): Uint8Array {
  let r = rootCache.get(n);
  if (r === undefined) {
    r = refMth(leaves.slice(0, n));
    rootCache.set(n, r);
  }
  return r;
}

const sizeAndIndex = fc.integer({ min: 1, max: LEAVES_MAX }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 })));
const twoSizes = fc.integer({ min: 1, max: LEAVES_MAX }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n)));

function flipBit(h: Uint8Array, bit: number): Uint8Array {
  const out = h.slice();
  out[(bit >> 3) % out.length] = (out[(bit >> 3) % out.length] ?? 0) ^ (1 << (bit & 7));
  return out;
}

function bitLength(n: number): number {
  return n.toString(2).length;
}

test("property: inclusion plans only name complete nodes, O(log n) of them, and equal RFC PATH", () => {
  fc.assert(
    fc.property(sizeAndIndex, ([n, m]) => {
      const plan = inclusionPlan(BigInt(m), BigInt(n));
      assert.ok(plan.nodes.length <= 2 * bitLength(n), `${plan.nodes.length} nodes for size ${n}`);
      for (const id of plan.nodes) assert.ok(isCompleteAt(id, BigInt(n)), `node ${key(id)} at size ${n}`);
      const proof = run(plan, bigStore);
      assert.deepEqual(proof.map(toHex), refPath(m, leaves.slice(0, n)).map(toHex));
      assert.equal(verifyInclusion(leaves[m] as Uint8Array, BigInt(m), BigInt(n), proof, root(n)), true);
    }),
    { numRuns: 300 },
  );
});

test("property: consistency plans only name complete nodes, O(log n) of them, and equal RFC PROOF", () => {
  fc.assert(
    fc.property(twoSizes, ([m, n]) => {
      const plan = consistencyPlan(BigInt(m), BigInt(n));
      assert.ok(plan.nodes.length <= 2 * bitLength(n) + 1, `${plan.nodes.length} nodes for ${m}..${n}`);
      for (const id of plan.nodes) assert.ok(isCompleteAt(id, BigInt(n)), `node ${key(id)} at size ${n}`);
      const proof = run(plan, bigStore);
      assert.deepEqual(proof.map(toHex), refSubproof(m, leaves.slice(0, n), true).map(toHex));
      assert.equal(verifyConsistency(BigInt(m), BigInt(n), root(m), root(n), proof), true);
    }),
    { numRuns: 300 },
  );
});

test("property: rootPlan equals the reference MTH for every size", () => {
  for (let n = 0; n <= LEAVES_MAX; n++) {
    const plan = rootPlan(BigInt(n));
    assert.ok(plan.nodes.length <= bitLength(n));
    assert.deepEqual(run(plan, bigStore).map(toHex), [toHex(root(n))]);
    assert.equal(toHex(rootOf(leaves.slice(0, n))), toHex(root(n)));
  }
});

test("property: any bit flip in a proof hash, the root or the leaf hash fails inclusion", () => {
  fc.assert(
    fc.property(sizeAndIndex, fc.nat(), fc.nat(HASH_BYTES * 8 - 1), ([n, m], which, bit) => {
      const proof = run(inclusionPlan(BigInt(m), BigInt(n)), bigStore);
      const leaf = leaves[m] as Uint8Array;
      if (proof.length > 0) {
        const j = which % proof.length;
        const bad = proof.map((p, i) => (i === j ? flipBit(p, bit) : p));
        assert.equal(verifyInclusion(leaf, BigInt(m), BigInt(n), bad, root(n)), false);
      }
      assert.equal(verifyInclusion(leaf, BigInt(m), BigInt(n), proof, flipBit(root(n), bit)), false);
      assert.equal(verifyInclusion(flipBit(leaf, bit), BigInt(m), BigInt(n), proof, root(n)), false);
      assert.equal(verifyInclusion(leaf, BigInt(m), BigInt(n), [...proof, root(n)], root(n)), false);
      if (proof.length > 0) assert.equal(verifyInclusion(leaf, BigInt(m), BigInt(n), proof.slice(1), root(n)), false);
    }),
    { numRuns: 300 },
  );
});

test("property: any bit flip in a proof hash or either root fails consistency", () => {
  fc.assert(
    fc.property(twoSizes, fc.nat(), fc.nat(HASH_BYTES * 8 - 1), ([m, n], which, bit) => {
      const proof = run(consistencyPlan(BigInt(m), BigInt(n)), bigStore);
      const [s1, s2] = [BigInt(m), BigInt(n)];
      if (proof.length > 0) {
        const j = which % proof.length;
        const bad = proof.map((p, i) => (i === j ? flipBit(p, bit) : p));
        assert.equal(verifyConsistency(s1, s2, root(m), root(n), bad), false);
      }
      assert.equal(verifyConsistency(s1, s2, flipBit(root(m), bit), root(n), proof), false);
      assert.equal(verifyConsistency(s1, s2, root(m), flipBit(root(n), bit), proof), false);
      assert.equal(verifyConsistency(s1, s2, root(m), root(n), [...proof, root(n)]), false);
    }),
    { numRuns: 300 },
  );
});

test("property: an off-by-one index always fails; an off-by-one size fails unless the path shape is the same", () => {
  // RFC 9162 §2.1.3.2 checks the proof against the *shape* of the path (fn, sn), so one proof can
  // be valid at several tree sizes with the same root: e.g. leaf 0 of the size-4 tree also
  // "verifies" at size 3 against the size-4 root. That is harmless because a checkpoint signs
  // size and root together; this property pins the exact behaviour: the verifier agrees with the
  // recursive reference verifier (written from PATH's definition) on every mutated input, and
  // off-by-one indices are always rejected.
  fc.assert(
    fc.property(sizeAndIndex, fc.constantFrom(-1, 1), ([n, m], d) => {
      const proof = run(inclusionPlan(BigInt(m), BigInt(n)), bigStore);
      const leaf = leaves[m] as Uint8Array;
      assert.equal(verifyInclusion(leaf, BigInt(m + d), BigInt(n), proof, root(n)), false, `index ${m + d} of ${n}`);
      const got = verifyInclusion(leaf, BigInt(m), BigInt(n + d), proof, root(n));
      assert.equal(got, refVerifyInclusion(leaf, BigInt(m), BigInt(n + d), proof, root(n)), `size ${n + d}`);
    }),
    { numRuns: 400 },
  );
  // The example above, pinned: the size-4 proof of leaf 0 has the same shape at size 3.
  const p4 = run(inclusionPlan(0n, 4n), bigStore);
  assert.equal(verifyInclusion(leaves[0] as Uint8Array, 0n, 3n, p4, root(4)), true);
  assert.equal(verifyInclusion(leaves[0] as Uint8Array, 0n, 5n, p4, root(4)), false);
});

test("property: an off-by-one size1 always fails consistency; size2 agrees with the reference verifier", () => {
  fc.assert(
    fc.property(twoSizes, fc.constantFrom(-1, 1), ([m, n], d) => {
      const proof = run(consistencyPlan(BigInt(m), BigInt(n)), bigStore);
      if (m + d >= 1) assert.equal(verifyConsistency(BigInt(m + d), BigInt(n), root(m), root(n), proof), false, `size1 ${m + d}`);
      const got = verifyConsistency(BigInt(m), BigInt(n + d), root(m), root(n), proof);
      assert.equal(got, refVerifyConsistency(BigInt(m), BigInt(n + d), root(m), root(n), proof), `size2 ${n + d}`);
    }),
    { numRuns: 400 },
  );
});

test("property: the verifiers agree with the recursive reference verifiers on every published probe", () => {
  for (const p of V.inclusionProbes) {
    const args = [hex(p.leafHash), BigInt(p.leafIndex), BigInt(p.treeSize), p.proof.map(hex), hex(p.root)] as const;
    assert.equal(verifyInclusion(...args), refVerifyInclusion(...args), p.file);
  }
  for (const p of V.consistencyProbes) {
    const args = [BigInt(p.size1), BigInt(p.size2), hex(p.root1), hex(p.root2), p.proof.map(hex)] as const;
    assert.equal(verifyConsistency(...args), refVerifyConsistency(...args), p.file);
  }
});

test("property: appendLeaves in any chunking gives rootOf's root and creates each complete node once, in order", () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 20 }), (chunks) => {
      let range = emptyRange();
      const seen = new Map<string, Uint8Array>();
      const lastIndex = new Map<number, bigint>();
      let at = 0;
      for (const c of chunks) {
        const take = Math.min(c, LEAVES_MAX - at);
        const out = appendLeaves(range, leaves.slice(at, at + take));
        for (const { id, hash } of out.created) {
          assert.ok(!seen.has(key(id)), `node ${key(id)} created twice`);
          const prev = lastIndex.get(id.level);
          assert.ok(prev === undefined || id.index === prev + 1n, `level ${id.level} out of order`);
          lastIndex.set(id.level, id.index);
          seen.set(key(id), hash);
          const span = 1 << id.level;
          const first = Number(id.index) * span;
          assert.equal(toHex(hash), toHex(refMth(leaves.slice(first, first + span))), `node ${key(id)}`);
        }
        range = out.range;
        at += take;
        assert.equal(range.size, BigInt(at));
        assert.equal(toHex(rangeRoot(range)), toHex(rootOf(leaves.slice(0, at))));
      }
      // Exactly the complete nodes of the final tree were created.
      let complete = 0;
      for (let level = 0; 1 << level <= at; level++) complete += Math.floor(at / (1 << level));
      assert.equal(seen.size, complete);
      assert.equal(toHex(rangeRoot(range)), toHex(root(at)));
    }),
    { numRuns: 200 },
  );
});

test("property: rootOf and nodeHash/leafHash match the reference definitions", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 70 }), (data) => {
      const lh = data.map(leafHash);
      data.forEach((d, i) => assert.ok(bytesEqual(lh[i] as Uint8Array, refLeaf(d))));
      assert.equal(toHex(rootOf(lh)), toHex(refMth(lh)));
      if (lh.length >= 2) assert.ok(bytesEqual(nodeHash(lh[0] as Uint8Array, lh[1] as Uint8Array), refNode(lh[0] as Uint8Array, lh[1] as Uint8Array)));
    }),
  );
});
