/**
 * Constitution v1 ("Handshake 55-45-17"): the split ratios, the seventeen gates and the command
 * catalogue with each type's gates and permitted actors. A versioned constant in code, never
 * configuration; its hash (SHA-256 of its JCS form) is recorded in the ledger's genesis entry.
 */
import { createHash } from "node:crypto";
import type { CommandType } from "./schemas.ts";

/** Gate numbers 1..17. */
export type GateNumber = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17;

/** Names of the gates, as CONSTITUTION.md lists them. */
export const GATE_NAMES: Readonly<Record<GateNumber, string>> = {
  1: "Identity binding",
  2: "IMVU isolation",
  3: "Domain ownership",
  4: "DNS authority",
  5: "Mail attribution",
  6: "Revenue metering",
  7: "Resource quotas",
  8: "Network governance",
  9: "Jurisdiction tagging",
  10: "Consent logging",
  11: "Audit logging",
  12: "Immutable snapshots",
  13: "Exit portability",
  14: "No silent redirection",
  15: "No silent throttling",
  16: "No cross-IMVU leakage",
  17: "Platform non-repudiation",
};

/** Gates that apply to every command. */
export const UNIVERSAL_GATES: readonly GateNumber[] = [1, 11, 17];

/**
 * Who may author a command type. `owner`: the IMVU's owner; `delegate`: an identity the owner
 * delegated this type to; `admin`: a registered admin; `platform`: the platform identity;
 * `service:<role>`: a service identity holding that role; `person`: any registered person identity;
 * `anyone`: any identity, including one that registers itself with this very command.
 */
export type ActorClass =
  | "owner"
  | "delegate"
  | "admin"
  | "platform"
  | "anyone"
  | "person"
  | "service:dns"
  | "service:mail"
  | "service:compute"
  | "service:gateway"
  | "service:revenue-source"
  | "service:meter";

/** The constitution's entry for one command type. */
export interface CatalogueEntry {
  /** Gates declared by the type (the universal gates are added by `gatesFor`). */
  readonly gates: readonly GateNumber[];
  /** Who may author it. A non-owner on an IMVU also needs consent (gate 10) unless `emergency`. */
  readonly actors: readonly ActorClass[];
  /** Whether the command must name an IMVU (`imvu` field). */
  readonly imvu: "required" | "forbidden";
  /** The enumerated emergency class of gate 10 (abuse suspension): public reason, notice, never blocks exit. */
  readonly emergency?: true;
  /** Whether it changes where an IMVU's traffic goes (gate 14: owner-authored or consented, in the feed). */
  readonly redirects?: true;
}

const SERVICES_REPORTING: readonly ActorClass[] = [
  "service:dns",
  "service:mail",
  "service:compute",
  "service:gateway",
  "service:meter",
];

/** The command catalogue of constitution v1. */
export const CATALOGUE: Readonly<Record<CommandType, CatalogueEntry>> = {
  "platform.genesis": { gates: [], actors: ["anyone"], imvu: "forbidden" },
  "admin.add": { gates: [], actors: ["platform"], imvu: "forbidden" },
  "admin.remove": { gates: [], actors: ["platform"], imvu: "forbidden" },
  "service.register": { gates: [], actors: ["platform"], imvu: "forbidden" },
  "identity.inception": { gates: [], actors: ["anyone"], imvu: "forbidden" },
  "identity.rotate": { gates: [], actors: ["anyone"], imvu: "forbidden" },
  "delegation.grant": { gates: [2, 10, 16], actors: ["owner"], imvu: "required" },
  "delegation.revoke": { gates: [2, 10], actors: ["owner"], imvu: "required" },
  "imvu.create": { gates: [3, 7, 9, 13], actors: ["person"], imvu: "required" },
  "imvu.envelope.change": { gates: [2, 7, 10, 15], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "imvu.suspend": { gates: [2, 10, 13], actors: ["admin"], imvu: "required", emergency: true },
  "imvu.resume": { gates: [2, 10], actors: ["admin"], imvu: "required", emergency: true },
  "imvu.exit.request": { gates: [2, 13], actors: ["owner"], imvu: "required" },
  "imvu.depart": { gates: [2, 13], actors: ["owner"], imvu: "required" },
  // The grace period's end (docs/exit.md): the platform records the departure the owner did not confirm.
  "imvu.exit.expire": { gates: [2, 13], actors: ["platform"], imvu: "required" },
  "imvu.import": { gates: [2, 13], actors: ["owner"], imvu: "required" },
  "consent.give": { gates: [2, 10], actors: ["owner"], imvu: "required" },
  "revenue.record": { gates: [2, 6], actors: ["service:revenue-source"], imvu: "required" },
  "revenue.refund": { gates: [2, 6], actors: ["service:revenue-source"], imvu: "required" },
  "revenue.payout": { gates: [2, 6], actors: ["service:revenue-source"], imvu: "required" },
  "usage.report": { gates: [2, 7, 16], actors: SERVICES_REPORTING, imvu: "required" },
  "throttle.report": { gates: [2, 15], actors: SERVICES_REPORTING, imvu: "required" },
  // Network (docs/net.md): routes through the edge gateway move traffic (gate 14); grants open private routes.
  "net.route.add": { gates: [2, 7, 8, 9, 10, 13, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "net.route.delete": { gates: [2, 10, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "net.grant.add": { gates: [2, 10, 13, 16], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "net.grant.revoke": { gates: [2, 10, 16], actors: ["owner", "delegate", "admin"], imvu: "required" },
  // Compute (docs/compute.md): the owner's commands are gated and recorded; the compute service
  // acts on them and reports back with its own signed commands (snapshot digests, runtime events).
  "compute.workload.deploy": { gates: [2, 7, 9, 10, 13, 16], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "compute.workload.stop": { gates: [2, 10, 16], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "compute.workload.remove": { gates: [2, 10, 12, 16], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "compute.snapshot.create": { gates: [2, 10, 12, 13], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "compute.snapshot.restore": { gates: [2, 9, 10, 12], actors: ["owner", "delegate", "admin"], imvu: "required" },
  "compute.snapshot.delete": { gates: [2, 10, 12], actors: ["owner"], imvu: "required" },
  "compute.snapshot.record": { gates: [2, 9, 12, 13], actors: ["service:compute"], imvu: "required" },
  "compute.event": { gates: [2, 16], actors: ["service:compute"], imvu: "required" },
  // DNS (docs/dns.md "Commands"): records change traffic, so a non-owner needs consent (10) and it is a redirect (14).
  "dns.rrset.set": { gates: [2, 4, 7, 10, 13, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "dns.rrset.delete": { gates: [2, 4, 10, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "domain.claim": { gates: [2, 3, 10, 13, 16], actors: ["owner", "delegate"], imvu: "required" },
  "domain.verify": { gates: [2, 3, 13, 16], actors: ["service:dns"], imvu: "required" },
  // Mail (docs/mail-ledger.md): a mailbox decides where an address's mail goes and who reads it, so
  // adding one, changing its password or deleting it is a redirect (14) a non-owner needs consent for
  // (10); the mail service publishes DKIM keys and records the pre-delete snapshot (12).
  "mail.mailbox.add": { gates: [2, 5, 7, 10, 13, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "mail.mailbox.passwd": { gates: [2, 5, 10, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "mail.mailbox.delete": { gates: [2, 5, 10, 12, 14, 16], actors: ["owner", "delegate", "admin"], imvu: "required", redirects: true },
  "mail.snapshot.record": { gates: [2, 12, 13, 16], actors: ["service:mail"], imvu: "required" },
  "mail.dkim.publish": { gates: [2, 4, 5, 7, 13, 16], actors: ["service:mail"], imvu: "required" },
};

/** Every gate that applies to a command type: its declared gates plus the universal ones, sorted. */
export function gatesFor(type: CommandType): GateNumber[] {
  const set = new Set<GateNumber>([...UNIVERSAL_GATES, ...CATALOGUE[type].gates]);
  return [...set].sort((a, b) => a - b);
}

/** Split ratios (percent to the creator) per class: constants of this constitution version. */
export const SPLIT_PERCENT = { imvu: { creator: 55n, platform: 45n }, "mini-platform": { creator: 80n, platform: 20n } } as const;

/** This constitution's version. */
export const CONSTITUTION_VERSION = 1;

/** The constitution as data (what its hash covers). */
export function constitutionDocument(): unknown {
  return {
    version: CONSTITUTION_VERSION,
    name: "Handshake 55-45-17",
    splits: { imvu: { creator: 55, platform: 45 }, "mini-platform": { creator: 80, platform: 20 } },
    gates: GATE_NAMES,
    universalGates: UNIVERSAL_GATES,
    catalogue: CATALOGUE,
  };
}

/** SHA-256 (hex) of the constitution document's canonical JSON (keys sorted, RFC 8785 for this data). */
export function constitutionHash(): string {
  return createHash("sha256").update(stableJson(constitutionDocument())).digest("hex");
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}
