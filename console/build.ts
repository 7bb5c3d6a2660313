/**
 * Building the web console (Node side): `vite build` of console/ into console/dist, run by
 * `nexus test` before the tests and by `nexus up` when the build is missing or older than its
 * sources. The build goes to a temporary directory first and replaces dist by renames, so a
 * running server or a concurrent run never reads a half-written bundle.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The console's source directory. */
export const CONSOLE_DIR = dirname(fileURLToPath(import.meta.url));
/** Where the built console lives (git-ignored). */
export const CONSOLE_DIST = join(CONSOLE_DIR, "dist");
/** Time limit of one build. */
export const CONSOLE_BUILD_TIMEOUT_MS = 300_000;

const ROOT = join(CONSOLE_DIR, "..");
const SOURCES = ["index.html", "vite.config.ts", "tsconfig.json", "src", "public"];
/** Most files looked at for staleness. */
const FILES_MAX = 5000;

function newestMtimeMs(path: string, budget: { left: number }): number {
  if (!existsSync(path) || budget.left <= 0) return 0;
  budget.left--;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, name), budget));
  return newest;
}

/** Whether console/dist is missing or older than any console source file. */
export function consoleStale(): boolean {
  const built = join(CONSOLE_DIST, "index.html");
  if (!existsSync(built)) return true;
  const budget = { left: FILES_MAX };
  const newest = Math.max(...SOURCES.map((s) => newestMtimeMs(join(CONSOLE_DIR, s), budget)), newestMtimeMs(join(ROOT, "package-lock.json"), budget));
  return newest > statSync(built).mtimeMs;
}

/** Builds the console now; returns an error message, or undefined when it built. */
export function buildConsole(log: (s: string) => void): string | undefined {
  const vite = join(ROOT, "node_modules", "vite", "bin", "vite.js");
  if (!existsSync(vite)) return "vite is not installed (npm install)";
  const tmp = join(CONSOLE_DIR, `.dist-${process.pid}`);
  log("building the web console (vite build)");
  const r = spawnSync(process.execPath, [vite, "build", "--config", join(CONSOLE_DIR, "vite.config.ts"), "--outDir", tmp, "--emptyOutDir"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    timeout: CONSOLE_BUILD_TIMEOUT_MS,
  });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    return `vite build failed (${r.error?.message ?? `exit ${String(r.status ?? r.signal)}`})`;
  }
  const old = join(CONSOLE_DIR, `.dist-old-${process.pid}`);
  try {
    if (existsSync(CONSOLE_DIST)) renameSync(CONSOLE_DIST, old);
    renameSync(tmp, CONSOLE_DIST);
  } catch {
    // A concurrent build put its dist in place first: its bundle is as good as ours.
    if (!existsSync(CONSOLE_DIST)) return "could not put the built console in place";
  } finally {
    rmSync(old, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  }
  return undefined;
}

/** Builds the console when console/dist is missing or stale; returns an error message or undefined. */
export function ensureConsoleBuilt(log: (s: string) => void): string | undefined {
  return consoleStale() ? buildConsole(log) : undefined;
}
