/** Helpers of the DNS tests: dig as the oracle, temp dirs, child processes (nsd, knotd) cleaned up. */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ZoneInput } from "../../src/services/dns/zone.ts";

/** dig's answer, parsed from its default output. */
export interface DigResult {
  readonly status: string;
  readonly flags: readonly string[];
  readonly answer: readonly string[];
  readonly authority: readonly string[];
  readonly additional: readonly string[];
  readonly raw: string;
}

/** Runs a command, resolving with stdout (and never rejecting on exit status). */
export function run(cmd: string, args: readonly string[], timeoutMs = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Normalises a record line of dig (single spaces). */
function norm(l: string): string {
  return l.trim().split(/\s+/).join(" ");
}

/** Parses dig's default output. */
export function parseDig(out: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? "NONE";
  const flags = (/;; flags: ([a-z ]*);/.exec(out)?.[1] ?? "").trim().split(/\s+/).filter((f) => f !== "");
  const section = (name: string): string[] => {
    const i = out.indexOf(`;; ${name} SECTION:\n`);
    if (i < 0) return [];
    const rest = out.slice(i).split("\n").slice(1);
    const lines: string[] = [];
    for (const l of rest) {
      if (l.trim() === "" || l.startsWith(";;")) break;
      lines.push(norm(l));
    }
    return lines;
  };
  return { status, flags, answer: section("ANSWER"), authority: section("AUTHORITY"), additional: section("ADDITIONAL"), raw: out };
}

/** Asks with dig at 127.0.0.1:port; `extra` are dig options (+tcp, +bufsize=...). */
export async function dig(port: number, name: string, type: string, ...extra: string[]): Promise<DigResult> {
  const r = await run("dig", [`@127.0.0.1`, "-p", String(port), name, type, "+tries=1", "+time=3", "+nocookie", ...extra]);
  return parseDig(r.stdout);
}

/** A scratch directory removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `nexus-dns-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A port free for both UDP and TCP on 127.0.0.1 (chosen at run time). */
export async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => {
        const a = s.address();
        const p = typeof a === "object" && a !== null ? a.port : 0;
        s.close(() => resolve(p));
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      const u = createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error("no free port");
}

/** Starts a child process; `stop()` kills it (by its own pid) and waits for its exit. */
export function startChild(cmd: string, args: readonly string[]): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(cmd, [...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once("exit", () => resolve());
  });
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A small zone touching every record type and edge case the tests ask about. */
export function exampleZone(serial = 1, origin = "example.test."): ZoneInput {
  return {
    origin,
    ttl: 3600,
    soa: { mname: "ns1", rname: "hostmaster", serial, refresh: 3600, retry: 600, expire: 604800, minimum: 300 },
    records: [
      { name: "@", data: { type: "NS", host: "ns1" } },
      { name: "@", data: { type: "NS", host: "ns2" } },
      { name: "ns1", data: { type: "A", address: "192.0.2.1" } },
      { name: "ns2", data: { type: "AAAA", address: "2001:db8::2" } },
      { name: "@", data: { type: "A", address: "192.0.2.10" } },
      { name: "@", data: { type: "MX", preference: 10, exchange: "mail" } },
      { name: "@", data: { type: "TXT", text: ["v=spf1 mx -all"] } },
      { name: "@", data: { type: "CAA", flags: 0, tag: "issue", value: "letsencrypt.org" } },
      { name: "mail", data: { type: "A", address: "192.0.2.25" } },
      { name: "www", ttl: 300, data: { type: "A", address: "192.0.2.80" } },
      { name: "www", ttl: 300, data: { type: "AAAA", address: "2001:db8::80" } },
      { name: "alias", data: { type: "CNAME", target: "www" } },
      { name: "alias2", data: { type: "CNAME", target: "alias" } },
      { name: "dangling", data: { type: "CNAME", target: "nowhere" } },
      { name: "outside", data: { type: "CNAME", target: "www.example.org." } },
      { name: "_sip._tcp", data: { type: "SRV", priority: 10, weight: 5, port: 5060, target: "sip" } },
      { name: "sip", data: { type: "A", address: "192.0.2.50" } },
      { name: "10.2.0.192.in-addr", data: { type: "PTR", target: "www" } },
      { name: "*.wild", data: { type: "A", address: "192.0.2.99" } },
      { name: "*.wild", data: { type: "TXT", text: ["wildcard"] } },
      { name: "deep.empty", data: { type: "A", address: "192.0.2.77" } },
      { name: "sub", data: { type: "NS", host: "ns.sub" } },
      { name: "ns.sub", data: { type: "A", address: "192.0.2.53" } },
      { name: "big", data: { type: "TXT", text: Array.from({ length: 5 }, (_, i) => `${i}`.padEnd(200, "x")) } },
    ],
  };
}

/** A TSIG key as the secondaries' configurations name it. */
export interface SecondaryKey {
  readonly name: string;
  readonly secret: string;
}

/** Starts NSD as a TSIG secondary of `zones` (absolute names) pulling from 127.0.0.1:`primary`, listening on `port`. */
export function startNsdSecondary(dir: string, port: number, primary: number, zones: readonly string[], key: SecondaryKey): ReturnType<typeof startChild> {
  mkdirSync(join(dir, "zones"), { recursive: true });
  const conf = join(dir, "nsd.conf");
  const zoneLines = zones.flatMap((z) => [
    "zone:",
    `  name: "${z}"`,
    `  zonefile: "${z}zone"`,
    `  allow-notify: 127.0.0.1 ${key.name}`,
    `  request-xfr: 127.0.0.1@${primary} ${key.name}`,
  ]);
  writeFileSync(
    conf,
    [
      "server:",
      `  ip-address: 127.0.0.1`,
      `  port: ${port}`,
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: "${dir}/zones"`,
      '  database: ""',
      `  zonelistfile: "${dir}/zone.list"`,
      `  xfrdfile: "${dir}/xfrd.state"`,
      `  xfrdir: "${dir}"`,
      `  pidfile: "${dir}/nsd.pid"`,
      "  server-count: 1",
      "  verbosity: 2",
      "  rrl-ratelimit: 0",
      "  xfrd-reload-timeout: 0",
      "  minimal-responses: yes",
      "remote-control:",
      "  control-enable: no",
      "key:",
      `  name: "${key.name}"`,
      "  algorithm: hmac-sha256",
      `  secret: "${key.secret}"`,
      ...zoneLines,
      "",
    ].join("\n"),
  );
  return startChild("nsd", ["-d", "-c", conf]);
}

/** Starts Knot as a TSIG secondary of `zones` (absolute names) pulling from 127.0.0.1:`primary`, listening on `port`. */
export function startKnotSecondary(dir: string, port: number, primary: number, zones: readonly string[], key: SecondaryKey): ReturnType<typeof startChild> {
  const conf = join(dir, "knot.conf");
  writeFileSync(
    conf,
    [
      "server:",
      `  rundir: "${dir}"`,
      `  listen: 127.0.0.1@${port}`,
      "log:",
      "  - target: stderr",
      "    any: info",
      "database:",
      `  storage: "${dir}/db"`,
      "key:",
      `  - id: ${key.name}`,
      "    algorithm: hmac-sha256",
      `    secret: ${key.secret}`,
      "remote:",
      "  - id: primary",
      `    address: 127.0.0.1@${primary}`,
      `    key: ${key.name}`,
      "acl:",
      "  - id: notify-from-primary",
      "    address: 127.0.0.1",
      `    key: ${key.name}`,
      "    action: notify",
      "template:",
      "  - id: default",
      `    storage: "${dir}"`,
      '    file: "%s.zone"',
      "zone:",
      ...zones.flatMap((z) => [`  - domain: ${z}`, "    master: primary", "    acl: notify-from-primary"]),
      "",
    ].join("\n"),
  );
  return startChild("knotd", ["-c", conf]);
}
