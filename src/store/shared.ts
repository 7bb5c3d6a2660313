/** Small pieces both drivers use: the writer lane, a bounded LRU cache, statement sniffing. */

/** Runs async jobs one at a time, in the order they were queued (the one writer). */
export class Lane {
  private tail: Promise<unknown> = Promise.resolve();

  /** Queues `job`; resolves or rejects with it. A failing job does not block later ones. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const result = this.tail.then(job, job);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every job queued so far has settled. */
  async drain(): Promise<void> {
    await this.run(async () => undefined);
  }
}

/** A Map bounded to `max` entries that forgets the least recently used one. */
export class StatementCache<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}

const SELECT_RE = /^\s*select\b/i;

/** True when `sql` is a plain SELECT (read-only, may run beside the writer). */
export function isSelect(sql: string): boolean {
  return SELECT_RE.test(sql);
}
