/**
 * `nexus mail add|list|passwd|delete` as real child processes against a platform with the mail
 * service and the mail API module mounted: the generated password is printed once and works over
 * IMAP, --password-stdin replaces it, an intruder's add is denied (exit 1, GATE_DENIED), and delete
 * ends with the mailbox gone after its snapshot.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { commandRoutes } from "../../src/api/routes/commands.ts";
import { imvuRoutes } from "../../src/api/routes/imvus.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { Platform } from "../../src/platform/platform.ts";
import type { RunningService } from "../../src/platform/service.ts";
import { createMailService } from "../../src/platform/services/mail.ts";
import { mailRoutes } from "../../src/platform/services/mail-api.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { runPython } from "./support-imap.ts";
import { TestDns, waitFor } from "./support-smtp.ts";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

function cli(args: readonly string[], env: Record<string, string>, input = ""): Promise<Run> {
  return new Promise((resolve, reject) => {
    const full: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete full.NEXUS_DATABASE_URL;
    const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "src/cli/main.ts"), ...args], { env: full, cwd: tmpdir() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

const LOGIN = String.raw`
import imaplib, json, os, ssl
c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c.starttls(ssl_context=ctx)
try:
    print(json.dumps(c.login(os.environ["USER_"], os.environ["PW"])[0]))
except imaplib.IMAP4.error:
    print(json.dumps("NO"))
`;

describe("nexus mail (CLI)", () => {
  let platform: Platform;
  let svc: RunningService;
  let api: FastifyInstance;
  let imapPort: number;
  let creator: Record<string, string>;
  let mallory: Record<string, string>;
  const login = (user: string, pw: string): Promise<unknown> => runPython(LOGIN, { PORT: String(imapPort), USER_: user, PW: pw });

  before(async () => {
    platform = await Platform.open({ home: join(tempDir("nexus-mailcli-"), "home") });
    const ports = { smtp: await freePort(), submission: await freePort(), imap: await freePort() };
    imapPort = ports.imap;
    svc = await createMailService({ resolver: new TestDns().resolver(), hostname: "mail.nexus.test" }).start({
      platform, config: { host: "127.0.0.1", public: false, ports: { api: 0, dns: 0, resolver: 0, gateway: 0, gatewayTls: 0, ...ports } }, log: () => undefined,
    });
    const { pipeline, ledger, verifierKey } = platform;
    api = await buildApi({ ledger, modules: [commandRoutes({ pipeline }), imvuRoutes({ pipeline, ledger, verifierKey }), mailRoutes({ platform })] });
    await api.listen({ host: "127.0.0.1", port: 0 });
    const addr = api.server.address();
    const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
    const person = (name: string): Record<string, string> => {
      const d = tempDir(`nexus-${name}-`);
      return { NEXUS_API: url, NEXUS_KEYRING: join(d, "keyring"), NEXUS_TRUST_DIR: join(d, "trust") };
    };
    creator = person("creator");
    mallory = person("mallory");
  });

  after(async () => {
    await svc?.stop();
    await api?.close();
    await platform?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("mail add prints a generated password once; it works over IMAP; mail list shows the mailbox", async () => {
    const made = await cli(["imvu", "create", "--name", "stage", "--bare"], creator);
    assert.equal(made.code, 0, made.stderr);
    const r = await cli(["mail", "add", "--imvu", "stage", "Creator@stage.nexus.test"], creator);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /mailbox creator@stage\.nexus\.test: applied at ledger index \d+ \(tree size \d+; receipt verified\)/);
    const pw = /^password: (\S+)$/m.exec(r.stdout)?.[1] ?? "";
    assert.equal(pw.length, 24);
    assert.equal(await login("creator@stage.nexus.test", pw), "OK");
    const list = await cli(["mail", "list"], creator);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^creator@stage\.nexus\.test\tstage\tactive\tnx1/m);
  });

  test("mail passwd --password-stdin replaces the password; the old one stops working", async () => {
    const old = await login("creator@stage.nexus.test", "wrong-anyway");
    assert.equal(old, "NO");
    const r = await cli(["mail", "passwd", "--imvu", "stage", "creator@stage.nexus.test", "--password-stdin"], creator, "a chosen passphrase\n");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /password:/, "a password from stdin is not echoed");
    assert.equal(await login("creator@stage.nexus.test", "a chosen passphrase"), "OK");
  });

  test("an intruder's mail add on another's IMVU is denied (exit 1) and its mailbox list is empty", async () => {
    assert.equal((await cli(["id", "register"], mallory)).code, 0);
    const r = await cli(["mail", "add", "--imvu", "stage", "evil@stage.nexus.test"], mallory);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /GATE_DENIED/);
    assert.doesNotMatch(r.stdout, /password:/, "no password is shown for a denied mailbox");
    const list = await cli(["mail", "list", "--imvu", "stage"], mallory);
    assert.match(list.stderr, /NOT_FOUND/);
    assert.notEqual(list.code, 0, list.stderr);
    const bad = await cli(["mail", "add", "--imvu", "stage", "../escape@stage.nexus.test"], creator);
    assert.equal(bad.code, 2, bad.stderr);
  });

  test("mail delete: the mailbox goes after its snapshot is recorded", async () => {
    const r = await cli(["mail", "delete", "--imvu", "stage", "creator@stage.nexus.test"], creator);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => platform.state.get("mail-mailbox", "stage/creator@stage.nexus.test") === undefined, "the snapshot recorded", 10_000);
    assert.equal(platform.state.list("mail-snapshot", "stage/").length, 1);
    const list = await cli(["mail", "list"], creator);
    assert.match(list.stdout, /\(no mailboxes\)/);
  });
});
