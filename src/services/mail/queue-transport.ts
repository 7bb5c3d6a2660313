/**
 * Sending one queued message to one destination domain over SMTP (RFC 5321), through a
 * configured smarthost or the domain's MX hosts, with nodemailer's SMTP client.
 *
 * Routing (RFC 5321 5.1): MX records in preference order; no MX record (ENODATA) means the domain
 * itself is the implicit MX; a null MX (RFC 7505) or a domain that does not exist fails at once.
 * Each MX host is tried address by address until every recipient has a final answer. STARTTLS is
 * used whenever offered, without authenticating the certificate (opportunistic, RFC 7435 / RFC
 * 3207), and the delivery continues in clear text if the upgrade fails.
 */
import { isIP } from "node:net";
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { MailResolver, MxRecord } from "./smtp/dns.ts";

/** The result of one recipient at one attempt. */
export interface DeliveryOutcome {
  readonly address: string;
  readonly result: "delivered" | "temporary" | "permanent";
  /** The remote reply (or our description) for the DSN's Diagnostic-Code. */
  readonly reply: string;
  /** RFC 3463 status code. */
  readonly status: string;
  /** The host that gave the answer, for the DSN's Remote-MTA. */
  readonly remoteMta?: string;
}

/** A relay all outbound mail goes through instead of MX routing. */
export interface Smarthost {
  readonly host: string;
  readonly port: number;
  /** Refuse to send unless STARTTLS succeeds (default: opportunistic). */
  readonly requireTls?: boolean;
  /** AUTH credentials; when set, STARTTLS is required. */
  readonly auth?: { readonly user: string; readonly pass: string };
}

/** How the transport connects. */
export interface TransportOptions {
  /** Our name in EHLO. */
  readonly hostname: string;
  readonly resolver: MailResolver;
  readonly smarthost?: Smarthost;
  /** Port of MX hosts (25; tests point it at a private peer). */
  readonly mxPort: number;
  readonly connectTimeoutMs: number;
  readonly greetingTimeoutMs: number;
  readonly socketTimeoutMs: number;
}

/** MX hosts tried per domain, and addresses per host (RFC 5321 5.1 lets a client bound both). */
export const MX_HOSTS_MAX = 5;
export const ADDRESSES_PER_HOST_MAX = 2;
/** Default timeouts: RFC 5321 4.5.3.2 gives 5 minutes for the greeting and 10 for DATA's end. */
export const CONNECT_TIMEOUT_MS = 30_000;
export const GREETING_TIMEOUT_MS = 5 * 60_000;
export const SOCKET_TIMEOUT_MS = 10 * 60_000;
const REPLY_CHARS_MAX = 512;

type NodemailerError = SMTPConnection.SMTPError;

interface Route {
  readonly ip: string;
  readonly port: number;
  readonly name: string;
}

function outcomeAll(recipients: readonly string[], result: DeliveryOutcome["result"], status: string, reply: string): DeliveryOutcome[] {
  return recipients.map((address) => ({ address, result, status, reply }));
}

function dnsCode(e: unknown): string {
  return (e as { code?: string }).code ?? "";
}

async function addressesOf(resolver: MailResolver, host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const out: string[] = [];
  for (const type of ["A", "AAAA"] as const) {
    try {
      out.push(...(await resolver.resolve(host, type)));
    } catch {
      // ENODATA/ENOTFOUND for one family is normal; the host is skipped when both fail.
    }
  }
  return out.slice(0, ADDRESSES_PER_HOST_MAX);
}

/** The hosts to try for `domain`, or final outcomes when routing alone decides. */
async function mxHosts(resolver: MailResolver, domain: string, recipients: readonly string[]): Promise<string[] | DeliveryOutcome[]> {
  let mx: MxRecord[];
  try {
    mx = await resolver.resolve(domain, "MX");
  } catch (e) {
    const code = dnsCode(e);
    if (code === "ENODATA") return [domain]; // RFC 5321 5.1: implicit MX
    if (code === "ENOTFOUND") return outcomeAll(recipients, "permanent", "5.1.2", `x-nexus; DNS: ${domain} does not exist`);
    return outcomeAll(recipients, "temporary", "4.4.3", `x-nexus; DNS: MX lookup for ${domain} failed (${code || "error"})`);
  }
  if (mx.length === 1 && (mx[0]?.exchange === "" || mx[0]?.exchange === ".")) {
    return outcomeAll(recipients, "permanent", "5.1.10", `x-nexus; DNS: ${domain} publishes a null MX (RFC 7505)`);
  }
  return [...mx].sort((a, b) => a.priority - b.priority).slice(0, MX_HOSTS_MAX).map((m) => m.exchange.replace(/\.$/, ""));
}

function statusOf(reply: string, fallback: string): string {
  return /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1] ?? fallback;
}

function fromReply(address: string, reply: string, code: number | undefined, mta: string): DeliveryOutcome {
  const permanent = code !== undefined && code >= 500;
  return {
    address,
    result: permanent ? "permanent" : "temporary",
    status: statusOf(reply, permanent ? "5.0.0" : "4.0.0"),
    reply: `smtp; ${reply.slice(0, REPLY_CHARS_MAX)}`,
    remoteMta: mta,
  };
}

/** One SMTP session to one address: every recipient gets an outcome. */
function sendOnce(opts: TransportOptions, route: Route, sender: string, recipients: readonly string[], message: Buffer): Promise<DeliveryOutcome[]> {
  const mustTls = opts.smarthost?.requireTls === true || opts.smarthost?.auth !== undefined;
  return new Promise((resolve) => {
    const conn = new SMTPConnection({
      host: route.ip,
      port: route.port,
      name: opts.hostname,
      ...(isIP(route.name) ? {} : { servername: route.name }),
      // Credentials for a smarthost never travel in clear text: AUTH implies STARTTLS.
      opportunisticTLS: !mustTls,
      requireTLS: mustTls,
      tls: { rejectUnauthorized: false },
      connectionTimeout: opts.connectTimeoutMs,
      greetingTimeout: opts.greetingTimeoutMs,
      socketTimeout: opts.socketTimeoutMs,
      logger: false,
    });
    let settled = false;
    const finish = (out: DeliveryOutcome[]): void => {
      if (settled) return;
      settled = true;
      conn.quit();
      conn.close();
      resolve(out);
    };
    const failAll = (e: NodemailerError): void =>
      finish(
        recipients.map((a) =>
          e.responseCode !== undefined && e.response !== undefined
            ? fromReply(a, e.response, e.responseCode, route.name)
            : { address: a, result: "temporary", status: "4.4.1", reply: `x-nexus; ${route.name}: ${e.message.slice(0, REPLY_CHARS_MAX)}`, remoteMta: route.name },
        ),
      );
    conn.on("error", failAll);
    conn.connect((err) => {
      if (err) return failAll(err);
      const send = (): void =>
        conn.send({ from: sender, to: [...recipients], size: message.length }, message, (e, info) => {
          if (e) {
            const rejected = e.rejectedErrors;
            if (e.code === "EENVELOPE" && e.command === "RCPT TO" && rejected !== undefined) {
              return finish(recipients.map((a) => rcptOutcome(a, rejected, route.name, undefined)));
            }
            return failAll(e);
          }
          finish(recipients.map((a) => rcptOutcome(a, info.rejectedErrors ?? [], route.name, info.response)));
        });
      if (opts.smarthost?.auth) {
        conn.login({ user: opts.smarthost.auth.user, pass: opts.smarthost.auth.pass }, (e) => (e ? failAll(e) : send()));
      } else {
        send();
      }
    });
  });
}

function rcptOutcome(address: string, rejected: readonly NodemailerError[], mta: string, okReply: string | undefined): DeliveryOutcome {
  const r = rejected.find((x) => x.recipient === address);
  if (r) return fromReply(address, r.response ?? "451 rejected", r.responseCode, mta);
  if (okReply === undefined) return { address, result: "temporary", status: "4.0.0", reply: "x-nexus; not attempted", remoteMta: mta };
  return { address, result: "delivered", status: statusOf(okReply, "2.0.0"), reply: `smtp; ${okReply.slice(0, REPLY_CHARS_MAX)}`, remoteMta: mta };
}

/**
 * Delivers `message` (CRLF, as it goes on the wire) from `sender` to `recipients` of one
 * `domain`; returns one outcome per recipient. Never throws for remote or DNS failures.
 */
export async function deliverDomain(
  opts: TransportOptions,
  domain: string,
  sender: string,
  recipients: readonly string[],
  message: Buffer,
): Promise<DeliveryOutcome[]> {
  let hosts: string[];
  let port = opts.mxPort;
  if (opts.smarthost) {
    hosts = [opts.smarthost.host];
    port = opts.smarthost.port;
  } else {
    const r = await mxHosts(opts.resolver, domain, recipients);
    if (r.length > 0 && typeof r[0] !== "string") return r as DeliveryOutcome[];
    hosts = r as string[];
  }
  const final = new Map<string, DeliveryOutcome>();
  let last: DeliveryOutcome[] = outcomeAll(recipients, "temporary", "4.4.4", `x-nexus; no usable address for the hosts of ${domain}`);
  for (const host of hosts) {
    for (const ip of await addressesOf(opts.resolver, host)) {
      const pending = recipients.filter((a) => !final.has(a));
      if (pending.length === 0) break;
      last = await sendOnce(opts, { ip, port, name: host }, sender, pending, message);
      for (const o of last) if (o.result !== "temporary") final.set(o.address, o);
    }
  }
  const lastBy = new Map(last.map((o) => [o.address, o]));
  return recipients.map(
    (a) => final.get(a) ?? lastBy.get(a) ?? { address: a, result: "temporary", status: "4.4.1", reply: "x-nexus; no answer" },
  );
}
