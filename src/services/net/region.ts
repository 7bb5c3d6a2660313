/**
 * Client region from a configured address-range table (IPv4 and IPv6 CIDR prefixes → ISO 3166-1
 * alpha-2 codes), longest prefix first. Pure; a lookup costs at most one Map probe per distinct
 * prefix length in the table (≤ 33 for IPv4, ≤ 129 for IPv6). IPv4-mapped IPv6 addresses
 * (RFC 4291 §2.5.5.2, what a dual-stack socket reports) are looked up as IPv4.
 */
import { isIPv4, isIPv6 } from "node:net";
import { netErrors } from "./errors.ts";

/** Most prefixes one region table holds. */
export const REGION_PREFIXES_MAX = 1_000_000;

/** One row of the configured table. */
export interface RegionRange {
  /** `192.0.2.0/24` or `2001:db8::/32`. */
  readonly cidr: string;
  /** ISO 3166-1 alpha-2 code, upper case. */
  readonly region: string;
}

interface Family {
  readonly bits: number;
  /** Prefix lengths present, longest first, each with network (masked, as bigint) → region. */
  readonly levels: { readonly len: number; readonly nets: Map<bigint, string> }[];
}

/** A built region table. */
export interface RegionTable {
  readonly v4: Family;
  readonly v6: Family;
}

/** The address as a bigint and its family width, or undefined when it is not an IP address. */
export function parseAddress(addr: string): { value: bigint; bits: 32 | 128 } | undefined {
  if (isIPv4(addr)) {
    const p = addr.split(".").map(Number);
    return { value: BigInt((((p[0] ?? 0) << 24) >>> 0) + ((p[1] ?? 0) << 16) + ((p[2] ?? 0) << 8) + (p[3] ?? 0)), bits: 32 };
  }
  if (!isIPv6(addr)) return undefined;
  let a = addr.toLowerCase();
  const pct = a.indexOf("%");
  if (pct >= 0) a = a.slice(0, pct);
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const dq = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dq?.[1] !== undefined) {
    const v4 = parseAddress(dq[1]);
    if (v4 === undefined) return undefined;
    a = `${a.slice(0, -dq[1].length)}${(v4.value >> 16n).toString(16)}:${(v4.value & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = a.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (value >> 32n === 0xffffn) return { value: value & 0xffffffffn, bits: 32 };
  return { value, bits: 128 };
}

function mask(value: bigint, len: number, bits: number): bigint {
  return len === 0 ? 0n : (value >> BigInt(bits - len)) << BigInt(bits - len);
}

/** Builds a table. Throws NET_REGION_TABLE_INVALID on a malformed prefix or code. */
export function buildRegionTable(ranges: readonly RegionRange[]): RegionTable {
  if (ranges.length > REGION_PREFIXES_MAX) throw netErrors.make("NET_REGION_TABLE_INVALID", `at most ${REGION_PREFIXES_MAX} prefixes`);
  const v4 = new Map<number, Map<bigint, string>>();
  const v6 = new Map<number, Map<bigint, string>>();
  for (const r of ranges) {
    if (!/^[A-Z]{2}$/.test(r.region)) throw netErrors.make("NET_REGION_TABLE_INVALID", `region ${r.region}`);
    const m = /^([^/]{1,64})\/([0-9]{1,3})$/.exec(r.cidr);
    // An IPv4-mapped IPv6 prefix would silently become IPv4: require the plain form.
    const addr = m?.[1] !== undefined && !(isIPv6(m[1]) && /\d+\.\d+\.\d+\.\d+$/.test(m[1])) ? parseAddress(m[1]) : undefined;
    const len = Number(m?.[2]);
    const bits = addr === undefined ? 0 : isIPv4(m?.[1] ?? "") ? 32 : 128;
    if (addr === undefined || bits === 0 || len > bits) throw netErrors.make("NET_REGION_TABLE_INVALID", r.cidr);
    const value = bits === 128 && addr.bits === 32 ? addr.value | (0xffffn << 32n) : addr.value;
    const fam = bits === 32 ? v4 : v6;
    const level = fam.get(len) ?? new Map<bigint, string>();
    level.set(mask(value, len, bits), r.region);
    fam.set(len, level);
  }
  const family = (bits: number, m: Map<number, Map<bigint, string>>): Family => ({
    bits,
    levels: [...m.entries()].sort((a, b) => b[0] - a[0]).map(([len, nets]) => ({ len, nets })),
  });
  return { v4: family(32, v4), v6: family(128, v6) };
}

/** The region of `address` (longest matching prefix), or undefined. */
export function regionOf(table: RegionTable, address: string): string | undefined {
  const a = parseAddress(address);
  if (a === undefined) return undefined;
  const fam = a.bits === 32 ? table.v4 : table.v6;
  for (const level of fam.levels) {
    const r = level.nets.get(mask(a.value, level.len, fam.bits));
    if (r !== undefined) return r;
  }
  return undefined;
}
