/**
 * The projection state: typed tables of JSON records, derived only from ledger entries. Reads go
 * through `StateReader`; writes are `Change`s produced by reducers and applied by the pipeline
 * inside the ledger's transaction (to SQL) and to the in-memory view (after commit).
 */
import { createHash } from "node:crypto";
import type { EnvelopeWire } from "../policy/envelope.ts";
import type { ComputeEventRecord, ComputeOpRecord, ComputeSnapshotRecord, ComputeWorkloadRecord } from "./compute-state.ts";
import type { NetGrantRecord, NetRouteRecord } from "./net-state.ts";
import type { MailboxRecord, MailDomainRecord, MailSnapshotRecord } from "./mail-state.ts";
import type { RData } from "../dns/rdata.ts";

/** The platform's genesis facts. */
export interface PlatformRecord {
  readonly platformId: string;
  readonly baseDomain: string;
  readonly constitutionVersion: number;
  readonly constitutionHash: string;
  readonly genesisIndex: string;
  /** DNS facts of genesis (absent: the defaults of core/policy/dns-zones.ts). */
  readonly dns?: PlatformDnsRecord;
}

/** The platform's DNS facts as genesis recorded them (each optional). */
export interface PlatformDnsRecord {
  readonly nameservers?: readonly string[] | undefined;
  readonly gatewayIpv4?: string | undefined;
  readonly gatewayIpv6?: string | undefined;
  readonly mailHost?: string | undefined;
}

/** A registered identity and its current key state. */
export interface IdentityRecord {
  readonly id: string;
  readonly kind: "person" | "service" | "platform";
  readonly roles: readonly string[];
  readonly publicKey: string; // base64 of the raw Ed25519 key
  readonly nextKeyDigest: string;
  readonly seq: number;
  readonly lastEventDigest: string;
  readonly name?: string;
}

/** An IMVU. */
export interface ImvuRecord {
  readonly name: string;
  readonly owner: string;
  readonly jurisdiction: string;
  readonly class: "imvu" | "mini-platform";
  readonly envelope: EnvelopeWire;
  readonly status: "active" | "suspended";
  readonly suspension?: { readonly reason: string; readonly by: string; readonly index: string };
  readonly exit?: {
    readonly requestedIndex: string;
    /** Sequencer time of the request: the grace period (EXIT_GRACE_MS) runs from it. */
    readonly requestedAt?: string;
    readonly departedIndex?: string;
    /** Set when the departure is the grace period's end (imvu.exit.expire), not the owner's. */
    readonly expired?: true;
  };
  /** Set by imvu.import: the exit bundle it came from (the origin's verifier key, checkpoint size, manifest digest). */
  readonly importedFrom?: { readonly index: string; readonly originImvu: string; readonly verifierKey: string; readonly treeSize: string; readonly manifest: string };
  readonly createdIndex: string;
}

/** A delegation from an IMVU owner to another identity, scoped to command types. */
export interface DelegationRecord {
  readonly imvu: string;
  readonly delegate: string;
  readonly scope: readonly string[];
  readonly grantedIndex: string;
}

/** An owner's consent to one exact command digest. */
export interface ConsentRecord {
  readonly imvu: string;
  readonly owner: string;
  readonly digest: string;
  readonly index: string;
  readonly usedIndex?: string;
}

/** A nonce seen from an actor. */
export interface NonceRecord {
  readonly index: string;
}

/** One item of an IMVU's feed: every command that touched it, by anyone. */
export interface FeedRecord {
  readonly index: string;
  readonly type: string;
  readonly actor: string;
  readonly outcome: "applied" | "denied";
  readonly redirect: boolean;
}

/** A revenue accumulator per (unit, class, currency), amounts as decimal strings. */
export interface RevenueAccountRecord {
  readonly imvu: string;
  readonly class: "imvu" | "mini-platform";
  readonly currency: string;
  readonly gross: string;
  readonly creator: string;
  readonly platform: string;
  readonly paidOut: string;
}

/** One revenue, refund or payout event, kept for idempotency and refunds. */
export interface RevenueEventRecord {
  readonly eventId: string;
  readonly kind: "revenue" | "refund" | "payout";
  readonly imvu: string;
  readonly class: "imvu" | "mini-platform";
  readonly currency: string;
  readonly amount: string; // signed: refunds and payouts negative for the balance they reduce
  readonly creator: string;
  readonly platform: string;
  readonly source: string;
  readonly refOf?: string;
  readonly refunded: string;
  readonly index: string;
  readonly digest: string; // of the body, to tell an idempotent replay from a conflict
}

/** A usage report, idempotent by (imvu, service, interval). */
export interface UsageRecord {
  readonly imvu: string;
  readonly service: string;
  readonly intervalStart: string;
  readonly intervalEnd: string;
  readonly metrics: Readonly<Record<string, string>>;
  readonly index: string;
}

/** A throttling episode reported by a service. */
export interface ThrottleRecord {
  readonly imvu: string;
  readonly service: string;
  readonly limit: string;
  readonly declared: string;
  readonly episodeId: string;
  readonly count: number;
  readonly index: string;
}

/** A domain bound to one IMVU (gate 3): its base label, or a custom domain it proved. Key: the domain. */
export interface DomainRecord {
  readonly domain: string;
  readonly imvu: string;
  readonly kind: "base" | "custom";
  readonly boundIndex: string;
}

/** A pending custom-domain claim and its challenge token. Key: `<domain> <imvu>`. */
export interface DomainClaimRecord {
  readonly domain: string;
  readonly imvu: string;
  readonly token: string;
  readonly claimedIndex: string;
  /** The sequencer time of the claim (the DNS service stops polling old claims). */
  readonly claimedAt: string;
}

/** A zone served for an IMVU. Key: its canonical origin ("stage.nexus.test."). */
export interface DnsZoneRecord {
  readonly origin: string;
  readonly imvu: string;
  readonly kind: "base" | "custom";
  readonly createdIndex: string;
  /** Ledger index of the last change: the SOA serial derives from it. */
  readonly changedIndex: string;
}

/** One RRset of an IMVU zone. Key: `<origin> <owner> <type>` (canonical names; spaces never occur unescaped). */
export interface DnsRRsetRecord {
  readonly zone: string;
  readonly imvu: string;
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  readonly values: readonly RData[];
  readonly index: string;
}

/** The tables of the projection and the record type of each. Services add theirs here. */
export interface Tables {
  platform: PlatformRecord;
  identity: IdentityRecord;
  admin: { readonly addedIndex: string };
  nonce: NonceRecord;
  imvu: ImvuRecord;
  delegation: DelegationRecord;
  consent: ConsentRecord;
  feed: FeedRecord;
  "revenue-account": RevenueAccountRecord;
  "revenue-event": RevenueEventRecord;
  usage: UsageRecord;
  throttle: ThrottleRecord;
  domain: DomainRecord;
  "domain-claim": DomainClaimRecord;
  "dns-zone": DnsZoneRecord;
  "dns-rrset": DnsRRsetRecord;
  "compute-workload": ComputeWorkloadRecord;
  "net-route": NetRouteRecord;
  "net-grant": NetGrantRecord;
  "compute-snapshot": ComputeSnapshotRecord;
  "compute-op": ComputeOpRecord;
  "compute-event": ComputeEventRecord;
  "mail-mailbox": MailboxRecord;
  "mail-domain": MailDomainRecord;
  "mail-snapshot": MailSnapshotRecord;
}

/** A table name. */
export type TableName = keyof Tables;

/** Read access to the projection. */
export interface StateReader {
  get<T extends TableName>(table: T, key: string): Tables[T] | undefined;
  /** Records of `table` whose key starts with `prefix`, in key order. */
  list<T extends TableName>(table: T, prefix?: string): [string, Tables[T]][];
}

/** One write to the projection: `value` undefined deletes. */
export interface Change {
  readonly table: TableName;
  readonly key: string;
  readonly value: Tables[TableName] | undefined;
}

/** A put, typed by table. */
export function put<T extends TableName>(table: T, key: string, value: Tables[T]): Change {
  return { table, key, value };
}

/** A delete. */
export function del(table: TableName, key: string): Change {
  return { table, key, value: undefined };
}

type Rows = Map<string, Map<string, unknown>>;

/** The in-memory projection, with layered overlays for uncommitted batches. */
export class MemoryState implements StateReader {
  private readonly base: Rows = new Map();

  get<T extends TableName>(table: T, key: string): Tables[T] | undefined {
    return this.base.get(table)?.get(key) as Tables[T] | undefined;
  }

  list<T extends TableName>(table: T, prefix = ""): [string, Tables[T]][] {
    const rows = this.base.get(table);
    if (!rows) return [];
    const out: [string, Tables[T]][] = [];
    for (const [k, v] of rows) if (k.startsWith(prefix)) out.push([k, v as Tables[T]]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Applies committed changes. */
  apply(changes: readonly Change[]): void {
    for (const c of changes) {
      let rows = this.base.get(c.table);
      if (!rows) this.base.set(c.table, (rows = new Map()));
      if (c.value === undefined) rows.delete(c.key);
      else rows.set(c.key, c.value);
    }
  }

  /** Loads one stored row (at start-up). */
  load(table: string, key: string, value: unknown): void {
    let rows = this.base.get(table);
    if (!rows) this.base.set(table, (rows = new Map()));
    rows.set(key, value);
  }

  /** Loads every row of another state (at start-up). */
  loadAll(other: MemoryState): void {
    for (const [table, key, value] of other.rows()) this.load(table, key, value);
  }

  /** Every row as [table, key, value], in (table, key) order. */
  *rows(): Generator<[string, string, unknown]> {
    for (const table of [...this.base.keys()].sort()) {
      const rows = this.base.get(table);
      if (!rows) continue;
      for (const key of [...rows.keys()].sort()) yield [table, key, rows.get(key)];
    }
  }

  /** SHA-256 over every row in (table, key) order: equal states have equal digests. */
  digest(): string {
    const h = createHash("sha256");
    for (const table of [...this.base.keys()].sort()) {
      const rows = this.base.get(table);
      if (!rows) continue;
      for (const key of [...rows.keys()].sort()) h.update(`${table}\t${key}\t${JSON.stringify(rows.get(key))}\n`);
    }
    return h.digest("hex");
  }
}

/** A view that reads pending changes first, then the base state. */
export class OverlayState implements StateReader {
  private readonly pending = new Map<string, Map<string, unknown>>();
  readonly changes: Change[] = [];
  private readonly under: StateReader;

  constructor(under: StateReader) {
    this.under = under;
  }

  get<T extends TableName>(table: T, key: string): Tables[T] | undefined {
    const rows = this.pending.get(table);
    if (rows?.has(key)) return rows.get(key) as Tables[T] | undefined;
    return this.under.get(table, key);
  }

  list<T extends TableName>(table: T, prefix = ""): [string, Tables[T]][] {
    const merged = new Map<string, Tables[T]>(this.under.list(table, prefix));
    const rows = this.pending.get(table);
    if (rows) {
      for (const [k, v] of rows) {
        if (!k.startsWith(prefix)) continue;
        if (v === undefined) merged.delete(k);
        else merged.set(k, v as Tables[T]);
      }
    }
    return [...merged.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Records changes (visible to later reads through this overlay). */
  write(changes: readonly Change[]): void {
    for (const c of changes) {
      let rows = this.pending.get(c.table);
      if (!rows) this.pending.set(c.table, (rows = new Map()));
      rows.set(c.key, c.value);
      this.changes.push(c);
    }
  }
}
