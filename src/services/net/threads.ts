/**
 * Serving threads: worker threads that run their own gateway on the same ports (SO_REUSEPORT,
 * so the kernel spreads connections), fed the route table by message. Key resolution, throttling
 * episodes, usage reports and faults go back to the main thread, which alone calls the injected
 * callbacks; counters are summed on demand.
 */
import { Worker } from "node:worker_threads";
import type { GatewayEvent, GatewayOptions, UsageReport } from "./gateway.ts";
import type { MeterSnapshot } from "./meter.ts";
import type { RouteTable } from "./route.ts";
import type { ThrottleEpisode } from "./slice.ts";

/** Messages to a serving thread. */
export type ToWorker =
  | { readonly type: "routes"; readonly table: RouteTable }
  | { readonly type: "meter"; readonly req: number }
  | { readonly type: "key"; readonly req: number; readonly key: Uint8Array | undefined }
  | { readonly type: "close" };

/** Messages from a serving thread. */
export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly message: string }
  | { readonly type: "closed" }
  | { readonly type: "resolveKey"; readonly req: number; readonly id: string }
  | { readonly type: "throttle"; readonly episode: ThrottleEpisode }
  | { readonly type: "usage"; readonly report: UsageReport }
  | { readonly type: "event"; readonly event: GatewayEvent }
  | { readonly type: "meter"; readonly req: number; readonly snapshot: MeterSnapshot };

/** What a serving thread starts from (structured-cloneable). */
export interface WorkerInit {
  readonly host: string | undefined;
  readonly port: number | undefined;
  readonly tls: { readonly port: number; readonly certDir: string } | undefined;
  readonly table: RouteTable;
  readonly regions: GatewayOptions["regions"];
  readonly session: GatewayOptions["session"];
  readonly limits: GatewayOptions["limits"];
  readonly usageIntervalMs: number | undefined;
  readonly share: number;
}

/** Where a thread's reports go in the main thread. */
export interface ThreadHooks {
  readonly throttle: (e: ThrottleEpisode) => void;
  readonly usage: (u: UsageReport) => void;
  readonly event: (e: GatewayEvent) => void;
  readonly meter: (req: number, s: MeterSnapshot) => void;
}

/** Starts one serving thread on the main thread's ports; resolves once it listens. */
export function startWorker(
  o: GatewayOptions,
  at: { readonly port: number | undefined; readonly tlsPort: number | undefined; readonly share: number; readonly table: RouteTable },
  hooks: ThreadHooks,
): Promise<Worker> {
  const init: WorkerInit = {
    host: o.host, port: at.port, tls: o.tls === undefined || at.tlsPort === undefined ? undefined : { port: at.tlsPort, certDir: o.tls.certDir },
    table: at.table, regions: o.regions, session: o.session, limits: o.limits, usageIntervalMs: o.usageIntervalMs, share: at.share,
  };
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./gateway-worker.ts", import.meta.url), { workerData: init });
    w.on("message", (m: FromWorker) => {
      switch (m.type) {
        case "ready":
          return resolve(w);
        case "failed":
          return reject(new Error(m.message));
        case "resolveKey":
          void Promise.resolve()
            .then(() => o.resolveKey(m.id))
            .catch(() => undefined)
            .then((key) => w.postMessage({ type: "key", req: m.req, key } satisfies ToWorker));
          return;
        case "throttle":
          return hooks.throttle(m.episode);
        case "usage":
          return hooks.usage(m.report);
        case "event":
          return hooks.event(m.event);
        case "meter":
          return hooks.meter(m.req, m.snapshot);
        case "closed":
          return;
        default: {
          const never: never = m;
          return never;
        }
      }
    });
    w.once("error", reject);
  });
}

/** Asks a thread to close (reporting what it holds), then ends it. */
export async function closeWorker(w: Worker): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3_000);
    w.on("message", (m: FromWorker) => {
      if (m.type === "closed") {
        clearTimeout(t);
        resolve();
      }
    });
    w.postMessage({ type: "close" } satisfies ToWorker);
  });
  await w.terminate();
}
