/**
 * DNS benchmark (BENCHMARKING.md): not a test. The Nexus server and NSD serve the same generated
 * zone set (default 1,000 zones × 20 records) one after the other in the same run, pinned to the same
 * cores, and dnsperf asks both the same query mix (60% hits, 20% NXDOMAIN, 20% NODATA).
 *   node bench/dns/run.ts [--zones 1000] [--runs 3] [--seconds 10] [--rate 20000] [--cores 1,2] [--sample 200]
 * For each core count: queries/s at saturation, the server's own CPU time (utime + stime of its
 * process tree, from /proc) and so queries per CPU-second, p50/p99 latency at a fixed rate, and the
 * ratios Nexus/NSD; then answers to a sample of queries compared between the two. Nexus serves UDP
 * with its batched addon (native/udp_batch.c); on 1 core the same server on node:dgram and a bare
 * dgram responder (Node's floor without batching) run too.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { buildZone } from "../../src/services/dns/zone.ts";
import { exportZone } from "../../src/services/dns/zonefile.ts";
import { benchQueries, benchZone } from "./zones.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
};
const ZONES = Number(flag("--zones", "1000"));
const RUNS = Number(flag("--runs", "3"));
const SECONDS = Number(flag("--seconds", "10"));
const RATE = Number(flag("--rate", "20000"));
const CORES = flag("--cores", "1,2").split(",").map(Number);
const SAMPLE = Number(flag("--sample", "200"));
const CLIENTS = 8;
const WARMUP_CLIENTS = 64;
/** Warm-up seconds per serving thread (each thread's cache fills from the sockets hashed to it). */
const WARMUP_S = 6;
/** Idle seconds before the fixed-rate phase (V8 runs the collections it put off while saturated). */
const SETTLE_S = 5;
const OUTSTANDING = 500;
const HERE = dirname(fileURLToPath(import.meta.url));
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) used so far by `pid` and every descendant process. */
function treeCpuSeconds(pid: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      stats.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // the process ended meanwhile
    }
  }
  let total = 0;
  const todo = [pid];
  while (todo.length > 0) {
    const p = todo.pop() ?? 0;
    total += stats.get(p)?.ticks ?? 0;
    for (const [c, st] of stats) if (st.ppid === p) todo.push(c);
  }
  return total / CLK_TCK;
}

function dnsperf(port: number, cpus: string, extra: string[], clients = CLIENTS): string {
  const a = ["-c", cpus, "dnsperf", "-s", "127.0.0.1", "-p", String(port), "-d", queriesFile, "-c", String(clients), "-q", String(OUTSTANDING), ...extra];
  return execFileSync("taskset", a, { encoding: "utf8", maxBuffer: 512 * 1024 * 1024 });
}

/** One UDP query, decoded (for the answer comparison). */
function ask(port: number, name: string, type: string): Promise<dnsPacket.DecodedPacket | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, 2000);
    s.on("message", (m) => {
      clearTimeout(t);
      s.close();
      resolve(dnsPacket.decode(m));
    });
    s.send(dnsPacket.encode({ type: "query", id: 1, questions: [{ name, type: type as "A" }] }), port, "127.0.0.1");
  });
}

function comparable(d: dnsPacket.DecodedPacket | undefined): string {
  if (d === undefined) return "timeout";
  const rr = (l: dnsPacket.Answer[] | undefined): string[] => (l ?? []).map((a) => `${a.name.toLowerCase()} ${a.type} ${"ttl" in a ? a.ttl : ""} ${JSON.stringify("data" in a ? a.data : "")}`).sort();
  const rcode = (d as { rcode?: string }).rcode ?? "";
  const negative = (d.answers ?? []).length === 0;
  return JSON.stringify({ rcode, aa: d.flag_aa, answer: rr(d.answers), authority: negative ? rr(d.authorities) : [] });
}

// ---- set-up: zones, NSD configuration, queries
const work = mkdtempSync(join(tmpdir(), "nexus-dns-bench-"));
const queriesFile = join(work, "queries.txt");
writeFileSync(queriesFile, `${benchQueries(ZONES, 100_000).join("\n")}\n`);
mkdirSync(join(work, "zones"));
const zoneConf: string[] = [];
for (let i = 0; i < ZONES; i++) {
  const z = buildZone(benchZone(i));
  writeFileSync(join(work, "zones", `${z.origin}zone`), exportZone(z));
  zoneConf.push("zone:", `  name: "${z.origin}"`, `  zonefile: "${z.origin}zone"`);
}
function nsdConf(port: number, servers: number): string {
  const p = join(work, `nsd-${servers}.conf`);
  writeFileSync(p, [
    "server:", "  ip-address: 127.0.0.1", `  port: ${port}`, `  server-count: ${servers}`, "  reuseport: yes", '  username: ""', '  chroot: ""',
    `  zonesdir: "${work}/zones"`, '  database: ""', `  zonelistfile: "${work}/zone.list"`, `  xfrdfile: "${work}/xfrd.state"`, `  pidfile: "${work}/nsd.pid"`,
    "  verbosity: 0", "  rrl-ratelimit: 0", "  minimal-responses: yes", "remote-control:", "  control-enable: no", ...zoneConf, "",
  ].join("\n"));
  return p;
}

interface Result { qps: number; cpuS: number; perCore: number; p50: number; p99: number; lost: string }

async function waitReady(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const a = await ask(port, "www.zone1.bench.example", "A");
    if (a !== undefined && (a.answers ?? []).length > 0) return;
    await sleep(200);
  }
  throw new Error(`server on ${port} did not answer`);
}

/** The floor of Node's dgram module here: a responder sending one fixed precomputed answer (ID patched), no DNS logic. */
const BARE = `const s = require("node:dgram").createSocket({ type: "udp4", lookup: (a, o, cb) => cb(null, a, 4) });
const r = Buffer.from("00008480000100010000000003777777057a6f6e65310562656e6368076578616d706c650000010001c00c000100010000012c00040a00010b", "hex");
s.on("message", (m, i) => { const o = Buffer.allocUnsafe(r.length); r.copy(o); o[0] = m[0]; o[1] = m[1]; s.send(o, i.port, i.address); });
s.bind(Number(process.argv[1]), "127.0.0.1");`;

type Kind = "nsd" | "nexus" | "dgram" | "bare";

async function measure(kind: Kind, cores: number, port: number): Promise<Result> {
  const cpus = cores === 1 ? "0" : "0,1";
  const cmd = kind === "nsd"
    ? ["nsd", "-d", "-c", nsdConf(port, cores)]
    : kind === "bare"
      ? [process.execPath, "-e", BARE, String(port)]
      : [process.execPath, "--disable-warning=ExperimentalWarning", join(HERE, "serve.ts"), "--port", String(port), "--zones", String(ZONES), "--workers", String(cores), "--udp", kind === "dgram" ? "dgram" : "batch"];
  const child: ChildProcess = spawn("taskset", ["-c", cpus, ...cmd], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    await waitReady(port);
    const loadCpus = "1";
    // Warm-up, the same for every server: WARMUP_S per serving thread from 64 client sockets, so
    // that the kernel's SO_REUSEPORT hash hands every thread enough sockets to see the whole query
    // mix (each Nexus thread has its own wire cache, filled by the negative answers it has given
    // once). Each pass over the mix sends a query through another socket, so the chance that a
    // thread never sees it falls as (1 - 1/cores)^passes.
    dnsperf(port, loadCpus, ["-l", String(WARMUP_S * cores)], WARMUP_CLIENTS);
    const c0 = treeCpuSeconds(child.pid ?? 0);
    const out = dnsperf(port, loadCpus, ["-l", String(SECONDS)]);
    const cpuS = treeCpuSeconds(child.pid ?? 0) - c0;
    const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
    const completed = Number(/Queries completed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
    const lost = /Queries lost:\s+(.*)/.exec(out)?.[1] ?? "?";
    // Saturated, a Node server has no idle time, so V8 defers the collection of the warm-up's
    // garbage (idle-task scavenges, the memory reducer's mark-compact) to the first idle moment: the
    // fixed-rate phase. An idle pause, the same for every server, lets that happen before it.
    await sleep(SETTLE_S * 1000);
    const v = dnsperf(port, loadCpus, ["-l", String(SECONDS), "-Q", String(RATE), "-v"]);
    const lat = [...v.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
    const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] ?? NaN;
    return { qps, cpuS, perCore: completed / cpuS, p50: pct(50), p99: pct(99), lost };
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
  }
}

async function freePort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const p = s.address().port;
  s.close();
  return p;
}

const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(60)} ${value.padStart(14)}   [${cmd}]`);
try {
  console.log(`# DNS: ${ZONES} zones, ${ZONES * 20} records, 100,000 queries (60% hits, 20% NXDOMAIN, 20% NODATA), ${RUNS} runs, medians`);
  console.log(`# load average at start: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  for (const cores of CORES) {
    const res: Record<Kind, Result[]> = { nsd: [], nexus: [], dgram: [], bare: [] };
    const kinds = cores === 1 ? (["nsd", "nexus", "dgram", "bare"] as const) : (["nsd", "nexus"] as const);
    for (let r = 0; r < RUNS; r++) {
      for (const kind of kinds) res[kind].push(await measure(kind, cores, await freePort()));
    }
    const m = (k: Kind, f: keyof Omit<Result, "lost">): number => median(res[k].map((x) => x[f]));
    const pin = cores === 1 ? "taskset -c 0 (server), taskset -c 1 (dnsperf)" : "taskset -c 0,1 (server), taskset -c 1 (dnsperf)";
    for (const k of ["nsd", "nexus"] as const) {
      const who = k === "nsd" ? `NSD (server-count ${cores})` : `Nexus (workers ${cores})`;
      line(`${who}, ${cores} core(s): queries/s`, m(k, "qps").toFixed(0), `dnsperf -c ${CLIENTS} -q ${OUTSTANDING} -l ${SECONDS}; ${pin}`);
      line(`${who}: server CPU s during that run`, m(k, "cpuS").toFixed(2), "utime+stime of the server's process tree, /proc");
      line(`${who}: queries per server CPU-second`, m(k, "perCore").toFixed(0), "completed / CPU s");
      line(`${who}: p50 / p99 ms at ${RATE} q/s`, `${m(k, "p50").toFixed(3)} / ${m(k, "p99").toFixed(3)}`, `dnsperf -Q ${RATE} -l ${SECONDS} -v`);
      line(`${who}: lost (last run)`, res[k].at(-1)?.lost ?? "", "");
    }
    line(`ratio Nexus/NSD, ${cores} core(s): queries/s`, (m("nexus", "qps") / m("nsd", "qps")).toFixed(2), "same run");
    line(`ratio Nexus/NSD, ${cores} core(s): queries per CPU-second`, (m("nexus", "perCore") / m("nsd", "perCore")).toFixed(2), "same run");
    line(`ratio Nexus/NSD, ${cores} core(s): p99 at ${RATE} q/s`, (m("nexus", "p99") / m("nsd", "p99")).toFixed(2), "same run");
    if (cores === 1) {
      line("Nexus on node:dgram (--udp dgram): queries per CPU-second", m("dgram", "perCore").toFixed(0), "the same server without the batched addon, same pins");
      line("Nexus on node:dgram: p50 / p99 ms at fixed rate", `${m("dgram", "p50").toFixed(3)} / ${m("dgram", "p99").toFixed(3)}`, `dnsperf -Q ${RATE} -l ${SECONDS} -v`);
      line("ratio Nexus on node:dgram/NSD: queries per CPU-second", (m("dgram", "perCore") / m("nsd", "perCore")).toFixed(2), "same run");
      line("bare Node dgram responder (one fixed answer): queries per CPU-second", m("bare", "perCore").toFixed(0), "node -e <fixed answer, ID patched>, same pins");
      line("ratio bare responder/NSD: queries per CPU-second (Node's floor here)", (m("bare", "perCore") / m("nsd", "perCore")).toFixed(2), "same run");
      line("ratio Nexus/bare responder: queries per CPU-second", (m("nexus", "perCore") / m("bare", "perCore")).toFixed(2), "same run");
    }
    console.log(`# per-run queries/s nsd=${res.nsd.map((x) => x.qps.toFixed(0)).join(",")} nexus=${res.nexus.map((x) => x.qps.toFixed(0)).join(",")}`);
    console.log(`# per-run q/CPU-s nsd=${res.nsd.map((x) => x.perCore.toFixed(0)).join(",")} nexus=${res.nexus.map((x) => x.perCore.toFixed(0)).join(",")}`);
  }
  // Answers compared on a sample of the query mix.
  const pa = await freePort();
  const pb = await freePort();
  const nsd = spawn("nsd", ["-d", "-c", nsdConf(pa, 1)], { stdio: "ignore" });
  const nexus = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(HERE, "serve.ts"), "--port", String(pb), "--zones", String(ZONES)], { stdio: "ignore" });
  try {
    await Promise.all([waitReady(pa), waitReady(pb)]);
    const sample = readFileSync(queriesFile, "utf8").split("\n").filter((l) => l !== "").slice(0, SAMPLE);
    let differ = 0;
    for (const q of sample) {
      const [name = "", type = "A"] = q.split(" ");
      const [a, b] = await Promise.all([ask(pa, name, type), ask(pb, name, type)]);
      if (comparable(a) !== comparable(b)) {
        differ++;
        if (differ <= 5) console.log(`# differs: ${q}\n#   nsd:   ${comparable(a)}\n#   nexus: ${comparable(b)}`);
      }
    }
    line("answers differing from NSD's (RCODE, AA, answer; authority when negative)", `${differ} / ${sample.length}`, "first queries of the mix, UDP");
  } finally {
    nsd.kill("SIGTERM");
    nexus.kill("SIGTERM");
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
