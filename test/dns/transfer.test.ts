/** TSIG (RFC 8945), AXFR (RFC 5936), IXFR (RFC 1995) checked by dig, and the NOTIFY sender (RFC 1996). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { RCODE } from "../../src/services/dns/lookup.ts";
import { toName } from "../../src/services/dns/name.ts";
import { decodeMessage } from "../../src/services/dns/reader.ts";
import { TYPE } from "../../src/services/dns/rdata.ts";
import { startDnsServer, type DnsServerEvent } from "../../src/services/dns/server.ts";
import { ZoneStore } from "../../src/services/dns/store.ts";
import { keyring, readTsig, signMessage, tsigKey, verifyTsig, TSIG_FUDGE_S } from "../../src/services/dns/tsig.ts";
import { buildZone, type ZoneInput } from "../../src/services/dns/zone.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { exampleZone, run, waitFor } from "./support.ts";

const KEY = { name: "xfr-key", secret: Buffer.from("nexus-test-secret-0123456789abcdef").toString("base64") };

function bigZone(serial: number, extra = 0): ZoneInput {
  const z = exampleZone(serial);
  const records = [...z.records];
  for (let i = 0; i < 1500 + extra; i++) records.push({ name: `host${i}`, data: { type: "A", address: `10.0.${i >> 8}.${i & 0xff}` } });
  return { ...z, records };
}

test("TSIG: sign and verify; tampering is BADSIG, an unknown key BADKEY, a skewed clock BADTIME; config is checked", () => {
  const keys = keyring([KEY]);
  const key = keys.get(toName("xfr-key."));
  assert.ok(key !== undefined);
  const q = dnsPacket.encode({ type: "query", id: 77, questions: [{ name: "example.test", type: "AXFR" }] });
  const signed = signMessage(q, key, { timeSigned: 1_000_000 }).message;
  const rec = () => {
    const m = decodeMessage(signed);
    const t = m.additionals.at(-1);
    assert.ok(t !== undefined && t.type === TYPE.TSIG);
    return readTsig(signed, t);
  };
  assert.ok(verifyTsig(signed, rec(), keys, 1_000_000).ok);
  const bad = Buffer.from(signed);
  bad[13] = (bad[13] ?? 0) ^ 1;
  const badRec = decodeMessage(bad).additionals.at(-1);
  assert.ok(badRec !== undefined);
  const v1 = verifyTsig(bad, readTsig(bad, badRec), keys, 1_000_000);
  assert.equal(v1.ok ? 0 : v1.error, RCODE.BADSIG);
  const v2 = verifyTsig(signed, rec(), keyring([{ ...KEY, name: "other" }]), 1_000_000);
  assert.equal(v2.ok ? 0 : v2.error, RCODE.BADKEY);
  const v3 = verifyTsig(signed, rec(), keys, 1_000_000 + TSIG_FUDGE_S + 1);
  assert.equal(v3.ok ? 0 : v3.error, RCODE.BADTIME);
  for (const bad of [{ name: "k", secret: "c2hvcnQ=" }, { name: "k", secret: "not base64!" }, { ...KEY, algorithm: "hmac-md5" }]) {
    assert.throws(() => tsigKey(bad), (e: unknown) => isNexusError(e, "DNS_TSIG_KEY_INVALID"));
  }
});

test("AXFR over TCP with TSIG: dig verifies every message of a multi-message transfer; IXFR sends the difference", async () => {
  const store = new ZoneStore();
  store.put(bigZone(1));
  const events: DnsServerEvent[] = [];
  const server = await startDnsServer({ port: 0, zones: store, tsig: [KEY], onEvent: (e) => events.push(e) });
  try {
    const y = `hmac-sha256:${KEY.name}:${KEY.secret}`;
    const axfr = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "example.test.", "AXFR", "+nocookie"]);
    assert.doesNotMatch(axfr.stdout + axfr.stderr, /Transfer failed|verify|BADSIG|BADTIME|expected a TSIG/i, axfr.stdout.slice(-500));
    const rrs = axfr.stdout.split("\n").filter((l) => l !== "" && !l.startsWith(";") && /\sIN\s+[A-Z]+\s/.test(l));
    const zone = buildZone(bigZone(1));
    assert.equal(rrs.filter((l) => !/\sTSIG\s/.test(l)).length, zone.records.length + 2, "SOA, every record, SOA");
    assert.match(axfr.stdout, /XFR size: \d+ records \(messages [2-9]/, "several messages");
    const ev = events.find((e) => e.type === "transfer");
    assert.ok(ev !== undefined && ev.type === "transfer" && ev.style === "AXFR" && ev.messages > 1);

    // A change, then IXFR from serial 1: the difference only (RFC 1995 §4).
    const z2 = bigZone(2);
    store.put({ ...z2, records: [...z2.records.filter((r) => r.name !== "host5"), { name: "added", data: { type: "TXT", text: ["new"] } }] });
    const ixfr = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "example.test.", "IXFR=1", "+nocookie"]);
    const lines = ixfr.stdout.split("\n").filter((l) => /\sIN\s+(SOA|A|TXT)\s/.test(l) && !l.startsWith(";"));
    assert.equal(lines.length, 6, ixfr.stdout);
    assert.match(lines[0] ?? "", /SOA.* 2 3600/);
    assert.match(lines[1] ?? "", /SOA.* 1 3600/);
    assert.match(lines[2] ?? "", /^host5\.example\.test\./);
    assert.match(lines[3] ?? "", /SOA.* 2 3600/);
    assert.match(lines[4] ?? "", /^added\.example\.test\./);
    assert.ok(events.some((e) => e.type === "transfer" && e.style === "IXFR"));
    // Up to date: the SOA alone; unknown serial: the whole zone (RFC 1995 §4).
    const same = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "example.test.", "IXFR=2", "+nocookie"]);
    assert.equal(same.stdout.split("\n").filter((l) => /\sIN\s+SOA\s/.test(l) && !l.startsWith(";")).length, 1);
    await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "example.test.", "IXFR=0", "+nocookie"]);
    assert.ok(events.some((e) => e.type === "transfer" && e.style === "IXFR-AS-AXFR"));
    // Over UDP an IXFR gets the SOA only.
    const udp = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "example.test.", "IXFR=1", "+notcp", "+nocookie"]);
    assert.match(udp.stdout, /\(UDP\)/);
    assert.equal(udp.stdout.split("\n").filter((l) => /\sIN\s+[A-Z]+\s/.test(l) && !l.startsWith(";")).length, 1);
    // Without a key, or with a wrong one: refused / NOTAUTH.
    const unsigned = await run("dig", ["@127.0.0.1", "-p", String(server.port), "example.test.", "AXFR", "+nocookie"]);
    assert.match(unsigned.stdout, /Transfer failed/);
    const wrong = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", `hmac-sha256:${KEY.name}:${Buffer.from("another-secret-0123456789").toString("base64")}`, "example.test.", "SOA", "+nocookie"]);
    assert.match(wrong.stdout + wrong.stderr, /NOTAUTH|BADSIG|tsig/i);
    // A signed ordinary query gets a signed answer dig accepts.
    const signedQuery = await run("dig", ["@127.0.0.1", "-p", String(server.port), "-y", y, "www.example.test.", "A", "+nocookie"]);
    assert.match(signedQuery.stdout, /status: NOERROR/);
    assert.match(signedQuery.stdout, /TSIG\s+hmac-sha256\. \d+ 300 32 /);
    assert.doesNotMatch(signedQuery.stdout + signedQuery.stderr, /failure|BADSIG|expected a TSIG/i);
  } finally {
    await server.close();
  }
});

test("NOTIFY: sent on every change with the new SOA, TSIG-signed, retried until acknowledged", async () => {
  const listener = createSocket("udp4");
  await new Promise<void>((r) => listener.bind(0, "127.0.0.1", () => r()));
  const port = listener.address().port;
  const seen: { id: number; serial: number; signed: boolean }[] = [];
  let answerAfter = 3;
  listener.on("message", (m, rinfo) => {
    const d = dnsPacket.decode(m);
    const soa = d.answers?.[0];
    seen.push({ id: d.id ?? 0, serial: soa !== undefined && soa.type === "SOA" ? (soa.data.serial ?? 0) : -1, signed: decodeMessage(m).additionals.some((r) => r.type === TYPE.TSIG) });
    if (--answerAfter > 0) return;
    const reply = Buffer.from(m.subarray(0, 12));
    reply.writeUInt16BE(0x8000 | (4 << 11) | 0x0400, 2);
    reply.writeUInt16BE(0, 4);
    reply.writeUInt32BE(0, 6);
    reply.writeUInt16BE(0, 10);
    listener.send(reply, rinfo.port, rinfo.address);
  });
  const store = new ZoneStore();
  store.put(exampleZone(1));
  const events: DnsServerEvent[] = [];
  const server = await startDnsServer({
    port: 0, zones: store, tsig: [KEY], notify: [{ host: "127.0.0.1", port, key: KEY.name }], notifyRetryMs: 50, onEvent: (e) => events.push(e),
  });
  try {
    const z = exampleZone(2);
    store.put({ ...z, records: [...z.records, { name: "n", data: { type: "A", address: "192.0.2.9" } }] });
    await waitFor(() => events.some((e) => e.type === "notify" && e.outcome === "acknowledged"), 5_000, "the acknowledgement");
    assert.equal(seen.length, 3, "two retries, then the answer");
    assert.ok(seen.every((s) => s.serial === 2 && s.signed));
    assert.equal(new Set(seen.map((s) => s.id)).size, 1, "retries keep the ID");
  } finally {
    await server.close();
    listener.close();
  }
});
