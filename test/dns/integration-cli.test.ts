/**
 * `nexus dns …` and `nexus domain …` as real child processes against the API with the DNS routes
 * mounted and the DNS service running: records set and deleted through signed commands are
 * answered by dig, listed and exported (named-checkzone accepts the export), denied commands exit 1
 * naming their gate, another identity sees nothing (gate 16), and a custom domain is claimed and
 * verified through the resolver.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { commandRoutes } from "../../src/api/routes/commands.ts";
import { dnsRoutes } from "../../src/api/routes/dns.ts";
import { imvuRoutes } from "../../src/api/routes/imvus.ts";
import { startDnsServer, type DnsServer } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { startDns, type DnsInstallation } from "./integration-support.ts";
import { dig, run, tempDir, waitFor } from "./support.ts";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const full: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete full.NEXUS_DATABASE_URL;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], { env: full, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("nexus dns and nexus domain", () => {
  const t = tempDir("cli");
  let d: DnsInstallation;
  let api: FastifyInstance;
  let upstream: DnsServer;
  const upstreamZones = new ZoneStore();
  let creator: Record<string, string>;
  let mallory: Record<string, string>;
  const ok = async (args: string[], who = creator): Promise<Run> => {
    const r = await cli(args, who);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    return r;
  };

  before(async () => {
    upstreamZones.put({
      origin: "example.net.",
      soa: { mname: "ns.example.net.", rname: "hostmaster.example.net.", serial: 1, refresh: 3600, retry: 600, expire: 604800, minimum: 1, ttl: 30 },
      records: [{ name: "@", ttl: 30, data: { type: "NS", host: "ns.example.com." } }],
    });
    upstream = await startDnsServer({ port: 0, zones: upstreamZones });
    d = await startDns({ config: { upstreams: [{ host: "127.0.0.1", port: upstream.port }] }, verifyIntervalMs: 3_600_000 });
    const { pipeline, ledger, verifierKey } = d.inst.platform;
    api = await buildApi({ ledger, modules: [commandRoutes({ pipeline }), imvuRoutes({ pipeline, ledger, verifierKey }), dnsRoutes({ platform: d.inst.platform, verifier: d.dns })] });
    await api.listen({ host: "127.0.0.1", port: 0 });
    const addr = api.server.address();
    const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    const who = (name: string): Record<string, string> => ({ NEXUS_API: url, NEXUS_KEYRING: join(t.dir, name, "keyring"), NEXUS_TRUST_DIR: join(t.dir, name, "trust") });
    creator = who("creator");
    mallory = who("mallory");
    await ok(["imvu", "create", "--name", "shop", "--bare"]);
    await ok(["id", "register"], mallory);
  });
  after(async () => {
    await api?.close();
    await d?.stop();
    await upstream?.close();
    t.remove();
  });

  test("dns set of each kind of value is answered by dig; dns delete removes it", async () => {
    await ok(["dns", "set", "--imvu", "shop", "www", "A", "192.0.2.5", "192.0.2.6", "--ttl", "300"]);
    await ok(["dns", "set", "--imvu", "shop", "@", "MX", "10 mx.example.net."]);
    await ok(["dns", "set", "--imvu", "shop", "note", "TXT", "hello world"]);
    await ok(["dns", "set", "--imvu", "shop", "alias.shop.nexus.test.", "CNAME", "www"]);
    await ok(["dns", "set", "--imvu", "shop", "_sip._tcp", "SRV", "1 2 5060 www"]);
    await ok(["dns", "set", "--imvu", "shop", "@", "CAA", '0 issue "letsencrypt.org"']);
    const www = await dig(d.port, "www.shop.nexus.test.", "A");
    assert.deepEqual([...www.answer].sort(), ["www.shop.nexus.test. 300 IN A 192.0.2.5", "www.shop.nexus.test. 300 IN A 192.0.2.6"]);
    assert.ok((await dig(d.port, "shop.nexus.test.", "MX")).answer.some((l) => l.endsWith("MX 10 mx.example.net.")));
    assert.ok((await dig(d.port, "note.shop.nexus.test.", "TXT")).answer.some((l) => l.endsWith('TXT "hello world"')));
    assert.ok((await dig(d.port, "alias.shop.nexus.test.", "A")).answer.some((l) => l.endsWith("CNAME www.shop.nexus.test.")));
    assert.ok((await dig(d.port, "_sip._tcp.shop.nexus.test.", "SRV")).answer.some((l) => l.endsWith("SRV 1 2 5060 www.shop.nexus.test.")));
    await ok(["dns", "delete", "--imvu", "shop", "note", "TXT"]);
    assert.equal((await dig(d.port, "note.shop.nexus.test.", "TXT")).status, "NXDOMAIN");
  });

  test("dns list --json and dns export (named-checkzone accepts the export)", async () => {
    const list = JSON.parse((await ok(["dns", "list", "--imvu", "shop", "--json"])).stdout) as { zones: { origin: string; records: { name: string; type: string; managedBy: string }[] }[] };
    const zone = list.zones.find((z) => z.origin === "shop.nexus.test.");
    assert.ok(zone?.records.some((r) => r.name === "www.shop.nexus.test." && r.type === "A" && r.managedBy === "imvu"));
    assert.ok(zone?.records.some((r) => r.type === "SOA" && r.managedBy === "platform"));
    const human = (await ok(["dns", "list", "--imvu", "shop"])).stdout;
    assert.match(human, /; zone shop\.nexus\.test\. \(base\) serial \d+/);
    const exported = (await ok(["dns", "export", "--imvu", "shop"])).stdout;
    assert.match(exported, /^; zone shop\.nexus\.test\. serial \d+/);
    const file = join(t.dir, "shop.zone");
    writeFileSync(file, exported);
    const r = await run("named-checkzone", ["-i", "local", "shop.nexus.test.", file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test("denied commands exit 1 naming the gate; another identity sees no such IMVU (gate 16); bad input exits 2", async () => {
    const apex = await cli(["dns", "set", "--imvu", "shop", "@", "CNAME", "elsewhere.example."], creator);
    assert.equal(apex.code, 1, apex.stderr);
    assert.match(apex.stderr, /GATE_DENIED.*gate 4: no CNAME at the apex/);
    const other = await cli(["dns", "list", "--imvu", "shop"], mallory);
    assert.equal(other.code, 3, other.stderr);
    assert.match(other.stderr, /NOT_FOUND/);
    const badType = await cli(["dns", "set", "--imvu", "shop", "www", "HINFO", "x y"], creator);
    assert.equal(badType.code, 2, badType.stderr);
    const badValue = await cli(["dns", "set", "--imvu", "shop", "www", "A", "not-an-address"], creator);
    assert.equal(badValue.code, 2, badValue.stderr);
  });

  test("domain claim prints the challenge; domain verify binds it once the TXT is observed", async () => {
    const claim = JSON.parse((await ok(["domain", "claim", "--imvu", "shop", "example.net", "--json"])).stdout) as { token: string; challenge: string };
    assert.equal(claim.challenge, "_nexus-challenge.example.net");
    const early = await cli(["domain", "verify", "--imvu", "shop", "example.net"], creator);
    assert.equal(early.code, 1);
    assert.match(early.stdout, /not observed yet/);
    upstreamZones.put({
      origin: "example.net.",
      soa: { mname: "ns.example.net.", rname: "hostmaster.example.net.", serial: 2, refresh: 3600, retry: 600, expire: 604800, minimum: 1, ttl: 30 },
      records: [
        { name: "@", ttl: 30, data: { type: "NS", host: "ns.example.com." } },
        { name: "_nexus-challenge", ttl: 30, data: { type: "TXT", text: [claim.token] } },
      ],
    });
    let last: Run | undefined;
    await waitFor(async () => {
      last = await cli(["domain", "verify", "--imvu", "shop", "example.net"], creator);
      return last.code === 0;
    }, 15_000, "domain verify to bind example.net").catch((e: unknown) => assert.fail(`${String(e)}: ${last?.stdout ?? ""}${last?.stderr ?? ""}`));
    assert.match(last?.stdout ?? "", /example\.net is bound to shop/);
    await ok(["dns", "set", "--imvu", "shop", "--zone", "example.net", "www", "A", "192.0.2.99"]);
    assert.ok((await dig(d.port, "www.example.net.", "A")).answer.some((l) => l.endsWith("A 192.0.2.99")));
  });
});
