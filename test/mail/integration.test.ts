/**
 * Mail wired to the ledger, end to end: a real installation (Platform.open on a temp home), the
 * mail ServiceModule on free ports, signed commands through the pipeline, and real peers: swaks
 * (SMTP in and submission), Python's imaplib, python3-dkim's dkimverify against the DKIM records
 * the IMVU's zone rows publish. Hostile cases: another IMVU's domain (553), another IMVU's mailbox
 * (IMAP NO), beyond the envelope (gate 7), an admin without consent (gate 10); delete snapshots
 * first (gate 12); no verifier or private key in any ledger entry.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { parseEntry } from "../../src/core/pipeline/pipeline.ts";
import { ledgerEntries, replay } from "../../src/core/pipeline/replay.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { commitment, createPasswordVerifier, MailSecretStore, maildirPath } from "../../src/services/mail/directory.ts";
import { createDnsService } from "../../src/platform/services/dns.ts";
import { createMailService, mailSnapshotDir } from "../../src/platform/services/mail.ts";
import { mailRoutes } from "../../src/platform/services/mail-api.ts";
import type { RunningService } from "../../src/platform/service.ts";
import { act, envelope, install, person, sign, submit, type Installation } from "../pipeline/support.ts";
import { runPython as runPythonJson } from "./support-imap.ts";
import { RawSmtp, TestDns, dkimverify, maildirMessages, swaks, waitFor } from "./support-smtp.ts";

const STAGE = "creator@stage.nexus.test";
const READER = "reader@rival.nexus.test";
const PW = { stage: "stage-password-1", reader: "reader-password-2" };

describe("mail on the ledger", () => {
  let inst: Installation;
  let alice: LocalIdentity;
  let bob: LocalIdentity;
  let admin: LocalIdentity;
  let svc: RunningService;
  let api: FastifyInstance;
  let apiUrl: string;
  const ports = { smtp: 0, submission: 0, imap: 0 };
  const dns = new TestDns();
  const verifiers: string[] = [];
  const logs: string[] = [];

  /** Refreshes the test DNS from the zone rows of the projection (what the DNS server serves). */
  function syncDns(): void {
    dns.records.clear();
    for (const [, r] of inst.platform.state.list("dns-rrset")) {
      if (r.type !== "TXT") continue;
      for (const v of r.values) if (v.type === "TXT") dns.txt(r.name.replace(/\.$/, ""), v.text);
    }
  }

  /** Adds a mailbox with a signed command and hands its verifier to the API, as `nexus mail add` does. */
  async function addMailbox(owner: LocalIdentity, imvu: string, address: string, password: string): Promise<number> {
    const verifier = await createPasswordVerifier(password);
    verifiers.push(verifier);
    const r = await act(inst, owner, { type: "mail.mailbox.add", imvu, body: { address, verifierCommitment: commitment(verifier) } });
    assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    const appliedAt = Date.now();
    const res = await fetch(`${apiUrl}/v1/mail/verifiers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ imvu, address, verifier }) });
    assert.equal(res.status, 200, await res.text());
    return appliedAt;
  }

  /** A signed GET (RFC 9421) as `id`. */
  async function signedGet(id: LocalIdentity, path: string): Promise<{ status: number; json: unknown }> {
    const url = `${apiUrl}${path}`;
    const headers: Record<string, string> = { accept: "application/json" };
    const sig = signRequest({ method: "GET", url, headers }, {
      components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey,
    });
    const res = await fetch(url, { headers: { ...headers, "signature-input": sig.signatureInput, signature: sig.signature } });
    return { status: res.status, json: await res.json() };
  }

  const imapLogin = (user: string, password: string): Promise<unknown> =>
    runPythonJson(
      String.raw`
import imaplib, json, os, ssl
out = {}
c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c.starttls(ssl_context=ctx)
try:
    out["login"] = c.login(os.environ["USER_"], os.environ["PW"])[0]
except imaplib.IMAP4.error as e:
    out["login"] = "NO"; out["error"] = str(e)
if out["login"] == "OK":
    typ, data = c.select("INBOX")
    out["exists"] = int(data[0])
    typ, data = c.search(None, "ALL")
    out["search"] = data[0].decode()
    typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out["subjects"] = [d[1].decode().strip() for d in data if isinstance(d, tuple)]
    c.logout()
print(json.dumps(out))
`,
      { PORT: String(ports.imap), USER_: user, PW: password },
    );

  before(async () => {
    inst = await install("sqlite");
    // The sequencer and the service sign with the real clock (this suite waits on real time).
    Object.defineProperty(inst, "now", { get: () => new Date(), set: () => undefined });
    alice = await person(inst, "alice");
    bob = await person(inst, "bob");
    admin = await person(inst, "admin");
    assert.equal((await inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: admin.id } })).outcome, "applied");
    for (const [owner, name, env] of [[alice, "stage", envelope()], [bob, "rival", envelope()], [bob, "tiny", envelope({ mailboxes: 1 })]] as const) {
      const r = await act(inst, owner, { type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: "imvu", envelope: env } });
      assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    }
    for (const k of ["smtp", "submission", "imap"] as const) ports[k] = await freePort();
    const module = createMailService({ resolver: dns.resolver(), meterIntervalMs: 250, hostname: "mail.nexus.test" });
    svc = await module.start({
      platform: inst.platform,
      config: { host: "127.0.0.1", public: false, ports: { api: 0, dns: 0, resolver: 0, gateway: 0, gatewayTls: 0, ...ports } },
      log: (line) => logs.push(line),
    });
    api = await buildApi({ ledger: inst.platform.ledger, modules: [mailRoutes({ platform: inst.platform })] });
    await api.listen({ host: "127.0.0.1", port: 0 });
    const addr = api.server.address();
    apiUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  });

  after(async () => {
    await svc?.stop();
    await api?.close();
    await inst?.cleanup();
  });

  test("a mailbox created by a signed command receives mail from swaks at once and is readable over IMAP (imaplib)", async () => {
    // A session opened before the mailbox exists: unknown at first, accepted right after the receipt.
    const raw = await RawSmtp.connect(ports.smtp);
    assert.match(await raw.reply(), /^220 /);
    await raw.cmd("EHLO client.example");
    assert.match(await raw.cmd("MAIL FROM:<fan@example.org>"), /^250 /);
    assert.match(await raw.cmd(`RCPT TO:<${STAGE}>`), /^550 5\.1\.1/);
    const appliedAt = await addMailbox(alice, "stage", STAGE, PW.stage);
    assert.match(await raw.cmd(`RCPT TO:<${STAGE}>`), /^250 /);
    assert.ok(Date.now() - appliedAt < 1000, `accepted ${Date.now() - appliedAt} ms after the command applied`);
    raw.close();
    const r = await swaks(ports.smtp, ["--from", "fan@example.org", "--to", STAGE, "--h-Subject", "first letter", "--body", "Hello creator.\n"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const md = maildirPath(join(inst.home, "mail"), "stage", STAGE);
    assert.equal(maildirMessages(md).length, 1);
    const imap = (await imapLogin(STAGE, PW.stage)) as { login: string; exists: number; subjects: string[] };
    assert.equal(imap.login, "OK", JSON.stringify(imap));
    assert.equal(imap.exists, 1);
    assert.deepEqual(imap.subjects, ["Subject: first letter"]);
    const secrets = statSync(new MailSecretStore(inst.home).fileOf("stage"));
    assert.equal(secrets.mode & 0o777, 0o600, "the secret store is mode 0600");
  });

  test("the verifier route stores only a verifier the ledger committed to", async () => {
    const forged = await createPasswordVerifier("attacker-password");
    const res = await fetch(`${apiUrl}/v1/mail/verifiers`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ imvu: "stage", address: STAGE, verifier: forged }),
    });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "MAIL_VERIFIER_MISMATCH");
    const none = await fetch(`${apiUrl}/v1/mail/verifiers`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ imvu: "stage", address: "nobody@stage.nexus.test", verifier: forged }),
    });
    assert.equal(none.status, 404);
    assert.equal(((await imapLogin(STAGE, "attacker-password")) as { login: string }).login, "NO");
  });

  test("DKIM keys are created with the domain: RSA and Ed25519 commitments in the ledger, TXT records in the IMVU's zone", async () => {
    await waitFor(() => inst.platform.state.get("mail-domain", "stage.nexus.test") !== undefined, "DKIM keys published", 30_000);
    const d = inst.platform.state.get("mail-domain", "stage.nexus.test");
    assert.deepEqual(d?.keys.map((k) => k.algorithm).sort(), ["ed25519-sha256", "rsa-sha256"]);
    for (const k of d?.keys ?? []) {
      const row = inst.platform.state.get("dns-rrset", `stage.nexus.test. ${k.selector}._domainkey.stage.nexus.test. TXT`);
      assert.ok(row, `${k.selector} is in the zone rows`);
      assert.match(row.values[0]?.type === "TXT" ? row.values[0].text.join("") : "", new RegExp(`^v=DKIM1; k=(rsa|ed25519); p=${k.publicKey.replace(/[+/]/g, "\\$&")}$`));
    }
    const spf = inst.platform.state.get("dns-rrset", "stage.nexus.test. stage.nexus.test. TXT");
    const dmarc = inst.platform.state.get("dns-rrset", "stage.nexus.test. _dmarc.stage.nexus.test. TXT");
    assert.match(JSON.stringify(spf?.values), /v=spf1/);
    assert.match(JSON.stringify(dmarc?.values), /v=DMARC1/);
  });

  test("submission with AUTH after STARTTLS: both DKIM signatures verify with dkimverify against the zone's records", async () => {
    await addMailbox(bob, "rival", READER, PW.reader);
    await waitFor(() => inst.platform.state.get("mail-domain", "stage.nexus.test") !== undefined, "DKIM keys published", 30_000);
    const r = await swaks(ports.submission, [
      "--tls", "--auth", "PLAIN", "--auth-user", STAGE, "--auth-password", PW.stage,
      "--from", STAGE, "--to", READER, "--h-From", `Creator <${STAGE}>`, "--h-Subject", "signed", "--body", "Hello from the stage.\n",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const copy = maildirMessages(maildirPath(join(inst.home, "mail"), "rival", READER)).at(-1)?.text ?? "";
    const sigs = copy.match(/^DKIM-Signature: v=1; a=([a-z0-9-]+);/gm) ?? [];
    assert.deepEqual(sigs.map((s) => /a=([a-z0-9-]+)/.exec(s)?.[1]), ["rsa-sha256", "ed25519-sha256"]);
    syncDns();
    const udp = await dns.serveUdp();
    try {
      for (const index of [0, 1]) {
        const v = await dkimverify(Buffer.from(copy, "latin1"), udp.port, index);
        assert.equal(v.stdout.trim(), "signature ok", `dkimverify --index ${index}: ${v.stdout}${v.stderr}`);
      }
    } finally {
      udp.close();
    }
  });

  test("the platform's authoritative DNS service serves the DKIM records: dkimverify passes against it", async () => {
    const port = await freePort();
    const dnsSvc = await createDnsService({ config: { upstreams: [] } }).start({
      platform: inst.platform,
      config: { host: "127.0.0.1", public: false, ports: { api: 0, dns: port, resolver: 0, gateway: 0, gatewayTls: 0, ...ports } },
      log: (line) => logs.push(`dns: ${line}`),
    });
    try {
      const copy = maildirMessages(maildirPath(join(inst.home, "mail"), "rival", READER)).at(-1)?.text ?? "";
      for (const index of [0, 1]) {
        const v = await dkimverify(Buffer.from(copy, "latin1"), port, index);
        assert.equal(v.stdout.trim(), "signature ok", `dkimverify --index ${index} against the DNS service: ${v.stdout}${v.stderr}`);
      }
    } finally {
      await dnsSvc.stop();
    }
  });

  test("sending as another IMVU's domain is refused with 553 (gate 5 at protocol level)", async () => {
    const r = await swaks(ports.submission, [
      "--tls", "--auth", "PLAIN", "--auth-user", STAGE, "--auth-password", PW.stage, "--from", "boss@rival.nexus.test", "--to", READER,
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /^<[~*-]+\s+553 5\.7\.1/m);
    const spoofFrom = await swaks(ports.submission, [
      "--tls", "--auth", "PLAIN", "--auth-user", STAGE, "--auth-password", PW.stage, "--from", STAGE, "--to", READER, "--h-From", "boss@rival.nexus.test",
    ]);
    assert.match(spoofFrom.stdout, /^<[~*-]+\s+553 5\.7\.1/m);
  });

  test("logging in to another IMVU's mailbox is answered NO; a changed password retires the old one", async () => {
    assert.equal(((await imapLogin(READER, PW.stage)) as { login: string }).login, "NO");
    assert.equal(((await imapLogin(STAGE, PW.reader)) as { login: string }).login, "NO");
    const verifier = await createPasswordVerifier("reader-password-3");
    verifiers.push(verifier);
    const r = await act(inst, bob, { type: "mail.mailbox.passwd", imvu: "rival", body: { address: READER, verifierCommitment: commitment(verifier) } });
    assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    assert.equal(((await imapLogin(READER, PW.reader)) as { login: string }).login, "NO", "the old verifier no longer matches the ledger");
    const res = await fetch(`${apiUrl}/v1/mail/verifiers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ imvu: "rival", address: READER, verifier }) });
    assert.equal(res.status, 200);
    assert.equal(((await imapLogin(READER, "reader-password-3")) as { login: string }).login, "OK");
  });

  test("a mailbox beyond the envelope's count is denied and recorded with gate 7", async () => {
    const c = commitment(await createPasswordVerifier("x-password"));
    const ok = await act(inst, bob, { type: "mail.mailbox.add", imvu: "tiny", body: { address: "one@tiny.nexus.test", verifierCommitment: c } });
    assert.equal(ok.outcome, "applied");
    const r = await act(inst, bob, { type: "mail.mailbox.add", imvu: "tiny", body: { address: "two@tiny.nexus.test", verifierCommitment: c } });
    assert.equal(r.outcome, "denied");
    assert.deepEqual(r.gates.filter((g) => !g.pass).map((g) => g.gate), [7]);
    const entry = parseEntry(await inst.platform.ledger.entry(BigInt(r.index)));
    assert.equal(entry.outcome, "denied");
    assert.equal(entry.gates.find((g) => g.gate === 7)?.pass, false);
    assert.equal(inst.platform.state.get("mail-mailbox", "tiny/two@tiny.nexus.test"), undefined);
  });

  test("an admin adding a mailbox to an IMVU is denied without the owner's consent (gates 10, 14) and applied with it", async () => {
    const draft = { type: "mail.mailbox.add", imvu: "stage", body: { address: "intercept@stage.nexus.test", verifierCommitment: "a".repeat(64) } };
    const r = await act(inst, admin, draft);
    assert.equal(r.outcome, "denied");
    assert.deepEqual(r.gates.filter((g) => !g.pass).map((g) => g.gate), [10, 14]);
    const other = await act(inst, bob, draft);
    assert.equal(other.outcome, "denied", "another IMVU's owner cannot either");
    // Consent names the digest of the exact command (nonce included): the admin signs it first, the
    // owner consents to that digest, then the admin submits that very envelope.
    const signed = sign(inst, admin, draft);
    const consent = await act(inst, alice, { type: "consent.give", imvu: "stage", body: { digest: signed.digest } });
    assert.equal(consent.outcome, "applied");
    const applied = await submit(inst, signed);
    assert.equal(applied.outcome, "applied", JSON.stringify(applied.gates));
    const feed = inst.platform.state.get("feed", `stage/${applied.index.padStart(20, "0")}`);
    assert.equal(feed?.redirect, true, "the IMVU's feed shows the mailbox as a redirect");
  });

  test("the mailbox list is filtered to the caller's IMVUs (gate 16)", async () => {
    const mine = await signedGet(alice, "/v1/mail/mailboxes");
    assert.equal(mine.status, 200);
    const addrs = (mine.json as { mailboxes: { address: string; verifierStored: boolean; dkimSelectors: string[] }[] }).mailboxes;
    assert.deepEqual(addrs.map((m) => m.address).sort(), ["creator@stage.nexus.test", "intercept@stage.nexus.test"]);
    assert.equal(addrs.find((m) => m.address === STAGE)?.verifierStored, true);
    const published = inst.platform.state.get("mail-domain", "stage.nexus.test")?.keys.map((k) => k.selector) ?? [];
    assert.ok(published.length > 0, "the mail service published stage's DKIM keys");
    for (const m of addrs) assert.deepEqual(m.dkimSelectors, published, `${m.address}: the selectors of its domain's published keys`);
    assert.equal((await signedGet(bob, "/v1/mail/mailboxes?imvu=stage")).status, 404);
    const bobs = (await signedGet(bob, "/v1/mail/mailboxes")).json as { mailboxes: { imvu: string }[] };
    assert.ok(bobs.mailboxes.every((m) => m.imvu !== "stage"));
    const anon = await fetch(`${apiUrl}/v1/mail/mailboxes`);
    assert.equal(anon.status, 401);
  });

  test("metering: messages and bytes in and out per IMVU as usage reports of service:mail", async () => {
    await waitFor(() => {
      const out = inst.platform.state.list("usage", "stage/mail/").some(([, u]) => u.metrics["messagesOut"] === "1");
      const inn = inst.platform.state.list("usage", "rival/mail/").some(([, u]) => Number(u.metrics["messagesIn"] ?? 0) >= 1);
      return out && inn;
    }, "usage reports", 10_000);
    const stage = inst.platform.state.list("usage", "stage/mail/").map(([, u]) => u);
    const total = (k: string): number => stage.reduce((n, u) => n + Number(u.metrics[k] ?? 0), 0);
    assert.equal(total("messagesIn"), 1);
    assert.ok(total("bytesIn") > 0 && total("bytesOut") > 0);
    const reporter = inst.platform.serviceIdentity("mail").id;
    const entry = parseEntry(await inst.platform.ledger.entry(BigInt(stage[0]?.index ?? "0")));
    const payload = JSON.parse(Buffer.from((entry.envelope as { payload: string }).payload, "base64").toString()) as { actor: string; type: string };
    assert.equal(payload.type, "usage.report");
    assert.equal(payload.actor, reporter);
  });

  test("delete snapshots the Maildir first (gate 12): content-addressed, read-only, recorded, then removed", async () => {
    const md = maildirPath(join(inst.home, "mail"), "stage", STAGE);
    assert.ok(existsSync(md));
    const del = await act(inst, alice, { type: "mail.mailbox.delete", imvu: "stage", body: { address: STAGE } });
    assert.equal(del.outcome, "applied", JSON.stringify(del.gates));
    await waitFor(() => inst.platform.state.get("mail-mailbox", `stage/${STAGE}`) === undefined, "snapshot recorded", 10_000);
    const snaps = inst.platform.state.list("mail-snapshot", "stage/").map(([, s]) => s);
    assert.equal(snaps.length, 1);
    const snap = snaps[0];
    assert.ok(snap);
    assert.equal(snap.of, del.index);
    assert.ok(BigInt(snap.recordedIndex) > BigInt(del.index));
    const file = join(mailSnapshotDir(inst.home, "stage"), `${snap.sha256}.tar`);
    const bytes = readFileSync(file);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), snap.sha256, "the file is named by its SHA-256");
    assert.equal(String(bytes.length), snap.bytes);
    assert.equal(statSync(file).mode & 0o777, 0o444);
    const listing = spawnSync("tar", ["-tf", file], { encoding: "utf8" }).stdout;
    assert.match(listing, /Maildir\/(new|cur)\/\d+\.M/, "the snapshot holds the message");
    await waitFor(() => !existsSync(md), "Maildir removed after the snapshot was recorded", 5_000);
    const r = await swaks(ports.smtp, ["--from", "fan@example.org", "--to", STAGE]);
    assert.match(r.stdout, /^<[~*-]+\s+550 5\.1\.1/m);
    assert.equal(((await imapLogin(STAGE, PW.stage)) as { login: string }).login, "NO");
  });

  test("a restart of the service keeps the DKIM keys (nothing republished) and the mailboxes", async () => {
    const published = (): number => inst.platform.state.list("feed").filter(([, f]) => f.type === "mail.dkim.publish" && f.outcome === "applied").length;
    const before = published();
    assert.equal(before, 3, "stage, rival and tiny each published once");
    await svc.stop();
    for (const k of ["smtp", "submission", "imap"] as const) ports[k] = await freePort();
    svc = await createMailService({ resolver: dns.resolver(), meterIntervalMs: 250, hostname: "mail.nexus.test" }).start({
      platform: inst.platform,
      config: { host: "127.0.0.1", public: false, ports: { api: 0, dns: 0, resolver: 0, gateway: 0, gatewayTls: 0, ...ports } },
      log: (line) => logs.push(line),
    });
    assert.equal(((await imapLogin(READER, "reader-password-3")) as { login: string }).login, "OK");
    const r = await swaks(ports.submission, [
      "--tls", "--auth", "PLAIN", "--auth-user", READER, "--auth-password", "reader-password-3", "--from", READER, "--to", "one@tiny.nexus.test",
    ]);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(published(), before);
  });

  test("replaying the ledger rebuilds the same projection, mail rows and DKIM zone rows included", async () => {
    const report = await replay(ledgerEntries(inst.platform.ledger), identityVerifiers);
    assert.deepEqual(report.mismatches, []);
    assert.equal(report.digest, inst.platform.pipeline.stateDigest());
  });

  test("no ledger entry holds a password verifier, a password or a DKIM private key", async () => {
    const secrets = new MailSecretStore(inst.home);
    const needles: string[] = [...verifiers, ...verifiers.map((v) => v.split("$").at(-1) ?? v), PW.stage, PW.reader, "reader-password-3"];
    for (const imvu of readdirSync(secrets.dir)) {
      for (const keys of Object.values(secrets.read(imvu).dkim)) {
        for (const k of keys) {
          const body = k.privateKeyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
          needles.push(body, body.slice(0, 64), body.slice(-64));
          const der = Buffer.from(body, "base64");
          needles.push(der.subarray(-32).toString("base64"), der.subarray(-32).toString("hex"));
        }
      }
    }
    assert.ok(needles.length > 10);
    let scanned = 0;
    for (let i = 0n; i < inst.platform.ledger.size; i++) {
      const raw = Buffer.from(await inst.platform.ledger.entry(i));
      const entry = parseEntry(raw);
      const payload = Buffer.from((entry.envelope as { payload: string }).payload, "base64").toString("latin1");
      for (const n of needles) {
        assert.ok(!raw.includes(n), `entry ${i} holds secret material`);
        assert.ok(!payload.includes(n), `entry ${i}'s payload holds secret material`);
      }
      scanned += 1;
    }
    assert.ok(scanned > 10);
    assert.ok(!logs.some((l) => /reconcile failed/.test(l)), logs.join("\n"));
  });
});
