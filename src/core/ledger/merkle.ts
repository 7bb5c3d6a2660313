/**
 * The verifiable-log math of RFC 9162 §2.1 (the Merkle tree of RFC 6962, SHA-256), pure: hashing,
 * reference roots, inclusion and consistency proofs, and compact ranges for appends.
 *
 * Proofs are produced as *plans*: the list of complete-subtree hashes a proof needs (node (L, i)
 * covers leaves [i*2^L, (i+1)*2^L)), and a function that folds the hashes read from storage into
 * the RFC 9162 proof. A plan names O(log n) nodes, never a leaf range, so a store of complete
 * subtrees (tiles) answers any proof with O(log n) reads. The right edge of a tree that is not a
 * power of two is not a stored node: the plan folds it from the complete subtrees it is made of.
 *
 * Sizes and indices are bigint in [0, 2^64-1]. Plans throw typed errors for out-of-range input;
 * verifiers never throw: anything wrong (range, hash length, proof length) is `false`.
 */
import assert from "node:assert/strict";
import { bytesEqual } from "../crypto/bytes.ts";
import { sha256 } from "../crypto/hash.ts";
import { ledgerErrors } from "./errors.ts";

/** Bytes in every hash of the tree (SHA-256). */
export const HASH_BYTES = 32;
/** Levels a tree of at most TREE_SIZE_MAX leaves can have above its leaves. */
export const LEVELS_MAX = 64;
/** The largest tree size (and one more than the largest index) handled: 2^64-1, as in C2SP tlog. */
export const TREE_SIZE_MAX = (1n << 64n) - 1n;
/** Proof hashes a verifier looks at; a longer proof is rejected before any hashing. */
export const PROOF_HASHES_MAX = 2 * LEVELS_MAX;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);
// Private copy: the exported EMPTY_ROOT is a plain Uint8Array a caller could overwrite.
const EMPTY_HASH = sha256(new Uint8Array(0));

/** The root of the empty tree, SHA-256 of the empty string (RFC 9162 §2.1.1: MTH({}) = HASH()). */
export const EMPTY_ROOT: Uint8Array = EMPTY_HASH.slice();

/** The leaf hash of an entry: SHA-256(0x00 || entry) (RFC 9162 §2.1.1). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256(LEAF_PREFIX, entry);
}

/** The hash of an interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). */
export function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(NODE_PREFIX, l, r);
}

/** A complete subtree: level L, index i covers leaves [i*2^L, (i+1)*2^L). Level 0 = leaf hashes. */
export interface NodeId {
  readonly level: number;
  readonly index: bigint;
}

/** The complete-subtree hashes a proof needs (read them, O(log n)), and how to fold them into it. */
export interface ProofPlan {
  readonly nodes: readonly NodeId[];
  assemble(hashes: readonly Uint8Array[]): Uint8Array[];
}

/** The right edge of a tree (one complete-subtree hash per set bit of size), for appends. */
export interface CompactRange {
  readonly size: bigint;
  readonly hashes: readonly Uint8Array[];
} // largest subtree first

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_BYTES;
}

function isSize(n: unknown): n is bigint {
  return typeof n === "bigint" && n >= 0n && n <= TREE_SIZE_MAX;
}

function checkHash(h: unknown, what: string): Uint8Array {
  if (!isHash(h)) {
    const got = h instanceof Uint8Array ? `${h.length} bytes` : typeof h;
    throw ledgerErrors.make("LEDGER_HASH_INVALID", `${what} must be ${HASH_BYTES} bytes, got ${got}`);
  }
  return h;
}

function checkHashList(list: unknown, what: string): readonly Uint8Array[] {
  if (!Array.isArray(list)) throw ledgerErrors.make("LEDGER_HASH_INVALID", `${what} must be an array of hashes`);
  const items: readonly unknown[] = list;
  return items.map((h, i) => checkHash(h, `${what}[${i}]`));
}

/** Number of binary digits of n (0 for 0). */
function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Number of set bits of n (n >= 0). */
function popCount(n: bigint): number {
  let count = 0;
  for (const c of n.toString(2)) if (c === "1") count++;
  return count;
}

/** The largest power of two strictly below n, for n >= 2 (RFC 9162 §2.1.1's k). */
function splitPoint(n: bigint): bigint {
  assert.ok(n >= 2n, "a split needs at least two leaves");
  return 1n << BigInt(bitLength(n - 1n) - 1);
}

function isPowerOfTwo(n: bigint): boolean {
  return n > 0n && (n & (n - 1n)) === 0n;
}

/**
 * The complete subtrees that make up leaves [start, end), largest first. `start` must be a multiple
 * of the largest of them, which holds for every range RFC 9162's recursive split produces (each
 * right part starts at a multiple of the power of two that bounds its size).
 */
function subtreesOf(start: bigint, end: bigint): NodeId[] {
  const ids: NodeId[] = [];
  const count = end - start;
  let at = start;
  for (let level = LEVELS_MAX - 1; level >= 0; level--) {
    const span = 1n << BigInt(level);
    if ((count & span) === 0n) continue;
    assert.equal(at % span, 0n, "subtree range is not aligned");
    ids.push({ level, index: at >> BigInt(level) });
    at += span;
  }
  assert.equal(at, end, "subtree range does not decompose");
  return ids;
}

/** MTH of consecutive complete subtrees, largest first: the right fold of RFC 9162 §2.1.1's split. */
function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  const last = hashes[hashes.length - 1];
  assert.ok(last !== undefined, "nothing to fold");
  let h = last;
  for (let i = hashes.length - 2; i >= 0; i--) {
    const left = hashes[i];
    assert.ok(left !== undefined);
    h = nodeHash(left, h);
  }
  return h === last ? last.slice() : h;
}

/** A plan whose output element j is the fold of the subtrees of `groups[j]`. */
function planOf(groups: readonly NodeId[][]): ProofPlan {
  const nodes: readonly NodeId[] = Object.freeze(groups.flat());
  return {
    nodes,
    assemble(hashes: readonly Uint8Array[]): Uint8Array[] {
      const list = checkHashList(hashes, "plan hashes");
      if (list.length !== nodes.length) {
        throw ledgerErrors.make("LEDGER_HASH_INVALID", `the plan needs ${nodes.length} hashes, got ${list.length}`);
      }
      const out: Uint8Array[] = [];
      let at = 0;
      for (const g of groups) {
        out.push(foldRight(list.slice(at, at + g.length)));
        at += g.length;
      }
      return out;
    },
  };
}

/** The reference Merkle Tree Hash of RFC 9162 §2.1.1 over leaf hashes, O(n) hashing and memory. */
export function rootOf(leafHashes: readonly Uint8Array[]): Uint8Array {
  let level = checkHashList(leafHashes, "leafHashes");
  if (level.length === 0) return EMPTY_HASH.slice();
  // Pairing each level left to right and carrying an odd last node up unchanged builds exactly
  // the tree of §2.1.1's split at the largest power of two below n.
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array));
    if (level.length % 2 === 1) next.push(level[level.length - 1] as Uint8Array);
    level = next;
  }
  return (level[0] as Uint8Array).slice();
}

/**
 * The plan of the inclusion proof of leaf `index` in the tree of `size` (RFC 9162 §2.1.3.1,
 * PATH(m, D[n])): `assemble` returns the audit path, the leaf's sibling first.
 */
export function inclusionPlan(index: bigint, size: bigint): ProofPlan {
  if (!isSize(size) || typeof index !== "bigint" || index < 0n || index >= size) {
    throw ledgerErrors.make("LEDGER_RANGE", `inclusion of index ${String(index)} in a tree of size ${String(size)}`);
  }
  // Walk PATH's recursion from the root: at each split k, the subtree not holding the leaf is a
  // proof element. Elements are found top-down; the proof lists them bottom-up.
  const groups: NodeId[][] = [];
  let start = 0n;
  let n = size;
  let m = index;
  for (let step = 0; n > 1n; step++) {
    assert.ok(step <= LEVELS_MAX, "inclusion walk did not end");
    const k = splitPoint(n);
    if (m < k) {
      groups.push(subtreesOf(start + k, start + n)); // MTH(D[k:n]): the right part, maybe the ragged edge
      n = k;
    } else {
      groups.push(subtreesOf(start, start + k)); // MTH(D[0:k]): always complete
      start += k;
      m -= k;
      n -= k;
    }
  }
  return planOf(groups.reverse());
}

/**
 * The plan of the consistency proof between the trees of `size1` and `size2` (RFC 9162 §2.1.4.1,
 * PROOF(m, D[n]) = SUBPROOF(m, D[n], true)). Equal sizes, and size1 = 0 (the empty tree is a
 * prefix of every tree; RFC 9162 defines PROOF only for 0 < m), give the empty proof.
 */
export function consistencyPlan(size1: bigint, size2: bigint): ProofPlan {
  if (!isSize(size1) || !isSize(size2) || size1 > size2) {
    throw ledgerErrors.make("LEDGER_RANGE", `consistency from size ${String(size1)} to size ${String(size2)}`);
  }
  const groups: NodeId[][] = [];
  if (size1 === 0n || size1 === size2) return planOf(groups);
  let start = 0n;
  let n = size2;
  let m = size1;
  let whole = true; // SUBPROOF's b: true while D[0:m] is the whole left spine of the old tree
  for (let step = 0; ; step++) {
    assert.ok(step <= LEVELS_MAX + 1, "consistency walk did not end");
    if (m === n) {
      // SUBPROOF(m, D[m], b): {} when b, else MTH(D[m]) (a complete subtree of the old tree).
      if (!whole) groups.push(subtreesOf(start, start + n));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      groups.push(subtreesOf(start + k, start + n)); // SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
      n = k;
    } else {
      groups.push(subtreesOf(start, start + k)); // SUBPROOF(m-k, D[k:n], false) : MTH(D[0:k])
      start += k;
      m -= k;
      n -= k;
      whole = false;
    }
  }
  return planOf(groups.reverse());
}

/** The root of a tree of `size` from complete-subtree hashes: plan.assemble(...) returns [root]. */
export function rootPlan(size: bigint): ProofPlan {
  if (!isSize(size)) throw ledgerErrors.make("LEDGER_RANGE", `root of a tree of size ${String(size)}`);
  if (size > 0n) return planOf([subtreesOf(0n, size)]);
  return {
    nodes: Object.freeze([]),
    assemble(hashes: readonly Uint8Array[]): Uint8Array[] {
      if (checkHashList(hashes, "plan hashes").length !== 0) {
        throw ledgerErrors.make("LEDGER_HASH_INVALID", `the plan needs 0 hashes, got ${hashes.length}`);
      }
      return [EMPTY_HASH.slice()];
    },
  };
}

/** Shifts fn and sn right together until fn is odd or zero (RFC 9162 §2.1.3.2 step 4.b.ii). */
function shiftToOdd(fn: bigint, sn: bigint): [bigint, bigint] {
  // At most 64 shifts: fn < 2^64 and it halves each time.
  while ((fn & 1n) === 0n && fn !== 0n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  return [fn, sn];
}

function hashesOk(list: unknown): list is readonly Uint8Array[] {
  if (!Array.isArray(list)) return false;
  const items: readonly unknown[] = list;
  return items.length <= PROOF_HASHES_MAX && items.every(isHash);
}

/** Whether `proof` shows the leaf `leafHash` at `index` in the tree of `size` and `root` (RFC 9162 §2.1.3.2). */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: bigint,
  size: bigint,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isHash(leafHash) || !isHash(root) || !hashesOk(proof)) return false;
  if (!isSize(size) || typeof index !== "bigint" || index < 0n || index >= size) return false; // step 1
  let fn = index; // step 2
  let sn = size - 1n;
  let r = leafHash; // step 3
  for (const p of proof) {
    if (sn === 0n) return false; // step 4.a: the proof is longer than the path
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r); // 4.b.i
      if ((fn & 1n) === 0n) [fn, sn] = shiftToOdd(fn, sn); // 4.b.ii: skip the levels where we are the lone right edge
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n; // 4.c
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(r, root); // step 5
}

/**
 * Whether `proof` shows the tree of `size2` and `root2` extends the tree of `size1` and `root1`
 * (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal roots. size1 = 0 (outside the
 * RFC's 0 < first) needs an empty proof and root1 = EMPTY_ROOT: the empty tree is a prefix of any.
 */
export function verifyConsistency(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (!isHash(root1) || !isHash(root2) || !hashesOk(proof)) return false;
  if (!isSize(size1) || !isSize(size2) || size1 > size2) return false;
  if (size1 === 0n) return proof.length === 0 && bytesEqual(root1, EMPTY_HASH) && (size2 > 0n || bytesEqual(root2, EMPTY_HASH));
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  if (proof.length === 0) return false; // step 1
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof; // step 2
  let fn = size1 - 1n; // step 3
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    // step 4 (at most 64 shifts: fn < 2^64)
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0] as Uint8Array; // step 5
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0n) return false; // 6.a
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr); // 6.b.i
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) [fn, sn] = shiftToOdd(fn, sn); // 6.b.ii
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n; // 6.c
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(fr, root1) && bytesEqual(sr, root2); // step 7
}

/** The compact range of the empty tree. */
export function emptyRange(): CompactRange {
  return { size: 0n, hashes: [] };
}

function checkRange(range: CompactRange): void {
  if (typeof range !== "object" || range === null || !isSize(range.size)) {
    throw ledgerErrors.make("LEDGER_RANGE", "compact range size out of range");
  }
  const hashes = checkHashList(range.hashes, "range.hashes");
  if (hashes.length !== popCount(range.size)) {
    throw ledgerErrors.make("LEDGER_HASH_INVALID", `a range of size ${range.size} holds ${popCount(range.size)} hashes, got ${hashes.length}`);
  }
}

/** Appends leaf hashes: the new range and every complete node created (to store). */
export function appendLeaves(
  range: CompactRange,
  leafHashes: readonly Uint8Array[],
): { range: CompactRange; created: { id: NodeId; hash: Uint8Array }[] } {
  checkRange(range);
  const leaves = checkHashList(leafHashes, "leafHashes");
  if (BigInt(leaves.length) > TREE_SIZE_MAX - range.size) {
    throw ledgerErrors.make("LEDGER_RANGE", `appending ${leaves.length} leaves to a tree of size ${range.size}`);
  }
  const stack = [...range.hashes];
  const created: { id: NodeId; hash: Uint8Array }[] = [];
  let size = range.size;
  for (const leaf of leaves) {
    let h: Uint8Array = leaf.slice();
    created.push({ id: { level: 0, index: size }, hash: h });
    // Each trailing 1 bit of the old size is a complete subtree of that level waiting for a right
    // sibling: merge them, like a binary counter's carry. Node (L+1) then has index size >> (L+1).
    for (let level = 0; level < LEVELS_MAX && ((size >> BigInt(level)) & 1n) === 1n; level++) {
      const left = stack.pop();
      assert.ok(left !== undefined, "compact range shorter than its size");
      h = nodeHash(left, h);
      created.push({ id: { level: level + 1, index: size >> BigInt(level + 1) }, hash: h });
    }
    stack.push(h);
    size += 1n;
  }
  return { range: { size, hashes: stack }, created };
}

/** The root of the tree a compact range ends (RFC 9162 §2.1.1 MTH, folded from the right edge). */
export function rangeRoot(range: CompactRange): Uint8Array {
  checkRange(range);
  return range.size === 0n ? EMPTY_HASH.slice() : foldRight(range.hashes);
}
