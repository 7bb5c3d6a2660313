/**
 * `nexus domain claim|verify`: custom domains (gate 3). `claim` records a `domain.claim` signed by
 * the owner (or a delegate) and prints the challenge token derived from its ledger entry; the owner
 * publishes it as TXT at `_nexus-challenge.<domain>`. `verify` asks the platform to look the
 * challenge up now through its resolver: only the DNS service observes and submits `domain.verify`,
 * which binds the domain (one domain, one IMVU). The DNS service also checks pending claims on its own.
 * Exit codes: 0 bound (or claimed), 1 denied or not yet observed, 2 bad input, 3 API unreachable.
 */
import type { Command } from "commander";
import { commonErrors } from "../../core/common-errors.ts";
import { DomainName } from "../../core/policy/schemas.ts";
import { apiGet, submitDraft } from "../client.ts";
import { action, emit } from "../output.ts";
import type { DnsListing } from "./dns.ts";
import { apiFlags, clientOpts, type ApiFlags } from "./imvu.ts";

interface DomainFlags extends ApiFlags {
  readonly imvu: string;
}

/** What GET /v1/imvus/:name/domains/:domain/verification answers. */
interface VerifyView {
  readonly imvu: string;
  readonly domain: string;
  readonly challenge: string;
  readonly status: "bound" | "pending" | "no-claim";
  readonly observed: readonly string[];
  readonly token?: string;
  readonly receipt?: { index: string; outcome: string };
}

function checkDomain(d: string): string {
  const lower = d.toLowerCase().replace(/\.$/, "");
  if (!DomainName.safeParse(lower).success) throw commonErrors.make("INPUT_INVALID", `${d}: a domain name like example.org`, { field: "domain" });
  return lower;
}

function checkImvu(name: string): string {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw commonErrors.make("INPUT_INVALID", `--imvu ${name}: a lower-case DNS label`, { field: "imvu" });
  return name;
}

function verifyText(v: VerifyView): string {
  switch (v.status) {
    case "bound":
      return `${v.domain} is bound to ${v.imvu}${v.receipt ? ` (domain.verify at ledger index ${v.receipt.index})` : ""}`;
    case "no-claim":
      return `${v.imvu} has no pending claim on ${v.domain}: run nexus domain claim --imvu ${v.imvu} ${v.domain}`;
    case "pending":
      return [
        `not observed yet: publish TXT "${v.token ?? "?"}" at ${v.challenge}`,
        `observed: ${v.observed.length === 0 ? "(nothing)" : v.observed.map((s) => JSON.stringify(s)).join(", ")}`,
      ].join("\n");
  }
}

/** Adds `domain` to the program. */
export function register(program: Command): void {
  const domain = program.command("domain").description("custom domains for your IMVU (claimed, then proved with a TXT challenge)");
  apiFlags(domain.command("claim").argument("<domain>", "the domain, e.g. example.org"))
    .description("claim a custom domain: prints the TXT challenge to publish at _nexus-challenge.<domain>")
    .requiredOption("--imvu <name>", "your IMVU")
    .action(
      action(async (d: string, f: DomainFlags) => {
        const name = checkDomain(d);
        const imvu = checkImvu(f.imvu);
        const receipt = await submitDraft({ type: "domain.claim", imvu, body: { domain: name } }, clientOpts(f));
        const l = await apiGet<DnsListing>(`/v1/imvus/${imvu}/dns`, clientOpts(f));
        const claim = l.claims.find((c) => c.domain === name);
        const out = { receipt, domain: name, challenge: claim?.challenge ?? `_nexus-challenge.${name}`, token: claim?.token ?? "" };
        emit(out, f.json, (v) => [
          `claim of ${v.domain}: recorded at ledger index ${v.receipt.index} (receipt verified)`,
          `publish:  ${v.challenge}. 300 IN TXT "${v.token}"`,
          `then run: nexus domain verify --imvu ${imvu} ${v.domain}`,
        ].join("\n"));
      }),
    );
  apiFlags(domain.command("verify").argument("<domain>"))
    .description("have the platform look the challenge up now; binds the domain when the TXT is observed")
    .requiredOption("--imvu <name>", "your IMVU")
    .action(
      action(async (d: string, f: DomainFlags) => {
        const v = await apiGet<VerifyView>(`/v1/imvus/${checkImvu(f.imvu)}/domains/${checkDomain(d)}/verification`, clientOpts(f));
        emit(v, f.json, verifyText);
        if (v.status !== "bound") process.exitCode = 1;
      }),
    );
}
