/**
 * `nexus up`: opens (on first run: creates) the installation in $NEXUS_HOME (default ./.nexus),
 * starts the API and every service on the embedded defaults, prints where each listens, and stops
 * cleanly on Ctrl-C / SIGTERM. As root on Debian it first installs the packages the services use
 * (podman and runc for compute) when they are missing.
 */
import type { Command } from "commander";
import { resolve } from "node:path";
import { commonErrors } from "../../core/common-errors.ts";
import { DEFAULT_PORTS, PUBLIC_PORTS, type StackPorts } from "../../platform/service.ts";
import { startStack } from "../../platform/stack.ts";
import { ensurePackages } from "../dev/system.ts";
import { ensureConsoleBuilt } from "../../../console/build.ts";
import { action } from "../output.ts";

/** Debian packages the running stack uses (compute: podman with runc, docs/compute.md; DNS: gcc for the batched UDP addon, docs/dns.md). */
export const UP_PACKAGES: readonly string[] = ["podman", "runc", "catatonit", "iptables", "e2fsprogs", "gcc", "libc6-dev"];

interface UpOptions {
  readonly home?: string;
  readonly host: string;
  readonly public?: boolean;
  readonly install: boolean;
  readonly baseDomain?: string;
  readonly port?: string[];
}

const PORT_NAMES = Object.keys(DEFAULT_PORTS) as (keyof StackPorts)[];

/** Parses `--port name=N` overrides onto the defaults. */
export function parsePorts(base: StackPorts, overrides: readonly string[]): StackPorts {
  const out: Record<string, number> = { ...base };
  for (const o of overrides) {
    const m = /^([a-zA-Z]+)=(\d{1,5})$/.exec(o);
    const name = m?.[1] as keyof StackPorts | undefined;
    const port = Number(m?.[2]);
    if (!m || !name || !PORT_NAMES.includes(name) || port > 65_535) {
      throw commonErrors.make("INPUT_INVALID", `--port ${o}: use NAME=PORT with NAME one of ${PORT_NAMES.join(", ")}`, { field: "port" });
    }
    out[name] = port;
  }
  return out as unknown as StackPorts;
}

async function up(opts: UpOptions): Promise<void> {
  const log = (s: string): void => void process.stderr.write(`nexus up: ${s}\n`);
  // Signals are taken from the start: Ctrl-C during start-up stops cleanly once the stack is up.
  const stopRequested = new Promise<void>((resolveStop) => {
    const onSignal = (sig: string): void => {
      log(`${sig}: stopping`);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolveStop();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  if (opts.install) {
    const missing = ensurePackages(UP_PACKAGES, log);
    if (missing.length > 0) log(`not installed: ${missing.join(" ")} (as root: apt-get install ${missing.join(" ")}); without podman compute runs degraded, without gcc DNS serves UDP on node:dgram`);
  }
  // The web console is served from console/dist: build it when missing or older than its sources.
  const consoleError = ensureConsoleBuilt(log);
  if (consoleError !== undefined) log(`the web console did not build (the API still runs): ${consoleError}`);
  const home = resolve(opts.home ?? process.env.NEXUS_HOME ?? ".nexus");
  const ports = parsePorts(opts.public ? PUBLIC_PORTS : DEFAULT_PORTS, opts.port ?? []);
  const stack = await startStack({
    home,
    databaseUrl: process.env.NEXUS_DATABASE_URL,
    ...(opts.baseDomain === undefined ? {} : { baseDomain: opts.baseDomain }),
    config: { host: opts.host, ports, public: opts.public === true },
    log: (line) => log(line),
  });
  const p = stack.platform;
  const lines = [
    `Nexus COS is up. Data directory: ${home} (${process.env.NEXUS_DATABASE_URL ? "PostgreSQL" : "SQLite"})`,
    `  base domain      ${p.baseDomain}`,
    `  API and console  ${stack.apiUrl}/   (OpenAPI: ${stack.apiUrl}/openapi.json)`,
    `  ledger           ${p.ledger.size} entries; checkpoint verifier key:`,
    `                   ${p.verifierKey}`,
    ...stack.services.flatMap((s) => s.endpoints.map((e) => `  ${s.name.padEnd(16)} ${e}`)),
    "",
    "Next: ./nexus id create --name me   then   ./nexus imvu create --name stage",
    "Stop with Ctrl-C.",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  await stopRequested;
  await stack.stop();
  log("stopped");
}

/** Adds `up` to the program. */
export function register(program: Command): void {
  program
    .command("up")
    .description("start the whole stack on the embedded defaults (creates the data directory and platform identity on first run)")
    .option("--home <dir>", "data directory (default: $NEXUS_HOME or ./.nexus)")
    .option("--host <addr>", "address every listener binds", "127.0.0.1")
    .option("--public", "bind the standard ports (53, 25, 587, 993, 80) where it has the right to")
    .option("--base-domain <name>", "base domain recorded at genesis (first run only; default nexus.test)")
    .option("--port <name=N...>", `override a port (${PORT_NAMES.join(", ")})`)
    .option("--no-install", "do not install missing Debian packages (podman, runc, gcc) even as root")
    .action(action(async (opts: UpOptions) => up(opts)));
}
