/**
 * `nexus tlog`: offline verifiers of RFC 9162 Merkle trees. No server, no store: every input is a
 * flag or a file, and the answer is the exit code (0 valid, 1 invalid, 2 bad input).
 */
import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { commonErrors } from "../../core/common-errors.ts";
import { fromHex, toHex } from "../../core/crypto/bytes.ts";
import {
  HASH_BYTES,
  PROOF_HASHES_MAX,
  TREE_SIZE_MAX,
  leafHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from "../../core/ledger/merkle.ts";
import { action, emit } from "../output.ts";

/** Largest --leaves file read, in bytes. */
export const LEAVES_FILE_BYTES_MAX = 64 * 1024 * 1024;
/** Most leaves one --leaves file may list. */
export const LEAVES_MAX = 1_000_000;
/** Longest flag value echoed back in an error message, in characters. */
const ECHO_CHARS_MAX = 40;

const COUNT_RE = /^(?:0|[1-9][0-9]{0,19})$/;
const HASH_RE = /^[0-9a-fA-F]{64}$/;

/**
 * Reads stdin to its end, at most `bytesMax` bytes (INPUT_TOO_LARGE beyond, without reading the
 * rest); `what` names the input in messages. Refuses a terminal: the input must be piped in.
 */
export async function readStdin(bytesMax: number, what: string): Promise<Uint8Array> {
  if (process.stdin.isTTY === true) invalid(what, "pipe the input in on stdin");
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    total += b.length;
    if (total > bytesMax) {
      process.stdin.destroy();
      throw commonErrors.make("INPUT_TOO_LARGE", `${what}: more than ${bytesMax} bytes on stdin`);
    }
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function echo(value: string): string {
  const shown = value.length > ECHO_CHARS_MAX ? `${value.slice(0, ECHO_CHARS_MAX)}…` : value;
  return JSON.stringify(shown);
}

function invalid(flag: string, why: string): never {
  throw commonErrors.make("INPUT_INVALID", `${flag}: ${why}`);
}

/** A tree size or index: a decimal integer in [0, 2^64-1]. */
export function parseCount(flag: string, value: string): bigint {
  if (!COUNT_RE.test(value)) invalid(flag, `${echo(value)} is not a decimal integer from 0 to ${TREE_SIZE_MAX}`);
  const n = BigInt(value);
  if (n > TREE_SIZE_MAX) invalid(flag, `${value} is above ${TREE_SIZE_MAX} (2^64-1)`);
  return n;
}

/** A SHA-256 hash: 64 hex digits. */
export function parseHash(flag: string, value: string): Uint8Array {
  if (!HASH_RE.test(value)) invalid(flag, `${echo(value)} is not ${HASH_BYTES * 2} hex digits (a SHA-256 hash)`);
  return fromHex(value) as Uint8Array;
}

/** A proof: comma-separated hashes, '' for the empty proof. */
export function parseProof(flag: string, value: string): Uint8Array[] {
  if (value === "") return [];
  const parts = value.split(",", PROOF_HASHES_MAX + 1);
  if (parts.length > PROOF_HASHES_MAX) invalid(flag, `more than ${PROOF_HASHES_MAX} hashes`);
  return parts.map((p, i) => parseHash(`${flag} item ${i + 1}`, p));
}

function readLeavesFile(path: string): Promise<Uint8Array> | Uint8Array {
  if (path === "-") return readStdin(LEAVES_FILE_BYTES_MAX, "--leaves -");
  try {
    if (statSync(path).size > LEAVES_FILE_BYTES_MAX) {
      throw commonErrors.make("INPUT_TOO_LARGE", `--leaves: ${echo(path)} is larger than ${LEAVES_FILE_BYTES_MAX} bytes`);
    }
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("E")) {
      invalid("--leaves", `cannot read ${echo(path)} (${e.code})`);
    }
    throw e;
  }
}

/** Leaf hashes from the lines of a --leaves file (leaf data hex, or leaf hashes with `hashes`). */
export function leavesFromText(bytes: Uint8Array, hashes: boolean): Uint8Array[] {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return invalid("--leaves", "the file is not text");
  }
  if (text === "") return [];
  const lines = (text.endsWith("\n") ? text.slice(0, -1) : text).split("\n", LEAVES_MAX + 1);
  if (lines.length > LEAVES_MAX) throw commonErrors.make("INPUT_TOO_LARGE", `--leaves: more than ${LEAVES_MAX} lines`);
  return lines.map((raw, i) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (hashes) return parseHash(`--leaves line ${i + 1}`, line);
    const data = fromHex(line);
    if (data === undefined) invalid(`--leaves line ${i + 1}`, `${echo(line)} is not hex (an even number of hex digits)`);
    return leafHash(data);
  });
}

function printVerdict(valid: boolean, json: boolean | undefined): void {
  emit({ valid }, json, (v) => (v.valid ? "valid" : "invalid"));
  if (!valid) process.exitCode = 1;
}

interface RootOpts {
  leaves: string;
  hashes?: boolean;
  json?: boolean;
}
interface InclusionOpts {
  leafHash: string;
  index: string;
  size: string;
  root: string;
  proof: string;
  json?: boolean;
}
interface ConsistencyOpts {
  size1: string;
  size2: string;
  root1: string;
  root2: string;
  proof: string;
  json?: boolean;
}

/** Adds `tlog root`, `tlog verify-inclusion` and `tlog verify-consistency` to the program. */
export function register(program: Command): void {
  const tlog = program
    .command("tlog")
    .description("offline RFC 9162 Merkle tree tools: roots, inclusion and consistency proofs (exit 0 valid, 1 invalid, 2 bad input)");

  tlog
    .command("root")
    .description("print the RFC 9162 root of a list of leaves")
    .requiredOption("--leaves <file>", "one leaf per line: the hex of the leaf's DATA (entry bytes), hashed as SHA-256(0x00||data); '-' reads stdin")
    .option("--hashes", "the lines are leaf HASHES (64 hex digits each) instead of leaf data")
    .option("--json", "print JSON {size, root}")
    .addHelpText(
      "after",
      "\nAn empty line is a leaf with empty data; the newline after the last line adds no leaf; an empty file is the empty tree.",
    )
    .action(
      action(async (opts: RootOpts) => {
        const leaves = leavesFromText(await readLeavesFile(opts.leaves), opts.hashes === true);
        emit({ size: BigInt(leaves.length), root: toHex(rootOf(leaves)) }, opts.json, (v) => v.root);
      }),
    );

  tlog
    .command("verify-inclusion")
    .description("check an inclusion proof (RFC 9162 §2.1.3.2)")
    .requiredOption("--leaf-hash <hex>", "the leaf hash, SHA-256(0x00||entry), 64 hex digits")
    .requiredOption("--index <n>", "the leaf's index, from 0")
    .requiredOption("--size <n>", "the tree size")
    .requiredOption("--root <hex>", "the root of the tree of that size")
    .requiredOption("--proof <hashes>", "the audit path, comma-separated hex hashes ('' for none)")
    .option("--json", "print JSON {valid}")
    .action(
      action((opts: InclusionOpts) => {
        const leaf = parseHash("--leaf-hash", opts.leafHash);
        const index = parseCount("--index", opts.index);
        const size = parseCount("--size", opts.size);
        if (index >= size) invalid("--index", `${index} is not below --size ${size}`);
        const root = parseHash("--root", opts.root);
        const proof = parseProof("--proof", opts.proof);
        printVerdict(verifyInclusion(leaf, index, size, proof, root), opts.json);
      }),
    );

  tlog
    .command("verify-consistency")
    .description("check a consistency proof between two tree sizes (RFC 9162 §2.1.4.2)")
    .requiredOption("--size1 <n>", "the older tree size")
    .requiredOption("--size2 <n>", "the newer tree size")
    .requiredOption("--root1 <hex>", "the root at size1")
    .requiredOption("--root2 <hex>", "the root at size2")
    .requiredOption("--proof <hashes>", "the consistency proof, comma-separated hex hashes ('' for none)")
    .option("--json", "print JSON {valid}")
    .addHelpText("after", "\nFrom size1 = 0 the proof is empty and root1 must be the empty tree's root (e3b0c442…b855).")
    .action(
      action((opts: ConsistencyOpts) => {
        const size1 = parseCount("--size1", opts.size1);
        const size2 = parseCount("--size2", opts.size2);
        if (size1 > size2) invalid("--size1", `${size1} is above --size2 ${size2}`);
        const root1 = parseHash("--root1", opts.root1);
        const root2 = parseHash("--root2", opts.root2);
        const proof = parseProof("--proof", opts.proof);
        printVerdict(verifyConsistency(size1, size2, root1, root2, proof), opts.json);
      }),
    );
}
