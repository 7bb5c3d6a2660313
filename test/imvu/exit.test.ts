/**
 * `nexus imvu exit` and `nexus imvu verify-export` end to end: a real stack, an IMVU with DNS
 * records, a mailbox with mail, revenue and volume data; the owner's CLI (a child process with
 * its own keyring and trust directory) exits, and the bundle is checked by the CLI offline and by
 * independent tools (named-checkzone, Debian's age, `revenue verify-statement`). Then the hostile
 * cases: each deletion, altered byte, swapped file or stripped signature is caught and named.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { maildirPath, maildirRoot } from "../../src/services/mail/directory.ts";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { fromBase64, parseDsse, toBase64 } from "../../src/core/crypto/index.ts";
import { createIdentity, loadIdentity } from "../../src/core/identity/index.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { EXPORTABLE_RESOURCES } from "../../src/core/policy/gates.ts";
import { EXIT_MANIFEST_PAYLOAD_TYPE, ExitManifestSchema, PATHS, RESOURCE_PARTS, verifyBundle, zonePath } from "../../src/imvu/index.ts";
import { runPython } from "../mail/support-imap.ts";
import { cleanup, cli, deliver, dig, fillVolume, message, person, startInstallation, tempDir, type Installation } from "./support.ts";

const PASSPHRASE = "correct horse battery staple";
const ADDRESS = "creator@stage.nexus.test";

function manifestOf(dir: string): ReturnType<typeof ExitManifestSchema.parse> {
  const env = parseDsse(readFileSync(join(dir, "manifest.json"), "utf8"));
  return ExitManifestSchema.parse(JSON.parse(Buffer.from(fromBase64(env.payload) ?? new Uint8Array()).toString("utf8")));
}

describe("imvu exit and verify-export", () => {
  let inst: Installation;
  let creator: Record<string, string>;
  let mallory: Record<string, string>;
  let out: string;
  let otherOut: string;
  let passFile: string;
  let password: string;

  before(async () => {
    inst = await startInstallation("nexus-exit-");
    creator = person(inst.stack.apiUrl, "creator");
    mallory = person(inst.stack.apiUrl, "mallory");
    const must = async (args: string[], env: Record<string, string>, input = ""): Promise<string> => {
      const r = await cli(args, env, input);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    await must(["imvu", "create", "--name", "stage", "--jurisdiction", "DE", "--bare"], creator);
    await must(["dns", "set", "--imvu", "stage", "www", "A", "192.0.2.10"], creator);
    await must(["dns", "set", "--imvu", "stage", "@", "TXT", "hello from stage"], creator);
    password = /^password: (\S+)$/m.exec(await must(["mail", "add", "--imvu", "stage", ADDRESS], creator))?.[1] ?? "";
    assert.equal(password.length, 24);
    deliver(inst.home, "stage", ADDRESS, [1, 2, 3].map((n) => message(n, ADDRESS)));
    // 40 MiB of noise: more than the CLI keeps in flight, so its write-behind path must hold back.
    fillVolume(inst.home, "stage", { "index.html": "<h1>stage</h1>\n", "db/notes.txt": "volume data\n", "blob/noise.bin": randomBytes(40 << 20) });
    for (const [id, amount] of [["evt_1", "1001"], ["evt_2", "250"]] as const) {
      const r = await inst.stack.platform.submitAsService("revenue-source", {
        type: "revenue.record",
        imvu: "stage",
        body: { eventId: id, amount, currency: "EUR", class: "imvu", source: "checkout" },
      });
      assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    }
    await must(["imvu", "create", "--name", "other", "--bare"], mallory);
    await must(["dns", "set", "--imvu", "other", "www", "A", "192.0.2.99"], mallory);
    // An admin suspends "other": its exit must still go through (gate 13).
    const p = inst.stack.platform;
    const admin = createIdentity(join(tempDir("nexus-admin-"), "keyring"), { name: "admin", makeDefault: true });
    const asAdmin = (draft: CommandDraft) => p.pipeline.submit(signCommand(draft, signerOf(admin)).json);
    assert.equal((await asAdmin({ type: "identity.inception", body: { inception: admin.kel[0] } })).outcome, "applied");
    assert.equal((await p.submitAsPlatform({ type: "admin.add", body: { identity: admin.id } })).outcome, "applied");
    const s = await asAdmin({ type: "imvu.suspend", imvu: "other", body: { reason: "abuse report 42 under review", emergency: true } });
    assert.equal(s.outcome, "applied", JSON.stringify(s.gates));
    passFile = join(tempDir("nexus-pass-"), "pass");
    writeFileSync(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    out = join(tempDir("nexus-out-"), "bundle");
    otherOut = join(tempDir("nexus-out-other-"), "bundle");
  });

  after(async () => {
    await inst?.stack.stop();
    cleanup();
  });

  test("exit writes a bundle the CLI verified and countersigned; verify-export accepts it offline", async () => {
    const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", out, "--passphrase-file", passFile], creator);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /exit request of stage: applied/);
    assert.match(r.stdout, /the exit bundle of stage verifies/);
    const env = parseDsse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(env.payloadType, EXIT_MANIFEST_PAYLOAD_TYPE);
    assert.equal(env.signatures.length, 2, "platform signature and owner countersignature");
    const m = manifestOf(out);
    assert.equal(m.imvu, "stage");
    assert.equal(m.jurisdiction, "DE");
    assert.equal(m.inventory.mailboxes[0]?.messages, 3);
    assert.deepEqual(m.inventory.zones.map((z) => z.origin), ["stage.nexus.test."]);
    assert.ok(m.inventory.volume, "the volume is exported");
    assert.ok(m.inventory.consistency.length >= 1, "a consistency proof from the checkpoint the CLI saw");
    assert.ok(m.inventory.ledgerEntries.includes(m.exitRequestedIndex));
    // The CLI verified digests of the stream as it arrived; hash what landed on disk independently.
    for (const f of m.files) {
      const bytes = readFileSync(join(out, f.path));
      assert.equal(bytes.length, f.bytes, `${f.path}: size on disk`);
      assert.equal(createHash("sha256").update(bytes).digest("hex"), f.sha256, `${f.path}: content on disk`);
    }
    assert.ok((m.files.find((f) => f.path === PATHS.volume)?.bytes ?? 0) > 40 << 20, "the volume archive carries the noise");
    for (const [kind, part] of Object.entries(RESOURCE_PARTS)) {
      assert.ok(m.files.some((f) => (part.endsWith("/") ? f.path.startsWith(part) : f.path === part)), `${kind}: ${part} is in the bundle`);
    }
    assert.deepEqual(Object.keys(RESOURCE_PARTS).sort(), [...EXPORTABLE_RESOURCES].sort(), "every kind gate 13 lets a command create has its place in the bundle");
    const v = await cli(["imvu", "verify-export", out, "--verifier-key", inst.stack.platform.verifierKey], {});
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.equal(inst.stack.platform.state.get("imvu", "other")?.status, "suspended");
    const o = await cli(["imvu", "exit", "--imvu", "other", "--out", otherOut, "--passphrase-file", passFile], mallory);
    assert.equal(o.code, 0, `a suspended IMVU exits too: ${o.stderr}${o.stdout}`);
  });

  test("independent tools read the bundle: named-checkzone, age, revenue verify-statement, tar", async () => {
    const zone = join(out, zonePath("stage.nexus.test."));
    const nz = spawnSync("named-checkzone", ["stage.nexus.test", zone], { encoding: "utf8" });
    assert.equal(nz.status, 0, nz.stdout + nz.stderr);
    assert.match(readFileSync(zone, "utf8"), /^www\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
    // age reads a passphrase from the terminal only: decrypt through a pseudo-terminal (script(1)).
    const outFile = join(tempDir("nexus-age-"), "secrets.json");
    const sc = spawnSync("script", ["-qec", `age --decrypt -o ${outFile} ${join(out, PATHS.secrets)}`, "/dev/null"], { encoding: "utf8", input: `${PASSPHRASE}\n`, timeout: 60_000 });
    assert.equal(sc.status, 0, sc.stdout + sc.stderr);
    const secrets = JSON.parse(readFileSync(outFile, "utf8")) as { passwords: Record<string, string>; dkim: Record<string, { privateKeyPem: string }[]> };
    assert.match(secrets.passwords[ADDRESS] ?? "", /^\$scrypt\$/, "the mailbox verifier");
    assert.match(secrets.dkim["stage.nexus.test"]?.[0]?.privateKeyPem ?? "", /BEGIN PRIVATE KEY/, "the DKIM private key");
    assert.deepEqual(manifestOf(out).inventory.secrets.contents.filter((c) => c.startsWith("verifier:")), [`verifier:${ADDRESS}`]);
    const st = manifestOf(out).inventory.statements;
    assert.ok(st.length >= 1);
    const withEntries = st.find((s) => s.entries === 2);
    assert.ok(withEntries, "this month's statement holds both revenue entries");
    const vs = await cli(["revenue", "verify-statement", join(out, withEntries.file), "--verifier-key", inst.stack.platform.verifierKey], {});
    assert.equal(vs.code, 0, vs.stdout + vs.stderr);
    const mbox = readFileSync(join(out, "mail", ADDRESS, "mbox", "INBOX.mbox"), "latin1");
    assert.equal(mbox.match(/^From MAILER-DAEMON /gm)?.length, 3);
    assert.equal(mbox.match(/^>From the start/gm)?.length, 3, "mboxrd quoting");
    assert.equal(readdirSync(join(out, "mail", ADDRESS, "Maildir", "new")).length, 3);
    const tar = spawnSync("tar", ["-tf", join(out, PATHS.volume)], { encoding: "utf8" });
    assert.equal(tar.status, 0, tar.stderr);
    assert.match(tar.stdout, /db\/notes\.txt/);
  });

  test("hostile: every deletion, altered byte, swapped file or stripped signature is caught and named", () => {
    const vkey = inst.stack.platform.verifierKey;
    const mailFile = (dir: string): string => {
      const d = join(dir, "mail", ADDRESS, "Maildir", "new");
      return join(d, readdirSync(d).sort()[0] ?? "");
    };
    const flip = (p: string, at: (b: Buffer) => number): void => {
      const b = readFileSync(p);
      const i = at(b);
      b[i] = (b[i] ?? 0) ^ 0x01;
      writeFileSync(p, b);
    };
    const cases: { name: string; mutate: (dir: string) => void; want: RegExp }[] = [
      { name: "delete a mail", mutate: (d) => rmSync(mailFile(d)), want: /Maildir\/new\/.*: missing/ },
      { name: "alter a byte of a mail", mutate: (d) => flip(mailFile(d), (b) => b.length - 5), want: /Maildir\/new\/.*: altered/ },
      {
        name: "swap a mail for a symlink to an identical copy outside the bundle",
        mutate: (d) => {
          const copy = join(tempDir("nexus-outside-"), "mail");
          cpSync(mailFile(d), copy);
          const target = mailFile(d);
          rmSync(target);
          symlinkSync(copy, target);
        },
        want: /Maildir\/new\/.*: not a regular file/,
      },
      { name: "alter a zone", mutate: (d) => writeFileSync(join(d, zonePath("stage.nexus.test.")), readFileSync(join(d, zonePath("stage.nexus.test.")), "utf8").replace("192.0.2.10", "203.0.113.66")), want: /dns\/stage\.nexus\.test\.zone: altered/ },
      {
        name: "alter a ledger entry",
        mutate: (d) => {
          const f = JSON.parse(readFileSync(join(d, PATHS.entries), "utf8")) as { entries: { entry: string }[] };
          const e = f.entries[1];
          if (e) e.entry = toBase64(Buffer.from(Buffer.from(e.entry, "base64").toString("utf8").replace('"applied"', '"denied"')));
          writeFileSync(join(d, PATHS.entries), JSON.stringify(f));
        },
        want: /ledger entry \d+: the entry bytes do not hash to its leaf hash/,
      },
      {
        name: "alter a proof",
        mutate: (d) => {
          const f = JSON.parse(readFileSync(join(d, PATHS.entries), "utf8")) as { entries: { inclusionProof: string[] }[] };
          const p = f.entries[2]?.inclusionProof;
          if (p?.[0]) p[0] = `${p[0].slice(0, 63)}${p[0].endsWith("0") ? "1" : "0"}`;
          writeFileSync(join(d, PATHS.entries), JSON.stringify(f));
        },
        want: /ledger entry \d+: inclusion proof does not lead to the signed checkpoint/,
      },
      {
        name: "alter the manifest (jurisdiction), keeping the signatures",
        mutate: (d) => {
          const env = parseDsse(readFileSync(join(d, "manifest.json"), "utf8"));
          const payload = Buffer.from(env.payload, "base64").toString("utf8").replace('"jurisdiction":"DE"', '"jurisdiction":"US"');
          writeFileSync(join(d, "manifest.json"), JSON.stringify({ ...env, payload: Buffer.from(payload).toString("base64") }));
        },
        want: /manifest\.json: the platform's signature does not verify/,
      },
      {
        name: "strip the owner's countersignature",
        mutate: (d) => {
          const env = parseDsse(readFileSync(join(d, "manifest.json"), "utf8"));
          writeFileSync(join(d, "manifest.json"), JSON.stringify({ ...env, signatures: env.signatures.slice(0, 1) }));
        },
        want: /owner's countersignature is missing/,
      },
      { name: "swap in another IMVU's zone", mutate: (d) => cpSync(join(otherOut, zonePath("other.nexus.test.")), join(d, zonePath("stage.nexus.test."))), want: /dns\/stage\.nexus\.test\.zone: altered/ },
      { name: "swap in another IMVU's ledger entries", mutate: (d) => cpSync(join(otherOut, PATHS.entries), join(d, PATHS.entries)), want: /ledger\/entries\.json: altered/ },
      { name: "add a file", mutate: (d) => writeFileSync(join(d, "dns", "evil.zone"), "x"), want: /dns\/evil\.zone: not in the manifest/ },
      { name: "delete the checkpoint", mutate: (d) => rmSync(join(d, PATHS.checkpoint)), want: /ledger\/checkpoint\.txt: missing/ },
      { name: "alter a volume byte", mutate: (d) => flip(join(d, PATHS.volume), () => 600), want: /compute\/volume\.tar: altered/ },
    ];
    for (const c of cases) {
      const copy = join(tempDir("nexus-hostile-"), "b");
      cpSync(out, copy, { recursive: true });
      c.mutate(copy);
      const r = verifyBundle(copy, { verifierKey: vkey });
      assert.equal(r.ok, false, `${c.name}: not caught`);
      assert.ok(r.problems.some((p) => c.want.test(p)), `${c.name}: problems do not name it: ${r.problems.join(" | ")}`);
    }
    const clean = verifyBundle(out, { verifierKey: vkey });
    assert.deepEqual(clean.problems, []);
    const otherPlatform = "nexus.local/ledger+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const forged = verifyBundle(out, { verifierKey: otherPlatform });
    assert.ok(forged.problems.some((p) => /checkpoint\.txt: the signed checkpoint does not verify/.test(p)), forged.problems.join(" | "));
  });

  test("verify-export exits 1 listing what is altered", async () => {
    const copy = join(tempDir("nexus-hostile-cli-"), "b");
    cpSync(out, copy, { recursive: true });
    rmSync(join(copy, PATHS.mailboxes));
    const r = await cli(["imvu", "verify-export", copy], {});
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /does NOT verify/);
    assert.match(r.stdout, /mail\/mailboxes\.json: missing/);
  });

  test("nobody but the owner downloads a bundle: another identity gets the same 404 as for no IMVU", async () => {
    const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", join(tempDir("nexus-steal-"), "b"), "--passphrase-file", passFile], mallory);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /GATE_DENIED|NOT_FOUND/);
  });

  test("a download cut short is refused, countersigns nothing and leaves --out empty for the retry", async () => {
    // A proxy that passes everything through but cuts the bundle's answer after its first 4 KiB.
    const target = new URL(inst.stack.apiUrl);
    const proxy = createServer((req, res) => {
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (!req.url?.endsWith("/exit/bundle")) return void ur.pipe(res);
        let sent = 0;
        ur.on("data", (c: Buffer) => {
          if (sent >= 4096) return;
          const part = c.subarray(0, 4096 - sent);
          sent += c.length;
          // Headers and the first bytes reach the CLI; then the connection drops.
          res.write(part, () => sent >= 4096 && setTimeout(() => res.socket?.destroy(), 50));
        });
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    try {
      const via = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const cut = join(tempDir("nexus-out-cut-"), "bundle");
      const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", cut, "--passphrase-file", passFile], { ...creator, NEXUS_API: via });
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /CLIENT_BAD_RESPONSE|EXIT_BUNDLE_INVALID/);
      assert.match(r.stderr, /cut short|truncated/);
      assert.deepEqual(readdirSync(cut), [], "nothing half-unpacked remains");
      const again = await cli(["imvu", "exit", "--imvu", "stage", "--out", cut, "--passphrase-file", passFile], creator);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.deepEqual(verifyBundle(cut, { verifierKey: inst.stack.platform.verifierKey }).problems, []);
    } finally {
      proxy.close();
    }
  });

  test("the bundle route answers the owner only: another identity gets the same 404 as for no IMVU; unsigned 401", async () => {
    const intruder = loadIdentity(mallory.NEXUS_KEYRING ?? "");
    const post = async (name: string, signed: boolean): Promise<{ status: number; code: string | undefined }> => {
      const url = `${inst.stack.apiUrl}/v1/imvus/${name}/exit/bundle`;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (signed) {
        const sig = signRequest({ method: "POST", url, headers }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: intruder.id, alg: "ed25519" }, privateKey: intruder.current.privateKey });
        headers["signature-input"] = sig.signatureInput;
        headers.signature = sig.signature;
      }
      const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ passphrase: PASSPHRASE, ownerKel: intruder.kel }) });
      const body = (await res.json()) as { error?: { code?: string } };
      return { status: res.status, code: body.error?.code };
    };
    assert.deepEqual(await post("stage", true), { status: 404, code: "NOT_FOUND" });
    assert.deepEqual(await post("nosuch", true), { status: 404, code: "NOT_FOUND" });
    assert.deepEqual(await post("stage", false), { status: 401, code: "API_UNAUTHENTICATED" });
  });

  test("a client that walks away mid-bundle costs the server nothing: no open file left, the next download whole", async () => {
    const owner = loadIdentity(creator.NEXUS_KEYRING ?? "");
    const url = `${inst.stack.apiUrl}/v1/imvus/stage/exit/bundle`;
    const openFds = (): number => readdirSync("/proc/self/fd").length;
    const walkAway = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = { "content-type": "application/json" };
        const sig = signRequest({ method: "POST", url, headers }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: owner.id, alg: "ed25519" }, privateKey: owner.current.privateKey });
        const req = httpRequest(url, { method: "POST", headers: { ...headers, "signature-input": sig.signatureInput, signature: sig.signature } }, (res) => {
          let got = 0;
          res.on("data", (c: Buffer) => {
            got += c.length;
            if (got > 1 << 20) {
              res.destroy();
              resolve(res.statusCode ?? 0);
            }
          });
        });
        req.on("error", reject);
        req.end(JSON.stringify({ passphrase: PASSPHRASE, ownerKel: owner.kel }));
      });
    const before = openFds();
    for (let i = 0; i < 3; i++) assert.equal(await walkAway(), 200);
    // The server notices the closed socket at its next write: wait for its files to be closed.
    for (let i = 0; i < 100 && openFds() > before + 2; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(openFds() <= before + 2, `open files: ${before} before, ${openFds()} after three abandoned downloads`);
    const whole = join(tempDir("nexus-out-after-"), "bundle");
    const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", whole, "--passphrase-file", passFile], creator);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test("import on another installation: same dig answers, same mail over IMAP with the same password, the origin's checkpoint recorded", async () => {
    const second = await startInstallation("nexus-import-");
    try {
      const env = { ...creator, NEXUS_API: second.stack.apiUrl };
      const bad = join(tempDir("nexus-import-bad-"), "b");
      cpSync(out, bad, { recursive: true });
      rmSync(join(bad, zonePath("stage.nexus.test.")));
      const refused = await cli(["imvu", "import", bad, "--passphrase-file", passFile], env);
      assert.equal(refused.code, 1, refused.stdout + refused.stderr);
      assert.match(refused.stderr, /EXIT_BUNDLE_INVALID/);
      assert.equal(second.stack.platform.state.get("imvu", "stage"), undefined, "nothing is created from a bundle that does not verify");
      const r = await cli(["imvu", "import", out, "--verifier-key", inst.stack.platform.verifierKey, "--passphrase-file", passFile], env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, new RegExp(`imported stage as stage: \\d+ RRsets, ${ADDRESS.replace(/\./g, "\\.")} \\(3 messages\\)`));
      const rec = second.stack.platform.state.get("imvu", "stage");
      assert.equal(rec?.owner, manifestOf(out).owner);
      assert.equal(rec?.importedFrom?.verifierKey, inst.stack.platform.verifierKey);
      assert.equal(rec?.importedFrom?.treeSize, manifestOf(out).checkpoint.size);
      for (const [name, type] of [["www.stage.nexus.test", "A"], ["stage.nexus.test", "TXT"], ["_dmarc.stage.nexus.test", "TXT"]] as const) {
        const before = await dig(inst.dnsPort, name, type);
        assert.notEqual(before, "", `${name} ${type} answered at the origin`);
        assert.equal(await dig(second.dnsPort, name, type), before, `same answer for ${name} ${type}`);
      }
      const LIST = String.raw`
import imaplib, json, os, ssl
def fetch(port):
    c = imaplib.IMAP4("127.0.0.1", int(port))
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    c.starttls(ssl_context=ctx)
    c.login(os.environ["USER_"], os.environ["PW"])
    c.select("INBOX")
    typ, data = c.search(None, "ALL")
    out = []
    for n in data[0].split():
        typ, msg = c.fetch(n, "(BODY.PEEK[])")
        out.append(msg[0][1].decode("latin1"))
    c.logout()
    return sorted(out)
print(json.dumps([fetch(os.environ["A"]), fetch(os.environ["B"])]))
`;
      const [origin, imported] = (await runPython(LIST, { A: String(inst.imapPort), B: String(second.imapPort), USER_: ADDRESS, PW: password })) as [string[], string[]];
      assert.equal(origin.length, 3);
      assert.deepEqual(imported, origin, "the same three messages, byte for byte, over IMAP");
      const feed = second.stack.platform.state.list("feed", "stage/").map(([, f]) => f.type);
      assert.ok(feed.includes("imvu.import"), "the new ledger records the import");

      // An import that fails part-way (here: the Maildir upload) completes when run again.
      const target = new URL(second.stack.apiUrl);
      const proxy = createServer((req, res) => {
        if (req.url?.includes("/import/maildir")) {
          req.resume();
          res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"code":"UNAVAILABLE","message":"test proxy"}}');
          return;
        }
        const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        req.pipe(up);
      });
      await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
      try {
        const via = { ...env, NEXUS_API: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
        const broken = await cli(["imvu", "import", out, "--name", "again", "--verifier-key", inst.stack.platform.verifierKey, "--passphrase-file", passFile], via);
        assert.notEqual(broken.code, 0, broken.stdout + broken.stderr);
        assert.match(broken.stderr, /Maildir of .*HTTP 503/);
      } finally {
        proxy.close();
      }
      assert.ok(second.stack.platform.state.get("imvu", "again")?.importedFrom, "the first run got as far as the import record");
      for (const run of [1, 2]) {
        if (run === 2) {
          // A reader took a message from new/ to cur/ with its flags in between: still the same message.
          const md = maildirPath(maildirRoot(second.home), "again", ADDRESS.replace("@stage.", "@again."));
          const first = readdirSync(join(md, "new")).sort()[0] ?? "";
          renameSync(join(md, "new", first), join(md, "cur", `${first}:2,S`));
        }
        const again = await cli(["imvu", "import", out, "--name", "again", "--verifier-key", inst.stack.platform.verifierKey, "--passphrase-file", passFile], env);
        assert.equal(again.code, 0, `run ${run}: ${again.stdout}${again.stderr}`);
        assert.match(again.stdout, /imvu again and the record of its import: done by an earlier run/);
        assert.match(again.stdout, /mailbox \S+: done by an earlier run/);
        assert.match(again.stdout, /imported stage as again: \d+ RRsets, \S+ \(3 messages\)/, "every message there, stored by this run or the one before");
      }
      const agained = maildirPath(maildirRoot(second.home), "again", ADDRESS.replace("@stage.", "@again."));
      assert.equal(readdirSync(join(agained, "new")).length + readdirSync(join(agained, "cur")).length, 3, "no message stored twice");
      assert.equal(await dig(second.dnsPort, "www.again.nexus.test", "A"), "192.0.2.10");
      assert.equal(second.stack.platform.state.list("imvu").filter(([, r]) => r.importedFrom?.originImvu === "stage").length, 2, "one IMVU per import name, none made twice");
      // An IMVU of one's own that no import made is never taken over.
      assert.equal((await cli(["imvu", "create", "--name", "mine", "--bare"], env)).code, 0);
      const takeover = await cli(["imvu", "import", out, "--name", "mine", "--verifier-key", inst.stack.platform.verifierKey, "--passphrase-file", passFile], env);
      assert.equal(takeover.code, 2, takeover.stdout + takeover.stderr);
      assert.match(takeover.stderr, /INPUT_INVALID.*already have an IMVU mine that was not imported/);
      assert.equal(second.stack.platform.state.get("imvu", "mine")?.importedFrom, undefined);
    } finally {
      await second.stack.stop();
    }
  });

  test("after exit the platform keeps serving until the owner departs; then DNS stops answering for it", async () => {
    // Asynchronous: the DNS server answers from this process's event loop.
    const dig = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = spawn("dig", ["+short", "+time=2", "+tries=1", "-p", String(inst.dnsPort), "@127.0.0.1", "www.stage.nexus.test", "A"]);
        let text = "";
        c.stdout.on("data", (d: Buffer) => (text += d.toString()));
        c.on("error", reject);
        c.on("close", () => resolve(text.trim()));
      });
    assert.equal(await dig(), "192.0.2.10", "served after the exit request");
    const d = await cli(["imvu", "depart", "stage"], creator);
    assert.equal(d.code, 0, d.stderr);
    let answer = await dig();
    for (let i = 0; i < 20 && answer !== ""; i++) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await dig();
    }
    assert.equal(answer, "", "no answer for a departed IMVU");
    const again = verifyBundle(out, { verifierKey: inst.stack.platform.verifierKey });
    assert.deepEqual(again.problems, [], "the bundle stays valid offline after departure");
  });
});
