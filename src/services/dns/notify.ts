/**
 * NOTIFY sender (RFC 1996): on every change of a zone, tell each configured secondary, over UDP,
 * with the new SOA in the answer section (§3.7), TSIG-signed when a key is named, retrying with
 * doubling intervals until the secondary acknowledges (§3.6) or the retries run out. A newer
 * change of the same zone replaces a pending notification to the same secondary.
 */
import { createSocket, type Socket } from "node:dgram";
import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import { dnsErrors } from "./errors.ts";
import { FLAG, OPCODE, writeHeader, writeRecord } from "./message.ts";
import { toAbsoluteName, type Name } from "./name.ts";
import { CLASS, TYPE } from "./rdata.ts";
import { nowSeconds, signMessage, type TsigKey } from "./tsig.ts";
import { WireWriter } from "./writer.ts";
import type { Zone } from "./zone.ts";

/** Sends of one NOTIFY, at most (the first plus retries). */
export const NOTIFY_ATTEMPTS_MAX = 6;
/** First retry interval; each later one doubles (RFC 1996 §3.6 leaves the schedule to the primary). */
export const NOTIFY_RETRY_MS = 1_000;

/** A secondary to notify. */
export interface NotifyTarget {
  readonly host: string;
  readonly port: number;
  /** Name of the TSIG key to sign with (one of the server's keys). */
  readonly key?: string;
}

/** What happened to one notification. */
export interface NotifyOutcome {
  readonly zone: Name;
  readonly serial: number;
  readonly target: string;
  readonly outcome: "acknowledged" | "rejected" | "gave-up";
  readonly attempts: number;
  readonly rcode?: number;
}

interface Pending {
  readonly id: number;
  readonly zone: Name;
  readonly serial: number;
  readonly target: NotifyTarget;
  readonly message: Buffer;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
}

/** Builds a NOTIFY message for `zone` (RFC 1996 §3.3-3.7), signed with `key` when given. */
export function notifyMessage(zone: Zone, id: number, key: TsigKey | undefined, nowS: number): Buffer {
  const w = new WireWriter(4096);
  writeHeader(w, id, (OPCODE.NOTIFY << 11) | FLAG.AA, [1, 1, 0, 0]);
  w.name(zone.origin, true);
  w.u16(TYPE.SOA);
  w.u16(CLASS.IN);
  writeRecord(w, { name: zone.origin, ttl: zone.soa.ttl, data: zone.soa.data });
  const unsigned = w.finish();
  return key === undefined ? unsigned : signMessage(unsigned, key, { timeSigned: nowS }).message;
}

/** Notifies secondaries of zone changes. */
export class Notifier {
  private readonly targets: readonly NotifyTarget[];
  private readonly keys: ReadonlyMap<Name, TsigKey>;
  private readonly onOutcome: (o: NotifyOutcome) => void;
  private readonly retryMs: number;
  private readonly pending = new Map<string, Pending>();
  private socket4: Socket | undefined;
  private socket6: Socket | undefined;
  private closed = false;

  constructor(o: {
    targets: readonly NotifyTarget[];
    keys: ReadonlyMap<Name, TsigKey>;
    onOutcome?: (o: NotifyOutcome) => void;
    retryMs?: number;
  }) {
    for (const t of o.targets) {
      if (isIP(t.host) === 0 || !Number.isInteger(t.port) || t.port < 1 || t.port > 65_535) {
        throw dnsErrors.make("DNS_CONFIG_INVALID", `notify target ${t.host}:${t.port} must be an IP address and port`);
      }
      if (t.key !== undefined && !o.keys.has(toAbsoluteName(t.key))) {
        throw dnsErrors.make("DNS_CONFIG_INVALID", `notify target ${t.host}:${t.port} names unknown TSIG key ${t.key}`);
      }
    }
    this.targets = o.targets;
    this.keys = o.keys;
    this.onOutcome = o.onOutcome ?? (() => {});
    this.retryMs = o.retryMs ?? NOTIFY_RETRY_MS;
  }

  private socketFor(host: string): Socket {
    const v6 = isIP(host) === 6;
    let s = v6 ? this.socket6 : this.socket4;
    if (s === undefined) {
      s = createSocket(v6 ? "udp6" : "udp4");
      s.on("message", (msg, rinfo) => this.onReply(msg, `${rinfo.address}:${rinfo.port}`));
      s.on("error", () => {});
      s.unref();
      if (v6) this.socket6 = s;
      else this.socket4 = s;
    }
    return s;
  }

  /** Notifies every target that `zone` changed. */
  notify(zone: Zone): void {
    if (this.closed) return;
    for (const t of this.targets) {
      const target = `${t.host}:${t.port}`;
      const k = `${zone.origin} ${target}`;
      const old = this.pending.get(k);
      if (old?.timer !== undefined) clearTimeout(old.timer);
      const key = t.key === undefined ? undefined : this.keys.get(toAbsoluteName(t.key));
      const id = randomInt(0, 65_536);
      const p: Pending = { id, zone: zone.origin, serial: zone.soa.data.serial, target: t, message: notifyMessage(zone, id, key, nowSeconds()), attempts: 0, timer: undefined };
      this.pending.set(k, p);
      this.send(k, p);
    }
  }

  private send(k: string, p: Pending): void {
    if (this.closed || this.pending.get(k) !== p) return;
    if (p.attempts >= NOTIFY_ATTEMPTS_MAX) {
      this.pending.delete(k);
      this.onOutcome({ zone: p.zone, serial: p.serial, target: `${p.target.host}:${p.target.port}`, outcome: "gave-up", attempts: p.attempts });
      return;
    }
    p.attempts++;
    this.socketFor(p.target.host).send(p.message, p.target.port, p.target.host, () => {});
    p.timer = setTimeout(() => this.send(k, p), this.retryMs * 2 ** (p.attempts - 1));
    p.timer.unref();
  }

  private onReply(msg: Buffer, from: string): void {
    if (msg.length < 12) return;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    if ((flags & FLAG.QR) === 0 || ((flags >> 11) & 0xf) !== OPCODE.NOTIFY) return;
    for (const [k, p] of this.pending) {
      if (p.id !== id || `${p.target.host}:${p.target.port}` !== from) continue;
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.pending.delete(k);
      const rcode = flags & 0xf;
      this.onOutcome({ zone: p.zone, serial: p.serial, target: from, outcome: rcode === 0 ? "acknowledged" : "rejected", attempts: p.attempts, rcode });
      return;
    }
  }

  /** Stops retrying and closes the sockets. */
  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) if (p.timer !== undefined) clearTimeout(p.timer);
    this.pending.clear();
    this.socket4?.close();
    this.socket6?.close();
  }
}
