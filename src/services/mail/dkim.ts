/**
 * DKIM keys per IMVU domain (RFC 6376), in two algorithms: rsa-sha256 with 2048-bit keys (RFC 8301
 * section 3.2 asks for at least 1024, 2048 is today's floor) and ed25519-sha256 (RFC 8463). Each
 * message is signed with both, so verifiers that know only RSA still pass it.
 *
 * Also the TXT records a domain publishes for mail: one DKIM key record per selector, SPF
 * (RFC 7208) and DMARC (RFC 7489). `dkimDnsRecords` is pure; the lead puts its output into the
 * IMVU's zone.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { dkimSign } from "mailauth";
import { sha256Hex } from "../../core/crypto/hash.ts";
import { smtpErrors } from "./smtp/errors.ts";

/** RSA modulus length of generated keys. */
export const DKIM_RSA_BITS = 2048;
/** Smallest RSA modulus accepted for signing. */
export const DKIM_RSA_BITS_MIN = 2048;
/** RFC 1035 3.3.14: one character-string of a TXT record holds at most 255 octets. */
export const TXT_STRING_BYTES_MAX = 255;
/** The two signing algorithms used. */
export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";

/** A DKIM signing key of a domain; `privateKeyPem` is PKCS#8 PEM and never leaves the secret store. */
export interface DkimKey {
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKeyPem: string;
}

function ymd(d: Date): string {
  return d.toISOString().slice(0, 10).replace(/-/g, "");
}

/**
 * Fresh keys for a domain: RSA-2048 under selector `nx-<yyyymmdd>-rsa` and Ed25519 under
 * `nx-<yyyymmdd>-ed25519` (dated, so a later rotation publishes new selectors beside the old).
 */
export function generateDkimKeys(now: Date = new Date()): DkimKey[] {
  const day = ymd(now);
  const rsa = generateKeyPairSync("rsa", { modulusLength: DKIM_RSA_BITS, publicExponent: 0x10001 });
  const ed = generateKeyPairSync("ed25519");
  return [
    { selector: `nx-${day}-rsa`, algorithm: "rsa-sha256", privateKeyPem: pem(rsa.privateKey) },
    { selector: `nx-${day}-ed25519`, algorithm: "ed25519-sha256", privateKeyPem: pem(ed.privateKey) },
  ];
}

function pem(k: KeyObject): string {
  return k.export({ format: "pem", type: "pkcs8" }).toString();
}

/** Checks a key (type matches the algorithm, RSA at least 2048 bits) and returns its private KeyObject. */
export function parseDkimKey(key: DkimKey): KeyObject {
  let k: KeyObject;
  try {
    k = createPrivateKey(key.privateKeyPem);
  } catch {
    throw smtpErrors.make("SMTP_DKIM_KEY_INVALID", key.selector);
  }
  const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
  const ok =
    (key.algorithm === "rsa-sha256" && k.asymmetricKeyType === "rsa" && bits >= DKIM_RSA_BITS_MIN) ||
    (key.algorithm === "ed25519-sha256" && k.asymmetricKeyType === "ed25519");
  if (!ok) throw smtpErrors.make("SMTP_DKIM_KEY_INVALID", key.selector);
  return k;
}

/**
 * The p= value of a key record: for RSA the base64 of the SubjectPublicKeyInfo DER (RFC 6376
 * 3.6.1); for Ed25519 the base64 of the raw 32-byte public key (RFC 8463 section 4).
 */
export function dkimPublicKeyValue(key: DkimKey): string {
  const pub = createPublicKey(parseDkimKey(key));
  const spki = pub.export({ format: "der", type: "spki" });
  if (key.algorithm === "rsa-sha256") return spki.toString("base64");
  return spki.subarray(spki.length - 32).toString("base64");
}

/** The key record text: `v=DKIM1; k=rsa|ed25519; p=...` (RFC 6376 3.6.1, RFC 8463 section 4). */
export function dkimKeyRecord(key: DkimKey): string {
  const k = key.algorithm === "rsa-sha256" ? "rsa" : "ed25519";
  return `v=DKIM1; k=${k}; p=${dkimPublicKeyValue(key)}`;
}

/** What the ledger records for a DKIM key: SHA-256 (hex) of the public key's SubjectPublicKeyInfo DER. */
export function dkimKeyCommitment(key: DkimKey): string {
  const spki = createPublicKey(parseDkimKey(key)).export({ format: "der", type: "spki" });
  return sha256Hex(new Uint8Array(spki));
}

/** A TXT record to publish: owner name (absolute, no trailing dot) and its character-strings. */
export interface TxtRecord {
  readonly name: string;
  readonly type: "TXT";
  readonly purpose: "dkim" | "spf" | "dmarc";
  /** Character-strings of at most 255 octets each; verifiers concatenate them (RFC 6376 3.6.2.2, RFC 7208 3.3). */
  readonly strings: readonly string[];
}

/** How a domain states its mail policy. */
export interface MailDnsPolicy {
  /** SPF mechanisms authorising the platform's senders, before the `all` (default `["mx"]`). */
  readonly spfMechanisms?: readonly string[];
  /** SPF's final mechanism (default `-all`: nothing else sends for the domain). */
  readonly spfAll?: "-all" | "~all";
  /** DMARC policy (default `quarantine`). */
  readonly dmarcPolicy?: "none" | "quarantine" | "reject";
  /** Optional aggregate report address (a mailto: URI, RFC 7489 6.3 rua). */
  readonly dmarcRua?: string;
}

/** Splits a TXT value into character-strings of at most 255 octets (ASCII values only). */
export function splitTxt(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += TXT_STRING_BYTES_MAX) out.push(value.slice(i, i + TXT_STRING_BYTES_MAX));
  return out.length === 0 ? [""] : out;
}

const MECHANISM_RE = /^[+?~-]?(?:mx|a|ip4:[0-9./]+|ip6:[0-9a-fA-F:./]+|include:[a-z0-9.-]+|a:[a-z0-9.-]+|mx:[a-z0-9.-]+)$/;

/**
 * The TXT records to publish for a mail domain: each DKIM key at `<selector>._domainkey.<domain>`,
 * SPF at the domain (`v=spf1 mx -all` by default) and DMARC at `_dmarc.<domain>` with relaxed
 * alignment (`v=DMARC1; p=quarantine; adkim=r; aspf=r`). Pure.
 */
export function dkimDnsRecords(domain: string, keys: readonly DkimKey[], policy: MailDnsPolicy = {}): TxtRecord[] {
  const d = domain.toLowerCase().replace(/\.$/, "");
  const out: TxtRecord[] = keys.map((k) => ({
    name: `${k.selector}._domainkey.${d}`,
    type: "TXT",
    purpose: "dkim",
    strings: splitTxt(dkimKeyRecord(k)),
  }));
  const mechanisms = policy.spfMechanisms ?? ["mx"];
  for (const m of mechanisms) {
    if (!MECHANISM_RE.test(m)) throw smtpErrors.make("SMTP_CONFIG_INVALID", `SPF mechanism ${m}`);
  }
  out.push({ name: d, type: "TXT", purpose: "spf", strings: splitTxt(["v=spf1", ...mechanisms, policy.spfAll ?? "-all"].join(" ")) });
  const rua = policy.dmarcRua;
  if (rua !== undefined && !/^mailto:[^\s;,!]+@[a-z0-9.-]+$/i.test(rua)) throw smtpErrors.make("SMTP_CONFIG_INVALID", `DMARC rua ${rua}`);
  const dmarc = `v=DMARC1; p=${policy.dmarcPolicy ?? "quarantine"}; adkim=r; aspf=r${rua === undefined ? "" : `; rua=${rua}`}`;
  out.push({ name: `_dmarc.${d}`, type: "TXT", purpose: "dmarc", strings: splitTxt(dmarc) });
  return out;
}

/**
 * DKIM-Signature header fields for `message` (CRLF, header and body) signed by `domain` with each
 * of `keys` (relaxed/relaxed, RFC 6376 3.4; mailauth's default header list, the RFC 6376 5.4.1
 * set), ready to prepend. SMTP_DKIM_SIGN_FAILED when any
 * signature could not be made.
 */
export async function dkimSignMessage(message: Buffer, domain: string, keys: readonly DkimKey[]): Promise<string> {
  const [first] = keys;
  if (first === undefined) throw smtpErrors.make("SMTP_DKIM_SIGN_FAILED", `no DKIM key for ${domain}`);
  const signatureData = keys.map((k) => ({
    signingDomain: domain,
    selector: k.selector,
    privateKey: k.privateKeyPem,
    algorithm: k.algorithm,
    canonicalization: "relaxed/relaxed",
  }));
  const result = await dkimSign(message, {
    signingDomain: domain,
    selector: first.selector,
    privateKey: first.privateKeyPem,
    signatureData,
  });
  const err = result.errors[0];
  if (err !== undefined || result.signatures === "") {
    throw smtpErrors.make("SMTP_DKIM_SIGN_FAILED", err === undefined ? "no signature produced" : String(err.err?.message ?? err));
  }
  return result.signatures;
}
