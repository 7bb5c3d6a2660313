/**
 * The stack audit on a real started stack (DNS, compute on podman, gateway, mail, API on free
 * ports): after a realistic sequence — IMVUs created, DNS records, a mailbox, revenue with
 * refunds and a payout in both split classes, a workload and its public route — every check
 * passes, through the API and through `./nexus audit` (exit 0). Then the hostile cases, each
 * undone before the next: a ledger row edited in SQLite (the server's `ledger` check and the
 * CLI's own `client.ledger` both fail: exit 1), a projection row edited (replay mismatch, and
 * the split invariants), the live DNS index tampered with (a wrong answer named), a route removed
 * from the live gateway table, a container whose kernel memory limit differs from the envelope.
 * A service not running is skipped with its reason; an unreachable API is exit 3.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, test } from "node:test";
import { AUDIT_CHECK_IDS, AuditReportSchema, type AuditReport } from "../../src/core/audit/report.ts";
import { createIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { runAudit } from "../../src/platform/audit.ts";
import { kernelContainerLimits } from "../../src/platform/audit-live.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { DEFAULT_PORTS, type ServiceModule } from "../../src/platform/service.ts";
import { computeOf, createComputeService } from "../../src/platform/services/compute.ts";
import { createDnsService, dnsServiceOf } from "../../src/platform/services/dns.ts";
import * as gatewayModule from "../../src/platform/services/gateway.ts";
import { gatewayOf } from "../../src/platform/services/gateway.ts";
import { createMailService } from "../../src/platform/services/mail.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { readLayout, groupDir, parseProcCgroup } from "../../src/services/compute/cgroup.ts";
import { LABEL_WORKLOAD } from "../../src/services/compute/names.ts";
import { podmanAvailable } from "../../src/services/compute/podman.ts";
import { stageSourceDir } from "../../src/services/compute/sources.ts";
import { buildZone } from "../../src/services/dns/zone.ts";
import { servedZoneInput } from "../../src/core/policy/dns-zones.ts";
import { buildRouteTable } from "../../src/services/net/index.ts";
import { busyboxRootfs, fabricId, waitFor } from "../compute/support.ts";
import { TestDns } from "../mail/support-smtp.ts";
import { cleanup, cli, tempDir } from "../imvu/support.ts";

const podman = podmanAvailable();
/** The gateway module, without kernel shaping of the container bridges where it offers the switch (shaping is not what is audited here). */
const withOptions = gatewayModule as unknown as { createGatewayService?: (o: { shaping: { enabled: boolean } }) => ServiceModule };
const gatewayForTest: ServiceModule = withOptions.createGatewayService?.({ shaping: { enabled: false } }) ?? gatewayModule.gatewayService;
const MiB = 1024 * 1024;

describe("nexus audit on a running stack", { skip: podman.available ? false : podman.message }, () => {
  let stack: Stack;
  let home: string;
  let fabric: string;
  let owner: LocalIdentity;
  let cliEnv: Record<string, string>;

  const submit = async (id: LocalIdentity, draft: CommandDraft): Promise<void> => {
    const r = await stack.platform.pipeline.submit(signCommand(draft, signerOf(id)).json);
    assert.equal(r.outcome, "applied", `${draft.type}: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
  };
  const revenue = async (draft: CommandDraft): Promise<void> => {
    const r = await stack.platform.submitAsService("revenue-source", draft);
    assert.equal(r.outcome, "applied", `${draft.type}: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
  };
  const person = async (name: string): Promise<LocalIdentity> => {
    const id = createIdentity(join(tempDir(`nexus-audit-${name}-`), "keyring"), { name, makeDefault: true });
    const r = await stack.platform.pipeline.submit(signCommand({ type: "identity.inception", body: { inception: id.kel[0] } }, signerOf(id)).json);
    assert.equal(r.outcome, "applied");
    return id;
  };
  const audit = async (): Promise<AuditReport> => {
    const res = await fetch(`${stack.apiUrl}/v1/audit`, { method: "POST" });
    assert.equal(res.status, 200);
    return AuditReportSchema.parse(await res.json());
  };
  const check = (r: AuditReport, id: string) => {
    const c = r.checks.find((x) => x.id === id);
    assert.ok(c, `check ${id} in the report`);
    return c;
  };
  const failing = (r: AuditReport): string[] => r.checks.filter((c) => !c.ok).map((c) => c.id);

  before(async () => {
    home = join(tempDir("nexus-audit-"), "home");
    fabric = fabricId();
    const ports = {
      ...DEFAULT_PORTS, api: await freePort(), dns: await freePort(), resolver: await freePort(), smtp: await freePort(),
      submission: await freePort(), imap: await freePort(), gateway: await freePort(), gatewayTls: await freePort(),
    };
    const modules = [
      createDnsService({ config: { upstreams: [] } }),
      createComputeService({ fabric, resyncMs: 60_000, debounceMs: 30 }),
      gatewayForTest,
      createMailService({ resolver: new TestDns().resolver(), hostname: "mail.nexus.test" }),
    ];
    stack = await startStack({ home, config: { host: "127.0.0.1", ports, public: false }, modules, log: () => {} });
    owner = await person("owner");
    const producer = await person("producer");
    const envelope = { ...envelopeToWire(ENVELOPE_PROFILES.small), diskBytes: String(32 * MiB) };
    await submit(owner, { type: "imvu.create", imvu: "stage", body: { name: "stage", jurisdiction: "DE", class: "imvu", envelope } });
    await submit(producer, { type: "imvu.create", imvu: "show", body: { name: "show", jurisdiction: "FR", class: "mini-platform", envelope } });
    await submit(owner, { type: "dns.rrset.set", imvu: "stage", body: { name: "www.stage.nexus.test", type: "A", ttl: 300, values: [{ type: "A", address: "192.0.2.10" }] } });
    await submit(owner, { type: "dns.rrset.set", imvu: "stage", body: { name: "stage.nexus.test", type: "TXT", values: [{ type: "TXT", text: ["hello from stage"] }] } });
    await submit(owner, { type: "mail.mailbox.add", imvu: "stage", body: { address: "creator@stage.nexus.test", verifierCommitment: randomBytes(32).toString("hex") } });
    for (const [eventId, amount] of [["evt_1", "1001"], ["evt_2", "250"], ["evt_3", "7"]] as const) {
      await revenue({ type: "revenue.record", imvu: "stage", body: { eventId, amount, currency: "EUR", class: "imvu", source: "checkout" } });
    }
    await revenue({ type: "revenue.refund", imvu: "stage", body: { eventId: "ref_1", refOf: "evt_1", amount: "100", currency: "EUR", source: "checkout" } });
    await revenue({ type: "revenue.payout", imvu: "stage", body: { eventId: "pay_1", amount: "300", currency: "EUR" } });
    await revenue({ type: "revenue.record", imvu: "show", body: { eventId: "show_1", amount: "999", currency: "JPY", class: "mini-platform", source: "stream" } });
    const sha = (await stageSourceDir(home, "stage", busyboxRootfs(join(tempDir("nexus-audit-rootfs-"), "rootfs")))).sha256;
    await submit(owner, {
      type: "compute.workload.deploy",
      imvu: "stage",
      body: { name: "web", source: { kind: "rootfs", sha256: sha }, cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"], port: 8080, resources: { cpuMillis: 250, memoryBytes: String(64 * MiB), pids: 64 } },
    });
    await submit(owner, { type: "net.route.add", imvu: "stage", body: { route: "site", host: "stage.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 8080 } } });
    const compute = computeOf(stack.services);
    assert.ok(compute && compute.degraded === undefined, "compute runs on podman");
    await waitFor("the workload's address", async () => {
      await compute.reconcileNow();
      return compute.address("stage", "web");
    }, 60_000);
    const gw = gatewayOf(stack.services);
    await waitFor("the route in the gateway", async () => {
      gw?.refresh();
      return gw?.gateway.routes().routes.some((r) => r.id === "stage:site") ? true : undefined;
    }, 20_000);
    cliEnv = { NEXUS_API: stack.apiUrl, NEXUS_KEYRING: join(tempDir("nexus-audit-cli-"), "keyring"), NEXUS_TRUST_DIR: join(tempDir("nexus-audit-trust-"), "trust"), NEXUS_VERIFIER_KEY: stack.platform.verifierKey };
  });

  after(async () => {
    try {
      await computeOf(stack.services)?.fabric?.teardown({ volumes: true });
    } finally {
      await stack?.stop();
      cleanup();
    }
  });

  test("after a realistic sequence every check passes, and GET /v1/audit/latest serves the same report", async () => {
    const r = await audit();
    assert.deepEqual(failing(r), [], JSON.stringify(r.checks.filter((c) => !c.ok), null, 2));
    assert.equal(r.ok, true);
    assert.deepEqual(r.checks.map((c) => c.id), [...AUDIT_CHECK_IDS]);
    for (const c of r.checks) {
      assert.equal(c.skipped, undefined, `${c.id} ran`);
      assert.ok(c.checked > 0, `${c.id} checked something`);
    }
    assert.equal(r.treeSize, stack.platform.ledger.size.toString());
    assert.ok(check(r, "splits").checked >= 8, "six revenue entries and two accounts");
    assert.ok(check(r, "live.dns").checked >= 10, "platform zone and both IMVU zones, record by record");
    const latest = await fetch(`${stack.apiUrl}/v1/audit/latest`);
    assert.equal(latest.status, 200);
    assert.deepEqual(await latest.json(), r);
    const doc = (await (await fetch(`${stack.apiUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    assert.ok(doc.paths["/v1/audit"]?.post && doc.paths["/v1/audit/latest"]?.get, "described in /openapi.json");
  });

  test("./nexus audit prints one line per check, verifies the ledger itself, and exits 0", async () => {
    const run = await cli(["audit"], cliEnv);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    for (const id of [...AUDIT_CHECK_IDS, "client.ledger"]) assert.match(run.stdout, new RegExp(`^ok\\s+${id.replace(".", "\\.")}\\s`, "m"), id);
    const json = await cli(["audit", "--json"], cliEnv);
    assert.equal(json.code, 0, json.stderr);
    const report = AuditReportSchema.parse(JSON.parse(json.stdout));
    assert.equal(report.checks.at(-1)?.id, "client.ledger");
    assert.ok((report.checks.at(-1)?.checked ?? 0) >= Number(report.treeSize), "every entry downloaded and hashed by the CLI");
  });

  test("an unreachable API is exit 3; --local audits the data directory with the live checks skipped", async () => {
    const down = await cli(["audit", "--api", `http://127.0.0.1:${await freePort()}`], cliEnv);
    assert.equal(down.code, 3, down.stdout + down.stderr);
    assert.match(down.stderr, /CLIENT_API_UNREACHABLE/);
    const local = await cli(["audit", "--local", "--json"], { NEXUS_HOME: home });
    assert.equal(local.code, 0, local.stdout + local.stderr);
    const r = AuditReportSchema.parse(JSON.parse(local.stdout));
    assert.deepEqual(r.checks.filter((c) => c.skipped !== undefined).map((c) => c.id), ["live.dns", "live.gateway", "live.compute"]);
    assert.match(check(r, "live.dns").skipped ?? "", /--local/);
  });

  test("a ledger row edited in SQLite: the ledger and replay checks fail, and the CLI's own check too (exit 1)", async () => {
    const db = new DatabaseSync(join(home, "nexus.db"));
    db.exec("PRAGMA busy_timeout = 5000");
    const idx = Number(stack.platform.state.get("revenue-event", "evt_2")?.index);
    const row = db.prepare("SELECT bytes FROM ledger_entries WHERE idx = ?").get(idx) as { bytes: Uint8Array };
    const original = Buffer.from(row.bytes);
    const edited = Buffer.from(original.toString("utf8").replace('"outcome":"applied"', '"outcome":"denied"'), "utf8");
    assert.notDeepEqual(edited, original);
    try {
      db.prepare("UPDATE ledger_entries SET bytes = ? WHERE idx = ?").run(edited, idx);
      const r = await audit();
      assert.equal(r.ok, false);
      assert.match(check(r, "ledger").problems.join("\n"), new RegExp(`entry ${idx}: entry-hash`));
      assert.match(check(r, "replay").problems.join("\n"), new RegExp(`entry ${idx}: recorded denied, the gates say applied`));
      const run = await cli(["audit"], cliEnv);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stdout, /^FAIL\s+client\.ledger\s/m);
      assert.match(run.stdout, new RegExp(`- entry ${idx}: `));
    } finally {
      db.prepare("UPDATE ledger_entries SET bytes = ? WHERE idx = ?").run(original, idx);
      db.close();
    }
  });

  test("a projection row edited in SQLite: replay names the row, and the split invariants fail", async () => {
    const db = new DatabaseSync(join(home, "nexus.db"));
    db.exec("PRAGMA busy_timeout = 5000");
    const key = "stage/imvu/EUR";
    const { v } = db.prepare("SELECT v FROM projection WHERE tbl = 'revenue-account' AND k = ?").get(key) as { v: string };
    const acct = JSON.parse(v) as Record<string, string>;
    try {
      // A platform taking one more minor unit: the account still adds up, but no longer to its entries.
      const siphoned = { ...acct, creator: String(BigInt(acct.creator ?? "0") - 1n), platform: String(BigInt(acct.platform ?? "0") + 1n) };
      db.prepare("UPDATE projection SET v = ? WHERE tbl = 'revenue-account' AND k = ?").run(JSON.stringify(siphoned), key);
      const r = await audit();
      assert.deepEqual(failing(r), ["replay", "splits"]);
      assert.match(check(r, "replay").problems.join("\n"), /the stored projection differs from the replay/);
      assert.match(check(r, "replay").problems.join("\n"), /differs: revenue-account stage\/imvu\/EUR/);
      assert.match(check(r, "splits").problems.join("\n"), /account stage\/imvu\/EUR: the totals differ from the recomputation/);
      const local = await cli(["audit", "--local"], { NEXUS_HOME: home });
      assert.equal(local.code, 1, local.stdout + local.stderr);
      assert.match(local.stdout, /^FAIL\s+replay\s/m);
    } finally {
      db.prepare("UPDATE projection SET v = ? WHERE tbl = 'revenue-account' AND k = ?").run(v, key);
      db.close();
    }
  });

  test("the live DNS service answering something else than the projection is named", async () => {
    const dns = dnsServiceOf(stack.services);
    assert.ok(dns);
    const input = servedZoneInput(stack.platform.state, "stage.nexus.test.");
    assert.ok(input);
    const lie = { ...input, records: input.records.map((rec) => (rec.name === "www.stage.nexus.test." ? { ...rec, data: { type: "A" as const, address: "203.0.113.66" } } : rec)) };
    dns.store.put(buildZone(lie), { bumpSerial: true });
    try {
      const r = await audit();
      assert.ok(failing(r).includes("live.dns"), JSON.stringify(r.checks, null, 2));
      const lines = check(r, "live.dns").problems.join("\n");
      assert.match(lines, /www\.stage\.nexus\.test\. A: the server answers 203\.0\.113\.66; the projection holds 192\.0\.2\.10/);
      assert.match(lines, /stage\.nexus\.test\. SOA: the server answers/, "the bumped serial too");
    } finally {
      dns.store.remove("stage.nexus.test.");
      dns.store.put(buildZone(input));
    }
    assert.deepEqual(failing(await audit()), []);
  });

  test("a service that is not running is skipped with its reason, not failed", async () => {
    const r = await runAudit({
      store: stack.platform.store,
      ledger: stack.platform.ledger,
      verifierKey: stack.platform.verifierKey,
      live: { services: stack.services.filter((s) => s.name !== "dns" && s.name !== "gateway") },
    });
    assert.equal(check(r, "live.dns").ok, true);
    assert.match(check(r, "live.dns").skipped ?? "", /DNS service is not running/);
    assert.match(check(r, "live.gateway").skipped ?? "", /gateway is not running/);
    assert.equal(check(r, "live.compute").skipped, undefined);
    assert.equal(r.ok, true, JSON.stringify(r.checks.filter((c) => !c.ok)));
  });

  test("a route removed from the live gateway table is named; an unknown host stays 404", async () => {
    const gw = gatewayOf(stack.services);
    assert.ok(gw);
    const table = gw.gateway.routes();
    gw.gateway.setRoutes(buildRouteTable({ version: BigInt(table.version) + 1n, routes: [], slices: {} }));
    try {
      const r = await audit();
      assert.deepEqual(failing(r), ["live.gateway"]);
      const lines = check(r, "live.gateway").problems.join("\n");
      assert.match(lines, /route stage:site \(stage\.nexus\.test\/\) is in the projection but not in the gateway's table/);
      assert.match(lines, /route stage:site \(stage\.nexus\.test\/\): the gateway answers 404 unknown host/);
    } finally {
      gw.gateway.setRoutes(table);
    }
    assert.deepEqual(failing(await audit()), []);
  });

  test("a container whose kernel memory limit differs from the envelope is named", async () => {
    const compute = computeOf(stack.services);
    const c = (await compute?.fabric?.driver.list({ "nexus.fabric": fabric }))?.find((x) => x.labels[LABEL_WORKLOAD] === "web" && x.state === "running");
    assert.ok(c, "the web container runs");
    const layout = readLayout();
    assert.ok(layout);
    assert.deepEqual(kernelContainerLimits(layout, c), { cpuMillis: 250, memoryBytes: BigInt(64 * MiB), pids: 64 }, "what the audit reads is what podman was asked");
    const path = layout.version === 1 ? parseProcCgroup(readFileSync(`/proc/${c.pid}/cgroup`, "utf8")).get("memory") : parseProcCgroup(readFileSync(`/proc/${c.pid}/cgroup`, "utf8")).get("");
    const file = join(groupDir(layout, "memory", path ?? "/") ?? "", layout.version === 1 ? "memory.limit_in_bytes" : "memory.max");
    const before = readFileSync(file, "utf8").trim();
    // Raising a container above its envelope behind Nexus's back (memsw must follow on v1).
    const memsw = join(file, "..", "memory.memsw.limit_in_bytes");
    const write = (bytes: string): void => {
      if (layout.version === 1 && BigInt(bytes) > BigInt(before)) {
        try { writeFileSync(memsw, bytes); } catch { /* no swap accounting */ }
      }
      writeFileSync(file, bytes);
      if (layout.version === 1 && BigInt(bytes) <= BigInt(before)) {
        try { writeFileSync(memsw, bytes); } catch { /* no swap accounting */ }
      }
    };
    write(String(128 * MiB));
    try {
      const r = await audit();
      assert.deepEqual(failing(r), ["live.compute"]);
      assert.match(check(r, "live.compute").problems.join("\n"), new RegExp(`workload stage/web: container ${c.id.slice(0, 12)} runs with cpu 250m, memory ${128 * MiB} bytes, pids 64; the envelope gives cpu 250m, memory ${64 * MiB} bytes, pids 64`));
    } finally {
      write(before);
    }
    assert.deepEqual(failing(await audit()), []);
  });

  test("a DNS service that stopped answering while the stack says it runs is a violation, not a skip (last: it stays down)", async () => {
    const dns = dnsServiceOf(stack.services);
    assert.ok(dns);
    await dns.stop();
    const r = await audit();
    assert.deepEqual(failing(r), ["live.dns"]);
    assert.equal(check(r, "live.dns").skipped, undefined);
    assert.match(check(r, "live.dns").problems.join("\n"), /stage\.nexus\.test\. SOA: no answer over UDP/);
  });
});
