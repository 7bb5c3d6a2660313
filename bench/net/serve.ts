/** The benchmark's gateway process: one public route to the upstream; prints {"port"} when listening. */
import { generateEd25519 } from "../../src/core/crypto/ed25519.ts";
import { buildRouteTable, startGateway } from "../../src/services/net/index.ts";

const upstreamPort = Number(process.argv[2]);
const port = Number(process.argv[3] ?? "0");
const workers = Number(process.argv[4] ?? "1");
const routes = buildRouteTable({
  version: 1,
  routes: [{ id: "bench", imvu: "bench", host: "bench.nexus.test", kind: "public", upstream: { host: "127.0.0.1", port: upstreamPort } }],
  slices: { bench: { bandwidthBytesPerSec: "100000000000", requestsPerSec: 1_000_000, connections: 1_000_000, qos: "gold" } },
});
const gw = await startGateway({
  port, routes, workers,
  resolveKey: () => undefined,
  session: { signer: { keyId: "bench", ...generateEd25519() } },
  limits: { upstreamConnectionsMax: 64, keepAliveTimeoutMs: 60_000 },
});
process.stdout.write(`${JSON.stringify({ port: gw.port })}\n`);
process.on("SIGTERM", () => void gw.close().then(() => process.exit(0)));
