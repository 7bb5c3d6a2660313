/** Shared helpers of the compute tests that run real containers. */
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { findBusybox } from "../../src/services/compute/base-image.ts";
import { ComputeFabric } from "../../src/services/compute/fabric.ts";
import { PodmanDriver } from "../../src/services/compute/podman.ts";
import type { VolumeMode } from "../../src/services/compute/volumes.ts";

/** Where tests cache the busybox package and the base image's lock (shared by runs, like a CI cache). */
export const TEST_CACHE = join(tmpdir(), "nexus-compute-test-cache");

/** A fresh fabric id for one test file run. */
export function fabricId(): string {
  return `t${randomBytes(4).toString("hex")}`;
}

/** A minimal root file system: static busybox and its applets. */
export function busyboxRootfs(dir: string): string {
  const bb = findBusybox(TEST_CACHE, () => {});
  if (bb === undefined) throw new Error("no static busybox: apt-get install busybox-static (or allow apt-get download)");
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync(bb, join(dir, "bin", "busybox"));
  chmodSync(join(dir, "bin", "busybox"), 0o755);
  const applets = spawnSync(bb, ["--list"], { encoding: "utf8" }).stdout.split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox");
  for (const a of applets) symlinkSync("busybox", join(dir, "bin", a));
  for (const d of ["etc", "tmp", "data", "proc", "sys", "dev", "run", "www"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "etc/passwd"), "root:x:0:0::/:/bin/sh\napp:x:10000:10000::/data:/bin/sh\n");
  writeFileSync(join(dir, "etc/group"), "root:x:0:\napp:x:10000:\n");
  writeFileSync(join(dir, "www/index.html"), "hello from busybox\n");
  return dir;
}

/** A fabric on podman in a temp home; `done` tears everything down. */
export function podmanFabric(opts: { volumeMode?: VolumeMode } = {}): { fabric: ComputeFabric; driver: PodmanDriver; home: string; done: () => Promise<void> } {
  const home = mkdtempSync(join(tmpdir(), "nexus-compute-"));
  const driver = new PodmanDriver({ workDir: join(home, "podman") });
  const fabric = new ComputeFabric({ home, fabric: fabricId(), driver, volumeMode: opts.volumeMode ?? "auto" });
  return {
    fabric,
    driver,
    home,
    done: async () => {
      try {
        await fabric.teardown({ volumes: true });
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

/** Working directory of `podman exec` (conmon may leave an "oom" file in it); removed at exit. */
const EXEC_CWD = mkdtempSync(join(tmpdir(), "nexus-compute-exec-"));
process.on("exit", () => rmSync(EXEC_CWD, { recursive: true, force: true }));

/** Runs a command in a container; resolves with its exit code and output. */
export async function exec(id: string, cmd: string[], timeoutMs = 30_000): Promise<{ code: number; out: string }> {
  const r = spawnSync("podman", ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "exec", id, ...cmd], { encoding: "utf8", timeout: timeoutMs, cwd: EXEC_CWD });
  return { code: r.status ?? -1, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** GET http://127.0.0.1:port/path → status and body (rejects on connection errors). */
export function httpGet(port: number, path = "/", timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** Polls `fn` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let v: T | undefined;
    try {
      v = await fn();
    } catch {
      v = undefined;
    }
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
