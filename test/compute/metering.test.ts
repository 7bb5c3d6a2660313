import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { ContainerUsage } from "../../src/services/compute/driver.ts";
import { emptyMeterState, meterStep, Sampler, type Reading, type UsageRecord } from "../../src/services/compute/metering.ts";
import { FakeDriver } from "./fake-driver.ts";

const zero: ContainerUsage = {
  cpuNanos: 0n, memoryBytes: 0n, memoryPeakBytes: 0n, blkReadBytes: 0n, blkWriteBytes: 0n,
  pids: 1, pidsLimitHits: 0, oomKills: 0, netRxBytes: 0n, netTxBytes: 0n,
};

function reading(cpuSec: number, over: Partial<ContainerUsage> = {}, containerId = "c1", startedAtMs = 0): Reading {
  return { workload: "a/web", imvu: "a", name: "web", containerId, startedAtMs, usage: { ...zero, cpuNanos: BigInt(Math.round(cpuSec * 1e9)), ...over } };
}

test("a record per closed interval, aligned, with deltas", () => {
  let s = emptyMeterState();
  let out: UsageRecord[];
  ({ state: s, records: out } = meterStep(s, [reading(1, { netRxBytes: 100n, memoryPeakBytes: 50n })], 10_500, 1000));
  assert.deepEqual(out, []);
  ({ state: s, records: out } = meterStep(s, [reading(1.5, { netRxBytes: 300n, memoryPeakBytes: 80n })], 10_900, 1000));
  assert.deepEqual(out, []);
  ({ state: s, records: out } = meterStep(s, [reading(2, { netRxBytes: 400n, memoryPeakBytes: 60n, memoryBytes: 40n })], 11_200, 1000));
  assert.equal(out.length, 1);
  assert.equal(out[0]?.intervalStart, 10_000);
  assert.equal(out[0]?.intervalEnd, 11_000);
  assert.equal(out[0]?.cpuSeconds, 1);
  assert.equal(out[0]?.netRxBytes, 300n);
  assert.equal(out[0]?.memPeakBytes, 80n);
  ({ records: out } = meterStep(s, [reading(2.25)], 13_100, 1000));
  assert.equal(out[0]?.intervalStart, 11_000);
  assert.equal(out[0]?.intervalEnd, 13_000);
  assert.equal(out[0]?.cpuSeconds, 0.25);
});

test("a container started in the interval is counted from zero; a restarted one from its new counters", () => {
  let s = emptyMeterState();
  let out: UsageRecord[];
  ({ state: s } = meterStep(s, [reading(3, {}, "c1", 20_100)], 20_200, 1000));
  ({ state: s, records: out } = meterStep(s, [reading(4, {}, "c1", 20_100)], 21_000, 1000));
  assert.equal(out[0]?.cpuSeconds, 4);
  ({ records: out } = meterStep(s, [reading(0.5, {}, "c2", 21_500)], 22_000, 1000));
  assert.equal(out[0]?.cpuSeconds, 0.5);
});

test("nothing is counted twice over any sequence of readings (property)", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 40 }), (steps) => {
      let s = emptyMeterState();
      let t = 1_000_000;
      let cpu = 0;
      let total = 0;
      const starts = new Set<number>();
      const first = cpu;
      for (const [dt, dcpu] of steps) {
        t += dt;
        cpu += dcpu;
        const r = meterStep(s, [reading(cpu / 1000)], t, 1000);
        s = r.state;
        for (const rec of r.records) {
          assert.ok(!starts.has(rec.intervalStart));
          starts.add(rec.intervalStart);
          total += rec.cpuSeconds;
        }
      }
      assert.ok(total <= (cpu - first) / 1000 + 1e-9);
    }),
  );
});

test("the sampler emits each (workload, interval) once", async () => {
  const driver = new FakeDriver(() => 0);
  await driver.ensureNetwork("n", {});
  await driver.run({
    name: "x", root: { kind: "image", ref: "localhost/fake:1" }, cmd: undefined, env: {}, network: "n", group: undefined,
    labels: { "nexus.fabric": "m", "nexus.imvu": "a", "nexus.workload": "web" }, cpuMillis: 100, memoryBytes: 1n << 24n, pids: 10,
    mounts: [], port: undefined, user: "1:1", hostname: "x",
  });
  const s = new Sampler({ driver, fabric: "m", intervalMs: 1000 });
  assert.deepEqual(await s.tick(5_100), []);
  const r = await s.tick(6_100);
  assert.equal(r.length, 1);
  assert.equal(r[0]?.workload, "a/web");
  assert.deepEqual(await s.tick(6_200), []);
  assert.throws(() => new Sampler({ driver, fabric: "m", intervalMs: 10 }), RangeError);
});
