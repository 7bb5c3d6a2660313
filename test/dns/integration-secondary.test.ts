/**
 * Real secondaries of zones that come from the ledger: NSD and Knot, with TSIG, pull an IMVU zone
 * by AXFR after the NOTIFY its creation (a signed command) causes, then by IXFR after a record
 * change made through the pipeline, and answer the same as the primary (dig against both).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { DnsServerEvent } from "../../src/services/dns/server.ts";
import { expectApplied } from "../pipeline/support.ts";
import { creatorWithImvu, setRRset, startDns } from "./integration-support.ts";
import { dig, freeDnsPort, startKnotSecondary, startNsdSecondary, tempDir, waitFor, type DigResult, type SecondaryKey } from "./support.ts";

const KEY: SecondaryKey = { name: "nexus-xfr", secret: Buffer.from("integration-secondary-secret-0123").toString("base64") };
const TRANSFER_WAIT_MS = 30_000;
const ZONES = ["nexus.test.", "stage.nexus.test."];
const QUESTIONS: [string, string][] = [
  ["stage.nexus.test.", "SOA"], ["stage.nexus.test.", "NS"], ["stage.nexus.test.", "A"], ["stage.nexus.test.", "AAAA"],
  ["stage.nexus.test.", "MX"], ["stage.nexus.test.", "TXT"], ["_dmarc.stage.nexus.test.", "TXT"], ["www.stage.nexus.test.", "A"],
  ["nope.stage.nexus.test.", "A"], ["_dmarc.stage.nexus.test.", "A"], ["nexus.test.", "SOA"], ["ns1.nexus.test.", "A"], ["mail.nexus.test.", "AAAA"],
];

function comparable(r: DigResult): string {
  const negative = r.answer.length === 0;
  return JSON.stringify({ status: r.status, aa: r.flags.includes("aa"), answer: [...r.answer].sort(), authority: negative ? [...r.authority].sort() : [] });
}

async function assertSameAnswers(primary: number, secondary: number): Promise<void> {
  for (const [name, type] of QUESTIONS) {
    const [a, b] = await Promise.all([dig(primary, name, type, "+norecurse"), dig(secondary, name, type, "+norecurse")]);
    assert.equal(comparable(b), comparable(a), `${name} ${type}`);
  }
}

type Secondary = ReturnType<typeof startNsdSecondary>;

async function scenario(name: string, start: (dir: string, port: number, primary: number) => Secondary): Promise<void> {
  const t = tempDir(`ledger-${name}`);
  const events: DnsServerEvent[] = [];
  const port = await freeDnsPort();
  const d = await startDns({ config: { tsig: [KEY], notify: [{ host: "127.0.0.1", port, key: KEY.name }], upstreams: [{ host: "127.0.0.1", port: 9 }] }, notifyRetryMs: 500, onEvent: (e) => events.push(e) });
  let sec: Secondary | undefined;
  const fail = (e: unknown): never => assert.fail(`${String(e)}\n${sec?.output() ?? ""}\n${JSON.stringify(events.slice(-10))}`);
  const xfr = (style: string, zone: string, serial: number) => () =>
    events.some((e) => e.type === "transfer" && e.style === style && e.zone === zone && e.serial === serial);
  try {
    const s = start(t.dir, port, d.port);
    sec = s;
    await waitFor(async () => (await dig(port, "nexus.test.", "SOA")).status !== "NONE", 10_000, `${name} to listen`).catch(fail);

    const { owner, receipt } = await creatorWithImvu(d, "stage");
    const created = Number(receipt.index);
    await waitFor(xfr("AXFR", "stage.nexus.test.", created), TRANSFER_WAIT_MS, `${name} to pull stage.nexus.test by AXFR`).catch(fail);
    await waitFor(async () => (await dig(port, "stage.nexus.test.", "SOA")).answer[0]?.includes(` ${created} 3600 `) === true, TRANSFER_WAIT_MS, `${name} to serve serial ${created}`).catch(fail);
    await waitFor(async () => (await dig(port, "nexus.test.", "SOA")).answer[0]?.includes(` ${created} 3600 `) === true, TRANSFER_WAIT_MS, `${name} to serve the platform zone's delegation`).catch(fail);
    await assertSameAnswers(d.port, port);

    const change = await expectApplied(d.inst, setRRset(d, owner, "stage", "www.stage.nexus.test", "A", [{ type: "A", address: "192.0.2.80" }], 300));
    const changed = Number(change.index);
    await waitFor(xfr("IXFR", "stage.nexus.test.", changed), TRANSFER_WAIT_MS, `${name} to pull the change by IXFR`).catch(fail);
    await waitFor(async () => (await dig(port, "www.stage.nexus.test.", "A")).answer.some((l) => l.endsWith("A 192.0.2.80")), TRANSFER_WAIT_MS, `${name} to serve the change`).catch(fail);
    await assertSameAnswers(d.port, port);
    assert.ok(events.some((e) => e.type === "notify" && e.zone === "stage.nexus.test." && e.outcome === "acknowledged"), "the secondary acknowledged a NOTIFY");
  } finally {
    await sec?.stop();
    await d.stop();
    t.remove();
  }
}

test("NSD as a TSIG secondary of ledger zones: AXFR after the creating command, IXFR after a change, same answers", async () => {
  await scenario("nsd", (dir, port, primary) => startNsdSecondary(dir, port, primary, ZONES, KEY));
});

test("Knot as a TSIG secondary of ledger zones: AXFR after the creating command, IXFR after a change, same answers", async () => {
  await scenario("knot", (dir, port, primary) => startKnotSecondary(dir, port, primary, ZONES, KEY));
});
