/**
 * The persistent outbound queue against a real remote MX (a private Postfix): a message queued
 * while the MX is down survives a restart of the service and is delivered when the MX is back;
 * recipients the MX refuses, that expire, or whose domain has a null MX or does not exist are
 * reported to the sender by a DSN (RFC 3464) in the sender's Maildir; files a crash leaves in the
 * queue directory are recovered or set aside.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { OutboundQueue, MaildirWriter, MailCounters, type MailSmtp } from "../../src/services/mail/smtp/index.ts";
import type { DeliveryOutcome } from "../../src/services/mail/queue-transport.ts";
import { RawSmtp, mailFixture, maildirMessages, postfixPeer, startFixtureSmtp, waitFor, type MailFixture, type PostfixPeer } from "./support-smtp.ts";

const ALICE_MD = (f: MailFixture): string => join(f.dataDir, "mail", "alpha", "alice@alpha.test", "Maildir");
const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Submits one message as alice (STARTTLS, AUTH PLAIN) to `rcpts`; returns the final reply. */
async function submitAsAlice(f: MailFixture, port: number, rcpts: readonly string[], subject: string): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    assert.match(await c.reply(), /^220 /);
    await c.cmd("EHLO client.example");
    assert.match(await c.startTls(), /^220 /);
    await c.cmd("EHLO client.example");
    assert.match(await c.cmd(`AUTH PLAIN ${b64(`\0alice@alpha.test\0${f.password}`)}`), /^235 /);
    assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^250 /);
    for (const r of rcpts) assert.match(await c.cmd(`RCPT TO:<${r}>`), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    return await c.cmd(`From: alice@alpha.test\r\nTo: ${rcpts.join(", ")}\r\nSubject: ${subject}\r\n\r\nbody of ${subject}\r\n.`);
  } finally {
    c.close();
  }
}

/** The queue directory's entries (message and metadata files). */
function queueFiles(f: MailFixture): string[] {
  return readdirSync(join(f.dataDir, "queue")).filter((n) => n !== "corrupt");
}

describe("outbound queue", () => {
  let f: MailFixture;
  let mx: PostfixPeer;
  let smtp: MailSmtp | undefined;
  const options = () => ({ mxPort: mx.port, retry: { firstRetryMs: 100, retryMaxMs: 400 } });

  before(async () => {
    f = await mailFixture();
    mx = await postfixPeer("remote.test", ["xavier", "yvonne"]);
    f.dns.mx("remote.test", "mx.remote.test");
    f.dns.a("mx.remote.test", "127.0.0.1");
  });

  after(async () => {
    await smtp?.close();
    mx.cleanup();
    f.cleanup();
  });

  test("queued while the MX is down, kept across a restart, delivered once the MX is up", async () => {
    smtp = await startFixtureSmtp(f, options());
    assert.match(await submitAsAlice(f, smtp.submissionPort, ["yvonne@remote.test"], "patience"), /^250 2\.0\.0 Ok: queued as /);
    const s1 = smtp;
    await waitFor(() => (s1.queue.entries()[0]?.attempts ?? 0) >= 2, "two failed attempts");
    const entry = s1.queue.entries()[0];
    assert.equal(entry?.recipients[0]?.state, "pending");
    assert.match(entry?.recipients[0]?.status ?? "", /^4\./);
    await smtp.close();
    smtp = undefined;
    assert.deepEqual(queueFiles(f).sort(), [`${entry?.id}.eml`, `${entry?.id}.json`]);
    await mx.start();
    smtp = await startFixtureSmtp(f, options());
    assert.equal(smtp.queue.entries()[0]?.id, entry?.id, "reloaded from disk");
    await waitFor(() => maildirMessages(mx.maildir("yvonne")).length === 1, "delivery after restart");
    assert.match(maildirMessages(mx.maildir("yvonne"))[0]?.text ?? "", /Subject: patience\n/);
    await waitFor(() => queueFiles(f).length === 0, "queue files removed");
    assert.equal(maildirMessages(ALICE_MD(f)).length, 0, "no bounce");
  });

  test("a recipient the MX refuses (550 5.1.1) gets a DSN in the sender's Maildir; the other is delivered", async () => {
    assert.ok(smtp);
    const xBefore = maildirMessages(mx.maildir("xavier")).length;
    assert.match(await submitAsAlice(f, smtp.submissionPort, ["xavier@remote.test", "nobody@remote.test"], "half"), /^250 /);
    await waitFor(() => maildirMessages(ALICE_MD(f)).length === 1, "the DSN");
    assert.equal(maildirMessages(mx.maildir("xavier")).length, xBefore + 1);
    const dsn = maildirMessages(ALICE_MD(f))[0]?.text ?? "";
    assert.match(dsn, /^Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx\.nexus\.test>\nTo: <alice@alpha\.test>\n/);
    assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status;/);
    assert.match(dsn, /\nFinal-Recipient: rfc822; nobody@remote\.test\nAction: failed\nStatus: 5\.1\.1\nRemote-MTA: dns; mx\.remote\.test\nDiagnostic-Code: smtp; 550 5\.1\.1 <nobody@remote\.test>/);
    assert.doesNotMatch(dsn, /Final-Recipient: rfc822; xavier/);
    assert.match(dsn, /Content-Type: text\/rfc822-headers\n\n[^]*Subject: half\n/);
    assert.doesNotMatch(dsn, /body of half/, "headers only");
    await waitFor(() => queueFiles(f).length === 0, "queue empty");
  });

  test("files a crash leaves behind: partial writes and orphan messages are removed, unreadable metadata set aside", async () => {
    assert.ok(smtp);
    await smtp.close();
    smtp = undefined;
    const dir = join(f.dataDir, "queue");
    writeFileSync(join(dir, "orphan-00000001.eml"), "From: x\r\n\r\nnever acknowledged\r\n");
    writeFileSync(join(dir, "half-00000002.json.tmp"), "{");
    writeFileSync(join(dir, "bad-00000003.json"), "{\"v\":1,");
    writeFileSync(join(dir, "bad-00000003.eml"), "x");
    const errors: string[] = [];
    smtp = await startFixtureSmtp(f, { ...options(), log: (level, _m, fields) => void (level === "error" && errors.push(String(fields?.code))) });
    assert.deepEqual(queueFiles(f), []);
    assert.deepEqual(readdirSync(join(dir, "corrupt")).sort(), ["bad-00000003.eml", "bad-00000003.json"]);
    assert.deepEqual(errors, ["SMTP_QUEUE_CORRUPT"]);
  });
});

describe("outbound queue, failures without a peer", () => {
  let f: MailFixture;
  let smtp: MailSmtp;

  before(async () => {
    f = await mailFixture();
    f.dns.mx("down.test", "mx.down.test");
    f.dns.a("mx.down.test", "127.0.0.2"); // nothing listens there
    f.dns.records.set("MX null.test", [{ exchange: ".", priority: 0 }]);
    smtp = await startFixtureSmtp(f, { mxPort: 9, retry: { firstRetryMs: 100, retryMaxMs: 200, maxAgeMs: 600 } });
  });

  after(async () => {
    await smtp.close();
    f.cleanup();
  });

  test("null MX (RFC 7505) 5.1.10 and a domain that does not exist 5.1.2 bounce at once; an unreachable MX expires with 4.4.7", async () => {
    assert.match(await submitAsAlice(f, smtp.submissionPort, ["a@null.test", "b@nx.test", "c@down.test"], "doomed"), /^250 /);
    await waitFor(() => maildirMessages(ALICE_MD(f)).length >= 1, "first DSN");
    const first = maildirMessages(ALICE_MD(f))[0]?.text ?? "";
    assert.match(first, /Final-Recipient: rfc822; a@null\.test\nAction: failed\nStatus: 5\.1\.10\n/);
    assert.match(first, /Final-Recipient: rfc822; b@nx\.test\nAction: failed\nStatus: 5\.1\.2\n/);
    assert.doesNotMatch(first, /Final-Recipient: rfc822; c@down\.test/);
    await waitFor(() => maildirMessages(ALICE_MD(f)).length === 2, "the expiry DSN");
    const second = maildirMessages(ALICE_MD(f))[1]?.text ?? "";
    assert.match(second, /Final-Recipient: rfc822; c@down\.test\nAction: failed\nStatus: 4\.4\.7\n/);
    assert.equal(smtp.queue.entries().length, 0);
  });
});

test("queue: recipients are grouped per domain, state survives reopening, deliveries resume", async () => {
  const f = await mailFixture();
  try {
    const calls: string[][] = [];
    let mode: "temporary" | "delivered" = "temporary";
    const deliver = async (_o: unknown, domain: string, _s: string, rcpts: readonly string[]): Promise<DeliveryOutcome[]> => {
      calls.push([domain, ...rcpts]);
      return rcpts.map((address) => ({ address, result: mode, status: mode === "delivered" ? "2.0.0" : "4.4.1", reply: "x-test; stub" }));
    };
    const dir = join(f.dataDir, "q");
    mkdirSync(dir);
    const base = {
      dir,
      transport: { hostname: "mx.nexus.test", resolver: f.dns.resolver(), mxPort: 25, connectTimeoutMs: 1000, greetingTimeoutMs: 1000, socketTimeoutMs: 1000 },
      retry: { firstRetryMs: 60_000, retryMaxMs: 60_000, maxAgeMs: 3_600_000 },
      directory: f.directory,
      writer: new MaildirWriter("h"),
      counters: new MailCounters(),
      log: () => undefined,
      deliver,
    };
    const q1 = OutboundQueue.open(base);
    const id = await q1.enqueue("alpha", "alice@alpha.test", ["a@one.test", "b@two.test", "c@one.test"], Buffer.from("From: alice@alpha.test\r\n\r\nx\r\n"));
    await waitFor(() => q1.entries()[0]?.attempts === 1, "first attempt");
    assert.deepEqual(calls.sort(), [["one.test", "a@one.test", "c@one.test"], ["two.test", "b@two.test"]]);
    const next = q1.entries()[0]?.nextAttemptAt ?? 0;
    assert.ok(next - Date.now() > 50_000, "next attempt a minute away");
    await q1.close();
    mode = "delivered";
    const q2 = OutboundQueue.open({ ...base, retry: { ...base.retry, firstRetryMs: 1 } });
    assert.equal(q2.entries()[0]?.id, id);
    assert.equal(q2.entries()[0]?.attempts, 1);
    assert.equal(q2.entries()[0]?.nextAttemptAt, next, "not retried early after a restart");
    await q2.close();
    assert.ok(existsSync(join(dir, `${id}.json`)));
  } finally {
    f.cleanup();
  }
});
