/**
 * Real clients against the live server: imapflow (Node) and Python's imaplib log in, list,
 * fetch, flag, search, append, copy/move, expunge, create/rename/delete, IDLE; STARTTLS and
 * implicit TLS; UIDVALIDITY and UIDNEXT across restarts; two sessions on one mailbox.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { selfSignedCertificate } from "../../src/services/mail/tls.ts";
import { ALICE_PASSWORD, RawClient, deliver, mailFixture, multipartMessage, plainMessage, runPython, startTestImap } from "./support-imap.ts";

function flow(port: number, extra: Partial<ConstructorParameters<typeof ImapFlow>[0]> = {}): ImapFlow {
  return new ImapFlow({
    host: "127.0.0.1",
    port,
    secure: false,
    auth: { user: "alice@a.example", pass: ALICE_PASSWORD },
    logger: false,
    tls: { rejectUnauthorized: false },
    ...extra,
  });
}

test("imapflow over STARTTLS: list, fetch, flag, search, append, copy, move, expunge, folders and IDLE", async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1), multipartMessage(2), plainMessage(3, " needle")]);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const c = flow(srv.port, { doSTARTTLS: true });
  await c.connect();
  t.after(() => c.close());
  assert.equal(c.secureConnection, true, "STARTTLS was used");

  const list = await c.list();
  assert.deepEqual(list.map((m) => m.path).sort(), ["Drafts", "INBOX", "Junk", "Sent", "Trash"]);
  assert.equal(list.find((m) => m.path === "Sent")?.specialUse, "\\Sent");

  const box = await c.mailboxOpen("INBOX");
  assert.equal(box.exists, 3);
  assert.ok(Number(box.uidValidity) > 0);
  assert.equal(box.uidNext, 4);

  const all = await c.fetchAll("1:*", { uid: true, flags: true, envelope: true, size: true, internalDate: true, bodyStructure: true });
  assert.deepEqual(
    all.map((m) => [m.seq, m.uid, m.envelope?.subject]),
    [
      [1, 1, "message 1"],
      [2, 2, "R\u00e9sum\u00e9 2"],
      [3, 3, "message 3 needle"],
    ],
  );
  assert.equal(all[0]?.envelope?.from?.[0]?.address, "alice@a.example");
  assert.equal(all[1]?.bodyStructure?.childNodes?.length, 3);
  const one = await c.fetchOne("1", { source: true, size: true });
  assert.ok(one !== false);
  assert.equal(one.source?.toString(), plainMessage(1).toString(), "BODY[] is the delivered message, CRLF line ends restored");
  assert.equal(one.size, plainMessage(1).length, "RFC822.SIZE equals the bytes served");
  const part = await c.download("2", "1.1");
  const chunks: Buffer[] = [];
  for await (const ch of part.content ?? []) chunks.push(Buffer.from(ch as Uint8Array));
  assert.match(Buffer.concat(chunks).toString("utf8"), /Caf\u00e9 au lait, needle2/);

  assert.ok(await c.messageFlagsAdd("1:2", ["\\Seen", "$Important"]));
  assert.ok(await c.messageFlagsRemove("2", ["$Important"]));
  const flags = await c.fetchAll("1:*", { flags: true });
  assert.deepEqual(
    flags.map((m) => [...(m.flags ?? [])].filter((f) => f !== "\\Recent").sort()),
    [["$Important", "\\Seen"], ["\\Seen"], []],
  );
  assert.deepEqual(await c.search({ seen: false }), [3]);
  assert.deepEqual(await c.search({ body: "needle2" }), [2]);
  assert.deepEqual(await c.search({ subject: "needle" }), [3]);
  assert.deepEqual(await c.search({ header: { "message-id": "<m3@a.example>" } }, { uid: true }), [3]);
  assert.deepEqual(await c.search({ or: [{ keyword: "$Important" }, { larger: 1000 }] }), [1, 2]);

  const appended = await c.append("Sent", plainMessage(9), ["\\Seen"], new Date("2024-03-01T12:00:00Z"));
  assert.ok(appended !== false && appended.uid === 1);
  const status = await c.status("Sent", { messages: true, uidNext: true, unseen: true });
  assert.ok(status !== false);
  assert.deepEqual([status.messages, status.uidNext, status.unseen], [1, 2, 0]);

  const copied = await c.messageCopy("1", "Trash");
  assert.ok(copied !== false && copied.uidMap?.get(1) === 1);
  const moved = await c.messageMove("3", "Junk");
  assert.ok(moved !== false && moved.uidMap?.get(3) === 1);
  assert.equal(c.mailbox !== false ? c.mailbox.exists : -1, 2);
  assert.ok(await c.messageDelete("1"));
  assert.deepEqual(
    (await c.fetchAll("1:*", { uid: true })).map((m) => m.uid),
    [2],
  );

  await c.mailboxCreate("Projects.2024");
  await c.mailboxRename("Projects", "Work");
  const names = (await c.list()).map((m) => m.path);
  assert.ok(names.includes("Work.2024") && names.includes("Work") && !names.some((n) => n.startsWith("Projects")), names.join(","));
  await c.mailboxDelete("Work.2024");

  // IDLE (RFC 2177): a delivery made by the SMTP side shows up as EXISTS without any command.
  const exists = new Promise<number>((resolve) => c.on("exists", (d: { count: number }) => resolve(d.count)));
  const idle = c.idle();
  await deliver(fx, fx.alice, [plainMessage(4)]);
  assert.equal(await exists, 2);
  await c.noop();
  await idle.catch(() => undefined);
  await c.logout();
  assert.ok(srv.metrics().loginsOk >= 1);
});

test("Python's imaplib: login, list, select, fetch, store, search, append, copy, expunge, status, logout", async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1), plainMessage(2), multipartMessage(3)]);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const script = String.raw`
import imaplib, json, os
out = {}
c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
out["caps"] = sorted(c.capabilities)
out["login"] = c.login("alice@a.example", os.environ["PW"])[0]
out["list"] = [x.decode() for x in c.list()[1]]
typ, data = c.select("INBOX")
out["select"] = [typ, data[0].decode()]
typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["fetch"] = [d[1].decode().strip() for d in data if isinstance(d, tuple)]
typ, data = c.fetch("2", "(RFC822)")
out["rfc822_len"] = len(data[0][1])
out["store"] = [x.decode() for x in c.store("1", "+FLAGS", "(\\Flagged \\Deleted)")[1]]
out["search_flagged"] = c.search(None, "FLAGGED")[1][0].decode()
out["search_seen"] = c.search(None, "SEEN")[1][0].decode()
out["uid_search"] = c.uid("SEARCH", None, 'HEADER Subject "message 2"')[1][0].decode()
out["search_text"] = c.search("UTF-8", "TEXT", "needle3")[1][0].decode()
typ, data = c.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(1700000000), b"Subject: draft\r\n\r\nhi\r\n")
out["append"] = [typ, data[0].decode()]
out["copy"] = [x.decode() for x in c.copy("2:3", "Trash")[1]]
out["expunge"] = [x.decode() for x in c.expunge()[1]]
out["after"] = c.search(None, "ALL")[1][0].decode()
out["status"] = c.status("Trash", "(MESSAGES UIDNEXT)")[1][0].decode()
out["create"] = c.create("Lists.nexus")[0]
out["lsub"] = [x.decode() for x in c.lsub()[1]]
out["subscribe"] = c.subscribe("Lists.nexus")[0]
out["close"] = c.close()[0]
out["logout"] = c.logout()[0]
print(json.dumps(out))
`;
  const r = (await runPython(script, { PORT: String(srv.port), PW: ALICE_PASSWORD })) as Record<string, unknown>;
  assert.ok((r.caps as string[]).includes("IDLE") && (r.caps as string[]).includes("UIDPLUS"));
  assert.equal(r.login, "OK");
  assert.ok((r.list as string[]).includes('(\\HasNoChildren \\Trash) "." "Trash"'));
  assert.deepEqual(r.select, ["OK", "3"]);
  assert.deepEqual(r.fetch, ["Subject: message 1", "Subject: message 2", "Subject: =?UTF-8?Q?R=C3=A9sum=C3=A9_3?="]);
  assert.equal(r.rfc822_len, plainMessage(2).length);
  assert.deepEqual(r.store, ["1 (FLAGS (\\Flagged \\Deleted \\Recent))"]);
  assert.equal(r.search_flagged, "1");
  assert.equal(r.search_seen, "2", "RFC822 (not PEEK) set \\Seen");
  assert.equal(r.uid_search, "2");
  assert.equal(r.search_text, "3");
  assert.match((r.append as string[])[1] ?? "", /^\[APPENDUID \d+ 1\] APPEND completed$/);
  assert.match((r.copy as string[])[0] ?? "", /^\[COPYUID \d+ 2:3 1:2\] COPY completed$/);
  assert.deepEqual(r.expunge, ["1"]);
  assert.equal(r.after, "1 2");
  assert.equal(r.status, '"Trash" (MESSAGES 2 UIDNEXT 3)');
  assert.equal(r.create, "OK");
  assert.equal(r.subscribe, "OK");
  assert.equal(r.close, "OK");
  assert.equal(r.logout, "BYE");
  const trash = readdirSync(join(fx.alice.maildirPath, ".Trash", "cur"));
  assert.equal(trash.length, 2);
});

test("UIDVALIDITY and UIDNEXT persist across server restarts; Python logs in with AUTHENTICATE PLAIN", async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1), plainMessage(2)]);
  const script = String.raw`
import imaplib, json, os
c = imaplib.IMAP4("127.0.0.1", int(os.environ["PORT"]))
c.authenticate("PLAIN", lambda _: b"\0alice@a.example\0" + os.environ["PW"].encode())
c.select("INBOX")
r = {"validity": c.response("UIDVALIDITY")[1][0].decode(), "next": c.response("UIDNEXT")[1][0].decode()}
if os.environ.get("APPEND"): c.append("INBOX", None, None, b"Subject: x\r\n\r\ny\r\n")
c.logout()
print(json.dumps(r))
`;
  const seen: Array<Record<string, string>> = [];
  for (const append of ["1", "", ""]) {
    const srv = await startTestImap(fx);
    try {
      seen.push((await runPython(script, { PORT: String(srv.port), PW: ALICE_PASSWORD, APPEND: append })) as Record<string, string>);
    } finally {
      await srv.close();
    }
  }
  assert.equal(seen[0]?.next, "3");
  assert.equal(seen[1]?.next, "4");
  assert.deepEqual(seen[2], seen[1]);
  assert.equal(new Set(seen.map((s) => s.validity)).size, 1);
});

test("two sessions on one mailbox: flags and expunges of one reach the other in order (RFC 3501 7.4.1, RFC 2180)", async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1), plainMessage(2), plainMessage(3)]);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const a = await RawClient.connect(srv.port);
  const b = await RawClient.connect(srv.port);
  t.after(() => {
    a.close();
    b.close();
  });
  for (const c of [a, b]) {
    await c.waitFor((s) => s.includes("\r\n"));
    assert.match(await c.command("l", `LOGIN alice@a.example ${ALICE_PASSWORD}`), /^l OK/);
    assert.match(await c.command("s", "SELECT INBOX"), /^s OK \[READ-WRITE\]/);
  }
  assert.match(await a.command("a1", "STORE 2 +FLAGS.SILENT (\\Deleted \\Seen)"), /^a1 OK/);
  assert.match(await a.command("a2", "EXPUNGE"), /^a2 OK/);
  // B still has 3 messages; its FETCH of message 2 may not see EXPUNGE, and says the message is gone.
  let start = b.received.length;
  const fetched = await b.command("b1", "FETCH 2 BODY.PEEK[]");
  assert.match(fetched, /^b1 NO \[EXPUNGEISSUED\]/);
  assert.ok(!b.received.slice(start).includes("EXPUNGE\r\n"), "no EXPUNGE response during FETCH");
  start = b.received.length;
  assert.match(await b.command("b2", "NOOP"), /^b2 OK/);
  assert.match(b.received.slice(start), /\* 2 EXPUNGE\r\n/);
  assert.match(await a.command("a3", "STORE 1 +FLAGS (\\Flagged)"), /^a3 OK/);
  start = b.received.length;
  await b.command("b3", "NOOP");
  assert.match(b.received.slice(start), /\* 1 FETCH \(FLAGS \(\\Flagged\)\)/, "B did not select first, so no \\Recent");
  start = b.received.length;
  await b.command("b4", "UID FETCH 1:* (FLAGS)");
  assert.match(b.received.slice(start), /\* 1 FETCH \(UID 1 FLAGS[^\r]*\r\n\* 2 FETCH \(UID 3 FLAGS/);
});

test("implicit TLS (IMAPS, the --public port) serves imapflow with secure: true", async (t) => {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1)]);
  const srv = await startTestImap(fx, { implicitTls: true, tls: selfSignedCertificate("localhost") });
  t.after(() => srv.close());
  const c = flow(srv.port, { secure: true });
  await c.connect();
  const box = await c.mailboxOpen("INBOX", { readOnly: true });
  assert.equal(box.exists, 1);
  assert.equal(box.readOnly, true);
  await c.logout();
});
