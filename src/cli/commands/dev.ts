/** `nexus test` and `nexus up`: the README's two commands. */
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { ensurePackages, startTempPostgres, TEST_PACKAGES } from "../dev/system.ts";
import { ensureConsoleBuilt } from "../../../console/build.ts";
import { action } from "../output.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: "inherit", env });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

const log = (s: string): void => void process.stderr.write(`nexus test: ${s}\n`);

async function runTests(patterns: string[], opts: { lint: boolean }): Promise<void> {
  const missing = ensurePackages(TEST_PACKAGES, log);
  if (missing.length > 0) log(`not installed (tests that need them will fail): ${missing.join(" ")}`);
  const node = process.execPath;
  if (opts.lint) {
    log("type-checking (tsc --noEmit)");
    if ((await run(node, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"])) !== 0) {
      process.exitCode = 1;
      return;
    }
    // The console has DOM types the root program lacks: its sources, and the Node test of its libraries.
    log("type-checking the web console (tsc -p console/tsconfig.json, console/tsconfig.test.json)");
    for (const project of ["console/tsconfig.json", "console/tsconfig.test.json"]) {
      if ((await run(node, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project])) !== 0) {
        process.exitCode = 1;
        return;
      }
    }
    log("linting (eslint)");
    if ((await run(node, [join(ROOT, "node_modules/eslint/bin/eslint.js"), "--max-warnings=0", "."])) !== 0) {
      process.exitCode = 1;
      return;
    }
  }
  // The console tests drive the built console: build it (when missing or stale) before any test runs.
  const consoleError = ensureConsoleBuilt(log);
  if (consoleError !== undefined) {
    log(`the web console did not build: ${consoleError}`);
    process.exitCode = 1;
    return;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, NEXUS_REPO_ROOT: ROOT };
  let pg: Awaited<ReturnType<typeof startTempPostgres>>;
  if (!env.NEXUS_TEST_DATABASE_URL) {
    pg = await startTempPostgres();
    if (pg) {
      env.NEXUS_TEST_DATABASE_URL = pg.url;
      log(`PostgreSQL for the store conformance suite at ${pg.url}`);
    } else {
      log("no PostgreSQL found: the PostgreSQL conformance suite will fail");
    }
  }
  try {
    const files = patterns.length > 0 ? patterns : ["test/**/*.test.ts"];
    const code = await run(
      node,
      ["--disable-warning=ExperimentalWarning", "--test", "--test-concurrency=2", "--test-timeout=600000", ...files],
      env,
    );
    process.exitCode = code;
  } finally {
    pg?.stop();
  }
}

/** Adds `test` and `up` to the program. */
export function register(program: Command): void {
  program
    .command("test")
    .description("install what the tests need (npm packages; Debian packages when root) and run the whole suite")
    .argument("[files...]", "test files or globs (default: test/**/*.test.ts)")
    .option("--no-lint", "skip the type check and the linter")
    .action(action(async (files: string[], opts: { lint: boolean }) => runTests(files, opts)));
}
