/**
 * Domain names (RFC 1034 §3.1, RFC 1035 §2.3.4 and §5.1). A `Name` is the canonical presentation
 * form: absolute (trailing dot; the root is "."), ASCII letters lower-cased (names compare without
 * case, RFC 4343 §3), and every octet outside [a-z0-9*_/-] escaped (`\.` style for printable ones,
 * `\DDD` otherwise), so one name has exactly one spelling and can key a Map.
 */
import { dnsErrors } from "./errors.ts";

/** A canonical, absolute, lower-case domain name in presentation form. */
export type Name = string & { readonly __dnsName: true };

/** RFC 1035 §2.3.4: labels are 63 octets or less. */
export const LABEL_OCTETS_MAX = 63;
/** RFC 1035 §2.3.4: names are 255 octets or less in wire form (length octets and the root included). */
export const NAME_OCTETS_MAX = 255;
/** The root name. */
export const ROOT = "." as Name;

// Octets written without an escape in presentation form (knot's scanner accepts exactly these).
const PLAIN = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*_/-") PLAIN[c.charCodeAt(0)] = 1;

function bad(text: string, why: string): never {
  throw dnsErrors.make("DNS_NAME_INVALID", `${JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text)}: ${why}`);
}

/**
 * Parses a presentation name into its labels (raw octets, case kept). A name without a trailing
 * dot is relative and gets `origin` appended; "@" is the origin (RFC 1035 §5.1).
 */
export function parseLabels(text: string, origin?: readonly Uint8Array[]): Uint8Array[] {
  if (text === "@") {
    if (origin === undefined) bad(text, "'@' needs an origin");
    return [...origin];
  }
  if (text === ".") return [];
  if (text.length === 0) bad(text, "empty name");
  if (text.length > 4 * NAME_OCTETS_MAX) bad(text, "name too long");
  const labels: Uint8Array[] = [];
  let octets = 1; // the root label's length octet
  let cur: number[] = [];
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x2e /* . */) {
      if (cur.length === 0) bad(text, "empty label");
      octets += cur.length + 1;
      if (octets > NAME_OCTETS_MAX) bad(text, "name longer than 255 octets");
      labels.push(Uint8Array.from(cur));
      cur = [];
      if (i === text.length - 1) absolute = true;
      continue;
    }
    let octet: number;
    if (ch === 0x5c /* \ */) {
      const d = text.slice(i + 1, i + 4);
      if (/^[0-9]/.test(d)) {
        // RFC 1035 §5.1: \DDD is exactly three decimal digits naming one octet.
        if (!/^[0-9]{3}$/.test(d)) bad(text, "\\DDD needs three digits");
        octet = Number(d);
        if (octet > 255) bad(text, "\\DDD above 255");
        i += 3;
      } else {
        if (i + 1 >= text.length) bad(text, "dangling backslash");
        octet = text.charCodeAt(i + 1);
        if (octet > 0x7e || octet < 0x20) bad(text, "escaped character is not printable ASCII");
        i += 1;
      }
    } else {
      if (ch > 0xff || PLAIN[ch] !== 1) bad(text, `character '${text[i]}' must be escaped`);
      octet = ch;
    }
    cur.push(octet);
    if (cur.length > LABEL_OCTETS_MAX) bad(text, "label longer than 63 octets");
  }
  if (!absolute) {
    octets += cur.length + 1;
    if (octets > NAME_OCTETS_MAX) bad(text, "name longer than 255 octets");
    labels.push(Uint8Array.from(cur));
    if (origin === undefined) bad(text, "relative name without an origin");
    for (const l of origin) {
      octets += l.length + 1;
      if (octets > NAME_OCTETS_MAX) bad(text, "name longer than 255 octets once the origin is appended");
      labels.push(l);
    }
  }
  return labels;
}

/** The presentation text of one label (lower-cased when `lower`). */
export function labelText(label: Uint8Array, lower = true): string {
  let s = "";
  for (const raw of label) {
    const o = lower && raw >= 0x41 && raw <= 0x5a ? raw + 0x20 : raw;
    if (PLAIN[o] === 1) s += String.fromCharCode(o);
    else if (o > 0x20 && o < 0x7f) s += `\\${String.fromCharCode(o)}`;
    else s += `\\${String(o).padStart(3, "0")}`;
  }
  return s;
}

/** The canonical Name of a list of labels. */
export function labelsToName(labels: readonly Uint8Array[]): Name {
  if (labels.length === 0) return ROOT;
  let s = "";
  for (const l of labels) s += `${labelText(l)}.`;
  return s as Name;
}

/** Parses and canonicalises a name; relative names are completed with `origin`. Throws DNS_NAME_INVALID. */
export function toName(text: string, origin?: Name): Name {
  return labelsToName(parseLabels(text, origin === undefined ? undefined : nameLabels(origin)));
}

/** An absolute name written with or without its trailing dot (zone origins, key names). */
export function toAbsoluteName(text: string): Name {
  return labelsToName(parseLabels(text, []));
}

/** True when `s` is already a canonical Name. */
export function isCanonicalName(s: string): s is Name {
  try {
    return labelsToName(parseLabels(s)) === s;
  } catch {
    return false;
  }
}

/** The labels of a canonical name (octets, lower-case). */
export function nameLabels(name: Name): Uint8Array[] {
  return parseLabels(name);
}

/** Uncompressed wire form of a name (RFC 1035 §3.1). */
export function nameToWire(name: Name): Uint8Array {
  const labels = nameLabels(name);
  let n = 1;
  for (const l of labels) n += l.length + 1;
  const out = new Uint8Array(n);
  let p = 0;
  for (const l of labels) {
    out[p++] = l.length;
    out.set(l, p);
    p += l.length;
  }
  out[p] = 0;
  return out;
}

/** Index of the first label separator of a canonical name (a dot not escaped), or -1. */
function firstSeparator(name: string): number {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) {
      i += /[0-9]/.test(name[i + 1] ?? "") ? 3 : 1;
    } else if (c === 0x2e) {
      return i;
    }
  }
  return -1;
}

/** The name without its first label; undefined for the root. */
export function parentName(name: Name): Name | undefined {
  if (name === ROOT) return undefined;
  const i = firstSeparator(name);
  return (i === name.length - 1 ? ROOT : name.slice(i + 1)) as Name;
}

/** The first label of a canonical name, in presentation form ("" for the root). */
export function firstLabel(name: Name): string {
  if (name === ROOT) return "";
  return name.slice(0, firstSeparator(name));
}

/** Number of labels (the root has 0). */
export function labelCount(name: Name): number {
  let n = 0;
  for (let cur: Name | undefined = name; cur !== undefined && cur !== ROOT; cur = parentName(cur)) n++;
  return n;
}

/** True when `name` equals `ancestor` or lies below it. */
export function isSubdomain(name: Name, ancestor: Name): boolean {
  if (ancestor === ROOT || name === ancestor) return true;
  if (name.length <= ancestor.length || !name.endsWith(ancestor)) return false;
  // A textual suffix may still split an escape ("a\\.b." ends with ".b." without being below "b."): walk labels.
  for (let cur = parentName(name); cur !== undefined && cur.length >= ancestor.length; cur = parentName(cur)) {
    if (cur === ancestor) return true;
  }
  return false;
}

/** The names from `name` up to and including `stop` (which must be an ancestor), nearest first. */
export function ancestorsUpTo(name: Name, stop: Name): Name[] {
  const out: Name[] = [];
  for (let cur: Name | undefined = name; cur !== undefined; cur = parentName(cur)) {
    out.push(cur);
    if (cur === stop) return out;
  }
  return out;
}

/** `name` written relative to `origin` ("@" for the origin itself), or absolute when outside it. */
export function relativeName(name: Name, origin: Name): string {
  if (name === origin) return "@";
  if (origin !== ROOT && isSubdomain(name, origin)) return name.slice(0, name.length - origin.length - 1);
  return name;
}

/** RFC 952/1123 host name (letters, digits, hyphens; a label starts and ends with a letter or digit), optionally with a leading "*" label. */
export function isHostName(name: Name, wildcardOk = false): boolean {
  if (name === ROOT) return false;
  let cur: Name | undefined = name;
  let first = true;
  while (cur !== undefined && cur !== ROOT) {
    const label = firstLabel(cur);
    const ok = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(label) || (first && wildcardOk && label === "*");
    if (!ok) return false;
    first = false;
    cur = parentName(cur);
  }
  return true;
}

/** True for a wildcard owner (RFC 4592 §2.1.1: the first label is exactly "*"). */
export function isWildcard(name: Name): boolean {
  return name.startsWith("*.") || name === "*";
}
