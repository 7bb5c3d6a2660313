/**
 * The base image, built on this machine with no registry: the host's Node.js binary and the shared
 * libraries it links (found with ldd), a static busybox for a shell (the host's, or Debian's
 * busybox-static fetched with `apt-get download` and unpacked with `dpkg-deb -x`), and a small
 * static file server. A Node.js app and a static site run on it out of the box (`appCommand`).
 * The image tag is a hash of its inputs, so a new Node.js or server gives a new tag.
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync,
  symlinkSync, unlinkSync, writeFileSync, chmodSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, normalize } from "node:path";
import type { ContainerDriver } from "./driver.ts";
import { computeErrors } from "./errors.ts";
import { inWorker } from "./snapshot.ts";
import { WORKLOAD_GID, WORKLOAD_UID } from "./volumes.ts";

/** The repository of the base image. */
export const BASE_IMAGE_REPO = "localhost/nexus-base";
/** Bumped when the layout of the image changes. */
const BASE_IMAGE_FORMAT = "1";
/** Where the image keeps the Node.js binary and the server. */
export const NODE_PATH = "/usr/local/bin/node";
export const STATIC_SERVER_PATH = "/usr/lib/nexus/static-server.mjs";
/** How long a build may hold the lock before another process takes it over. */
const LOCK_STALE_MS = 10 * 60_000;
const LOCK_WAIT_MS = 5 * 60_000;
const PACKAGE_JSON_BYTES_MAX = 1024 * 1024;

/** The static file server baked into the image: GET/HEAD only, no listing, no path escape. */
export const STATIC_SERVER_SOURCE = `// Nexus static site server (base image). Serves argv[2] on $PORT (default 8080).
import { createServer } from "node:http";
import { createReadStream, promises as fs } from "node:fs";
import { extname, join, normalize, sep } from "node:path";
const root = await fs.realpath(process.argv[2] ?? "/app");
const port = Number(process.env.PORT ?? 8080);
const types = { ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8", ".css": "text/css",
  ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json", ".svg": "image/svg+xml",
  ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
  ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8", ".wasm": "application/wasm", ".woff2": "font/woff2" };
async function resolve(urlPath) {
  let rel;
  try { rel = decodeURIComponent(new URL(urlPath, "http://x").pathname); } catch { return undefined; }
  if (rel.includes("\\0")) return undefined;
  let file = join(root, normalize(rel));
  try {
    let st = await fs.stat(file);
    if (st.isDirectory()) { file = join(file, "index.html"); st = await fs.stat(file); }
    const real = await fs.realpath(file);
    if (real !== root && !real.startsWith(root + sep)) return undefined;
    return st.isFile() ? { file: real, size: st.size } : undefined;
  } catch { return undefined; }
}
createServer(async (req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") { res.writeHead(405, { allow: "GET, HEAD" }); res.end(); return; }
  const hit = await resolve(req.url ?? "/");
  if (!hit) { res.writeHead(404, { "content-type": "text/plain" }); res.end("not found\\n"); return; }
  res.writeHead(200, { "content-type": types[extname(hit.file).toLowerCase()] ?? "application/octet-stream", "content-length": hit.size });
  if (req.method === "HEAD") { res.end(); return; }
  createReadStream(hit.file).pipe(res);
}).listen(port, "0.0.0.0");
process.on("SIGTERM", () => process.exit(0));
`;

/** Options of the base image build. */
export interface BaseImageOptions {
  /** Where the build keeps its lock and downloaded packages. */
  readonly cacheDir: string;
  /** The Node.js binary to put in the image (default: the one running). */
  readonly nodeBinary?: string;
  readonly log?: (line: string) => void;
}

function fileSha256(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

/** Whether an ELF file has no program interpreter (is statically linked). */
export function isStaticElf(path: string): boolean {
  try {
    const b = readFileSync(path);
    if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
    const phoff = Number(b.readBigUInt64LE(0x20));
    const phentsize = b.readUInt16LE(0x36);
    const phnum = b.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } catch {
    return false;
  }
}

/** The static busybox to put in the image: the host's, else Debian's package unpacked in the cache. */
export function findBusybox(cacheDir: string, log: (s: string) => void): string | undefined {
  for (const p of ["/bin/busybox", "/usr/bin/busybox"]) if (isStaticElf(p)) return p;
  const unpacked = join(cacheDir, "busybox-static", "bin", "busybox");
  if (isStaticElf(unpacked)) return unpacked;
  const dl = join(cacheDir, "debs");
  mkdirSync(dl, { recursive: true });
  log("compute: fetching busybox-static with apt-get download");
  spawnSync("apt-get", ["download", "busybox-static"], { cwd: dl, stdio: "ignore", timeout: 120_000 });
  const deb = readdirSync(dl).find((n) => n.startsWith("busybox-static_") && n.endsWith(".deb"));
  if (deb === undefined) return undefined;
  spawnSync("dpkg-deb", ["-x", join(dl, deb), join(cacheDir, "busybox-static")], { stdio: "ignore", timeout: 120_000 });
  return isStaticElf(unpacked) ? unpacked : undefined;
}

/** The shared libraries a binary loads, from ldd(1). */
export function parseLdd(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/** The tag the image gets for these inputs. */
export function baseImageRef(nodeSha: string, busyboxSha: string): string {
  const h = createHash("sha256").update(`${BASE_IMAGE_FORMAT}\n${nodeSha}\n${busyboxSha}\n${STATIC_SERVER_SOURCE}`).digest("hex");
  return `${BASE_IMAGE_REPO}:${h.slice(0, 16)}`;
}

function buildRootfs(dir: string, node: string, busybox: string | undefined): void {
  const put = (src: string, dest: string, mode?: number): void => {
    mkdirSync(join(dir, dirname(dest)), { recursive: true });
    copyFileSync(src, join(dir, dest));
    if (mode !== undefined) chmodSync(join(dir, dest), mode);
  };
  put(node, NODE_PATH, 0o755);
  const ldd = spawnSync("ldd", [node], { encoding: "utf8", timeout: 30_000 });
  for (const lib of parseLdd(ldd.stdout ?? "")) put(lib, lib, 0o755);
  if (busybox !== undefined) {
    put(busybox, "/bin/busybox", 0o755);
    const list = spawnSync(busybox, ["--list"], { encoding: "utf8", timeout: 30_000 }).stdout ?? "";
    for (const applet of list.split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox")) {
      if (!existsSync(join(dir, "bin", applet))) symlinkSync("busybox", join(dir, "bin", applet));
    }
  }
  mkdirSync(join(dir, dirname(STATIC_SERVER_PATH)), { recursive: true });
  writeFileSync(join(dir, STATIC_SERVER_PATH), STATIC_SERVER_SOURCE, { mode: 0o644 });
  for (const d of ["data", "app", "tmp", "proc", "sys", "dev", "run", "var/tmp", "etc"]) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, "tmp"), 0o1777);
  writeFileSync(join(dir, "etc/passwd"), `root:x:0:0:root:/root:/bin/sh\napp:x:${WORKLOAD_UID}:${WORKLOAD_GID}:app:/data:/bin/sh\n`);
  writeFileSync(join(dir, "etc/group"), `root:x:0:\napp:x:${WORKLOAD_GID}:\n`);
  for (const f of ["etc/hosts", "etc/resolv.conf", "etc/hostname"]) writeFileSync(join(dir, f), "");
}

async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lockPath, "wx"));
      break;
    } catch {
      try {
        if (Date.now() - statSync(lockPath).mtimeMs > LOCK_STALE_MS) unlinkSync(lockPath);
      } catch {
        // Released meanwhile.
      }
      if (Date.now() > deadline) throw computeErrors.make("COMPUTE_BASE_IMAGE_FAILED", `lock ${lockPath} held too long`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

const refCache = new Map<string, string>();

/** The base image's reference, building and importing it first when it is absent. */
export async function ensureBaseImage(driver: ContainerDriver, opts: BaseImageOptions): Promise<string> {
  const log = opts.log ?? (() => {});
  const node = opts.nodeBinary ?? process.execPath;
  mkdirSync(opts.cacheDir, { recursive: true });
  const busybox = findBusybox(opts.cacheDir, log);
  const st = statSync(node);
  const key = `${node}:${st.size}:${st.mtimeMs}:${busybox ?? ""}`;
  const ref = refCache.get(key) ?? baseImageRef(fileSha256(node), busybox === undefined ? "none" : fileSha256(busybox));
  refCache.set(key, ref);
  if (await driver.imageExists(ref)) return ref;
  return withLock(join(opts.cacheDir, "base-image.lock"), async () => {
    if (await driver.imageExists(ref)) return ref;
    log(`compute: building ${ref} from ${node}${busybox ? ` and ${busybox}` : ""}`);
    const work = join(tmpdir(), `nexus-base-${randomBytes(6).toString("hex")}`);
    try {
      buildRootfs(join(work, "rootfs"), node, busybox);
      await inWorker({ op: "tar", root: join(work, "rootfs"), outPath: join(work, "rootfs.tar") });
      await driver.importRootfs(join(work, "rootfs.tar"), ref, { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/data" });
    } catch (e) {
      throw computeErrors.make("COMPUTE_BASE_IMAGE_FAILED", (e as Error).message);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return ref;
  });
}

function safeEntry(dir: string, rel: string): string | undefined {
  const n = normalize(rel).replace(/^\.\//, "");
  if (n.startsWith("/") || n.startsWith("..") || n.includes("\0")) return undefined;
  return existsSync(join(dir, n)) && statSync(join(dir, n)).isFile() ? n : undefined;
}

/** The command that runs an app directory mounted at /app: a Node.js entry, or the static server. */
export function appCommand(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw computeErrors.make("COMPUTE_APP_INVALID", `${dir} is not a directory`);
  const pkgPath = join(dir, "package.json");
  if (existsSync(pkgPath) && statSync(pkgPath).size <= PACKAGE_JSON_BYTES_MAX) {
    let pkg: { main?: unknown; scripts?: { start?: unknown } } = {};
    try {
      pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as typeof pkg;
    } catch {
      throw computeErrors.make("COMPUTE_APP_INVALID", "package.json is not JSON");
    }
    const start = typeof pkg.scripts?.start === "string" ? /^node\s+(\S+)$/.exec(pkg.scripts.start.trim())?.[1] : undefined;
    for (const cand of [start, typeof pkg.main === "string" ? pkg.main : undefined]) {
      const entry = cand === undefined ? undefined : safeEntry(dir, cand);
      if (entry !== undefined) return [NODE_PATH, `/app/${entry}`];
    }
  }
  for (const f of ["server.js", "server.mjs", "index.js", "index.mjs", "app.js", "main.js"]) {
    if (safeEntry(dir, f) !== undefined) return [NODE_PATH, `/app/${f}`];
  }
  for (const sub of ["", "public", "dist", "build", "site"]) {
    if (safeEntry(dir, join(sub, "index.html")) !== undefined) return [NODE_PATH, STATIC_SERVER_PATH, sub === "" ? "/app" : `/app/${sub}`];
  }
  throw computeErrors.make("COMPUTE_APP_INVALID", basename(dir));
}
