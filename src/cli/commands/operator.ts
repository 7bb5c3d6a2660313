/**
 * Operator commands signed by the platform's own identities, on the machine that holds the
 * installation: `nexus revenue record|refund|payout` (signed by the revenue-source service
 * identity: money never enters from a creator) and `nexus admin add|remove` (signed by the
 * platform identity). Both keyrings live in $NEXUS_HOME/keys (mode 0700), never in a creator's.
 * The API still gates them like any other command, and the receipt is verified here.
 */
import type { Command } from "commander";
import { join } from "node:path";
import { commonErrors } from "../../core/common-errors.ts";
import { loadIdentity } from "../../core/identity/index.ts";
import { parseAmount } from "../../core/handshake/currency.ts";
import { signCommand, type CommandDraft } from "../../core/pipeline/sign.ts";
import { PLATFORM_IDENTITY_NAME, serviceIdentityName, signerOf } from "../../platform/platform.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { verifyProvenStatement } from "../../core/handshake/proven-statement.ts";
import { apiBase, apiGet, clientErrors, submitSigned, trustedVerifierKey } from "../client.ts";
import { action, emit } from "../output.ts";
import { dataDir } from "./ledger.ts";
import { apiFlags, printReceipt, type ApiFlags } from "./imvu.ts";

/** The platform keyring of the local installation. */
export function platformKeyring(): string {
  return join(dataDir(), "keys");
}

async function submitAs(name: string, what: string, draft: CommandDraft, f: ApiFlags): Promise<void> {
  const signer = signerOf(loadIdentity(platformKeyring(), name));
  const r = await submitSigned(signCommand(draft, signer).json, { api: f.api });
  printReceipt(what, r, f.json);
}

function currency(c: string): string {
  const up = c.toUpperCase();
  if (!/^[A-Z]{3}$/.test(up)) throw commonErrors.make("INPUT_INVALID", `--currency ${c}: an ISO 4217 code such as EUR`, { field: "currency" });
  return up;
}

function imvuName(n: string): string {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(n)) throw commonErrors.make("INPUT_INVALID", `--imvu ${n}: an IMVU name`, { field: "imvu" });
  return n;
}

interface MoneyFlags extends ApiFlags {
  readonly imvu: string;
  readonly amount: string;
  readonly currency: string;
  readonly eventId: string;
  readonly source?: string;
  readonly class?: string;
  readonly refOf?: string;
}

/** Adds `revenue record|refund|payout` and `admin add|remove`. */
export function register(program: Command): void {
  const revenue = program.commands.find((c) => c.name() === "revenue") ?? program.command("revenue").description("revenue, refunds, payouts and statements (the 55/45 and 80/20 splits)");
  const money = (c: Command): Command =>
    apiFlags(c)
      .requiredOption("--imvu <name>", "the unit")
      .requiredOption("--amount <decimal>", "amount in the currency's units, e.g. 12.34 (parsed exactly)")
      .requiredOption("--currency <ISO4217>", "currency, e.g. EUR, JPY, KWD")
      .requiredOption("--event-id <id>", "the processor's event id (idempotency key)");
  money(revenue.command("record"))
    .description("record revenue from a platform revenue source; it is split in the same transaction")
    .requiredOption("--source <name>", "the revenue source, e.g. stripe or checkout")
    .option("--class <class>", "imvu or mini-platform", "imvu")
    .action(
      action(async (f: MoneyFlags) => {
        const cur = currency(f.currency);
        const body = { class: f.class ?? "imvu", currency: cur, amount: parseAmount(f.amount, cur).toString(), source: f.source ?? "", eventId: f.eventId };
        await submitAs(serviceIdentityName("revenue-source"), `revenue ${f.amount} ${cur}`, { type: "revenue.record", imvu: imvuName(f.imvu), body }, f);
      }),
    );
  money(revenue.command("refund"))
    .description("refund (part of) a recorded revenue event")
    .requiredOption("--ref-of <event-id>", "the revenue event refunded")
    .requiredOption("--source <name>", "the revenue source")
    .action(
      action(async (f: MoneyFlags) => {
        const cur = currency(f.currency);
        const body = { currency: cur, amount: parseAmount(f.amount, cur).toString(), refOf: f.refOf ?? "", eventId: f.eventId, source: f.source ?? "" };
        await submitAs(serviceIdentityName("revenue-source"), `refund ${f.amount} ${cur}`, { type: "revenue.refund", imvu: imvuName(f.imvu), body }, f);
      }),
    );
  money(revenue.command("payout"))
    .description("pay out to the creator (never above the accrued balance)")
    .action(
      action(async (f: MoneyFlags) => {
        const cur = currency(f.currency);
        const body = { currency: cur, amount: parseAmount(f.amount, cur).toString(), eventId: f.eventId };
        await submitAs(serviceIdentityName("revenue-source"), `payout ${f.amount} ${cur}`, { type: "revenue.payout", imvu: imvuName(f.imvu), body }, f);
      }),
    );

  apiFlags(revenue.command("statement"))
    .description("the IMVU's statement for the days --from..--to (UTC, inclusive), verified here before it is printed or saved")
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--from <YYYY-MM-DD>", "first day")
    .requiredOption("--to <YYYY-MM-DD>", "last day")
    .option("--out <file>", "write the proven statement (for `revenue verify-statement`)")
    .action(
      action(async (f: ApiFlags & { imvu: string; from: string; to: string; out?: string }) => {
        for (const [flag, v] of [["--from", f.from], ["--to", f.to]] as const) {
          if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw commonErrors.make("INPUT_INVALID", `${flag} ${v}: a day like 2026-12-01`, { field: flag });
        }
        const q = `?from=${f.from}&to=${f.to}`;
        const body = await apiGet<Record<string, unknown>>(`/v1/imvus/${imvuName(f.imvu)}/revenue/statement${q}`, { identity: f.as, api: f.api });
        const proven: Record<string, unknown> & { verifierKey: string } = { ...body, verifierKey: await trustedVerifierKey(apiBase({ api: f.api })) };
        const check = verifyProvenStatement(proven, proven.verifierKey);
        if (!check.ok) throw clientErrorsStatement(check.problems);
        if (f.out !== undefined) writeFileSync(f.out, `${JSON.stringify(proven, null, 2)}\n`);
        emit(proven, f.json, () => statementText(proven.statement, check.entries, f.out));
      }),
    );
  revenue
    .command("verify-statement")
    .argument("<file>", "a proven statement written by `revenue statement --out`")
    .description("offline: recompute every figure from the entries and check each entry's proof to the signed checkpoint (exit 0 valid, 1 invalid)")
    .option("--verifier-key <vkey>", "the platform's checkpoint verifier key (default: the one in the file)")
    .option("--json", "print JSON")
    .action(
      action((file: string, f: { verifierKey?: string; json?: boolean }) => {
        let input: unknown;
        try {
          input = JSON.parse(readFileSync(file, "utf8"));
        } catch (e) {
          throw commonErrors.make("INPUT_INVALID", `${file}: ${e instanceof Error ? e.message : String(e)}`, { field: "file" });
        }
        const key = f.verifierKey ?? (typeof input === "object" && input !== null ? (input as { verifierKey?: unknown }).verifierKey : undefined);
        if (typeof key !== "string") throw commonErrors.make("INPUT_INVALID", "no verifier key: pass --verifier-key", { field: "verifier-key" });
        const check = verifyProvenStatement(input, key);
        emit(check, f.json, (v) => (v.ok ? `statement valid: ${v.entries} entries recomputed and proven` : `STATEMENT INVALID:\n${v.problems.join("\n")}`));
        if (!check.ok) process.exitCode = 1;
      }),
    );

  const admin = program.command("admin").description("platform administrators (signed by the platform identity of $NEXUS_HOME)");
  for (const [verb, type] of [
    ["add", "admin.add"],
    ["remove", "admin.remove"],
  ] as const) {
    apiFlags(admin.command(verb).argument("<identity-id>"))
      .description(`${verb} an admin (admins act through the same gates, attributed to their own key)`)
      .action(action(async (id: string, f: ApiFlags) => submitAs(PLATFORM_IDENTITY_NAME, `admin ${verb} ${id}`, { type, body: { identity: id } }, f)));
  }
}

function clientErrorsStatement(problems: readonly string[]): Error {
  return clientErrors.make("CLIENT_RECEIPT_INVALID", `the platform's statement does not verify: ${problems.slice(0, 5).join("; ")}`);
}

/** A short human summary of a statement's totals. */
function statementText(statement: unknown, entries: number, out: string | undefined): string {
  const totals = (statement as { totals?: unknown }).totals;
  return [`statement verified: ${entries} entries`, JSON.stringify(totals ?? statement, null, 2), ...(out === undefined ? [] : [`written to ${out}`])].join("\n");
}
