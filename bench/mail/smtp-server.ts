/**
 * The Nexus SMTP-in server the mail benchmark drives (a separate process, so it can be pinned to
 * a core and killed with SIGKILL). One mailbox, sink@bench.test, in the data directory given as
 * argv[2]; DNS answered from memory (no records: SPF/DMARC "none"), as a deployment with a warm
 * resolver cache sees it. Prints `{"port":N,"pid":N}` once listening.
 */
import { StaticMailDirectory, startMailSmtp, staticResolver } from "../../src/services/mail/smtp/index.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: smtp-server.ts DATA_DIR");
const directory = new StaticMailDirectory(dataDir);
directory.addDomain("bench", "bench.test");
directory.addMailbox({ imvu: "bench", identity: "id-bench", address: "sink@bench.test", quotaBytes: Number.MAX_SAFE_INTEGER });
const smtp = await startMailSmtp({
  hostname: "mx.nexus.test",
  inboundPort: 0,
  submissionPort: 0,
  directory,
  dataDir,
  resolver: staticResolver(new Map()),
  limits: { connectionsPerIpMax: 64 },
  log: () => undefined,
});
process.stdout.write(`${JSON.stringify({ port: smtp.inboundPort, pid: process.pid })}\n`);
process.on("SIGTERM", () => void smtp.close().then(() => process.exit(0)));
