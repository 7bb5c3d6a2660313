/**
 * IMAP FETCH benchmark (BENCHMARKING.md): not a test. 10,000 messages delivered into a Maildir the
 * way the SMTP side delivers them; this server and Dovecot (a private instance on a copy of the
 * same Maildir) each answer, in the same run, over one loopback connection:
 *   1. `FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)` — what a client's message list needs
 *   2. `FETCH 1:* BODY.PEEK[]`                   — every message in full
 * The first pass is cold (no FETCH cache in this server, no index cache in Dovecot; the page cache
 * is warm for both), then --runs warm passes (median). Servers are pinned to CPU 0 and the client
 * to CPU 1; each figure comes with the server's own CPU time (utime + stime from /proc).
 *   node bench/mail/imap-fetch.ts [--messages 10000] [--runs 3]
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { maildirContent } from "../../src/services/mail/maildir-deliver.ts";
import { UniqueNames } from "../../src/services/mail/maildir/index.ts";
import { RawClient, hasDovecot, mailFixture, multipartMessage, plainMessage, startDovecot } from "../../test/mail/support-imap.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MESSAGES = flag("--messages", 10_000);
const RUNS = flag("--runs", 3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(62)} ${value.padStart(26)}   [${cmd}]`);
const TICK_MS = 1000 / Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim() || 100);

function pin(pid: number, cpu: number): void {
  spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" });
}

/** utime + stime of `pids` and all their descendants, in ms. */
function cpuMs(roots: readonly number[]): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(e), Number(f[1]));
      ticks.set(Number(e), Number(f[11]) + Number(f[12]));
    } catch {
      // the process ended meanwhile
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, n = 0; p !== undefined && p > 1 && n < 64; p = parent.get(p), n++) if (roots.includes(p)) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, t] of ticks) if (inTree(pid)) sum += t;
  return sum * TICK_MS;
}

async function startOurs(maildir: string): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const script = join(fileURLToPath(new URL(".", import.meta.url)), "imap-server.ts");
  const child: ChildProcess = spawn("taskset", ["-c", "0", process.execPath, "--disable-warning=ExperimentalWarning", script, maildir], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m?.[1]) resolve(Number(m[1]));
    });
    child.once("exit", (c) => reject(new Error(`server exited ${c}`)));
  });
  return {
    port,
    pid: child.pid ?? 0,
    stop: () =>
      new Promise((r) => {
        child.once("exit", () => r());
        child.kill("SIGTERM");
      }),
  };
}

interface Timed {
  readonly ms: number;
  readonly bytes: number;
  readonly cpuMs: number;
}

/** A lean client: counts bytes and FETCH responses without keeping them (the client must not be the limit). */
class LeanClient {
  readonly #sock: Socket;
  #tail = "";
  #onData: ((chunk: Buffer) => void) | undefined;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.on("data", (d: Buffer) => this.#onData?.(d));
  }

  static async open(port: number, user: string, pass: string): Promise<LeanClient> {
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(s));
      s.once("error", reject);
    });
    const c = new LeanClient(sock);
    await c.run("", /\r\n$/);
    await c.run(`l LOGIN ${user} ${pass}\r\n`, /l OK[^\r]*\r\n$/);
    await c.run("e EXAMINE INBOX\r\n", /e OK[^\r]*\r\n$/);
    return c;
  }

  /** Sends `cmd` and resolves when the received tail matches `end`; returns bytes and "* n FETCH" count. */
  run(cmd: string, end: RegExp): Promise<{ bytes: number; fetches: number }> {
    return new Promise((resolve) => {
      let bytes = 0;
      let fetches = 0;
      const marker = Buffer.from("\r\n* ");
      this.#tail = "";
      let prev = Buffer.alloc(0);
      this.#onData = (chunk) => {
        if (bytes === 0 && chunk[0] === 0x2a) fetches += 1;
        bytes += chunk.length;
        // Search across the chunk boundary too: the marker may be split between two reads.
        const view = prev.length === 0 ? chunk : Buffer.concat([prev, chunk.subarray(0, Math.min(chunk.length, 8))]);
        if (view !== chunk) for (let i = view.indexOf(marker); i >= 0 && i < prev.length; i = view.indexOf(marker, i + 1)) fetches += 1;
        for (let i = chunk.indexOf(marker); i >= 0; i = chunk.indexOf(marker, i + 1)) fetches += 1;
        prev = Buffer.from(chunk.subarray(Math.max(0, chunk.length - 3)));
        this.#tail = (this.#tail + chunk.toString("latin1", Math.max(0, chunk.length - 4096))).slice(-4096);
        if (end.test(this.#tail)) {
          this.#onData = undefined;
          resolve({ bytes, fetches });
        }
      };
      if (cmd !== "") this.#sock.write(cmd);
    });
  }

  close(): void {
    this.#sock.destroy();
  }
}

async function timedFetch(c: LeanClient, tag: string, items: string, pids: readonly number[]): Promise<Timed> {
  const cpu0 = cpuMs(pids);
  const t0 = performance.now();
  const r = await c.run(`${tag} FETCH 1:* ${items}\r\n`, new RegExp(`\r\n${tag} (OK|NO|BAD)[^\r\n]*\r\n$`));
  const ms = performance.now() - t0;
  if (r.fetches < MESSAGES) throw new Error(`expected ${MESSAGES} FETCH responses, counted ${r.fetches}`);
  return { ms, bytes: r.bytes, cpuMs: cpuMs(pids) - cpu0 };
}

/** Writes messages as the SMTP side names and stores them (LF, S= and W=), without its fsyncs. */
function bulkDeliver(maildir: string, messages: readonly Buffer[]): void {
  const names = new UniqueNames("mx.bench");
  for (const m of messages) {
    const content = maildirContent([m]);
    const name = names.next(content.size, content.vsize);
    writeFileSync(join(maildir, "tmp", name), Buffer.concat(content.parts as Buffer[]));
    renameSync(join(maildir, "tmp", name), join(maildir, "new", name));
  }
}

/** A plain message of about 2 KB with varied text. */
function benchPlain(i: number): Buffer {
  const words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod"];
  const body: string[] = [];
  for (let l = 0; l < 25 + (i % 15); l++) body.push(Array.from({ length: 10 }, (_, w) => words[(i + l * 7 + w) % words.length]).join(" "));
  const m = plainMessage(i).toString("latin1");
  return Buffer.from(m.replace(/\r\n\r\n[\s\S]*$/, `\r\n\r\n${body.join("\r\n")}\r\n`), "latin1");
}

function report(who: string, what: string, cold: Timed, warm: Timed[], cmd: string): { cold: number; warm: number } {
  const w = median(warm.map((x) => x.ms));
  const cpu = median(warm.map((x) => x.cpuMs));
  line(`${who}: ${what}, cold`, `${cold.ms.toFixed(0)} ms ${((MESSAGES * 1000) / cold.ms).toFixed(0)} msg/s`, cmd);
  line(`${who}: ${what}, warm (median of ${warm.length})`, `${w.toFixed(0)} ms ${((MESSAGES * 1000) / w).toFixed(0)} msg/s`, cmd);
  line(`${who}: ${what}, server CPU warm`, `${cpu.toFixed(0)} ms (${((cpu / w) * 100).toFixed(0)}% core)`, `${cold.bytes} bytes sent; CPU in ${TICK_MS} ms ticks`);
  return { cold: cold.ms, warm: w };
}

async function main(): Promise<void> {
  if (!hasDovecot()) throw new Error("dovecot-imapd is needed (apt-get install dovecot-imapd, or ./nexus test as root)");
  pin(process.pid, 1);
  const fx = await mailFixture();
  try {
    const batch: Buffer[] = [];
    for (let i = 0; i < MESSAGES; i++) batch.push(i % 10 === 0 ? multipartMessage(i) : benchPlain(i));
    bulkDeliver(fx.alice.maildirPath, batch);
    // A first SELECT of each server moves new/ to cur/ and writes the uidlist; copy after that.
    const prep = await startOurs(fx.alice.maildirPath);
    const p = await RawClient.connect(prep.port);
    await p.waitFor((s) => s.includes("\r\n"));
    await p.command("l", "LOGIN bench bench");
    await p.command("s", "SELECT INBOX");
    p.close();
    await prep.stop();
    const dv = await startDovecot(fx.alice.maildirPath);
    const ours = await startOurs(fx.alice.maildirPath);
    try {
      const masterPid = Number(readFileSync(join(dv.maildir, "..", "run", "master.pid"), "utf8").trim());
      pin(masterPid, 0);
      console.log(`# ${MESSAGES} messages (10% multipart), ${batch.reduce((n, b) => n + b.length, 0)} bytes; servers on CPU 0, client on CPU 1`);
      const results: Record<string, { cold: number; warm: number }> = {};
      for (const [who, port, user, pass, pids] of [
        ["nexus", ours.port, "bench", "bench", [ours.pid]],
        ["dovecot 2.3", dv.port, "x", "dovecot-pw", [masterPid]],
      ] as const) {
        const c = await LeanClient.open(port, user, pass);
        for (const [what, items] of [
          ["FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)", "(FLAGS RFC822.SIZE ENVELOPE)"],
          ["FETCH 1:* BODY.PEEK[]", "BODY.PEEK[]"],
        ] as const) {
          const cold = await timedFetch(c, "c", items, pids);
          const warm: Timed[] = [];
          for (let r = 0; r < RUNS; r++) warm.push(await timedFetch(c, `w${r}`, items, pids));
          results[`${who}|${what}`] = report(who, what, cold, warm, `${what} over one loopback connection`);
        }
        c.close();
      }
      for (const what of ["FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)", "FETCH 1:* BODY.PEEK[]"]) {
        const a = results[`nexus|${what}`];
        const b = results[`dovecot 2.3|${what}`];
        if (a === undefined || b === undefined) continue;
        line(`ratio nexus / dovecot throughput, ${what}, cold`, `${(b.cold / a.cold).toFixed(2)}x`, "same run, same Maildir");
        line(`ratio nexus / dovecot throughput, ${what}, warm`, `${(b.warm / a.warm).toFixed(2)}x`, "same run, same Maildir");
      }
    } finally {
      await ours.stop();
      await dv.stop();
    }
  } finally {
    fx.cleanup();
    rmSync(join(fx.dataDir), { recursive: true, force: true });
  }
}

await main();
