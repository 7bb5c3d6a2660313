/**
 * OOM kills from the kernel log. On cgroup v1 with runc, conmon often misses the OOM (podman's
 * State.OOMKilled stays false) and the killed container's memory group is gone with its counter,
 * so the reliable witness is the kernel's own line (mm/oom_kill.c, dump_oom_summary):
 *   oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/a/b,task_memcg=/a/b/libpod-<id>,task=...,pid=N,uid=U
 * cadvisor reads OOM events the same way. Read through /dev/kmsg (Documentation/ABI/testing/dev-kmsg).
 */
import { closeSync, constants, openSync, readSync } from "node:fs";

/** One OOM kill seen in the kernel log. */
export interface OomKill {
  /** The memory group whose limit was hit (the IMVU's parent group or the container's). */
  readonly oomGroup: string;
  /** The group of the killed task (the container's). */
  readonly taskGroup: string;
  readonly pid: number;
  readonly task: string;
  /** Kernel monotonic time of the record in microseconds (orders kills). */
  readonly atUs: bigint;
}

/** Bound on the records read from /dev/kmsg in one pass (the ring buffer holds fewer). */
const KMSG_RECORDS_MAX = 200_000;
const KMSG_RECORD_BYTES_MAX = 8192;

/** Parses one /dev/kmsg record ("prio,seq,usec,flags;message") into an OOM kill, if it is one. */
export function parseOomRecord(record: string): OomKill | undefined {
  const semi = record.indexOf(";");
  if (semi < 0) return undefined;
  const head = record.slice(0, semi).split(",");
  const msg = record.slice(semi + 1).split("\n")[0] ?? "";
  if (!msg.startsWith("oom-kill:")) return undefined;
  const fields = new Map<string, string>();
  for (const kv of msg.slice("oom-kill:".length).split(",")) {
    const eq = kv.indexOf("=");
    if (eq > 0) fields.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  const taskGroup = fields.get("task_memcg");
  if (taskGroup === undefined) return undefined;
  const usec = head[2] ?? "0";
  return {
    oomGroup: fields.get("oom_memcg") ?? taskGroup,
    taskGroup,
    pid: Number(fields.get("pid") ?? "0"),
    task: fields.get("task") ?? "",
    atUs: /^\d+$/.test(usec) ? BigInt(usec) : 0n,
  };
}

/** Every OOM kill still in the kernel ring buffer (empty when /dev/kmsg cannot be read). */
export function readOomKills(): OomKill[] {
  let fd: number;
  try {
    fd = openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return [];
  }
  const out: OomKill[] = [];
  const buf = Buffer.alloc(KMSG_RECORD_BYTES_MAX);
  try {
    for (let i = 0; i < KMSG_RECORDS_MAX; i++) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EPIPE") continue; // records were overwritten while reading: go on
        break; // EAGAIN: no more records
      }
      const kill = parseOomRecord(buf.toString("utf8", 0, n));
      if (kill) out.push(kill);
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The OOM kills whose task group belongs to a container id (podman's libpod-<id> groups). */
export function oomKillsOf(kills: readonly OomKill[], containerId: string): OomKill[] {
  return kills.filter((k) => k.taskGroup.endsWith(`libpod-${containerId}`) || k.taskGroup.includes(`libpod-${containerId}/`));
}
