/**
 * A child process for crash tests: SMTP in over a one-mailbox directory (sink@load.test) in the
 * data directory given as argv[2]; prints `{"inbound":port,"submission":port}` once listening.
 */
import { StaticMailDirectory, startMailSmtp, staticResolver } from "../../src/services/mail/smtp/index.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: support-smtp-server.ts DATA_DIR");
const directory = new StaticMailDirectory(dataDir);
directory.addDomain("load", "load.test");
directory.addMailbox({ imvu: "load", identity: "id-load", address: "sink@load.test", quotaBytes: Number.MAX_SAFE_INTEGER });
const smtp = await startMailSmtp({
  hostname: "mx.nexus.test",
  inboundPort: 0,
  submissionPort: 0,
  directory,
  dataDir,
  resolver: staticResolver(new Map()),
  log: () => undefined,
});
process.stdout.write(`${JSON.stringify({ inbound: smtp.inboundPort, submission: smtp.submissionPort })}\n`);
process.on("SIGTERM", () => void smtp.close().then(() => process.exit(0)));
