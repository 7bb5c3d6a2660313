/**
 * The running stack the hostile-actor suite plays against: every service module (DNS, compute on
 * podman, gateway, mail with a test smarthost) on free ports, each one stoppable and restartable
 * on its own (a partition), the real CLI as a child process per person (own keyring and trust
 * directory), and the probes a person would use (dig, HTTP through the gateway, IMAP, SMTP).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { request } from "undici";
import { freePort } from "../../src/cli/dev/system.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { loadIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { parseEntry } from "../../src/core/pipeline/pipeline.ts";
import { signCommand, type CommandDraft, type SignedCommand } from "../../src/core/pipeline/sign.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { DEFAULT_PORTS, type RunningService, type ServiceContext, type ServiceModule, type StackPorts } from "../../src/platform/service.ts";
import { createComputeService } from "../../src/platform/services/compute.ts";
import { dnsService } from "../../src/platform/services/dns.ts";
import { gatewayService } from "../../src/platform/services/gateway.ts";
import { createMailService } from "../../src/platform/services/mail.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { busyboxRootfs, fabricId } from "../compute/support.ts";
import { dig } from "../dns/support.ts";
import { TestDns } from "../mail/support-smtp.ts";
import { cli, person, tempDir, type Run } from "../imvu/support.ts";

export { cleanup, cli, deliver, message, person, tempDir, type Run } from "../imvu/support.ts";
export { dig } from "../dns/support.ts";

/** A service of the stack that a test can stop and start again on the same ports and data. */
export interface Switch {
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Wraps a module so that the stack holds a stand-in whose calls reach the instance running now:
 * the service can be stopped and restarted in place while the stack (and the services that hold
 * it, like the gateway holding compute) keep their reference.
 */
function switchable(m: ServiceModule): { module: ServiceModule; control: Switch } {
  let ctx: ServiceContext | undefined;
  let current: RunningService | undefined;
  const control: Switch = {
    get running() {
      return current !== undefined;
    },
    async stop() {
      const c = current;
      current = undefined;
      await c?.stop();
    },
    async start() {
      assert.ok(ctx, `${m.name} was never started`);
      assert.equal(current, undefined, `${m.name} is already running`);
      current = await m.start(ctx);
    },
  };
  const standIn = new Proxy({} as RunningService, {
    has(_, prop) {
      return prop === "stop" || prop === "name" || (current !== undefined && prop in current);
    },
    get(_, prop) {
      if (prop === "stop") return () => control.stop();
      if (prop === "name") return m.name;
      if (current === undefined) return prop === "endpoints" ? [] : undefined;
      const v: unknown = Reflect.get(current, prop);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(current) : v;
    },
  });
  const module: ServiceModule = {
    name: m.name,
    async start(c) {
      ctx = c;
      current = await m.start(c);
      return standIn;
    },
  };
  return { module, control };
}

/** A minimal remote MX (RFC 5321 server side) that counts what it accepts, by Message-ID. */
export class SinkMx {
  readonly received: string[] = [];
  /** RCPT commands seen (accepted or not): delivery attempts. */
  attempts = 0;
  /** While true, every RCPT is answered 451 (a remote that is temporarily unable). */
  tempfail = false;
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  port = 0;

  /** Listens on a free port (or the port it had). */
  async listen(): Promise<void> {
    const server = createServer((s) => this.#session(s));
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    const addr = server.address();
    this.port = typeof addr === "object" && addr ? addr.port : 0;
    this.#server = server;
  }

  #session(s: Socket): void {
    this.#sockets.add(s);
    s.on("close", () => this.#sockets.delete(s));
    s.on("error", () => undefined);
    let buf = "";
    let data: string | undefined;
    s.write("220 sink.remote.test ESMTP\r\n");
    s.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      for (let i = buf.indexOf("\r\n"); i >= 0; i = buf.indexOf("\r\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (data !== undefined) {
          if (line === ".") {
            this.received.push(/^Message-ID:\s*(\S+)/im.exec(data)?.[1] ?? data);
            data = undefined;
            s.write("250 2.0.0 accepted\r\n");
          } else data += `${line}\n`;
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") s.write("250 sink.remote.test\r\n");
        else if (verb === "MAIL") s.write("250 2.1.0 ok\r\n");
        else if (verb === "RCPT") {
          this.attempts += 1;
          s.write(this.tempfail ? "451 4.3.0 try again later\r\n" : "250 2.1.5 ok\r\n");
        }
        else if (verb === "DATA") {
          data = "";
          s.write("354 go on\r\n");
        } else if (verb === "QUIT") s.end("221 bye\r\n");
        else if (verb === "RSET" || verb === "NOOP") s.write("250 ok\r\n");
        else s.write("502 5.5.2 not here\r\n");
      }
    });
  }

  /** Stops listening and drops its connections. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    this.#server = undefined;
  }
}

/** A running installation under attack. */
export interface Site {
  readonly home: string;
  readonly stack: Stack;
  readonly ports: StackPorts;
  readonly api: string;
  readonly dns: Switch;
  readonly mail: Switch;
  readonly compute: Switch | undefined;
  readonly gateway: Switch | undefined;
  readonly mx: SinkMx;
  /** The compute fabric id (labels of this run's containers). */
  readonly fabric: string;
  /** The operator's CLI environment (platform keys of the data directory). */
  readonly operator: Record<string, string>;
  /** Stops everything and removes the containers of this run. */
  done(): Promise<void>;
}

/** Starts the stack: DNS, mail (smarthost: the sink MX) and, with `compute`, compute and gateway. */
export async function startSite(prefix: string, opts: { compute?: boolean } = {}): Promise<Site> {
  const home = join(tempDir(prefix), "home");
  const ports: StackPorts = {
    ...DEFAULT_PORTS,
    api: await freePort(), dns: await freePort(), resolver: await freePort(), smtp: await freePort(), submission: await freePort(),
    imap: await freePort(), gateway: await freePort(), gatewayTls: await freePort(),
  };
  const mx = new SinkMx();
  await mx.listen();
  const dns = switchable(dnsService);
  const mail = switchable(
    createMailService({ resolver: new TestDns().resolver(), hostname: "mail.nexus.test", smarthost: { host: "127.0.0.1", port: mx.port }, retry: { firstRetryMs: 300, retryMaxMs: 600 } }),
  );
  const fabric = fabricId();
  const compute = opts.compute ? switchable(createComputeService({ fabric, meterIntervalMs: 10_000, resyncMs: 2000, debounceMs: 30 })) : undefined;
  const gateway = opts.compute ? switchable(gatewayService) : undefined;
  const modules = [dns.module, ...(compute ? [compute.module] : []), ...(gateway ? [gateway.module] : []), mail.module];
  const stack = await startStack({ home, config: { host: "127.0.0.1", ports, public: false }, modules, log: () => {} });
  const operator = { NEXUS_API: stack.apiUrl, NEXUS_HOME: home, NEXUS_TRUST_DIR: join(tempDir("nexus-op-"), "trust") };
  return {
    home, stack, ports, api: stack.apiUrl, dns: dns.control, mail: mail.control, compute: compute?.control, gateway: gateway?.control, mx, fabric, operator,
    async done() {
      // The fabric outlives the compute service: stop everything, then remove the containers and
      // volumes. Each step is bounded, so that a step that never settles cannot keep the file's
      // process (and the suite) waiting forever; the step is named on stderr instead.
      const fab = (stack.services.find((s) => s.name === "compute") as { fabric?: { teardown(o: { volumes: boolean }): Promise<void> } } | undefined)?.fabric;
      await bounded("the stack's stop", stack.stop());
      await bounded("the sink MX's close", mx.close());
      if (fab) await bounded("the fabric's teardown", fab.teardown({ volumes: true }));
    },
  };
}

/** How long one step of a site's teardown may take. */
const TEARDOWN_STEP_MS = 60_000;

/** Awaits `p` at most TEARDOWN_STEP_MS; a step that does not settle in time is reported, not awaited. */
async function bounded(what: string, p: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), TEARDOWN_STEP_MS);
  });
  try {
    if ((await Promise.race([p, late])) === "late") process.stderr.write(`test/hostile: ${what} did not settle within ${TEARDOWN_STEP_MS} ms\n`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the CLI and expects exit 0; returns stdout. */
export async function must(args: readonly string[], env: Record<string, string>, input = ""): Promise<string> {
  const r = await cli(args, env, input);
  assert.equal(r.code, 0, `${args.join(" ")}: exit ${String(r.code)}\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Runs the CLI and expects a recorded denial (exit 1, GATE_DENIED) naming each of `gates`. */
export async function denied(args: readonly string[], env: Record<string, string>, gates: readonly number[]): Promise<Run & { index: bigint }> {
  const r = await cli(args, env);
  assert.equal(r.code, 1, `${args.join(" ")}: exit ${String(r.code)}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, /GATE_DENIED/, r.stderr);
  for (const g of gates) assert.match(r.stderr, new RegExp(`gate ${g}:`), `${args.join(" ")} names gate ${g}: ${r.stderr}`);
  const index = /entry (\d+)/.exec(r.stderr)?.[1];
  assert.ok(index !== undefined, `the denial names its ledger entry: ${r.stderr}`);
  return { ...r, index: BigInt(index) };
}

/** A person with a registered identity; returns the environment and the identity id. */
export async function registered(api: string, name: string): Promise<{ env: Record<string, string>; id: string }> {
  const env = person(api, name);
  await must(["id", "register"], env);
  return { env, id: loadIdentity(env.NEXUS_KEYRING ?? "").id };
}

/** An admin: a registered person the operator added with `admin add`. */
export async function admin(site: Site, name = "admin"): Promise<{ env: Record<string, string>; id: string }> {
  const a = await registered(site.api, name);
  await must(["admin", "add", a.id], site.operator);
  return a;
}

/** The IMVU's feed as its owner reads it with the CLI. */
export async function feed(env: Record<string, string>, imvu: string): Promise<{ index: string; type: string; actor: string; outcome: string; redirect: boolean }[]> {
  return (JSON.parse(await must(["imvu", "feed", imvu, "--json"], env)) as { feed: { index: string; type: string; actor: string; outcome: string; redirect: boolean }[] }).feed;
}

/** The answer section of dig for NAME TYPE at the site's DNS port (values only). */
export async function answer(site: Site, name: string, type: string): Promise<string[]> {
  const r = await dig(site.ports.dns, name, type);
  return r.answer.map((l) => l.split(" ").slice(4).join(" "));
}

/** GET through the gateway with a Host header. */
export async function viaGateway(site: Site, host: string, path = "/"): Promise<{ status: number; body: string }> {
  try {
    const r = await request(`http://127.0.0.1:${String(site.ports.gateway)}${path}`, { headers: { host }, headersTimeout: 5000, bodyTimeout: 5000 });
    return { status: r.statusCode, body: await r.body.text() };
  } catch (e) {
    return { status: 0, body: e instanceof Error ? e.message : String(e) };
  }
}

/** Polls until `fn` gives a value (bounded). */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A busybox root file system whose httpd serves `text` at /, /steal and /x (one per IMVU, so answers tell them apart). */
export function siteRootfs(text: string): string {
  const dir = busyboxRootfs(join(tempDir("nexus-rootfs-"), "rootfs"));
  for (const f of ["index.html", "steal", "x"]) writeFileSync(join(dir, "www", f), `${text}\n`);
  return dir;
}

/** The identity of a person's keyring. */
export function identityOf(env: Record<string, string>): LocalIdentity {
  return loadIdentity(env.NEXUS_KEYRING ?? "");
}

/** Signs a command as the person of `env` (what their CLI or console would send). */
export function signAs(env: Record<string, string>, draft: CommandDraft): SignedCommand {
  return signCommand(draft, signerOf(identityOf(env)));
}

/** A receipt as the API answers it. */
export interface WireReceipt {
  readonly index: string;
  readonly outcome: "applied" | "denied";
  readonly gates: readonly { gate: number; pass: boolean; reason: string }[];
}

/** POSTs a signed envelope to the API; the receipt, or the typed error with its HTTP status. */
export async function post(site: { api: string }, envelopeJson: string): Promise<{ status: number; receipt?: WireReceipt; code?: string }> {
  const res = await fetch(`${site.api}/v1/commands`, { method: "POST", headers: { "content-type": "application/json" }, body: envelopeJson, signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { receipt?: WireReceipt; error?: { code: string } };
  return { status: res.status, ...(body.receipt ? { receipt: body.receipt } : {}), ...(body.error ? { code: body.error.code } : {}) };
}

/** Expects a recorded denial by exactly `gates` (in order). */
export function deniedExactly(r: { receipt?: WireReceipt; status: number; code?: string }, gates: readonly number[]): WireReceipt {
  assert.ok(r.receipt, `a receipt (got HTTP ${r.status} ${r.code ?? ""})`);
  assert.equal(r.receipt.outcome, "denied", JSON.stringify(r.receipt.gates));
  assert.deepEqual(r.receipt.gates.filter((g) => !g.pass).map((g) => g.gate), [...gates], JSON.stringify(r.receipt.gates.filter((g) => !g.pass)));
  return r.receipt;
}

/** A signed GET of the API as the person of `env` (RFC 9421), as the CLI makes it. */
export async function signedGet(site: { api: string }, env: Record<string, string>, path: string): Promise<{ status: number; code?: string; json: unknown }> {
  const id = identityOf(env);
  const url = `${site.api}${path}`;
  const headers: Record<string, string> = { accept: "application/json" };
  const sig = signRequest({ method: "GET", url, headers }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey });
  headers["signature-input"] = sig.signatureInput;
  headers.signature = sig.signature;
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
  const json = (await res.json()) as { error?: { code: string } };
  return { status: res.status, ...(json.error ? { code: json.error.code } : {}), json };
}

/** The decoded command and outcome of ledger entry `index`. */
export async function entryAt(site: Site, index: bigint | string): Promise<{ type: string; actor: string; imvu?: string; outcome: string; body: Record<string, unknown> }> {
  const e = parseEntry(await site.stack.platform.ledger.entry(BigInt(index)));
  const cmd = JSON.parse(Buffer.from((e.envelope as { payload: string }).payload, "base64").toString("utf8")) as { type: string; actor: string; imvu?: string; body: Record<string, unknown> };
  return { ...cmd, outcome: e.outcome };
}

/** The commands appended since tree size `from` whose actor is one of `actors`. */
export async function appendedBy(site: Site, from: bigint, actors: readonly string[]): Promise<{ type: string; actor: string }[]> {
  const out: { type: string; actor: string }[] = [];
  for (let i = from; i < site.stack.platform.ledger.size; i++) {
    const e = await entryAt(site, i);
    if (actors.includes(e.actor)) out.push(e);
  }
  return out;
}
