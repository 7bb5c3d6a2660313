/**
 * Kernel shaping of IMVU container networks. The plan is checked as data (what to apply and clear
 * for what is wanted, held and observed; which interface carries a subnet). Then, with root and
 * real podman (runc): an IMVU whose envelope declares 256 KiB/s runs a busybox httpd; a 2 MiB
 * download from it and a 2 MiB upload to it, straight to the container's published port (not
 * through the gateway), take about size / rate once the gateway module has shaped the IMVU's
 * bridge, where unshaped the same download takes a fraction of that. A raised envelope is
 * re-applied, a qdisc removed by hand is put back, the kernel's throttling is reported to the
 * ledger signed by the gateway identity, and departure releases the bridge and its ifb.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { createGatewayService, type RunningGateway } from "../../src/platform/services/gateway.ts";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { bridgeForSubnet, observeBridge, planShaping, sliceRate, SHAPING_RATE_MAX, type BridgeObserved, type ShapeWant } from "../../src/services/net/shaping.ts";
import { bridgeShaping, ifbName, orphanIfbs, sweepIfbs, type LinkInfo, type QdiscInfo } from "../../src/services/net/tc.ts";
import { busyboxRootfs, waitFor } from "../compute/support.ts";
import { applied, openSite, person, type Site } from "../compute/integration-support.ts";

describe("the shaping plan (pure)", () => {
  const w = (imvu: string, bridge: string, bridgeIndex: number, bytesPerSec: number): ShapeWant => ({ imvu, bridge, bridgeIndex, bytesPerSec });
  const seen = (rate: number | undefined, ports: string[] = [], unredirected: string[] = []): BridgeObserved => ({ toContainers: rate, ifbRate: rate, ports, unredirected });
  const link = (name: string, index: number, kind: string, master?: string): LinkInfo => ({ name, index, kind, master });
  const qd = (dev: string, kind: string, rate?: number): QdiscInfo => ({ dev, kind, root: kind !== "ingress", rate, overlimits: 0, drops: 0, bytes: 0 });

  it("reads a bridge from the kernel's links and qdiscs: both rates, its ports, the ports not redirected", () => {
    const links = [link("cni-podman3", 7, "bridge"), link("veth1", 20, "veth", "cni-podman3"), link("veth2", 21, "veth", "cni-podman3"), link("veth9", 22, "veth", "cni-podman4"), link("nxifb7", 23, "ifb")];
    const qdiscs = [qd("cni-podman3", "tbf", 1000), qd("nxifb7", "tbf", 1000), qd("veth1", "ingress"), qd("veth9", "ingress"), qd("nxifb8", "tbf", 5)];
    assert.deepEqual(observeBridge(links, qdiscs, "cni-podman3", 7), { toContainers: 1000, ifbRate: 1000, ports: ["veth1", "veth2"], unredirected: ["veth2"] });
    assert.equal(observeBridge(links, qdiscs, "cni-podman3", 8).ifbRate, undefined, "another bridge index: another ifb");
    assert.deepEqual(observeBridge([], [], "gone", 9), { toContainers: undefined, ifbRate: undefined, ports: [], unredirected: [] });
  });

  it("shapes a bridge whole when a rate is off, and otherwise only its new ports", () => {
    const a = w("a", "cni-podman3", 7, 1000);
    assert.deepEqual(planShaping([a], new Map(), new Map()).apply, [{ want: a, full: true, ports: [] }], "nothing observed");
    assert.deepEqual(planShaping([a], new Map(), new Map([["cni-podman3", seen(1000, ["v1"])]])).apply, [], "already held: a restarted gateway adopts it");
    for (const o of [{ ...seen(1000, ["v1"]), toContainers: 2000 }, { ...seen(1000, ["v1"]), ifbRate: undefined }, seen(undefined, ["v1"])]) {
      assert.deepEqual(planShaping([a], new Map([["a", a]]), new Map([["cni-podman3", o]])).apply, [{ want: a, full: true, ports: ["v1"] }], JSON.stringify(o));
    }
    assert.deepEqual(planShaping([a], new Map([["a", a]]), new Map([["cni-podman3", seen(1000, ["v1", "v2"], ["v2"])]])).apply, [{ want: a, full: false, ports: ["v2"] }], "a new container");
  });

  it("re-applies a changed rate and releases departed IMVUs and recreated bridges", () => {
    const a = w("a", "cni-podman3", 7, 1000);
    const p = planShaping([{ ...a, bytesPerSec: 5000 }], new Map([["a", a]]), new Map([["cni-podman3", seen(1000, ["v1"])]]));
    assert.deepEqual(p.apply.map((x) => [x.want.bytesPerSec, x.full]), [[5000, true]]);
    assert.deepEqual(p.clear, [], "a rate change is a replace, not a release");
    assert.deepEqual(planShaping([], new Map([["a", a]]), new Map()).clear, [a], "the IMVU departed or its network is gone");
    const moved = planShaping([w("a", "cni-podman9", 12, 1000)], new Map([["a", a]]), new Map());
    assert.deepEqual(moved.clear, [a], "the old bridge is released");
    assert.deepEqual(moved.apply.map((x) => x.want.bridgeIndex), [12]);
  });

  it("refuses ambiguity: two IMVUs on one bridge, or one IMVU on two bridges, shape nothing of theirs", () => {
    const p = planShaping([w("a", "br0", 5, 1000), w("b", "br0", 5, 9000), w("c", "br1", 6, 10), w("c", "br2", 8, 10), w("d", "br3", 9, 10)], new Map(), new Map());
    assert.deepEqual(p.apply.map((x) => x.want.imvu), ["d"]);
    assert.deepEqual(p.conflicts.map((x) => x.imvu).sort(), ["a", "b", "c", "c"]);
  });

  it("sweeps only ifb devices of this scheme whose bridge is gone", () => {
    const links = [link("cni-podman3", 7, "bridge"), link("nxifb7", 30, "ifb"), link("nxifb8", 31, "ifb"), link("ifb0", 2, "ifb"), link("nxifb9", 32, "veth"), link("nxifb10x", 33, "ifb")];
    assert.deepEqual(orphanIfbs(links), ["nxifb8"]);
  });

  it("finds the bridge of a subnet by its gateway address, and only an unambiguous one", () => {
    const ifaces = [
      { name: "eth0", index: 2, addresses: [{ local: "192.0.2.10", prefixLength: 24 }] },
      { name: "cni-podman3", index: 7, addresses: [{ local: "10.89.3.1", prefixLength: 24 }] },
      { name: "odd", index: 9, addresses: [{ local: "10.89.4.1", prefixLength: 16 }] },
    ];
    assert.deepEqual(bridgeForSubnet(ifaces, "10.89.3.0/24"), { name: "cni-podman3", index: 7 });
    assert.equal(bridgeForSubnet(ifaces, "10.89.4.0/24"), undefined, "same addresses, another prefix length");
    assert.equal(bridgeForSubnet(ifaces, "10.89.5.0/24"), undefined, "no container yet: no bridge");
    assert.equal(bridgeForSubnet([...ifaces, { name: "dup", index: 11, addresses: [{ local: "10.89.3.254", prefixLength: 24 }] }], "10.89.3.0/24"), undefined);
    for (const bad of ["", "10.89.3.0", "10.89.3.0/33", "10.89.3.0/0", "300.1.1.0/24", "10.89.3.0/24 ", "::1/64"]) assert.equal(bridgeForSubnet(ifaces, bad), undefined, bad);
  });

  it("maps declared bandwidths to tc rates: 0 holds to the least rate, huge values are capped", () => {
    assert.equal(sliceRate("262144"), 262144);
    assert.equal(sliceRate(5n * 1024n * 1024n), 5 * 1024 * 1024);
    assert.equal(sliceRate("0"), 1);
    assert.equal(sliceRate("9999999999999999"), SHAPING_RATE_MAX);
  });
});

const root = typeof process.getuid === "function" && process.getuid() === 0;
const podman = spawnSync("podman", ["--version"]).status === 0;
const KiB = 1024;
const RATE = 256 * KiB;
const SIZE = 2 * 1024 * KiB;

/** GET /big from the container's published port; resolves with the bytes and the milliseconds taken. */
function download(port: number, path = "/big"): Promise<{ bytes: number; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => resolve({ bytes, ms: Date.now() - t0 }));
      res.on("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** POSTs `bytes` to the container's CGI sink, which reads them all before answering. */
function upload(port: number, bytes: number): Promise<{ answer: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/cgi-bin/sink", method: "POST", agent: false, headers: { "content-length": String(bytes), "content-type": "application/octet-stream" } }, (res) => {
      let answer = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (answer += c));
      res.on("end", () => resolve({ answer, ms: Date.now() - t0 }));
    });
    req.setTimeout(120_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(randomBytes(bytes));
  });
}

/** Milliseconds a transfer of `bytes` takes at `rate` bytes/s. */
const atRate = (bytes: number, rate: number): number => (bytes / rate) * 1000;

describe("kernel shaping of an IMVU's container network (root, podman)", { skip: root && podman ? false : "needs root and podman" }, () => {
  const work = mkdtempSync(join(tmpdir(), "nexus-net-shaping-"));
  let site: Site;
  let gw: RunningGateway;
  let owner: LocalIdentity;
  let port = 0;
  let unshapedMs = 0;
  const logs: string[] = [];

  before(async () => {
    site = await openSite();
    owner = await person(site, "owner");
    const envelope = { ...envelopeToWire(ENVELOPE_PROFILES.small), diskBytes: String(32 * 1024 * 1024), bandwidthBytesPerSec: String(RATE) };
    await applied(site, owner, { type: "imvu.create", imvu: "slow", body: { name: "slow", jurisdiction: "DE", class: "imvu", envelope } });
    const rootfs = busyboxRootfs(join(work, "rootfs"));
    writeFileSync(join(rootfs, "www/big"), randomBytes(SIZE));
    mkdirSync(join(rootfs, "www/cgi-bin"));
    // busybox httpd hands a POST body to the CGI's stdin and closes it after Content-Length bytes.
    writeFileSync(join(rootfs, "www/cgi-bin/sink"), '#!/bin/sh\nn=$(wc -c)\nprintf "Content-Type: text/plain\\r\\n\\r\\nread %s\\n" "$n"\n');
    chmodSync(join(rootfs, "www/cgi-bin/sink"), 0o755);
    const sha = (await stageSourceDir(site.home, "slow", rootfs)).sha256;
    await applied(site, owner, {
      type: "compute.workload.deploy",
      imvu: "slow",
      body: { name: "web", source: { kind: "rootfs", sha256: sha }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080 },
    });
    await site.compute.settle();
    port = (await waitFor("the workload's address", async () => {
      await site.compute.reconcileNow();
      const a = site.compute.address("slow", "web");
      if (a === undefined) return undefined;
      return (await download(a.port, "/index.html")).bytes > 0 ? a : undefined;
    }, 60_000)).port;
    // Before any gateway runs the bridge is not shaped: the baseline the shaped figures must beat.
    const free = await download(port);
    assert.equal(free.bytes, SIZE);
    unshapedMs = free.ms;
    const ports = { ...DEFAULT_PORTS, gateway: 0, gatewayTls: 0 };
    const module = createGatewayService({ shaping: { passMs: 600_000, quietMs: 1_000 } });
    gw = (await module.start({ platform: site.platform, config: { host: "127.0.0.1", ports, public: false }, log: (l) => logs.push(l), services: [site.compute] })) as RunningGateway;
  });

  after(async () => {
    await gw?.stop();
    await site?.done();
    // The bridge went with the network; its ifb is swept like one a crashed gateway left behind.
    if (root) await sweepIfbs();
    rmSync(work, { recursive: true, force: true });
  });

  const held = () => {
    const h = gw.shaping.shaper?.held().get("slow");
    assert.ok(h, `the IMVU's bridge is held; log: ${logs.join(" | ")}`);
    return h;
  };

  it("holds the IMVU's bridge, both directions, to the envelope's bandwidth", async () => {
    assert.ok(gw.shaping.shaper, gw.shaping.status);
    await waitFor("the bridge to be shaped", async () => {
      await gw.shaping.pass();
      return gw.shaping.shaper?.held().get("slow");
    }, 30_000, 200);
    const h = held();
    assert.equal(h.bytesPerSec, RATE);
    const b = await bridgeShaping({ dev: h.bridge });
    assert.deepEqual({ ...b, ports: b.ports.length }, { toContainers: RATE, fromContainers: RATE, ifb: ifbName(h.bridgeIndex), ports: 1 }, "one container, its port redirected");
  });

  it("a 2 MiB download straight from the container (bypassing the gateway) is held near 256 KiB/s", async () => {
    const r = await download(port);
    assert.equal(r.bytes, SIZE);
    const want = atRate(SIZE, RATE);
    assert.ok(r.ms >= 0.6 * want, `took ${r.ms} ms; at ${RATE} B/s it takes ${want} ms`);
    assert.ok(r.ms <= 3 * want, `took ${r.ms} ms: shaped far below the slice`);
    assert.ok(unshapedMs < r.ms / 3, `unshaped ${unshapedMs} ms against shaped ${r.ms} ms`);
  });

  it("a 2 MiB upload straight to the container is held near 256 KiB/s too", async () => {
    const r = await upload(port, SIZE);
    assert.match(r.answer, new RegExp(`read ${SIZE}`));
    const want = atRate(SIZE, RATE);
    assert.ok(r.ms >= 0.6 * want, `took ${r.ms} ms; at ${RATE} B/s it takes ${want} ms`);
    assert.ok(r.ms <= 3 * want, `took ${r.ms} ms: shaped far below the slice`);
  });

  it("the kernel's throttling is reported to the ledger as an episode of the declared bandwidth, by the gateway", async () => {
    await gw.shaping.pass();
    await new Promise((r) => setTimeout(r, 1_200));
    await gw.shaping.pass();
    const rec = await waitFor("the kernel's throttle.report", async () => {
      const found = site.platform.state.list("throttle", "slow/gateway/kernel-").map(([, t]) => t);
      return found.length > 0 ? found : undefined;
    }, 10_000);
    const t = rec[0] as unknown as Record<string, unknown>;
    assert.equal(t.limit, "bandwidthBytesPerSec");
    assert.equal(t.declared, String(RATE));
    assert.ok(Number(t.count) >= 1);
  });

  it("shaping removed by hand (the bridge's TBF, a port's redirect) is put back by the next pass", async () => {
    const h = held();
    const [portName] = (await bridgeShaping({ dev: h.bridge })).ports;
    assert.ok(portName);
    execFileSync("tc", ["qdisc", "del", "dev", h.bridge, "root"]);
    execFileSync("tc", ["qdisc", "del", "dev", portName, "handle", "ffff:", "ingress"]);
    const off = await bridgeShaping({ dev: h.bridge });
    assert.deepEqual([off.toContainers, off.fromContainers], [undefined, undefined]);
    await gw.shaping.pass();
    const on = await bridgeShaping({ dev: h.bridge });
    assert.deepEqual([on.toContainers, on.fromContainers], [RATE, RATE]);
  });

  it("a raised envelope is re-applied: 2 MiB now takes about 2 s", async () => {
    const faster = 1024 * KiB;
    const envelope = { ...envelopeToWire(ENVELOPE_PROFILES.small), diskBytes: String(32 * 1024 * 1024), bandwidthBytesPerSec: String(faster) };
    await applied(site, owner, { type: "imvu.envelope.change", imvu: "slow", body: { envelope } });
    await gw.shaping.pass();
    const h = held();
    assert.equal(h.bytesPerSec, faster);
    const b = await bridgeShaping({ dev: h.bridge });
    assert.deepEqual([b.toContainers, b.fromContainers], [faster, faster]);
    const r = await download(port);
    assert.equal(r.bytes, SIZE);
    assert.ok(r.ms >= 0.6 * atRate(SIZE, faster), `took ${r.ms} ms`);
    assert.ok(r.ms < 0.6 * atRate(SIZE, RATE), `took ${r.ms} ms: still held to the old rate`);
  });

  it("departure releases the bridge and removes its ifb", async () => {
    const h = held();
    await applied(site, owner, { type: "imvu.exit.request", imvu: "slow", body: {} });
    await applied(site, owner, { type: "imvu.depart", imvu: "slow", body: {} });
    const p = await gw.shaping.pass();
    assert.deepEqual(p?.cleared.map((c) => c.imvu), ["slow"]);
    assert.equal(gw.shaping.shaper?.held().has("slow"), false);
    assert.notEqual(spawnSync("ip", ["link", "show", ifbName(h.bridgeIndex)]).status, 0, "the ifb is gone");
    const bridgeLeft = spawnSync("ip", ["link", "show", h.bridge]).status === 0;
    if (bridgeLeft) assert.equal((await bridgeShaping({ dev: h.bridge })).toContainers, undefined);
  });
});
