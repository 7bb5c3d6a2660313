/**
 * Per-route metering: monotonically increasing counters (requests, bytes in and out, status
 * classes, refusals) that the platform adapter turns into `usage.report` commands by delta.
 * Counters never reset; a route that leaves the table keeps its counters until reported.
 */

/** Counters of one route. */
export interface RouteCounters {
  imvu: string;
  requests: number;
  bytesIn: number;
  bytesOut: number;
  s1xx: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
  /** Requests refused by the route's slice (429/503) or the gateway's capacity. */
  throttled: number;
  /** Requests refused by the route's policy (401, 403, 451). */
  denied: number;
  /** WebSocket (upgraded) connections opened. */
  upgrades: number;
}

/** Counters of requests that matched no route or were refused before matching. */
export interface GatewayCounters {
  notFound: number;
  badRequest: number;
  connectionsRefused: number;
}

/** A snapshot of every counter. */
export interface MeterSnapshot {
  readonly routes: Readonly<Record<string, Readonly<RouteCounters>>>;
  readonly gateway: Readonly<GatewayCounters>;
}

const zero = (imvu: string): RouteCounters => ({
  imvu, requests: 0, bytesIn: 0, bytesOut: 0, s1xx: 0, s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, throttled: 0, denied: 0, upgrades: 0,
});
const NUMERIC = ["requests", "bytesIn", "bytesOut", "s1xx", "s2xx", "s3xx", "s4xx", "s5xx", "throttled", "denied", "upgrades"] as const;

/** The counters of one gateway thread. */
export class Meter {
  private readonly routes = new Map<string, RouteCounters>();
  readonly gateway: GatewayCounters = { notFound: 0, badRequest: 0, connectionsRefused: 0 };

  /** The counters of a route (created at zero). */
  route(id: string, imvu: string): RouteCounters {
    let c = this.routes.get(id);
    if (c === undefined) {
      c = zero(imvu);
      this.routes.set(id, c);
    }
    return c;
  }

  /** Counts a final status on a route. */
  status(c: RouteCounters, status: number): void {
    if (status < 200) c.s1xx++;
    else if (status < 300) c.s2xx++;
    else if (status < 400) c.s3xx++;
    else if (status < 500) c.s4xx++;
    else c.s5xx++;
  }

  /** A copy of every counter. */
  snapshot(): MeterSnapshot {
    const routes: Record<string, RouteCounters> = {};
    for (const [k, v] of this.routes) routes[k] = { ...v };
    return { routes, gateway: { ...this.gateway } };
  }
}

/** The sum of several snapshots (one per serving thread). */
export function sumMeters(parts: readonly MeterSnapshot[]): MeterSnapshot {
  const routes: Record<string, RouteCounters> = {};
  const gateway: GatewayCounters = { notFound: 0, badRequest: 0, connectionsRefused: 0 };
  for (const p of parts) {
    for (const [id, c] of Object.entries(p.routes)) {
      const t = (routes[id] ??= zero(c.imvu));
      for (const k of NUMERIC) t[k] += c[k];
    }
    for (const k of Object.keys(gateway) as (keyof GatewayCounters)[]) gateway[k] += p.gateway[k];
  }
  return { routes, gateway };
}

/** Per-route growth between two snapshots, routes without new traffic left out: the body of a usage report. */
export function meterDelta(before: MeterSnapshot, after: MeterSnapshot): Record<string, RouteCounters> {
  const out: Record<string, RouteCounters> = {};
  for (const [id, a] of Object.entries(after.routes)) {
    const b = before.routes[id] ?? zero(a.imvu);
    const d = zero(a.imvu);
    let any = false;
    for (const k of NUMERIC) {
      d[k] = a[k] - b[k];
      if (d[k] !== 0) any = true;
    }
    if (any) out[id] = d;
  }
  return out;
}
