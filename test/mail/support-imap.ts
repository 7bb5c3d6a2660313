/**
 * Fixtures for the IMAP tests: two IMVUs with one mailbox each in a StaticMailDirectory (the
 * same directory and Maildir layout the SMTP side delivers into), delivery through the SMTP
 * side's MaildirWriter, the server under test, a raw socket client for hostile input, Python's
 * imaplib, and a private Dovecot serving a copy of a Maildir.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StaticMailDirectory, type MailboxInfo } from "../../src/services/mail/directory.ts";
import { MaildirWriter, maildirContent } from "../../src/services/mail/maildir-deliver.ts";
import { directoryAuthenticator, startImapServer, type ImapServer, type ImapServerOptions } from "../../src/services/mail/imap/index.ts";
import { freePort } from "../../src/cli/dev/system.ts";

/** Passwords of the fixture mailboxes. */
export const ALICE_PASSWORD = "alice-secret-1";
export const BOB_PASSWORD = "bob-secret-2";

/** Two IMVUs ("alpha" with alice@a.example, "beta" with bob@b.example) under a temp data dir. */
export interface MailFixture {
  readonly dataDir: string;
  readonly directory: StaticMailDirectory;
  readonly alice: MailboxInfo;
  readonly bob: MailboxInfo;
  readonly writer: MaildirWriter;
  cleanup(): void;
}

/** Creates the two-IMVU fixture. */
export async function mailFixture(): Promise<MailFixture> {
  const dataDir = mkdtempSync(join(tmpdir(), "nexus-imap-"));
  const directory = new StaticMailDirectory(dataDir);
  directory.addDomain("alpha", "a.example");
  directory.addDomain("beta", "b.example");
  const alice = directory.addMailbox({ imvu: "alpha", identity: "id-alpha", address: "alice@a.example", quotaBytes: 50 * 1024 * 1024 });
  const bob = directory.addMailbox({ imvu: "beta", identity: "id-beta", address: "bob@b.example", quotaBytes: 50 * 1024 * 1024 });
  await directory.setPassword("alice@a.example", ALICE_PASSWORD);
  await directory.setPassword("bob@b.example", BOB_PASSWORD);
  return { dataDir, directory, alice, bob, writer: new MaildirWriter("mx.test"), cleanup: () => rmSync(dataDir, { recursive: true, force: true }) };
}

/** A plain message (CRLF line ends, as received over SMTP). */
export function plainMessage(i: number, extra = ""): Buffer {
  return Buffer.from(
    `From: Alice Example <alice@a.example>\r\nTo: bob@b.example, "Carol X" <carol@c.example>\r\n` +
      `Subject: message ${i}${extra}\r\nDate: Mon, 1 Jan 2024 10:00:${String(i % 60).padStart(2, "0")} +0100\r\n` +
      `Message-ID: <m${i}@a.example>\r\n\r\nHello number ${i}.\r\nSecond line.\r\n`,
  );
}

/** A multipart message: text, HTML alternative, an attachment and an embedded message. */
export function multipartMessage(i: number): Buffer {
  return Buffer.from(
    [
      `From: "Bob B." <bob@b.example>`,
      `To: undisclosed-recipients:;`,
      `Cc: Team: dave@d.example, =?UTF-8?B?w4lsaXNl?= <elise@e.example>;`,
      `Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_${i}?=`,
      `Date: Tue, 2 Jan 2024 08:30:00 -0500`,
      `Message-ID: <mp${i}@b.example>`,
      `In-Reply-To: <m${i}@a.example>`,
      `MIME-Version: 1.0`,
      `Content-Type: multipart/mixed; boundary="outer-${i}"`,
      ``,
      `This is a preamble.`,
      `--outer-${i}`,
      `Content-Type: multipart/alternative; boundary=inner-${i}`,
      ``,
      `--inner-${i}`,
      `Content-Type: text/plain; charset=utf-8`,
      `Content-Transfer-Encoding: quoted-printable`,
      ``,
      `Caf=C3=A9 au lait, needle${i}.`,
      `Second line.`,
      `--inner-${i}`,
      `Content-Type: text/html; charset="utf-8"`,
      ``,
      `<p>Caf\u00e9</p>`,
      `--inner-${i}--`,
      `--outer-${i}`,
      `Content-Type: application/octet-stream; name="data.bin"`,
      `Content-Disposition: attachment; filename="data.bin"`,
      `Content-Transfer-Encoding: base64`,
      `Content-ID: <att${i}@b.example>`,
      `Content-Description: some bytes`,
      ``,
      `AAECAwQFBgcICQ==`,
      `--outer-${i}`,
      `Content-Type: message/rfc822`,
      ``,
      `From: inner@x.example`,
      `Subject: inner ${i}`,
      `Date: Wed, 3 Jan 2024 12:00:00 +0000`,
      ``,
      `Inner body.`,
      `--outer-${i}--`,
      `Epilogue.`,
      ``,
    ].join("\r\n"),
    "utf8",
  );
}

/** Delivers messages into a mailbox the way the SMTP side does (tmp → new, LF line ends, S= and W=). */
export async function deliver(fx: MailFixture, mailbox: MailboxInfo, messages: readonly Buffer[]): Promise<void> {
  for (const m of messages) await fx.writer.deliver([mailbox.maildirPath], maildirContent([m]));
}

/** Starts the server under test on a free loopback port with test-friendly bounds. */
export async function startTestImap(fx: MailFixture, overrides: Partial<ImapServerOptions> = {}): Promise<ImapServer> {
  return startImapServer({
    host: "127.0.0.1",
    port: 0,
    auth: directoryAuthenticator(fx.directory),
    ...overrides,
    limits: { authFailureDelayMs: 10, idlePollMs: 200, ...overrides.limits },
  });
}

/** A raw line-oriented client for hostile input. */
export class RawClient {
  readonly socket: Socket;
  #buf = "";
  #closed = false;
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Connects to 127.0.0.1:port. */
  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  /** True once the server closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received so far. */
  get received(): string {
    return this.#buf;
  }

  send(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Waits until `pred(received)` holds, the connection closes, or `timeoutMs` passes. */
  async waitFor(pred: (s: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.#buf)) {
      if (this.#closed) break;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received so far: ${JSON.stringify(this.#buf.slice(-500))}`);
      await Promise.race([new Promise<void>((r) => this.#waiters.push(r)), sleep(left)]);
    }
    return this.#buf;
  }

  /** Sends a command and waits for its tagged reply; returns that line. */
  async command(tag: string, text: string): Promise<string> {
    const start = this.#buf.length;
    this.send(`${tag} ${text}\r\n`);
    const re = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`);
    await this.waitFor((s) => re.test(s.slice(start)));
    return re.exec(this.#buf.slice(start))?.[0]?.trim() ?? "";
  }

  /** Waits for the server to close the connection. */
  waitClosed(timeoutMs = 10_000): Promise<string> {
    return this.waitFor(() => this.#closed, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Runs a Python 3 script with imaplib; its stdout is parsed as JSON. */
export function runPython(script: string, env: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn("python3", ["-c", script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`python exited ${code}: ${err}`));
      else {
        try {
          resolve(JSON.parse(out));
        } catch {
          reject(new Error(`python printed no JSON: ${out} ${err}`));
        }
      }
    });
  });
}

/** True when Dovecot's binary is installed (dovecot-imapd, in TEST_PACKAGES). */
export function hasDovecot(): boolean {
  return spawnSync("dovecot", ["--version"], { stdio: "ignore" }).status === 0;
}

/** A private Dovecot serving one Maildir with any password "dovecot-pw" on a loopback port. */
export interface TempDovecot {
  readonly port: number;
  readonly maildir: string;
  stop(): Promise<void>;
}

function mailUser(): { uid: number; gid: number } {
  const id = (flag: string): number => Number(spawnSync("id", [flag, "dovecot"], { encoding: "utf8" }).stdout.trim());
  if (process.getuid?.() === 0) return { uid: id("-u"), gid: id("-g") };
  return { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000 };
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (!statSync(path).isDirectory()) return;
  for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
}

/** Copies `maildir` into a temp dir and starts Dovecot on it (foreground, private config). */
export async function startDovecot(maildir: string): Promise<TempDovecot> {
  const base = mkdtempSync(join(tmpdir(), "nexus-dovecot-"));
  // Dovecot's mail processes run as the mail user, which must be able to enter the directory.
  chmodSync(base, 0o755);
  const copy = join(base, "Maildir");
  cpSync(maildir, copy, { recursive: true, preserveTimestamps: true });
  for (const d of ["run", "state", "home"]) mkdirSync(join(base, d));
  const { uid, gid } = mailUser();
  const port = await freePort();
  const conf = [
    `base_dir = ${base}/run`,
    `state_dir = ${base}/state`,
    `log_path = ${base}/dovecot.log`,
    `protocols = imap`,
    `listen = 127.0.0.1`,
    `ssl = no`,
    `disable_plaintext_auth = no`,
    `auth_mechanisms = plain login`,
    `first_valid_uid = 1`,
    `passdb {\n  driver = static\n  args = password=dovecot-pw\n}`,
    `userdb {\n  driver = static\n  args = uid=${uid} gid=${gid} home=${base}/home\n}`,
    `mail_location = maildir:${copy}`,
    `namespace inbox {\n  inbox = yes\n  separator = .\n}`,
    `service imap-login {\n  chroot =\n  inet_listener imap {\n    address = 127.0.0.1\n    port = ${port}\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}`,
    `service anvil {\n  chroot =\n}`,
    "",
  ].join("\n");
  writeFileSync(join(base, "dovecot.conf"), conf);
  chownTree(copy, uid, gid);
  chownTree(join(base, "home"), uid, gid);
  const child: ChildProcess = spawn("dovecot", ["-F", "-c", join(base, "dovecot.conf")], { stdio: "ignore" });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, "127.0.0.1", () => {
        s.destroy();
        r(true);
      });
      s.on("error", () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`dovecot did not start (see ${base}/dovecot.log)`);
    await sleep(50);
  }
  return {
    port,
    maildir: copy,
    async stop() {
      const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
      // Dovecot's children exit with the master; give them a moment before removing their files.
      await sleep(100);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
