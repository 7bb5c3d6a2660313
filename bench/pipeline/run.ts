/**
 * Pipeline benchmark: commands/s through the whole write path (decode, schema, signature, nonce,
 * time, gates, append, projection, durable commit, receipt with inclusion proof), in process and
 * over HTTP (POST /v1/commands), with 1 and 32 concurrent clients, for imvu.create and
 * revenue.record; beside, in the same run and on the same store, the raw ledger-append figure
 * (entries of the same bytes, no pipeline), and the share of the pipeline's time spent outside
 * the ledger and the signature check (gates + projections + receipts).
 *
 *   node --disable-warning=ExperimentalWarning bench/pipeline/run.ts [--commands 4000] [--stores sqlite,postgres]
 *
 * In process: one child pinned to CPU 0 (taskset). Over HTTP: the server in a child pinned to
 * CPU 0, the load generator (undici Pool, keep-alive, one connection per client) here on CPU 1.
 * Commands are signed before timing (signing is the client's cost, not the platform's).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { buildApi } from "../../src/api/app.ts";
import { commandRoutes } from "../../src/api/routes/commands.ts";
import { imvuRoutes } from "../../src/api/routes/imvus.ts";
import { startTempPostgres } from "../../src/cli/dev/system.ts";
import { utf8 } from "../../src/core/crypto/bytes.ts";
import { canonicalize } from "../../src/core/crypto/index.ts";
import { createIdentity, loadIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { Ledger } from "../../src/core/ledger/ledger.ts";
import { noteSignerFromEd25519 } from "../../src/core/ledger/note.ts";
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { authenticate } from "../../src/core/pipeline/authenticate.ts";
import { decide } from "../../src/core/pipeline/decide.ts";
import { signCommand, type SignedCommand } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { Platform, serviceIdentityName, signerOf } from "../../src/platform/platform.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";
import { openStore } from "../../src/store/index.ts";

const SELF = fileURLToPath(import.meta.url);
/** Concurrencies measured. */
const CLIENTS = [1, 32] as const;
/** Commands of the warm-up before each timed run. */
const WARMUP_COMMANDS = 300;
/** Commands used for the pure (no I/O) timing of authentication and gates. */
const PURE_SAMPLE = 2000;
const ENVELOPE = envelopeToWire(ENVELOPE_PROFILES.small);
type Kind = "imvu.create" | "revenue.record";

function args(): Record<string, string> {
  const a: Record<string, string> = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) if (v[i]?.startsWith("--")) a[(v[i] ?? "").slice(2)] = v[++i] ?? "";
  return a;
}

interface Setup {
  readonly platform: Platform;
  readonly creators: LocalIdentity[];
  readonly revenue: LocalIdentity;
}

/** A platform with `n` registered creators, each owning IMVU `u<i>` (revenue lands there). */
async function setup(home: string, url: string | undefined, n: number): Promise<Setup> {
  const platform = await Platform.open({ home, databaseUrl: url, databaseSchema: url ? `bench_${process.pid}_${Date.now()}` : undefined });
  const creators: LocalIdentity[] = [];
  for (let i = 0; i < n; i++) {
    const id = createIdentity(join(home, "creators"), { name: `c${i}`, makeDefault: false });
    await platform.pipeline.submit(signCommand({ type: "identity.inception", body: { inception: id.kel[0] } }, signerOf(id)).json);
    await platform.pipeline.submit(signCommand({ type: "imvu.create", imvu: `u${i}`, body: { name: `u${i}`, jurisdiction: "DE", class: "imvu", envelope: ENVELOPE } }, signerOf(id)).json);
    creators.push(id);
  }
  return { platform, creators, revenue: loadIdentity(join(home, "keys"), serviceIdentityName("revenue-source")) };
}

let seq = 0;
/** `count` signed commands of `kind` for client slot c (of `clients`). */
function commands(s: Pick<Setup, "creators" | "revenue">, kind: Kind, count: number, clients: number): SignedCommand[] {
  const out: SignedCommand[] = [];
  for (let i = 0; i < count; i++) {
    const c = i % clients;
    const n = seq++;
    if (kind === "imvu.create") {
      const who = s.creators[c] as LocalIdentity;
      out.push(signCommand({ type: kind, imvu: `b${n}`, body: { name: `b${n}`, jurisdiction: "DE", class: "imvu", envelope: ENVELOPE } }, signerOf(who)));
    } else {
      out.push(signCommand({ type: kind, imvu: `u${c}`, body: { class: "imvu", currency: "EUR", amount: String(100 + (n % 9000)), source: "bench", eventId: `evt_${n}` } }, signerOf(s.revenue)));
    }
  }
  return out;
}

/** Runs `items` through `send` with `clients` concurrent loops; returns items/s. */
async function drive<T>(items: readonly T[], clients: number, send: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = next++; i < items.length; i = next++) await send(items[i] as T);
    }),
  );
  return items.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function rawAppend(url: string | undefined, entries: readonly Uint8Array[], clients: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "nexus-bench-raw-"));
  const store = await openStore({ url, dataDir: dir, ...(url ? { schema: `bench_raw_${process.pid}_${Date.now()}` } : {}) });
  const kp = generateEd25519();
  const ledger = await Ledger.open(store, { origin: "bench/ledger", signer: noteSignerFromEd25519("bench/ledger", kp.privateKey, kp.publicKey) });
  try {
    await drive(entries.slice(0, WARMUP_COMMANDS), clients, async (e) => void (await ledger.append(e)));
    return await drive(entries.slice(WARMUP_COMMANDS), clients, async (e) => void (await ledger.append(e)));
  } finally {
    await ledger.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Child: in-process figures for one store. Prints one JSON line. */
async function childInProcess(url: string | undefined, count: number): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), "nexus-bench-pipe-"));
  const s = await setup(home, url, 32);
  const result: Record<string, number> = {};
  try {
    for (const kind of ["imvu.create", "revenue.record"] as const) {
      // Pure cost per command of authentication and of gates + reducers (no I/O), on the live state.
      const sample = commands(s, kind, PURE_SAMPLE, 32);
      const now = new Date();
      let tAuth = 0n;
      let tDecide = 0n;
      for (const [i, c] of sample.entries()) {
        const t0 = process.hrtime.bigint();
        const a = authenticate(s.platform.state, c.json, now, identityVerifiers);
        const t1 = process.hrtime.bigint();
        if (!a.ok) throw new Error(`bench command rejected: ${a.error.code}`);
        decide(s.platform.state, a.value, BigInt(i), now.toISOString(), c.json.length);
        tDecide += process.hrtime.bigint() - t1;
        tAuth += t1 - t0;
      }
      result[`${kind}/authUs`] = Number(tAuth) / 1e3 / PURE_SAMPLE;
      result[`${kind}/decideUs`] = Number(tDecide) / 1e3 / PURE_SAMPLE;
      for (const clients of CLIENTS) {
        const batch = commands(s, kind, WARMUP_COMMANDS + count, clients);
        const entries: Uint8Array[] = [];
        await drive(batch.slice(0, WARMUP_COMMANDS), clients, async (c) => void (await s.platform.pipeline.submit(c.json)));
        const before = s.platform.pipeline.stats();
        result[`${kind}/inproc/${clients}`] = await drive(batch.slice(WARMUP_COMMANDS), clients, async (c) => {
          const r = await s.platform.pipeline.submit(c.json);
          if (r.outcome !== "applied") throw new Error(`bench command denied: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
        });
        const after = s.platform.pipeline.stats();
        const whole = Number(after.batchNs - before.batchNs);
        const part = (k: "authNs" | "gatesNs" | "appendNs" | "projectNs" | "receiptNs"): number => Number(after[k] - before[k]) / whole;
        result[`${kind}/share/gatesProjection/${clients}`] = part("gatesNs") + part("projectNs");
        result[`${kind}/share/auth/${clients}`] = part("authNs");
        result[`${kind}/share/receipt/${clients}`] = part("receiptNs");
        result[`${kind}/share/ledger/${clients}`] = 1 - part("authNs") - part("gatesNs") - part("projectNs") - part("receiptNs");
        // The same entries' bytes appended raw, same concurrency, same store kind.
        for (const c of batch) entries.push(utf8(canonicalize({ index: "0", time: new Date().toISOString(), envelope: c.envelope, outcome: "applied", gates: [] })));
        result[`${kind}/raw/${clients}`] = await rawAppend(url, entries, clients);
      }
    }
  } finally {
    await s.platform.close();
    rmSync(home, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Child: the API server on a fresh platform; prints its home and port, serves until stdin closes. */
async function childServer(url: string | undefined): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), "nexus-bench-http-"));
  const s = await setup(home, url, 32);
  const { pipeline, ledger, verifierKey } = s.platform;
  const app = await buildApi({ ledger, modules: [commandRoutes({ pipeline, rate: { perSec: 1e9, burst: 1e9 } }), imvuRoutes({ pipeline, ledger, verifierKey })] });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  process.stdout.write(`${JSON.stringify({ home, port: typeof addr === "object" && addr ? addr.port : 0 })}\n`);
  process.stdin.resume();
  await new Promise((r) => process.stdin.on("end", r));
  await app.close();
  await s.platform.close();
  rmSync(home, { recursive: true, force: true });
}

function runChild(mode: string, url: string | undefined, count: number, onLine?: (line: string) => void): { done: Promise<string>; stop: () => void } {
  const child = spawn("taskset", ["-c", "0", process.execPath, "--disable-warning=ExperimentalWarning", SELF, "--child", mode, "--commands", String(count), ...(url ? ["--url", url] : [])], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    const nl = out.indexOf("\n");
    if (nl >= 0 && onLine) onLine(out.slice(0, nl));
  });
  const done = new Promise<string>((resolve, reject) => child.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${mode} child exited ${code}`)))));
  return { done, stop: () => child.stdin.end() };
}

/** Over HTTP: the server child on CPU 0, the load here (pin this process to CPU 1 with taskset). */
async function overHttp(url: string | undefined, count: number): Promise<Record<string, number>> {
  let ready: (v: { home: string; port: number }) => void = () => undefined;
  const started = new Promise<{ home: string; port: number }>((r) => (ready = r));
  const server = runChild("server", url, count, (line) => ready(JSON.parse(line) as { home: string; port: number }));
  const { home, port } = await started;
  const creators = Array.from({ length: 32 }, (_, i) => loadIdentity(join(home, "creators"), `c${i}`));
  const revenue = loadIdentity(join(home, "keys"), serviceIdentityName("revenue-source"));
  const result: Record<string, number> = {};
  try {
    for (const kind of ["imvu.create", "revenue.record"] as const) {
      for (const clients of CLIENTS) {
        const pool = new Pool(`http://127.0.0.1:${port}`, { connections: clients, pipelining: 1 });
        const send = async (c: SignedCommand): Promise<void> => {
          const r = await pool.request({ path: "/v1/commands", method: "POST", headers: { "content-type": "application/json" }, body: c.json });
          const text = await r.body.text();
          if (r.statusCode !== 201) throw new Error(`HTTP ${r.statusCode}: ${text.slice(0, 300)}`);
        };
        const batch = commands({ creators, revenue }, kind, WARMUP_COMMANDS + count, clients);
        await drive(batch.slice(0, WARMUP_COMMANDS), clients, send);
        result[`${kind}/http/${clients}`] = await drive(batch.slice(WARMUP_COMMANDS), clients, send);
        await pool.close();
      }
    }
  } finally {
    server.stop();
    await server.done;
  }
  return result;
}

const fmt = (n: number | undefined): string => (n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));

async function main(): Promise<void> {
  const a = args();
  const count = Number(a.commands ?? "4000");
  if (a.child === "inproc") return childInProcess(a.url || undefined, count);
  if (a.child === "server") return childServer(a.url || undefined);
  const stores = (a.stores ?? "sqlite").split(",");
  const pg = stores.includes("postgres") ? await startTempPostgres() : undefined;
  const cmd = `taskset -c 1 node --disable-warning=ExperimentalWarning bench/pipeline/run.ts --commands ${count} --stores ${stores.join(",")}`;
  try {
    for (const store of stores) {
      const url = store === "postgres" ? pg?.url : undefined;
      if (store === "postgres" && !url) throw new Error("no PostgreSQL to benchmark");
      const inproc = JSON.parse(await runChild("inproc", url, count).done) as Record<string, number>;
      const http = await overHttp(url, count);
      const r = { ...inproc, ...http };
      process.stdout.write(`\n### ${store} (${count} commands per figure after ${WARMUP_COMMANDS} of warm-up)\n\ncommand: \`${cmd}\`\n\n`);
      process.stdout.write(
        "| command | clients | in process /s | over HTTP /s | raw ledger append /s | gates + projections | authentication | ledger (append, tree, commit) | receipts |\n|---|---|---|---|---|---|---|---|---|\n",
      );
      const pct = (v: number | undefined): string => (v === undefined ? "–" : `${(100 * v).toFixed(0)}%`);
      for (const kind of ["imvu.create", "revenue.record"] as const) {
        for (const c of CLIENTS) {
          const cells = [fmt(r[`${kind}/inproc/${c}`]), fmt(r[`${kind}/http/${c}`]), fmt(r[`${kind}/raw/${c}`])];
          const shares = ["gatesProjection", "auth", "ledger", "receipt"].map((k) => pct(r[`${kind}/share/${k}/${c}`]));
          process.stdout.write(`| ${kind} | ${c} | ${[...cells, ...shares].join(" | ")} |\n`);
        }
      }
      process.stdout.write("\nShares: of the in-process pipeline's batch time (Pipeline.stats()), per step.\n");
      process.stdout.write("\n| command | authenticate µs (decode, schema, Ed25519, nonce, time) | gates + reducers µs (pure) |\n|---|---|---|\n");
      for (const kind of ["imvu.create", "revenue.record"] as const) {
        process.stdout.write(`| ${kind} | ${(r[`${kind}/authUs`] ?? NaN).toFixed(1)} | ${(r[`${kind}/decideUs`] ?? NaN).toFixed(1)} |\n`);
      }
    }
  } finally {
    pg?.stop();
  }
}

await main();
