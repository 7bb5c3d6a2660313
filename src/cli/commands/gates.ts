/** `nexus gates`: the constitution's gate table (gate → the command types it guards). */
import type { Command } from "commander";
import { CATALOGUE, CONSTITUTION_VERSION, GATE_NAMES, constitutionHash, gatesFor, type GateNumber } from "../../core/policy/constitution.ts";
import type { CommandType } from "../../core/policy/schemas.ts";
import { action, emit } from "../output.ts";

/** The table as data: each gate with its name and the command types it applies to. */
export function gateTable(): { gate: number; name: string; guards: CommandType[] }[] {
  const types = Object.keys(CATALOGUE) as CommandType[];
  return (Object.keys(GATE_NAMES).map(Number) as GateNumber[]).map((g) => ({
    gate: g,
    name: GATE_NAMES[g],
    guards: types.filter((t) => gatesFor(t).includes(g)),
  }));
}

/** The command catalogue as a Markdown table (docs/constitution.md embeds it; a test keeps them equal). */
export function catalogueMarkdown(): string {
  const rows = (Object.keys(CATALOGUE) as CommandType[]).map((t) => {
    const e = CATALOGUE[t];
    const marks = [e.emergency ? "emergency class" : "", e.redirects ? "redirects traffic" : ""].filter((m) => m !== "").join(", ");
    return `| \`${t}\` | ${gatesFor(t).join(", ")} | ${e.actors.join(", ")} | ${e.imvu} | ${marks} |`;
  });
  return ["| command type | gates | may be authored by | IMVU | notes |", "|---|---|---|---|---|", ...rows].join("\n");
}

/** Adds `gates` to the program. */
export function register(program: Command): void {
  program
    .command("gates")
    .description("print the 17 gates of the constitution and the command types each guards")
    .option("--json", "print JSON")
    .option("--by-command", "list each command type with its gates instead")
    .option("--markdown", "print the command catalogue as the Markdown table of docs/constitution.md")
    .action(
      action((opts: { json?: boolean; byCommand?: boolean; markdown?: boolean }) => {
        if (opts.markdown) {
          process.stdout.write(`${catalogueMarkdown()}\n`);
          return;
        }
        const header = `constitution v${CONSTITUTION_VERSION} sha256:${constitutionHash()}`;
        if (opts.byCommand) {
          const rows = (Object.keys(CATALOGUE) as CommandType[]).map((t) => ({ type: t, gates: gatesFor(t), actors: CATALOGUE[t].actors }));
          emit({ constitution: header, commands: rows }, opts.json, (v) =>
            [v.constitution, ...v.commands.map((r) => `${r.type.padEnd(24)} gates ${r.gates.join(",").padEnd(28)} by ${r.actors.join(", ")}`)].join("\n"),
          );
          return;
        }
        emit({ constitution: header, gates: gateTable() }, opts.json, (v) =>
          [v.constitution, ...v.gates.map((g) => `${String(g.gate).padStart(2)}  ${g.name.padEnd(26)} ${g.guards.join(", ") || "(no command type yet)"}`)].join("\n"),
        );
      }),
    );
}
