/** Reference for the gateway benchmark: the thinnest node:http + undici Pool proxy (no routing, no checks). */
import { createServer, type ServerResponse } from "node:http";
import { Pool, type Dispatcher } from "undici";

const pool = new Pool(`http://127.0.0.1:${process.argv[2]}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 });
const server = createServer((req, res: ServerResponse) => {
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart: () => undefined,
    onResponseStart: (_c, status, headers) => void res.writeHead(status, headers as Record<string, string>),
    onResponseData: (_c, chunk) => void res.write(chunk),
    onResponseEnd: () => void res.end(),
    onResponseError: () => void res.destroy(),
  };
  pool.dispatch({ path: req.url ?? "/", method: "GET", headers: { host: req.headers.host ?? "" } }, handler);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[3] ?? "0"), "127.0.0.1", () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === "object" && a ? a.port : 0 })}\n`);
});
