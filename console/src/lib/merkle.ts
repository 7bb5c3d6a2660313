/**
 * RFC 9162 §2.1 Merkle tree verification in the page (no trust in the server's verdict): leaf and
 * node hashing, inclusion proofs (§2.1.3.2) and consistency proofs (§2.1.4.2). A port of
 * src/core/ledger/merkle.ts's verifiers to WebCrypto; sizes and indices are bigint. Verifiers
 * never throw: anything malformed is `false`.
 */
import { bytesEqual, sha256 } from "./bytes.ts";

/** Bytes of every tree hash (SHA-256). */
export const HASH_BYTES = 32;
/** Longest proof looked at (2 × 64 levels). */
export const PROOF_HASHES_MAX = 128;
/** The largest tree size handled, 2^64-1 (C2SP tlog). */
export const TREE_SIZE_MAX = (1n << 64n) - 1n;

/** SHA-256(0x00 || entry) (RFC 9162 §2.1.1). */
export async function leafHash(entry: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([0]), entry);
}

/** SHA-256(0x01 || left || right) (RFC 9162 §2.1.1). */
export async function nodeHash(l: Uint8Array, r: Uint8Array): Promise<Uint8Array> {
  return sha256(new Uint8Array([1]), l, r);
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === HASH_BYTES;
const isSize = (n: bigint): boolean => n >= 0n && n <= TREE_SIZE_MAX;
const hashesOk = (p: readonly Uint8Array[]): boolean => p.length <= PROOF_HASHES_MAX && p.every(isHash);

/** Shift fn and sn right until fn is odd or zero (§2.1.3.2 step 4.b.ii). */
function shiftToOdd(fn: bigint, sn: bigint): [bigint, bigint] {
  while ((fn & 1n) === 0n && fn !== 0n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  return [fn, sn];
}

/** Whether `proof` shows leaf `leaf` at `index` in the tree of `size` with `root` (RFC 9162 §2.1.3.2). */
export async function verifyInclusion(leaf: Uint8Array, index: bigint, size: bigint, proof: readonly Uint8Array[], root: Uint8Array): Promise<boolean> {
  if (!isHash(leaf) || !isHash(root) || !hashesOk(proof)) return false;
  if (!isSize(size) || index < 0n || index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) [fn, sn] = shiftToOdd(fn, sn);
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(r, root);
}

const EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Whether `proof` shows the tree (size2, root2) extends (size1, root1) (RFC 9162 §2.1.4.2). */
export async function verifyConsistency(size1: bigint, size2: bigint, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): Promise<boolean> {
  if (!isHash(root1) || !isHash(root2) || !hashesOk(proof)) return false;
  if (!isSize(size1) || !isSize(size2) || size1 > size2) return false;
  if (size1 === 0n) {
    const hex = [...root1].map((b) => b.toString(16).padStart(2, "0")).join("");
    return proof.length === 0 && hex === EMPTY_ROOT_HEX;
  }
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  if (proof.length === 0) return false; // step 1
  const isPow2 = (size1 & (size1 - 1n)) === 0n;
  const path = isPow2 ? [root1, ...proof] : [...proof]; // step 2
  let fn = size1 - 1n; // step 3
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n; // step 4
    sn >>= 1n;
  }
  let fr = path[0] as Uint8Array; // step 5
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0n) return false; // 6.a
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr); // 6.b.i
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) [fn, sn] = shiftToOdd(fn, sn); // 6.b.ii
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; // 6.c
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(fr, root1) && bytesEqual(sr, root2); // step 7
}
