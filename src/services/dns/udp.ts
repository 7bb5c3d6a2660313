/**
 * The UDP serving loop shared by the main thread and the worker threads: fast path from the wire
 * cache, slow path through the responder (which then fills the cache), never a throw out of the
 * socket handler (hostile input is counted and dropped). Two transports: the batched addon
 * (native/udp_batch.c, recvmmsg/sendmmsg and one JavaScript call per batch, answers written in place)
 * where it builds, and node:dgram otherwise.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP } from "node:net";
import type { Meter } from "./meter.ts";
import { dnsErrors } from "./errors.ts";
import { udpBatch, udpBatchStatus } from "./native/udp-batch.ts";
import type { Responder } from "./responder.ts";
import type { WireCache } from "./wire-cache.ts";

/** UDP socket receive/send buffer asked of the kernel (bursts of small datagrams). */
export const UDP_SOCKET_BUFFER_OCTETS = 4 * 1024 * 1024;

/** Answers one datagram; returns the answer or undefined (dropped). */
export function answerDatagram(msg: Buffer, cache: WireCache, responder: Responder, meter: Meter): Buffer | undefined {
  return cache.answer(msg, false) ?? answerSlow(msg, cache, responder, meter);
}

/** The responder's answer to a datagram the wire cache does not hold (which then fills it). */
function answerSlow(msg: Buffer, cache: WireCache, responder: Responder, meter: Meter): Buffer | undefined {
  try {
    const h = responder.handle(msg, "udp");
    if (h.kind !== "reply") return undefined;
    if (h.lookup !== undefined) cache.remember(h.lookup.question, h.lookup.result);
    return h.message;
  } catch {
    meter.server.dropped++;
    return undefined;
  }
}

/** Binds a UDP socket on host:port (reusePort when several threads share the port). */
export function bindUdp(host: string, port: number, reusePort: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // Answers go to the sender's address, always an IP literal: resolve it synchronously instead of
    // through dns.lookup's process.nextTick on every send.
    const lookup = (address: string, _o: unknown, cb: (e: NodeJS.ErrnoException | null, a: string, f: number) => void): void => cb(null, address, isIP(address));
    const s = createSocket({ type: isIP(host) === 6 ? "udp6" : "udp4", reuseAddr: false, reusePort, lookup });
    const onError = (e: Error): void => {
      s.close();
      reject(e);
    };
    s.once("error", onError);
    s.bind(port, host, () => {
      s.off("error", onError);
      try {
        s.setRecvBufferSize(UDP_SOCKET_BUFFER_OCTETS);
        s.setSendBufferSize(UDP_SOCKET_BUFFER_OCTETS);
      } catch {
        // The kernel may cap the sizes (net.core.rmem_max); the defaults still work.
      }
      resolve(s);
    });
  });
}

/** Serves DNS on a bound UDP socket. */
export function serveUdp(sock: Socket, cache: WireCache, responder: Responder, meter: Meter): void {
  sock.on("message", (msg: Buffer, rinfo: RemoteInfo) => {
    const out = answerDatagram(msg, cache, responder, meter);
    if (out !== undefined) sock.send(out, rinfo.port, rinfo.address);
  });
  sock.on("error", () => {
    meter.server.dropped++;
  });
}

/** A bound UDP socket serving DNS, by either transport. */
export interface UdpEndpoint {
  readonly port: number;
  readonly transport: "batch" | "dgram";
  close(): Promise<void>;
}

/** Which UDP transport to serve with: "auto" takes the batched addon where it is available. */
export type UdpTransportChoice = "auto" | "batch" | "dgram";

/** Where and how to serve UDP. */
export interface UdpEndpointOptions {
  readonly host: string;
  readonly port: number;
  /** SO_REUSEPORT, for several serving threads on one port. */
  readonly reusePort: boolean;
  readonly transport: UdpTransportChoice;
}

/**
 * Binds host:port and serves DNS on it. Throws when the bind fails, and DNS_CONFIG_INVALID when
 * "batch" is asked for where the addon cannot be had.
 */
export async function serveUdpEndpoint(o: UdpEndpointOptions, cache: WireCache, responder: Responder, meter: Meter): Promise<UdpEndpoint> {
  const { host, port, reusePort } = o;
  const addon = o.transport === "dgram" ? undefined : udpBatch();
  if (addon === undefined && o.transport === "batch") throw dnsErrors.make("DNS_CONFIG_INVALID", `batched UDP is not available: ${udpBatchStatus().detail}`);
  if (addon === undefined) {
    const sock = await bindUdp(host, port, reusePort);
    serveUdp(sock, cache, responder, meter);
    let closing: Promise<void> | undefined;
    return { port: sock.address().port, transport: "dgram", close: () => (closing ??= new Promise<void>((r) => sock.close(() => r()))) };
  }
  const { SLOTS, IN_SLOT, OUT_SLOT } = addon;
  const inb = new Uint8Array(SLOTS * IN_SLOT);
  const out = new Uint8Array(SLOTS * OUT_SLOT);
  const meta = new Int32Array(SLOTS * 2);
  const onBatch = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const len = meta[2 * i] ?? -1;
      let answer = 0;
      if (len < 0) meter.server.dropped++; // larger than a slot (64 KiB): no DNS query is
      else {
        const from = i * IN_SLOT;
        const to = i * OUT_SLOT;
        const fast = cache.answerInto(inb, from, len, out, to, OUT_SLOT);
        if (fast >= 0) answer = fast;
        else {
          const slow = answerSlow(Buffer.from(inb.subarray(from, from + len)), cache, responder, meter);
          if (slow !== undefined && slow.length <= OUT_SLOT) {
            out.set(slow, to);
            answer = slow.length;
          }
        }
      }
      meta[2 * i + 1] = answer;
    }
  };
  const [handle, bound] = addon.open(host, port, reusePort, inb, out, meta, (n) => {
    try {
      onBatch(n);
    } catch {
      meter.server.dropped += n; // a fault in the fast path drops the batch, never the server
      meta.fill(0);
    }
  });
  let closed = false;
  return {
    port: bound,
    transport: "batch",
    close: () => {
      if (!closed) addon.close(handle);
      closed = true;
      return Promise.resolve();
    },
  };
}
