/**
 * ISO 4217 currencies and exact decimal amounts. Money is a bigint of minor units; the only
 * conversion to and from human decimals is here, by string manipulation only (no floats).
 *
 * The exponent table is ISO 4217 List One ("minor unit" column), as amended through 2025.
 * Codes whose minor unit is "N.A." (precious metals XAU/XAG/XPD/XPT, bond units XBA-XBD, XDR,
 * XSU, XUA, the testing code XTS and XXX) are not money Nexus can split and are left out.
 * Codes withdrawn from the list stay in the table (HRK, CUC, SLL, ZWL...): the ledger keeps
 * entries in them forever and replaying it must still read them. A code is never removed and
 * its exponent never changes (that would change what stored minor units mean for display).
 */
import { handshakeErrors } from "./errors.ts";

/** The number of decimal places of a currency's minor unit. */
export type MinorUnitExponent = 0 | 2 | 3 | 4;

/** Most characters of a decimal amount string (sign, digits, point). */
export const AMOUNT_CHARS_MAX = 40;

/**
 * Largest magnitude of one amount, in minor units: 31 digits, as the command schemas carry
 * (core/policy MinorUnits). Formatted with any exponent it fits in AMOUNT_CHARS_MAX.
 */
export const AMOUNT_MINOR_MAX = 10n ** 31n - 1n;

const EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
const EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND";
const EXPONENT_4 = "CLF UYW";
const EXPONENT_2 = [
  "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN",
  "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP",
  "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT",
  "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO",
  "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS",
  "SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD",
  "XCG YER ZAR ZMW ZWG ZWL",
].join(" ");

function tableOf(): ReadonlyMap<string, MinorUnitExponent> {
  const table = new Map<string, MinorUnitExponent>();
  const add = (codes: string, e: MinorUnitExponent): void => {
    for (const c of codes.split(" ")) table.set(c, e);
  };
  add(EXPONENT_0, 0);
  add(EXPONENT_2, 2);
  add(EXPONENT_3, 3);
  add(EXPONENT_4, 4);
  return table;
}

/** ISO 4217 alphabetic code → minor-unit exponent (a Map: no prototype keys such as "constructor"). */
export const CURRENCY_EXPONENTS: ReadonlyMap<string, MinorUnitExponent> = tableOf();

/** True when `code` is a currency of the table. */
export function isKnownCurrency(code: string): boolean {
  return CURRENCY_EXPONENTS.has(code);
}

/** The minor-unit exponent of `code`; throws HANDSHAKE_CURRENCY_UNKNOWN. */
export function currencyExponent(code: string): MinorUnitExponent {
  const e = typeof code === "string" ? CURRENCY_EXPONENTS.get(code) : undefined;
  if (e === undefined) throw handshakeErrors.make("HANDSHAKE_CURRENCY_UNKNOWN", printable(code));
  return e;
}

/** Options of parseAmount. */
export interface ParseAmountOptions {
  /** Accept a leading '-' (refund deltas, signed figures); amounts of events are positive. */
  readonly allowNegative?: boolean;
}

// Plain decimal: optional '-', an integer part without leading zeros, an optional fraction.
// No '+', no exponent, no whitespace, no grouping, no bare '.', ASCII digits only.
const DECIMAL = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

/**
 * Parses a human decimal ("12.34") of `currency` into minor units (1234n), exactly. Fewer
 * fraction digits than the exponent are padded ("1.5" USD = 150n); more are rejected, never
 * rounded. Throws HANDSHAKE_CURRENCY_UNKNOWN, HANDSHAKE_AMOUNT_MALFORMED, HANDSHAKE_AMOUNT_OUT_OF_RANGE.
 */
export function parseAmount(decimal: string, currency: string, options: ParseAmountOptions = {}): bigint {
  const exp = currencyExponent(currency);
  if (typeof decimal !== "string") throw malformed("not a string");
  if (decimal.length === 0) throw malformed("empty");
  if (decimal.length > AMOUNT_CHARS_MAX) throw malformed(`longer than ${AMOUNT_CHARS_MAX} characters`);
  const m = DECIMAL.exec(decimal);
  if (m === null) throw malformed(`${JSON.stringify(decimal)} is not a plain decimal`);
  const [, sign = "", int = "", frac = ""] = m;
  if (sign === "-" && options.allowNegative !== true) throw malformed("a sign is not allowed here");
  if (frac.length > exp) throw malformed(`${currency} has ${exp} fraction digits, got ${frac.length}`);
  const magnitude = BigInt(int + frac.padEnd(exp, "0"));
  if (sign === "-" && magnitude === 0n) throw malformed("negative zero");
  if (magnitude > AMOUNT_MINOR_MAX) throw handshakeErrors.make("HANDSHAKE_AMOUNT_OUT_OF_RANGE", `above ${AMOUNT_MINOR_MAX} minor units`);
  return sign === "-" ? -magnitude : magnitude;
}

/**
 * Formats minor units as a decimal of `currency` with exactly its fraction digits
 * (1234n USD = "12.34", 5n KWD = "0.005", 7n JPY = "7"). parseAmount(formatAmount(x)) === x.
 */
export function formatAmount(minor: bigint, currency: string): string {
  const exp = currencyExponent(currency);
  if (typeof minor !== "bigint") throw malformed("not a bigint");
  const negative = minor < 0n;
  const magnitude = negative ? -minor : minor;
  if (magnitude > AMOUNT_MINOR_MAX) throw handshakeErrors.make("HANDSHAKE_AMOUNT_OUT_OF_RANGE", `above ${AMOUNT_MINOR_MAX} minor units`);
  const digits = magnitude.toString().padStart(exp + 1, "0");
  const int = digits.slice(0, digits.length - exp);
  const body = exp === 0 ? int : `${int}.${digits.slice(digits.length - exp)}`;
  return negative ? `-${body}` : body;
}

function malformed(detail: string): Error {
  return handshakeErrors.make("HANDSHAKE_AMOUNT_MALFORMED", detail);
}

/** A short, printable rendering of untrusted input for error details. */
function printable(v: unknown): string {
  const s = typeof v === "string" ? v : typeof v;
  return JSON.stringify(s.length > 16 ? `${s.slice(0, 16)}…` : s);
}
