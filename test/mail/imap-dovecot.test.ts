/**
 * Dovecot as the independent oracle: a private Dovecot (dovecot-imapd) serves a copy of the
 * Maildir this server wrote, and both are asked the same questions — LIST, SELECT's UIDVALIDITY /
 * UIDNEXT / EXISTS, STATUS, UID FETCH of every data item, UID SEARCH — and must answer the same
 * (the same parsed values; quoting style and \Recent may differ). Then the other way round: the
 * Maildir Dovecot changed (flags, keywords, APPEND, EXPUNGE) is served by this server again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenize, type Token } from "../../src/services/mail/imap/index.ts";
import { ALICE_PASSWORD, RawClient, deliver, hasDovecot, mailFixture, multipartMessage, plainMessage, startDovecot, startTestImap, type MailFixture } from "./support-imap.ts";

const skip = hasDovecot() ? false : "dovecot-imapd is not installed (./nexus test installs TEST_PACKAGES when run as root)";

/** Splits a response stream into whole responses (a line, plus the literals it announces). */
function responses(stream: string): string[] {
  const out: string[] = [];
  let i = 0;
  let cur = "";
  while (i < stream.length) {
    const eol = stream.indexOf("\r\n", i);
    if (eol < 0) break;
    cur += stream.slice(i, eol + 2);
    i = eol + 2;
    const lit = /\{(\d+)\}\r\n$/.exec(cur);
    if (lit?.[1] !== undefined) {
      const n = Number(lit[1]);
      cur += stream.slice(i, i + n);
      i += n;
      continue;
    }
    out.push(cur);
    cur = "";
  }
  return out;
}

type Plain = string | { s: string } | Plain[] | { sec: string; in: Plain[] };

function plain(t: Token): Plain {
  switch (t.type) {
    case "atom":
      return t.value;
    case "string":
      return { s: t.value.toString("latin1") };
    case "list":
      return t.items.map(plain);
    case "section":
      return { sec: t.name.toUpperCase(), in: t.section.map(plain) };
    default: {
      const never: never = t;
      return never;
    }
  }
}

/** `* n FETCH (k v k v ...)` as a map of item name to value, \Recent dropped from FLAGS. */
function fetchMap(resp: string): Map<string, Plain> {
  const toks = tokenize(Buffer.from(resp, "latin1"));
  const list = toks[3];
  assert.ok(list?.type === "list", resp.slice(0, 200));
  const m = new Map<string, Plain>();
  for (let i = 0; i < list.items.length; i += 2) {
    const k = list.items[i];
    const v = list.items[i + 1];
    assert.ok(k !== undefined && v !== undefined);
    const key = k.type === "section" ? JSON.stringify(plain(k)) : k.type === "atom" ? k.value.toUpperCase() : "?";
    let value = plain(v);
    if (key === "FLAGS" && Array.isArray(value)) value = value.filter((f) => f !== "\\Recent").sort();
    m.set(key, value);
  }
  return m;
}

interface Answers {
  list: string[];
  folders: Map<string, { select: Record<string, string>; status: string; fetch: Array<Map<string, Plain>>; search: string[] }>;
}

const FETCH_ITEMS =
  "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[] BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[3.HEADER] BODY.PEEK[1.1] BODY.PEEK[HEADER.FIELDS (FROM SUBJECT X-NONE)] BODY.PEEK[HEADER.FIELDS.NOT (DATE)])";
const SEARCHES = [
  "ALL",
  "SEEN",
  "UNSEEN",
  "FLAGGED",
  "ANSWERED",
  "DELETED",
  "NOT DELETED",
  "KEYWORD $Work",
  "UNKEYWORD $Work",
  "FROM alice",
  "TO carol",
  "CC elise",
  "SUBJECT message",
  'SUBJECT "R\u00e9sum\u00e9"',
  "BODY needle2",
  "TEXT inner",
  "BODY Second",
  "LARGER 600",
  "SMALLER 400",
  "SENTSINCE 2-Jan-2024",
  "SENTBEFORE 2-Jan-2024",
  "SENTON 1-Jan-2024",
  "SINCE 1-Jan-2020",
  "BEFORE 1-Jan-2020",
  "OR FLAGGED SEEN",
  "UID 2:*",
  "2:3",
  "HEADER Message-ID <m3@a.example>",
  "HEADER X-Nothing \"\"",
];

async function ask(port: number, user: string, pw: string, folders: readonly string[]): Promise<Answers> {
  const c = await RawClient.connect(port);
  try {
    await c.waitFor((s) => s.includes("\r\n"));
    assert.match(await c.command("l", `LOGIN ${user} ${pw}`), /^l OK/);
    const grab = async (tag: string, cmd: string): Promise<string[]> => {
      const start = c.received.length;
      const done = await c.command(tag, cmd);
      assert.match(done, new RegExp(`^${tag} OK`), `${cmd}: ${done}`);
      return responses(c.received.slice(start)).slice(0, -1);
    };
    const list = (await grab("li", 'LIST "" "*"'))
      .map((r) => r.replace(/ \\(Sent|Drafts|Trash|Junk|Archive)\)/, ")").replace(/"([^"]+)"\r\n$/, "$1\r\n").trim())
      .sort();
    const out: Answers = { list, folders: new Map() };
    for (const f of folders) {
      const status = (await grab("st", `STATUS ${f} (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)`))[0]?.replace(/"/g, "").trim() ?? "";
      const sel = await grab("ex", `EXAMINE ${f}`);
      const select: Record<string, string> = {};
      for (const r of sel) {
        const m = /^\* (?:OK \[)?(UIDVALIDITY|UIDNEXT) (\d+)|^\* (\d+) EXISTS/.exec(r);
        if (m?.[1] !== undefined && m[2] !== undefined) select[m[1]] = m[2];
        if (m?.[3] !== undefined) select.EXISTS = m[3];
      }
      const fetch = (await grab("fe", `UID FETCH 1:* ${FETCH_ITEMS}`)).map(fetchMap);
      const search: string[] = [];
      for (const s of SEARCHES) {
        const utf8 = [...s].some((ch) => ch.charCodeAt(0) > 0x7f);
        const cmd = utf8 ? `UID SEARCH CHARSET UTF-8 ${s.replace(/"[^"]*"/, (q) => `{${Buffer.byteLength(q.slice(1, -1))}}\r\n${q.slice(1, -1)}`)}` : `UID SEARCH ${s}`;
        if (utf8) {
          const start = c.received.length;
          const [head, lit] = cmd.split("\r\n");
          c.send(`se ${head}\r\n`);
          await c.waitFor((x) => x.slice(start).includes("+ "));
          search.push(`${s} => ${await finish(c, "se", Buffer.from(lit ?? "", "utf8"))}`);
          continue;
        }
        const r = await grab("se", cmd);
        search.push(`${s} => ${r.find((x) => x.startsWith("* SEARCH"))?.trim() ?? "?"}`);
      }
      out.folders.set(f, { select, status, fetch, search });
    }
    return out;
  } finally {
    c.close();
  }
}

async function finish(c: RawClient, tag: string, literal: Buffer): Promise<string> {
  const start = c.received.length;
  c.send(Buffer.concat([literal, Buffer.from("\r\n")]));
  await c.waitFor((s) => new RegExp(`${tag} (OK|NO|BAD)`).test(s.slice(start)));
  return /\* SEARCH[^\r]*/.exec(c.received.slice(start))?.[0] ?? "?";
}

function compare(ours: Answers, theirs: Answers): void {
  assert.deepEqual(ours.list, theirs.list, "LIST");
  for (const [name, o] of ours.folders) {
    const d = theirs.folders.get(name);
    assert.ok(d !== undefined);
    assert.deepEqual(o.select, d.select, `${name}: UIDVALIDITY, UIDNEXT, EXISTS`);
    assert.equal(o.status, d.status, `${name}: STATUS`);
    assert.equal(o.fetch.length, d.fetch.length, `${name}: FETCH count`);
    o.fetch.forEach((m, i) => {
      const dm = d.fetch[i];
      assert.ok(dm !== undefined);
      assert.deepEqual([...m.keys()].sort(), [...dm.keys()].sort(), `${name} #${i + 1}: items`);
      for (const [k, v] of m) assert.deepEqual(v, dm.get(k), `${name} #${i + 1} ${k}`);
    });
    assert.deepEqual(o.search, d.search, `${name}: UID SEARCH`);
  }
}

/** Builds a mailbox through this server: deliveries, flags, keywords, APPEND, COPY, EXPUNGE, folders. */
async function populate(fx: MailFixture, port: number): Promise<void> {
  await deliver(fx, fx.alice, [plainMessage(1), multipartMessage(2), plainMessage(3, " needle"), multipartMessage(4), plainMessage(5)]);
  const c = await RawClient.connect(port);
  try {
    await c.waitFor((s) => s.includes("\r\n"));
    const ok = async (tag: string, cmd: string): Promise<void> => assert.match(await c.command(tag, cmd), new RegExp(`^${tag} OK`), cmd);
    await ok("a", `LOGIN alice@a.example ${ALICE_PASSWORD}`);
    await ok("b", "SELECT INBOX");
    await ok("c", "STORE 1 +FLAGS (\\Seen \\Answered)");
    await ok("d", "STORE 2 +FLAGS (\\Flagged $Work)");
    await ok("e", "STORE 5 +FLAGS (\\Deleted)");
    await ok("f", "EXPUNGE");
    await ok("g", "CREATE Archive.2024");
    await ok("h", "COPY 2:3 Archive.2024");
    const msg = plainMessage(7, " appended");
    c.send(`i APPEND Sent (\\Seen $Work) "05-Mar-2024 09:15:00 +0000" {${msg.length}}\r\n`);
    await c.waitFor((s) => s.endsWith("+ Ready for literal data\r\n"));
    c.send(Buffer.concat([msg, Buffer.from("\r\n")]));
    await c.waitFor((s) => /i OK \[APPENDUID/.test(s));
    await ok("j", "LOGOUT");
  } finally {
    c.close();
  }
  // One more delivery that nobody has seen yet: it stays in new/.
  await deliver(fx, fx.alice, [plainMessage(6)]);
}

test("Dovecot serving a copy of the Maildir this server wrote answers exactly as this server does", { skip }, async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  await populate(fx, srv.port);
  const dv = await startDovecot(fx.alice.maildirPath);
  t.after(() => dv.stop());
  const folders = ["INBOX", "Sent", "Archive.2024"];
  const ours = await ask(srv.port, "alice@a.example", ALICE_PASSWORD, folders);
  const theirs = await ask(dv.port, "alice", "dovecot-pw", folders);
  assert.equal(ours.folders.get("INBOX")?.fetch.length, 5, "4 kept + 1 still in new/");
  assert.deepEqual(
    ours.folders.get("INBOX")?.fetch.map((m) => m.get("UID")),
    ["1", "2", "3", "4", "6"],
  );
  const search = ours.folders.get("INBOX")?.search ?? [];
  for (const want of ["BODY needle2 => * SEARCH 2", "KEYWORD $Work => * SEARCH 2", 'SUBJECT "R\u00e9sum\u00e9" => * SEARCH 2 4', "SENTON 1-Jan-2024 => * SEARCH 1 3 6"]) {
    assert.ok(search.includes(want), `${want} in ${search.join(" | ")}`);
  }
  compare(ours, theirs);
});

test("this server serves the Maildir Dovecot changed (flags, keywords, APPEND, EXPUNGE) with Dovecot's UIDs", { skip }, async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  await populate(fx, srv.port);
  const dv = await startDovecot(fx.alice.maildirPath);
  t.after(() => dv.stop());
  const c = await RawClient.connect(dv.port);
  try {
    await c.waitFor((s) => s.includes("\r\n"));
    const ok = async (tag: string, cmd: string): Promise<void> => assert.match(await c.command(tag, cmd), new RegExp(`^${tag} OK`), cmd);
    await ok("a", "LOGIN alice dovecot-pw");
    await ok("b", "SELECT INBOX");
    await ok("c", "UID STORE 3 +FLAGS (\\Seen $Later)");
    await ok("d", "UID STORE 4 +FLAGS (\\Deleted)");
    await ok("e", "EXPUNGE");
    const msg = plainMessage(8, " from dovecot");
    c.send(`f APPEND INBOX (\\Flagged) {${msg.length}}\r\n`);
    await c.waitFor((s) => s.includes("+ "));
    c.send(Buffer.concat([msg, Buffer.from("\r\n")]));
    await c.waitFor((s) => /f OK/.test(s));
    await ok("g", "LOGOUT");
  } finally {
    c.close();
  }
  // Serve Dovecot's copy with this server (a second server whose account points at it).
  const mine = await startTestImap(fx, { auth: async (u, p) => (u === "copy" && p === "pw" ? { mailboxRoot: dv.maildir, user: "copy" } : undefined) });
  t.after(() => mine.close());
  const folders = ["INBOX", "Sent", "Archive.2024"];
  const theirs = await ask(dv.port, "alice", "dovecot-pw", folders);
  const ours = await ask(mine.port, "copy", "pw", folders);
  assert.deepEqual(
    ours.folders.get("INBOX")?.fetch.map((m) => [m.get("UID"), m.get("FLAGS")]),
    [
      ["1", ["\\Answered", "\\Seen"]],
      ["2", ["$Work", "\\Flagged"]],
      ["3", ["$Later", "\\Seen"]],
      ["6", []],
      ["7", ["\\Flagged"]],
    ],
  );
  compare(ours, theirs);
});
