import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  AMOUNT_CHARS_MAX,
  AMOUNT_MINOR_MAX,
  CURRENCY_EXPONENTS,
  currencyExponent,
  formatAmount,
  parseAmount,
} from "../../src/core/handshake/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { REPO_ROOT } from "../support/paths.ts";

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isNexusError(e)) return e.code;
    throw e;
  }
  return "OK";
}

test("ISO 4217 exponents: 0, 2, 3 and 4-decimal currencies", () => {
  const want: Record<string, number> = {
    JPY: 0, KRW: 0, CLP: 0, ISK: 0, VND: 0, XOF: 0, XAF: 0, XPF: 0, UGX: 0, PYG: 0, BIF: 0, DJF: 0, GNF: 0,
    KMF: 0, RWF: 0, VUV: 0, UYI: 0,
    KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3, IQD: 3, LYD: 3,
    CLF: 4, UYW: 4,
    USD: 2, EUR: 2, GBP: 2, CHF: 2, CNY: 2, INR: 2, BRL: 2, CAD: 2, AUD: 2, MXN: 2, ZAR: 2, SEK: 2,
    HUF: 2, IDR: 2, XCG: 2, ZWG: 2, SLE: 2, VED: 2, VES: 2,
  };
  for (const [c, e] of Object.entries(want)) assert.equal(currencyExponent(c), e, c);
  assert.ok(CURRENCY_EXPONENTS.size >= 170, `table has ${CURRENCY_EXPONENTS.size} codes`);
  for (const [c, e] of CURRENCY_EXPONENTS) {
    assert.match(c, /^[A-Z]{3}$/);
    assert.ok(e === 0 || e === 2 || e === 3 || e === 4);
  }
});

test("unknown currencies and codes without a minor unit are HANDSHAKE_CURRENCY_UNKNOWN", () => {
  for (const c of ["XAU", "XAG", "XDR", "XTS", "XXX", "usd", "US", "USDD", "", " USD", "constructor", "__proto__", "toString"]) {
    assert.equal(code(() => currencyExponent(c)), "HANDSHAKE_CURRENCY_UNKNOWN", c);
    assert.equal(code(() => parseAmount("1", c)), "HANDSHAKE_CURRENCY_UNKNOWN", c);
    assert.equal(code(() => formatAmount(1n, c)), "HANDSHAKE_CURRENCY_UNKNOWN", c);
  }
});

interface Vector {
  readonly input: string;
  readonly currency: string;
  readonly negative?: boolean;
  readonly want?: bigint;
  readonly wantErr?: string;
}

const MALFORMED = "HANDSHAKE_AMOUNT_MALFORMED";
const RANGE = "HANDSHAKE_AMOUNT_OUT_OF_RANGE";

// Hand-written: valid forms, then each kind of hostile form.
const VECTORS: readonly Vector[] = [
  { input: "0", currency: "USD", want: 0n },
  { input: "0.00", currency: "USD", want: 0n },
  { input: "12.34", currency: "USD", want: 1234n },
  { input: "12.3", currency: "USD", want: 1230n },
  { input: "12", currency: "USD", want: 1200n },
  { input: "0.01", currency: "USD", want: 1n },
  { input: "1000", currency: "JPY", want: 1000n },
  { input: "1.234", currency: "KWD", want: 1234n },
  { input: "0.001", currency: "BHD", want: 1n },
  { input: "1.2345", currency: "CLF", want: 12345n },
  { input: "-12.34", currency: "USD", negative: true, want: -1234n },
  { input: "-5", currency: "JPY", negative: true, want: -5n },
  { input: "9999999999999999999999999999.999", currency: "KWD", want: AMOUNT_MINOR_MAX },
  { input: "99999999999999999999999999999.99", currency: "USD", want: AMOUNT_MINOR_MAX },
  { input: "100000000000000000000000000000.00", currency: "USD", wantErr: RANGE },
  { input: "10000000000000000000000000000000", currency: "JPY", wantErr: RANGE },
  { input: "-1", currency: "USD", wantErr: MALFORMED },
  { input: "-0", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "-0.00", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "+1", currency: "USD", wantErr: MALFORMED },
  { input: "+1", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "--1", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "1.234", currency: "USD", wantErr: MALFORMED },
  { input: "1.0", currency: "JPY", wantErr: MALFORMED },
  { input: "1.", currency: "JPY", wantErr: MALFORMED },
  { input: "1.2345", currency: "KWD", wantErr: MALFORMED },
  { input: "1.23456", currency: "CLF", wantErr: MALFORMED },
  { input: "", currency: "USD", wantErr: MALFORMED },
  { input: " 1", currency: "USD", wantErr: MALFORMED },
  { input: "1 ", currency: "USD", wantErr: MALFORMED },
  { input: "1\n", currency: "USD", wantErr: MALFORMED },
  { input: "\t1", currency: "USD", wantErr: MALFORMED },
  { input: "\u00a01", currency: "USD", wantErr: MALFORMED },
  { input: "1\u200b", currency: "USD", wantErr: MALFORMED },
  { input: "1e3", currency: "USD", wantErr: MALFORMED },
  { input: "1E3", currency: "USD", wantErr: MALFORMED },
  { input: "1e-2", currency: "USD", wantErr: MALFORMED },
  { input: "0x10", currency: "USD", wantErr: MALFORMED },
  { input: "0b1", currency: "USD", wantErr: MALFORMED },
  { input: "0o7", currency: "USD", wantErr: MALFORMED },
  { input: "1,000", currency: "USD", wantErr: MALFORMED },
  { input: "1,00", currency: "USD", wantErr: MALFORMED },
  { input: "1_000", currency: "USD", wantErr: MALFORMED },
  { input: "1'000", currency: "USD", wantErr: MALFORMED },
  { input: ".5", currency: "USD", wantErr: MALFORMED },
  { input: ".", currency: "USD", wantErr: MALFORMED },
  { input: "1..2", currency: "USD", wantErr: MALFORMED },
  { input: "1.2.3", currency: "USD", wantErr: MALFORMED },
  { input: "01", currency: "USD", wantErr: MALFORMED },
  { input: "00", currency: "USD", wantErr: MALFORMED },
  { input: "00.01", currency: "USD", wantErr: MALFORMED },
  { input: "-01", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "NaN", currency: "USD", wantErr: MALFORMED },
  { input: "Infinity", currency: "USD", wantErr: MALFORMED },
  { input: "-Infinity", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "１", currency: "USD", wantErr: MALFORMED },
  { input: "١٢", currency: "USD", wantErr: MALFORMED },
  { input: "1٫5", currency: "USD", wantErr: MALFORMED },
  { input: "1n", currency: "USD", wantErr: MALFORMED },
  { input: "$1", currency: "USD", wantErr: MALFORMED },
  { input: "1 USD", currency: "USD", wantErr: MALFORMED },
  { input: "−1", currency: "USD", negative: true, wantErr: MALFORMED },
  { input: "1".repeat(AMOUNT_CHARS_MAX + 1), currency: "JPY", wantErr: MALFORMED },
  { input: "1".repeat(AMOUNT_CHARS_MAX), currency: "JPY", wantErr: RANGE },
  { input: "9".repeat(100_000), currency: "JPY", wantErr: MALFORMED },
];

test("parseAmount: hand-written valid and hostile vectors", () => {
  for (const v of VECTORS) {
    const run = (): bigint => parseAmount(v.input, v.currency, { allowNegative: v.negative === true });
    const label = `${JSON.stringify(v.input.slice(0, 50))} ${v.currency}`;
    if (v.wantErr !== undefined) assert.equal(code(run), v.wantErr, label);
    else assert.equal(run(), v.want, label);
  }
});

test("formatAmount: exact fraction digits of each exponent", () => {
  const cases: readonly [bigint, string, string][] = [
    [0n, "USD", "0.00"],
    [1n, "USD", "0.01"],
    [-1n, "USD", "-0.01"],
    [1234n, "USD", "12.34"],
    [-123456n, "USD", "-1234.56"],
    [7n, "JPY", "7"],
    [-7n, "JPY", "-7"],
    [0n, "JPY", "0"],
    [5n, "KWD", "0.005"],
    [1000n, "KWD", "1.000"],
    [12345n, "CLF", "1.2345"],
    [AMOUNT_MINOR_MAX, "USD", "99999999999999999999999999999.99"],
  ];
  for (const [minor, c, want] of cases) assert.equal(formatAmount(minor, c), want);
  assert.equal(code(() => formatAmount(AMOUNT_MINOR_MAX + 1n, "USD")), RANGE);
  assert.equal(code(() => formatAmount(-AMOUNT_MINOR_MAX - 1n, "USD")), RANGE);
});

const CURRENCIES = ["USD", "JPY", "KWD", "CLF", "EUR", "BHD", "KRW"] as const;

/** What formatAmount must return for a string parseAmount accepted: the input, fraction padded. */
function padded(s: string, exp: number): string {
  const dot = s.indexOf(".");
  if (dot < 0) return exp === 0 ? s : `${s}.${"0".repeat(exp)}`;
  return s + "0".repeat(exp - (s.length - dot - 1));
}

function checkString(s: string, currency: string, negative: boolean): "accepted" | "rejected" {
  let minor: bigint;
  try {
    minor = parseAmount(s, currency, { allowNegative: negative });
  } catch (e) {
    assert.ok(isNexusError(e, MALFORMED) || isNexusError(e, RANGE), `unexpected ${String(e)}`);
    return "rejected";
  }
  // Accepted: it round-trips exactly, and only plain decimals are ever accepted.
  assert.match(s, /^-?[0-9]+(\.[0-9]+)?$/);
  assert.ok(s.length <= AMOUNT_CHARS_MAX);
  assert.equal(formatAmount(minor, currency), padded(s, currencyExponent(currency)));
  assert.equal(parseAmount(formatAmount(minor, currency), currency, { allowNegative: true }), minor);
  return "accepted";
}

test("parseAmount: thousands of hostile strings are rejected with a code or round-trip exactly", () => {
  const alphabet = fc.constantFrom(..."0123456789.-+eE ,_x\u00a0\n１٫".split(""));
  const nearDecimal = fc.string({ unit: alphabet, maxLength: 45 });
  const anyText = fc.string({ unit: "binary", maxLength: 60 });
  // Valid decimals with one character mutated, inserted or removed.
  const mutated = fc
    .tuple(fc.bigInt(-AMOUNT_MINOR_MAX, AMOUNT_MINOR_MAX), fc.constantFrom(...CURRENCIES), fc.nat(), fc.string({ maxLength: 2 }), fc.nat(2))
    .map(([x, c, at, s, how]) => {
      const f = formatAmount(x, c);
      const i = at % (f.length + 1);
      return how === 0 ? f.slice(0, i) + s + f.slice(i) : how === 1 ? f.slice(0, i) + s + f.slice(i + 1) : f.slice(0, i) + f.slice(i + 1);
    });
  const seen = { accepted: 0, rejected: 0 };
  fc.assert(
    fc.property(fc.oneof(nearDecimal, anyText, mutated), fc.constantFrom(...CURRENCIES), fc.boolean(), (s, c, neg) => {
      seen[checkString(s, c, neg)] += 1;
    }),
    { numRuns: 6000 },
  );
  // Both sides of the law are exercised (fast-check's generation is seeded at random).
  assert.ok(seen.rejected > 3000 && seen.accepted > 300, JSON.stringify(seen));
});

test("formatAmount then parseAmount is the identity on every amount in range", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.bigInt(-1000n, 1000n), fc.bigInt(-AMOUNT_MINOR_MAX, AMOUNT_MINOR_MAX)),
      fc.constantFrom(...CURRENCY_EXPONENTS.keys()),
      (x, c) => {
        const s = formatAmount(x, c);
        assert.ok(s.length <= AMOUNT_CHARS_MAX);
        assert.equal(parseAmount(s, c, { allowNegative: true }), x);
      },
    ),
    { numRuns: 3000 },
  );
});

test("no floating point near money: handshake sources use no float conversions", () => {
  const dir = join(REPO_ROOT, "src", "core", "handshake");
  const forbidden = /parseFloat|toFixed|toPrecision|Number\(|Math\.(round|floor|ceil|trunc)|Number\.parse/;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".ts"))) {
    const src = readFileSync(join(dir, f), "utf8");
    assert.doesNotMatch(src, forbidden, f);
  }
});
