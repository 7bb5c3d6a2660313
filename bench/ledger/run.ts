/**
 * Ledger benchmark: appends/s of signed entries (signature check + append + tree update + durable
 * commit) at 1, 8 and 64 concurrent writers, with the checks on one core and on both cores
 * (worker threads); proof times, full-verification rate and memory at 1 million entries; and,
 * measured in the same run, the machine's own limits (Ed25519 verifications/s on one core, raw
 * inserts/s into the same store). SQLite and PostgreSQL. Prints markdown tables.
 *
 *   node --disable-warning=ExperimentalWarning bench/ledger/run.ts [--size 1000000] [--seconds 4] [--stores sqlite,postgres]
 *
 * Each measurement runs in its own child process pinned with taskset (one core: CPU 0; two cores:
 * CPUs 0-1) on a fresh database. PostgreSQL's own backends are not pinned.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { startTempPostgres } from "../../src/cli/dev/system.ts";
import { ed25519Sign, ed25519Verify, generateEd25519, publicKeyFromRaw } from "../../src/core/crypto/ed25519.ts";
import { concatBytes, utf8 } from "../../src/core/crypto/bytes.ts";
import { Ledger } from "../../src/core/ledger/ledger.ts";
import { leafHash } from "../../src/core/ledger/merkle.ts";
import { noteSignerFromEd25519 } from "../../src/core/ledger/note.ts";
import { openStore } from "../../src/store/index.ts";
import type { Store } from "../../src/store/types.ts";

const SELF = fileURLToPath(import.meta.url);
const ORIGIN = "bench.nexus/ledger";
/** Distinct signed commands prepared (cycled). */
const SIGNED_ITEMS = 4096;
/** Warm-up before each timed window. */
const WARMUP_MS = 1000;
/** Messages per chunk sent to a verify worker. */
const VERIFY_CHUNK_MAX = 128;
/** Entries per work while building the big tree, and works in flight. */
const BUILD_WORK_ENTRIES = 10_000;
const BUILD_WORKS_IN_FLIGHT = 8;
/** The big build stops here even if the size is not reached. */
const BUILD_TIME_MAX_MS = 240_000;
/** Proofs timed at the big size. */
const PROOFS_TIMED = 2000;

type Args = Record<string, string>;

function parseArgs(argv: readonly string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k?.startsWith("--")) out[k.slice(2)] = argv[i + 1] ?? "";
    if (k?.startsWith("--")) i++;
  }
  return out;
}

// ---------------------------------------------------------------- child side

async function openBenchStore(a: Args): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  if (a.store === "postgres") {
    const schema = `bench_${randomBytes(6).toString("hex")}`;
    const store = await openStore({ url: a.url, schema });
    return {
      store,
      cleanup: async () => {
        await store.run(`DROP SCHEMA "${schema}" CASCADE`);
        await store.close();
      },
    };
  }
  const dir = mkdtempSync(join(tmpdir(), "nexus-bench-"));
  const store = await openStore({ dataDir: dir });
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openBenchLedger(store: Store): Promise<Ledger> {
  const k = generateEd25519();
  return Ledger.open(store, { origin: ORIGIN, signer: noteSignerFromEd25519(ORIGIN, k.privateKey, k.publicKey) });
}

/** Signed commands as a client would send them: message, signature, and the entry to log. */
function signedItems(): { publicKey: Uint8Array; msgs: Uint8Array[]; sigs: Uint8Array[]; entries: Uint8Array[] } {
  const client = generateEd25519();
  const msgs: Uint8Array[] = [];
  const sigs: Uint8Array[] = [];
  const entries: Uint8Array[] = [];
  for (let i = 0; i < SIGNED_ITEMS; i++) {
    const msg = utf8(JSON.stringify({ type: "dns.record.set", v: 1, actor: "id:bench", nonce: i, body: { name: `www${i}.example.test`, rdata: "192.0.2.1", ttl: 300 } }));
    const sig = ed25519Sign(client.privateKey, msg);
    msgs.push(msg);
    sigs.push(sig);
    entries.push(concatBytes(msg, sig));
  }
  return { publicKey: client.publicKey, msgs, sigs, entries };
}

/** Runs `step` for the warm-up, then counts completions in `seconds`. */
async function timed(seconds: number, writers: number, step: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let done = 0;
  const startAt = Date.now() + WARMUP_MS;
  const stopAt = startAt + seconds * 1000;
  const loop = async (): Promise<void> => {
    for (let now = Date.now(); now < stopAt; now = Date.now()) {
      await step(next++);
      if (now >= startAt) done++;
    }
  };
  await Promise.all(Array.from({ length: writers }, loop));
  return done / seconds;
}

/** Verifies on a pool of worker threads, in chunks, so the main thread only appends. */
class VerifyPool {
  private readonly workers: Worker[];
  private readonly waiting = new Map<number, (ok: Uint8Array) => void>();
  private queue: { msg: Uint8Array; sig: Uint8Array; resolve: (ok: boolean) => void }[] = [];
  private scheduled = false;
  private id = 0;
  private turn = 0;

  constructor(publicKey: Uint8Array, threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(new URL("./verify-worker.ts", import.meta.url), { workerData: publicKey });
      w.on("message", (m: { id: number; ok: Uint8Array }) => {
        this.waiting.get(m.id)?.(m.ok);
        this.waiting.delete(m.id);
      });
      return w;
    });
  }

  verify(msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ msg, sig, resolve });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let at = 0; at < all.length; at += VERIFY_CHUNK_MAX) {
      const part = all.slice(at, at + VERIFY_CHUNK_MAX);
      const id = ++this.id;
      this.waiting.set(id, (ok) => part.forEach((p, i) => p.resolve(ok[i] === 1)));
      const w = this.workers[this.turn++ % this.workers.length];
      const ends = new Uint32Array(part.length);
      let bytes = 0;
      part.forEach((p, i) => (ends[i] = bytes += p.msg.length));
      const msgs = new Uint8Array(bytes);
      const sigs = new Uint8Array(part.length * 64);
      part.forEach((p, i) => {
        msgs.set(p.msg, (ends[i] ?? 0) - p.msg.length);
        sigs.set(p.sig, i * 64);
      });
      w?.postMessage({ id, msgs, ends, sigs }, [msgs.buffer, ends.buffer, sigs.buffer]);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

async function phaseLimits(a: Args): Promise<Record<string, number>> {
  const seconds = Number(a.seconds);
  const items = signedItems();
  const key = publicKeyFromRaw(items.publicKey);
  const verifyPerSec = await timed(seconds, 1, async (i) => {
    if (!ed25519Verify(key, items.msgs[i % SIGNED_ITEMS] as Uint8Array, items.sigs[i % SIGNED_ITEMS] as Uint8Array)) throw new Error("bad signature");
  });
  const { store, cleanup } = await openBenchStore(a);
  try {
    const blob = store.dialect === "sqlite" ? "BLOB" : "BYTEA";
    await store.run(`CREATE TABLE bench_raw (idx BIGINT PRIMARY KEY, bytes ${blob} NOT NULL, leaf_hash ${blob} NOT NULL)`);
    const entry = items.entries[0] as Uint8Array;
    const leaf = leafHash(entry);
    let k = 0;
    const txPerSec = await timed(seconds, 1, async () => {
      await store.transaction((tx) => tx.run("INSERT INTO bench_raw (idx, bytes, leaf_hash) VALUES (?, ?, ?)", [k++, entry, leaf]));
    });
    const rows64 = "INSERT INTO bench_raw (idx, bytes, leaf_hash) VALUES " + Array(64).fill("(?, ?, ?)").join(", ");
    const batchPerSec = await timed(seconds, 1, async () => {
      await store.transaction(async (tx) => {
        const params = [];
        for (let r = 0; r < 64; r++) params.push(k++, entry, leaf);
        await tx.run(rows64, params);
      });
    });
    return { verifyPerSec, txPerSec, rowsPerSecIn64: batchPerSec * 64 };
  } finally {
    await cleanup();
  }
}

/** Runs a timed measurement and reports the CPU the whole process used meanwhile. */
async function withCpu(run: () => Promise<number>): Promise<{ perSec: number; cores: number; cpuSec: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const perSec = await run();
  const cpu = process.cpuUsage(cpu0);
  const cpuSec = (cpu.user + cpu.system) / 1e6;
  return { perSec, cores: cpuSec / ((performance.now() - t0) / 1000), cpuSec };
}

async function phaseAppends(a: Args): Promise<Record<string, number>> {
  const items = signedItems();
  const key = publicKeyFromRaw(items.publicKey);
  // The machine limit, measured in this very process just before (the machine is shared: only
  // figures taken side by side compare).
  let verified = 0;
  const v = await withCpu(() =>
    timed(Number(a.seconds), 1, async (i) => {
      verified++;
      if (!ed25519Verify(key, items.msgs[i % SIGNED_ITEMS] as Uint8Array, items.sigs[i % SIGNED_ITEMS] as Uint8Array)) throw new Error("bad signature");
    }),
  );
  const pool = a.mode === "2core" ? new VerifyPool(items.publicKey, 2) : undefined;
  const { store, cleanup } = await openBenchStore(a);
  try {
    const ledger = await openBenchLedger(store);
    const r = await withCpu(() =>
      timed(Number(a.seconds), Number(a.writers), async (i) => {
        const n = i % SIGNED_ITEMS;
        const msg = items.msgs[n] as Uint8Array;
        const sig = items.sigs[n] as Uint8Array;
        const ok = pool ? await pool.verify(msg, sig) : ed25519Verify(key, msg, sig);
        if (!ok) throw new Error("bad signature");
        await ledger.append(items.entries[n] as Uint8Array);
      }),
    );
    const batches = (await store.get<{ c: bigint }>("SELECT count(*) AS c FROM ledger_checkpoints"))?.c ?? 0n;
    const perBatch = Number(ledger.size) / Number(batches === 0n ? 1n : batches);
    const appendsPerCpuSec = Number(ledger.size) / r.cpuSec;
    await ledger.close();
    return {
      appendsPerSec: r.perSec,
      coresUsed: r.cores,
      entriesPerCommit: perBatch,
      verifyPerSec: v.perSec,
      verifyCores: v.cores,
      cpuRatio: appendsPerCpuSec / (verified / v.cpuSec),
    };
  } finally {
    await pool?.close();
    await cleanup();
  }
}

function heapAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

async function build(ledger: Ledger, size: number, heaps: number[]): Promise<number> {
  const t0 = performance.now();
  const marks = [0.25, 0.5, 0.75, 1].map((f) => Math.floor(size * f));
  let queued = 0;
  const inFlight = new Set<Promise<unknown>>();
  while (queued < size && performance.now() - t0 < BUILD_TIME_MAX_MS) {
    const from = queued;
    const to = Math.min(size, from + BUILD_WORK_ENTRIES);
    queued = to;
    const p = ledger.submit(async (ctx) => {
      for (let i = from; i < to; i++) await ctx.append(utf8(`{"n":${i}}`));
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= BUILD_WORKS_IN_FLIGHT) await Promise.race(inFlight);
    while (marks.length > 0 && Number(ledger.size) >= (marks[0] ?? Infinity)) {
      marks.shift();
      heaps.push(heapAfterGc());
    }
  }
  await Promise.all(inFlight);
  for (const _ of marks) heaps.push(heapAfterGc());
  return (performance.now() - t0) / 1000;
}

function stats(ms: number[]): { meanMs: number; p99Ms: number } {
  const s = [...ms].sort((x, y) => x - y);
  return { meanMs: s.reduce((x, y) => x + y, 0) / s.length, p99Ms: s[Math.floor(s.length * 0.99)] ?? NaN };
}

async function timeEach(n: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f(i);
    out.push(performance.now() - t);
  }
  return out;
}

async function phaseBig(a: Args): Promise<Record<string, number>> {
  const { store, cleanup } = await openBenchStore(a);
  try {
    const k = generateEd25519();
    const opts = { origin: ORIGIN, signer: noteSignerFromEd25519(ORIGIN, k.privateKey, k.publicKey) };
    const heaps: number[] = [];
    let ledger = await Ledger.open(store, opts);
    const buildSec = await build(ledger, Number(a.size), heaps);
    const buildRssMiB = process.resourceUsage().maxRSS / 1024;
    const size = ledger.size;
    await ledger.close();
    ledger = await Ledger.open(store, opts); // cold tile cache
    const rnd = (n: bigint): bigint => BigInt(Math.floor(Math.random() * Number(n)));
    const incl = stats(await timeEach(PROOFS_TIMED, () => ledger.inclusionProof(rnd(size), size)));
    const cons = stats(await timeEach(PROOFS_TIMED, () => ledger.consistencyProof(1n + rnd(size - 1n), size)));
    const v0 = performance.now();
    const report = await ledger.verifyAll();
    const verifySec = (performance.now() - v0) / 1000;
    if (!report.ok) throw new Error(`verify failed: ${report.problem}`);
    await ledger.close();
    const mb = (b: number): number => b / 1024 / 1024;
    return {
      size: Number(size),
      buildPerSec: Number(size) / buildSec,
      inclusionMeanMs: incl.meanMs,
      inclusionP99Ms: incl.p99Ms,
      consistencyMeanMs: cons.meanMs,
      consistencyP99Ms: cons.p99Ms,
      verifyPerSec: Number(size) / verifySec,
      ...Object.fromEntries(heaps.map((h, i) => [`heapMiB${i + 1}`, mb(h)])),
      buildPeakRssMiB: buildRssMiB,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await cleanup();
  }
}

// ---------------------------------------------------------------- orchestrator

/** The old-space limit the 1M run must live within (shows memory stays bounded as the log grows). */
const BIG_HEAP_MIB = 256;

function child(cpus: string, args: string[], nodeFlags: string[] = []): Promise<Record<string, number>> {
  const argv = ["-c", cpus, process.execPath, ...nodeFlags, "--expose-gc", "--disable-warning=ExperimentalWarning", SELF, ...args];
  return new Promise((resolve, reject) => {
    const c = spawn("taskset", argv, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.on("close", (code) => {
      if (code !== 0) reject(new Error(`taskset ${argv.join(" ")} exited ${code}`));
      else resolve(JSON.parse(out.trim().split("\n").pop() ?? "{}") as Record<string, number>);
    });
  });
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function runStore(store: string, url: string, a: Args, appendRows: string[]): Promise<string[]> {
  const base = ["--store", store, "--url", url, "--seconds", a.seconds ?? "4"];
  const log = (s: string): void => void process.stderr.write(`bench ledger [${store}]: ${s}\n`);
  log("machine limits");
  const lim = await child("0", ["--phase", "limits", ...base]);
  const rows: string[] = [];
  const verify = lim.verifyPerSec ?? NaN;
  rows.push(`| ${store} | Ed25519 verifications/s, 1 core (machine limit) | ${fmt(verify)} | 100% |`);
  rows.push(`| ${store} | raw inserts, 1-row durable transactions/s (machine limit) | ${fmt(lim.txPerSec)} | |`);
  rows.push(`| ${store} | raw inserts, rows/s in 64-row durable transactions (machine limit) | ${fmt(lim.rowsPerSecIn64)} | |`);
  for (const mode of ["1core", "2core"]) {
    for (const writers of ["1", "8", "64"]) {
      log(`appends, ${writers} writers, ${mode}`);
      const r = await child(mode === "1core" ? "0" : "0,1", ["--phase", "appends", "--mode", mode, "--writers", writers, ...base]);
      const label = mode === "1core" ? "1 core, checks inline" : "2 cores, checks on 2 worker threads";
      const pct = (x: number | undefined): string => `${fmt((x ?? 0) * 100)}%`;
      appendRows.push(
        `| ${store} | ${writers} | ${label} | ${fmt(r.appendsPerSec)} | ${fmt(r.verifyPerSec)} | ${pct((r.appendsPerSec ?? 0) / (r.verifyPerSec ?? NaN))} | ` +
          `${fmt(r.entriesPerCommit, 1)} | ${fmt(r.coresUsed, 2)} (verify run: ${fmt(r.verifyCores, 2)}) | ${pct(r.cpuRatio)} |`,
      );
    }
  }
  log(`building ${a.size} entries, proofs, full verification`);
  const big = await child("0", ["--phase", "big", "--size", a.size ?? "1000000", ...base], [`--max-old-space-size=${BIG_HEAP_MIB}`]);
  const n = fmt(big.size);
  rows.push(`| ${store} | build by batched appends of small entries (${n} entries), entries/s | ${fmt(big.buildPerSec)} | |`);
  rows.push(`| ${store} | inclusion proof at ${n} entries, mean / p99 ms (cold tile cache, random index) | ${fmt(big.inclusionMeanMs, 3)} / ${fmt(big.inclusionP99Ms, 3)} | |`);
  rows.push(`| ${store} | consistency proof to ${n} entries, mean / p99 ms (random old size) | ${fmt(big.consistencyMeanMs, 3)} / ${fmt(big.consistencyP99Ms, 3)} | |`);
  rows.push(`| ${store} | full verification (every leaf, tile node and checkpoint), entries/s | ${fmt(big.verifyPerSec)} | |`);
  rows.push(`| ${store} | heap after GC at 25/50/75/100% of ${n} entries, MiB | ${[big.heapMiB1, big.heapMiB2, big.heapMiB3, big.heapMiB4].map((h) => fmt(h, 1)).join(" / ")} | |`);
  rows.push(`| ${store} | peak RSS of the ${n}-entry process (V8 old space capped at ${BIG_HEAP_MIB} MiB), MiB | ${fmt(big.peakRssMiB, 0)} | |`);
  return rows;
}

async function orchestrate(a: Args): Promise<void> {
  const stores = (a.stores ?? "sqlite,postgres").split(",");
  const pg = stores.includes("postgres") ? await startTempPostgres() : undefined;
  if (stores.includes("postgres") && !pg) throw new Error("no PostgreSQL binaries found (apt-get install postgresql)");
  const rows: string[] = [];
  const appendRows: string[] = [];
  try {
    for (const s of stores) rows.push(...(await runStore(s, s === "postgres" ? (pg?.url ?? "") : "", a, appendRows)));
  } finally {
    pg?.stop();
  }
  const cmd = `node --disable-warning=ExperimentalWarning bench/ledger/run.ts --size ${a.size ?? "1000000"} --seconds ${a.seconds ?? "4"} --stores ${stores.join(",")}`;
  const out = process.stdout;
  out.write(`Command: \`${cmd}\` (Node ${process.version}, ${new Date().toISOString().slice(0, 10)})\n\n`);
  out.write("Signed appends (signature check + append + tree update + signed checkpoint + durable commit):\n\n");
  out.write("| store | writers | where the checks run | appends/s | Ed25519 verify/s, 1 core, same process just before | appends ÷ verify | entries/commit | cores busy | per CPU-second: appends ÷ verifications |\n");
  out.write("|---|---|---|---|---|---|---|---|---|\n" + appendRows.join("\n") + "\n\n");
  out.write("Machine limits, proofs, verification and memory:\n\n| store | measure | figure | vs 1-core verify |\n|---|---|---|---|\n" + rows.join("\n") + "\n");
}

const args = parseArgs(process.argv.slice(2));
const phases: Record<string, (a: Args) => Promise<Record<string, number>>> = { limits: phaseLimits, appends: phaseAppends, big: phaseBig };
const phase = args.phase === undefined ? undefined : phases[args.phase];
if (phase) process.stdout.write(JSON.stringify(await phase(args)) + "\n");
else await orchestrate(args);
