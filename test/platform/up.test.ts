/**
 * `nexus up` as a user runs it: first start creates the data directory, the platform identity and
 * the genesis; it prints where each service listens; SIGTERM stops it cleanly; a second start
 * reuses everything (no second genesis) and the ledger still verifies.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../support/paths.ts";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MAIN = join(REPO_ROOT, "src/cli/main.ts");
const ZERO_PORTS = ["api", "dns", "resolver", "smtp", "submission", "imap", "gateway", "gatewayTls"].flatMap((n) => ["--port", `${n}=0`]);
const START_TIMEOUT_MS = 120_000;

/** Starts `nexus up`, waits for its banner, sends SIGTERM, and returns what it printed and its exit code. */
function upAndStop(home: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.NEXUS_DATABASE_URL;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN, "up", "--home", home, "--no-install", ...ZERO_PORTS], { env, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nexus up printed no banner in time:\n${stdout}\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (!signalled && stdout.includes("Stop with Ctrl-C.")) {
        signalled = true;
        // Like a person pressing Ctrl-C a moment after reading the banner.
        setTimeout(() => child.kill("SIGTERM"), 300);
      }
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr: signal === null ? stderr : `${stderr}\n(killed by ${signal})`, code });
    });
  });
}

test("nexus up initialises, prints its endpoints, stops on SIGTERM, and restarts on the same data", async () => {
  const home = join(mkdtempSync(join(tmpdir(), "nexus-up-")), "home");
  dirs.push(home);
  const first = await upAndStop(home);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /API and console\s+http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(first.stdout, /verifier key:\n\s+nexus\.local\/ledger\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+/);
  assert.match(first.stderr, /SIGTERM: stopping/);
  assert.match(first.stderr, /stopped/);
  assert.equal(statSync(join(home, "platform.key")).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, "keys")).mode & 0o777, 0o700);
  const size1 = /ledger\s+(\d+) entries/.exec(first.stdout)?.[1];
  assert.ok(size1 !== undefined && Number(size1) >= 7, "genesis and six service registrations");

  const second = await upAndStop(home);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(/ledger\s+(\d+) entries/.exec(second.stdout)?.[1], size1, "no second genesis");
  assert.ok(existsSync(join(home, "nexus.db")));
  const verify = spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN, "ledger", "verify"], {
    env: { ...process.env, NEXUS_HOME: home, NEXUS_DATABASE_URL: "" },
    encoding: "utf8",
  });
  assert.equal(verify.status, 0, verify.stderr + verify.stdout);
});

test("nexus up refuses a malformed --port with exit 2", () => {
  const r = spawnSync(process.execPath, ["--disable-warning=ExperimentalWarning", MAIN, "up", "--no-install", "--port", "dns=99999"], { encoding: "utf8", cwd: tmpdir() });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /INPUT_INVALID/);
});
