/**
 * The gateway's shared capacity (requests in flight across IMVUs). Free slots go at once; when
 * none is free, requests wait in their QoS class (QosQueue: gold 4 : silver 2 : bronze 1) for at
 * most `waitMs`, then get 503 with `nexus-limit: gatewayCapacity=N`.
 */
import { QosQueue, type Qos } from "./slice.ts";

interface Waiter {
  readonly resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Slots of shared capacity with QoS-ordered waiting. */
export class Capacity {
  private inflight = 0;
  private readonly queue: QosQueue<Waiter>;
  readonly max: number;
  readonly waitMs: number;
  constructor(max: number, queueMax: number, waitMs: number) {
    this.max = max;
    this.waitMs = waitMs;
    this.queue = new QosQueue<Waiter>(queueMax);
  }

  /** `true` when a slot was free; otherwise a promise of whether one came within the wait. */
  acquire(qos: Qos): true | Promise<boolean> {
    if (this.inflight < this.max) {
      this.inflight++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const w: Waiter = { resolve, timer: undefined };
      if (!this.queue.push(qos, w)) {
        resolve(false);
        return;
      }
      w.timer = setTimeout(() => {
        if (this.queue.remove(qos, w)) resolve(false);
      }, this.waitMs);
    });
  }

  /** Frees a slot, handing it to the next waiter in QoS order. */
  release(): void {
    const w = this.queue.shift();
    if (w === undefined) {
      if (this.inflight > 0) this.inflight--;
      return;
    }
    clearTimeout(w.timer);
    w.resolve(true);
  }

  /** Refuses every waiter (shutdown). */
  close(): void {
    for (let w = this.queue.shift(); w !== undefined; w = this.queue.shift()) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
  }

  /** Slots in use. */
  get used(): number {
    return this.inflight;
  }
}
