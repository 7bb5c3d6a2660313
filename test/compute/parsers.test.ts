import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isNexusError } from "../../src/core/errors.ts";
import { appCommand, isStaticElf, parseLdd, STATIC_SERVER_PATH } from "../../src/services/compute/base-image.ts";
import { parseBlkio, parseIoStat, parseKeyValues, parseMountinfo, parseNetDev, parseProcCgroup } from "../../src/services/compute/cgroup.ts";
import { oomKillsOf, parseOomRecord } from "../../src/services/compute/kernel-log.ts";
import { containerName, slug } from "../../src/services/compute/names.ts";
import { parsePs, pickSubnet, runArgs } from "../../src/services/compute/podman.ts";
import { PROFILES } from "../../src/services/compute/envelope.ts";
import { runSpecFor } from "../../src/services/compute/reconciler.ts";

const work = mkdtempSync(join(tmpdir(), "nexus-compute-parse-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("mountinfo: v1 controllers, v2 unified", () => {
  const v1 = [
    "30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu",
    "31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpuacct",
    "32 25 0:28 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory",
    "33 25 0:29 / /sys/fs/cgroup/pids rw,relatime shared:12 - cgroup cgroup rw,pids",
  ].join("\n");
  const l1 = parseMountinfo(v1);
  assert.equal(l1?.version, 1);
  assert.equal(l1?.mounts.get("memory"), "/sys/fs/cgroup/memory");
  assert.equal(l1?.mounts.get("cpuacct"), "/sys/fs/cgroup/cpuacct");
  const l2 = parseMountinfo("29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate");
  assert.equal(l2?.version, 2);
  assert.equal(l2?.mounts.get("pids"), "/sys/fs/cgroup");
  assert.equal(parseMountinfo("garbage\n\n"), undefined);
});

test("proc cgroup, key-values, blkio, io.stat and net/dev", () => {
  const m = parseProcCgroup("4:memory:/nexus/f/a/libpod-1\n1:cpu,cpuacct:/x\n0::/unified\nbad line");
  assert.equal(m.get("memory"), "/nexus/f/a/libpod-1");
  assert.equal(m.get("cpuacct"), "/x");
  assert.equal(m.get(""), "/unified");
  assert.deepEqual([...parseKeyValues("oom_kill_disable 0\nunder_oom 0\noom_kill 3\nnoise")], [["oom_kill_disable", 0n], ["under_oom", 0n], ["oom_kill", 3n]]);
  assert.deepEqual(parseBlkio("8:0 Read 100\n8:0 Write 50\n8:0 Total 150\n7:1 Read 1\nTotal 151"), { read: 101n, write: 50n });
  assert.deepEqual(parseIoStat("8:0 rbytes=10 wbytes=20 rios=1\n7:0 rbytes=5 wbytes=0"), { read: 15n, write: 20n });
  const dev = "Inter-|   Receive\n face |bytes packets\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1200 10 0 0 0 0 0 0 800 8 0 0 0 0 0 0\n";
  assert.deepEqual(parseNetDev(dev), { rx: 1200n, tx: 800n });
});

test("OOM kills are read from kernel log records", () => {
  const rec = "6,690,2956141984,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=libpod-abc,mems_allowed=0,oom_memcg=/nexus/f/a,task_memcg=/nexus/f/a/libpod-abc,task=tail,pid=10746,uid=10000";
  const k = parseOomRecord(rec);
  assert.deepEqual(k, { oomGroup: "/nexus/f/a", taskGroup: "/nexus/f/a/libpod-abc", pid: 10746, task: "tail", atUs: 2956141984n });
  assert.equal(parseOomRecord("6,1,2,-;Memory cgroup out of memory: Killed process 1"), undefined);
  assert.equal(parseOomRecord("no semicolon"), undefined);
  assert.equal(oomKillsOf(k ? [k] : [], "abc").length, 1);
  assert.equal(oomKillsOf(k ? [k] : [], "ab").length, 0);
});

test("podman ps JSON parses; garbage is COMPUTE_PODMAN_OUTPUT", () => {
  const ps = JSON.stringify([{ Id: "a1", Names: ["n"], Labels: { k: "v" }, State: "running", ExitCode: 0, Pid: 7, StartedAt: 10, ExitedAt: -62135596800, Ports: [{ host_ip: "127.0.0.1", container_port: 8080, host_port: 41000, range: 1, protocol: "tcp" }] }]);
  const [c] = parsePs(ps);
  assert.deepEqual(c, { id: "a1", name: "n", labels: { k: "v" }, state: "running", exitCode: 0, pid: 7, startedAtMs: 10_000, finishedAtMs: 0, hostPort: 41000, oomKilled: false });
  assert.deepEqual(parsePs(""), []);
  assert.equal(parsePs(JSON.stringify([{ Id: "b", State: "weird", Labels: null, Ports: null }]))[0]?.state, "unknown");
  assert.throws(() => parsePs("{"), (e) => isNexusError(e, "COMPUTE_PODMAN_OUTPUT"));
  assert.throws(() => parsePs(JSON.stringify([{ Id: 5 }])), (e) => isNexusError(e, "COMPUTE_PODMAN_OUTPUT"));
});

test("subnets: first free /24 of the pool, skipping taken and overlapping ones", () => {
  assert.equal(pickSubnet("10.213.0.0/16", []), "10.213.0.0/24");
  assert.equal(pickSubnet("10.213.0.0/16", ["10.213.0.0/24", "10.88.0.0/16"]), "10.213.1.0/24");
  assert.equal(pickSubnet("10.213.0.0/16", ["10.213.0.0/23"]), "10.213.2.0/24");
  assert.equal(pickSubnet("10.213.0.0/16", [], 2), "10.213.2.0/24");
  assert.equal(pickSubnet("10.213.0.0/16", ["10.0.0.0/8"]), undefined);
  assert.equal(pickSubnet("10.213.0.0/16", Array.from({ length: 256 }, (_, i) => `10.213.${i}.0/24`)), undefined);
});

test("run arguments are the isolation contract", () => {
  const spec = runSpecFor("alpha", PROFILES.small, { name: "web", source: { kind: "image", ref: "localhost/x:1" }, port: 8080, env: { B: "2", A: "1" } }, {
    fabric: "f", baseImage: undefined, volumePath: "/v/alpha/data", volumeReadOnly: false, appCommand: () => [],
  });
  const a = runArgs(spec, { ulimits: ["nofile=1024:1024", "nproc=4096:4096"], init: true });
  const s = a.join(" ");
  for (const flag of [
    "--read-only", "--security-opt no-new-privileges", "--cap-drop all", "--user 10000:10000", `--memory ${PROFILES.small.memoryBytes}`,
    `--memory-swap ${PROFILES.small.memoryBytes}`, "--cpus 0.5", "--pids-limit 128", "--ulimit nofile=1024:1024", "--ulimit nproc=4096:4096",
    "--cgroup-parent /nexus/f/alpha", "--network nx-f-alpha", "-p 127.0.0.1::8080", "-v /v/alpha/data:/data:rw,nosuid,nodev", "--pull=never", "--init",
  ]) assert.ok(s.includes(flag), flag);
  assert.ok(s.indexOf("--env A=1") < s.indexOf("--env B=2"));
  assert.equal(a[a.length - 1], "localhost/x:1");
  const rootfs = runArgs({ ...spec, root: { kind: "rootfs", dir: "/r" }, cmd: ["sh"] }, { ulimits: [], init: false });
  assert.deepEqual(rootfs.slice(-3), ["--rootfs", "/r:O", "sh"]);
  assert.ok(!rootfs.includes("--init"));
});

test("ldd output, static ELF detection", () => {
  const ldd = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
  assert.deepEqual(parseLdd(ldd), ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]);
  assert.equal(isStaticElf(process.execPath), false);
  assert.equal(isStaticElf(join(work, "missing")), false);
});

test("app directories: Node.js entry or static site, else COMPUTE_APP_INVALID", () => {
  const mk = (name: string, files: Record<string, string>): string => {
    const d = join(work, name);
    for (const [f, b] of Object.entries(files)) {
      mkdirSync(join(d, f, ".."), { recursive: true });
      writeFileSync(join(d, f), b);
    }
    mkdirSync(d, { recursive: true });
    return d;
  };
  assert.deepEqual(appCommand(mk("a", { "package.json": '{"scripts":{"start":"node src/main.js"}}', "src/main.js": "" })), ["/usr/local/bin/node", "/app/src/main.js"]);
  assert.deepEqual(appCommand(mk("b", { "package.json": '{"main":"lib/x.js"}', "lib/x.js": "" })), ["/usr/local/bin/node", "/app/lib/x.js"]);
  assert.deepEqual(appCommand(mk("c", { "server.js": "" })), ["/usr/local/bin/node", "/app/server.js"]);
  assert.deepEqual(appCommand(mk("d", { "index.html": "" })), ["/usr/local/bin/node", STATIC_SERVER_PATH, "/app"]);
  assert.deepEqual(appCommand(mk("e", { "dist/index.html": "" })), ["/usr/local/bin/node", STATIC_SERVER_PATH, "/app/dist"]);
  assert.deepEqual(appCommand(mk("f", { "package.json": '{"main":"../../etc/passwd"}', "index.js": "" })), ["/usr/local/bin/node", "/app/index.js"]);
  for (const [name, files] of [["g", {}], ["h", { "package.json": "{nope" }], ["i", { "readme.md": "" }]] as const) {
    assert.throws(() => appCommand(mk(name, files)), (e) => isNexusError(e, "COMPUTE_APP_INVALID"), name);
  }
  assert.throws(() => appCommand(join(work, "absent")), (e) => isNexusError(e, "COMPUTE_APP_INVALID"));
});

test("runtime names are safe and stable", () => {
  assert.equal(slug("alpha"), "alpha");
  assert.match(slug("Stage.Example"), /^stage-example-[0-9a-f]{8}$/);
  assert.notEqual(slug("a_b"), slug("a.b"));
  assert.ok(slug("x".repeat(200)).length <= 24);
  assert.equal(containerName("f", "alpha", "web"), "nx-f-alpha-web");
});

test("without podman: podmanAvailable says how to install it, and driver calls fail with COMPUTE_PODMAN_MISSING", async () => {
  const { podmanAvailable, PodmanDriver } = await import("../../src/services/compute/podman.ts");
  const s = podmanAvailable("/nonexistent/podman");
  assert.equal(s.available, false);
  assert.match(s.message, /apt-get install podman runc/);
  assert.match(s.message, /\.\/nexus up/);
  const d = new PodmanDriver({ binary: "/nonexistent/podman", workDir: join(work, "podman") });
  await assert.rejects(d.list({}), (e) => isNexusError(e, "COMPUTE_PODMAN_MISSING"));
  await assert.rejects(d.ensureNetwork("x", {}), (e) => isNexusError(e, "COMPUTE_PODMAN_MISSING"));
});
