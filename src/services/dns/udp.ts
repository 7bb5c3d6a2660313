/**
 * The UDP serving loop shared by the main thread and the worker threads: fast path from the wire
 * cache, slow path through the responder (which then fills the cache), never a throw out of the
 * socket handler (hostile input is counted and dropped).
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP } from "node:net";
import type { Meter } from "./meter.ts";
import type { Responder } from "./responder.ts";
import type { WireCache } from "./wire-cache.ts";

/** UDP socket receive/send buffer asked of the kernel (bursts of small datagrams). */
export const UDP_SOCKET_BUFFER_OCTETS = 4 * 1024 * 1024;

/** Answers one datagram; returns the answer or undefined (dropped). */
export function answerDatagram(msg: Buffer, cache: WireCache, responder: Responder, meter: Meter): Buffer | undefined {
  const fast = cache.answer(msg, false);
  if (fast !== undefined) return fast;
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
