/**
 * Compute benchmarks (BENCHMARKING.md): not tests. Prints each figure with the command behind it.
 *   node bench/compute/run.ts [deploy] [idle] [snapshot] [--imvus N] [--runs N]
 * - deploy: time from reconcile() of a new workload to its first HTTP answer on 127.0.0.1
 *   (warm: the IMVU's network and volume exist; cold: a new IMVU), for a static site on the base
 *   image (Node.js) and a busybox httpd rootfs. Median of --runs.
 * - idle: N IMVUs with one small workload each (busybox httpd); host memory used (MemTotal -
 *   MemAvailable) before and after, minus the workloads' own cgroup memory, per IMVU.
 * - snapshot: snapshot and restore MB/s of a mixed tree beside GNU tar -c / -x of the same tree,
 *   in the same run (page cache warm for both), median of --runs.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROFILES, type Envelope } from "../../src/services/compute/envelope.ts";
import { ComputeFabric } from "../../src/services/compute/fabric.ts";
import { LABEL_FABRIC } from "../../src/services/compute/names.ts";
import { PodmanDriver } from "../../src/services/compute/podman.ts";
import type { ImvuDesired, WorkloadSpec } from "../../src/services/compute/reconciler.ts";
import { createSnapshot, extractSnapshot } from "../../src/services/compute/snapshot.ts";
import { busyboxRootfs, fabricId, httpGet } from "../../test/compute/support.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const sections = args.filter((a) => !a.startsWith("--") && !/^\d+$/.test(a));
const want = (s: string): boolean => sections.length === 0 || sections.includes(s);
const RUNS = flag("--runs", 5);
const IMVUS = flag("--imvus", 100);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(58)} ${value.padStart(14)}   [${cmd}]`);

const work = mkdtempSync(join(tmpdir(), "nexus-compute-bench-"));
const home = join(work, "home");
const driver = new PodmanDriver({ workDir: join(work, "podman") });
const fabric = new ComputeFabric({ home, fabric: fabricId(), driver });
const env: Envelope = { ...PROFILES.small, diskBytes: 16n * 1024n * 1024n, memoryBytes: 64n * 1024n * 1024n };
const rootfs = busyboxRootfs(join(work, "rootfs"));
const site = join(work, "site");
mkdirSync(site);
writeFileSync(join(site, "index.html"), "<h1>bench</h1>\n");

const httpd: WorkloadSpec = { name: "web", source: { kind: "rootfs", dir: rootfs }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 };
const node: WorkloadSpec = { name: "site", source: { kind: "app", dir: site }, port: 8080 };

async function firstAnswer(imvu: string, name: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    const w = (await fabric.list(imvu)).find((x) => x.name === name);
    if (w?.hostPort !== undefined) {
      try {
        if ((await httpGet(w.hostPort, "/", 1000)).status === 200) return;
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${imvu}/${name} never answered`);
}

async function deployBench(): Promise<void> {
  await fabric.baseImage();
  for (const [label, w] of [["busybox httpd (rootfs)", httpd], ["static site on the base image (Node.js)", node]] as const) {
    const warm: number[] = [];
    const cold: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const base: ImvuDesired = { imvu: "warm", envelope: env, workloads: [] };
      await fabric.reconcile({ imvus: [base] });
      let t = performance.now();
      await fabric.reconcile({ imvus: [{ ...base, workloads: [w] }] });
      await firstAnswer("warm", w.name);
      warm.push(performance.now() - t);
      await fabric.reconcile({ imvus: [base] });
      t = performance.now();
      await fabric.reconcile({ imvus: [base, { imvu: `cold${i}`, envelope: env, workloads: [w] }] });
      await firstAnswer(`cold${i}`, w.name);
      cold.push(performance.now() - t);
      await fabric.reconcile({ imvus: [base] });
    }
    line(`deploy → first answer, ${label}, IMVU exists`, `${median(warm).toFixed(0)} ms`, `median of ${RUNS}`);
    line(`deploy → first answer, ${label}, new IMVU`, `${median(cold).toFixed(0)} ms`, `median of ${RUNS}, incl. network + ext4 volume`);
  }
  await fabric.reconcile({ imvus: [] });
}

function meminfo(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of readFileSync("/proc/meminfo", "utf8").matchAll(/^(\w+):\s+(\d+) kB/gm)) out.set(m[1] ?? "", Number(m[2]) * 1024);
  return out;
}

/** Kernel memory not charged to any cgroup that networks, mounts and processes cost. */
function kernelBytes(m: Map<string, number>): number {
  return ["SUnreclaim", "KernelStack", "PageTables", "Percpu"].reduce((a, k) => a + (m.get(k) ?? 0), 0);
}

function pssBytes(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

function ppid(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return 0;
  }
}

async function idleBench(): Promise<void> {
  spawnSync("sync");
  await new Promise((r) => setTimeout(r, 2000));
  const before = meminfo();
  const imvus: ImvuDesired[] = Array.from({ length: IMVUS }, (_, i) => ({ imvu: `idle${i}`, envelope: env, workloads: [httpd] }));
  const t = performance.now();
  const r = await fabric.reconcile({ imvus });
  const failed = r.results.filter((x) => !x.ok);
  if (failed.length > 0 || r.rejected.length > 0) console.log("failures:", JSON.stringify(failed.slice(0, 3)), JSON.stringify(r.rejected.slice(0, 3)));
  const deploySec = (performance.now() - t) / 1000;
  await new Promise((r2) => setTimeout(r2, 5000));
  const after = meminfo();
  let workloadBytes = 0;
  let conmonBytes = 0;
  for (const c of await driver.list({ [LABEL_FABRIC]: fabric.fabric })) {
    workloadBytes += Number((await driver.stats(c))?.memoryBytes ?? 0n);
    conmonBytes += pssBytes(ppid(c.pid));
  }
  const n = r.running;
  const MiB = 1024 * 1024;
  const used = (m: Map<string, number>): number => (m.get("MemTotal") ?? 0) - (m.get("MemAvailable") ?? 0);
  const kernel = kernelBytes(after) - kernelBytes(before);
  line(`idle IMVUs running`, `${n}/${IMVUS}`, `reconcile of ${IMVUS} IMVUs took ${deploySec.toFixed(1)} s`);
  line(`workloads' own cgroups (busybox httpd)`, `${(workloadBytes / n / MiB).toFixed(2)} MiB each`, "memory.usage_in_bytes of each container");
  line(`conmon per IMVU`, `${(conmonBytes / n / MiB).toFixed(2)} MiB`, "Pss of /proc/<conmon>/smaps_rollup");
  line(`kernel per IMVU (netdevs, mounts, rules, stacks)`, `${(kernel / n / MiB).toFixed(2)} MiB`, "Δ SUnreclaim+KernelStack+PageTables+Percpu");
  line(`overhead per idle IMVU beyond its workload`, `${((conmonBytes + kernel) / n / MiB).toFixed(2)} MiB`, "conmon + kernel, attributed");
  line(`host memory used, Δ (noisy: whole machine)`, `${((used(after) - used(before) - workloadBytes) / n / MiB).toFixed(2)} MiB`, "(Δ MemTotal-MemAvailable - Σ workload) / IMVUs");
  await fabric.reconcile({ imvus: [] });
}

function makeTree(dir: string): number {
  let bytes = 0;
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 200; f++) {
      const b = Buffer.alloc(4096 + ((d * 200 + f) % 7) * 1000, d + f);
      writeFileSync(join(dir, `d${d}`, `f${f}.txt`), b);
      bytes += b.length;
    }
  }
  for (let i = 0; i < 4; i++) {
    const b = Buffer.alloc(64 * 1024 * 1024, i + 1);
    writeFileSync(join(dir, `big${i}.bin`), b);
    bytes += b.length;
  }
  return bytes;
}

async function snapshotBench(): Promise<void> {
  const src = join(work, "tree");
  mkdirSync(src);
  const bytes = makeTree(src);
  const mb = bytes / 1e6;
  const ours: number[] = [];
  const tarC: number[] = [];
  const oursX: number[] = [];
  const tarX: number[] = [];
  for (let i = 0; i < Math.max(3, Math.min(RUNS, 5)); i++) {
    const store = join(work, `store${i}`);
    let t = performance.now();
    const s = await createSnapshot(src, store);
    ours.push(mb / ((performance.now() - t) / 1000));
    const tarFile = join(work, `t${i}.tar`);
    t = performance.now();
    execFileSync("tar", ["-cf", tarFile, "-C", src, "."]);
    execFileSync("sync", ["-f", tarFile]);
    tarC.push(mb / ((performance.now() - t) / 1000));
    const out1 = join(work, `x${i}`);
    mkdirSync(out1);
    t = performance.now();
    await extractSnapshot(store, s.digest, out1);
    oursX.push(mb / ((performance.now() - t) / 1000));
    const out2 = join(work, `y${i}`);
    mkdirSync(out2);
    t = performance.now();
    execFileSync("tar", ["-xf", tarFile, "-C", out2]);
    tarX.push(mb / ((performance.now() - t) / 1000));
    execFileSync("chmod", ["-R", "u+w", store]);
    rmSync(store, { recursive: true });
    rmSync(tarFile);
    rmSync(out1, { recursive: true });
    rmSync(out2, { recursive: true });
  }
  line(`tree`, `${mb.toFixed(0)} MB`, "4×64 MiB + 4,000 small files");
  line(`snapshot (deterministic tar + SHA-256 + fsync)`, `${median(ours).toFixed(0)} MB/s`, "createSnapshot");
  line(`GNU tar -cf of the same tree (+ sync of the file)`, `${median(tarC).toFixed(0)} MB/s`, "tar -cf t.tar -C tree .");
  line(`  ratio snapshot / tar`, `${(median(ours) / median(tarC)).toFixed(2)}×`, "same run");
  line(`restore (verify SHA-256, then extract)`, `${median(oursX).toFixed(0)} MB/s`, "extractSnapshot");
  line(`GNU tar -xf of the same archive`, `${median(tarX).toFixed(0)} MB/s`, "tar -xf t.tar -C out");
  line(`  ratio restore / tar`, `${(median(oursX) / median(tarX)).toFixed(2)}×`, "same run");
}

try {
  console.log(`compute bench: ${new Date().toISOString()}, ${process.version}, fabric ${fabric.fabric}, volumes ${fabric.volumes.mode}`);
  if (want("deploy")) await deployBench();
  if (want("idle")) await idleBench();
  if (want("snapshot")) await snapshotBench();
} finally {
  await fabric.teardown({ volumes: true });
  execFileSync("chmod", ["-R", "u+w", work]);
  rmSync(work, { recursive: true, force: true });
}
