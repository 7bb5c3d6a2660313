/**
 * RFC 8785 canonical JSON and the strict parser: the cyberphone/json-canonicalization test data
 * (../shared/vectors/jcs, byte-exact against output/ and outhex/), every line of the ES6 number
 * files, rejections, bounds, and round-trip and differential properties against JSON.parse.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  JSON_DEPTH_CEILING,
  JSON_DEPTH_MAX,
  canonicalBytes,
  canonicalize,
  parseJsonStrict,
  parseJsonStrictBytes,
  type JsonValue,
} from "../../src/core/crypto/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { VECTORS_DIR, readVector } from "../support/paths.ts";

const JCS_DIR = join(VECTORS_DIR, "jcs");

/** Asserts `fn` throws CRYPTO_JSON_INVALID (and nothing else: no stray RangeError). */
function rejects(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => isNexusError(e, "CRYPTO_JSON_INVALID"), what);
}

function positionOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return isNexusError(e) ? e.details?.position : e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Published vectors

test("vectors: every jcs/input file canonicalizes byte-exactly to output/ and outhex/", () => {
  const names = readdirSync(join(JCS_DIR, "input")).filter((n) => n.endsWith(".json")).sort();
  assert.deepEqual(names, ["arrays.json", "french.json", "structures.json", "unicode.json", "values.json", "weird.json"]);
  for (const name of names) {
    const input = readVector(`jcs/input/${name}`);
    const want = readFileSync(join(JCS_DIR, "output", name));
    const hex = readVector(`jcs/outhex/${name.replace(/\.json$/, ".txt")}`).trim().split(/\s+/);
    const wantFromHex = Buffer.from(hex.join(""), "hex");
    assert.equal(wantFromHex.length, hex.length, `${name}: outhex is one byte per token`);
    assert.deepEqual(wantFromHex, want, `${name}: output/ and outhex/ agree`);

    const got = Buffer.from(canonicalBytes(parseJsonStrict(input)));
    assert.deepEqual(got, want, `${name}: canonical bytes`);
    assert.deepEqual(Buffer.from(canonicalBytes(JSON.parse(input))), want, `${name}: same from JSON.parse`);
    assert.equal(canonicalize(parseJsonStrictBytes(new Uint8Array(want))), want.toString("utf8"), `${name}: output is a fixed point`);
  }
});

function doubleOfHex(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

/** Each line is "<IEEE 754 bits in hex, leading zeros dropped>,<ES6 serialisation>". */
function checkNumberFile(rel: string, linesWanted: number): void {
  const lines = readVector(rel).split("\n").filter((l) => l !== "");
  assert.equal(lines.length, linesWanted, `${rel} line count`);
  for (const line of lines) {
    const m = /^([0-9a-f]{1,16}),(.+)$/.exec(line);
    assert.ok(m, `${rel}: line ${JSON.stringify(line)} has the documented format`);
    const [, hex = "", want = ""] = m;
    const n = doubleOfHex(hex);
    assert.ok(Number.isFinite(n), `${rel}: ${line} is finite`);
    assert.equal(canonicalize(n), want, `${rel}: ${line}`);
    assert.equal(canonicalize([n, { n }]), `[${want},{"n":${want}}]`);
    // The parser reads the serialisation back to the same double (-0 reads as 0, written "0").
    const back = parseJsonStrict(want);
    assert.equal(back, n === 0 ? 0 : n, `${rel}: ${want} parses back`);
  }
}

test("vectors: every line of es6-number-samples.txt (RFC 8785 §3.2.2.3)", () => {
  checkNumberFile("jcs/es6-number-samples.txt", 7);
});

test("vectors: every line of es6-numbers-first1000.txt (RFC 8785 §3.2.2.3)", () => {
  checkNumberFile("jcs/es6-numbers-first1000.txt", 1000);
});

// ---------------------------------------------------------------------------------------------
// canonicalize

test("canonicalize: RFC 8785 §3.2.3 sorts by UTF-16 code units, not code points or locale", () => {
  // U+1F600 is D83D DE00 in UTF-16: before U+FFFF by code units, after it by code points.
  assert.equal(canonicalize({ "\uffff": 1, "\u{1f600}": 2 }), '{"\u{1f600}":2,"\uffff":1}');
  assert.equal(canonicalize({ b: 1, B: 2, a: 3, "": 4, "10": 5, "9": 6 }), '{"":4,"10":5,"9":6,"B":2,"a":3,"b":1}');
  assert.equal(canonicalize({ z: { y: [3, { b: null, a: true }] } }), '{"z":{"y":[3,{"a":true,"b":null}]}}');
});

test("canonicalize: strings and numbers as ES6 JSON.stringify (RFC 8785 §3.2.2)", () => {
  assert.equal(canonicalize("\u0000\u0008\t\n\u000b\f\r\u001f\"\\/\u007f\u2028é"), '"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\"\\\\/\u007f\u2028é"');
  assert.equal(canonicalize(-0), "0");
  assert.equal(canonicalize(1e21), "1e+21");
  assert.equal(canonicalize(1e-7), "1e-7");
  assert.equal(canonicalize(0.1 + 0.2), "0.30000000000000004");
  assert.equal(canonicalize(Number.MAX_SAFE_INTEGER + 2), "9007199254740992");
  assert.equal(canonicalize([true, false, null]), "[true,false,null]");
  assert.equal(canonicalize(Object.assign(Object.create(null) as object, { b: 1, a: 2 })), '{"a":2,"b":1}');
});

test("canonicalize: rejects what JSON cannot carry, with CRYPTO_JSON_INVALID", () => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const symbolKeyed = { a: 1, [Symbol("s")]: 2 };
  const cases: [string, unknown][] = [
    ["undefined", undefined],
    ["NaN", NaN],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    ["function", () => 1],
    ["symbol", Symbol("x")],
    ["bigint", 10n],
    ["Date", new Date(0)],
    ["Map", new Map()],
    ["class instance", new Point()],
    ["boxed number", Object(1)],
    ["Uint8Array", new Uint8Array(2)],
    ["member undefined", { a: undefined }],
    ["element undefined", [undefined]],
    // eslint-disable-next-line no-sparse-arrays -- a hole is what is tested
    ["sparse array", [1, , 2]],
    ["nested NaN", { a: [{ b: NaN }] }],
    ["nested bigint", { amount: 5n }],
    ["lone high surrogate", "\ud800"],
    ["lone low surrogate", "a\udc00b"],
    ["reversed pair", "\ude00\ud83d"],
    ["lone surrogate in a key", { "\ud83d": 1 }],
    ["symbol key", symbolKeyed],
    ["cycle", cyclic],
  ];
  for (const [what, v] of cases) rejects(() => canonicalize(v), what);
});

test("canonicalize: nesting is bounded without overflowing the stack", () => {
  let ok: unknown = 0;
  for (let i = 0; i < JSON_DEPTH_CEILING; i++) ok = [ok];
  assert.equal(canonicalize(ok).length, 2 * JSON_DEPTH_CEILING + 1);
  rejects(() => canonicalize([ok]), "one level past the ceiling");
});

// ---------------------------------------------------------------------------------------------
// parseJsonStrict

test("parseJsonStrict: accepts RFC 8259 JSON, like JSON.parse", () => {
  const texts = [
    "0",
    "-0",
    "-1.5e+3",
    "1E-2",
    '"\\u00e9\\ud83d\\ude00\\/"',
    " \t\r\n[ ] ",
    '{"a":[1,{"b":null}],"c":"d","e":true,"f":false}',
    '"\u2028\u2029\u007f"',
    '{"":0}',
    "123456789012345678901234567890",
  ];
  for (const t of texts) assert.deepEqual(parseJsonStrict(t), JSON.parse(t), t);
});

test("parseJsonStrict: rejects duplicate member names, also when spelled differently", () => {
  const texts = ['{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"x":{"a":1,"b":2,"a":1}}', '[{"a":1},{"b":1,"b":1}]', '{"__proto__":1,"__proto__":2}', '{"é":1,"\\u00e9":1}'];
  for (const t of texts) rejects(() => parseJsonStrict(t), t);
  assert.equal(positionOf(() => parseJsonStrict('{"a":1,"a":2}')), 7);
  assert.deepEqual(parseJsonStrict('{"a":1,"A":2}'), { a: 1, A: 2 });
});

test("parseJsonStrict: rejects everything outside the RFC 8259 grammar, with a position", () => {
  const texts: [string, number][] = [
    ["", 0],
    ["   ", 3],
    ["[1,]", 3],
    ['{"a":1,}', 7],
    ["01", 1],
    ["-", 0],
    ["1.", 1],
    [".5", 0],
    ["+1", 0],
    ["1e", 1],
    ["NaN", 0],
    ["Infinity", 0],
    ["-Infinity", 0],
    ["'a'", 0],
    ["[1] // c", 4],
    ["/* c */ 1", 0],
    ["\ufeff{}", 0],
    ['"a\nb"', 2],
    ['"\u0000"', 1],
    ['"\\x41"', 1],
    ['"\\u12"', 1],
    ['"\\U0041"', 1],
    ['"abc', 0],
    ['"\\', 1],
    ["[1]x", 3],
    ["{} {}", 3],
    ["{a:1}", 1],
    ['{"a" 1}', 5],
    ["tru", 0],
    ["nul", 0],
    ["True", 0],
    ["[1 2]", 3],
    ["\u000b1", 0],
    ["\u00a01", 0],
    ["1e400", 0],
    ["-1e400", 0],
    ["[", 1],
    ['{"a":', 5],
    ["0x10", 1],
    ["1_000", 1],
  ];
  for (const [t, pos] of texts) {
    rejects(() => parseJsonStrict(t), JSON.stringify(t));
    assert.equal(positionOf(() => parseJsonStrict(t)), pos, `position for ${JSON.stringify(t)}`);
  }
});

test("parseJsonStrict: rejects lone surrogates, escaped or raw (RFC 8785 §3.2.2.2)", () => {
  for (const t of ['"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\ude00\\ud83d"', '"\ud800"', '{"\\udfff":1}', '["ok","x\\ud83d"]']) {
    rejects(() => parseJsonStrict(t), t);
  }
  assert.equal(parseJsonStrict('"\\ud83d\\ude00"'), "\u{1f600}");
  assert.equal(parseJsonStrict('"\ud83d\\ude00"'), "\u{1f600}", "a raw high and an escaped low surrogate still make a pair");
});

test("parseJsonStrict: depth is bounded by JSON_DEPTH_MAX, deep input fails cleanly (no stack overflow)", () => {
  const nest = (n: number): string => "[".repeat(n) + "]".repeat(n);
  assert.ok(Array.isArray(parseJsonStrict(nest(JSON_DEPTH_MAX))));
  rejects(() => parseJsonStrict(nest(JSON_DEPTH_MAX + 1)), "one past the default depth");
  assert.equal(positionOf(() => parseJsonStrict(nest(JSON_DEPTH_MAX + 1))), JSON_DEPTH_MAX);
  const objects = (n: number): string => '{"a":'.repeat(n) + "0" + "}".repeat(n);
  assert.deepEqual(parseJsonStrict(objects(3), { depthMax: 3 }), { a: { a: { a: 0 } } });
  rejects(() => parseJsonStrict(objects(4), { depthMax: 3 }), "objects past a custom depth");
  rejects(() => parseJsonStrict("[".repeat(1_000_000), { charsMax: 2_000_000 }), "a million open brackets");
  rejects(() => parseJsonStrict(objects(200_000), { charsMax: 2_000_000, depthMax: JSON_DEPTH_CEILING }), "deep objects");
  assert.equal(parseJsonStrict("1", { depthMax: 0 }), 1);
  rejects(() => parseJsonStrict("[]", { depthMax: 0 }), "depth 0 allows only scalars");
  assert.throws(() => parseJsonStrict("1", { depthMax: JSON_DEPTH_CEILING + 1 }), RangeError);
  assert.throws(() => parseJsonStrict("1", { charsMax: -1 }), RangeError);
});

test("parseJsonStrict: size is bounded by charsMax", () => {
  assert.equal(parseJsonStrict('"abcd"', { charsMax: 6 }), "abcd");
  rejects(() => parseJsonStrict('"abcde"', { charsMax: 6 }), "7 chars over 6");
  rejects(() => parseJsonStrict(`"${"x".repeat(1024 * 1024)}"`), "over the 1 MiB default");
  rejects(() => parseJsonStrictBytes(new Uint8Array(7).fill(0x31), { charsMax: 6 }), "7 bytes over 6");
});

test("parseJsonStrictBytes: rejects invalid UTF-8 and a byte order mark", () => {
  const bad = [
    [0x22, 0xff, 0x22],
    [0x22, 0xc0, 0x80, 0x22], // overlong NUL
    [0x22, 0xed, 0xa0, 0x80, 0x22], // an encoded surrogate (CESU-8)
    [0x22, 0xe2, 0x82, 0x22], // truncated sequence
    [0xef, 0xbb, 0xbf, 0x31], // BOM
  ];
  for (const b of bad) rejects(() => parseJsonStrictBytes(new Uint8Array(b)), b.join(","));
  assert.equal(parseJsonStrictBytes(new Uint8Array([0x22, 0xe2, 0x82, 0xac, 0x22])), "€");
});

test("parseJsonStrict: a __proto__ member is data, never the prototype", () => {
  const v = parseJsonStrict('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.equal((v as { polluted?: unknown }).polluted, undefined);
  assert.deepEqual(Object.keys(v), ["__proto__", "a"]);
  assert.equal(canonicalize(v), '{"__proto__":{"polluted":true},"a":1}');
  assert.equal(({} as { polluted?: unknown }).polluted, undefined);
});

// ---------------------------------------------------------------------------------------------
// Properties

const jsonArb = fc.jsonValue({ maxDepth: 5, stringUnit: "binary" }) as fc.Arbitrary<JsonValue>;

test("property: canonicalize ∘ parseJsonStrict ∘ canonicalize = canonicalize", () => {
  fc.assert(
    fc.property(jsonArb, (x) => {
      const c = canonicalize(x);
      assert.equal(canonicalize(parseJsonStrict(c)), c);
    }),
    { numRuns: 500 },
  );
});

test("property: parseJsonStrict agrees with JSON.parse on any formatting of any value", () => {
  fc.assert(
    fc.property(jsonArb, fc.constantFrom(undefined, 0, 1, 2, "\t", " \r\n"), (x, indent) => {
      const text = JSON.stringify(x, null, indent);
      assert.deepEqual(parseJsonStrict(text), JSON.parse(text));
      assert.equal(canonicalize(parseJsonStrict(text)), canonicalize(JSON.parse(text)));
    }),
    { numRuns: 500 },
  );
});

/** Compares by UTF-16 code units, written out by hand (independent of Array.prototype.sort). */
function compareCodeUnits(a: string, b: string): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

test("property: members come out in UTF-16 code unit order, each value canonical", () => {
  const keyArb = fc.string({ unit: "binary", maxLength: 4 });
  fc.assert(
    fc.property(fc.dictionary(keyArb, jsonArb, { maxKeys: 8 }), (obj) => {
      const keys = Object.keys(obj);
      keys.sort(compareCodeUnits);
      const want = `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(obj[k])}`).join(",")}}`;
      assert.equal(canonicalize(obj), want);
    }),
    { numRuns: 300 },
  );
});

test("property: every finite double serialises as ES6 does and reads back exactly", () => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
      const s = canonicalize(d);
      assert.equal(s, JSON.stringify(d));
      assert.equal(parseJsonStrict(s), d === 0 ? 0 : d);
    }),
    { numRuns: 2000 },
  );
});

test("property: a repeated member name anywhere is rejected", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 6 }), jsonArb, jsonArb, fc.nat(3), (key, a, b, depth) => {
      const k = JSON.stringify(key);
      let text = `{${k}:${JSON.stringify(a)},${k}:${JSON.stringify(b)}}`;
      for (let i = 0; i < depth; i++) text = `[{"wrap":${text}}]`;
      rejects(() => parseJsonStrict(text), text);
    }),
    { numRuns: 300 },
  );
});

test("property (fuzz): on mutated JSON text the parser only ever accepts what JSON.parse accepts, or throws CRYPTO_JSON_INVALID", () => {
  const mutation = fc.record({ at: fc.nat(), op: fc.constantFrom("insert", "delete", "replace"), ch: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) });
  const tokens = fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "\\", "-", "0", "e", ".", "u", " ", "\ud800");
  fc.assert(
    fc.property(jsonArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), tokens, (x, muts, tok) => {
      let text = JSON.stringify(x);
      for (const m of muts) {
        const at = text.length === 0 ? 0 : m.at % (text.length + 1);
        const ch = m.at % 2 === 0 ? tok : m.ch;
        if (m.op === "insert") text = text.slice(0, at) + ch + text.slice(at);
        else if (m.op === "delete") text = text.slice(0, at) + text.slice(at + 1);
        else text = text.slice(0, at) + ch + text.slice(at + 1);
      }
      let mine: unknown;
      try {
        mine = parseJsonStrict(text);
      } catch (e) {
        assert.ok(isNexusError(e, "CRYPTO_JSON_INVALID"), `only typed errors, got ${String(e)}`);
        return;
      }
      assert.equal(canonicalize(mine), canonicalize(JSON.parse(text)), text);
    }),
    { numRuns: 2000 },
  );
});
