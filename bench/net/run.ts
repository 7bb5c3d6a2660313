/**
 * Gateway benchmark (BENCHMARKING.md): not a test. The same small response (24 bytes from a plain
 * node:http upstream) fetched by wrk at 50 connections, one after the other in the same run:
 * direct to the upstream, through the Nexus gateway, and through nginx configured as a reverse
 * proxy with upstream keepalive; then both proxies again on two cores (gateway: 2 serving threads;
 * nginx: 2 workers). Pins: proxy on CPU 0 (both CPUs for the 2-core rows), upstream and wrk on CPU 1.
 *   node bench/net/run.ts [--seconds 10] [--runs 3] [--connections 50] [--cores 1,2]
 * Prints requests/s, p50/p99, the proxy's CPU (utime + stime from /proc), added latency over direct
 * and the ratios gateway/nginx, with the wrk command behind each figure. A bare node:http + undici
 * proxy (bare-proxy.ts) runs too, as the floor any Node proxy starts from.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? dflt) : dflt;
};
const SECONDS = Number(flag("--seconds", "10"));
const RUNS = Number(flag("--runs", "3"));
const CONNS = Number(flag("--connections", "50"));
const CORES = flag("--cores", "1,2").split(",").map(Number);
const WARMUP_S = 3;
const HOST = "bench.nexus.test";
const HERE = dirname(fileURLToPath(import.meta.url));
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const sh = promisify(execFile);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (all threads) used so far by `pid`. */
function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds of nginx's master and workers. */
function nginxCpu(masterPid: number): number {
  const kids = execFileSync("sh", ["-c", `pgrep -P ${masterPid} || true`], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  return [masterPid, ...kids].reduce((a, p) => a + cpuSeconds(p), 0);
}

/** Starts a node child pinned to `cpus` and waits for its `{"port"}` line. */
async function nodeChild(cpus: string, script: string, argv: string[]): Promise<{ p: ChildProcess; port: number }> {
  const p = spawn("taskset", ["-c", cpus, process.execPath, "--disable-warning=ExperimentalWarning", join(HERE, script), ...argv], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((r) => createInterface({ input: p.stdout! }).once("line", r));
  return { p, port: (JSON.parse(line) as { port: number }).port };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  p.kill("SIGTERM");
  await Promise.race([new Promise((r) => p.once("exit", r)), sleep(3_000)]);
  if (p.exitCode === null) p.kill("SIGKILL");
}

/** A port free on 127.0.0.1 now: the kernel's pick for port 0 (another process may still take it: see startNginx). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Attempts at starting nginx on a fresh free port when the last one was taken meanwhile. */
const NGINX_TRIES = 5;

/** Starts nginx as a keepalive reverse proxy to `upstreamPort` on a free port (retried when taken). */
async function startNginx(cpus: string, workers: number, upstreamPort: number): Promise<{ p: ChildProcess; dir: string; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const r = await tryNginx(cpus, workers, port, upstreamPort);
    if (r.ok) return { p: r.p, dir: r.dir, port };
    rmSync(r.dir, { recursive: true, force: true });
    if (!/Address already in use/.test(r.log) || attempt >= NGINX_TRIES) throw new Error(`nginx did not start on 127.0.0.1:${port}: ${r.log}`);
    process.stderr.write(`nginx: 127.0.0.1:${port} was taken meanwhile, trying another port\n`);
  }
}

/** One nginx start on `port`: ready once it answers itself (its Server field, not whatever else may listen there). */
async function tryNginx(cpus: string, workers: number, port: number, upstreamPort: number): Promise<{ ok: true; p: ChildProcess; dir: string } | { ok: false; dir: string; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), "nexus-bench-nginx-"));
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, d));
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} reuseport;
    server_name ${HOST};
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      add_header nexus-route-version 1;
    }
  }
}
`,
  );
  const log = (): string => (existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : "");
  const p = spawn("taskset", ["-c", cpus, "nginx", "-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  p.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  for (let i = 0; i < 100; i++) {
    if (p.exitCode !== null || p.signalCode !== null) return { ok: false, dir, log: `${stderr}${log()}`.trim() };
    try {
      const head = (await sh("curl", ["-s", "-D", "-", "-o", "/dev/null", "-H", `Host: ${HOST}`, `http://127.0.0.1:${port}/`], { encoding: "utf8" })).stdout;
      if (/^server: nginx/im.test(head)) return { ok: true, p, dir };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop(p);
  return { ok: false, dir, log: `no answer from nginx within 10 s; ${stderr}${log()}`.trim() };
}

/** One wrk measurement. */
interface Wrk {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  cmd: string;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(port: number, seconds: number): Promise<Wrk> {
  const a = ["-c", "1", "wrk", "-t1", `-c${CONNS}`, `-d${seconds}s`, "--latency", "-H", `Host: ${HOST}`, `http://127.0.0.1:${port}/`];
  const out = (await sh("taskset", a, { encoding: "utf8" })).stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? "";
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? "";
  const errs = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50ms: toMs(p50), p99ms: toMs(p99), errors: errs, cmd: `taskset ${a.join(" ")}` };
}

/** Warm-up, then a timed wrk run while measuring the server's CPU. */
async function measure(port: number, cpu: () => number): Promise<Wrk & { cores: number }> {
  await wrk(port, WARMUP_S);
  const c0 = cpu();
  const t0 = Date.now();
  const w = await wrk(port, SECONDS);
  return { ...w, cores: (cpu() - c0) / ((Date.now() - t0) / 1000) };
}

type Row = Wrk & { cores: number };
const results = new Map<string, Row[]>();
const push = (k: string, r: Row): void => void results.set(k, [...(results.get(k) ?? []), r]);

async function oneRun(run: number): Promise<void> {
  const up = await nodeChild("1", "upstream.ts", ["0"]);
  try {
    push("direct", await measure(up.port, () => cpuSeconds(up.p.pid ?? 0)));
    // The floor for any Node proxy: node:http + undici Pool dispatch, no routing and no checks.
    const bare = await nodeChild("0", "bare-proxy.ts", [String(up.port), "0"]);
    try {
      push("bare", await measure(bare.port, () => cpuSeconds(bare.p.pid ?? 0)));
    } finally {
      await stop(bare.p);
    }
    for (const cores of CORES) {
      const cpus = cores === 1 ? "0" : "0,1";
      const gw = await nodeChild(cpus, "serve.ts", [String(up.port), "0", String(cores)]);
      try {
        push(`gateway-${cores}`, await measure(gw.port, () => cpuSeconds(gw.p.pid ?? 0)));
      } finally {
        await stop(gw.p);
      }
      const ng = await startNginx(cpus, cores, up.port);
      try {
        push(`nginx-${cores}`, await measure(ng.port, () => nginxCpu(ng.p.pid ?? 0)));
      } finally {
        await stop(ng.p);
        rmSync(ng.dir, { recursive: true, force: true });
      }
    }
  } finally {
    await stop(up.p);
  }
  process.stderr.write(`run ${run + 1}/${RUNS} done\n`);
}

for (let i = 0; i < RUNS; i++) await oneRun(i);

const med = (k: string): { rps: number; p50: number; p99: number; cores: number; errors: number; cmd: string } => {
  const rs = results.get(k) ?? [];
  return { rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50ms)), p99: median(rs.map((r) => r.p99ms)), cores: median(rs.map((r) => r.cores)), errors: rs.reduce((a, r) => a + r.errors, 0), cmd: rs[0]?.cmd ?? "" };
};
const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const d = med("direct");
console.log(`\nmedians of ${RUNS} runs, ${SECONDS} s each after ${WARMUP_S} s warm-up, ${CONNS} connections; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}\n`);
console.log("| path | requests/s | p50 | p99 | proxy CPU (cores) | added p50 / p99 over direct | errors |");
console.log("|---|---|---|---|---|---|---|");
console.log(`| direct to the upstream | ${fmt(d.rps)} | ${fmt(d.p50, 2)} ms | ${fmt(d.p99, 2)} ms | | | ${d.errors} |`);
const b = med("bare");
console.log(`| bare node:http + undici proxy, 1 core (reference) | ${fmt(b.rps)} | ${fmt(b.p50, 2)} ms | ${fmt(b.p99, 2)} ms | ${fmt(b.cores, 2)} | +${fmt(b.p50 - d.p50, 2)} / +${fmt(b.p99 - d.p99, 2)} ms | ${b.errors} |`);
for (const cores of CORES) {
  for (const who of ["gateway", "nginx"]) {
    const m = med(`${who}-${cores}`);
    console.log(`| ${who === "gateway" ? "Nexus gateway" : "nginx"}, ${cores} core${cores > 1 ? "s" : ""} | ${fmt(m.rps)} | ${fmt(m.p50, 2)} ms | ${fmt(m.p99, 2)} ms | ${fmt(m.cores, 2)} | +${fmt(m.p50 - d.p50, 2)} / +${fmt(m.p99 - d.p99, 2)} ms | ${m.errors} |`);
  }
}
console.log("\n| ratio | value |\n|---|---|");
for (const cores of CORES) {
  const g = med(`gateway-${cores}`);
  const n = med(`nginx-${cores}`);
  console.log(`| gateway/nginx requests/s, ${cores} core${cores > 1 ? "s" : ""} | ${fmt(g.rps / n.rps, 2)} |`);
  console.log(`| gateway/nginx requests per CPU-second, ${cores} core${cores > 1 ? "s" : ""} | ${fmt(g.rps / g.cores / (n.rps / n.cores), 2)} |`);
}
if (CORES.includes(1)) console.log(`| gateway/bare proxy requests/s, 1 core | ${fmt(med("gateway-1").rps / b.rps, 2)} |`);
if (CORES.includes(1) && CORES.includes(2)) console.log(`| gateway 2 cores / nginx 1 core requests/s | ${fmt(med("gateway-2").rps / med("nginx-1").rps, 2)} |`);
console.log(`\nwrk: ${d.cmd.replace(/http:\/\/127\.0\.0\.1:\d+\//, "http://127.0.0.1:<port>/")}`);
console.log("proxies: gateway `taskset -c <0|0,1> node bench/net/serve.ts <upstream-port> 0 <threads>`; nginx `taskset -c <0|0,1> nginx -c <generated conf>` (worker_processes 1|2, upstream keepalive 64); upstream `taskset -c 1 node bench/net/upstream.ts`");
