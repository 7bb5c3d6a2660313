/**
 * A running stack (DNS and mail services, every API module) with IMVUs holding DNS records,
 * a mailbox with mail, revenue and a volume, and the CLI as a child process with its own keyring
 * and trust directory: what the exit tests drive.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { installationFabric, slug } from "../../src/services/compute/names.ts";
import { maildirPath, maildirRoot } from "../../src/services/mail/directory.ts";
import { dnsService } from "../../src/platform/services/dns.ts";
import { createMailService } from "../../src/platform/services/mail.ts";
import { computeOf, createComputeService } from "../../src/platform/services/compute.ts";
import { gatewayService } from "../../src/platform/services/gateway.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { TestDns } from "../mail/support-smtp.ts";

/** A CLI run. */
export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const dirs: string[] = [];

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Removes every temporary directory. */
export function cleanup(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Runs the CLI as a child process. */
export function cli(args: readonly string[], env: Record<string, string>, input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const full: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete full.NEXUS_DATABASE_URL;
    delete full.NEXUS_VERIFIER_KEY;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], { env: full, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** A started installation with its ports. */
export interface Installation {
  readonly home: string;
  readonly stack: Stack;
  readonly dnsPort: number;
  readonly imapPort: number;
  readonly smtpPort: number;
  readonly gatewayPort: number;
  /** Stops the stack, then removes its containers, networks and volumes. */
  stop(): Promise<void>;
}

/**
 * Starts a stack with the DNS and mail services on free ports; with `full`, also compute (real
 * podman, the installation's own fabric) and the gateway, as `nexus up` does.
 */
export async function startInstallation(prefix: string, opts: { full?: boolean } = {}): Promise<Installation> {
  // The ports are picked free, then bound: a test file running beside this one can take one in
  // between. That start fails whole (EADDRINUSE), so it is tried again with other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(prefix, opts);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof Error && e.message.includes("EADDRINUSE"))) throw e;
    }
  }
}

/** Starts several installations; when one fails, those started are stopped before the error is thrown. */
export async function startInstallations(specs: readonly { prefix: string; full?: boolean }[]): Promise<Installation[]> {
  const started = await Promise.allSettled(specs.map((s) => startInstallation(s.prefix, s.full === undefined ? {} : { full: s.full })));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed === undefined) return started.map((r) => (r as PromiseFulfilledResult<Installation>).value);
  await Promise.all(started.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
  throw failed.reason;
}

async function startOnce(prefix: string, opts: { full?: boolean }): Promise<Installation> {
  const home = join(tempDir(prefix), "home");
  const ports = { ...DEFAULT_PORTS, gatewayTls: await freePort(), api: await freePort(), dns: await freePort(), resolver: await freePort(), smtp: await freePort(), submission: await freePort(), imap: await freePort(), gateway: await freePort() };
  const mail = createMailService({ resolver: new TestDns().resolver(), hostname: "mail.nexus.test" });
  const modules = opts.full ? [dnsService, createComputeService({ meterIntervalMs: 2000, debounceMs: 30 }), gatewayService, mail] : [dnsService, mail];
  const stack = await startStack({ home, config: { host: "127.0.0.1", ports, public: false }, modules, log: () => {} });
  return {
    home,
    stack,
    dnsPort: ports.dns,
    imapPort: ports.imap,
    smtpPort: ports.smtp,
    gatewayPort: ports.gateway,
    async stop() {
      const fabric = computeOf(stack.services)?.fabric;
      await stack.stop();
      await fabric?.teardown({ volumes: true });
    },
  };
}

/** A person's CLI environment (own keyring and trust directory). */
export function person(api: string, name: string): Record<string, string> {
  const d = tempDir(`nexus-${name}-`);
  return { NEXUS_API: api, NEXUS_KEYRING: join(d, "keyring"), NEXUS_TRUST_DIR: join(d, "trust") };
}

/** Delivers messages into a mailbox's Maildir as the mail service stores them (new/, LF line ends). */
export function deliver(home: string, imvu: string, address: string, messages: readonly string[]): void {
  const md = maildirPath(maildirRoot(home), imvu, address);
  for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(md, sub), { recursive: true });
  messages.forEach((m, i) => {
    const name = `${1_700_000_000 + i}.M${i}P1Q${i}.test,S=${Buffer.byteLength(m)}`;
    writeFileSync(join(md, "new", name), m);
  });
}

/** Puts files into an IMVU's volume directory (dir mode), as its workloads would have written them. */
export function fillVolume(home: string, imvu: string, files: Readonly<Record<string, string | Uint8Array>>): void {
  const root = join(home, "compute", installationFabric(home), "volumes", slug(imvu), "data");
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, ".."), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  chmodSync(root, 0o755);
}

/** A small RFC 5322 message. */
export function message(n: number, to: string): string {
  return [
    `From: sender${n}@example.org`,
    `To: ${to}`,
    `Subject: message ${n}`,
    `Date: Wed, 02 Dec 2026 10:0${n}:00 +0000`,
    `Message-ID: <m${n}@example.org>`,
    "",
    `Body of message ${n}.`,
    "From the start of a line, this must be quoted in the mbox.",
    "",
  ].join("\n");
}

/** `dig +short` of NAME TYPE at 127.0.0.1:port, its lines sorted (order-free comparison). */
export function dig(port: number, name: string, type: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn("dig", ["+short", "+time=2", "+tries=2", "-p", String(port), "@127.0.0.1", name, type]);
    let text = "";
    c.stdout.on("data", (d: Buffer) => (text += d.toString()));
    c.on("error", reject);
    // "close", not "exit": exit can come before the output is read (an empty answer under load).
    c.on("close", () => resolve(text.trim().split("\n").sort().join("\n")));
  });
}
