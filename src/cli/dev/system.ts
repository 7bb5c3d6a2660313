/** Installing and starting the machine-level things the stack and its tests use (Debian). */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Debian packages the test suite drives as independent oracles and peers. */
export const TEST_PACKAGES: readonly string[] = [
  "postgresql",
  "dnsutils",
  "bind9-utils",
  "nsd",
  "knot",
  "dnsperf",
  "swaks",
  "python3-dkim",
  // mail (smtp): swaks needs Net::SSLeay for STARTTLS; a private Postfix is the remote MX and the
  // benchmark's peer, and its smtp-source is the benchmark's load.
  "libnet-ssleay-perl",
  "postfix",
  // compute: podman with runc (crun fails on hybrid cgroups), catatonit for --init, iptables for the
  // isolation chain, e2fsprogs for loop-mounted volumes, busybox-static for the test root file systems.
  "podman",
  "runc",
  "catatonit",
  "iptables",
  "e2fsprogs",
  "busybox-static",
  // mail (imap): Dovecot serves a copy of a Maildir as the oracle the IMAP server is compared with.
  "dovecot-imapd",
  // net: nginx is the gateway benchmark's peer, wrk its load; curl is a second HTTP client in the tests.
  "nginx",
  "wrk",
  "curl",
  // console: the tests drive the built web console in Debian's Chromium (playwright-core, headless).
  "chromium",
  // dns: the batched UDP addon (src/services/dns/native/udp_batch.c) is built with the C compiler.
  "gcc",
  "libc6-dev",
  // imvu exit: Debian's age (the Go reference implementation) decrypts the bundle's secrets in the tests.
  "age",
];

/** True when the process runs as root (so apt-get and runuser are usable). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** The subset of `names` that dpkg does not report as installed. */
export function missingPackages(names: readonly string[]): string[] {
  return names.filter((name) => {
    const r = spawnSync("dpkg-query", ["-W", "-f=${Status}", name], { encoding: "utf8" });
    return r.status !== 0 || !r.stdout.includes("install ok installed");
  });
}

/** Installs missing Debian packages when root; returns what is still missing afterwards. */
export function ensurePackages(names: readonly string[], log: (s: string) => void): string[] {
  const missing = missingPackages(names);
  if (missing.length === 0) return [];
  if (!isRoot() || !existsSync("/usr/bin/apt-get")) return missing;
  log(`installing Debian packages: ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Postfix asks how to configure the system MTA; the tests run private instances of their own.
  if (missing.includes("postfix")) {
    spawnSync("debconf-set-selections", [], { input: "postfix postfix/main_mailer_type select No configuration\n", stdio: ["pipe", "ignore", "ignore"] });
  }
  spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "ignore", "inherit"], env });
  spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], {
    stdio: ["ignore", "ignore", "inherit"],
    env,
  });
  // Debian starts services it installs; the project runs its own instances on other ports.
  for (const svc of ["nsd", "knot", "postgresql", "postfix", "nginx"]) spawnSync("systemctl", ["disable", "--now", svc], { stdio: "ignore" });
  return missingPackages(names);
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A throwaway PostgreSQL cluster started from Debian's binaries. */
export interface TempPostgres {
  readonly url: string;
  stop(): void;
}

function pgBinDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "initdb")));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], "bin");
}

/** Starts a private PostgreSQL on a free loopback port (as user postgres when root). */
export async function startTempPostgres(): Promise<TempPostgres | undefined> {
  const bin = pgBinDir();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "nexus-pg-"));
  const port = await freePort();
  const asUser = (cmd: string, args: string[]): void => {
    const [file, argv] = isRoot() ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
    execFileSync(file, argv, { stdio: ["ignore", "ignore", "pipe"] });
  };
  if (isRoot()) {
    const pw = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
    const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
    chownSync(dir, Number(pw.stdout.trim()), Number(gid.stdout.trim()));
  }
  const data = join(dir, "data");
  asUser(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  asUser(join(bin, "pg_ctl"), [
    "-D", data, "-l", join(dir, "log"), "-w", "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200`, "start",
  ]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        asUser(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
