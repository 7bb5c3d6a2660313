/**
 * SMTP in against real clients: swaks delivers (with and without STARTTLS) and the message lands
 * in the mailbox's Maildir with SPF/DKIM/DMARC results; hostile clients are refused with the
 * right reply and nothing is stored: unknown recipients, relaying, over-quota, too many
 * recipients, oversized messages and lines, forged Authentication-Results, loops, malformed
 * commands, connection floods.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dkimSignMessage, generateDkimKeys, type MailSmtp } from "../../src/services/mail/smtp/index.ts";
import { RawSmtp, mailFixture, maildirMessages, message, startFixtureSmtp, swaks, tempDir, type MailFixture } from "./support-smtp.ts";

const ALICE_MD = (f: MailFixture): string => join(f.dataDir, "mail", "alpha", "alice@alpha.test", "Maildir");
const CAROL_MD = (f: MailFixture): string => join(f.dataDir, "mail", "alpha", "carol@alpha.test", "Maildir");
const BOB_MD = (f: MailFixture): string => join(f.dataDir, "mail", "beta", "bob@beta.test", "Maildir");

/** The reply lines swaks printed (`<-` and `<~`). */
function replies(out: string): string[] {
  return out.split("\n").filter((l) => /^<[-~*]+\s/.test(l)).map((l) => l.replace(/^<[-~*]+\s+/, ""));
}

/** A raw client through EHLO (and optionally MAIL FROM). */
async function session(port: number, from?: string): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  assert.match(await c.reply(), /^220 /);
  assert.match(await c.cmd("EHLO client.example"), /^250[ -]/);
  if (from !== undefined) assert.match(await c.cmd(`MAIL FROM:<${from}>`), /^250 /);
  return c;
}

describe("SMTP in", () => {
  let f: MailFixture;
  let smtp: MailSmtp;
  const files = tempDir("smtp-in-files");

  before(async () => {
    f = await mailFixture();
    // A sending domain of the outside world: SPF allows 127.0.0.1, DKIM keys published, DMARC p=reject.
    const senderKeys = generateDkimKeys();
    f.dns.publish("sender.test", senderKeys);
    f.dns.txt("spoof.test", ["v=spf1 ip4:192.0.2.1 -all"]);
    f.dns.txt("_dmarc.spoof.test", ["v=DMARC1; p=reject"]);
    const signed = message({ From: "Sam <sam@sender.test>", To: "alice@alpha.test", Subject: "signed", "Message-ID": "<m1@sender.test>" }, "Hi Alice.\r\n.leading dot\r\n");
    const sig = await dkimSignMessage(signed, "sender.test", senderKeys);
    writeFileSync(join(files.path, "signed.eml"), Buffer.concat([Buffer.from(sig), signed]));
    smtp = await startFixtureSmtp(f);
  });

  after(async () => {
    await smtp.close();
    f.cleanup();
    files.cleanup();
  });

  test("swaks over STARTTLS: stored in Maildir with Return-Path, Authentication-Results (spf, dkim rsa+ed25519, dmarc pass) and Received", async () => {
    const r = await swaks(smtp.inboundPort, ["--tls", "--from", "sam@sender.test", "--to", "Alice@Alpha.test", "--data", join(files.path, "signed.eml")]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(replies(r.stdout).at(-2) ?? "", /^250 2\.0\.0 Ok: stored as /);
    const [m, ...rest] = maildirMessages(ALICE_MD(f));
    assert.ok(m);
    assert.equal(rest.length, 0);
    assert.match(m.name, /^\d+\.M\d+P\d+Q\d+\.mx\.nexus\.test,S=(\d+),W=(\d+)$/);
    assert.equal(Number(/,S=(\d+)/.exec(m.name)?.[1]), statSync(join(ALICE_MD(f), "new", m.name)).size);
    assert.ok(!m.text.includes("\r"), "LF line ends in Maildir");
    const head = m.text.slice(0, m.text.indexOf("\n\n"));
    assert.match(head, /^Return-Path: <sam@sender\.test>\n/);
    assert.match(head, /Authentication-Results: mx\.nexus\.test;\n\s+dkim=pass header\.i=@sender\.test [^\n]*header\.a=rsa-sha256/);
    assert.match(head, /\n\s+dkim=pass header\.i=@sender\.test [^\n]*header\.a=ed25519-sha256/);
    assert.match(head, /spf=pass/);
    assert.match(head, /dmarc=pass/);
    assert.match(head, /Received: from client\.example \(127\.0\.0\.1 \[127\.0\.0\.1\]\)\n\tby mx\.nexus\.test \(Nexus COS\) with ESMTPS id \S+\n\t\(using TLSv1\.3 with cipher \S+\)\n\tfor <alice@alpha\.test>;/);
    assert.match(m.text, /\n\nHi Alice\.\n\.leading dot\n\n?$/, `dot-unstuffed body (swaks adds an empty last line): ${JSON.stringify(m.text.slice(-40))}`);
    assert.deepEqual(readdirSync(join(ALICE_MD(f), "tmp")), []);
    assert.deepEqual(smtp.counters.snapshot().alpha, { messagesIn: 1, bytesIn: statSync(join(ALICE_MD(f), "new", m.name)).size, messagesOut: 0, bytesOut: 0 });
  });

  test("SPF fail and DMARC fail are recorded (the message is kept: policy is the reader's)", async () => {
    const r = await swaks(smtp.inboundPort, ["--from", "eve@spoof.test", "--to", "bob@beta.test", "--h-From", "eve@spoof.test"]);
    assert.equal(r.code, 0, r.stdout);
    const m = maildirMessages(BOB_MD(f)).at(-1);
    assert.match(m?.text ?? "", /spf=fail/);
    assert.match(m?.text ?? "", /dmarc=fail/);
  });

  test("one message to two mailboxes: one durable file, hard-linked into the second Maildir", async () => {
    const subject = `two mailboxes ${Date.now()}`;
    const r = await swaks(smtp.inboundPort, ["--from", "sam@sender.test", "--to", "alice@alpha.test,carol@alpha.test", "--header", `Subject: ${subject}`]);
    assert.equal(r.code, 0, r.stdout);
    // Find this message by its subject: Maildir names do not sort in delivery order.
    const a = maildirMessages(ALICE_MD(f)).find((m) => m.text.includes(subject));
    const c = maildirMessages(CAROL_MD(f)).find((m) => m.text.includes(subject));
    assert.ok(a && c);
    assert.equal(statSync(join(ALICE_MD(f), "new", a.name)).ino, statSync(join(CAROL_MD(f), "new", c.name)).ino);
    assert.doesNotMatch(a.text, /\tfor </, "no single recipient in Received:");
  });

  test("unknown recipient 550 5.1.1; another domain 550 5.7.1 (never an open relay); AUTH is not offered", async () => {
    const before = maildirMessages(ALICE_MD(f)).length;
    const r = await swaks(smtp.inboundPort, ["--from", "sam@sender.test", "--to", "nobody@alpha.test"]);
    assert.notEqual(r.code, 0);
    assert.match(replies(r.stdout).join("\n"), /^550 5\.1\.1 No such mailbox here: nobody@alpha\.test$/m);
    const c = await session(smtp.inboundPort, "sam@sender.test");
    assert.match(await c.cmd("RCPT TO:<victim@elsewhere.example>"), /^550 5\.7\.1 Relaying denied/);
    assert.match(await c.cmd("RCPT TO:<victim@127.0.0.1>"), /^501 5\.1\.3|^550 5\.7\.1/);
    assert.match(await c.cmd("RCPT TO:<alice@alpha.test@elsewhere.example>"), /^5\d\d /);
    assert.match(await c.cmd("RCPT TO:<\"alice@alpha.test\"@elsewhere.example>"), /^5\d\d /);
    assert.match(await c.cmd("AUTH PLAIN AGFsaWNlQGFscGhhLnRlc3QAeA=="), /^50[02] /);
    const ehlo = await c.cmd("EHLO again.example");
    assert.doesNotMatch(ehlo, /AUTH/);
    c.close();
    const r2 = await swaks(smtp.inboundPort, ["--from", "alice@alpha.test", "--to", "someone@gmail.example", "--tls", "--auth", "PLAIN", "--auth-user", "alice@alpha.test", "--auth-password", f.password]);
    assert.notEqual(r2.code, 0, "no AUTH on port 25, so no authenticated relay either");
    assert.equal(maildirMessages(ALICE_MD(f)).length, before);
    assert.ok((smtp.counters.refusals().SMTP_RELAY_DENIED ?? 0) >= 1);
  });

  test("forged Authentication-Results claiming our authserv-id are removed; others are kept", async () => {
    const eml = join(files.path, "forged.eml");
    writeFileSync(eml, "Authentication-Results: mx.nexus.test; dkim=pass header.d=bank.example\r\nAuthentication-Results: upstream.example; spf=pass\r\nFrom: x@sender.test\r\nSubject: forged\r\n\r\nbody\r\n");
    const r = await swaks(smtp.inboundPort, ["--from", "x@sender.test", "--to", "carol@alpha.test", "--data", eml]);
    assert.equal(r.code, 0, r.stdout);
    const m = maildirMessages(CAROL_MD(f)).at(-1)?.text ?? "";
    assert.doesNotMatch(m, /header\.d=bank\.example/);
    assert.match(m, /Authentication-Results: upstream\.example; spf=pass/);
    assert.equal((m.match(/^Authentication-Results: mx\.nexus\.test;/gm) ?? []).length, 1);
  });

  test("malformed commands and bad sequences get 5xx, and a client that keeps failing is dropped", async () => {
    const c = await RawSmtp.connect(smtp.inboundPort);
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.cmd("MAIL FROM:<a@b.test>"), /^503 /, "MAIL before EHLO");
    assert.match(await c.cmd("HELO"), /^501 /);
    assert.match(await c.cmd("EHLO client.example"), /^250/);
    assert.match(await c.cmd("RCPT TO:<alice@alpha.test>"), /^503 /, "RCPT before MAIL");
    assert.match(await c.cmd("DATA"), /^503 /);
    assert.match(await c.cmd("MAIL FROM:<unterminated"), /^501 /);
    assert.match(await c.cmd("MAIL FROM:<a@b.test> SIZE=abc"), /^501 /);
    assert.match(await c.cmd("MAIL FROM:<a@b.test>"), /^250 /);
    assert.match(await c.cmd("MAIL FROM:<a@b.test>"), /^503 /, "nested MAIL");
    assert.match(await c.cmd("RCPT TO:<alice@alpha.test\r>"), /^5\d\d /);
    assert.match(await c.cmd("\x00\x01\x02"), /^5\d\d /);
    let last = "";
    for (let i = 0; i < 20 && !c.closed; i++) last = await c.cmd(`XYZZY${i}`);
    assert.ok(c.closed || /^421 /.test(last), `dropped after repeated unknown commands (last: ${last})`);
    c.close();
  });

  test("a command line beyond the limit ends the connection with 421", async () => {
    const c = await session(smtp.inboundPort);
    const r = await c.cmd(`NOOP ${"a".repeat(20_000)}`);
    assert.match(r, /^421 /);
    assert.equal(await c.reply(), "");
    c.close();
  });
});

describe("SMTP in, limits", () => {
  let f: MailFixture;
  let smtp: MailSmtp;

  before(async () => {
    f = await mailFixture({ bytes: 3000 });
    smtp = await startFixtureSmtp(f, {
      limits: { messageBytesMax: 64 * 1024, recipientsMax: 2, connectionsPerIpMax: 4, connectionsMax: 100, receivedHeadersMax: 5 },
    });
  });

  after(async () => {
    await smtp.close();
    f.cleanup();
  });

  test("oversized: SIZE= over the limit 552 at MAIL; a body over it 552 5.3.4 after DATA; nothing stored", async () => {
    const c = await session(smtp.inboundPort);
    assert.match(await c.cmd("MAIL FROM:<a@sender.test> SIZE=70000"), /^552 /);
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    for (let i = 0; i < 1000; i++) c.write(`${"x".repeat(98)}\r\n`);
    assert.match(await c.cmd("."), /^552 5\.3\.4 /);
    assert.match(await c.cmd("NOOP"), /^250 /, "the connection stays in step");
    c.close();
    assert.equal(maildirMessages(BOB_MD(f)).length, 0);
  });

  test("a text line over 1000 octets: 500 5.5.2 after DATA, nothing stored", async () => {
    const c = await session(smtp.inboundPort, "a@sender.test");
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    c.write(`Subject: long\r\n\r\n${"y".repeat(999)}\r\n`);
    assert.match(await c.cmd("."), /^500 5\.5\.2 Line too long/);
    c.close();
    assert.equal(maildirMessages(BOB_MD(f)).length, 0);
  });

  test("too many recipients: 452 4.5.3 beyond the limit (the accepted ones still get the message)", async () => {
    const c = await session(smtp.inboundPort, "a@sender.test");
    assert.match(await c.cmd("RCPT TO:<alice@alpha.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<carol@alpha.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^452 4\.5\.3 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    assert.match(await c.cmd("Subject: two\r\n\r\nhi\r\n."), /^250 /);
    c.close();
    assert.equal(maildirMessages(ALICE_MD(f)).length, 1);
    assert.equal(maildirMessages(BOB_MD(f)).length, 0);
  });

  test("quota: a message that does not fit gets 452 4.2.2 (at RCPT with SIZE=, else after DATA); what fits is kept", async () => {
    const c = await session(smtp.inboundPort);
    assert.match(await c.cmd("MAIL FROM:<a@sender.test> SIZE=5000"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^452 4\.2\.2 /);
    assert.match(await c.cmd("RSET"), /^250 /);
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    c.write(`Subject: big\r\n\r\n${`${"z".repeat(78)}\r\n`.repeat(50)}`);
    assert.match(await c.cmd("."), /^452 4\.2\.2 /);
    assert.match(await c.cmd("MAIL FROM:<a@sender.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    assert.match(await c.cmd("Subject: small\r\n\r\nfits\r\n."), /^250 /);
    c.close();
    assert.equal(maildirMessages(BOB_MD(f)).length, 1);
  });

  test("a message with more Received: fields than the limit is a loop: 554 5.4.6", async () => {
    const stored = maildirMessages(CAROL_MD(f)).length;
    const c = await session(smtp.inboundPort, "a@sender.test");
    assert.match(await c.cmd("RCPT TO:<carol@alpha.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    c.write("Received: from a by b; Thu, 1 Jan 1970 00:00:00 +0000\r\n".repeat(6) + "Subject: loop\r\n\r\nx\r\n");
    assert.match(await c.cmd("."), /^554 5\.4\.6 /);
    c.close();
    assert.equal(maildirMessages(CAROL_MD(f)).length, stored);
  });

  test("connection flood: beyond 4 per address 421 4.7.0; served connections keep working; freed slots are reused", async () => {
    const open: RawSmtp[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await RawSmtp.connect(smtp.inboundPort);
      assert.match(await c.reply(), /^220 /);
      open.push(c);
    }
    const refused = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await RawSmtp.connect(smtp.inboundPort);
        const r = await c.reply();
        const gone = (await c.reply()) === "";
        c.close();
        return { r, gone };
      }),
    );
    for (const x of refused) {
      assert.match(x.r, /^421 4\.7\.0 Too many connections/);
      assert.ok(x.gone, "closed after 421");
    }
    assert.match(await open[0]?.cmd("NOOP") ?? "", /^250 /);
    open.pop()?.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await RawSmtp.connect(smtp.inboundPort);
    assert.match(await again.reply(), /^220 /);
    for (const c of [...open, again]) c.close();
    assert.ok((smtp.counters.refusals().SMTP_TOO_MANY_CONNECTIONS ?? 0) >= 20);
  });
});
