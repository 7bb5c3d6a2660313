/**
 * Reducers of the DNS command types (docs/dns.md, "Commands"): domains, claims, zones and RRsets in
 * the projection. The served zones derive from these rows (core/policy/dns-zones.ts); every change
 * of a zone stamps its `changedIndex`, from which its SOA serial is taken.
 */
import { createHash } from "node:crypto";
import { toAbsoluteName, type Name } from "../dns/name.ts";
import { planRRset } from "../policy/dns-gates.ts";
import { defaultRRsets, domainKey, imvuOrigin, platformDnsOf, rrsetKey, type PlatformDns } from "../policy/dns-zones.ts";
import type { Command } from "../policy/schemas.ts";
import type { EntryFacts } from "./reducer.ts";
import { del, put, type Change, type DnsZoneRecord, type StateReader } from "./state.ts";

type DnsCommand = Extract<Command, { type: "dns.rrset.set" | "dns.rrset.delete" | "domain.claim" | "domain.verify" }>;
type CreateCommand = Extract<Command, { type: "imvu.create" }>;

/** Hex characters of a challenge token after its "nexus-" prefix. */
export const CHALLENGE_TOKEN_HEX_CHARS = 40;

/**
 * The challenge token of a claim: derived from the claim's ledger entry (index and command digest),
 * so anyone replaying the ledger derives the same token and nobody can predict it before the claim.
 */
export function challengeToken(domain: string, imvu: string, index: string, digest: string): string {
  const h = createHash("sha256").update(`nexus-challenge-v1\n${domain}\n${imvu}\n${index}\n${digest}`).digest("hex");
  return `nexus-${h.slice(0, CHALLENGE_TOKEN_HEX_CHARS)}`;
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`invariant: ${what} was checked by the gates`);
  return v;
}

/** A new zone with its domain binding and default records. */
function newZone(d: PlatformDns, origin: Name, imvu: string, kind: "base" | "custom", index: string): Change[] {
  const zone: DnsZoneRecord = { origin, imvu, kind, createdIndex: index, changedIndex: index };
  const out: Change[] = [
    put("domain", domainKey(origin), { domain: domainKey(origin), imvu, kind, boundIndex: index }),
    put("dns-zone", origin, zone),
  ];
  for (const s of defaultRRsets(d, origin)) {
    out.push(put("dns-rrset", rrsetKey(origin, s.name, s.type), { zone: origin, imvu, name: s.name, type: s.type, ttl: s.ttl, values: s.values, index }));
  }
  return out;
}

/** The DNS changes of `imvu.create`: `<name>.<base>` bound, its zone created with the default records. */
export function reduceImvuDns(state: StateReader, cmd: CreateCommand, facts: EntryFacts): Change[] {
  const d = need(platformDnsOf(state), "genesis");
  return newZone(d, imvuOrigin(d, cmd.body.name), cmd.body.name, "base", facts.index.toString());
}

/** The changes an applied DNS command makes. */
export function reduceDns(state: StateReader, cmd: DnsCommand, facts: EntryFacts): Change[] {
  const imvu = need(cmd.imvu, "the IMVU");
  const index = facts.index.toString();
  switch (cmd.type) {
    case "dns.rrset.set":
    case "dns.rrset.delete": {
      const plan = planRRset(state, cmd);
      if (!plan.ok) throw new Error(`invariant: gate 4 passed an RRset change it now refuses: ${plan.reason}`);
      const { zone, change } = plan;
      const key = rrsetKey(zone.origin, change.name, change.type);
      const row =
        change.values === undefined
          ? del("dns-rrset", key)
          : put("dns-rrset", key, { zone: zone.origin, imvu, name: change.name, type: change.type, ttl: change.ttl, values: change.values, index });
      return [row, put("dns-zone", zone.origin, { ...zone, changedIndex: index })];
    }
    case "domain.claim":
      return [
        put("domain-claim", `${cmd.body.domain} ${imvu}`, {
          domain: cmd.body.domain,
          imvu,
          token: challengeToken(cmd.body.domain, imvu, index, facts.digest),
          claimedIndex: index,
          claimedAt: facts.time,
        }),
      ];
    case "domain.verify": {
      const d = need(platformDnsOf(state), "genesis");
      // The domain is bound now: every pending claim on it (this IMVU's and others') is settled.
      const settled = state.list("domain-claim", `${cmd.body.domain} `).map(([k]) => del("domain-claim", k));
      return [...settled, ...newZone(d, toAbsoluteName(cmd.body.domain), imvu, "custom", index)];
    }
    default: {
      const never: never = cmd;
      throw new Error(`no DNS reducer for ${(never as Command).type}`);
    }
  }
}
