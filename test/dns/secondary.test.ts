/**
 * Real secondaries: NSD and Knot, configured with TSIG in a temp dir, pull the zone by AXFR after our
 * NOTIFY, then by IXFR after a change, and answer the same as the primary (dig against both).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startDnsServer, type DnsServer, type DnsServerEvent } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import type { ZoneInput } from "../../src/services/dns/zone.ts";
import { dig, exampleZone, freeDnsPort, startKnotSecondary, startNsdSecondary, tempDir, waitFor, type DigResult } from "./support.ts";

const KEY = { name: "xfr-key", secret: Buffer.from("secondary-test-secret-0123456789").toString("base64") };
const TRANSFER_WAIT_MS = 30_000;

/** Questions whose answers must match between primary and secondary. */
const QUESTIONS: [string, string][] = [
  ["example.test.", "SOA"], ["example.test.", "NS"], ["example.test.", "MX"], ["example.test.", "TXT"], ["example.test.", "CAA"],
  ["www.example.test.", "A"], ["www.example.test.", "AAAA"], ["alias2.example.test.", "A"], ["dangling.example.test.", "A"],
  ["_sip._tcp.example.test.", "SRV"], ["10.2.0.192.in-addr.example.test.", "PTR"], ["x.wild.example.test.", "A"], ["x.wild.example.test.", "TXT"],
  ["nope.example.test.", "A"], ["www.example.test.", "MX"], ["empty.example.test.", "A"], ["host.sub.example.test.", "A"], ["sub.example.test.", "NS"],
  ["changed.example.test.", "A"], ["mail.example.test.", "A"],
];

function comparable(r: DigResult): string {
  // RCODE, AA, the answer; the authority for negative answers and referrals. (Additional data may legitimately differ.)
  const negative = r.answer.length === 0;
  return JSON.stringify({ status: r.status, aa: r.flags.includes("aa"), answer: [...r.answer].sort(), authority: negative ? [...r.authority].sort() : [] });
}

async function assertSameAnswers(primary: number, secondary: number): Promise<void> {
  for (const [name, type] of QUESTIONS) {
    const [a, b] = await Promise.all([dig(primary, name, type, "+norecurse"), dig(secondary, name, type, "+norecurse")]);
    assert.equal(comparable(b), comparable(a), `${name} ${type}`);
  }
}

function changed(serial: number): ZoneInput {
  const z = exampleZone(serial);
  return { ...z, records: [...z.records.filter((r) => r.name !== "mail" || r.data.type !== "A"), { name: "mail", data: { type: "A", address: "192.0.2.26" } }, { name: "changed", data: { type: "A", address: "192.0.2.200" } }] };
}

async function scenario(name: string, start: (dir: string, port: number, primary: number) => Promise<{ stop: () => Promise<void>; output: () => string }>): Promise<void> {
  const t = tempDir(name);
  const store = new ZoneStore();
  const events: DnsServerEvent[] = [];
  let server: DnsServer | undefined;
  let secondary: { stop: () => Promise<void>; output: () => string } | undefined;
  try {
    const port = await freeDnsPort();
    server = await startDnsServer({ port: 0, zones: store, tsig: [KEY], notify: [{ host: "127.0.0.1", port, key: KEY.name }], notifyRetryMs: 500, onEvent: (e) => events.push(e) });
    const primary = server.port;
    secondary = await start(t.dir, port, primary);
    const sec = secondary;
    // The secondary runs before the zone exists here, so its first copy comes from the NOTIFY.
    await waitFor(async () => (await dig(port, "example.test.", "SOA")).status !== "NONE", 10_000, `${name} to listen`);
    store.put(exampleZone(1));
    const ack = (serial: number) => () => events.some((e) => e.type === "notify" && e.serial === serial && e.outcome === "acknowledged");
    const xfr = (style: string, serial: number) => () => events.some((e) => e.type === "transfer" && e.style === style && e.serial === serial);
    await waitFor(ack(1), TRANSFER_WAIT_MS, `${name} to acknowledge the NOTIFY`).catch((e: unknown) => assert.fail(`${String(e)}\n${sec.output()}`));
    await waitFor(xfr("AXFR", 1), TRANSFER_WAIT_MS, `${name} to pull by AXFR`).catch((e: unknown) => assert.fail(`${String(e)}\n${sec.output()}`));
    await waitFor(async () => (await dig(port, "example.test.", "SOA")).answer[0]?.includes(" 1 3600 ") === true, TRANSFER_WAIT_MS, `${name} to serve serial 1`);
    await assertSameAnswers(primary, port);

    store.put(changed(2));
    await waitFor(xfr("IXFR", 2), TRANSFER_WAIT_MS, `${name} to pull by IXFR`).catch((e: unknown) => assert.fail(`${String(e)}\n${sec.output()}\n${JSON.stringify(events)}`));
    await waitFor(async () => (await dig(port, "example.test.", "SOA")).answer[0]?.includes(" 2 3600 ") === true, TRANSFER_WAIT_MS, `${name} to serve serial 2`);
    await assertSameAnswers(primary, port);
    assert.ok(events.findIndex((e) => e.type === "notify" && e.serial === 1) >= 0);
  } finally {
    await secondary?.stop();
    await server?.close();
    t.remove();
  }
}

test("NSD as a TSIG secondary: AXFR after NOTIFY, IXFR after a change, same answers", async () => {
  await scenario("nsd", async (dir, port, primary) => startNsdSecondary(dir, port, primary, ["example.test."], KEY));
});

test("Knot as a TSIG secondary: AXFR after NOTIFY, IXFR after a change, same answers", async () => {
  await scenario("knot", async (dir, port, primary) => startKnotSecondary(dir, port, primary, ["example.test."], KEY));
});
