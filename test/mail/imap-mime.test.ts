import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyPartial, bodyStructure, envelope, parseAddressList, parseMime, sectionBytes } from "../../src/services/mail/imap/index.ts";
import { decodeQuotedPrintable, decodeWords } from "../../src/services/mail/imap/decode.ts";
import type { Section } from "../../src/services/mail/imap/parser.ts";
import { multipartMessage, plainMessage } from "./support-imap.ts";

const sec = (path: number[], text?: Section["text"], fields: string[] = []): Section => ({ path, text, fields });
const crlf = (b: Buffer): Buffer => b;

// What Dovecot 2.3.19 answers for these two messages (FETCH ENVELOPE BODYSTRUCTURE, recorded from
// a private instance serving the same Maildir; imap-dovecot.test.ts re-checks this live).
const DOVECOT_PLAIN_ENVELOPE =
  '("Mon, 1 Jan 2024 10:00:01 +0100" "message 1" (("Alice Example" NIL "alice" "a.example")) (("Alice Example" NIL "alice" "a.example")) (("Alice Example" NIL "alice" "a.example")) ((NIL NIL "bob" "b.example")("Carol X" NIL "carol" "c.example")) NIL NIL NIL "<m1@a.example>")';
const DOVECOT_PLAIN_BODYSTRUCTURE = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 31 2 NIL NIL NIL NIL)';
const DOVECOT_MULTIPART_BODYSTRUCTURE =
  '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 41 1 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0 NIL NIL NIL NIL) "alternative" ("boundary" "inner-2") NIL NIL NIL)("application" "octet-stream" ("name" "data.bin") "<att2@b.example>" "some bytes" "base64" 16 NIL ("attachment" ("filename" "data.bin")) NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 92 ("Wed, 3 Jan 2024 12:00:00 +0000" "inner 2" ((NIL NIL "inner" "x.example")) ((NIL NIL "inner" "x.example")) ((NIL NIL "inner" "x.example")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) "mixed" ("boundary" "outer-2") NIL NIL NIL)';
const DOVECOT_MULTIPART_BODY =
  '((("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 41 1)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 12 0) "alternative")("application" "octet-stream" ("name" "data.bin") "<att2@b.example>" "some bytes" "base64" 16)("message" "rfc822" NIL NIL NIL "7bit" 92 ("Wed, 3 Jan 2024 12:00:00 +0000" "inner 2" ((NIL NIL "inner" "x.example")) ((NIL NIL "inner" "x.example")) ((NIL NIL "inner" "x.example")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0) 4) "mixed")';

test("ENVELOPE and BODYSTRUCTURE of a plain message are Dovecot's", () => {
  const buf = crlf(plainMessage(1));
  const root = parseMime(buf);
  assert.equal(envelope(root.headers).buffer().toString("latin1"), DOVECOT_PLAIN_ENVELOPE);
  assert.equal(bodyStructure(buf, root, true).buffer().toString("latin1"), DOVECOT_PLAIN_BODYSTRUCTURE);
});

test("BODYSTRUCTURE and BODY of a nested multipart with an attachment and a message/rfc822 are Dovecot's", () => {
  const buf = multipartMessage(2);
  const root = parseMime(buf);
  assert.equal(bodyStructure(buf, root, true).buffer().toString("latin1"), DOVECOT_MULTIPART_BODYSTRUCTURE);
  assert.equal(bodyStructure(buf, root, false).buffer().toString("latin1"), DOVECOT_MULTIPART_BODY);
});

test("RFC 3501 6.4.5 sections: parts, MIME headers, embedded message HEADER/TEXT, HEADER.FIELDS, partials", () => {
  const buf = multipartMessage(2);
  const root = parseMime(buf);
  const s = (x: Section): string | undefined => sectionBytes(buf, root, x)?.toString("utf8");
  assert.equal(s(sec([1, 1])), "Caf=C3=A9 au lait, needle2.\r\nSecond line.");
  assert.equal(s(sec([1, 2])), "<p>Caf\u00e9</p>");
  assert.equal(s(sec([2])), "AAECAwQFBgcICQ==");
  assert.match(s(sec([2], "MIME")) ?? "", /^Content-Type: application\/octet-stream; name="data.bin"\r\n.*\r\n\r\n$/s);
  assert.equal(s(sec([3], "HEADER")), "From: inner@x.example\r\nSubject: inner 2\r\nDate: Wed, 3 Jan 2024 12:00:00 +0000\r\n\r\n");
  assert.equal(s(sec([3], "TEXT")), "Inner body.");
  assert.equal(s(sec([3, 1])), "Inner body.", "a non-multipart embedded message's part 1 is its body");
  assert.equal(s(sec([], "HEADER.FIELDS", ["SUBJECT", "from"])), 'From: "Bob B." <bob@b.example>\r\nSubject: =?UTF-8?Q?R=C3=A9sum=C3=A9_2?=\r\n\r\n');
  assert.ok(!(s(sec([], "HEADER.FIELDS.NOT", ["subject"])) ?? "").includes("Subject:"));
  assert.equal(s(sec([9])), undefined);
  assert.equal(s(sec([])), buf.toString("utf8"));
  assert.equal(applyPartial(Buffer.from("0123456789"), [2, 3]).toString(), "234");
  assert.equal(applyPartial(Buffer.from("0123456789"), [20, 3]).toString(), "");
});

test("RFC 5322 3.4 address lists become ENVELOPE addresses, groups included", () => {
  assert.deepEqual(parseAddressList('"Doe, John" <john.doe@x.example>, jane@y.example (Jane), Team: a@b.example, <c@d.example>;, broken'), [
    { name: "Doe, John", adl: undefined, mailbox: "john.doe", host: "x.example" },
    { name: undefined, adl: undefined, mailbox: "jane", host: "y.example" },
    { name: undefined, adl: undefined, mailbox: "Team", host: undefined },
    { name: undefined, adl: undefined, mailbox: "a", host: "b.example" },
    { name: undefined, adl: undefined, mailbox: "c", host: "d.example" },
    { name: undefined, adl: undefined, mailbox: undefined, host: undefined },
    { name: undefined, adl: undefined, mailbox: "broken", host: "MISSING_DOMAIN" },
  ]);
  assert.deepEqual(parseAddressList("<@route.example,@r2.example:user@host.example>"), [
    { name: undefined, adl: "@route.example,@r2.example", mailbox: "user", host: "host.example" },
  ]);
});

test("SEARCH decoding: RFC 2047 words and quoted-printable", () => {
  assert.equal(decodeWords("=?UTF-8?Q?R=C3=A9sum=C3=A9_2?="), "R\u00e9sum\u00e9 2");
  assert.equal(decodeWords("=?iso-8859-1?b?6Q==?= =?UTF-8?B?w6k=?= x"), "\u00e9\u00e9 x");
  assert.equal(decodeWords("=?x-unknown?Q?abc?="), "abc");
  assert.equal(decodeQuotedPrintable(Buffer.from("a=3Db=\r\nc=ZZ")).toString(), "a=bc=ZZ");
});

test("property (fuzz): any bytes parse into a tree whose offsets stay inside the message; sections never throw", () => {
  const piece = fc.constantFrom(
    "Content-Type: multipart/mixed; boundary=b\r\n",
    "Content-Type: message/rfc822\r\n",
    "Content-Type: text/plain\r\n",
    "\r\n",
    "--b\r\n",
    "--b--\r\n",
    "--bb\r\n",
    "x: y\r\n",
    " folded\r\n",
    "body\r\n",
    "\n",
    "\r",
  );
  const input = fc.oneof(
    fc.array(piece, { maxLength: 60 }).map((p) => Buffer.from(p.join(""), "latin1")),
    fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
  );
  const path = fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 });
  fc.assert(
    fc.property(input, path, fc.constantFrom(undefined, "HEADER" as const, "TEXT" as const, "MIME" as const), (buf, p, text) => {
      const root = parseMime(buf);
      const check = (part: typeof root): void => {
        assert.ok(0 <= part.start && part.start <= part.bodyStart && part.bodyStart <= part.end && part.end <= buf.length);
        for (const c of part.children) check(c);
        if (part.message) check(part.message);
      };
      check(root);
      bodyStructure(buf, root, true).buffer();
      envelope(root.headers).buffer();
      if (!(text === "MIME" && p.length === 0)) sectionBytes(buf, root, sec(p, text));
    }),
    { numRuns: 5000 },
  );
});

test("bounds: deeply nested multiparts stop at the depth limit instead of recursing without end", () => {
  let m = "text\r\n";
  for (let i = 0; i < 200; i++) m = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${m}\r\n--b${i}--\r\n`;
  const buf = Buffer.from(m);
  let depth = 0;
  for (let p = parseMime(buf); p.children[0] !== undefined; p = p.children[0]) depth += 1;
  assert.ok(depth <= 32, `depth ${depth}`);
});
