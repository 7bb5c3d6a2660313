/**
 * ZoneStore: the in-memory set of served zones, the one input of the DNS server. The ledger
 * projection (or a test) calls `put`/`remove`; listeners hear every change synchronously, and the
 * store keeps a bounded journal of differences per serial for IXFR (RFC 1995 §4).
 */
import { dnsErrors } from "./errors.ts";
import { toAbsoluteName, type Name } from "./name.ts";
import {
  buildZone, diffZones, nextSerial, sameContent, serialGreater, withSerial, zoneSerial, type Zone, type ZoneDiff, type ZoneInput,
} from "./zone.ts";
import type { ZoneSet } from "./lookup.ts";

/** Versions of one zone the IXFR journal keeps, at most. */
export const JOURNAL_VERSIONS_MAX = 64;
/** Records (removed + added) the journal keeps per zone, at most; older differences are dropped first. */
export const JOURNAL_RECORDS_MAX = 50_000;
/** Zones one store serves, at most. */
export const ZONES_MAX = 100_000;

/** One journal step: the zone went from `from` to `to` by `diff` (RFC 1995 §4 difference sequence). */
export interface JournalStep {
  readonly from: Zone["soa"];
  readonly to: Zone["soa"];
  readonly diff: ZoneDiff;
}

/** A change of the served set. */
export type ZoneChange =
  | { readonly type: "put"; readonly zone: Zone; readonly previous: Zone | undefined }
  | { readonly type: "remove"; readonly origin: Name; readonly previous: Zone };

/** How `put` treats the SOA serial. */
export interface PutOptions {
  /** When the data changed but the serial did not increase, use the next serial instead of failing. */
  readonly bumpSerial?: boolean;
}

interface Journal {
  steps: JournalStep[];
  records: number;
}

/** The served zones, their change events and IXFR journal. */
export class ZoneStore implements ZoneSet {
  private readonly zones = new Map<Name, Zone>();
  private readonly journals = new Map<Name, Journal>();
  private readonly listeners = new Set<(c: ZoneChange) => void>();

  /** The zone whose origin is exactly `origin`. */
  get(origin: Name): Zone | undefined {
    return this.zones.get(origin);
  }

  /** The origins served. */
  origins(): Name[] {
    return [...this.zones.keys()];
  }

  /** Every zone served. */
  all(): Zone[] {
    return [...this.zones.values()];
  }

  /**
   * Serves `zone` (built, or plain data validated here). A zone whose data changed MUST carry a
   * greater serial (RFC 1982) unless `bumpSerial`; putting identical data again is a no-op.
   */
  put(input: Zone | ZoneInput, opts: PutOptions = {}): Zone {
    let zone = isZone(input) ? input : buildZone(input);
    const prev = this.zones.get(zone.origin);
    if (prev !== undefined) {
      const same = sameContent(prev, zone);
      if (same && !serialGreater(zoneSerial(zone), zoneSerial(prev))) return prev;
      if (!serialGreater(zoneSerial(zone), zoneSerial(prev))) {
        if (opts.bumpSerial !== true) {
          throw dnsErrors.make("DNS_SERIAL_NOT_INCREASED", `${zone.origin}: ${zoneSerial(zone)} after ${zoneSerial(prev)}`);
        }
        zone = withSerial(zone, nextSerial(zoneSerial(prev)));
      }
      this.record(prev, zone);
    } else if (this.zones.size >= ZONES_MAX) {
      throw dnsErrors.make("DNS_ZONE_TOO_LARGE", `more than ${ZONES_MAX} zones`);
    }
    this.zones.set(zone.origin, zone);
    this.emit({ type: "put", zone, previous: prev });
    return zone;
  }

  /** Stops serving a zone; false when it was not served. */
  remove(origin: string): boolean {
    const name = toAbsoluteName(origin);
    const prev = this.zones.get(name);
    if (prev === undefined) return false;
    this.zones.delete(name);
    this.journals.delete(name);
    this.emit({ type: "remove", origin: name, previous: prev });
    return true;
  }

  /** Listens to changes; returns the function that stops listening. */
  on(listener: (c: ZoneChange) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /**
   * The journal steps leading from serial `from` to the current version, oldest first; undefined
   * when the journal no longer reaches back that far (the caller then sends the whole zone).
   */
  journal(origin: Name, from: number): JournalStep[] | undefined {
    const j = this.journals.get(origin);
    if (j === undefined) return undefined;
    const i = j.steps.findIndex((s) => s.from.data.serial === from);
    return i < 0 ? undefined : j.steps.slice(i);
  }

  private record(prev: Zone, next: Zone): void {
    const diff = diffZones(prev, next);
    let j = this.journals.get(next.origin);
    if (j === undefined) {
      j = { steps: [], records: 0 };
      this.journals.set(next.origin, j);
    }
    j.steps.push({ from: prev.soa, to: next.soa, diff });
    j.records += diff.added.length + diff.removed.length;
    while (j.steps.length > JOURNAL_VERSIONS_MAX || (j.records > JOURNAL_RECORDS_MAX && j.steps.length > 0)) {
      const old = j.steps.shift();
      if (old !== undefined) j.records -= old.diff.added.length + old.diff.removed.length;
    }
  }

  private emit(c: ZoneChange): void {
    for (const l of this.listeners) l(c);
  }
}

function isZone(z: Zone | ZoneInput): z is Zone {
  return "nodes" in z && z.nodes instanceof Map;
}
