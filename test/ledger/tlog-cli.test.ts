/**
 * The offline verifier CLI (`nexus tlog …`, `nexus note verify`) run as the real ./nexus child
 * process: published vectors verify (exit 0), corrupted ones do not (exit 1), and hostile input
 * for every flag is bad input (exit 2) with a message naming the problem and never a stack trace.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leafHash } from "../../src/core/ledger/merkle.ts";
import { fromHex, toHex } from "../../src/core/crypto/bytes.ts";
import { REPO_ROOT, readJsonVector } from "../support/paths.ts";

const NEXUS = join(REPO_ROOT, "nexus");
/** Child processes run at once (each is a Node start, CPU-bound). */
const PARALLEL = 4;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function nexus(args: readonly string[], stdin?: string | Uint8Array): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(NEXUS, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    // The CLI may stop reading early (input too large): a broken pipe here is expected.
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin ?? "");
  });
}

/** Runs `jobs` with at most PARALLEL children at a time. */
async function pool<T>(jobs: readonly (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i];
      if (job !== undefined) out[i] = await job();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return out;
}

interface Case {
  desc: string;
  args: string[];
  stdin?: string | Uint8Array;
  code: 0 | 1 | 2;
  /** Text the message (stderr for exit 2) must contain. */
  mention?: string;
}

function checkRun(c: Case, r: Run): void {
  const where = `${c.desc}: nexus ${c.args.map((a) => (a.length > 60 ? a.slice(0, 60) + "…" : a)).join(" ")}\n${r.stderr}`;
  assert.equal(r.code, c.code, where);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `stack trace: ${where}`);
  assert.doesNotMatch(r.stderr, /INTERNAL/, where);
  if (c.code === 2) assert.ok(r.stderr.trim().length > 0, `no message: ${where}`);
  if (c.mention !== undefined) assert.ok(r.stderr.includes(c.mention) || r.stdout.includes(c.mention), `no mention of ${c.mention}: ${where}`);
}

async function runAll(cases: readonly Case[]): Promise<void> {
  const runs = await pool(cases.map((c) => () => nexus(c.args, c.stdin)));
  cases.forEach((c, i) => checkRun(c, runs[i] as Run));
}

// ---------------------------------------------------------------------------------------------
// Published vectors.

interface InclusionProbe {
  desc: string;
  leafIndex: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[];
  wantErr: boolean;
}
interface ConsistencyProbe {
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
  leaves: string[];
  roots: Record<string, string>;
  inclusionProofs: { leafIndex: number; treeSize: number; proof: string[] }[];
  consistencyProofs: { size1: number; size2: number; proof: string[] }[];
  inclusionProbes: InclusionProbe[];
  consistencyProbes: ConsistencyProbe[];
}
const V = readJsonVector<MerkleVectors>("merkle-rfc6962.json");
const leafHashes = V.leaves.map((l) => toHex(leafHash(fromHex(l) ?? new Uint8Array(0))));
const root = (n: number): string => V.roots[String(n)] ?? "";
const isHashHex = (h: string): boolean => h.length === 64;

function inclusionArgs(leaf: string, index: number, size: number, root: string, proof: readonly string[]): string[] {
  return ["tlog", "verify-inclusion", "--leaf-hash", leaf, "--index", String(index), "--size", String(size), "--root", root, "--proof", proof.join(",")];
}
function consistencyArgs(size1: number, size2: number, root1: string, root2: string, proof: readonly string[]): string[] {
  return ["tlog", "verify-consistency", "--size1", String(size1), "--size2", String(size2), "--root1", root1, "--root2", root2, "--proof", proof.join(",")];
}

/** One probe per description: every kind of corruption, without a child process per file. */
function firstOfEachDesc<T extends { desc: string }>(probes: readonly T[]): T[] {
  const byDesc = new Map<string, T>();
  for (const p of probes) if (!byDesc.has(p.desc)) byDesc.set(p.desc, p);
  return [...byDesc.values()];
}

test("cli: published inclusion and consistency proofs verify (exit 0), --json prints {valid}", async () => {
  const cases: Case[] = [
    ...V.inclusionProofs.map((v) => ({
      desc: `PATH(${v.leafIndex}, ${v.treeSize})`,
      args: inclusionArgs(leafHashes[v.leafIndex] ?? "", v.leafIndex, v.treeSize, root(v.treeSize), v.proof),
      code: 0 as const,
    })),
    ...V.consistencyProofs.map((v) => ({
      desc: `PROOF(${v.size1}, ${v.size2})`,
      args: consistencyArgs(v.size1, v.size2, root(v.size1), root(v.size2), v.proof),
      code: 0 as const,
    })),
  ];
  await runAll(cases);
  const v = V.inclusionProofs[1];
  assert.ok(v !== undefined);
  const ok = await nexus([...inclusionArgs(leafHashes[v.leafIndex] ?? "", v.leafIndex, v.treeSize, root(v.treeSize), v.proof), "--json"]);
  assert.deepEqual(JSON.parse(ok.stdout), { valid: true });
  const bad = await nexus([...inclusionArgs(leafHashes[v.leafIndex] ?? "", v.leafIndex + 1, v.treeSize, root(v.treeSize), v.proof), "--json"]);
  assert.equal(bad.code, 1);
  assert.deepEqual(JSON.parse(bad.stdout), { valid: false });
});

test("cli: published probes: every kind of corruption that reaches the verifier exits 1, happy paths 0", async () => {
  // One probe per description, keeping those whose inputs are well-formed hashes in range: the
  // others are bad input (exit 2), covered flag by flag below. A proof of one empty "hash" ([""])
  // cannot be written as --proof (it reads as the empty proof), so such probes are not picked.
  const cases: Case[] = [];
  const incl = V.inclusionProbes.filter((p) => [p.leafHash, p.root, ...p.proof].every(isHashHex) && p.leafIndex < p.treeSize);
  for (const p of firstOfEachDesc(incl)) {
    cases.push({ desc: p.desc, args: inclusionArgs(p.leafHash, p.leafIndex, p.treeSize, p.root, p.proof), code: p.wantErr ? 1 : 0 });
  }
  const cons = V.consistencyProbes.filter((p) => [p.root1, p.root2, ...p.proof].every(isHashHex) && p.size1 <= p.size2);
  for (const p of firstOfEachDesc(cons)) {
    cases.push({ desc: p.desc, args: consistencyArgs(p.size1, p.size2, p.root1, p.root2, p.proof), code: p.wantErr ? 1 : 0 });
  }
  assert.ok(cases.filter((c) => c.code === 1).length >= 25, "most kinds of corruption reach the verifier");
  await runAll(cases);
});

test("cli: tlog root of the published leaves, as data and as hashes, from a file and stdin", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nexus-tlog-"));
  try {
    const data = join(dir, "leaves.txt");
    const hashes = join(dir, "hashes.txt");
    writeFileSync(data, V.leaves.join("\n") + "\n");
    writeFileSync(hashes, leafHashes.join("\r\n"));
    const runs = await pool([
      () => nexus(["tlog", "root", "--leaves", data]),
      () => nexus(["tlog", "root", "--leaves", hashes, "--hashes", "--json"]),
      () => nexus(["tlog", "root", "--leaves", "-"], V.leaves.slice(0, 3).join("\n")),
      () => nexus(["tlog", "root", "--leaves", "-"], ""),
      () => nexus(["tlog", "root", "--leaves", "-"], "\n"),
    ]);
    const [r8, r8json, r3, r0, r1] = runs;
    assert.equal(r8?.stdout, root(8) + "\n");
    assert.deepEqual(JSON.parse(r8json?.stdout ?? ""), { size: "8", root: root(8) });
    assert.equal(r3?.stdout, root(3) + "\n", "the last line needs no newline");
    assert.equal(r0?.stdout, root(0) + "\n", "an empty file is the empty tree");
    assert.equal(r1?.stdout, root(1) + "\n", "one empty line is one empty leaf (leaves[0] is empty)");
    for (const r of runs) assert.equal(r.code, 0, r.stderr);

    writeFileSync(join(dir, "odd.txt"), "00\nabc\n");
    writeFileSync(join(dir, "nothex.txt"), "00\nzz\n");
    writeFileSync(join(dir, "short.txt"), leafHashes[0]?.slice(2) ?? "");
    writeFileSync(join(dir, "binary.bin"), new Uint8Array([0xff, 0xfe, 0x00, 0x81, 0x0a]));
    await runAll([
      { desc: "odd-length hex line", args: ["tlog", "root", "--leaves", join(dir, "odd.txt")], code: 2, mention: "--leaves line 2" },
      { desc: "non-hex line", args: ["tlog", "root", "--leaves", join(dir, "nothex.txt")], code: 2, mention: "--leaves line 2" },
      { desc: "--hashes with a short hash", args: ["tlog", "root", "--hashes", "--leaves", join(dir, "short.txt")], code: 2, mention: "--leaves line 1" },
      { desc: "binary file", args: ["tlog", "root", "--leaves", join(dir, "binary.bin")], code: 2, mention: "--leaves" },
      { desc: "missing file", args: ["tlog", "root", "--leaves", join(dir, "absent")], code: 2, mention: "ENOENT" },
      { desc: "a directory", args: ["tlog", "root", "--leaves", dir], code: 2, mention: "--leaves" },
      { desc: "no --leaves", args: ["tlog", "root"], code: 2, mention: "--leaves" },
      { desc: "garbage on stdin", args: ["tlog", "root", "--leaves", "-"], stdin: "hello world\n", code: 2, mention: "--leaves line 1" },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cli: hostile input for every verify flag is exit 2, naming the flag", async () => {
  const good = V.inclusionProofs[1];
  assert.ok(good !== undefined);
  const base = { "--leaf-hash": leafHashes[0] ?? "", "--index": "0", "--size": "8", "--root": root(8), "--proof": good.proof.join(",") };
  const inc = (over: Partial<Record<keyof typeof base, string | undefined>>): string[] => {
    const args = ["tlog", "verify-inclusion"];
    for (const [flag, value] of Object.entries({ ...base, ...over })) if (value !== undefined) args.push(flag, value);
    return args;
  };
  const cbase = { "--size1": "1", "--size2": "8", "--root1": root(1), "--root2": root(8), "--proof": good.proof.join(",") };
  const con = (over: Partial<Record<keyof typeof cbase, string | undefined>>): string[] => {
    const args = ["tlog", "verify-consistency"];
    for (const [flag, value] of Object.entries({ ...cbase, ...over })) if (value !== undefined) args.push(flag, value);
    return args;
  };
  const hex63 = "a".repeat(63);
  const badHashes = ["", "xyz", hex63, "a".repeat(65), "a".repeat(66), "0x" + "a".repeat(62), "é".repeat(64), " " + "a".repeat(64), "g".repeat(64)];
  const badCounts = ["-1", "1.5", "1e3", "0x10", "01", " 1", "", "18446744073709551616", "9".repeat(100), "NaN", "٣"];
  const cases: Case[] = [
    { desc: "the good inclusion case", args: inc({}), code: 0 },
    { desc: "the good consistency case", args: con({}), code: 0 },
  ];
  // Each bad value once, the flags taking turns (every child process is a Node start).
  const hashFlags = [
    (h: string): Case => ({ desc: `--leaf-hash ${h}`, args: inc({ "--leaf-hash": h }), code: 2, mention: "--leaf-hash" }),
    (h: string): Case => ({ desc: `--root ${h}`, args: inc({ "--root": h }), code: 2, mention: "--root" }),
    (h: string): Case => ({ desc: `--root1 ${h}`, args: con({ "--root1": h }), code: 2, mention: "--root1" }),
    (h: string): Case => ({ desc: `--root2 ${h}`, args: con({ "--root2": h }), code: 2, mention: "--root2" }),
  ];
  badHashes.forEach((h, i) => cases.push((hashFlags[i % hashFlags.length] as (h: string) => Case)(h)));
  const countFlags = [
    (n: string): Case => ({ desc: `--index ${n}`, args: inc({ "--index": n }), code: 2, mention: "--index" }),
    (n: string): Case => ({ desc: `--size ${n}`, args: inc({ "--size": n }), code: 2, mention: "--size" }),
    (n: string): Case => ({ desc: `--size1 ${n}`, args: con({ "--size1": n }), code: 2, mention: "--size1" }),
    (n: string): Case => ({ desc: `--size2 ${n}`, args: con({ "--size2": n }), code: 2, mention: "--size2" }),
  ];
  badCounts.forEach((n, i) => cases.push((countFlags[i % countFlags.length] as (n: string) => Case)(n)));
  cases.push(
    { desc: "index = size", args: inc({ "--index": "8" }), code: 2, mention: "--index" },
    { desc: "index > size", args: inc({ "--index": "18446744073709551615", "--size": "3" }), code: 2, mention: "--index" },
    { desc: "size1 > size2", args: con({ "--size1": "9" }), code: 2, mention: "--size1" },
    { desc: "largest size is fine (invalid proof)", args: inc({ "--index": "18446744073709551614", "--size": "18446744073709551615" }), code: 1 },
    { desc: "--proof item not hex", args: inc({ "--proof": `${good.proof[0]},zz` }), code: 2, mention: "--proof item 2" },
    { desc: "--proof trailing comma", args: inc({ "--proof": `${good.proof.join(",")},` }), code: 2, mention: "--proof item 4" },
    { desc: "--proof with spaces", args: inc({ "--proof": good.proof.join(", ") }), code: 2, mention: "--proof item 2" },
    { desc: "--proof of 129 hashes", args: inc({ "--proof": Array.from({ length: 129 }, () => root(8)).join(",") }), code: 2, mention: "--proof" },
    { desc: "--proof empty (invalid, not bad input)", args: inc({ "--proof": "" }), code: 1 },
    { desc: "--proof with an extra hash (invalid)", args: inc({ "--proof": `${good.proof.join(",")},${root(8)}` }), code: 1 },
    { desc: "unknown flag", args: [...inc({}), "--frobnicate"], code: 2, mention: "--frobnicate" },
    { desc: "unknown subcommand", args: ["tlog", "verify-everything"], code: 2 },
  );
  for (const flag of Object.keys(base) as (keyof typeof base)[]) {
    cases.push({ desc: `missing ${flag}`, args: inc({ [flag]: undefined }), code: 2, mention: flag });
  }
  for (const flag of Object.keys(cbase) as (keyof typeof cbase)[]) {
    cases.push({ desc: `missing ${flag}`, args: con({ [flag]: undefined }), code: 2, mention: flag });
  }
  await runAll(cases);
});

// ---------------------------------------------------------------------------------------------
// note verify

interface OpenCase {
  desc: string;
  input: { note?: string; keys: string[] };
}
const XN = JSON.parse(readFileSync(join(REPO_ROOT, "test", "vectors", "note", "x-mod-sumdb-note.json"), "utf8")) as {
  keys: { PeterNeumann: { verifierKey: string }; EnochRoot: { verifierKey: string } };
  sign: { want: string }[];
};
const TD = JSON.parse(readFileSync(join(REPO_ROOT, "test", "vectors", "note", "transparency-dev-formats.json"), "utf8")) as {
  keys: Record<string, { verifierKey: string }>;
  open: OpenCase[];
};

test("cli: note verify on published notes: verified 0, unverified or tampered 1, malformed 2", async () => {
  const peter = XN.keys.PeterNeumann.verifierKey;
  const enoch = XN.keys.EnochRoot.verifierKey;
  const note = XN.sign[0]?.want ?? "";
  const sumKey = TD.keys["sum.golang.org"]?.verifierKey ?? "";
  const sumNote = TD.open[0]?.input.note ?? "";
  const [ok, json, cp] = await pool([
    () => nexus(["note", "verify", "--key", enoch, "--key", peter], note),
    () => nexus(["note", "verify", "--key", peter, "--json"], note),
    () => nexus(["note", "verify", "--key", sumKey, "--checkpoint", "--json"], sumNote),
  ]);
  assert.equal(ok?.code, 0, ok?.stderr);
  assert.match(ok?.stdout ?? "", /^verified by PeterNeumann\n/);
  assert.deepEqual(JSON.parse(json?.stdout ?? ""), { verified: true, verifiedBy: ["PeterNeumann"], text: note.split("\n\n")[0] + "\n" });
  assert.equal(cp?.code, 0, cp?.stderr);
  const parsed = JSON.parse(cp?.stdout ?? "") as { checkpoint: { origin: string; size: string; root: string } };
  assert.equal(parsed.checkpoint.origin, "go.sum database tree");
  assert.equal(parsed.checkpoint.size, "6476701");
  assert.equal(parsed.checkpoint.root.length, 64);

  const unverified = await nexus(["note", "verify", "--key", enoch, "--json"], note);
  assert.equal(unverified.code, 1);
  assert.equal((JSON.parse(unverified.stdout) as { verified: boolean; error: { code: string } }).error.code, "LEDGER_NOTE_UNVERIFIED");

  const big = new Uint8Array(10 * 1024 * 1024).fill(0x61);
  const garbage = new Uint8Array(4096).map((_, i) => (i * 7919 + 13) % 256);
  await runAll([
    { desc: "unknown key only", args: ["note", "verify", "--key", enoch], stdin: note, code: 1, mention: "LEDGER_NOTE_UNVERIFIED" },
    { desc: "tampered text", args: ["note", "verify", "--key", peter], stdin: note.replace("problem,", "problem;"), code: 1, mention: "LEDGER_NOTE_SIGNATURE_INVALID" },
    { desc: "tampered checkpoint size", args: ["note", "verify", "--key", sumKey], stdin: sumNote.replace("6476701", "6476700"), code: 1 },
    { desc: "plain '-' signature line", args: ["note", "verify", "--key", peter], stdin: note.replace("\u2014 ", "- "), code: 2, mention: "LEDGER_NOTE_MALFORMED" },
    { desc: "missing blank line", args: ["note", "verify", "--key", peter], stdin: note.replace("\n\n", "\n"), code: 2, mention: "LEDGER_NOTE_MALFORMED" },
    { desc: "garbage bytes on stdin", args: ["note", "verify", "--key", peter], stdin: garbage, code: 2, mention: "LEDGER_NOTE_MALFORMED" },
    { desc: "text on stdin", args: ["note", "verify", "--key", peter], stdin: "hello\n", code: 2, mention: "LEDGER_NOTE_MALFORMED" },
    { desc: "empty stdin", args: ["note", "verify", "--key", peter], stdin: "", code: 2 },
    { desc: "10 MB on stdin", args: ["note", "verify", "--key", peter], stdin: big, code: 2, mention: "INPUT_TOO_LARGE" },
    { desc: "no --key", args: ["note", "verify"], stdin: note, code: 2, mention: "--key" },
    { desc: "malformed --key", args: ["note", "verify", "--key", peter, "--key", "PeterNeumann+c74f20a3+AAAA"], stdin: note, code: 2, mention: "--key #2" },
    { desc: "--key with wrong hash", args: ["note", "verify", "--key", peter.replace("c74f20a3", "c74f20a4")], stdin: note, code: 2, mention: "--key #1" },
    { desc: "not a checkpoint with --checkpoint", args: ["note", "verify", "--key", peter, "--checkpoint"], stdin: note, code: 2, mention: "LEDGER_NOTE_MALFORMED" },
  ]);
});

test("cli: help says what a --leaves line is", async () => {
  const r = await nexus(["tlog", "root", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /DATA/);
  assert.match(r.stdout, /--hashes/);
});
