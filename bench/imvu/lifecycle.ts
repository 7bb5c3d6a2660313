/**
 * Lifecycle benchmark (BENCHMARKING.md; issue 8 "Benchmark"): not a test. Two full installations
 * (DNS, compute under podman, gateway, mail, API) on free ports in temporary data directories,
 * driven by the real CLI as a creator would:
 *   node bench/imvu/lifecycle.ts [--creates N] [--mails N] [--mib N]
 * - create: wall time of `nexus imvu create --name cK` (identity, IMVU and zone, mailbox, welcome
 *   workload, public route, and waiting until DNS, the workload and the gateway answer), median
 *   of --creates (default 5) new IMVUs.
 * - exit: an IMVU holding --mails mails (default 10,000, ~2 KiB each) and --mib MiB of volume data
 *   (default 1024, 16 MiB files); wall time of `nexus imvu exit` (request, bundle written and
 *   streamed, unpacked, verified, countersigned), `nexus imvu verify-export` and `nexus imvu
 *   import` on the second installation; beside the peer in the same run: `tar -cf - <maildir>
 *   <volume> | sha256sum` over the same data.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { SERVICE_MODULES } from "../../src/platform/services/index.ts";
import { computeOf } from "../../src/platform/services/compute.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { installationFabric, slug } from "../../src/services/compute/names.ts";
import { maildirPath, maildirRoot } from "../../src/services/mail/directory.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const CREATES = flag("--creates", 5);
const MAILS = flag("--mails", 10_000);
const MIB = flag("--mib", 1024);
const FILE_MIB = 16;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(56)} ${value.padStart(10)}   [${cmd}]`);
const root = join(import.meta.dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "nexus-life-bench-"));
// As ./nexus runs the CLI: with its compile cache.
const env = { ...process.env, NEXUS_KEYRING: join(work, "keyring"), NEXUS_TRUST_DIR: join(work, "trust"), NODE_COMPILE_CACHE: join(root, ".runtime", "compile-cache") };
delete (env as NodeJS.ProcessEnv).NEXUS_VERIFIER_KEY;

/** Runs the CLI; returns its wall time in ms (throws on a non-zero exit). */
function cli(api: string, argv: readonly string[], input = ""): Promise<number> {
  const t = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(root, "src/cli/main.ts"), ...argv], { env: { ...env, NEXUS_API: api }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    c.stdout.on("data", (d: Buffer) => (out += d.toString()));
    c.stderr.on("data", (d: Buffer) => (out += d.toString()));
    c.on("close", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t) / 1e6) : reject(new Error(`${argv.join(" ")}: exit ${code}\n${out}`))));
    c.stdin.end(input);
  });
}

async function start(name: string): Promise<{ stack: Stack; home: string }> {
  const home = join(work, name);
  const ports = { ...DEFAULT_PORTS };
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  const stack = await startStack({ home, config: { host: "127.0.0.1", ports, public: false }, modules: SERVICE_MODULES, log: () => {} });
  return { stack, home };
}

// Leftover containers and networks of other installations slow every podman call of the create
// path (docs/performance.md, "IMVU lifecycle"): say so, since the figures then mean less.
const leftovers = execFileSync("podman", ["ps", "-aq"], { encoding: "utf8" }).split("\n").filter(Boolean).length;
if (leftovers > 0) console.log(`note: ${leftovers} containers of other installations exist; podman calls are slower with them (podman ps -a)`);
const a = await start("a");
const b = await start("b");
try {
  const creates: number[] = [];
  for (let i = 0; i < CREATES; i++) creates.push(await cli(a.stack.apiUrl, ["imvu", "create", "--name", `c${i}`]));
  console.log(`imvu create, one command to every part answering (ms; ${CREATES} new IMVUs on one installation)`);
  line("first (also creates and registers the identity)", creates[0]?.toFixed(0) ?? "", "nexus imvu create --name c0");
  line("median", median(creates).toFixed(0), "aim: under 5,000 ms");
  line("max", Math.max(...creates).toFixed(0), "");

  await cli(a.stack.apiUrl, ["imvu", "create", "--name", "stage", "--disk", `${Math.ceil((MIB * 1.3) / 1024) + 1}G`, "--profile", "medium"]);
  const address = "creator@stage.nexus.test";
  const md = maildirPath(maildirRoot(a.home), "stage", address);
  for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(md, sub), { recursive: true });
  const body = `${"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(32)}\n`;
  for (let i = 0; i < MAILS; i++) {
    const m = `From: s${i}@example.org\nTo: ${address}\nSubject: message ${i}\nMessage-ID: <m${i}@example.org>\n\n${body}`;
    writeFileSync(join(md, "cur", `${1_700_000_000 + i}.M${i}P1Q${i}.bench,S=${m.length}:2,S`), m);
  }
  const vol = join(a.home, "compute", installationFabric(a.home), "volumes", slug("stage"), "data");
  for (let i = 0; i < Math.ceil(MIB / FILE_MIB); i++) writeFileSync(join(vol, `blob-${i}.bin`), randomBytes(Math.min(FILE_MIB, MIB - i * FILE_MIB) << 20));
  execFileSync("sync");
  const pass = join(work, "pass");
  writeFileSync(pass, "benchmark passphrase\n", { mode: 0o600 });

  const t0 = process.hrtime.bigint();
  execFileSync("sh", ["-c", `tar -cf - ${md} ${vol} 2>/dev/null | sha256sum > /dev/null`]);
  const peer = Number(process.hrtime.bigint() - t0) / 1e6;
  const out = join(work, "bundle");
  const exit = await cli(a.stack.apiUrl, ["imvu", "exit", "--imvu", "stage", "--out", out, "--passphrase-file", pass]);
  const verify = await cli(a.stack.apiUrl, ["imvu", "verify-export", out, "--verifier-key", a.stack.platform.verifierKey]);
  const imp = await cli(b.stack.apiUrl, ["imvu", "import", out, "--verifier-key", a.stack.platform.verifierKey, "--passphrase-file", pass]);
  console.log(`\nexit of an IMVU with ${MAILS} mails and ${MIB} MiB of volume data (ms)`);
  line("peer: tar | sha256sum of the Maildir and the volume", peer.toFixed(0), "tar -cf - MAILDIR VOLUME | sha256sum");
  line("nexus imvu exit (request, bundle, download, verify, countersign)", exit.toFixed(0), `${(exit / peer).toFixed(2)}x the peer; aim: within 2x`);
  line("nexus imvu verify-export", verify.toFixed(0), `${(verify / peer).toFixed(2)}x the peer`);
  line("nexus imvu import (second installation)", imp.toFixed(0), `${(imp / peer).toFixed(2)}x the peer`);
  line("exit + verify-export + import", (exit + verify + imp).toFixed(0), `${((exit + verify + imp) / peer).toFixed(2)}x the peer`);
} finally {
  for (const s of [a, b]) {
    const fabric = computeOf(s.stack.services)?.fabric;
    await s.stack.stop();
    await fabric?.teardown({ volumes: true }).catch(() => undefined);
  }
  rmSync(work, { recursive: true, force: true });
}
