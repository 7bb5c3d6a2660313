/**
 * Helpers of the SMTP tests: temp dirs, a fixture directory of two IMVUs, an in-memory DNS (and a
 * UDP DNS server over it for python3-dkim), real peers (swaks, dkimverify, a private Postfix),
 * and a raw SMTP client for hostile conversations.
 */
import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import * as dnsPacket from "dns-packet";
import { freePort } from "../../src/cli/dev/system.ts";
import {
  StaticMailDirectory,
  dkimDnsRecords,
  staticResolver,
  startMailSmtp,
  type DkimKey,
  type MailResolver,
  type MailSmtp,
  type MailSmtpOptions,
  type MxRecord,
} from "../../src/services/mail/smtp/index.ts";

/** A temp dir (mode 0755 so a private Postfix can enter it) removed by `cleanup`. */
export function tempDir(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), `nexus-${prefix}-`));
  chmodSync(path, 0o755);
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** DNS records of the tests, shared by the in-memory resolver and the UDP server. */
export class TestDns {
  readonly records = new Map<string, MxRecord[] | string[][] | string[]>();

  /** Adds TXT character-strings at `name`. */
  txt(name: string, strings: readonly string[]): void {
    const k = `TXT ${name.toLowerCase()}`;
    const prev = (this.records.get(k) as string[][] | undefined) ?? [];
    this.records.set(k, [...prev, [...strings]]);
  }

  a(name: string, ip: string): void {
    this.records.set(`A ${name.toLowerCase()}`, [ip]);
  }

  mx(name: string, exchange: string, priority = 10): void {
    this.records.set(`MX ${name.toLowerCase()}`, [{ exchange, priority }]);
  }

  /** Publishes a domain's DKIM, SPF and DMARC records. */
  publish(domain: string, keys: readonly DkimKey[], spfMechanisms: readonly string[] = ["ip4:127.0.0.1"]): void {
    for (const r of dkimDnsRecords(domain, keys, { spfMechanisms, dmarcPolicy: "reject" })) this.txt(r.name, r.strings);
  }

  /** A MailResolver over the records (reads them at each query). */
  resolver(): MailResolver {
    return {
      resolve: (name, type) => staticResolver(this.records).resolve(name, type),
    };
  }

  /** A UDP DNS server over the records on 127.0.0.1 (for python's dnspython). */
  async serveUdp(): Promise<{ port: number; close(): void }> {
    const sock = createSocket("udp4");
    sock.on("message", (msg, rinfo) => {
      let q: dnsPacket.DecodedPacket;
      try {
        q = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const question = q.questions?.[0];
      if (!question) return;
      const name = question.name.toLowerCase();
      const answers: dnsPacket.Answer[] = [];
      if (question.type === "TXT") {
        for (const strings of (this.records.get(`TXT ${name}`) as string[][] | undefined) ?? []) {
          answers.push({ type: "TXT", name: question.name, ttl: 60, class: "IN", data: strings });
        }
      } else if (question.type === "A") {
        for (const ip of (this.records.get(`A ${name}`) as string[] | undefined) ?? []) {
          answers.push({ type: "A", name: question.name, ttl: 60, class: "IN", data: ip });
        }
      }
      const exists = [...this.records.keys()].some((k) => k.slice(k.indexOf(" ") + 1) === name);
      const reply = dnsPacket.encode({
        type: "response",
        id: q.id ?? 0,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (exists ? 0 : 3),
        questions: [question],
        answers,
      });
      sock.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
    return { port: sock.address().port, close: () => sock.close() };
  }
}

/** The fixture: IMVU alpha (alpha.test: alice, carol) and IMVU beta (beta.test: bob), DKIM keys, DNS. */
export interface MailFixture {
  readonly dataDir: string;
  readonly directory: StaticMailDirectory;
  readonly dns: TestDns;
  readonly password: string;
  readonly alphaKeys: readonly DkimKey[];
  readonly betaKeys: readonly DkimKey[];
  cleanup(): void;
}

/** Password of every fixture mailbox. */
export const FIXTURE_PASSWORD = "correct horse battery staple";

/** Builds the fixture (keys are created afresh; about a second for the two RSA keys). */
export async function mailFixture(quota: { bytes?: number; messages?: number } = {}): Promise<MailFixture> {
  const tmp = tempDir("smtp");
  const directory = new StaticMailDirectory(tmp.path);
  directory.addDomain("alpha", "alpha.test");
  directory.addDomain("beta", "beta.test");
  const quotaBytes = quota.bytes ?? 50 * 1024 * 1024;
  const q = { quotaBytes, ...(quota.messages === undefined ? {} : { quotaMessages: quota.messages }) };
  directory.addMailbox({ imvu: "alpha", identity: "id-alice", address: "alice@alpha.test", ...q });
  directory.addMailbox({ imvu: "alpha", identity: "id-carol", address: "carol@alpha.test", ...q });
  directory.addMailbox({ imvu: "beta", identity: "id-bob", address: "bob@beta.test", ...q });
  for (const a of ["alice@alpha.test", "carol@alpha.test", "bob@beta.test"]) await directory.setPassword(a, FIXTURE_PASSWORD);
  const alphaKeys = directory.createDkimKeys("alpha.test");
  const betaKeys = directory.createDkimKeys("beta.test");
  const dns = new TestDns();
  dns.publish("alpha.test", alphaKeys);
  dns.publish("beta.test", betaKeys);
  return { dataDir: tmp.path, directory, dns, password: FIXTURE_PASSWORD, alphaKeys, betaKeys, cleanup: tmp.cleanup };
}

/** Starts the SMTP service over a fixture on free ports (no log output unless NEXUS_TEST_LOG is set). */
export async function startFixtureSmtp(f: MailFixture, extra: Partial<MailSmtpOptions> = {}): Promise<MailSmtp> {
  return startMailSmtp({
    hostname: "mx.nexus.test",
    inboundPort: 0,
    submissionPort: 0,
    directory: f.directory,
    dataDir: f.dataDir,
    resolver: f.dns.resolver(),
    log: (level, msg, fields) => {
      if (process.env.NEXUS_TEST_LOG) process.stderr.write(`${level} ${msg} ${JSON.stringify(fields ?? {})}\n`);
    },
    ...extra,
  });
}

/** The messages in a Maildir's new/ (name and content). */
export function maildirMessages(maildir: string): Array<{ name: string; text: string }> {
  const dir = join(maildir, "new");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, text: readFileSync(join(dir, name), "latin1") }));
}

/** Waits until `check` is true (polling), failing after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Result of a peer process. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program (killed after `timeoutMs`), feeding `input` on stdin. */
export function run(cmd: string, args: readonly string[], input?: string | Buffer, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** swaks against 127.0.0.1:port with the given extra arguments. */
export function swaks(port: number, args: readonly string[]): Promise<RunResult> {
  return run("swaks", ["--server", `127.0.0.1:${port}`, "--helo", "client.example", "--timeout", "20", ...args]);
}

/**
 * python3-dkim's own `dkimverify` (dkim.dkimverify.main) on `message`, for signature `index`, with
 * dnspython's default resolver pointed at 127.0.0.1:`dnsPort` (nothing else changed).
 */
export function dkimverify(message: Buffer, dnsPort: number, index: number): Promise<RunResult> {
  const py = [
    "import sys, dns.resolver",
    "r = dns.resolver.Resolver(configure=False)",
    "r.nameservers = ['127.0.0.1']",
    `r.port = ${dnsPort}`,
    "dns.resolver.default_resolver = r",
    `sys.argv = ['dkimverify', '--index', '${index}']`,
    "from dkim.dkimverify import main",
    "main()",
  ].join("\n");
  return run("/usr/bin/python3", ["-c", py], message);
}

/** A private Postfix on 127.0.0.1 delivering `domain` to Maildirs (virtual(8)) for `users`. */
export interface PostfixPeer {
  readonly port: number;
  readonly dir: string;
  maildir(user: string): string;
  start(): Promise<void>;
  stop(): void;
  cleanup(): void;
}

/** Creates (not starts) a Postfix instance with its own config, queue and mail dirs. */
export async function postfixPeer(domain: string, users: readonly string[], opts: { port?: number; tls?: { key: string; cert: string } } = {}): Promise<PostfixPeer> {
  if (!existsSync("/usr/sbin/postfix")) throw new Error("postfix is not installed: run ./nexus test as root (TEST_PACKAGES) or apt-get install postfix");
  const tmp = tempDir("postfix");
  const dir = tmp.path;
  const port = opts.port ?? (await freePort());
  const uid = spawnSync("id", ["-u", "postfix"], { encoding: "utf8" }).stdout.trim();
  const gid = spawnSync("id", ["-g", "postfix"], { encoding: "utf8" }).stdout.trim();
  for (const d of ["etc", "spool", "data", "vmail"]) mkdirSync(join(dir, d), { mode: 0o755 });
  spawnSync("chown", [`${uid}:${gid}`, join(dir, "data"), join(dir, "vmail")]);
  writeFileSync(join(dir, "etc", "vmailbox"), users.map((u) => `${u}@${domain} ${domain}/${u}/Maildir/\n`).join(""));
  const tlsLines: string[] = [];
  if (opts.tls) {
    writeFileSync(join(dir, "etc", "key.pem"), opts.tls.key, { mode: 0o600 });
    writeFileSync(join(dir, "etc", "cert.pem"), opts.tls.cert);
    tlsLines.push(`smtpd_tls_security_level = may`, `smtpd_tls_chain_files = ${dir}/etc/key.pem, ${dir}/etc/cert.pem`);
  }
  const main = [
    "compatibility_level = 3.6",
    `queue_directory = ${dir}/spool`,
    `data_directory = ${dir}/data`,
    "command_directory = /usr/sbin",
    "daemon_directory = /usr/lib/postfix/sbin",
    "shlib_directory = /usr/lib/postfix",
    "meta_directory = /etc/postfix",
    "mail_owner = postfix",
    "setgid_group = postdrop",
    `myhostname = mx.${domain}`,
    `mydomain = ${domain}`,
    "mydestination =",
    "inet_interfaces = 127.0.0.1",
    "inet_protocols = ipv4",
    "mynetworks = 127.0.0.0/8",
    `virtual_mailbox_domains = ${domain}`,
    `virtual_mailbox_base = ${dir}/vmail`,
    `virtual_mailbox_maps = texthash:${dir}/etc/vmailbox`,
    `virtual_uid_maps = static:${uid}`,
    `virtual_gid_maps = static:${gid}`,
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    "biff = no",
    "alias_maps =",
    "alias_database =",
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
    "smtpd_recipient_restrictions = reject_unlisted_recipient",
    "message_size_limit = 52428800",
    "virtual_mailbox_limit = 0",
    ...tlsLines,
  ];
  writeFileSync(join(dir, "etc", "main.cf"), `${main.join("\n")}\n`);
  const services = ["pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap", "proxywrite unix - - n - 1 proxymap", "smtp unix - - n - - smtp",
    "relay unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error", "retry unix - - n - - error",
    "discard unix - - n - - discard", "local unix - n n - - local", "virtual unix - n n - - virtual",
    "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd",
    "tlsmgr unix - - n 1000? 1 tlsmgr"];
  writeFileSync(join(dir, "etc", "master.cf"), [`127.0.0.1:${port} inet n - n - - smtpd`, ...services].join("\n") + "\n");
  const ctl = (verb: string): RunResult => {
    const r = spawnSync("postfix", ["-c", join(dir, "etc"), verb], { encoding: "utf8", timeout: 30_000 });
    return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  let running = false;
  return {
    port,
    dir,
    maildir: (user) => join(dir, "vmail", domain, user, "Maildir"),
    async start() {
      const r = ctl("start");
      if (r.code !== 0) throw new Error(`postfix start failed: ${r.stderr}${existsSync(join(dir, "maillog")) ? readFileSync(join(dir, "maillog"), "utf8") : ""}`);
      running = true;
      await waitFor(() => portOpen(port), `postfix on ${port}`);
    },
    stop() {
      if (running) ctl("stop");
      running = false;
    },
    cleanup() {
      if (running) ctl("abort");
      running = false;
      tmp.cleanup();
    },
  };
}

function portOpen(port: number): boolean {
  const r = spawnSync("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`], { timeout: 2000 });
  return r.status === 0;
}

/** A raw SMTP conversation for hostile tests: each `cmd` returns the full reply. */
export class RawSmtp {
  #socket: Socket | TLSSocket;
  #buf = "";
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    this.#listen(socket);
  }

  #listen(s: Socket | TLSSocket): void {
    s.on("data", (d: Buffer) => {
      this.#buf += d.toString("latin1");
      for (const w of this.#waiters.splice(0)) w();
    });
    s.on("close", () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w();
    });
    s.on("error", () => undefined);
  }

  /** Connects and returns the client; the greeting is read with `reply()`. */
  static connect(port: number): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, "127.0.0.1", () => resolve(new RawSmtp(s)));
      s.once("error", reject);
    });
  }

  /** The next complete reply (all its lines), or "" once the server closed. */
  async reply(timeoutMs = 10_000): Promise<string> {
    const start = Date.now();
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0];
      }
      if (this.closed) return "";
      if (Date.now() - start > timeoutMs) throw new Error(`no reply; buffer: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Writes raw bytes. */
  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  /** Sends a command line and returns its reply. */
  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS and the TLS handshake (certificate not checked: it is self-signed). */
  async startTls(): Promise<string> {
    const r = await this.cmd("STARTTLS");
    if (!r.startsWith("220")) return r;
    const plain = this.#socket as Socket;
    plain.removeAllListeners("data");
    this.#socket = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ socket: plain, rejectUnauthorized: false }, () => resolve(t));
      t.once("error", reject);
    });
    this.#listen(this.#socket);
    return r;
  }

  /** Closes the socket. */
  close(): void {
    this.#socket.destroy();
  }
}

/** A plain message (CRLF) with the given header fields and body. */
export function message(headers: Readonly<Record<string, string>>, body = "Hello.\r\n"): Buffer {
  return Buffer.from(`${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n${body}`);
}
