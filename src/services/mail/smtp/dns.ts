/**
 * The DNS the mail side uses (SPF/DKIM/DMARC checks, MX lookups, reverse names), behind one small
 * injected interface so tests and benchmarks answer from memory and production from the system's
 * resolvers. Failures use node:dns's codes (ENOTFOUND: no such name, ENODATA: no record of that
 * type), which mailauth and the queue both understand.
 */
import { Resolver } from "node:dns/promises";
import type { DNSResolver } from "mailauth";

/** Record types looked up. */
export type DnsType = "A" | "AAAA" | "MX" | "TXT" | "PTR" | "CNAME";

/** An MX record (RFC 1035 3.3.9). */
export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** The answer shape of each type, as node:dns returns it. */
export type DnsAnswer<T extends DnsType> = T extends "MX" ? MxRecord[] : T extends "TXT" ? string[][] : string[];

/** A DNS resolver: `resolve(name, type)` like node:dns's, rejecting with an error whose `code` is ENOTFOUND, ENODATA, ... */
export interface MailResolver {
  resolve<T extends DnsType>(name: string, type: T): Promise<DnsAnswer<T>>;
}

/** Per-query timeout and tries of the system resolver. */
export const DNS_TIMEOUT_MS = 5_000;
export const DNS_TRIES = 2;
/** Answers kept by `cachingResolver`, and for how long (no TTLs reach us through node:dns). */
export const DNS_CACHE_ENTRIES_MAX = 10_000;
export const DNS_CACHE_TTL_MS = 60_000;

/** A DNS error with node:dns's shape. */
export function dnsError(code: "ENOTFOUND" | "ENODATA" | "ETIMEOUT" | "ESERVFAIL", name: string): Error & { code: string } {
  return Object.assign(new Error(`${code} ${name}`), { code });
}

/** The system's resolvers (/etc/resolv.conf) through node:dns, bounded by timeout and tries. */
export function systemResolver(): MailResolver {
  const r = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: DNS_TRIES });
  return {
    resolve<T extends DnsType>(name: string, type: T): Promise<DnsAnswer<T>> {
      // node:dns's overloads return exactly DnsAnswer<T> for these six types.
      return r.resolve(name, type) as Promise<DnsAnswer<T>>;
    },
  };
}

/** Wraps a resolver with a bounded cache of answers and of ENOTFOUND/ENODATA failures. */
export function cachingResolver(inner: MailResolver, ttlMs = DNS_CACHE_TTL_MS, entriesMax = DNS_CACHE_ENTRIES_MAX): MailResolver {
  const cache = new Map<string, { at: number; answer: Promise<unknown> }>();
  return {
    resolve<T extends DnsType>(name: string, type: T): Promise<DnsAnswer<T>> {
      const key = `${type} ${name.toLowerCase()}`;
      const now = Date.now();
      const hit = cache.get(key);
      if (hit && now - hit.at < ttlMs) return hit.answer as Promise<DnsAnswer<T>>;
      const answer = inner.resolve(name, type);
      if (cache.size >= entriesMax) {
        const oldest = cache.keys().next();
        if (!oldest.done) cache.delete(oldest.value);
      }
      cache.set(key, { at: now, answer });
      answer.catch((e: unknown) => {
        const code = (e as { code?: string }).code;
        if (code !== "ENOTFOUND" && code !== "ENODATA") cache.delete(key);
      });
      return answer;
    },
  };
}

/** Records for `staticResolver`: `"TYPE name"` → answer. */
export type StaticRecords = ReadonlyMap<string, MxRecord[] | string[][] | string[]>;

/**
 * A resolver answering from memory: the answer stored under `"TYPE name"` (name lower case), else
 * ENODATA when the name has other records, else ENOTFOUND.
 */
export function staticResolver(records: StaticRecords): MailResolver {
  const names = new Set([...records.keys()].map((k) => k.slice(k.indexOf(" ") + 1)));
  return {
    async resolve<T extends DnsType>(name: string, type: T): Promise<DnsAnswer<T>> {
      const n = name.toLowerCase().replace(/\.$/, "");
      const answer = records.get(`${type} ${n}`);
      if (answer !== undefined) return answer as DnsAnswer<T>;
      throw dnsError(names.has(n) ? "ENODATA" : "ENOTFOUND", n);
    },
  };
}

/** The resolver function mailauth takes. */
export function mailauthResolver(r: MailResolver): DNSResolver {
  // mailauth passes the type as a string and reads MX answers as objects; its declared return
  // type (string arrays) predates MX support, hence the widening here.
  return (name: string, type: string) => r.resolve(name, type as DnsType) as Promise<string[][] | string[]>;
}

/** The reverse-lookup adapter smtp-server takes (a PTR query on in-addr.arpa / ip6.arpa). */
export function reverseLookup(r: MailResolver): { reverse(ip: string, cb: (err: Error | null, hostnames?: string[]) => void): void } {
  return {
    reverse(ip, cb) {
      const name = ptrName(ip);
      if (name === undefined) {
        cb(null, []);
        return;
      }
      r.resolve(name, "PTR").then(
        (names) => cb(null, names),
        (e: unknown) => cb(e instanceof Error ? e : new Error(String(e))),
      );
    },
  };
}

/** The PTR owner name of an IPv4 or IPv6 address (RFC 1035 3.5, RFC 3596 2.5); undefined when malformed. */
export function ptrName(ip: string): string | undefined {
  const v4 = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(ip);
  if (v4) return `${v4[4]}.${v4[3]}.${v4[2]}.${v4[1]}.in-addr.arpa`;
  if (!ip.includes(":") || !/^[0-9a-f:]+$/i.test(ip)) return undefined;
  const halves = ip.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" || halves[0] === undefined ? [] : halves[0].split(":");
  const tail = halves.length === 2 && halves[1] !== "" && halves[1] !== undefined ? halves[1].split(":") : [];
  const groups = halves.length === 2 ? [...head, ...Array<string>(8 - head.length - tail.length).fill("0"), ...tail] : head;
  if (groups.length !== 8 || groups.some((g) => g.length > 4)) return undefined;
  const nibbles = groups.map((g) => g.padStart(4, "0")).join("").toLowerCase();
  return `${[...nibbles].reverse().join(".")}.ip6.arpa`;
}
