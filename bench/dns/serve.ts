/**
 * The Nexus DNS server over the benchmark's generated zone set (bench/dns/zones.ts), for run.ts.
 *   node bench/dns/serve.ts --port P --zones N --workers W [--udp auto|batch|dgram]
 * Prints "ready <port>" once serving; stops on SIGTERM.
 */
import { ZoneStore } from "../../src/services/dns/store.ts";
import { startDnsServer } from "../../src/services/dns/server.ts";
import { benchZone } from "./zones.ts";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const store = new ZoneStore();
for (let i = 0; i < flag("--zones", 1000); i++) store.put(benchZone(i));
const udpAt = args.indexOf("--udp");
const udp = udpAt >= 0 ? args[udpAt + 1] : "batch";
if (udp !== "auto" && udp !== "batch" && udp !== "dgram") throw new Error("--udp is auto, batch or dgram");
const server = await startDnsServer({ host: "127.0.0.1", port: flag("--port", 0), zones: store, workers: flag("--workers", 1), udp });
process.stdout.write(`ready ${server.port}\n`);
process.on("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
