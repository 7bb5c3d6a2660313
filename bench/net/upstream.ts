/** The benchmark's upstream: a plain node:http server answering the same small response to every request. */
import { createServer } from "node:http";

const port = Number(process.argv[2] ?? "0");
const BODY = Buffer.from("hello from the upstream\n");
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": String(BODY.length) });
  res.end(BODY);
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === "object" && a ? a.port : 0 })}\n`);
});
