/**
 * The `nexus` command. Every subcommand group lives in src/cli/commands/<group>.ts and exports
 * `register(program)`; this file only assembles them, importing only the asked group's modules.
 */
import { Command, CommanderError } from "commander";

const program = new Command();
program
  .name("nexus")
  .description("Nexus COS: verifiable creator tenants (IMVUs) with DNS, mail, compute and network")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

type Registrar = (p: Command) => void;
/**
 * The modules of each command group, imported only when the group is asked for: one start of the
 * CLI reads (and type-strips) one group's code, not the whole platform's. Where a module adds
 * verbs to another's group, both are listed, the group's own first.
 */
const imvuGroup = async (): Promise<Registrar[]> => {
  const [imvu, exit] = await Promise.all([import("./commands/imvu.ts"), import("./commands/exit.ts")]);
  return [imvu.register, exit.register];
};
const operatorGroup = async (): Promise<Registrar[]> => [(await import("./commands/operator.ts")).register];
const GROUPS: Readonly<Record<string, () => Promise<Registrar[]>>> = {
  up: async () => [(await import("./commands/up.ts")).register],
  test: async () => [(await import("./commands/dev.ts")).register],
  gates: async () => [(await import("./commands/gates.ts")).register],
  id: async () => {
    const [id, imvu] = await Promise.all([import("./commands/id.ts"), import("./commands/imvu.ts")]);
    return [id.register, imvu.registerIdVerbs];
  },
  ledger: async () => [(await import("./commands/ledger.ts")).register],
  tlog: async () => [(await import("./commands/tlog.ts")).register],
  note: async () => [(await import("./commands/note.ts")).register],
  imvu: imvuGroup,
  consent: imvuGroup,
  delegate: imvuGroup,
  revenue: operatorGroup,
  admin: operatorGroup,
  compute: async () => [(await import("./commands/compute.ts")).register],
  net: async () => [(await import("./commands/net.ts")).register],
  mail: async () => [(await import("./commands/mail.ts")).register],
  dns: async () => [(await import("./commands/dns.ts")).register],
  domain: async () => [(await import("./commands/domain.ts")).register],
  audit: async () => [(await import("./commands/audit.ts")).register],
};

// The group is the first word; without one (--help, --version) or for an unknown word, every
// group is loaded, in this order, so the help and the "unknown command" answer list them all.
const word = process.argv.slice(2).find((a) => !a.startsWith("-"));
const one = word !== undefined && Object.hasOwn(GROUPS, word) ? GROUPS[word] : undefined;
const registrars: Registrar[] = [];
if (one) registrars.push(...(await one()));
else for (const g of Object.values(GROUPS)) registrars.push(...(await g()));
const done = new Set<Registrar>();
for (const r of registrars) {
  if (done.has(r)) continue;
  done.add(r);
  r(program);
}

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
