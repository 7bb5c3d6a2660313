/**
 * Submission against real peers: swaks authenticates after STARTTLS and sends; a private Postfix
 * on loopback is the remote MX that receives the mail over STARTTLS; python3-dkim's dkimverify
 * verifies both signatures (RSA and Ed25519) of what Postfix stored. Hostile clients: AUTH before
 * TLS, MAIL before AUTH, wrong passwords, sending as another IMVU's domain (envelope and From:),
 * malformed From: fields, unknown local recipients. Each is refused with its reply and nothing is
 * delivered or queued.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type MailSmtp } from "../../src/services/mail/smtp/index.ts";
import { selfSignedCertificate } from "../../src/services/mail/tls.ts";
import {
  RawSmtp,
  dkimverify,
  mailFixture,
  maildirMessages,
  postfixPeer,
  startFixtureSmtp,
  swaks,
  waitFor,
  type MailFixture,
  type PostfixPeer,
} from "./support-smtp.ts";

const CAROL_MD = (f: MailFixture): string => join(f.dataDir, "mail", "alpha", "carol@alpha.test", "Maildir");
const BOB_MD = (f: MailFixture): string => join(f.dataDir, "mail", "beta", "bob@beta.test", "Maildir");
const b64 = (s: string): string => Buffer.from(s).toString("base64");

function replies(out: string): string[] {
  return out.split("\n").filter((l) => /^<[-~*]+\s/.test(l)).map((l) => l.replace(/^<[-~*]+\s+/, ""));
}

describe("submission", () => {
  let f: MailFixture;
  let smtp: MailSmtp;
  let mx: PostfixPeer;
  let dnsUdp: { port: number; close(): void };

  /** swaks on submission as `user` (STARTTLS + AUTH PLAIN unless `auth` says otherwise). */
  const submit = (args: readonly string[], user = "alice@alpha.test", auth: readonly string[] = ["--auth", "PLAIN"]) =>
    swaks(smtp.submissionPort, ["--tls", ...auth, "--auth-user", user, "--auth-password", f.password, ...args]);

  /** A raw client on submission, through STARTTLS and AUTH PLAIN as alice. */
  async function authed(): Promise<RawSmtp> {
    const c = await RawSmtp.connect(smtp.submissionPort);
    assert.match(await c.reply(), /^220 /);
    await c.cmd("EHLO client.example");
    assert.match(await c.startTls(), /^220 /);
    await c.cmd("EHLO client.example");
    assert.match(await c.cmd(`AUTH PLAIN ${b64(`\0alice@alpha.test\0${f.password}`)}`), /^235 /);
    return c;
  }

  before(async () => {
    f = await mailFixture();
    mx = await postfixPeer("remote.test", ["xavier", "yvonne"], { tls: selfSignedCertificate("mx.remote.test") });
    await mx.start();
    f.dns.mx("remote.test", "mx.remote.test");
    f.dns.a("mx.remote.test", "127.0.0.1");
    dnsUdp = await f.dns.serveUdp();
    smtp = await startFixtureSmtp(f, { mxPort: mx.port, retry: { firstRetryMs: 200, retryMaxMs: 1000 } });
  });

  after(async () => {
    await smtp.close();
    mx.cleanup();
    dnsUdp.close();
    f.cleanup();
  });

  test("swaks AUTH PLAIN after STARTTLS: local copy now, remote copy to Postfix over STARTTLS; dkimverify passes both signatures", async () => {
    const r = await submit(["--from", "alice@alpha.test", "--to", "xavier@remote.test,carol@alpha.test", "--h-From", "Alice <alice@alpha.test>", "--h-Subject", "to the world", "--body", "Hello from Nexus.\n.dot line\n"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(replies(r.stdout).join("\n"), /^250 2\.0\.0 Ok: queued as \S+$/m);
    const local = maildirMessages(CAROL_MD(f)).at(-1)?.text ?? "";
    assert.match(local, /^Return-Path: <alice@alpha\.test>\nAuthentication-Results: mx\.nexus\.test; auth=pass smtp\.auth=alice@alpha\.test\nDKIM-Signature: v=1; a=rsa-sha256;[^]*DKIM-Signature: v=1; a=ed25519-sha256;/);
    await waitFor(() => maildirMessages(mx.maildir("xavier")).length === 1, "delivery to the Postfix MX");
    const remote = readFileSync(join(mx.maildir("xavier"), "new", readdirSync(join(mx.maildir("xavier"), "new"))[0] ?? ""));
    const text = remote.toString("latin1");
    assert.match(text, /Received: from mx\.nexus\.test \(localhost \[127\.0\.0\.1\]\)\n\tby mx\.remote\.test \(Postfix\) with ESMTPS id/, "Postfix saw STARTTLS (ESMTPS, RFC 3848)");
    assert.match(text, /Received: from client\.example [^\n]*\n\tby mx\.nexus\.test \(Nexus COS\) with ESMTPSA/);
    assert.match(text, /\nDate: /);
    assert.match(text, /\nMessage-Id: </i);
    for (const index of [0, 1]) {
      const v = await dkimverify(remote, dnsUdp.port, index);
      assert.equal(v.stdout.trim(), "signature ok", `dkimverify --index ${index}: ${v.stdout}${v.stderr}`);
      assert.equal(v.code, 0);
    }
    const sigs = text.match(/^DKIM-Signature: v=1; a=([a-z0-9-]+);/gm) ?? [];
    assert.deepEqual(sigs.map((s) => /a=([a-z0-9-]+)/.exec(s)?.[1]), ["rsa-sha256", "ed25519-sha256"]);
    assert.match(text, /s=nx-\d{8}-rsa;/);
    await waitFor(() => smtp.queue.entries().length === 0, "queue drained");
    const c = smtp.counters.snapshot();
    assert.equal(c.alpha?.messagesOut, 1);
    assert.equal(c.alpha?.messagesIn, 1, "carol's copy");
  });

  test("a tampered copy fails dkimverify (the check is real)", async () => {
    const dir = join(mx.maildir("xavier"), "new");
    const name = readdirSync(dir)[0] ?? "";
    const tampered = Buffer.from(readFileSync(join(dir, name), "latin1").replace("Hello from Nexus.", "Hello from Mallory."), "latin1");
    for (const index of [0, 1]) {
      const v = await dkimverify(tampered, dnsUdp.port, index);
      assert.notEqual(v.code, 0);
      // dkimpy reports a body hash mismatch by raising (dkim.ValidationError) rather than printing.
      assert.match(v.stdout + v.stderr, /signature verification failed|body hash mismatch/, v.stderr);
    }
  });

  test("AUTH LOGIN works; a mailbox may send as any address of its own IMVU's domains", async () => {
    const r = await submit(["--from", "carol@alpha.test", "--to", "bob@beta.test", "--h-From", "carol@alpha.test"], "alice@alpha.test", ["--auth", "LOGIN"]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(maildirMessages(BOB_MD(f)).at(-1)?.text ?? "", /auth=pass smtp\.auth=alice@alpha\.test/);
    const c = await authed();
    assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    assert.match(await c.cmd("From: alice@alpha.test\r\nSubject: bare\r\n\r\nno Date, no Message-ID\r\n."), /^250 /);
    c.close();
    // Picked by its subject: Maildir names sort by name, not always by arrival within one second.
    const bare = (): string | undefined => maildirMessages(BOB_MD(f)).find((m) => m.text.includes("\nSubject: bare\n"))?.text;
    await waitFor(() => bare() !== undefined, "the bare message in bob's Maildir");
    const stored = bare() ?? "";
    assert.match(stored, /\nDate: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\nMessage-ID: <[0-9a-f]{32}@mx\.nexus\.test>\nFrom: alice@alpha\.test\n/, "RFC 6409 8.2, 8.3");
  });

  test("AUTH before STARTTLS is neither offered nor accepted; MAIL before AUTH is 530 5.7.0", async () => {
    const c = await RawSmtp.connect(smtp.submissionPort);
    assert.match(await c.reply(), /^220 /);
    const ehlo = await c.cmd("EHLO client.example");
    assert.doesNotMatch(ehlo, /AUTH/);
    assert.match(ehlo, /STARTTLS/);
    assert.match(await c.cmd(`AUTH PLAIN ${b64(`\0alice@alpha.test\0${f.password}`)}`), /^500 /);
    assert.match(await c.cmd("AUTH LOGIN"), /^500 /);
    assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^530 5\.7\.0 Authentication required/);
    assert.match(await c.cmd("RCPT TO:<xavier@remote.test>"), /^503 /);
    assert.match(await c.cmd("DATA"), /^503 /);
    c.close();
    const r = await swaks(smtp.submissionPort, ["--auth", "PLAIN", "--auth-user", "alice@alpha.test", "--auth-password", f.password, "--from", "alice@alpha.test", "--to", "xavier@remote.test"]);
    assert.notEqual(r.code, 0, "swaks without --tls cannot authenticate");
  });

  test("unauthenticated relaying through submission is refused", async () => {
    const c = await RawSmtp.connect(smtp.submissionPort);
    assert.match(await c.reply(), /^220 /);
    await c.cmd("EHLO client.example");
    await c.startTls();
    await c.cmd("EHLO client.example");
    assert.match(await c.cmd("MAIL FROM:<spammer@evil.example>"), /^530 5\.7\.0 /);
    c.close();
  });

  test("wrong passwords: 535 5.7.8, and the third failure closes the connection with 421", async () => {
    const c = await RawSmtp.connect(smtp.submissionPort);
    assert.match(await c.reply(), /^220 /);
    await c.cmd("EHLO client.example");
    await c.startTls();
    await c.cmd("EHLO client.example");
    assert.match(await c.cmd(`AUTH PLAIN ${b64("\0alice@alpha.test\0wrong")}`), /^535 5\.7\.8 /);
    assert.match(await c.cmd(`AUTH PLAIN ${b64("\0nobody@alpha.test\0wrong")}`), /^535 5\.7\.8 /);
    assert.match(await c.cmd(`AUTH PLAIN ${b64("\0bob@beta.test\0wrong")}`), /^421 4\.7\.0 /);
    assert.equal(await c.reply(), "", "closed");
    c.close();
  });

  test("gate 5: another IMVU's domain as envelope sender or in From: is 553 5.7.1; nothing is sent", async () => {
    const queued = smtp.queue.entries().length;
    const bobBefore = maildirMessages(BOB_MD(f)).length;
    const c = await authed();
    assert.match(await c.cmd("MAIL FROM:<bob@beta.test>"), /^553 5\.7\.1 /);
    assert.match(await c.cmd("MAIL FROM:<ceo@bank.example>"), /^553 5\.7\.1 /);
    assert.match(await c.cmd("MAIL FROM:<>"), /^553 5\.7\.1 /);
    assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<bob@beta.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<xavier@remote.test>"), /^250 /);
    assert.match(await c.cmd("DATA"), /^354 /);
    assert.match(await c.cmd("From: Bob <bob@beta.test>\r\nSubject: spoof\r\n\r\nhi\r\n."), /^553 5\.7\.1 .*bob@beta\.test/);
    for (const [header, want] of [
      ["From: alice@alpha.test, mallory@bank.example", /^553 5\.7\.1 /],
      ["From: alice@alpha.test\r\nFrom: alice@alpha.test", /^550 5\.6\.0 /],
      ["Sender: alice@alpha.test", /^550 5\.6\.0 /],
      ["From: undisclosed-recipients:;", /^550 5\.6\.0 /],
    ] as const) {
      assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^250 /);
      assert.match(await c.cmd("RCPT TO:<xavier@remote.test>"), /^250 /);
      assert.match(await c.cmd("DATA"), /^354 /);
      assert.match(await c.cmd(`${header}\r\nSubject: x\r\n\r\nhi\r\n.`), want, header);
    }
    assert.match(await c.cmd("MAIL FROM:<alice@alpha.test>"), /^250 /);
    assert.match(await c.cmd("RCPT TO:<nobody@alpha.test>"), /^550 5\.1\.1 /);
    c.close();
    assert.equal(smtp.queue.entries().length, queued);
    assert.equal(maildirMessages(BOB_MD(f)).length, bobBefore);
    assert.ok((smtp.counters.refusals().SMTP_FROM_NOT_OWNED ?? 0) >= 2);
    assert.ok((smtp.counters.refusals().SMTP_SENDER_NOT_OWNED ?? 0) >= 3);
  });

  test("bob (IMVU beta) cannot send as alpha.test either way round", async () => {
    const r = await submit(["--from", "alice@alpha.test", "--to", "xavier@remote.test"], "bob@beta.test");
    assert.notEqual(r.code, 0);
    assert.match(replies(r.stdout).join("\n"), /^553 5\.7\.1 /m);
    const r2 = await submit(["--from", "bob@beta.test", "--to", "xavier@remote.test", "--h-From", "alice@alpha.test"], "bob@beta.test");
    assert.notEqual(r2.code, 0);
    assert.match(replies(r2.stdout).join("\n"), /^553 5\.7\.1 .*From:/m);
  });
});
