/**
 * The ledger projection of DNS: which zones the platform serves, as plain ZoneInputs derived from
 * the pipeline's state (pure; the derivation itself lives in core/policy/dns-zones.ts so gate 4
 * validates exactly what is served), and the sync that keeps a ZoneStore equal to it.
 */
import { isNexusError } from "../../core/errors.ts";
import { platformDnsOf, servedZoneInput, servedZoneInputs } from "../../core/policy/dns-zones.ts";
import type { Change, StateReader } from "../../core/pipeline/state.ts";
import { toAbsoluteName } from "./name.ts";
import type { ZoneStore } from "./store.ts";
import type { ZoneInput } from "./zone.ts";

/** Every zone the state says to serve: the platform zone `<base>` first, then each active IMVU zone. */
export function zonesFromState(state: StateReader): ZoneInput[] {
  return servedZoneInputs(state);
}

/** The tables whose changes can change what is served. */
const DNS_TABLES: ReadonlySet<string> = new Set(["platform", "imvu", "dns-zone", "dns-rrset"]);

/** True when a recorded command's changes may change the served zones. */
export function touchesZones(changes: readonly Change[]): boolean {
  return changes.some((c) => DNS_TABLES.has(c.table));
}

/**
 * The origins whose served zone a recorded command's changes may alter, or "all" (genesis facts).
 * RRset and zone rows name their zone; an IMVU row (departure) alters its zones; a new or departed
 * IMVU base zone alters the platform zone's delegations.
 */
export function affectedOrigins(state: StateReader, changes: readonly Change[]): Set<string> | "all" {
  const out = new Set<string>();
  const base = platformDnsOf(state)?.base;
  for (const c of changes) {
    switch (c.table) {
      case "platform":
        return "all";
      case "dns-rrset":
        out.add(c.key.slice(0, c.key.indexOf(" ")));
        break;
      case "dns-zone":
        out.add(c.key);
        if (base !== undefined && state.get("dns-zone", c.key)?.kind === "base") out.add(base);
        break;
      case "imvu":
        for (const [origin, z] of state.list("dns-zone")) if (z.imvu === c.key) out.add(origin);
        if (base !== undefined) out.add(base);
        break;
      default:
        break;
    }
  }
  return out;
}

/** What one sync did. */
export interface SyncReport {
  readonly put: readonly string[];
  readonly removed: readonly string[];
  readonly failed: readonly { readonly origin: string; readonly code: string; readonly message: string }[];
}

/**
 * Makes `store` serve what the state says for `origins` (default: every zone, removing the ones no
 * longer in the state). Changed zones are put (their serial comes from the ledger, so it
 * increases); identical ones are no-ops. A zone the store refuses keeps its served version and is
 * reported, never thrown.
 */
export function syncZones(store: ZoneStore, state: StateReader, origins: Set<string> | "all" = "all"): SyncReport {
  const put: string[] = [];
  const removed: string[] = [];
  const failed: { origin: string; code: string; message: string }[] = [];
  const wanted: [string, ZoneInput | undefined][] =
    origins === "all" ? zonesFromState(state).map((z) => [toAbsoluteName(z.origin), z]) : [...origins].map((o) => [o, servedZoneInput(state, o)]);
  for (const [origin, z] of wanted) {
    if (z === undefined) {
      if (store.remove(origin)) removed.push(origin);
      continue;
    }
    const before = store.get(toAbsoluteName(origin));
    try {
      if (store.put(z) !== before) put.push(origin);
    } catch (e) {
      if (!isNexusError(e)) throw e;
      failed.push({ origin, code: e.code, message: e.message });
    }
  }
  if (origins === "all") {
    const keep = new Set(wanted.map(([o]) => o));
    for (const origin of store.origins()) if (!keep.has(origin) && store.remove(origin)) removed.push(origin);
  }
  return { put, removed, failed };
}
