/**
 * A UDP serving thread: its own copy of the zones, wire cache, responder and a SO_REUSEPORT socket
 * on the server's port, so the kernel spreads datagrams over the threads (one core each). The main
 * thread sends it every zone change; it answers counter requests.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { ZoneSet } from "./lookup.ts";
import { Meter } from "./meter.ts";
import type { Name } from "./name.ts";
import { Responder } from "./responder.ts";
import { keyring, type TsigKeyConfig } from "./tsig.ts";
import { serveUdpEndpoint, type UdpEndpoint } from "./udp.ts";
import { WireCache } from "./wire-cache.ts";
import { buildZone, type Zone, type ZoneInput } from "./zone.ts";

/** Messages from the main thread. */
export type ToWorker =
  | { readonly type: "put"; readonly zone: ZoneInput }
  | { readonly type: "remove"; readonly origin: Name }
  | { readonly type: "meter"; readonly req: number }
  | { readonly type: "close" };

/** What a worker starts with. */
export interface WorkerInit {
  readonly host: string;
  readonly port: number;
  /** The main thread's transport, so every thread serves the same way. */
  readonly transport: "batch" | "dgram";
  readonly keys: readonly TsigKeyConfig[];
  readonly zones: readonly ZoneInput[];
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const init = workerData as WorkerInit;
  const zones = new Map<Name, Zone>();
  const set: ZoneSet = { get: (o) => zones.get(o) };
  const meter = new Meter();
  const cache = new WireCache(set, meter);
  const responder = new Responder({ zones: set, keys: keyring(init.keys), meter });
  for (const z of init.zones) {
    const built = buildZone(z);
    zones.set(built.origin, built);
  }
  cache.rebuildAll(zones.values());
  let sock: UdpEndpoint;
  try {
    sock = await serveUdpEndpoint({ host: init.host, port: init.port, reusePort: true, transport: init.transport }, cache, responder, meter);
  } catch (e) {
    port.postMessage({ type: "error", message: e instanceof Error ? e.message : String(e) });
    return;
  }
  port.on("message", (m: ToWorker) => {
    switch (m.type) {
      case "put": {
        const z = buildZone(m.zone);
        zones.set(z.origin, z);
        cache.zoneChanged(z.origin);
        return;
      }
      case "remove":
        zones.delete(m.origin);
        cache.zoneChanged(m.origin);
        return;
      case "meter":
        cache.flush();
        port.postMessage({ type: "meter", req: m.req, snapshot: meter.snapshot() });
        return;
      case "close":
        void sock.close().then(() => port.close());
        return;
    }
  });
  port.postMessage({ type: "ready" });
}

void main();
