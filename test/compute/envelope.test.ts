import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { isNexusError } from "../../src/core/errors.ts";
import {
  addUsage, cfsQuotaUs, cpusFlag, EnvelopeSchema, envelopeToWire, fits, k8sBytes, k8sCpu, parseEnvelope, profile, PROFILES,
} from "../../src/services/compute/envelope.ts";

test("profiles parse back through the wire schema", () => {
  for (const name of ["small", "medium", "large"] as const) {
    assert.deepEqual(parseEnvelope(envelopeToWire(PROFILES[name])), profile(name));
  }
  assert.ok(PROFILES.small.memoryBytes < PROFILES.medium.memoryBytes && PROFILES.medium.memoryBytes < PROFILES.large.memoryBytes);
});

test("the schema refuses out-of-bounds and malformed limits with COMPUTE_ENVELOPE_INVALID", () => {
  const good = envelopeToWire(PROFILES.small);
  const bad: unknown[] = [
    { ...good, cpuMillis: 0 },
    { ...good, cpuMillis: 1.5 },
    { ...good, memoryBytes: "1024" },
    { ...good, memoryBytes: "0123" },
    { ...good, memoryBytes: 268435456 },
    { ...good, pids: 2 },
    { ...good, diskBytes: "-1" },
    { ...good, diskBytes: "99999999999999999" },
    { cpuMillis: 500 },
    null,
  ];
  for (const b of bad) {
    assert.throws(() => parseEnvelope(b), (e) => isNexusError(e, "COMPUTE_ENVELOPE_INVALID"), JSON.stringify(b));
  }
  // A full policy envelope (mail, DNS, QoS fields) is accepted: compute keeps its own fields.
  const wide = { ...good, mailboxes: 5, qos: "bronze" };
  assert.deepEqual(EnvelopeSchema.parse(wide), PROFILES.small);
});

test("fits: equal is within, every excess is listed", () => {
  const e = PROFILES.small;
  assert.deepEqual(fits(e, {}), { ok: true });
  assert.deepEqual(fits(e, { cpuMillis: 500, memoryBytes: e.memoryBytes, diskBytes: e.diskBytes, pids: 128 }), { ok: true });
  const r = fits(e, { cpuMillis: 501, memoryBytes: e.memoryBytes + 1n, pids: 1 });
  assert.equal(r.ok, false);
  assert.deepEqual(!r.ok && r.over.map((o) => o.resource), ["cpuMillis", "memoryBytes"]);
  assert.deepEqual(!r.ok && r.over[0], { resource: "cpuMillis", limit: 500n, used: 501n });
});

test("fits agrees with a per-field comparison (property)", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5000 }), fc.bigInt({ min: 0n, max: 1n << 40n }), fc.integer({ min: 0, max: 5000 }), (cpu, mem, pids) => {
      const r = fits(PROFILES.medium, { cpuMillis: cpu, memoryBytes: mem, pids });
      const expected = cpu <= 1000 && mem <= PROFILES.medium.memoryBytes && pids <= 512;
      assert.equal(r.ok, expected);
    }),
  );
});

test("addUsage sums field by field", () => {
  assert.deepEqual(addUsage({ cpuMillis: 100, memoryBytes: 5n }, { cpuMillis: 50, pids: 3 }), { cpuMillis: 150, memoryBytes: 5n, pids: 3 });
});

test("runtime and Kubernetes quantities are exact", () => {
  assert.equal(cpusFlag(250), "0.25");
  assert.equal(cpusFlag(1000), "1");
  assert.equal(cpusFlag(1500), "1.5");
  assert.equal(cpusFlag(10), "0.01");
  assert.equal(cpusFlag(2005), "2.005");
  assert.equal(cfsQuotaUs(250, 100_000), 25_000);
  assert.equal(k8sCpu(250), "250m");
  assert.equal(k8sCpu(2000), "2");
  assert.equal(k8sBytes(256n * 1024n * 1024n), "256Mi");
  assert.equal(k8sBytes(1024n ** 3n), "1Gi");
  assert.equal(k8sBytes(1000n), "1000");
});
