import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  Framer,
  IMAP_REPLIES,
  ImapReplyError,
  MAILDIR_TO_IMAP,
  formatCommand,
  formatSearchKey,
  formatSequenceSet,
  imapErrors,
  parseCommand,
  parseSearchKeys,
  parseSequenceSet,
  resolveSequenceSet,
  tokenize,
  type Command,
  type FetchItem,
  type FrameEvent,
  type SearchKey,
  type TaggedCommand,
} from "../../src/services/mail/imap/index.ts";
import { maildirErrors } from "../../src/services/mail/maildir/index.ts";
import { REPO_ROOT } from "../support/paths.ts";

const b = (s: string): Buffer => Buffer.from(s, "latin1");

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ImapReplyError, `expected an ImapReplyError, got ${String(e)}`);
    return e.code;
  }
  return "none";
}

test("RFC 3501 section 9: atoms, quoted strings, literals, lists and BODY sections tokenize", () => {
  const t = tokenize(b('a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.100> "q\\"s" {3}\r\nabc NIL)\r\n'));
  assert.equal(t.length, 4);
  const list = t[3];
  assert.ok(list?.type === "list");
  const [flags, section, quoted, literal, nil] = list.items;
  assert.deepEqual(flags, { type: "atom", value: "FLAGS" });
  assert.ok(section?.type === "section" && section.name === "BODY.PEEK");
  assert.deepEqual(section.partial, [0, 100]);
  assert.ok(quoted?.type === "string" && quoted.value.toString() === 'q"s' && !quoted.literal);
  assert.ok(literal?.type === "string" && literal.value.toString() === "abc" && literal.literal);
  assert.deepEqual(nil, { type: "atom", value: "NIL" });
});

test("commands parse into typed values with their tags", () => {
  const p = (s: string): TaggedCommand => parseCommand(b(`${s}\r\n`));
  assert.deepEqual(p("a LOGIN alice \"p w\"").command, { name: "LOGIN", user: "alice", password: "p w" });
  assert.deepEqual(p("x1 uid fetch 4:* (UID FLAGS)").command, {
    name: "FETCH",
    uid: true,
    set: [{ from: 4, to: "*" }],
    items: [{ type: "UID" }, { type: "FLAGS" }],
  });
  assert.deepEqual(p("s STORE 1,3 +FLAGS.SILENT (\\seen $Label1)").command, {
    name: "STORE",
    uid: false,
    set: [
      { from: 1, to: 1 },
      { from: 3, to: 3 },
    ],
    mode: "add",
    silent: true,
    flags: ["\\Seen", "$Label1"],
  });
  const fast = p("f FETCH 1 FAST").command;
  assert.ok(fast.name === "FETCH" && fast.items.length === 3);
  const app = p('a APPEND Sent (\\Seen) " 1-Feb-2024 10:00:00 +0100" {5}\r\nHello');
  assert.ok(app.command.name === "APPEND");
  assert.equal(app.command.message.toString(), "Hello");
  assert.equal(app.command.date?.toISOString(), "2024-02-01T09:00:00.000Z");
  const s = p('s SEARCH CHARSET UTF-8 OR FROM "alice" (UNSEEN SINCE 1-Feb-2024) NOT DELETED').command;
  assert.ok(s.name === "SEARCH");
  assert.equal(formatSearchKey(s.key), '(OR FROM "alice" (UNSEEN SINCE 1-Feb-2024) NOT DELETED)');
  assert.deepEqual(p("e UID EXPUNGE 3:5").command, { name: "UID EXPUNGE", set: [{ from: 3, to: 5 }] });
  assert.deepEqual(p("i AUTHENTICATE plain AGFsaWNlAHB3").command, { name: "AUTHENTICATE", mechanism: "PLAIN", initial: "AGFsaWNlAHB3" });
  assert.deepEqual(p('l LIST "" "%"').command, { name: "LIST", reference: "", pattern: "%" });
});

test("malformed commands are IMAP_SYNTAX, unknown ones IMAP_COMMAND_UNKNOWN, odd charsets IMAP_BADCHARSET", () => {
  for (const bad of [
    "",
    "a",
    "+ LOGIN a b",
    "a LOGIN a",
    "a LOGIN a b c",
    'a LOGIN "unterminated',
    "a FETCH 0 FLAGS",
    "a FETCH 1:2:3 FLAGS",
    "a FETCH 99999999999 FLAGS",
    "a FETCH 1 (FLAGS",
    "a FETCH 1 FLAGS)",
    "a FETCH 1 BODY[1.0]",
    "a FETCH 1 BODY[MIME]",
    "a FETCH 1 BODY[HEADER.FIELDS]",
    "a FETCH 1 BODY[]<5.0>",
    "a FETCH 1 NOSUCH",
    "a STORE 1 FLAGS (\\Bogus)",
    "a STORE 1 LABELS (x)",
    "a SEARCH",
    "a SEARCH SINCE 31-Feb-2024",
    "a SEARCH NOSUCHKEY",
    "a STATUS INBOX (BOGUS)",
    "a APPEND INBOX \"x\"",
    "a SELECT",
    "a LIST x",
    `a SEARCH ${"(".repeat(40)}ALL${")".repeat(40)}`,
  ]) {
    assert.equal(code(() => parseCommand(b(`${bad}\r\n`))), "IMAP_SYNTAX", bad);
  }
  assert.equal(code(() => parseCommand(b("a LOGIN a b"))), "IMAP_SYNTAX", "no CRLF");
  assert.equal(code(() => parseCommand(b("a XYZZY\r\n"))), "IMAP_COMMAND_UNKNOWN");
  assert.equal(code(() => parseCommand(b("a UID NOOP\r\n"))), "IMAP_COMMAND_UNKNOWN");
  assert.equal(code(() => parseCommand(b("a SEARCH CHARSET KOI8-R ALL\r\n"))), "IMAP_BADCHARSET");
});

test("RFC 3501 6.4.8: sequence sets resolve against UIDs, '*' is the largest, ranges in either order", () => {
  const uids = [3, 5, 9, 12];
  assert.deepEqual(resolveSequenceSet(parseSequenceSet("1:*"), uids), [0, 1, 2, 3]);
  assert.deepEqual(resolveSequenceSet(parseSequenceSet("10:4"), uids), [1, 2]);
  assert.deepEqual(resolveSequenceSet(parseSequenceSet("100:*"), uids), [3], "n:* with n above every UID names the last");
  assert.deepEqual(resolveSequenceSet(parseSequenceSet("5,5,3:3"), uids), [0, 1]);
  assert.deepEqual(resolveSequenceSet(parseSequenceSet("1:*"), []), []);
});

// ---------------------------------------------------------------------------------------------
// Properties

// Plain objects (not null-prototype ones), so deepStrictEqual compares them with the parser's.
const rec = <T,>(m: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> => fc.record(m, { noNullPrototype: true });
const atomChars = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.$&'!#".split(""));
const atom = fc.string({ unit: atomChars, minLength: 1, maxLength: 12 });
const text = fc.string({ unit: fc.constantFrom(..." abcXYZ019\"\\-_.:@<>()[]{}%*".split("")), maxLength: 20 });
const mailbox = fc.oneof(
  fc.constant("INBOX"),
  fc.array(fc.string({ unit: fc.constantFrom(..."abcXYZ09-_ ".split("")), minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }).map((l) => l.join(".")),
);
const seqNum = fc.oneof(fc.integer({ min: 1, max: 0xffff_ffff }), fc.constant("*" as const));
const seqSet = fc.array(fc.tuple(seqNum, seqNum), { minLength: 1, maxLength: 5 }).map((rs) => rs.map(([from, to]) => ({ from, to })));
const flag = fc.oneof(fc.constantFrom("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"), atom.map((a) => `$${a}`));
const day = fc.integer({ min: 0, max: 40_000 });
const searchKey: fc.Arbitrary<SearchKey> = fc.letrec<{ key: SearchKey }>((tie) => ({
  key: fc.oneof(
    { depthSize: "small" },
    fc.constant({ type: "all" } as const),
    rec({ type: fc.constant("flag" as const), flag, set: fc.boolean() }),
    rec({ type: fc.constant("recent" as const), set: fc.boolean() }),
    rec({ type: fc.constantFrom("header" as const), field: fc.constantFrom("from", "to", "subject", "x-custom"), value: text }),
    rec({ type: fc.constantFrom("body" as const, "text" as const), value: text }),
    rec({ type: fc.constantFrom("internal" as const, "sent" as const), op: fc.constantFrom("before" as const, "on" as const, "since" as const), day }),
    rec({ type: fc.constant("size" as const), op: fc.constantFrom("larger" as const, "smaller" as const), n: fc.nat({ max: 0xffff_ffff }) }),
    rec({ type: fc.constantFrom("seq" as const, "uid" as const), set: seqSet }),
    rec({ type: fc.constant("not" as const), key: tie("key") }),
    rec({ type: fc.constant("or" as const), a: tie("key"), b: tie("key") }),
    rec({ type: fc.constant("and" as const), keys: fc.array(tie("key"), { minLength: 2, maxLength: 3 }) }),
  ),
})).key;
const section = rec({
  path: fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 3 }),
  text: fc.constantFrom(undefined, "HEADER" as const, "TEXT" as const, "MIME" as const, "HEADER.FIELDS" as const, "HEADER.FIELDS.NOT" as const),
  fields: fc.array(fc.constantFrom("FROM", "TO", "SUBJECT", "X-A"), { minLength: 1, maxLength: 3 }),
});
const fetchItem: fc.Arbitrary<FetchItem> = fc.oneof(
  fc.constantFrom(
    ...(["FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"] as const).map((type) => ({ type })),
  ),
  fc
    .record({
      peek: fc.boolean(),
      section,
      partial: fc.option(fc.tuple(fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 1_000_000 })), { nil: undefined }),
    })
    .filter((r) => !(r.section.text === "MIME" && r.section.path.length === 0) && !(r.section.text === undefined && r.section.path.length === 0 && false))
    .map((r) => ({
      type: "BODY[]" as const,
      peek: r.peek,
      partial: r.partial,
      section: { path: r.section.path, text: r.section.text, fields: r.section.text?.startsWith("HEADER.FIELDS") ? r.section.fields : [] },
    })),
);
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.constantFrom(...(["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "IDLE", "NAMESPACE"] as const).map((name) => ({ name }))),
  rec({ name: fc.constant("LOGIN" as const), user: text, password: text }),
  rec({ name: fc.constantFrom("SELECT" as const, "EXAMINE" as const, "CREATE" as const, "DELETE" as const, "SUBSCRIBE" as const), mailbox }),
  rec({ name: fc.constant("RENAME" as const), from: mailbox, to: mailbox }),
  rec({ name: fc.constantFrom("LIST" as const, "LSUB" as const), reference: fc.constantFrom("", "INBOX."), pattern: fc.constantFrom("*", "%", "INBOX.%", "a*b") }),
  rec({ name: fc.constant("STATUS" as const), mailbox, items: fc.subarray(["MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"] as const, { minLength: 1 }) }),
  rec({
    name: fc.constant("APPEND" as const),
    mailbox,
    flags: fc.array(flag, { maxLength: 3 }),
    date: fc.option(fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => new Date(s * 1000)), { nil: undefined }),
    message: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((u) => Buffer.from(u)),
  }),
  rec({ name: fc.constant("FETCH" as const), uid: fc.boolean(), set: seqSet, items: fc.array(fetchItem, { minLength: 1, maxLength: 4 }) }),
  rec({
    name: fc.constant("STORE" as const),
    uid: fc.boolean(),
    set: seqSet,
    mode: fc.constantFrom("set" as const, "add" as const, "remove" as const),
    silent: fc.boolean(),
    flags: fc.array(flag, { maxLength: 3 }),
  }),
  rec({ name: fc.constant("SEARCH" as const), uid: fc.boolean(), charset: fc.constantFrom(undefined, "UTF-8"), key: searchKey }),
  rec({ name: fc.constantFrom("COPY" as const, "MOVE" as const), uid: fc.boolean(), set: seqSet, mailbox }),
  rec({ name: fc.constant("UID EXPUNGE" as const), set: seqSet }),
);

/** Collapses one-element ANDs (a parenthesised single key reads back as that key). */
function normalizeKey(k: SearchKey): SearchKey {
  switch (k.type) {
    case "not":
      return { type: "not", key: normalizeKey(k.key) };
    case "or":
      return { type: "or", a: normalizeKey(k.a), b: normalizeKey(k.b) };
    case "and":
      return { type: "and", keys: k.keys.map(normalizeKey) };
    default:
      return k;
  }
}

test("property: formatCommand then parseCommand gives the command back (round trip)", () => {
  fc.assert(
    fc.property(fc.string({ unit: atomChars, minLength: 1, maxLength: 8 }), command, (tag, cmd) => {
      const back = parseCommand(formatCommand({ tag, command: cmd }));
      assert.equal(back.tag, tag);
      const want = cmd.name === "SEARCH" ? { ...cmd, key: normalizeKey(cmd.key) } : cmd;
      assert.deepEqual(back.command, want);
    }),
    { numRuns: 2000 },
  );
});

test("property: sequence sets and search keys round-trip through their wire forms", () => {
  fc.assert(fc.property(seqSet, (s) => assert.deepEqual(parseSequenceSet(formatSequenceSet(s)), s)));
  fc.assert(fc.property(searchKey, (k) => assert.deepEqual(parseSearchKeys(tokenize(b(`${formatSearchKey(k)}\r\n`))), normalizeKey(k))));
});

test("property (fuzz): any bytes either parse or fail with an ImapReplyError, never anything else", () => {
  const fragments = fc.constantFrom("a1 ", "FETCH ", "UID ", "SEARCH ", "(", ")", "[", "]", "<1.2>", '"', "\\", "{3}\r\n", "{2+}\r\n", "*", ":", ",", " ", "BODY[", "HEADER.FIELDS ", "NIL", "\r\n", "\0", "\xff", "OR ", "NOT ", "1:*", "APPEND x ");
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
    fc.array(fragments, { maxLength: 40 }).map((f) => b(`${f.join("")}\r\n`)),
  );
  fc.assert(
    fc.property(input, (buf) => {
      try {
        parseCommand(buf);
      } catch (e) {
        assert.ok(e instanceof ImapReplyError, `threw ${String(e)}`);
      }
    }),
    { numRuns: 20_000 },
  );
});

// ---------------------------------------------------------------------------------------------
// Framer

const LIMITS = { lineBytesMax: 200, literalBytesMax: 100, appendBytesMax: 1000, commandBytesMax: 500 };

function frames(chunks: readonly Buffer[]): FrameEvent[] {
  const f = new Framer(LIMITS);
  return chunks.flatMap((c) => f.push(c));
}

function describe(evs: readonly FrameEvent[]): string[] {
  return evs.map((e) => (e.type === "command" ? `cmd:${e.bytes.toString("latin1")}` : e.type === "continue" ? "+" : `${e.type}:${e.error.code}`));
}

test("framer: synchronizing literals ask for a continuation; LITERAL- ones do not; bare LF is CRLF", () => {
  assert.deepEqual(describe(frames([b("a LOGIN {5}\r\nalice {2}\r\npw\r\nb NOOP\nc NOOP\r\n")])), [
    "+",
    "+",
    "cmd:a LOGIN {5}\r\nalice {2}\r\npw\r\n",
    "cmd:b NOOP\r\n",
    "cmd:c NOOP\r\n",
  ]);
  assert.deepEqual(describe(frames([b("a LOGIN {5+}\r\nalice x\r\n")])), ["cmd:a LOGIN {5+}\r\nalice x\r\n"]);
});

test("framer: an over-long line is fatal, an over-large synchronizing literal is refused and the stream goes on", () => {
  assert.deepEqual(describe(frames([b("a NOOP" + "x".repeat(300))])), ["fatal:IMAP_LINE_TOO_LONG"]);
  assert.deepEqual(describe(frames([b("a LOGIN {101}\r\nb NOOP\r\n")])), ["reject:IMAP_LITERAL_TOO_LARGE", "cmd:b NOOP\r\n"]);
  assert.deepEqual(describe(frames([b("a APPEND INBOX {1001}\r\nb NOOP\r\n")])), ["reject:IMAP_MESSAGE_TOO_LARGE", "cmd:b NOOP\r\n"]);
  assert.deepEqual(describe(frames([b("a LOGIN {4097+}\r\n")])), ["fatal:IMAP_LITERAL_TOO_LARGE"]);
  const many = [b("a LOGIN {90}\r\n"), ...Array.from({ length: 6 }, () => [b("x".repeat(90)), b(" {90}\r\n")]).flat()];
  assert.ok(describe(frames(many)).includes("reject:IMAP_LITERAL_TOO_LARGE"), "the whole command is bounded too");
  const big = frames([b("a APPEND INBOX {900}\r\n"), Buffer.alloc(900, 0x41), b("\r\n")]);
  assert.deepEqual(describe(big).map((s) => s.slice(0, 26)), ["+", "cmd:a APPEND INBOX {900}\r\n"]);
});

test("property: the framer's output does not depend on how the input is split", () => {
  const stream = fc
    .array(fc.constantFrom("a NOOP\r\n", "b LOGIN {3}\r\nabc xyz\r\n", "c APPEND X {4+}\r\nwxyz\r\n", "d FETCH 1 BODY[]\n", "e X {0}\r\n\r\n"), { maxLength: 10 })
    .map((p) => b(p.join("")));
  fc.assert(
    fc.property(stream, fc.array(fc.nat(), { maxLength: 10 }), (whole, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (whole.length + 1)))].sort((x, y) => x - y);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const p of points) {
        chunks.push(whole.subarray(prev, p));
        prev = p;
      }
      chunks.push(whole.subarray(prev));
      assert.deepEqual(describe(frames(chunks)), describe(frames([whole])));
    }),
  );
});

test('docs/errors.md lists every IMAP_ and MAILDIR_ code with its HTTP status, exit code and message under "## mail (imap)"', () => {
  const doc = readFileSync(join(REPO_ROOT, "docs", "errors.md"), "utf8");
  const start = doc.indexOf("\n## mail (imap)\n");
  assert.ok(start >= 0, "docs/errors.md has a ## mail (imap) heading");
  const next = doc.indexOf("\n## ", start + 1);
  const section = doc.slice(start, next < 0 ? undefined : next);
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| ((?:IMAP|MAILDIR)_[A-Z_0-9]+) \| (.*) \|$/gm)) rows.set(m[1] ?? "", m[2] ?? "");
  const specs = [...Object.entries(imapErrors.specs), ...Object.entries(maildirErrors.specs)];
  assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
  for (const [c, s] of specs) assert.equal(rows.get(c)?.startsWith(`${s.http} | ${s.exit} | ${s.message}`), true, c);
  for (const [c, wire] of Object.entries(IMAP_REPLIES)) {
    const w: { status: string; code?: string } = wire;
    assert.ok(rows.get(c)?.endsWith(` | ${w.status === "BYE" ? "* BYE" : w.status}${w.code === undefined ? "" : ` [${w.code}]`}`), `${c}: reply column`);
  }
  for (const c of Object.keys(maildirErrors.specs)) {
    assert.ok(rows.get(c)?.endsWith(` | ${MAILDIR_TO_IMAP[c] ?? "IMAP_SERVER_ERROR (detail not sent)"}`), `${c}: mapped code column`);
  }
});
