/**
 * Slice math (gates 7 and 15): per-IMVU token buckets for requests/s and bytes/s, a concurrency
 * count for connections, the QoS order in which waiting requests get the gateway's shared
 * capacity, and throttling episodes. Pure: every function takes the time as an argument.
 *
 * The limits are exactly the envelope's: requestsPerSec with a burst of one second's worth,
 * bandwidthBytesPerSec with a burst of one second's worth (shaping: bytes wait, nothing is
 * refused), connections as concurrent requests and upgraded connections of the IMVU. A limit of
 * 0 refuses everything it governs.
 */
import { QOS_CLASSES } from "../../core/policy/envelope.ts";
import type { Slice } from "./route.ts";

/** A QoS class. */
export type Qos = (typeof QOS_CLASSES)[number];

/** The longest Retry-After the gateway names, in seconds. */
export const RETRY_AFTER_S_MAX = 60;

/** A token bucket (rate per second, capacity `burst`), starting full. */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;
  readonly ratePerSec: number;
  readonly burst: number;
  constructor(ratePerSec: number, burst: number, nowMs: number) {
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.lastMs) * this.ratePerSec) / 1000);
      this.lastMs = nowMs;
    }
  }

  /** Takes `n` tokens if present; otherwise leaves the bucket and returns the ms until they would be. */
  tryTake(n: number, nowMs: number): number {
    this.refill(nowMs);
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    if (this.ratePerSec <= 0) return Infinity;
    return Math.ceil(((n - this.tokens) * 1000) / this.ratePerSec);
  }

  /** Takes `n` tokens, going into debt; returns the ms the caller should wait to repay it (shaping). */
  take(n: number, nowMs: number): number {
    this.refill(nowMs);
    this.tokens -= n;
    if (this.tokens >= 0) return 0;
    if (this.ratePerSec <= 0) return Infinity;
    return Math.ceil((-this.tokens * 1000) / this.ratePerSec);
  }
}

/** Why a request was refused by its slice. */
export interface SliceRefusal {
  readonly limit: "requestsPerSec" | "connections";
  readonly declared: number;
  readonly status: 429 | 503;
  readonly retryAfterS: number;
}

/** The live state of one IMVU's slice. */
export class SliceState {
  readonly requests: TokenBucket;
  readonly bandwidth: TokenBucket;
  inflight = 0;
  /** The declared slice (what refusals name). */
  readonly slice: Slice;
  /** Connections this thread may hold: the declared count divided among `share` serving threads. */
  readonly connectionsHere: number;
  /**
   * `share` > 1 when several serving threads each enforce a part of one slice: each gets
   * 1/share of every rate and ceil(connections/share) (docs/net.md "Serving threads").
   */
  constructor(slice: Slice, nowMs: number, share = 1) {
    this.slice = slice;
    const rps = slice.requestsPerSec / share;
    const bw = slice.bandwidthBytesPerSec / share;
    this.connectionsHere = Math.ceil(slice.connections / share);
    this.requests = new TokenBucket(rps, Math.max(1, rps), nowMs);
    this.bandwidth = new TokenBucket(bw, Math.max(1, bw), nowMs);
  }

  /** Admits one request (taking a connection slot and a request token) or says which limit refused it. */
  admit(nowMs: number): SliceRefusal | undefined {
    if (this.inflight >= this.connectionsHere) {
      return { limit: "connections", declared: this.slice.connections, status: 503, retryAfterS: 1 };
    }
    const wait = this.requests.tryTake(1, nowMs);
    if (wait > 0) {
      return { limit: "requestsPerSec", declared: this.slice.requestsPerSec, status: 429, retryAfterS: Math.min(RETRY_AFTER_S_MAX, Math.max(1, Math.ceil(wait / 1000))) };
    }
    this.inflight++;
    return undefined;
  }

  /** Gives back the connection slot of an admitted request. */
  release(): void {
    if (this.inflight > 0) this.inflight--;
  }
}

const sameSlice = (a: Slice, b: Slice): boolean =>
  a.bandwidthBytesPerSec === b.bandwidthBytesPerSec && a.requestsPerSec === b.requestsPerSec && a.connections === b.connections && a.qos === b.qos;

/** The slices of every IMVU in the table; state survives a table change when the slice did not change. */
export class SliceBook {
  private states = new Map<string, SliceState>();
  private readonly share: number;
  constructor(share = 1) {
    this.share = share;
  }

  /** Adopts the slices of a new table. */
  update(slices: ReadonlyMap<string, Slice>, nowMs: number): void {
    const next = new Map<string, SliceState>();
    for (const [imvu, s] of slices) {
      const old = this.states.get(imvu);
      if (old !== undefined && sameSlice(old.slice, s)) next.set(imvu, old);
      else {
        const fresh = new SliceState(s, nowMs, this.share);
        // In-flight work stays counted across a change of limits.
        if (old !== undefined) fresh.inflight = old.inflight;
        next.set(imvu, fresh);
      }
    }
    this.states = next;
  }

  /** The state of an IMVU (undefined when it has no slice). */
  get(imvu: string): SliceState | undefined {
    return this.states.get(imvu);
  }
}

/** Relative shares of the gateway's capacity granted to waiting requests, per class. */
export const QOS_WEIGHTS: Readonly<Record<Qos, number>> = { gold: 4, silver: 2, bronze: 1 };

/**
 * Who gets a free slot of the gateway's shared capacity when requests wait: weighted round robin
 * over the classes (gold 4 : silver 2 : bronze 1), FIFO within a class, so gold waits least and
 * bronze is never starved. Pure bookkeeping: the caller keeps the waiters' callbacks.
 */
export class QosQueue<T> {
  private readonly queues: Record<Qos, T[]> = { gold: [], silver: [], bronze: [] };
  private credits: Record<Qos, number> = { ...QOS_WEIGHTS };
  readonly perClassMax: number;
  constructor(perClassMax: number) {
    this.perClassMax = perClassMax;
  }

  /** Queues `item`; false when its class's queue is full. */
  push(qos: Qos, item: T): boolean {
    const q = this.queues[qos];
    if (q.length >= this.perClassMax) return false;
    q.push(item);
    return true;
  }

  /** Removes `item` (its wait ended); true when it was queued. */
  remove(qos: Qos, item: T): boolean {
    const q = this.queues[qos];
    const i = q.indexOf(item);
    if (i < 0) return false;
    q.splice(i, 1);
    return true;
  }

  /** The next waiter to admit, or undefined when none waits. */
  shift(): T | undefined {
    for (let round = 0; round < 2; round++) {
      for (const c of ["gold", "silver", "bronze"] as const) {
        if (this.credits[c] > 0 && this.queues[c].length > 0) {
          this.credits[c]--;
          return this.queues[c].shift();
        }
      }
      this.credits = { ...QOS_WEIGHTS };
    }
    return undefined;
  }

  /** Waiters in all classes. */
  get size(): number {
    return this.queues.gold.length + this.queues.silver.length + this.queues.bronze.length;
  }
}

/** The limit names a throttling episode can carry. */
export type ThrottleLimit = "requestsPerSec" | "connections" | "bandwidthBytesPerSec" | "gatewayCapacity";

/** One throttling episode of one IMVU and one limit (the body of a `throttle.report`). */
export interface ThrottleEpisode {
  readonly imvu: string;
  readonly limit: ThrottleLimit;
  /** The declared value of the limit (envelope or gateway option). */
  readonly declared: number;
  /** Epoch ms of the first throttled request and of the last. */
  readonly startedAtMs: number;
  readonly lastAtMs: number;
  /** Requests refused (or, for bandwidth, responses delayed) during the episode. */
  readonly count: number;
  /** The route table version when the episode started. */
  readonly version: string;
}

/** Groups throttling events into episodes: an episode ends after `quietMs` without an event. */
export class EpisodeTracker {
  private readonly open = new Map<string, { imvu: string; limit: ThrottleLimit; declared: number; startedAtMs: number; lastAtMs: number; count: number; version: string }>();
  readonly quietMs: number;
  constructor(quietMs: number) {
    this.quietMs = quietMs;
  }

  /** Records `n` throttling events (default one) seen at `nowMs`. */
  hit(imvu: string, limit: ThrottleLimit, declared: number, nowMs: number, version: string, n = 1): void {
    const key = `${limit}\u0000${imvu}\u0000${declared}`;
    const e = this.open.get(key);
    if (e === undefined) {
      this.open.set(key, { imvu, limit, declared, startedAtMs: nowMs, lastAtMs: nowMs, count: n, version });
    } else {
      e.lastAtMs = nowMs;
      e.count += n;
    }
  }

  /** Ends and returns the episodes quiet since `quietMs` (all of them with `all`). */
  sweep(nowMs: number, all = false): ThrottleEpisode[] {
    const out: ThrottleEpisode[] = [];
    for (const [k, e] of this.open) {
      if (all || nowMs - e.lastAtMs >= this.quietMs) {
        out.push({ ...e });
        this.open.delete(k);
      }
    }
    return out;
  }

  /** Episodes currently open. */
  get openCount(): number {
    return this.open.size;
  }
}
