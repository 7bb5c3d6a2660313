/**
 * Mail metering: messages and bytes in and out per IMVU, plus refusals per error code. The SMTP
 * side only counts; the lead reports the counters to the ledger as signed usage commands.
 *
 * - in: a message stored into a mailbox of the IMVU (one per recipient mailbox, with the bytes
 *   stored), whether it came over SMTP in, from another IMVU's submission, or as a bounce.
 * - out: a message accepted on submission from an authenticated mailbox of the IMVU (one per
 *   message, whatever its recipient count, with the bytes received).
 */

/** One IMVU's counters. Byte counts are safe integers (2^53 bytes is 8 PiB). */
export interface ImvuMailCounters {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
}

/** The counters of a running SMTP service. */
export class MailCounters {
  readonly #imvus = new Map<string, ImvuMailCounters>();
  readonly #refusals = new Map<string, number>();

  #of(imvu: string): ImvuMailCounters {
    let c = this.#imvus.get(imvu);
    if (!c) {
      c = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 };
      this.#imvus.set(imvu, c);
    }
    return c;
  }

  /** Counts one stored copy of `bytes` for `imvu`. */
  addIn(imvu: string, bytes: number): void {
    const c = this.#of(imvu);
    c.messagesIn += 1;
    c.bytesIn += bytes;
  }

  /** Counts one submitted message of `bytes` from `imvu`. */
  addOut(imvu: string, bytes: number): void {
    const c = this.#of(imvu);
    c.messagesOut += 1;
    c.bytesOut += bytes;
  }

  /** Counts a refusal answered with `code`. */
  addRefusal(code: string): void {
    this.#refusals.set(code, (this.#refusals.get(code) ?? 0) + 1);
  }

  /** A copy of the per-IMVU counters. */
  snapshot(): Record<string, ImvuMailCounters> {
    const out: Record<string, ImvuMailCounters> = {};
    for (const [imvu, c] of this.#imvus) out[imvu] = { ...c };
    return out;
  }

  /** A copy of the refusal counts per error code. */
  refusals(): Record<string, number> {
    return Object.fromEntries(this.#refusals);
  }
}
