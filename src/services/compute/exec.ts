/** Running the external programs compute drives (podman, iptables, mkfs, mount), bounded. */
import { execFile } from "node:child_process";
import { computeErrors } from "./errors.ts";

/** Bound on what one call may print. */
export const EXEC_OUTPUT_BYTES_MAX = 32 * 1024 * 1024;

/** Runs a program with a timeout; resolves with its output, rejects with a typed error. */
export function execBounded(
  file: string,
  args: readonly string[],
  opts: { timeoutMs: number; what?: string; okCodes?: readonly number[]; cwd?: string },
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: opts.timeoutMs, killSignal: "SIGKILL", maxBuffer: EXEC_OUTPUT_BYTES_MAX, encoding: "utf8", ...(opts.cwd ? { cwd: opts.cwd } : {}) },
      (err, stdout, stderr) => {
        if (err === null) return resolve({ stdout, stderr, code: 0 });
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const what = opts.what ?? `${file} ${args.slice(0, 3).join(" ")}`;
        if (e.code === "ENOENT") {
          return reject(file.endsWith("podman") ? computeErrors.make("COMPUTE_PODMAN_MISSING") : computeErrors.make("COMPUTE_TOOL_MISSING", file));
        }
        if (e.killed === true) return reject(computeErrors.make("COMPUTE_PODMAN_TIMEOUT", `${what} after ${opts.timeoutMs} ms`));
        if (typeof e.code === "number" && opts.okCodes?.includes(e.code)) return resolve({ stdout, stderr, code: e.code });
        reject(computeErrors.make("COMPUTE_PODMAN_FAILED", `${what}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`, { exitCode: e.code ?? null }));
      },
    );
  });
}

