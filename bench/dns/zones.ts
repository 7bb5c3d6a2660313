/**
 * The benchmark's generated zone set: `count` zones of 20 records each (zone0.bench.example. ...),
 * and a query mix of hits, NXDOMAIN and NODATA, deterministic for a given seed.
 */
import type { ZoneInput } from "../../src/services/dns/zone.ts";

/** Records per generated zone (the SOA aside). */
export const RECORDS_PER_ZONE = 20;

/** The origin of generated zone `i`. */
export function benchOrigin(i: number): string {
  return `zone${i}.bench.example.`;
}

/** Generated zone `i`. */
export function benchZone(i: number, serial = 1): ZoneInput {
  const o = benchOrigin(i);
  const a = (n: number): string => `10.${(i >> 8) & 0xff}.${i & 0xff}.${n}`;
  const records: ZoneInput["records"] = [
    { name: "@", data: { type: "NS", host: "ns1" } },
    { name: "@", data: { type: "NS", host: "ns2" } },
    { name: "ns1", data: { type: "A", address: a(1) } },
    { name: "ns2", data: { type: "A", address: a(2) } },
    { name: "@", data: { type: "A", address: a(10) } },
    { name: "@", data: { type: "AAAA", address: `2001:db8:${i.toString(16)}::10` } },
    { name: "www", data: { type: "A", address: a(11) } },
    { name: "www", data: { type: "AAAA", address: `2001:db8:${i.toString(16)}::11` } },
    { name: "@", data: { type: "MX", preference: 10, exchange: "mail" } },
    { name: "mail", data: { type: "A", address: a(25) } },
    { name: "@", data: { type: "TXT", text: [`v=spf1 mx -all`] } },
    { name: "api", data: { type: "A", address: a(30) } },
    { name: "cdn", data: { type: "CNAME", target: "www" } },
    { name: "_sip._tcp", data: { type: "SRV", priority: 10, weight: 5, port: 5060, target: "api" } },
  ];
  for (let h = 1; records.length < RECORDS_PER_ZONE; h++) records.push({ name: `host${h}`, data: { type: "A", address: a(100 + h) } });
  return {
    origin: o,
    ttl: 3600,
    soa: { mname: "ns1", rname: "hostmaster", serial, refresh: 3600, retry: 600, expire: 604800, minimum: 300 },
    records,
  };
}

/** A deterministic pseudo-random generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** dnsperf query lines ("name TYPE"): 60% hits, 20% NXDOMAIN, 20% NODATA. */
export function benchQueries(zones: number, count: number, seed = 1): string[] {
  const r = rng(seed);
  const hits = [["www", "A"], ["www", "AAAA"], ["@", "MX"], ["@", "TXT"], ["cdn", "A"], ["api", "A"], ["host3", "A"], ["_sip._tcp", "SRV"], ["@", "NS"], ["@", "A"]];
  const nodata = [["www", "TXT"], ["mail", "AAAA"], ["api", "MX"], ["host2", "CAA"]];
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const z = Math.floor(r() * zones);
    const o = benchOrigin(z);
    const x = r();
    const pick = (l: string[][]): string[] => l[Math.floor(r() * l.length)] ?? ["@", "A"];
    const fq = (label: string): string => (label === "@" ? o : `${label}.${o}`);
    if (x < 0.6) {
      const [l, t] = pick(hits);
      out.push(`${fq(l ?? "@")} ${t}`);
    } else if (x < 0.8) {
      out.push(`nx${Math.floor(r() * 50)}.${o} A`);
    } else {
      const [l, t] = pick(nodata);
      out.push(`${fq(l ?? "@")} ${t}`);
    }
  }
  return out;
}
