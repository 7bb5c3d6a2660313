/**
 * The pure and local parts of the SMTP side: addresses and the Maildir layout, password verifiers
 * and the secret store, DKIM keys and records, the self-signed certificate, Maildir delivery,
 * message parsing, DNS helpers, retries and DSNs, and the error table against docs/errors.md.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import fc from "fast-check";
import { dkimVerify } from "mailauth";
import { isNexusError } from "../../src/core/errors.ts";
import { sha256Hex } from "../../src/core/crypto/hash.ts";
import {
  MailSecretStore,
  StaticMailDirectory,
  checkPassword,
  commitment,
  createPasswordVerifier,
  maildirPath,
  parseAddress,
  parseVerifier,
} from "../../src/services/mail/directory.ts";
import { dkimDnsRecords, dkimKeyCommitment, dkimSignMessage, generateDkimKeys, parseDkimKey } from "../../src/services/mail/dkim.ts";
import { MaildirWriter, crlfToLf, ensureMaildir, maildirContent, scanMaildirUsage } from "../../src/services/mail/maildir-deliver.ts";
import { retryDelayMs, RETRY_DEFAULT } from "../../src/services/mail/queue.ts";
import { buildDsn } from "../../src/services/mail/queue-dsn.ts";
import { loadOrCreateTls, selfSignedCertificate } from "../../src/services/mail/tls.ts";
import { cachingResolver, ptrName, staticResolver, mailauthResolver } from "../../src/services/mail/smtp/dns.ts";
import { SMTP_REPLIES, smtpErrors } from "../../src/services/mail/smtp/errors.ts";
import { ByteBudget, SMTP_LIMITS_DEFAULT } from "../../src/services/mail/smtp/limits.ts";
import {
  collectMessage,
  forgedAuthResults,
  fromAddresses,
  headerFields,
  headerSpan,
  receivedField,
  rfc5322Date,
} from "../../src/services/mail/smtp/message.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { run, tempDir } from "./support-smtp.ts";

const codeOf = (e: unknown): string => (isNexusError(e) ? e.code : `not a NexusError: ${String(e)}`);

test("addresses: hostable mailboxes are folded to lower case; unsafe ones are refused", () => {
  assert.deepEqual(parseAddress("Alice.B+tag@Alpha.TEST."), { local: "alice.b+tag", domain: "alpha.test", address: "alice.b+tag@alpha.test" });
  for (const bad of ["a/b@x.test", "../x@y.test", ".a@x.test", "a..b@x.test", '"q"@x.test', "a@localhost", "a@[127.0.0.1]", "a@-x.test", "é@x.test", `${"a".repeat(65)}@x.test`, "nobody"]) {
    assert.equal(parseAddress(bad), undefined, bad);
  }
  assert.equal(maildirPath("/r", "alpha", "Alice@Alpha.test"), "/r/alpha/alice@alpha.test/Maildir");
  for (const [imvu, addr] of [["Alpha", "a@x.test"], ["al/pha", "a@x.test"], ["..", "a@x.test"], ["alpha", "a/b@x.test"]] as const) {
    assert.throws(() => maildirPath("/r", imvu, addr), (e) => codeOf(e) === "SMTP_PATH_INVALID");
  }
});

test("password verifiers: scrypt PHC string, constant-time check, commitment is SHA-256 of the string", async () => {
  const v = await createPasswordVerifier("s3cret pass");
  assert.match(v, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(await checkPassword(v, "s3cret pass"), true);
  assert.equal(await checkPassword(v, "s3cret pasS"), false);
  assert.equal(await checkPassword(v, ""), false);
  assert.equal(commitment(v), sha256Hex(v));
  assert.notEqual(await createPasswordVerifier("s3cret pass"), v, "salted");
  for (const bad of ["", "$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", v.replace("$scrypt$", "$argon2$"), `${v}$x`]) {
    assert.throws(() => parseVerifier(bad), (e) => codeOf(e) === "SMTP_VERIFIER_INVALID", bad);
  }
  await assert.rejects(createPasswordVerifier(""), (e) => codeOf(e) === "SMTP_PASSWORD_INVALID");
  await assert.rejects(createPasswordVerifier("x".repeat(1025)), (e) => codeOf(e) === "SMTP_PASSWORD_INVALID");
});

test("secret store: one file per IMVU, mode 0600 in a 0700 directory; malformed files are SMTP_SECRET_STORE_INVALID", async () => {
  const tmp = tempDir("secrets");
  try {
    const store = new MailSecretStore(tmp.path);
    assert.deepEqual(store.read("alpha"), { v: 1, passwords: {}, dkim: {} });
    store.setVerifier("alpha", "alice@alpha.test", await createPasswordVerifier("pw"));
    const file = store.fileOf("alpha");
    assert.equal(file, join(tmp.path, "secrets", "alpha", "mail.json"));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(tmp.path, "secrets", "alpha")).mode & 0o777, 0o700);
    assert.deepEqual(Object.keys(store.read("alpha").passwords), ["alice@alpha.test"]);
    writeFileSync(file, "{not json");
    assert.throws(() => store.read("alpha"), (e) => codeOf(e) === "SMTP_SECRET_STORE_INVALID");
    writeFileSync(file, JSON.stringify({ v: 1, passwords: {}, dkim: {}, extra: 1 }));
    assert.throws(() => store.read("alpha"), (e) => codeOf(e) === "SMTP_SECRET_STORE_INVALID");
    assert.throws(() => store.fileOf("../x"), (e) => codeOf(e) === "SMTP_PATH_INVALID");
  } finally {
    tmp.cleanup();
  }
});

test("directory: mailboxes only in the IMVU's own domains; usage starts from the Maildir's S= sizes", async () => {
  const tmp = tempDir("dir");
  try {
    const d = new StaticMailDirectory(tmp.path);
    d.addDomain("alpha", "alpha.test");
    d.addDomain("beta", "beta.test");
    assert.throws(() => d.addMailbox({ imvu: "alpha", identity: "i", address: "x@beta.test", quotaBytes: 1 }), (e) => codeOf(e) === "SMTP_CONFIG_INVALID");
    const md = join(tmp.path, "mail", "alpha", "alice@alpha.test", "Maildir");
    ensureMaildir(md);
    writeFileSync(join(md, "cur", "1.M1P1Q1.h,S=100,W=104:2,S"), "x");
    writeFileSync(join(md, "new", "2.M2P2Q2.h"), "12345");
    const info = d.addMailbox({ imvu: "alpha", identity: "i", address: "alice@alpha.test", quotaBytes: 1000 });
    assert.equal(info.maildirPath, md);
    assert.deepEqual([info.usedBytes, info.usedMessages], [105, 2]);
    d.recordDelivery("alice@alpha.test", 10);
    assert.equal((await d.lookupMailbox("ALICE@alpha.test"))?.usedBytes, 115);
    assert.equal(await d.isLocalDomain("BETA.test"), "beta");
    assert.equal(await d.verifyPassword("alice@alpha.test", "anything"), false, "no verifier yet");
    assert.equal(await d.verifyPassword("nobody@alpha.test", "anything"), false);
    await d.setPassword("alice@alpha.test", "pw");
    assert.equal(await d.verifyPassword("alice@alpha.test", "pw"), true);
  } finally {
    tmp.cleanup();
  }
});

test("dkim: RSA-2048 and Ed25519 keys; TXT records per RFC 6376 / RFC 8463 with SPF and DMARC", () => {
  const keys = generateDkimKeys(new Date("2025-03-04T00:00:00Z"));
  assert.deepEqual(keys.map((k) => [k.selector, k.algorithm]), [["nx-20250304-rsa", "rsa-sha256"], ["nx-20250304-ed25519", "ed25519-sha256"]]);
  const records = dkimDnsRecords("Alpha.test", keys, { spfMechanisms: ["mx", "ip4:192.0.2.1"], dmarcRua: "mailto:dmarc@alpha.test" });
  assert.deepEqual(records.map((r) => [r.purpose, r.name]), [
    ["dkim", "nx-20250304-rsa._domainkey.alpha.test"],
    ["dkim", "nx-20250304-ed25519._domainkey.alpha.test"],
    ["spf", "alpha.test"],
    ["dmarc", "_dmarc.alpha.test"],
  ]);
  for (const r of records) for (const s of r.strings) assert.ok(Buffer.byteLength(s) <= 255, "RFC 1035 character-string");
  const [rsa, ed, spf, dmarc] = records.map((r) => r.strings.join(""));
  const rsaP = /^v=DKIM1; k=rsa; p=([A-Za-z0-9+/=]+)$/.exec(rsa ?? "")?.[1];
  const rsaKey = keys[0];
  assert.ok(rsaP && rsaKey);
  assert.deepEqual(Buffer.from(rsaP, "base64"), createPublicKey(rsaKey.privateKeyPem).export({ format: "der", type: "spki" }));
  const edP = /^v=DKIM1; k=ed25519; p=([A-Za-z0-9+/=]+)$/.exec(ed ?? "")?.[1];
  assert.ok(edP);
  assert.equal(Buffer.from(edP, "base64").length, 32, "RFC 8463: the raw public key");
  assert.equal(spf, "v=spf1 mx ip4:192.0.2.1 -all");
  assert.equal(dmarc, "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:dmarc@alpha.test");
  assert.throws(() => dkimDnsRecords("a.test", keys, { spfMechanisms: ["all; rm"] }), (e) => codeOf(e) === "SMTP_CONFIG_INVALID");
  assert.match(dkimKeyCommitment(rsaKey), /^[0-9a-f]{64}$/);
  assert.notEqual(dkimKeyCommitment(rsaKey), dkimKeyCommitment(keys[1] ?? rsaKey));
  const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
  assert.throws(() => parseDkimKey({ selector: "s", algorithm: "rsa-sha256", privateKeyPem: weak }), (e) => codeOf(e) === "SMTP_DKIM_KEY_INVALID");
  assert.throws(() => parseDkimKey({ selector: "s", algorithm: "ed25519-sha256", privateKeyPem: rsaKey.privateKeyPem }), (e) => codeOf(e) === "SMTP_DKIM_KEY_INVALID");
});

test("dkim: both signatures verify with mailauth against the published records", async () => {
  const keys = generateDkimKeys();
  const records = new Map<string, string[][]>();
  for (const r of dkimDnsRecords("alpha.test", keys)) records.set(`TXT ${r.name}`, [[...r.strings]]);
  const msg = Buffer.from("From: a@alpha.test\r\nTo: b@x.test\r\nSubject: hi\r\n\r\nbody\r\n.. dotted\r\n");
  const sigs = await dkimSignMessage(msg, "alpha.test", keys);
  const res = await dkimVerify(Buffer.concat([Buffer.from(sigs), msg]), { resolver: mailauthResolver(staticResolver(records)) });
  assert.deepEqual(res.results.map((r) => [r.algo, r.status.result]), [["rsa-sha256", "pass"], ["ed25519-sha256", "pass"]]);
  await assert.rejects(dkimSignMessage(msg, "alpha.test", []), (e) => codeOf(e) === "SMTP_DKIM_SIGN_FAILED");
});

test("tls: a generated certificate parses (node and openssl), names the host, matches its key, and is reused", async () => {
  const c = selfSignedCertificate("mx.alpha.test");
  const x = new X509Certificate(c.cert);
  assert.equal(x.subject, "CN=mx.alpha.test");
  assert.equal(x.subjectAltName, "DNS:mx.alpha.test");
  assert.ok(x.checkPrivateKey(createPrivateKey(c.key)));
  assert.ok(x.verify(x.publicKey), "self-signed");
  const tmp = tempDir("tls");
  try {
    const first = loadOrCreateTls(join(tmp.path, "tls"), "mx.alpha.test");
    assert.equal(statSync(join(tmp.path, "tls", "smtp-key.pem")).mode & 0o777, 0o600);
    assert.deepEqual(loadOrCreateTls(join(tmp.path, "tls"), "mx.alpha.test"), first);
    const r = await run("openssl", ["x509", "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage"], first.cert);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /CN = mx\.alpha\.test[\s\S]*DNS:mx\.alpha\.test[\s\S]*TLS Web Server Authentication/);
    writeFileSync(join(tmp.path, "tls", "smtp-cert.pem"), selfSignedCertificate("other.test").cert);
    assert.throws(() => loadOrCreateTls(join(tmp.path, "tls"), "mx.alpha.test"), (e) => codeOf(e) === "SMTP_TLS_INVALID");
  } finally {
    tmp.cleanup();
  }
});

test("maildir: unique names with S= and W=, LF content, nothing left in tmp/, other recipients hard-linked", async () => {
  const tmp = tempDir("maildir");
  try {
    const a = join(tmp.path, "a", "Maildir");
    const b = join(tmp.path, "b", "Maildir");
    ensureMaildir(a);
    ensureMaildir(b);
    const w = new MaildirWriter("host/with:odd,chars");
    const content = maildirContent([Buffer.from("Return-Path: <x@y.test>\r\n"), Buffer.from("Subject: s\r\n\r\nline\r\nbare\nend")]);
    const files = await w.deliver([a, b], content);
    assert.equal(files.length, 2);
    for (const f of files) {
      const name = f.path.slice(f.path.lastIndexOf("/") + 1);
      assert.match(name, /^\d+\.M\d{1,6}P\d+Q\d+\.host\\057with\\072odd\\054chars,S=(\d+),W=(\d+)$/);
      const text = readFileSync(f.path);
      assert.equal(text.toString(), "Return-Path: <x@y.test>\nSubject: s\n\nline\nbare\nend");
      assert.equal(Number(/,S=(\d+)/.exec(name)?.[1]), text.length);
      assert.equal(Number(/,W=(\d+)/.exec(name)?.[1]), text.length + 5, "W= counts CRLF line ends");
      assert.deepEqual(readdirSync(join(f.maildir, "tmp")), []);
    }
    assert.equal(statSync(files[0]?.path ?? "").ino, statSync(files[1]?.path ?? "").ino, "hard link");
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => w.deliver([a], maildirContent([Buffer.from(`n: ${i}\r\n\r\n`)]))));
    assert.equal(new Set(many.map((f) => f[0]?.path)).size, 200);
    assert.equal(scanMaildirUsage(a).messages, 201);
  } finally {
    tmp.cleanup();
  }
});

test("maildir: CRLF→LF conversion is exact (property: LF text, CRLF-encoded, comes back unchanged)", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom("a", "b", "\n", ".", " ", "é") }), (s) => {
      const lf = Buffer.from(s);
      const out = crlfToLf(Buffer.from(s.replace(/\n/g, "\r\n")));
      assert.deepEqual(out.data, lf);
      assert.equal(out.lineEnds, s.split("\n").length - 1);
    }),
  );
});

test("message: header section, folded fields, From addresses, forged Authentication-Results", () => {
  const m = Buffer.from(
    "Received: x\r\nFrom: \"A, B\" <a@alpha.test>,\r\n c@beta.test\r\nAuthentication-Results: MX.nexus.test; spf=pass\r\nAuthentication-Results: other.example; dkim=pass\r\n\r\nbody\r\n",
  );
  const span = headerSpan(m);
  assert.equal(m.toString("latin1", span.bodyStart), "body\r\n");
  const fields = headerFields(m, span.headerBytes);
  assert.deepEqual(fields.map((f) => f.name), ["received", "from", "authentication-results", "authentication-results"]);
  assert.deepEqual(fromAddresses(m, fields), { fields: 1, addresses: ["a@alpha.test", "c@beta.test"] });
  assert.deepEqual(forgedAuthResults(fields, "mx.nexus.test").map((f) => f.value), ["MX.nexus.test; spf=pass"]);
  assert.deepEqual(headerSpan(Buffer.from("\r\nbody")), { headerBytes: 0, bodyStart: 2 });
  assert.deepEqual(headerSpan(Buffer.from("A: b\r\n")), { headerBytes: 6, bodyStart: 6 });
  assert.equal(rfc5322Date(new Date("2025-01-05T03:04:05Z")), "Sun, 5 Jan 2025 03:04:05 +0000");
  const r = receivedField({ helo: "evil)\r\nX: y", clientHostname: "[1.2.3.4]", clientIp: "::ffff:1.2.3.4", by: "mx", protocol: "ESMTP", id: "abc", date: new Date(0) });
  assert.doesNotMatch(r.slice(0, -2), /\r\n(?![\t])/, "no injected field");
  assert.match(r, /^Received: from evilX:y \(1\.2\.3\.4 \[1\.2\.3\.4\]\)\r\n\tby mx \(Nexus COS\) with ESMTP id abc;\r\n\tThu, 1 Jan 1970 00:00:00 \+0000\r\n$/);
});

test("message: DATA is bounded by line length, size and the shared byte budget", async () => {
  const limits = { messageBytesMax: 4096, lineBytesMax: 1000 };
  const collect = (chunks: string[], budget = new ByteBudget(1 << 20)) => collectMessage(Readable.from(chunks.map((c) => Buffer.from(c))), limits, budget);
  const ok = await collect(["a".repeat(998), "\r\n", "b\r\n"]);
  assert.equal(ok.failure, undefined);
  assert.equal(ok.data?.length, 1003);
  assert.equal((await collect(["a".repeat(999), "\r\n"])).failure, "SMTP_LINE_TOO_LONG");
  assert.equal((await collect(["a".repeat(600), "a".repeat(600)])).failure, "SMTP_LINE_TOO_LONG");
  const big = await collect(Array.from({ length: 10 }, () => "x".repeat(500) + "\r\n"));
  assert.equal(big.failure, "SMTP_MESSAGE_TOO_LARGE");
  assert.equal(big.bytes, 5020);
  const budget = new ByteBudget(100);
  const busy = await collect(["y".repeat(80) + "\r\n", "z".repeat(80) + "\r\n"], budget);
  assert.equal(busy.failure, "SMTP_SERVER_BUSY");
  assert.equal(budget.used, 0, "refused messages give their bytes back");
  const held = await collect(["q\r\n"], budget);
  assert.equal(budget.used, 3);
  held.release();
  assert.equal(budget.used, 0);
});

test("dns: PTR names, ENOTFOUND vs ENODATA, and the cache", async () => {
  assert.equal(ptrName("192.0.2.10"), "10.2.0.192.in-addr.arpa");
  assert.equal(ptrName("::ffff:192.0.2.10"), "10.2.0.192.in-addr.arpa");
  assert.equal(ptrName("2001:db8::1"), `1.${"0.".repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`);
  assert.equal(ptrName("not-an-ip"), undefined);
  let calls = 0;
  const inner = staticResolver(new Map([["A x.test", ["192.0.2.1"]]]));
  const r = cachingResolver({ resolve: (n, t) => (calls++, inner.resolve(n, t)) });
  assert.deepEqual(await r.resolve("x.test", "A"), ["192.0.2.1"]);
  await assert.rejects(r.resolve("x.test", "MX"), (e: { code?: string }) => e.code === "ENODATA");
  await assert.rejects(r.resolve("y.test", "A"), (e: { code?: string }) => e.code === "ENOTFOUND");
  await r.resolve("X.test", "A");
  await assert.rejects(r.resolve("y.test", "A"));
  assert.equal(calls, 3, "answers and negative answers cached");
});

test("queue: retry delays double from 5 minutes up to 4000 s (Postfix's defaults)", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 100].map((n) => retryDelayMs(n, RETRY_DEFAULT)), [300_000, 600_000, 1_200_000, 2_400_000, 4_000_000, 4_000_000, 4_000_000]);
});

test("dsn: multipart/report with message/delivery-status (RFC 3464) and the original headers", () => {
  const dsn = buildDsn({
    reportingMta: "mx.nexus.test",
    to: "alice@alpha.test",
    queueId: "q1",
    arrivalDate: new Date(0),
    recipients: [{ address: "x@remote.test", action: "failed", status: "5.1.1", diagnostic: "smtp; 550 5.1.1 <x@remote.test>: unknown\r\nInjected: yes", remoteMta: "mx.remote.test", lastAttemptAt: new Date(1000) }],
    originalHeaders: Buffer.from("From: alice@alpha.test\r\nSubject: hello\r\n"),
    date: new Date(2000),
  }).toString("latin1");
  assert.match(dsn, /^From: Mail Delivery System <MAILER-DAEMON@mx\.nexus\.test>\r\n/);
  assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status; boundary="([^"]+)"/);
  assert.match(dsn, /Content-Type: message\/delivery-status\r\n\r\nReporting-MTA: dns; mx\.nexus\.test\r\n/);
  assert.match(dsn, /Final-Recipient: rfc822; x@remote\.test\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.remote\.test\r\nDiagnostic-Code: smtp; 550 5\.1\.1 <x@remote\.test>: unknown Injected: yes\r\n/);
  assert.match(dsn, /Content-Type: text\/rfc822-headers\r\n\r\nFrom: alice@alpha\.test\r\nSubject: hello\r\n\r\n--nexus-dsn-[0-9a-f]+--\r\n$/);
  assert.doesNotMatch(dsn, /\r\nInjected:/);
});

test("errors: every SMTP code is in docs/errors.md under '## mail (smtp)'; replies agree with their status class", () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf("## mail (smtp)");
  assert.ok(start >= 0, "docs/errors.md has a '## mail (smtp)' section");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  for (const code of Object.keys(smtpErrors.specs)) assert.ok(section.includes(`| ${code} |`), `${code} documented`);
  for (const [code, r] of Object.entries(SMTP_REPLIES)) {
    assert.equal(String(r.reply)[0], r.status[0], `${code}: ${r.reply} ${r.status}`);
    assert.ok(section.includes(`| ${code} | ${r.reply} ${r.status} |`), `${code}'s reply documented`);
  }
  assert.equal(SMTP_LIMITS_DEFAULT.recipientsMax >= 100, true, "RFC 5321 4.5.3.1.8");
});
