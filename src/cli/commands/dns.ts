/**
 * `nexus dns set|delete|list|export`: the records of an IMVU's zones. Changes are `dns.rrset.set` /
 * `dns.rrset.delete` commands signed with the keyring identity (gates 2, 4, 7, 10, 14, 16 decide);
 * reads go to GET /v1/imvus/:name/dns[/export] (gate 16: only the owner or a delegate).
 * Names: "@" is the zone apex, a name ending in "." is absolute, a name inside one of the IMVU's
 * zones is taken as written, anything else is relative to --zone (default: <imvu>.<base domain>).
 * Values are RDATA in master-file syntax (RFC 1035 §5.1), one record per VALUE argument.
 */
import type { Command } from "commander";
import { commonErrors } from "../../core/common-errors.ts";
import { isNexusError } from "../../core/errors.ts";
import { DNS_RRSET_TYPES } from "../../core/policy/schemas.ts";
import type { DnsZoneView } from "../../api/routes/dns.ts";
import { isSubdomain, toAbsoluteName, toName, type Name } from "../../services/dns/name.ts";
import type { RData } from "../../services/dns/rdata.ts";
import { parseRecordLine } from "../../services/dns/zonefile.ts";
import { apiGet, submitDraft } from "../client.ts";
import { action, emit } from "../output.ts";
import { apiFlags, clientOpts, printReceipt, type ApiFlags } from "./imvu.ts";

/** Record values one `dns set` takes, at most (the RRset bound of the zone model). */
export const SET_VALUES_MAX = 256;

/** What GET /v1/imvus/:name/dns answers. */
export interface DnsListing {
  readonly imvu: string;
  readonly zones: readonly DnsZoneView[];
  readonly claims: readonly { domain: string; challenge: string; token: string; claimedIndex: string }[];
}

interface ZoneFlags extends ApiFlags {
  readonly imvu: string;
  readonly zone?: string;
}

function checkImvu(name: string): string {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) throw commonErrors.make("INPUT_INVALID", `--imvu ${name}: a lower-case DNS label`, { field: "imvu" });
  return name;
}

function recordType(t: string): (typeof DNS_RRSET_TYPES)[number] {
  const up = t.toUpperCase();
  const ok = DNS_RRSET_TYPES.filter((x) => x !== "SOA") as string[];
  if (!ok.includes(up)) throw commonErrors.make("INPUT_INVALID", `TYPE ${t}: one of ${ok.join(", ")} (the SOA and apex NS are the platform's)`, { field: "type" });
  return up as (typeof DNS_RRSET_TYPES)[number];
}

function nameArg(text: string, what: string, origin?: Name): Name {
  try {
    return origin === undefined ? toAbsoluteName(text) : toName(text, origin);
  } catch (e) {
    if (isNexusError(e)) throw commonErrors.make("INPUT_INVALID", `${what} ${text}: ${e.message}`, { field: what });
    throw e;
  }
}

/** The zone relative names are completed with: --zone, else the IMVU's base zone. */
function defaultZone(listing: DnsListing, zone: string | undefined): Name {
  if (zone !== undefined) {
    const z = nameArg(zone, "--zone");
    if (!listing.zones.some((x) => x.origin === z)) throw commonErrors.make("INPUT_INVALID", `--zone ${zone}: not a zone of ${listing.imvu}`, { field: "zone" });
    return z;
  }
  const base = listing.zones.find((z) => z.kind === "base") ?? listing.zones[0];
  if (base === undefined) throw commonErrors.make("NOT_FOUND", `${listing.imvu} serves no zone`);
  return base.origin as Name;
}

/** The absolute owner name of NAME (see the module comment). */
export function qualify(name: string, listing: DnsListing, zone: string | undefined): Name {
  const origin = defaultZone(listing, zone);
  if (name === "@") return origin;
  if (name.endsWith(".")) return nameArg(name, "NAME");
  const asWritten = nameArg(name, "NAME");
  if (listing.zones.some((z) => isSubdomain(asWritten, z.origin as Name))) return asWritten;
  return nameArg(name, "NAME", origin);
}

/** One VALUE as record data of `type` (master-file RDATA; a TXT value without quotes is one string). */
export function parseValue(type: string, value: string, origin: Name): RData {
  const text = type === "TXT" && !value.startsWith('"') ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : value;
  try {
    return parseRecordLine(`@ ${type} ${text}`, origin).data;
  } catch (e) {
    if (isNexusError(e)) throw commonErrors.make("INPUT_INVALID", `VALUE ${value}: ${e.message}`, { field: "value" });
    throw e;
  }
}

function listing(f: ZoneFlags): Promise<DnsListing> {
  return apiGet<DnsListing>(`/v1/imvus/${checkImvu(f.imvu)}/dns`, clientOpts(f));
}

function parseTtl(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d{1,10}$/.test(s)) throw commonErrors.make("INPUT_INVALID", `--ttl ${s}: seconds, a whole number`, { field: "ttl" });
  return Number(s);
}

/** The records of a listing as lines "name ttl type value [platform]". */
function listingText(l: DnsListing): string {
  const out: string[] = [];
  for (const z of l.zones) {
    out.push(`; zone ${z.origin} (${z.kind}) serial ${z.serial}`);
    for (const r of z.records) out.push(`${r.name}\t${r.ttl}\t${r.type}\t${r.value}${r.managedBy === "platform" ? "\t; platform" : ""}`);
  }
  for (const c of l.claims) out.push(`; pending claim ${c.domain}: publish TXT "${c.token}" at ${c.challenge}, then run nexus domain verify`);
  return out.length === 0 ? "(no zones)" : out.join("\n");
}

function zoneOptions(c: Command): Command {
  return c.requiredOption("--imvu <name>", "your IMVU").option("--zone <origin>", "zone relative names are completed with (default: <imvu>.<base domain>)");
}

/** Adds `dns` to the program. */
export function register(program: Command): void {
  const dns = program.command("dns").description("the records of your IMVU's zones (signed commands through the API)");
  zoneOptions(apiFlags(dns.command("set").argument("<name>", '"@", a name in the zone, or an absolute name ending in "."').argument("<type>", "A, AAAA, CNAME, MX, TXT, SRV, CAA, NS (below the apex), PTR").argument("<values...>", "record data, one record per argument")))
    .description("set (replace) the RRset NAME TYPE to the given values")
    .option("--ttl <seconds>", "TTL of the RRset (30..604800, default 3600)")
    .action(
      action(async (name: string, type: string, values: string[], f: ZoneFlags & { ttl?: string }) => {
        const t = recordType(type);
        if (values.length > SET_VALUES_MAX) throw commonErrors.make("INPUT_TOO_LARGE", `at most ${SET_VALUES_MAX} values`);
        const l = await listing(f);
        const owner = qualify(name, l, f.zone);
        const origin = defaultZone(l, f.zone);
        const ttl = parseTtl(f.ttl);
        const body = { name: owner, type: t, values: values.map((v) => parseValue(t, v, origin)), ...(ttl === undefined ? {} : { ttl }) };
        printReceipt(`${owner} ${t}`, await submitDraft({ type: "dns.rrset.set", imvu: l.imvu, body }, clientOpts(f)), f.json);
      }),
    );
  zoneOptions(apiFlags(dns.command("delete").argument("<name>").argument("<type>")))
    .description("delete the RRset NAME TYPE")
    .action(
      action(async (name: string, type: string, f: ZoneFlags) => {
        const t = recordType(type);
        const l = await listing(f);
        const owner = qualify(name, l, f.zone);
        printReceipt(`${owner} ${t} deleted`, await submitDraft({ type: "dns.rrset.delete", imvu: l.imvu, body: { name: owner, type: t } }, clientOpts(f)), f.json);
      }),
    );
  apiFlags(dns.command("list"))
    .description("every record of the IMVU's zones (SOA and apex NS marked as the platform's) and pending domain claims")
    .requiredOption("--imvu <name>", "your IMVU")
    .action(action(async (f: ZoneFlags) => emit(await listing(f), f.json, listingText)));
  apiFlags(dns.command("export"))
    .description("print the IMVU's zones as RFC 1035 master files")
    .requiredOption("--imvu <name>", "your IMVU")
    .option("--zone <origin>", "only this zone")
    .action(
      action(async (f: ZoneFlags) => {
        const q = f.zone === undefined ? "" : `?zone=${encodeURIComponent(f.zone)}`;
        const r = await apiGet<{ zones: { origin: string; masterFile: string }[] }>(`/v1/imvus/${checkImvu(f.imvu)}/dns/export${q}`, clientOpts(f));
        if (f.json) emit(r, true, () => "");
        else process.stdout.write(r.zones.map((z) => z.masterFile).join("\n"));
      }),
    );
}
