/**
 * The batched UDP addon (udp_batch.c: recvmmsg/sendmmsg, one JavaScript call per batch), built on
 * first use with the system's C compiler against the running Node's headers and kept in
 * `.runtime/native/` of the checkout, one file per source digest and Node ABI, so an edited source
 * is rebuilt and processes building at once never load a half-written file. Anything missing (no
 * compiler, no headers, a failed build or load) leaves the DNS server on node:dgram, with the
 * reason kept for `udpBatchStatus()`. `NEXUS_DNS_UDP=dgram` turns the addon off.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

declare const handleBrand: unique symbol;
/** An open socket of the addon. */
export type UdpBatchHandle = { readonly [handleBrand]: true };

/** What udp_batch.c exports. */
export interface UdpBatchAddon {
  readonly SLOTS: number;
  readonly IN_SLOT: number;
  readonly OUT_SLOT: number;
  /** Binds host:port; onBatch(n) sees datagrams in slots 0..n-1 and writes the answers' lengths to meta[2i + 1]. Throws on failure. */
  open(host: string, port: number, reusePort: boolean, inb: Uint8Array, out: Uint8Array, meta: Int32Array, onBatch: (n: number) => void): [UdpBatchHandle, number];
  close(h: UdpBatchHandle): void;
  /** [received, sent, truncated (did not fit a slot), dropped on send]. */
  stats(h: UdpBatchHandle): [number, number, number, number];
}

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE = join(HERE, "udp_batch.c");
const BUILD_DIR = join(HERE, "..", "..", "..", "..", ".runtime", "native");
const BUILD_TIMEOUT_MS = 60_000;

type Status = { readonly addon: UdpBatchAddon; readonly path: string } | { readonly addon?: undefined; readonly reason: string };
let status: Status | undefined;

/** Node's C headers for the running binary: beside it (the npm package, a tarball) or the system's. */
function headerDir(): string | undefined {
  const candidates = [join(dirname(dirname(process.execPath)), "include", "node"), "/usr/include/node", "/usr/local/include/node"];
  return candidates.find((d) => existsSync(join(d, "node_api.h")) && existsSync(join(d, "uv.h")));
}

function isAddon(m: unknown): m is UdpBatchAddon {
  if (typeof m !== "object" || m === null) return false;
  const o = m as Record<string, unknown>;
  return typeof o.open === "function" && typeof o.close === "function" && typeof o.stats === "function" &&
    typeof o.SLOTS === "number" && typeof o.IN_SLOT === "number" && typeof o.OUT_SLOT === "number";
}

function load(): Status {
  if (process.env.NEXUS_DNS_UDP === "dgram") return { reason: "turned off by NEXUS_DNS_UDP=dgram" };
  if (process.platform !== "linux") return { reason: `recvmmsg/sendmmsg are Linux calls; this is ${process.platform}` };
  let source: Buffer;
  try {
    source = readFileSync(SOURCE);
  } catch {
    return { reason: `${SOURCE} is missing` };
  }
  const digest = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const target = join(BUILD_DIR, `udp_batch-${digest}-abi${process.versions.modules}.node`);
  if (!existsSync(target)) {
    const include = headerDir();
    if (include === undefined) return { reason: "Node's C headers (node_api.h, uv.h) were not found beside the node binary" };
    try {
      mkdirSync(BUILD_DIR, { recursive: true });
    } catch (e) {
      return { reason: `cannot create ${BUILD_DIR}: ${e instanceof Error ? e.message : String(e)}` };
    }
    const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const r = spawnSync("cc", ["-O2", "-Wall", "-shared", "-fPIC", "-I", include, "-o", tmp, SOURCE], { encoding: "utf8", timeout: BUILD_TIMEOUT_MS });
    if (r.error !== undefined || r.status !== 0) {
      rmSync(tmp, { force: true });
      const why = r.error !== undefined ? r.error.message : r.stderr.trim().split("\n").slice(-3).join(" ");
      return { reason: `building udp_batch.c failed (apt-get install gcc libc6-dev): ${why}` };
    }
    renameSync(tmp, target);
  }
  try {
    const m: unknown = createRequire(import.meta.url)(target);
    if (!isAddon(m)) return { reason: `${target} does not export the expected functions` };
    return { addon: m, path: target };
  } catch (e) {
    return { reason: `loading ${target} failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** The addon, built and loaded once per thread; undefined when it cannot be had (see udpBatchStatus). */
export function udpBatch(): UdpBatchAddon | undefined {
  status ??= load();
  return status.addon;
}

/** Whether the addon is in use here, and if not, why. */
export function udpBatchStatus(): { readonly available: boolean; readonly detail: string } {
  status ??= load();
  return status.addon !== undefined ? { available: true, detail: status.path } : { available: false, detail: status.reason };
}
