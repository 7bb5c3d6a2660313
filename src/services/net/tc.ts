/**
 * Kernel shaping of a slice's bandwidth (Linux tc): a token bucket filter (tc-tbf(8)) as the root
 * queueing discipline of an interface — typically the host side of an IMVU's container veth, so
 * traffic that bypasses the gateway is held to the same declared rate. Runs `tc` (iproute2),
 * optionally inside a network namespace (`ip netns exec`). Root only; every failure is NET_TC_FAILED.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { netErrors } from "./errors.ts";

const run = promisify(execFile);

/** Queueing delay TBF may add before dropping (tc-tbf "latency"). */
export const TBF_LATENCY_MS = 50;
/** Smallest burst: a few full-size frames, or TBF cannot send at all (tc-tbf(8) "burst"). */
export const TBF_BURST_BYTES_MIN = 16 * 1514;

const DEV_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const NETNS_RE = /^[A-Za-z0-9_.-]{1,64}$/;

/** Where a tc command runs. */
export interface TcTarget {
  /** Interface name (IFNAMSIZ: at most 15 characters). */
  readonly dev: string;
  /** Network namespace name (`ip netns`), or the current one. */
  readonly netns?: string;
}

async function tc(t: TcTarget, args: readonly string[]): Promise<string> {
  if (!DEV_RE.test(t.dev)) throw netErrors.make("NET_TC_FAILED", `bad interface name ${t.dev}`);
  if (t.netns !== undefined && !NETNS_RE.test(t.netns)) throw netErrors.make("NET_TC_FAILED", `bad namespace name ${t.netns}`);
  const [file, argv] = t.netns === undefined ? ["tc", [...args]] : ["ip", ["netns", "exec", t.netns, "tc", ...args]];
  try {
    return (await run(file, argv, { encoding: "utf8", timeout: 10_000 })).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    throw netErrors.make("NET_TC_FAILED", `${file} ${argv.join(" ")}: ${(err.stderr ?? err.message ?? "").trim()}`);
  }
}

/** The TBF parameters for a rate in bytes/s: burst of 1/10 s (at least TBF_BURST_BYTES_MIN). */
export function tbfParams(bytesPerSec: number): { rateBits: number; burstBytes: number } {
  if (!Number.isSafeInteger(bytesPerSec) || bytesPerSec <= 0) throw netErrors.make("NET_TC_FAILED", "the rate must be a positive whole number of bytes/s");
  return { rateBits: bytesPerSec * 8, burstBytes: Math.max(TBF_BURST_BYTES_MIN, Math.ceil(bytesPerSec / 10)) };
}

/** Holds the interface's egress to `bytesPerSec` (replaces any root qdisc). */
export async function applyRate(t: TcTarget, bytesPerSec: number): Promise<void> {
  const p = tbfParams(bytesPerSec);
  await tc(t, ["qdisc", "replace", "dev", t.dev, "root", "tbf", "rate", `${p.rateBits}bit`, "burst", String(p.burstBytes), "latency", `${TBF_LATENCY_MS}ms`]);
}

/** Removes the shaping (back to the default qdisc); a missing qdisc is not an error. */
export async function clearRate(t: TcTarget): Promise<void> {
  try {
    await tc(t, ["qdisc", "del", "dev", t.dev, "root"]);
  } catch (e) {
    if (!String((e as Error).message).includes("No such file") && !String((e as Error).message).includes("Cannot delete qdisc with handle of zero")) throw e;
  }
}

/** The TBF rate on the interface in bytes/s, or undefined when it is not shaped by TBF. */
export async function currentRate(t: TcTarget): Promise<number | undefined> {
  const out = await tc(t, ["-j", "qdisc", "show", "dev", t.dev]);
  let rows: unknown;
  try {
    rows = JSON.parse(out);
  } catch {
    throw netErrors.make("NET_TC_FAILED", "tc -j printed output that is not JSON");
  }
  for (const r of Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []) {
    const opts = r.options as Record<string, unknown> | undefined;
    if (r.kind === "tbf" && r.root === true && typeof opts?.rate === "number") return Math.round(opts.rate);
  }
  return undefined;
}
