/**
 * The conformance suite every container driver passes (STYLE.md: ports and drivers). `make` gives
 * a driver, a run specification factory for a container that prints "hello" then waits, and cleanup.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ContainerDriver, RunSpec } from "../../src/services/compute/driver.ts";

/** What a driver under test provides. */
export interface ConformanceSubject {
  readonly driver: ContainerDriver;
  /** A spec for a long-running container on `network` that prints "hello" first. */
  spec(name: string, network: string, labels: Record<string, string>): RunSpec;
  readonly labels: Record<string, string>;
  /** A unique prefix for names. */
  readonly prefix: string;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Registers the conformance tests for one driver. */
export function driverConformance(name: string, subject: () => ConformanceSubject): void {
  test(`${name} conformance: networks are idempotent and listed by label`, async () => {
    const s = subject();
    const net = `${s.prefix}-conf-net`;
    const a = await s.driver.ensureNetwork(net, s.labels);
    const b = await s.driver.ensureNetwork(net, s.labels);
    assert.equal(a.name, net);
    assert.equal(a.subnet, b.subnet);
    assert.ok((await s.driver.listNetworks(s.labels)).some((n) => n.name === net));
    assert.equal((await s.driver.listNetworks({ ...s.labels, "nexus.other": "x" })).length, 0);
    await s.driver.removeNetwork(net);
    await s.driver.removeNetwork(net);
    assert.ok(!(await s.driver.listNetworks(s.labels)).some((n) => n.name === net));
  });

  test(`${name} conformance: run, list, logs, stats, pause, stop, start, remove`, async () => {
    const s = subject();
    const net = `${s.prefix}-conf-life`;
    await s.driver.ensureNetwork(net, s.labels);
    const labels = { ...s.labels, "nexus.workload": "life" };
    try {
      const c = await s.driver.run(s.spec(`${s.prefix}-life`, net, labels));
      assert.equal(c.state, "running");
      assert.ok(c.pid > 0);
      const listed = await s.driver.list(labels);
      assert.deepEqual(listed.map((x) => x.id), [c.id]);
      assert.equal(listed[0]?.labels["nexus.workload"], "life");
      assert.equal((await s.driver.list({ ...labels, "nexus.workload": "other" })).length, 0);
      await waitFor("hello in the logs", async () => (await s.driver.logs(c.id, 10)).includes("hello"));
      const u = await s.driver.stats(listed[0] as typeof c);
      assert.ok(u !== undefined && u.pids >= 1 && u.memoryBytes > 0n);
      await s.driver.pause(c.id);
      assert.equal((await s.driver.list(labels))[0]?.state, "paused");
      await s.driver.unpause(c.id);
      await s.driver.stop(c.id, 2000);
      const stopped = (await s.driver.list(labels))[0];
      assert.equal(stopped?.state, "exited");
      assert.equal(await s.driver.stats(stopped as typeof c), undefined);
      await s.driver.start(c.id);
      assert.equal((await s.driver.list(labels))[0]?.state, "running");
      await s.driver.remove(c.id);
      await s.driver.remove(c.id);
      assert.equal((await s.driver.list(labels)).length, 0);
    } finally {
      for (const c of await s.driver.list(labels)) await s.driver.remove(c.id);
      await s.driver.removeNetwork(net);
    }
  });

  test(`${name} conformance: a missing image is an error, not a container`, async () => {
    const s = subject();
    const net = `${s.prefix}-conf-img`;
    await s.driver.ensureNetwork(net, s.labels);
    try {
      const spec = { ...s.spec(`${s.prefix}-noimg`, net, s.labels), root: { kind: "image" as const, ref: "localhost/nexus-no-such-image:0" } };
      await assert.rejects(s.driver.run(spec));
      assert.equal(await s.driver.imageExists("localhost/nexus-no-such-image:0"), false);
    } finally {
      for (const c of await s.driver.list(s.labels)) await s.driver.remove(c.id);
      await s.driver.removeNetwork(net);
    }
  });
}
