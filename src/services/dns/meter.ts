/**
 * Query metering: monotonically increasing counters per served zone, plus what no zone answered.
 * The lead turns deltas of these into usage reports (signed ledger commands); counters never reset.
 */
import type { Name } from "./name.ts";

/** Counters of one zone. */
export interface ZoneCounters {
  queries: number;
  nxdomain: number;
  nodata: number;
  referrals: number;
  transfers: number;
}

/** Counters of queries no zone answered, or that were rejected before any lookup. */
export interface ServerCounters {
  refused: number;
  formerr: number;
  notimp: number;
  notauth: number;
  dropped: number;
}

/** A snapshot of all counters. */
export interface MeterSnapshot {
  readonly zones: Readonly<Record<string, Readonly<ZoneCounters>>>;
  readonly server: Readonly<ServerCounters>;
}

/** The counters of one serving thread. */
export class Meter {
  private readonly zones = new Map<Name, ZoneCounters>();
  readonly server: ServerCounters = { refused: 0, formerr: 0, notimp: 0, notauth: 0, dropped: 0 };

  /** The counters of a zone (created at zero). */
  zone(origin: Name): ZoneCounters {
    let c = this.zones.get(origin);
    if (c === undefined) {
      c = { queries: 0, nxdomain: 0, nodata: 0, referrals: 0, transfers: 0 };
      this.zones.set(origin, c);
    }
    return c;
  }

  /** A copy of every counter. */
  snapshot(): MeterSnapshot {
    const zones: Record<string, ZoneCounters> = {};
    for (const [k, v] of this.zones) zones[k] = { ...v };
    return { zones, server: { ...this.server } };
  }
}

/** The sum of several snapshots (one per serving thread). */
export function sumMeters(parts: readonly MeterSnapshot[]): MeterSnapshot {
  const zones: Record<string, ZoneCounters> = {};
  const server: ServerCounters = { refused: 0, formerr: 0, notimp: 0, notauth: 0, dropped: 0 };
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.zones)) {
      const z = (zones[k] ??= { queries: 0, nxdomain: 0, nodata: 0, referrals: 0, transfers: 0 });
      z.queries += v.queries;
      z.nxdomain += v.nxdomain;
      z.nodata += v.nodata;
      z.referrals += v.referrals;
      z.transfers += v.transfers;
    }
    for (const k of Object.keys(server) as (keyof ServerCounters)[]) server[k] += p.server[k];
  }
  return { zones, server };
}

/** Per-zone growth of the counters between two snapshots (zones with no new queries left out): the body of a usage report. */
export function meterDelta(before: MeterSnapshot, after: MeterSnapshot): Record<string, ZoneCounters> {
  const out: Record<string, ZoneCounters> = {};
  for (const [zone, a] of Object.entries(after.zones)) {
    const b = before.zones[zone] ?? { queries: 0, nxdomain: 0, nodata: 0, referrals: 0, transfers: 0 };
    const d = {
      queries: a.queries - b.queries, nxdomain: a.nxdomain - b.nxdomain, nodata: a.nodata - b.nodata,
      referrals: a.referrals - b.referrals, transfers: a.transfers - b.transfers,
    };
    if (d.queries > 0 || d.transfers > 0) out[zone] = d;
  }
  return out;
}
