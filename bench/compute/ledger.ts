/**
 * Compute through the ledger (BENCHMARKING.md): not a test. The time from submitting a signed
 * `compute.workload.deploy` to the pipeline (gates, ledger append, projection) until the workload
 * answers HTTP on 127.0.0.1, with the compute service module doing the rest (debounced pass,
 * reconcile, run), for a busybox httpd rootfs in an IMVU whose network and volume exist.
 *   node bench/compute/ledger.ts [--runs N]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { applied, createImvu, openSite, person } from "../../test/compute/integration-support.ts";
import { busyboxRootfs, httpGet } from "../../test/compute/support.ts";

const args = process.argv.slice(2);
const i = args.indexOf("--runs");
const RUNS = i >= 0 ? Number(args[i + 1]) : 5;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const work = mkdtempSync(join(tmpdir(), "nexus-compute-bench-ledger-"));
const site = await openSite({ debounceMs: 20 });
try {
  const owner = await person(site, "bench");
  await createImvu(site, owner, "bench");
  const { sha256 } = await stageSourceDir(site.home, "bench", busyboxRootfs(join(work, "rootfs")));
  const body = (name: string) => ({ name, source: { kind: "rootfs", sha256 }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 });
  await applied(site, owner, { type: "compute.workload.deploy", imvu: "bench", body: body("warmup") });
  await site.compute.settle();
  const times: number[] = [];
  const gateMs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const name = `w${r}`;
    const t = performance.now();
    await applied(site, owner, { type: "compute.workload.deploy", imvu: "bench", body: body(name) });
    gateMs.push(performance.now() - t);
    for (;;) {
      const a = site.compute.address("bench", name);
      if (a !== undefined) {
        try {
          if ((await httpGet(a.port, "/", 1000)).status === 200) break;
        } catch {
          // not listening yet
        }
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    times.push(performance.now() - t);
    await applied(site, owner, { type: "compute.workload.remove", imvu: "bench", body: { name } });
    await site.compute.settle();
  }
  console.log(`${"signed deploy → receipt (gates, append, projection)".padEnd(58)} ${`${median(gateMs).toFixed(1)} ms`.padStart(14)}   [median of ${RUNS}]`);
  console.log(`${"signed deploy → first HTTP answer (busybox httpd rootfs)".padEnd(58)} ${`${median(times).toFixed(0)} ms`.padStart(14)}   [median of ${RUNS}, IMVU exists]`);
} finally {
  await site.done();
  rmSync(work, { recursive: true, force: true });
}
