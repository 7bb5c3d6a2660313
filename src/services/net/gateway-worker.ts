/** The body of a serving thread (threads.ts): a gateway on the shared ports, reporting to the main thread. */
import { parentPort, workerData } from "node:worker_threads";
import { startGateway, type Gateway } from "./gateway.ts";
import type { FromWorker, ToWorker, WorkerInit } from "./threads.ts";

const init = workerData as WorkerInit;
const port = parentPort;
if (port === null) throw new Error("gateway-worker runs as a worker thread");
const post = (m: FromWorker): void => port.postMessage(m);
const keyWaits = new Map<number, (k: Uint8Array | undefined) => void>();
let keyReq = 0;

let gw: Gateway | undefined;
try {
  gw = await startGateway({
    ...(init.host === undefined ? {} : { host: init.host }),
    port: init.port ?? null,
    ...(init.tls === undefined ? {} : { tls: init.tls }),
    routes: init.table,
    ...(init.regions === undefined ? {} : { regions: init.regions }),
    session: init.session,
    ...(init.limits === undefined ? {} : { limits: init.limits }),
    ...(init.usageIntervalMs === undefined ? {} : { usageIntervalMs: init.usageIntervalMs }),
    shared: { share: init.share },
    resolveKey: (id) =>
      new Promise((resolve) => {
        const req = ++keyReq;
        keyWaits.set(req, resolve);
        post({ type: "resolveKey", req, id });
      }),
    onThrottle: (episode) => post({ type: "throttle", episode }),
    onUsage: (report) => post({ type: "usage", report }),
    onEvent: (event) => post({ type: "event", event }),
  });
  post({ type: "ready" });
} catch (e) {
  post({ type: "failed", message: e instanceof Error ? e.message : String(e) });
}

port.on("message", (m: ToWorker) => {
  switch (m.type) {
    case "routes":
      gw?.setRoutes(m.table);
      return;
    case "key":
      keyWaits.get(m.req)?.(m.key);
      keyWaits.delete(m.req);
      return;
    case "meter":
      void gw?.meter().then((snapshot) => post({ type: "meter", req: m.req, snapshot }));
      return;
    case "close":
      void (gw?.close() ?? Promise.resolve()).then(() => post({ type: "closed" }));
      return;
    default: {
      const never: never = m;
      return never;
    }
  }
});
