/**
 * The bounds of the SMTP servers, each a named constant (TIGER_STYLE: put a limit on everything),
 * and the two small primitives that enforce the shared ones: a counting semaphore and a byte budget.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Per-server limits; every field has a default in `SMTP_LIMITS_DEFAULT`. */
export interface SmtpLimits {
  /** Largest message accepted (advertised with SIZE, RFC 1870). */
  readonly messageBytesMax: number;
  /** Recipients per message; RFC 5321 4.5.3.1.8 requires at least 100 to be accepted. */
  readonly recipientsMax: number;
  /** Longest text line in DATA, CRLF included (RFC 5321 4.5.3.1.6). */
  readonly lineBytesMax: number;
  /** Largest header section of a message. */
  readonly headerBytesMax: number;
  /** Longest command line (RFC 4954 section 4 lets AUTH lines reach 12288 octets). */
  readonly commandBytesMax: number;
  /** Concurrent connections per server (smtp-server answers 421 beyond). */
  readonly connectionsMax: number;
  /** Concurrent connections from one client address. */
  readonly connectionsPerIpMax: number;
  /** Message bytes held in memory across all connections of a server; beyond it 452 4.3.1. */
  readonly bufferedBytesMax: number;
  /** Idle time before a connection is dropped (RFC 5321 4.5.3.2.7 asks for 5 minutes). */
  readonly socketTimeoutMs: number;
  /** On close, how long open connections may finish before they get 421. */
  readonly closeGraceMs: number;
  /** Failed AUTH attempts before the connection is closed. */
  readonly authFailuresMax: number;
  /** Commands a client may send before it authenticates on submission. */
  readonly unauthenticatedCommandsMax: number;
  /** Received: fields beyond which a message is taken to loop (RFC 5321 6.3). */
  readonly receivedHeadersMax: number;
}

/** The defaults: Postfix-like sizes, RFC minimums where the RFC sets one. */
export const SMTP_LIMITS_DEFAULT: SmtpLimits = {
  messageBytesMax: 10 * MiB,
  recipientsMax: 100,
  lineBytesMax: 1000,
  headerBytesMax: 128 * KiB,
  commandBytesMax: 12_288,
  connectionsMax: 256,
  connectionsPerIpMax: 32,
  bufferedBytesMax: 256 * MiB,
  socketTimeoutMs: 5 * 60_000,
  closeGraceMs: 10_000,
  authFailuresMax: 3,
  unauthenticatedCommandsMax: 10,
  receivedHeadersMax: 50,
};

/** Merges overrides into the defaults, rejecting non-positive or non-integer values. */
export function resolveLimits(overrides: Partial<SmtpLimits> | undefined): SmtpLimits | string {
  const merged: SmtpLimits = { ...SMTP_LIMITS_DEFAULT, ...overrides };
  for (const [name, value] of Object.entries(merged)) {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) return `limit ${name} must be a positive integer`;
  }
  if (merged.lineBytesMax < 80) return "limit lineBytesMax must be at least 80";
  return merged;
}

/** A counting semaphore: at most `permits` holders at once, the rest wait in FIFO order. */
export class Semaphore {
  #free: number;
  readonly #waiters: Array<() => void> = [];

  constructor(permits: number) {
    this.#free = permits;
  }

  /** Waits for a permit; call the returned function exactly once to give it back. */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) {
      this.#free -= 1;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free += 1;
    };
  }
}

/** A byte budget shared by connections: `take` fails (never waits) when it would overdraw. */
export class ByteBudget {
  #used = 0;
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Reserves `n` bytes; false when the budget cannot cover them. */
  take(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  /** Returns `n` previously reserved bytes. */
  release(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }

  /** Bytes currently reserved. */
  get used(): number {
    return this.#used;
  }
}
