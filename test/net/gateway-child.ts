/**
 * A second gateway process for the session-mobility test. It shares nothing with the test's
 * gateway but what a real one shares through the ledger: the route table (as JSON) and the
 * gateways' session key. Prints `{"port":N}` once listening; exits when stdin closes.
 */
import { ed25519FromSeed } from "../../src/core/crypto/ed25519.ts";
import { fromHex } from "../../src/core/crypto/bytes.ts";
import { buildRouteTable, startGateway, type RouteTableInput } from "../../src/services/net/index.ts";

interface ChildConfig {
  readonly table: RouteTableInput;
  readonly sessionSeedHex: string;
  readonly keyId: string;
  readonly identities: Record<string, string>;
}

const cfg = JSON.parse(process.env.NEXUS_NET_CHILD ?? "{}") as ChildConfig;
const keys = new Map(Object.entries(cfg.identities).map(([id, hex]) => [id, fromHex(hex) ?? new Uint8Array()]));
const pair = ed25519FromSeed(fromHex(cfg.sessionSeedHex) ?? new Uint8Array());
const gw = await startGateway({
  port: 0,
  routes: buildRouteTable(cfg.table),
  resolveKey: (id) => keys.get(id),
  session: { signer: { keyId: cfg.keyId, ...pair } },
});
process.stdout.write(`${JSON.stringify({ port: gw.port, pid: process.pid })}\n`);
process.stdin.resume();
process.stdin.on("end", () => void gw.close().then(() => process.exit(0)));
