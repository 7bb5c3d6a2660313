/**
 * The `nexus` command. Every subcommand group lives in src/cli/commands/<group>.ts and exports
 * `register(program)`; this file only assembles them.
 */
import { Command, CommanderError } from "commander";
import { register as registerDev } from "./commands/dev.ts";
import { register as registerGates } from "./commands/gates.ts";
import { register as registerId } from "./commands/id.ts";
import { register as registerLedger } from "./commands/ledger.ts";
import { register as registerTlog } from "./commands/tlog.ts";
import { register as registerNote } from "./commands/note.ts";
import { register as registerUp } from "./commands/up.ts";
import { register as registerImvu, registerIdVerbs } from "./commands/imvu.ts";
import { register as registerExit } from "./commands/exit.ts";
import { register as registerOperator } from "./commands/operator.ts";
import { register as registerCompute } from "./commands/compute.ts";
import { register as registerNet } from "./commands/net.ts";
import { register as registerMail } from "./commands/mail.ts";
import { register as registerDns } from "./commands/dns.ts";
import { register as registerDomain } from "./commands/domain.ts";
import { register as registerAudit } from "./commands/audit.ts";

const program = new Command();
program
  .name("nexus")
  .description("Nexus COS: verifiable creator tenants (IMVUs) with DNS, mail, compute and network")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

registerUp(program);
registerDev(program);
registerGates(program);
registerId(program);
registerLedger(program);
registerTlog(program);
registerNote(program);
registerIdVerbs(program);
registerImvu(program);
registerExit(program);
registerOperator(program);
registerCompute(program);
registerNet(program);
registerMail(program);
registerDns(program);
registerDomain(program);
registerAudit(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Usage errors (unknown flag, missing argument) are bad input: exit 2; --help/--version exit 0.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    throw e;
  }
}
