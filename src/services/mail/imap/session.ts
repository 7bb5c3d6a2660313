/**
 * One IMAP connection's protocol state (RFC 3501 3): not authenticated → authenticated →
 * selected → logout, and the commands valid in each. Sockets and TLS belong to server.ts; this
 * file sees a `SessionIo` and complete commands from the framer, and decides policy through
 * injected hooks (the authenticator), as smtp-server does.
 *
 * Duties:
 * - Authentication MUST NOT succeed over a clear channel from a non-loopback peer unless the
 *   operator allowed it (RFC 3501 6.2.3, 11.1: LOGINDISABLED, PRIVACYREQUIRED).
 * - After authentication every path comes from the account's Maildir root through
 *   MaildirStore, so a session reads and writes only its own mailbox (gate 16).
 * - Failed authentications are counted per connection, delayed, and end the connection past
 *   the limit; every refusal answers with its code (RFC 5530) and never echoes secrets.
 * - One command runs at a time; IDLE updates are serialised with commands.
 */
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isNexusError } from "../../../core/errors.ts";
import { MaildirStore, normalizeMailboxName, type FolderLimits } from "../maildir/index.ts";
import type { FetchCache } from "./cache.ts";
import { ImapReplyError, imapReject, toImapReply } from "./errors.ts";
import { listMailboxes } from "./list.ts";
import { parseCommand, tagOf, type Command, type TaggedCommand } from "./parser.ts";
import { SelectedMailbox, copyMessages, expungeDeleted, fetchCommand, searchCommand, storeCommand } from "./selected.ts";
import { mailboxOut, safeText, type Chunk } from "./wire.ts";

/** An authenticated mailbox: where its Maildir is, and optional quota hooks. */
export interface ImapAccount {
  /** The Maildir root (holding tmp, new, cur) this session is confined to. */
  readonly mailboxRoot: string;
  /** The canonical user name (per-account session limits, logs). */
  readonly user: string;
  /** Asked before APPEND/COPY store `bytes` more; false answers NO [OVERQUOTA]. */
  readonly allowStore?: (bytes: number) => Promise<boolean>;
  /** Told after messages were stored (bytes added). */
  readonly onStored?: (bytes: number) => void;
}

/** Where a login attempt comes from. */
export interface AuthInfo {
  readonly remoteAddress: string;
  readonly secure: boolean;
}

/** Checks credentials; undefined when they are wrong (the reply never says which part was). */
export type ImapAuthenticator = (user: string, password: string, info: AuthInfo) => Promise<ImapAccount | undefined>;

/** Per-session bounds. */
export interface SessionLimits {
  readonly authFailuresMax: number;
  readonly authFailureDelayMs: number;
  readonly badCommandsMax: number;
  readonly appendBytesMax: number;
  /** Fallback poll of the selected folder while IDLE (file-system events are the main trigger). */
  readonly idlePollMs: number;
  readonly sessionsPerAccountMax: number;
}

/** Counters the server exposes (monotonic except the `*Open` gauges). */
export interface ImapMetrics {
  connectionsAccepted: number;
  connectionsRefused: number;
  connectionsOpen: number;
  loginsOk: number;
  authFailures: number;
  commands: number;
  commandsBad: number;
  messagesFetched: number;
  messagesAppended: number;
  messagesExpunged: number;
  idleOpen: number;
  /** Bytes held for unfinished or queued commands across the server (a gauge). */
  inflightBytes: number;
  bytesIn: number;
  bytesOut: number;
}

/** A fresh set of zeroed counters. */
export function newMetrics(): ImapMetrics {
  return {
    connectionsAccepted: 0,
    connectionsRefused: 0,
    connectionsOpen: 0,
    loginsOk: 0,
    authFailures: 0,
    commands: 0,
    commandsBad: 0,
    messagesFetched: 0,
    messagesAppended: 0,
    messagesExpunged: 0,
    idleOpen: 0,
    inflightBytes: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}

/** What the session does with its connection. */
export interface SessionIo {
  /** Queues bytes; resolves when the socket can take more (back-pressure). */
  write(chunks: readonly Chunk[]): Promise<void>;
  /** Starts TLS on the connection (after the tagged OK to STARTTLS was written). */
  startTls(): Promise<void>;
  /** Ends the connection after what was written. */
  close(): void;
  readonly remoteAddress: string;
  readonly secure: boolean;
}

/** Session slots per account (bounded concurrent sessions of one mailbox). */
export interface AccountSlots {
  acquire(key: string): (() => void) | undefined;
}

/** Everything a session is configured with. */
export interface SessionConfig {
  readonly auth: ImapAuthenticator;
  readonly tlsAvailable: boolean;
  /** Allow LOGIN/AUTHENTICATE without TLS from non-loopback peers (default false). */
  readonly allowPlaintextAuth: boolean;
  readonly limits: SessionLimits;
  readonly folderLimits: FolderLimits;
  /** Folders created and subscribed at first login (special-use names). */
  readonly autoCreate: readonly string[];
  readonly metrics: ImapMetrics;
  readonly cache: FetchCache;
  readonly slots: AccountSlots;
  readonly onError: ((e: unknown) => void) | undefined;
}

type State = "not-authenticated" | "authenticated" | "selected" | "logout";

const ANY_STATE = new Set(["CAPABILITY", "NOOP", "LOGOUT", "ID"]);
const NOT_AUTHENTICATED = new Set(["STARTTLS", "AUTHENTICATE", "LOGIN"]);
const AUTHENTICATED = new Set(["SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "APPEND", "NAMESPACE", "IDLE"]);
// RFC 3501 7.4.1: no EXPUNGE responses while answering FETCH, STORE or SEARCH (the non-UID forms).
const NO_EXPUNGE_AFTER = new Set(["FETCH", "STORE", "SEARCH"]);
/** Debounce of file-system events while IDLE. */
const IDLE_DEBOUNCE_MS = 25;

/** True for loopback peers (127.0.0.0/8, ::1, and their IPv4-mapped forms). */
export function isLoopback(address: string): boolean {
  return address === "::1" || /^(::ffff:)?127\./.test(address);
}

/** One IMAP session. */
export class ImapSession {
  readonly #io: SessionIo;
  readonly #cfg: SessionConfig;
  #state: State = "not-authenticated";
  #account: ImapAccount | undefined;
  #store: MaildirStore | undefined;
  #sel: SelectedMailbox | undefined;
  #releaseSlot: (() => void) | undefined;
  #pendingAuth: string | undefined;
  #idle: { tag: string; stop: () => void } | undefined;
  #authFailures = 0;
  #badCommands = 0;
  #chain: Promise<void> = Promise.resolve();

  constructor(io: SessionIo, cfg: SessionConfig) {
    this.#io = io;
    this.#cfg = cfg;
  }

  /** The protocol state. */
  get state(): State {
    return this.#state;
  }

  /** True while IDLE (the server applies the IDLE timeout). */
  get idling(): boolean {
    return this.#idle !== undefined;
  }

  #write(...chunks: Chunk[]): Promise<void> {
    return this.#io.write(chunks);
  }

  /** Runs `fn` after everything queued before it (commands and IDLE updates never interleave). */
  #exclusive(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** RFC 3501 7.1.1 greeting, with the capabilities (RFC 3501 7.1 CAPABILITY response code). */
  greet(): Promise<void> {
    return this.#write(`* OK [CAPABILITY ${this.capabilities()}] Nexus COS IMAP ready\r\n`);
  }

  /** RFC 3501 7.2.1 capabilities for the current state and channel. */
  capabilities(): string {
    const caps = ["IMAP4rev1", "LITERAL-", "SASL-IR", "ID", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE"];
    caps.push(`APPENDLIMIT=${this.#cfg.limits.appendBytesMax}`);
    if (this.#state === "not-authenticated") {
      if (this.#cfg.tlsAvailable && !this.#io.secure) caps.push("STARTTLS");
      caps.push(this.#plaintextOk() ? "AUTH=PLAIN" : "LOGINDISABLED");
    }
    return caps.join(" ");
  }

  #plaintextOk(): boolean {
    return this.#io.secure || this.#cfg.allowPlaintextAuth || isLoopback(this.#io.remoteAddress);
  }

  /** Handles one complete command (or the continuation line AUTHENTICATE / IDLE waits for). */
  handle(bytes: Buffer): Promise<void> {
    return this.#exclusive(() => this.#handle(bytes));
  }

  async #handle(bytes: Buffer): Promise<void> {
    if (this.#state === "logout") return;
    if (this.#pendingAuth !== undefined) return this.#authResponse(this.#pendingAuth, bytes);
    if (this.#idle !== undefined) return this.#idleEnd(bytes);
    let tc: TaggedCommand;
    try {
      tc = parseCommand(bytes);
    } catch (e) {
      return this.#refuse(tagOf(bytes) ?? "*", e);
    }
    this.#cfg.metrics.commands += 1;
    try {
      await this.#dispatch(tc.tag, tc.command);
    } catch (e) {
      await this.#refuse(tc.tag, e);
    }
  }

  /** Answers a refusal; counts malformed commands and ends the session past the limit. */
  async #refuse(tag: string, e: unknown): Promise<void> {
    const r = toImapReply(e);
    if (r.code === "IMAP_SERVER_ERROR") this.#cfg.onError?.(e);
    if (r.status === "BYE") return this.#bye(r);
    await this.#write(`${r.line(tag)}\r\n`);
    if (r.status === "BAD") {
      this.#cfg.metrics.commandsBad += 1;
      this.#badCommands += 1;
      if (this.#badCommands >= this.#cfg.limits.badCommandsMax) await this.#bye(imapReject("IMAP_TOO_MANY_BAD_COMMANDS"));
    }
  }

  /** A reply the framer produced (refused literal) or a fatal framing error. */
  async framingError(tag: string | undefined, e: ImapReplyError, fatal: boolean): Promise<void> {
    return this.#exclusive(async () => {
      if (fatal) return this.#bye(e);
      await this.#refuse(tag ?? "*", e);
    });
  }

  /** Says BYE with `e`'s code and ends the connection. */
  async #bye(e: ImapReplyError): Promise<void> {
    if (this.#state === "logout") return;
    this.#state = "logout";
    this.#stopIdle();
    await this.#write(`* BYE ${e.respCode === undefined ? "" : `[${e.respCode}] `}${safeText(e.message)}\r\n`).catch(() => undefined);
    this.#io.close();
  }

  /** Ends the session from the server side (autologout, shutdown). */
  shutdown(code: "IMAP_AUTOLOGOUT" | "IMAP_SHUTDOWN"): Promise<void> {
    return this.#bye(imapReject(code));
  }

  /** Releases what the session holds (watchers, the account slot); called when the socket closes. */
  dispose(): void {
    this.#state = "logout";
    this.#stopIdle();
    this.#releaseSlot?.();
    this.#releaseSlot = undefined;
  }

  #checkState(name: string): void {
    if (ANY_STATE.has(name)) return;
    const s = this.#state;
    const ok = NOT_AUTHENTICATED.has(name) ? s === "not-authenticated" : AUTHENTICATED.has(name) ? s === "authenticated" || s === "selected" : s === "selected";
    if (!ok) throw imapReject("IMAP_COMMAND_STATE", `${name} in ${s} state`);
  }

  async #dispatch(tag: string, c: Command): Promise<void> {
    this.#checkState(c.name);
    const done = (text: string): Promise<void> => this.#done(tag, c, `OK ${text}`);
    switch (c.name) {
      case "CAPABILITY":
        await this.#write(`* CAPABILITY ${this.capabilities()}\r\n`);
        return done("CAPABILITY completed");
      case "NOOP":
      case "CHECK":
        return done(`${c.name} completed`);
      case "LOGOUT":
        await this.#write("* BYE Logging out\r\n", `${tag} OK LOGOUT completed\r\n`);
        this.#state = "logout";
        this.#stopIdle();
        this.#io.close();
        return;
      case "ID":
        await this.#write('* ID ("name" "Nexus COS")\r\n');
        return done("ID completed");
      case "STARTTLS":
        return this.#startTls(tag);
      case "LOGIN":
        return this.#login(tag, c.user, c.password);
      case "AUTHENTICATE":
        return this.#authenticate(tag, c.mechanism, c.initial);
      case "NAMESPACE":
        await this.#write('* NAMESPACE (("" ".")) NIL NIL\r\n');
        return done("NAMESPACE completed");
      case "IDLE":
        return this.#idleStart(tag);
      default:
        return this.#mailboxCommand(tag, c);
    }
  }

  /** Writes pending updates (selected state) then the tagged reply. */
  async #done(tag: string, c: Command, text: string): Promise<void> {
    if (this.#sel !== undefined && this.#state === "selected") {
      const uidForm = "uid" in c && c.uid;
      const lines = await this.#sel.refresh(uidForm || !NO_EXPUNGE_AFTER.has(c.name));
      if (lines.length > 0) await this.#io.write(lines);
    }
    await this.#write(`${tag} ${text}\r\n`);
  }

  // -------------------------------------------------------------------------------------------
  // Not authenticated (RFC 3501 6.2)

  async #startTls(tag: string): Promise<void> {
    if (!this.#cfg.tlsAvailable || this.#io.secure) throw imapReject("IMAP_TLS_UNAVAILABLE");
    await this.#write(`${tag} OK Begin TLS negotiation now\r\n`);
    await this.#io.startTls();
  }

  async #login(tag: string, user: string, password: string): Promise<void> {
    if (!this.#plaintextOk()) throw imapReject("IMAP_PRIVACY_REQUIRED");
    const account = await this.#cfg.auth(user, password, { remoteAddress: this.#io.remoteAddress, secure: this.#io.secure });
    if (account === undefined) return this.#authFailed(tag);
    const release = this.#cfg.slots.acquire(account.mailboxRoot);
    if (release === undefined) throw imapReject("IMAP_TOO_MANY_SESSIONS");
    try {
      const store = new MaildirStore(account.mailboxRoot, this.#cfg.folderLimits);
      await store.ensure();
      await store.ensureFolders(this.#cfg.autoCreate);
      this.#store = store;
    } catch (e) {
      release();
      throw e;
    }
    this.#account = account;
    this.#releaseSlot = release;
    this.#state = "authenticated";
    this.#cfg.metrics.loginsOk += 1;
    await this.#write(`${tag} OK [CAPABILITY ${this.capabilities()}] Logged in\r\n`);
  }

  async #authFailed(tag: string): Promise<void> {
    this.#authFailures += 1;
    this.#cfg.metrics.authFailures += 1;
    await sleep(this.#cfg.limits.authFailureDelayMs);
    await this.#write(`${imapReject("IMAP_AUTH_FAILED").line(tag)}\r\n`);
    if (this.#authFailures >= this.#cfg.limits.authFailuresMax) await this.#bye(imapReject("IMAP_AUTH_TOO_MANY_FAILURES"));
  }

  /** RFC 3501 6.2.2 AUTHENTICATE with SASL PLAIN (RFC 4616), initial response per RFC 4959. */
  async #authenticate(tag: string, mechanism: string, initial: string | undefined): Promise<void> {
    if (mechanism !== "PLAIN") throw imapReject("IMAP_AUTH_MECHANISM", mechanism.slice(0, 20));
    if (!this.#plaintextOk()) throw imapReject("IMAP_PRIVACY_REQUIRED");
    if (initial === undefined) {
      this.#pendingAuth = tag;
      return this.#write("+ \r\n");
    }
    return this.#plain(tag, initial === "=" ? "" : initial);
  }

  async #authResponse(tag: string, bytes: Buffer): Promise<void> {
    this.#pendingAuth = undefined;
    const line = bytes.toString("latin1").replace(/\r?\n$/, "");
    try {
      if (line === "*") throw imapReject("IMAP_AUTH_CANCELLED");
      await this.#plain(tag, line);
    } catch (e) {
      await this.#refuse(tag, e);
    }
  }

  async #plain(tag: string, b64: string): Promise<void> {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw imapReject("IMAP_SYNTAX", "SASL response is not base64");
    const parts = Buffer.from(b64, "base64").toString("utf8").split("\0");
    if (parts.length !== 3) throw imapReject("IMAP_SYNTAX", "PLAIN needs authzid NUL authcid NUL passwd");
    const [authzid = "", authcid = "", password = ""] = parts;
    // RFC 4616 2: acting as another identity (a different authzid) is not offered here.
    if (authzid !== "" && authzid !== authcid) {
      this.#authFailures += 1;
      this.#cfg.metrics.authFailures += 1;
      throw imapReject("IMAP_AUTHZ_FAILED");
    }
    return this.#login(tag, authcid, password);
  }

  // -------------------------------------------------------------------------------------------
  // IDLE (RFC 2177)

  async #idleStart(tag: string): Promise<void> {
    const watchers: FSWatcher[] = [];
    let timer: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    const tick = (): void => {
      timer = undefined;
      void this.#exclusive(async () => {
        if (this.#idle === undefined || this.#sel === undefined) return;
        const lines = await this.#sel.refresh(true);
        if (lines.length > 0) await this.#io.write(lines);
      }).catch((e: unknown) => this.#cfg.onError?.(e));
    };
    const schedule = (): void => {
      timer ??= setTimeout(tick, IDLE_DEBOUNCE_MS);
    };
    const sel = this.#sel;
    if (sel !== undefined) {
      for (const sub of ["new", "cur"]) {
        try {
          const w = watch(join(sel.folder.path, sub), { persistent: false }, schedule);
          w.on("error", () => w.close());
          watchers.push(w);
        } catch {
          // Without events (e.g. inotify limits) the poll below still notices changes.
        }
      }
      poll = setInterval(schedule, this.#cfg.limits.idlePollMs);
    }
    this.#idle = {
      tag,
      stop: () => {
        for (const w of watchers) w.close();
        if (timer !== undefined) clearTimeout(timer);
        if (poll !== undefined) clearInterval(poll);
        this.#cfg.metrics.idleOpen -= 1;
      },
    };
    this.#cfg.metrics.idleOpen += 1;
    await this.#write("+ idling\r\n");
    if (sel !== undefined) {
      const lines = await sel.refresh(true);
      if (lines.length > 0) await this.#io.write(lines);
    }
  }

  #stopIdle(): void {
    const idle = this.#idle;
    this.#idle = undefined;
    idle?.stop();
  }

  async #idleEnd(bytes: Buffer): Promise<void> {
    const tag = this.#idle?.tag ?? "*";
    this.#stopIdle();
    if (bytes.toString("latin1").trim().toUpperCase() !== "DONE") {
      return this.#refuse(tag, imapReject("IMAP_SYNTAX", "expected DONE"));
    }
    await this.#done(tag, { name: "IDLE" }, "OK IDLE terminated");
  }

  // -------------------------------------------------------------------------------------------
  // Authenticated and selected (RFC 3501 6.3, 6.4)

  #storeOf(): MaildirStore {
    const s = this.#store;
    if (s === undefined) throw imapReject("IMAP_COMMAND_STATE");
    return s;
  }

  #selected(): SelectedMailbox {
    const s = this.#sel;
    if (s === undefined) throw imapReject("IMAP_COMMAND_STATE");
    return s;
  }

  #deselect(): void {
    this.#sel = undefined;
    if (this.#state === "selected") this.#state = "authenticated";
  }

  async #mailboxCommand(tag: string, c: Command): Promise<void> {
    const store = this.#storeOf();
    const done = (text: string): Promise<void> => this.#done(tag, c, `OK ${text}`);
    switch (c.name) {
      case "SELECT":
      case "EXAMINE": {
        this.#deselect();
        const { sel, lines } = await SelectedMailbox.open(store, c.mailbox, c.name === "EXAMINE");
        this.#sel = sel;
        this.#state = "selected";
        await this.#io.write(lines);
        return this.#write(`${tag} OK [${sel.readOnly ? "READ-ONLY" : "READ-WRITE"}] ${c.name} completed\r\n`);
      }
      case "CREATE": {
        // RFC 3501 6.3.3: a trailing separator declares a hierarchy; the name is created without it.
        await store.create(c.mailbox.endsWith(".") ? c.mailbox.slice(0, -1) : c.mailbox);
        return done("CREATE completed");
      }
      case "DELETE":
        if (this.#sel !== undefined && normalizeMailboxName(c.mailbox) === normalizeMailboxName(this.#sel.name)) {
          throw imapReject("IMAP_MAILBOX_IN_USE", "the mailbox is selected; CLOSE it first");
        }
        await store.delete(c.mailbox);
        return done("DELETE completed");
      case "RENAME":
        await store.rename(c.from, c.to);
        return done("RENAME completed");
      case "SUBSCRIBE":
        await store.subscribe(c.mailbox);
        return done("SUBSCRIBE completed");
      case "UNSUBSCRIBE":
        await store.unsubscribe(c.mailbox);
        return done("UNSUBSCRIBE completed");
      case "LIST":
      case "LSUB":
        await this.#io.write(await listMailboxes(store, c.name, c.reference, c.pattern));
        return done(`${c.name} completed`);
      case "STATUS":
        return this.#status(tag, c);
      case "APPEND":
        return this.#append(tag, c);
      default:
        return this.#selectedCommand(tag, c);
    }
  }

  async #status(tag: string, c: Extract<Command, { name: "STATUS" }>): Promise<void> {
    const folder = await this.#storeOf().open(c.mailbox);
    await folder.sync(false);
    const msgs = folder.messages();
    const value: Record<string, number> = {
      MESSAGES: msgs.length,
      // Messages still in new/ have been seen by no session yet (RFC 3501 2.3.2 \Recent).
      RECENT: msgs.filter((m) => m.sub === "new").length,
      UIDNEXT: folder.uidNext,
      UIDVALIDITY: folder.uidValidity,
      UNSEEN: msgs.filter((m) => !m.letters.includes("S")).length,
    };
    const items = c.items.map((i) => `${i} ${value[i]}`).join(" ");
    await this.#write(`* STATUS ${mailboxOut(normalizeMailboxName(c.mailbox))} (${items})\r\n`);
    return this.#done(tag, c, "OK STATUS completed");
  }

  async #openTarget(name: string): Promise<ReturnType<MaildirStore["open"]>> {
    try {
      return await this.#storeOf().open(name);
    } catch (e) {
      // RFC 3501 6.3.11 / 6.4.7: a missing destination answers NO [TRYCREATE].
      if (isNexusError(e, "MAILDIR_NOT_FOUND")) throw imapReject("IMAP_MAILBOX_TRYCREATE");
      throw e;
    }
  }

  async #quota(bytes: number): Promise<void> {
    const allow = this.#account?.allowStore;
    if (allow !== undefined && !(await allow(bytes))) throw imapReject("IMAP_OVERQUOTA");
  }

  /** RFC 3501 6.3.11 APPEND, answering APPENDUID (RFC 4315). */
  async #append(tag: string, c: Extract<Command, { name: "APPEND" }>): Promise<void> {
    const folder = await this.#openTarget(c.mailbox);
    if (c.message.length === 0) throw imapReject("IMAP_SYNTAX", "empty message");
    if (c.message.length > this.#cfg.limits.appendBytesMax) throw imapReject("IMAP_MESSAGE_TOO_LARGE");
    await this.#quota(c.message.length);
    await folder.sync(false);
    const letters = await folder.lettersFor(c.flags);
    const uid = await folder.append(c.message, letters, c.date);
    this.#cfg.metrics.messagesAppended += 1;
    this.#account?.onStored?.(c.message.length);
    return this.#done(tag, c, `OK [APPENDUID ${folder.uidValidity} ${uid}] APPEND completed`);
  }

  async #selectedCommand(tag: string, c: Command): Promise<void> {
    const sel = this.#selected();
    const done = (text: string): Promise<void> => this.#done(tag, c, text);
    const ctx = {
      cache: this.#cfg.cache,
      write: (chunks: readonly Chunk[]) => this.#io.write(chunks),
      countFetched: (n: number) => {
        this.#cfg.metrics.messagesFetched += n;
      },
    };
    const goneText = (r: "ok" | "gone", what: string): string => (r === "ok" ? `OK ${what} completed` : imapReject("IMAP_MESSAGE_GONE").text());
    switch (c.name) {
      case "CLOSE":
      case "UNSELECT":
        // RFC 3501 6.4.2: CLOSE expunges silently when read-write; UNSELECT (RFC 3691) does not.
        if (c.name === "CLOSE" && !sel.readOnly) this.#cfg.metrics.messagesExpunged += (await expungeDeleted(sel, undefined)).length;
        this.#deselect();
        return this.#write(`${tag} OK ${c.name} completed\r\n`);
      case "EXPUNGE":
      case "UID EXPUNGE": {
        await this.#io.write(await sel.refresh(true));
        const only = c.name === "UID EXPUNGE" ? new Set(sel.uidIndexes(c.set).map((i) => sel.uids[i] ?? 0)) : undefined;
        const lines = await expungeDeleted(sel, only);
        this.#cfg.metrics.messagesExpunged += lines.length;
        await this.#io.write(lines);
        return done(`OK ${c.name} completed`);
      }
      case "FETCH": {
        const idx = c.uid ? sel.uidIndexes(c.set) : sel.seqIndexes(c.set);
        return done(goneText(await fetchCommand(ctx, sel, idx, c.items, c.uid), c.uid ? "UID FETCH" : "FETCH"));
      }
      case "STORE": {
        const idx = c.uid ? sel.uidIndexes(c.set) : sel.seqIndexes(c.set);
        return done(goneText(await storeCommand(ctx, sel, idx, c, c.uid), c.uid ? "UID STORE" : "STORE"));
      }
      case "SEARCH": {
        const found = await searchCommand(sel, c.key, c.uid);
        await this.#write(`* SEARCH${found.map((n) => ` ${n}`).join("")}\r\n`);
        return done(`OK ${c.uid ? "UID SEARCH" : "SEARCH"} completed`);
      }
      case "COPY":
      case "MOVE":
        return this.#copy(tag, c, sel);
      default:
        throw imapReject("IMAP_COMMAND_UNKNOWN", c.name);
    }
  }

  /** RFC 3501 6.4.7 COPY and RFC 6851 MOVE, answering COPYUID (RFC 4315). */
  async #copy(tag: string, c: Extract<Command, { name: "COPY" | "MOVE" }>, sel: SelectedMailbox): Promise<void> {
    if (c.name === "MOVE" && sel.readOnly) throw imapReject("IMAP_READ_ONLY");
    const idx = c.uid ? sel.uidIndexes(c.set) : sel.seqIndexes(c.set);
    const target = await this.#openTarget(c.mailbox);
    const bytes = idx.reduce((n, i) => n + (sel.folder.byUid(sel.uids[i] ?? 0)?.size ?? 0), 0);
    await this.#quota(bytes);
    const { code, copied } = await copyMessages(sel, idx, target);
    this.#account?.onStored?.(bytes);
    const label = `${c.uid ? "UID " : ""}${c.name}`;
    if (c.name === "COPY") return this.#done(tag, c, `OK ${code === "" ? "" : `[${code}] `}${label} completed`);
    // RFC 6851 3.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
    if (code !== "") await this.#write(`* OK [${code}] Moved\r\n`);
    const moved = new Set(copied);
    const doomed = sel.uids.map((u) => sel.folder.byUid(u)).filter((e) => e !== undefined && moved.has(e.uid));
    const gone = await sel.folder.expunge(doomed.filter((e) => e !== undefined));
    await this.#io.write(sel.expungeFromView(new Set(gone)));
    this.#cfg.metrics.messagesExpunged += gone.length;
    return this.#done(tag, c, `OK ${label} completed`);
  }
}
