/**
 * The IMAP server as a child process for bench/mail/imap-fetch.ts (so it can be pinned to one CPU
 * and its CPU time read from /proc): serves the Maildir in argv[2] to user "bench", password
 * "bench", on a free loopback port that it prints as `PORT <n>`.
 */
import { startImapServer } from "../../src/services/mail/imap/index.ts";

const maildir = process.argv[2];
if (maildir === undefined) throw new Error("usage: imap-server.ts <maildir>");
const srv = await startImapServer({
  host: "127.0.0.1",
  port: 0,
  tls: false,
  autoCreate: [],
  auth: async (u, p) => (u === "bench" && p === "bench" ? { mailboxRoot: maildir, user: u } : undefined),
});
console.log(`PORT ${srv.port}`);
process.on("SIGTERM", () => void srv.close().then(() => process.exit(0)));
