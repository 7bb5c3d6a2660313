/**
 * Mail benchmark (BENCHMARKING.md): not a test. Prints each figure with the command behind it.
 *   node bench/mail/run.ts [--runs 3] [--n1k 6000] [--n100k 1500] [--sessions 16] [--no-crash]
 *
 * - throughput: messages/s accepted over SMTP and durably stored in Maildir, 1 KiB and 100 KiB
 *   payloads, 16 concurrent sessions of smtp-source (Postfix's load generator, -d: several
 *   messages per connection), against Nexus SMTP in and against a private Postfix delivering to
 *   Maildir with virtual(8), in the same run, interleaved, median of --runs. The server (Nexus,
 *   or Postfix's master and all its children) is pinned to CPU 0, smtp-source to CPU 1; the CPU
 *   the server used (utime + stime, children included) is printed beside each rate. Postfix
 *   answers 250 once the message is in its queue and delivers to Maildir afterwards, so its
 *   "stored" rate is measured until the last file is in new/; Nexus answers 250 only once the
 *   file is in new/ and fsync'ed.
 * - crash: 16 sessions send numbered 1 KiB messages to Nexus; after a fixed count of 250 replies
 *   the server gets SIGKILL; every acknowledged message must be complete in new/.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { RawSmtp, postfixPeer, tempDir, type PostfixPeer } from "../../test/mail/support-smtp.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const RUNS = flag("--runs", 3);
const SESSIONS = flag("--sessions", 16);
const SIZES = [
  { label: "1 KiB", bytes: 1024, n: flag("--n1k", 6000) },
  { label: "100 KiB", bytes: 100 * 1024, n: flag("--n100k", 1500) },
];
const WARMUP = 300;
const CRASH_ACKS = flag("--crash-acks", 3000);
const TICK_HZ = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(52)} ${value.padStart(22)}   [${cmd}]`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const tool of ["smtp-source", "postfix", "taskset"]) {
  if (spawnSync("bash", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is needed (apt-get install postfix util-linux)`);
}

/** CPU seconds of a process (and of its reaped children), from /proc/<pid>/stat. */
function cpuSeconds(pid: number, withChildren: boolean): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
    // fields 14-17 of stat (utime stime cutime cstime) are 11-14 after the ")"
    const ticks = (f[11] ?? 0) + (f[12] ?? 0) + (withChildren ? (f[13] ?? 0) + (f[14] ?? 0) : 0);
    return ticks / TICK_HZ;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  const r = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
  return r.stdout.split("\n").filter(Boolean).map(Number);
}

/** A server under test: where its Maildir is and how much CPU it has used so far. */
interface Target {
  readonly name: string;
  readonly port: number;
  readonly newDir: string;
  cpu(): number;
  stop(): void;
}

async function startNexus(dataDir: string): Promise<{ child: ChildProcess; port: number; pid: number }> {
  const child = spawn("taskset", ["-c", "0", process.execPath, "--disable-warning=ExperimentalWarning", join(import.meta.dirname, "smtp-server.ts"), dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "32" },
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (c) => reject(new Error(`nexus server exited (${c})`)));
  });
  const { port, pid } = JSON.parse(first) as { port: number; pid: number };
  return { child, port, pid };
}

async function nexusTarget(dataDir: string): Promise<Target> {
  const s = await startNexus(dataDir);
  return {
    name: "nexus",
    port: s.port,
    newDir: join(dataDir, "mail", "bench", "sink@bench.test", "Maildir", "new"),
    cpu: () => cpuSeconds(s.pid, true),
    stop: () => s.child.kill("SIGTERM"),
  };
}

async function postfixTarget(): Promise<{ target: Target; peer: PostfixPeer }> {
  const peer = await postfixPeer("bench.test", ["sink"]);
  await peer.start();
  const master = Number(readFileSync(join(peer.dir, "spool", "pid", "master.pid"), "utf8").trim());
  const pin = (): void => {
    for (const pid of [master, ...childrenOf(master)]) spawnSync("taskset", ["-a", "-p", "-c", "0", String(pid)], { stdio: "ignore" });
  };
  pin();
  return {
    peer,
    target: {
      name: "postfix",
      port: peer.port,
      newDir: join(peer.maildir("sink"), "new"),
      cpu: () => {
        pin();
        return cpuSeconds(master, true) + childrenOf(master).reduce((s, p) => s + cpuSeconds(p, false), 0);
      },
      stop: () => peer.cleanup(),
    },
  };
}

const count = (dir: string): number => (existsSync(dir) ? readdirSync(dir).length : 0);

function smtpSourceArgs(t: Target, n: number, bytes: number): string[] {
  return ["-c", "1", "smtp-source", "-d", "-s", String(SESSIONS), "-m", String(n), "-l", String(bytes), "-f", "load@sender.example", "-t", "sink@bench.test", `127.0.0.1:${t.port}`];
}

/** One timed load: accepted and stored rates and the server's CPU use. */
async function load(t: Target, n: number, bytes: number): Promise<{ accepted: number; stored: number; cores: number }> {
  const before = count(t.newDir);
  const cpu0 = t.cpu();
  const t0 = performance.now();
  const r = spawnSync("taskset", smtpSourceArgs(t, n, bytes), { encoding: "utf8", timeout: 600_000 });
  if (r.status !== 0) throw new Error(`smtp-source against ${t.name}: ${r.stderr}`);
  const t1 = performance.now();
  while (count(t.newDir) < before + n) {
    if (performance.now() - t1 > 120_000) throw new Error(`${t.name}: only ${count(t.newDir) - before} of ${n} stored`);
    await sleep(10);
  }
  const t2 = performance.now();
  return { accepted: (n / (t1 - t0)) * 1000, stored: (n / (t2 - t0)) * 1000, cores: (t.cpu() - cpu0) / ((t2 - t0) / 1000) };
}

async function throughput(): Promise<void> {
  const work = tempDir("mail-bench");
  const nexus = await nexusTarget(work.path);
  const { target: postfix } = await postfixTarget();
  try {
    console.log(`# SMTP in → Maildir, ${SESSIONS} sessions, median of ${RUNS} runs (server on CPU 0, smtp-source on CPU 1)`);
    for (const size of SIZES) {
      const results = new Map<string, Array<{ accepted: number; stored: number; cores: number }>>();
      for (const t of [nexus, postfix]) {
        spawnSync("taskset", smtpSourceArgs(t, WARMUP, size.bytes), { timeout: 300_000 });
        results.set(t.name, []);
      }
      for (let run = 0; run < RUNS; run++) {
        const order = run % 2 === 0 ? [nexus, postfix] : [postfix, nexus];
        for (const t of order) results.get(t.name)?.push(await load(t, size.n, size.bytes));
      }
      const med = (name: string, k: "accepted" | "stored" | "cores"): number => median((results.get(name) ?? []).map((x) => x[k]));
      for (const t of [nexus, postfix]) {
        const cmd = `taskset ${smtpSourceArgs(t, size.n, size.bytes).join(" ")}`;
        line(`${t.name} ${size.label}: stored in Maildir, msg/s`, `${med(t.name, "stored").toFixed(0)} (${med(t.name, "cores").toFixed(2)} cores)`, cmd);
        line(`${t.name} ${size.label}: 250 replies, msg/s`, med(t.name, "accepted").toFixed(0), cmd);
      }
      const ratio = med("nexus", "stored") / med("postfix", "stored");
      const perCore = ratio * (med("postfix", "cores") / med("nexus", "cores"));
      line(`ratio nexus/postfix ${size.label} (stored)`, `${ratio.toFixed(2)}x (${perCore.toFixed(2)}x per core)`, "same run, same load");
    }
  } finally {
    nexus.stop();
    postfix.stop();
    await sleep(500);
    work.cleanup();
  }
}

/** One session sending numbered messages until the server goes away. */
async function crashSender(port: number, conn: number, onAck: (id: string) => void): Promise<void> {
  const c = await RawSmtp.connect(port).catch(() => undefined);
  if (!c) return;
  try {
    if (!(await c.reply()).startsWith("220")) return;
    await c.cmd("EHLO load.example");
    const pad = `${"x".repeat(62)}\r\n`.repeat(16);
    for (let i = 0; ; i++) {
      const id = `${conn}-${i}`;
      if (!(await c.cmd("MAIL FROM:<load@sender.example>")).startsWith("250")) return;
      if (!(await c.cmd("RCPT TO:<sink@bench.test>")).startsWith("250")) return;
      if (!(await c.cmd("DATA")).startsWith("354")) return;
      if (!(await c.cmd(`Subject: crash\r\nX-Seq: ${id}\r\n\r\n${pad}end ${id}\r\n.`)).startsWith("250")) return;
      onAck(id);
    }
  } catch {
    return;
  } finally {
    c.close();
  }
}

async function crash(): Promise<void> {
  const work = tempDir("mail-crash");
  const s = await startNexus(work.path);
  try {
    const acked = new Set<string>();
    let killedAt = 0;
    await Promise.all(
      Array.from({ length: SESSIONS }, (_, i) =>
        crashSender(s.port, i, (id) => {
          acked.add(id);
          if (acked.size === CRASH_ACKS) {
            killedAt = acked.size;
            s.child.kill("SIGKILL");
          }
        }),
      ),
    );
    const dir = join(work.path, "mail", "bench", "sink@bench.test", "Maildir", "new");
    const stored = new Set<string>();
    let partial = 0;
    for (const name of readdirSync(dir)) {
      const text = readFileSync(join(dir, name), "latin1");
      const id = /\nX-Seq: (\S+)\n/.exec(text)?.[1];
      if (id === undefined || !text.endsWith(`end ${id}\n`) || Number(/,S=(\d+)/.exec(name)?.[1]) !== statSync(join(dir, name)).size) partial++;
      else stored.add(id);
    }
    const lost = [...acked].filter((id) => !stored.has(id)).length;
    line("crash: 250 replies before/around SIGKILL", `${acked.size} (kill at ${killedAt})`, `${SESSIONS} sessions, 1 KiB, kill -9 after ${CRASH_ACKS} acks`);
    line("crash: acknowledged but missing from new/", String(lost), "scan of new/ after the kill");
    line("crash: partial files in new/", String(partial), "X-Seq header, end marker and S= checked");
    line("crash: stored but not acknowledged (reply lost)", String(stored.size - (acked.size - lost)), "allowed: the sender retries");
  } finally {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
    work.cleanup();
  }
}

await throughput();
if (!args.includes("--no-crash")) await crash();
