/**
 * The IMVU lifecycle end to end on two real installations (DNS, compute under podman, the
 * gateway, mail): `nexus imvu create` makes every part in one command and each answers at once
 * (dig, swaks, IMAP with the printed password, curl through the gateway); a create that fails
 * half-way resumes when run again; then exit, and import on the second installation gives the
 * same DNS answers, the same mail with the same password, the same page and the same volume data.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { loadIdentity } from "../../src/core/identity/index.ts";
import { installationFabric, slug } from "../../src/services/compute/names.ts";
import { dnsServiceOf } from "../../src/platform/services/dns.ts";
import { runPython } from "../mail/support-imap.ts";
import { cleanup, cli, dig, fillVolume, person, startInstallations, tempDir, type Installation, type Run } from "./support.ts";

function run(cmd: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args);
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    c.on("error", reject);
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}


const page = async (port: number, host: string): Promise<string> => {
  const r = await run("curl", ["-sS", "--max-time", "10", "-H", `Host: ${host}`, `http://127.0.0.1:${port}/`]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

const swaks = async (port: number, to: string, subject: string): Promise<void> => {
  const r = await run("swaks", ["--server", `127.0.0.1:${port}`, "--to", to, "--from", "alice@example.org", "--header", `Subject: ${subject}`, "--body", `about ${subject}`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
};

/** Subjects of the INBOX over IMAP (STARTTLS, the printed password), waiting for `want` of them. */
const SUBJECTS = String.raw`
import imaplib, json, os, ssl, time, email
end = time.time() + 30
while True:
    c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    c.starttls(ssl_context=ctx)
    c.login(os.environ["USER_"], os.environ["PW"])
    c.select("INBOX")
    typ, data = c.search(None, "ALL")
    subjects = []
    for n in data[0].split():
        typ, msg = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects.append(email.message_from_bytes(msg[0][1])["Subject"])
    c.logout()
    if len(subjects) >= int(os.environ["WANT"]) or time.time() > end:
        break
    time.sleep(0.3)
print(json.dumps(sorted(subjects)))
`;
const subjects = async (port: number, user: string, pw: string, want: number): Promise<string[]> =>
  (await runPython(SUBJECTS, { PORT: String(port), USER_: user, PW: pw, WANT: String(want) })) as string[];

describe("imvu create in one command, exit, and import elsewhere", () => {
  let a: Installation;
  let b: Installation;
  let creator: Record<string, string>;
  let password = "";
  const ADDRESS = "creator@stage.nexus.test";

  before(async () => {
    const [first, second] = await startInstallations([{ prefix: "nexus-life-a-", full: true }, { prefix: "nexus-life-b-", full: true }]);
    if (first === undefined || second === undefined) throw new Error("two installations asked, fewer started");
    [a, b] = [first, second];
    // The platform's DNS service serves on the batched transport by default (./nexus test installs gcc).
    for (const i of [a, b]) assert.equal(dnsServiceOf(i.stack.services)?.server.udpTransport, "batch");
    creator = person(a.stack.apiUrl, "creator");
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    cleanup();
  });

  test("one command makes the IMVU, zone, mailbox, workload and route, and each answers at once", async () => {
    const site = tempDir("nexus-site-");
    writeFileSync(join(site, "index.html"), "<h1>hello from stage</h1>\n");
    const r = await cli(["imvu", "create", "--name", "stage", "--jurisdiction", "DE", "--app", site], creator);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const step of ["identity", "imvu", "mailbox", "workload", "route", "answers"]) assert.match(r.stdout, new RegExp(`^${step}\\s+done`, "m"), `${step} done:\n${r.stdout}`);
    password = /^mailbox password: (\S+)$/m.exec(r.stdout)?.[1] ?? "";
    assert.equal(password.length, 24, r.stdout);
    assert.equal(r.stdout.split(password).length - 1, 1, "the password is printed exactly once");
    assert.match(r.stdout, new RegExp(`dig @127\\.0\\.0\\.1 -p ${a.dnsPort} stage\\.nexus\\.test A`));
    assert.match(r.stdout, new RegExp(`curl -H 'Host: stage\\.nexus\\.test' http://127\\.0\\.0\\.1:${a.gatewayPort}/`));
    // Each part, by an independent client, right after the command returned.
    assert.equal(await dig(a.dnsPort, "stage.nexus.test", "A"), "127.0.0.1");
    assert.match(await dig(a.dnsPort, "stage.nexus.test", "MX"), /^10 mail\.nexus\.test\.$/m);
    assert.match(await dig(a.dnsPort, "stage.nexus.test", "TXT"), /v=spf1/);
    assert.match(await dig(a.dnsPort, "_dmarc.stage.nexus.test", "TXT"), /v=DMARC1/);
    const dkim = a.stack.platform.state.list("dns-rrset").map(([, r]) => r).filter((r) => r.imvu === "stage").map((r) => r.name).find((n) => n.includes("._domainkey."));
    assert.ok(dkim !== undefined, "the mail service published the IMVU's DKIM key");
    assert.match(await dig(a.dnsPort, dkim, "TXT"), /v=DKIM1/);
    assert.equal(await page(a.gatewayPort, "stage.nexus.test"), "<h1>hello from stage</h1>\n");
    await swaks(a.smtpPort, ADDRESS, "first letter");
    assert.deepEqual(await subjects(a.imapPort, ADDRESS, password, 1), ["first letter"]);
    // Running it again changes nothing and says so.
    const again = await cli(["imvu", "create", "--name", "stage"], creator);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const step of ["imvu", "mailbox", "workload", "route"]) assert.match(again.stdout, new RegExp(`^${step}\\s+existed`, "m"), again.stdout);
    assert.doesNotMatch(again.stdout, /mailbox password:/, "an existing mailbox's password is never printed again");
  });

  test("a create that fails half-way keeps what it made, names the failed step, and resumes when run again", async () => {
    const r = await cli(["imvu", "create", "--name", "shop", "--app", join(tempDir("nexus-none-"), "missing")], creator);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout, /^imvu\s+done/m);
    assert.match(r.stdout, /^workload\s+failed\s+.*is not a directory; run the same command again to resume/m);
    assert.doesNotMatch(r.stdout, /^(route|mailbox)\s/m, "nothing after the failed step");
    assert.equal(a.stack.platform.state.list("compute-workload", "shop/").length, 0, "no workload half-made");
    assert.ok(a.stack.platform.state.get("imvu", "shop"), "the IMVU made before the failure stays");
    const resumed = await cli(["imvu", "create", "--name", "shop"], creator);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /^imvu\s+existed/m);
    assert.match(resumed.stdout, /^workload\s+done/m);
    assert.match(resumed.stdout, /^route\s+done/m);
    assert.match(resumed.stdout, /^mailbox\s+done/m);
    const pw = /^mailbox password: (\S+)$/m.exec(resumed.stdout)?.[1] ?? "";
    assert.equal(pw.length, 24, resumed.stdout);
    assert.match(await page(a.gatewayPort, "shop.nexus.test"), /<h1>Welcome to shop\.nexus\.test<\/h1>/);
    await swaks(a.smtpPort, "creator@shop.nexus.test", "to the shop");
    assert.deepEqual(await subjects(a.imapPort, "creator@shop.nexus.test", pw, 1), ["to the shop"]);
  });

  test("hostile and bad input: a taken name is denied by gate 3 and nothing else is made; --bare; bad flags", async () => {
    const mallory = person(a.stack.apiUrl, "mallory");
    const boxes = a.stack.platform.state.list("mail-mailbox").length;
    const taken = await cli(["imvu", "create", "--name", "stage"], mallory);
    assert.equal(taken.code, 1, taken.stdout + taken.stderr);
    assert.match(taken.stderr, /GATE_DENIED.*gate 3/);
    assert.match(taken.stdout, /^imvu\s+failed/m);
    assert.equal(a.stack.platform.state.list("mail-mailbox").length, boxes, "no mailbox made for a denied IMVU");
    assert.equal(a.stack.platform.state.get("imvu", "stage")?.owner, a.stack.platform.state.get("imvu", "shop")?.owner, "stage still belongs to its creator");
    const bare = await cli(["imvu", "create", "--name", "quiet", "--bare"], mallory);
    assert.equal(bare.code, 0, bare.stdout + bare.stderr);
    assert.doesNotMatch(bare.stdout, /^(mailbox|workload|route)\s/m);
    assert.equal(a.stack.platform.state.list("mail-mailbox", "quiet/").length, 0);
    for (const args of [["--name", "q2", "--bare", "--app", "/tmp"], ["--name", "Q_2"], ["--name", "q3", "--class", "bank"]]) {
      const bad = await cli(["imvu", "create", ...args], mallory);
      assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, /INPUT_INVALID/);
    }
  });

  test("exit, then import on another installation: same DNS, same mail and password, same page, same volume data", async () => {
    const www = await cli(["dns", "set", "--imvu", "stage", "www", "A", "192.0.2.10"], creator);
    assert.equal(www.code, 0, www.stderr);
    fillVolume(a.home, "stage", { "notes/today.txt": "kept across platforms\n" });
    const passFile = join(tempDir("nexus-pass-"), "pass");
    writeFileSync(passFile, "a long exit passphrase\n", { mode: 0o600 });
    const out = join(tempDir("nexus-exit-"), "bundle");
    const ex = await cli(["imvu", "exit", "--imvu", "stage", "--out", out, "--passphrase-file", passFile], creator);
    assert.equal(ex.code, 0, ex.stdout + ex.stderr);
    const verified = await cli(["imvu", "verify-export", out, "--verifier-key", a.stack.platform.verifierKey], {});
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);

    const imp = await cli(["imvu", "import", out, "--verifier-key", a.stack.platform.verifierKey, "--passphrase-file", passFile], { ...creator, NEXUS_API: b.stack.apiUrl });
    assert.equal(imp.code, 0, imp.stdout + imp.stderr);
    assert.match(imp.stdout, /imported stage as stage: \d+ RRsets, creator@stage\.nexus\.test \(1 messages\), volume \(\d+ entries\), workloads welcome, 1 routes/);
    const rec = b.stack.platform.state.get("imvu", "stage");
    assert.equal(rec?.importedFrom?.verifierKey, a.stack.platform.verifierKey, "the new ledger records the origin's key");
    assert.ok(rec?.importedFrom !== undefined && BigInt(rec.importedFrom.treeSize) > 0n);

    for (const [name, type] of [["www.stage.nexus.test", "A"], ["stage.nexus.test", "TXT"], ["_dmarc.stage.nexus.test", "TXT"]] as const) {
      const before = await dig(a.dnsPort, name, type);
      assert.notEqual(before, "", `${name} ${type} answered at the origin`);
      assert.equal(await dig(b.dnsPort, name, type), before, `same answer for ${name} ${type}`);
    }
    assert.deepEqual(await subjects(b.imapPort, ADDRESS, password, 1), ["first letter"], "the same mail with the same password");
    let served = "";
    for (let i = 0; i < 200 && served !== "<h1>hello from stage</h1>\n"; i++) {
      served = await page(b.gatewayPort, "stage.nexus.test").catch(() => "");
      if (served !== "<h1>hello from stage</h1>\n") await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(served, "<h1>hello from stage</h1>\n", "the same page through the other gateway");
    const vol = join(b.home, "compute", installationFabric(b.home), "volumes", slug("stage"), "data", "notes", "today.txt");
    assert.equal(readFileSync(vol, "utf8"), "kept across platforms\n", "the volume's data came along");
    // New mail reaches the imported mailbox on the new installation.
    await swaks(b.smtpPort, ADDRESS, "after the move");
    assert.deepEqual(await subjects(b.imapPort, ADDRESS, password, 2), ["after the move", "first letter"]);
    // The same import run again (as after a failure part-way) finds every step done and changes nothing.
    const again = await cli(["imvu", "import", out, "--verifier-key", a.stack.platform.verifierKey, "--passphrase-file", passFile], { ...creator, NEXUS_API: b.stack.apiUrl });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const step of ["imvu stage and the record of its import", "the volume", "workload welcome", "route stage.nexus.test/"]) {
      assert.ok(again.stdout.includes(`${step}: done by an earlier run`), `${step}: ${again.stdout}`);
    }
    assert.equal(readFileSync(vol, "utf8"), "kept across platforms\n", "the volume is not restored over the running workload");
    assert.deepEqual(await subjects(b.imapPort, ADDRESS, password, 2), ["after the move", "first letter"], "no message twice, the new one kept");
  });

  test("the volume route takes uploads only for an imported IMVU without workloads, from its owner", async () => {
    const dir = tempDir("nexus-vol-");
    mkdirSync(join(dir, "x"));
    const r = await cli(["imvu", "import", dir, "--passphrase-file", "/dev/null"], { ...creator, NEXUS_API: b.stack.apiUrl });
    assert.equal(r.code, 1, "a directory that is no bundle is refused before anything is sent");
    assert.match(r.stderr, /EXIT_BUNDLE_INVALID/);
    // Straight at the route: stage on b has workloads now, shop on a was never imported.
    const me = loadIdentity(creator.NEXUS_KEYRING ?? "");
    const put = async (api: string, imvu: string): Promise<{ status: number; code?: string }> => {
      const url = `${api}/v1/compute/imvus/${imvu}/volume/${"0".repeat(64)}`;
      const headers: Record<string, string> = { "content-type": "application/x-tar" };
      const sig = signRequest({ method: "PUT", url, headers }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: me.id, alg: "ed25519" }, privateKey: me.current.privateKey });
      const res = await fetch(url, { method: "PUT", headers: { ...headers, "signature-input": sig.signatureInput, signature: sig.signature }, body: new Uint8Array(1024) });
      const body = (await res.json()) as { error?: { code?: string } };
      return { status: res.status, ...(body.error?.code === undefined ? {} : { code: body.error.code }) };
    };
    assert.deepEqual(await put(b.stack.apiUrl, "stage"), { status: 409, code: "COMPUTE_VOLUME_IMPORT_REFUSED" });
    assert.deepEqual(await put(a.stack.apiUrl, "shop"), { status: 409, code: "COMPUTE_VOLUME_IMPORT_REFUSED" });
    assert.deepEqual(await put(a.stack.apiUrl, "quiet"), { status: 404, code: "NOT_FOUND" }, "another's IMVU answers as if it did not exist");
  });
});
