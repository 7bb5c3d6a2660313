/**
 * `compute doctor`: what the machine gives the compute fabric, for `./nexus up` to print. Errors
 * mean compute commands will fail; warnings mean a guarantee is weaker (and says which).
 */
import { spawnSync } from "node:child_process";
import { existsSync, openSync, closeSync, constants } from "node:fs";
import { readLayout } from "./cgroup.ts";
import { podmanAvailable } from "./podman.ts";
import { loopVolumesSupported } from "./volumes.ts";

/** One finding. */
export interface DoctorCheck {
  readonly name: string;
  readonly ok: boolean;
  /** "error": compute cannot run; "warning": it runs with a weaker guarantee. */
  readonly severity: "error" | "warning";
  readonly detail: string;
}

/** All findings; ok when no error-level check failed. */
export interface DoctorReport {
  readonly ok: boolean;
  readonly checks: readonly DoctorCheck[];
}

function has(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore", timeout: 10_000 }).status === 0;
}

/** Checks podman, runc, cgroups, firewall, loop volumes and the kernel log (no container started). */
export function computeDoctor(): DoctorReport {
  const checks: DoctorCheck[] = [];
  const add = (name: string, ok: boolean, severity: DoctorCheck["severity"], detail: string): void => void checks.push({ name, ok, severity, detail });
  const p = podmanAvailable();
  add("podman", p.available, "error", p.message);
  const layout = readLayout();
  const controllers = ["cpu", "memory", "pids"].filter((c) => layout?.mounts.has(c) === true);
  add(
    "cgroups",
    layout !== undefined && controllers.length === 3,
    "error",
    layout === undefined ? "no cgroup file system mounted" : `cgroup v${layout.version}, controllers: ${controllers.join(", ")}`,
  );
  add("iptables", has("iptables", ["-w", "10", "-n", "-L", "FORWARD"]), "error", "drops traffic between IMVU networks; without it IMVU networks are not created (fail closed)");
  add("catatonit", existsSync("/usr/libexec/podman/catatonit"), "warning", "PID 1 of each container (--init): without it a workload that ignores SIGTERM is killed after the stop timeout");
  const loop = loopVolumesSupported();
  add(
    "loop volumes",
    loop,
    "warning",
    loop ? "disk envelopes are enforced by the kernel (loop-mounted ext4 per IMVU)" : "disk envelopes are checked, not enforced: volumes become read-only after they go over",
  );
  let kmsg: boolean;
  try {
    closeSync(openSync("/dev/kmsg", constants.O_RDONLY | constants.O_NONBLOCK));
    kmsg = true;
  } catch {
    kmsg = false;
  }
  add("kernel log", kmsg, "warning", kmsg ? "OOM kills are read from /dev/kmsg" : "/dev/kmsg unreadable: OOM kills are reported only when podman sees them");
  return { ok: checks.every((c) => c.ok || c.severity === "warning"), checks };
}
