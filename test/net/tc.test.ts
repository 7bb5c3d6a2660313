/**
 * Kernel shaping: two network namespaces joined by a veth pair; TBF at a slice's rate on the
 * sender's side; a TCP transfer larger than the slice is measured from the receiver and held to
 * the rate. Root only (ip netns, tc): without root the test says so instead of passing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { applyRate, clearRate, currentRate } from "../../src/services/net/tc.ts";
import { isNexusError } from "../../src/core/errors.ts";

const root = typeof process.getuid === "function" && process.getuid() === 0;
const ns = { a: `nxnet-a-${process.pid}`, b: `nxnet-b-${process.pid}` };
const ip = (...args: string[]): string => execFileSync("ip", args, { encoding: "utf8" });

/** Runs `code` with node inside a namespace; resolves each stdout line to `onLine`, then the exit (once stdout is read). */
function nodeIn(netns: string, code: string, onLine: (l: string) => void): Promise<number> {
  const p = spawn("ip", ["netns", "exec", netns, process.execPath, "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  createInterface({ input: p.stdout }).on("line", onLine);
  return new Promise((r) => p.once("close", (c) => r(c ?? -1)));
}

describe("tc: a slice's bandwidth held by the kernel", { skip: root ? false : "needs root for ip netns and tc" }, () => {
  before(() => {
    ip("netns", "add", ns.a);
    ip("netns", "add", ns.b);
    ip("-n", ns.a, "link", "add", "nxv0", "type", "veth", "peer", "name", "nxv1", "netns", ns.b);
    ip("-n", ns.a, "addr", "add", "10.231.7.1/30", "dev", "nxv0");
    ip("-n", ns.b, "addr", "add", "10.231.7.2/30", "dev", "nxv1");
    for (const [n, d] of [[ns.a, "nxv0"], [ns.b, "nxv1"]] as const) {
      ip("-n", n, "link", "set", d, "up");
      ip("-n", n, "link", "set", "lo", "up");
    }
  });
  after(() => {
    for (const n of [ns.a, ns.b]) {
      try {
        ip("netns", "del", n);
      } catch {
        // already gone
      }
    }
  });

  it("applies, reads back and clears a TBF rate; refuses bad names and rates with NET_TC_FAILED", async () => {
    const t = { dev: "nxv0", netns: ns.a };
    await applyRate(t, 1_000_000);
    assert.equal(await currentRate(t), 1_000_000);
    await clearRate(t);
    assert.equal(await currentRate(t), undefined);
    await clearRate(t);
    await assert.rejects(applyRate({ dev: "nxv0; rm -rf /", netns: ns.a }, 1000), (e) => isNexusError(e, "NET_TC_FAILED"));
    await assert.rejects(applyRate(t, 0), (e) => isNexusError(e, "NET_TC_FAILED"));
    await assert.rejects(applyRate({ dev: "nope0", netns: ns.a }, 1000), (e) => isNexusError(e, "NET_TC_FAILED"));
  });

  it("holds a 3 MiB transfer to a 1 MiB/s slice (about 3 s), where unshaped it takes a fraction of that", async () => {
    const rate = 1024 * 1024;
    const size = 3 * 1024 * 1024;
    const measure = async (): Promise<number> => {
      let ms = -1;
      let ready: () => void = () => undefined;
      const listening = new Promise<void>((r) => (ready = r));
      const server = nodeIn(
        ns.b,
        `const s=require("net").createServer(c=>{let n=0,t0=0;c.on("data",d=>{if(!t0)t0=Date.now();n+=d.length});c.on("end",()=>{console.log("done "+n+" "+(Date.now()-t0));s.close()})});s.listen(7001,"10.231.7.2",()=>console.log("listening"))`,
        (l) => {
          if (l === "listening") ready();
          const m = /^done (\d+) (\d+)$/.exec(l);
          if (m) {
            assert.equal(Number(m[1]), size);
            ms = Number(m[2]);
          }
        },
      );
      await listening;
      const client = await nodeIn(ns.a, `const c=require("net").connect(7001,"10.231.7.2",()=>{c.end(Buffer.alloc(${size},97))})`, () => undefined);
      assert.equal(client, 0);
      assert.equal(await server, 0);
      return ms;
    };
    const t = { dev: "nxv0", netns: ns.a };
    await clearRate(t);
    const free = await measure();
    await applyRate(t, rate);
    const shaped = await measure();
    await clearRate(t);
    const bytesPerSec = (size / shaped) * 1000;
    // The first burst (1/10 s) goes at line rate; the rest at the declared rate.
    assert.ok(bytesPerSec <= rate * 1.15, `measured ${Math.round(bytesPerSec)} B/s against ${rate}`);
    assert.ok(bytesPerSec >= rate * 0.7, `measured ${Math.round(bytesPerSec)} B/s against ${rate}`);
    assert.ok(free < shaped / 3, `unshaped ${free} ms, shaped ${shaped} ms`);
  });
});
