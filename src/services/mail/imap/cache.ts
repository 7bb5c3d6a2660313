/**
 * A bounded LRU of computed FETCH data (ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE) per message
 * file. Maildir files never change content once named (flags live in the name), so an entry keyed
 * by folder path and base name stays true; it is shared by every session of the server, which is
 * safe because a key is only reachable through a folder path the session was confined to.
 */

/** What is kept per message. */
export interface CachedMessage {
  envelope?: Buffer;
  bodyStructure?: Buffer;
  body?: Buffer;
  size?: number;
}

/** Default bounds of the process-wide cache. */
export const FETCH_CACHE_ENTRIES_MAX = 50_000;
export const FETCH_CACHE_BYTES_MAX = 64 * 1024 * 1024;

function weight(m: CachedMessage): number {
  return 64 + (m.envelope?.length ?? 0) + (m.bodyStructure?.length ?? 0) + (m.body?.length ?? 0);
}

/** An LRU bounded by entries and bytes. */
export class FetchCache {
  readonly entriesMax: number;
  readonly bytesMax: number;
  readonly #map = new Map<string, CachedMessage>();
  #bytes = 0;

  constructor(entriesMax = FETCH_CACHE_ENTRIES_MAX, bytesMax = FETCH_CACHE_BYTES_MAX) {
    this.entriesMax = entriesMax;
    this.bytesMax = bytesMax;
  }

  /** The entry for `key` (moved to most recent), if cached. */
  get(key: string): CachedMessage | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  /** Merges `data` into the entry for `key`, evicting the least recent entries past the bounds. */
  put(key: string, data: CachedMessage): void {
    const old = this.#map.get(key);
    if (old !== undefined) {
      this.#bytes -= weight(old);
      this.#map.delete(key);
    }
    const merged = { ...old, ...data };
    this.#map.set(key, merged);
    this.#bytes += weight(merged);
    for (const [k, v] of this.#map) {
      if (this.#map.size <= this.entriesMax && this.#bytes <= this.bytesMax) break;
      this.#map.delete(k);
      this.#bytes -= weight(v);
    }
  }

  /** Entries held. */
  get size(): number {
    return this.#map.size;
  }
}
