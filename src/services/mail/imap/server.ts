/**
 * The IMAP listener: TCP (port 1143 on loopback by default) or implicit TLS (993 with --public),
 * STARTTLS (RFC 3501 6.2.1, RFC 2595), bounded connections, time-outs and the input pipeline
 * (socket → framer → session, one command at a time).
 *
 * Duties:
 * - Connections are bounded in total and per client address; one over a bound gets
 *   `* BYE [UNAVAILABLE]` and is closed before any command is read.
 * - Bytes held for unfinished commands are bounded per connection (the framer) and across the
 *   server (`inflightBytesMax`): past it, sockets holding partial commands are paused.
 * - Nothing received before STARTTLS completes is taken as input after it (RFC 2595 3.1).
 * - A client that stops reading is cut off after `writeTimeoutMs`; an idle one after the
 *   login time-out (not authenticated), the autologout (at least 30 minutes, RFC 3501 5.4) or
 *   the IDLE time-out (RFC 2177: clients re-IDLE every 29 minutes).
 */
import { createServer, type Server, type Socket } from "node:net";
import { hostname as osHostname } from "node:os";
import { TLSSocket, createSecureContext, createServer as createTlsServer, type SecureContext } from "node:tls";
import { FOLDER_LIMITS_DEFAULT, type FolderLimits } from "../maildir/index.ts";
import { selfSignedCertificate, type TlsCredentials } from "../tls.ts";
import { FetchCache } from "./cache.ts";
import { imapErrors } from "./errors.ts";
import { Framer, type FrameEvent, type FramerLimits } from "./framer.ts";
import { ImapSession, newMetrics, type AccountSlots, type ImapAuthenticator, type ImapMetrics, type SessionIo, type SessionLimits } from "./session.ts";
import { toBuffer, type Chunk } from "./wire.ts";

/** Responses up to this size are copied into one buffer before writing. */
const COALESCE_BYTES_MAX = 64 * 1024;

/** The embedded default port (ARCHITECTURE.md: IMAP 1143 on 127.0.0.1). */
export const IMAP_PORT = 1143;
/** The port of `nexus up --public`: IMAP over implicit TLS (RFC 8314 3.3). */
export const IMAPS_PORT = 993;

/** Every bound of the server. */
export interface ImapServerLimits extends SessionLimits, FramerLimits {
  readonly connectionsMax: number;
  readonly connectionsPerIpMax: number;
  readonly loginTimeoutMs: number;
  readonly autologoutMs: number;
  readonly idleTimeoutMs: number;
  readonly writeTimeoutMs: number;
  /** Bytes held for unfinished commands across all connections. */
  readonly inflightBytesMax: number;
  /** Complete commands queued per connection (pipelining) before its socket is paused. */
  readonly pipelineMax: number;
}

/** Default bounds (Dovecot's choices where it has one: 64 KiB lines, 10 sessions per user and IP). */
export const IMAP_LIMITS_DEFAULT: ImapServerLimits = {
  lineBytesMax: 64 * 1024,
  literalBytesMax: 64 * 1024,
  commandBytesMax: 256 * 1024,
  appendBytesMax: 50 * 1024 * 1024,
  authFailuresMax: 3,
  authFailureDelayMs: 500,
  badCommandsMax: 20,
  idlePollMs: 30_000,
  sessionsPerAccountMax: 20,
  connectionsMax: 1_000,
  connectionsPerIpMax: 20,
  loginTimeoutMs: 60_000,
  autologoutMs: 30 * 60_000,
  idleTimeoutMs: 30 * 60_000,
  writeTimeoutMs: 60_000,
  inflightBytesMax: 256 * 1024 * 1024,
  pipelineMax: 64,
};

/** Options of `startImapServer`. */
export interface ImapServerOptions {
  /** Address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default 1143; 0 picks a free one). */
  readonly port?: number;
  /** Checks credentials and names the account's Maildir. */
  readonly auth: ImapAuthenticator;
  /** Key and certificate for STARTTLS / implicit TLS; undefined generates a self-signed pair; false disables TLS. */
  readonly tls?: TlsCredentials | false;
  /** Implicit TLS from the first byte (IMAPS, port 993). */
  readonly implicitTls?: boolean;
  /** Allow authentication without TLS from non-loopback peers (default false). */
  readonly allowPlaintextAuth?: boolean;
  readonly limits?: Partial<ImapServerLimits>;
  readonly folderLimits?: FolderLimits;
  /** Folders created and subscribed at first login (default Drafts, Sent, Trash, Junk). */
  readonly autoCreate?: readonly string[];
  /** Shared FETCH cache (default: one per server). */
  readonly cache?: FetchCache;
  /** Told about unexpected errors (answered NO [SERVERBUG] to the client). */
  readonly onError?: (e: unknown) => void;
}

/** A running server. */
export interface ImapServer {
  readonly host: string;
  readonly port: number;
  /** A snapshot of the counters. */
  metrics(): Readonly<ImapMetrics>;
  /** Says BYE to every session, stops listening and resolves when every connection closed. */
  close(): Promise<void>;
}

/** Default listen settings: loopback 1143, or all addresses on 993 with implicit TLS (`--public`). */
export function imapListenDefaults(isPublic: boolean): { host: string; port: number; implicitTls: boolean } {
  return isPublic ? { host: "0.0.0.0", port: IMAPS_PORT, implicitTls: true } : { host: "127.0.0.1", port: IMAP_PORT, implicitTls: false };
}

function tlsSetup(tls: TlsCredentials | false | undefined): { creds: TlsCredentials; context: SecureContext } | undefined {
  if (tls === false) return undefined;
  let creds = tls;
  if (creds === undefined) {
    const name = /^[a-zA-Z0-9.-]{1,253}$/.test(osHostname()) ? osHostname() : "localhost";
    creds = selfSignedCertificate(name);
  }
  try {
    return { creds, context: createSecureContext({ key: creds.key, cert: creds.cert, minVersion: "TLSv1.2" }) };
  } catch (e) {
    throw imapErrors.make("IMAP_CONFIG_INVALID", `TLS credentials: ${(e as Error).message}`);
  }
}

class Counter {
  readonly #map = new Map<string, number>();
  get(k: string): number {
    return this.#map.get(k) ?? 0;
  }
  add(k: string, d: number): void {
    const n = this.get(k) + d;
    if (n <= 0) this.#map.delete(k);
    else this.#map.set(k, n);
  }
}

/** Starts an IMAP server; IMAP_LISTEN_FAILED when the port cannot be bound. */
export async function startImapServer(opts: ImapServerOptions): Promise<ImapServer> {
  const limits: ImapServerLimits = { ...IMAP_LIMITS_DEFAULT, ...opts.limits };
  const tls = tlsSetup(opts.tls);
  const secureContext = tls?.context;
  if (opts.implicitTls === true && tls === undefined) throw imapErrors.make("IMAP_CONFIG_INVALID", "implicit TLS needs TLS credentials");
  const metrics = newMetrics();
  const perIp = new Counter();
  const perAccount = new Counter();
  const slots: AccountSlots = {
    acquire(key) {
      if (perAccount.get(key) >= limits.sessionsPerAccountMax) return undefined;
      perAccount.add(key, 1);
      let released = false;
      return () => {
        if (!released) perAccount.add(key, -1);
        released = true;
      };
    },
  };
  const shared = {
    limits,
    metrics,
    secureContext,
    budget: { used: 0 },
    perIp,
    sessions: new Set<Connection>(),
    sessionConfig: {
      auth: opts.auth,
      tlsAvailable: secureContext !== undefined,
      allowPlaintextAuth: opts.allowPlaintextAuth ?? false,
      limits,
      folderLimits: opts.folderLimits ?? FOLDER_LIMITS_DEFAULT,
      autoCreate: opts.autoCreate ?? ["Drafts", "Sent", "Trash", "Junk"],
      metrics,
      cache: opts.cache ?? new FetchCache(),
      slots,
      onError: opts.onError,
    },
  };
  const onSocket = (socket: Socket, secure: boolean): void => accept(shared, socket, secure);
  const server: Server =
    opts.implicitTls === true && tls !== undefined
      ? createTlsServer({ key: tls.creds.key, cert: tls.creds.cert, minVersion: "TLSv1.2" }, (s) => onSocket(s, true))
      : createServer((s) => onSocket(s, false));
  server.maxConnections = limits.connectionsMax + 16;
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(imapErrors.make("IMAP_LISTEN_FAILED", `${host}:${opts.port ?? IMAP_PORT}: ${e.message}`)));
    server.listen(opts.port ?? IMAP_PORT, host, () => resolve());
  });
  server.on("error", (e) => opts.onError?.(e));
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  return {
    host,
    port,
    metrics: () => ({ ...metrics, inflightBytes: shared.budget.used }),
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      await Promise.all([...shared.sessions].map((c) => c.shutdown()));
      await closed;
    },
  };
}

interface Shared {
  readonly limits: ImapServerLimits;
  readonly metrics: ImapMetrics;
  readonly secureContext: SecureContext | undefined;
  readonly budget: { used: number };
  readonly perIp: Counter;
  readonly sessions: Set<Connection>;
  readonly sessionConfig: ConstructorParameters<typeof ImapSession>[1];
}

function accept(shared: Shared, socket: Socket, secure: boolean): void {
  const { limits, metrics } = shared;
  const ip = socket.remoteAddress ?? "?";
  metrics.connectionsAccepted += 1;
  socket.on("error", () => socket.destroy());
  if (shared.sessions.size >= limits.connectionsMax || shared.perIp.get(ip) >= limits.connectionsPerIpMax) {
    metrics.connectionsRefused += 1;
    socket.end(`* BYE [UNAVAILABLE] ${imapErrors.specs.IMAP_TOO_MANY_CONNECTIONS.message}\r\n`);
    setTimeout(() => socket.destroy(), 1_000).unref();
    return;
  }
  const conn = new Connection(shared, socket, secure, ip);
  shared.sessions.add(conn);
  shared.perIp.add(ip, 1);
  metrics.connectionsOpen += 1;
  socket.once("close", () => {
    shared.sessions.delete(conn);
    shared.perIp.add(ip, -1);
    metrics.connectionsOpen -= 1;
    conn.dispose();
  });
  void conn.start();
}

/** One client connection: its socket (plain or TLS), framer, queue and session. */
class Connection {
  readonly #shared: Shared;
  readonly #raw: Socket;
  #sock: Socket;
  #secure: boolean;
  readonly #framer: Framer;
  readonly #session: ImapSession;
  #queue: FrameEvent[] = [];
  #pumping = false;
  #closed = false;
  #held = 0;
  #resumeTimer: NodeJS.Timeout | undefined;
  readonly #onData = (chunk: Buffer): void => this.#data(chunk);

  constructor(shared: Shared, socket: Socket, secure: boolean, ip: string) {
    this.#shared = shared;
    this.#raw = socket;
    this.#sock = socket;
    this.#secure = secure;
    this.#framer = new Framer(shared.limits);
    const isSecure = (): boolean => this.#secure;
    const io: SessionIo = {
      write: (chunks) => this.#write(chunks),
      startTls: () => this.#startTls(),
      close: () => this.#end(),
      remoteAddress: ip,
      get secure() {
        return isSecure();
      },
    };
    this.#session = new ImapSession(io, shared.sessionConfig);
  }

  async start(): Promise<void> {
    this.#sock.on("data", this.#onData);
    // The time-out lives on the raw socket, which sees every byte before and after STARTTLS.
    this.#raw.on("timeout", () => void this.#session.shutdown("IMAP_AUTOLOGOUT"));
    this.#arm();
    await this.#session.greet();
  }

  /** Sets the inactivity time-out for the session's state. */
  #arm(): void {
    const l = this.#shared.limits;
    const s = this.#session;
    this.#raw.setTimeout(s.state === "not-authenticated" ? l.loginTimeoutMs : s.idling ? l.idleTimeoutMs : l.autologoutMs);
  }

  #data(chunk: Buffer): void {
    if (this.#closed) return;
    this.#shared.metrics.bytesIn += chunk.length;
    for (const ev of this.#framer.push(chunk)) this.#queue.push(ev);
    this.#account();
    const overBudget = this.#shared.budget.used > this.#shared.limits.inflightBytesMax && this.#held > 0;
    if (this.#queue.length >= this.#shared.limits.pipelineMax || overBudget) this.#pause();
    void this.#pump();
  }

  /** Keeps the server-wide count of bytes held for unfinished or queued commands. */
  #account(): void {
    let held = this.#framer.bufferedBytes;
    for (const ev of this.#queue) if (ev.type === "command") held += ev.bytes.length;
    this.#shared.budget.used += held - this.#held;
    this.#held = held;
  }

  #pause(): void {
    this.#sock.pause();
    this.#resumeTimer ??= setInterval(() => {
      const overBudget = this.#shared.budget.used > this.#shared.limits.inflightBytesMax && this.#held > 0;
      if (this.#closed || (this.#queue.length < this.#shared.limits.pipelineMax && !overBudget)) {
        clearInterval(this.#resumeTimer);
        this.#resumeTimer = undefined;
        if (!this.#closed) this.#sock.resume();
      }
    }, 50);
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (let ev = this.#queue.shift(); ev !== undefined && !this.#closed; ev = this.#queue.shift()) {
        this.#account();
        await this.#event(ev);
        this.#account();
        if (!this.#closed) this.#arm();
      }
    } catch (e) {
      this.#shared.sessionConfig.onError?.(e);
      this.#end();
    } finally {
      this.#pumping = false;
    }
  }

  async #event(ev: FrameEvent): Promise<void> {
    switch (ev.type) {
      case "command":
        return this.#session.handle(ev.bytes);
      case "continue":
        // RFC 3501 7.5: the continuation request, written in order with the other responses.
        return this.#write(["+ Ready for literal data\r\n"]);
      case "reject":
        return this.#session.framingError(ev.tag, ev.error, false);
      case "fatal":
        return this.#session.framingError(undefined, ev.error, true);
      default: {
        const never: never = ev;
        return never;
      }
    }
  }

  /**
   * Writes one response: small ones joined into one buffer (one write per FETCH response), large
   * ones as one corked writev without copying; then waits for the socket if it is full.
   */
  async #write(chunks: readonly Chunk[]): Promise<void> {
    if (this.#closed || this.#sock.destroyed) return;
    const sock = this.#sock;
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    this.#shared.metrics.bytesOut += bytes;
    let ok: boolean;
    if (bytes <= COALESCE_BYTES_MAX) ok = sock.write(toBuffer(chunks));
    else {
      ok = true;
      sock.cork();
      for (const c of chunks) ok = sock.write(c);
      sock.uncork();
    }
    if (!ok && !sock.destroyed) await this.#drain();
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      const sock = this.#sock;
      const done = (): void => {
        clearTimeout(timer);
        sock.off("drain", done);
        sock.off("close", done);
        resolve();
      };
      const timer = setTimeout(() => {
        sock.destroy();
        done();
      }, this.#shared.limits.writeTimeoutMs);
      sock.on("drain", done);
      sock.on("close", done);
    });
  }

  /** RFC 3501 6.2.1: TLS over the same connection; input buffered before it is discarded. */
  async #startTls(): Promise<void> {
    const ctx = this.#shared.secureContext;
    if (ctx === undefined) return;
    this.#framer.reset();
    this.#queue = [];
    this.#account();
    this.#raw.off("data", this.#onData);
    const tls = new TLSSocket(this.#raw, { isServer: true, secureContext: ctx });
    tls.on("error", () => this.#raw.destroy());
    this.#sock = tls;
    this.#secure = true;
    tls.on("data", this.#onData);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.end();
    setTimeout(() => this.#raw.destroy(), 2_000).unref();
  }

  /** Server shutdown: BYE, then close. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((r) => {
      if (this.#raw.destroyed) r();
      else this.#raw.once("close", () => r());
    });
    await this.#session.shutdown("IMAP_SHUTDOWN").catch(() => undefined);
    this.#end();
    await closed;
  }

  /** Called once the socket closed. */
  dispose(): void {
    this.#closed = true;
    this.#queue = [];
    this.#account();
    this.#shared.budget.used -= this.#held;
    this.#held = 0;
    if (this.#resumeTimer !== undefined) clearInterval(this.#resumeTimer);
    this.#session.dispose();
  }
}
