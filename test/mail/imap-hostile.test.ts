/**
 * Hostile clients (CONSTITUTION "Hostile actors"; gate 16): logging in to another IMVU's mailbox,
 * reaching it through mailbox names or planted links, oversized lines and literals, malformed and
 * misplaced commands, STARTTLS command injection, connection floods and idle connections. Each is
 * refused with its reply code; afterwards nothing was lost or changed, and the server holds no
 * connection, buffer or descriptor for them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { parseCommand } from "../../src/services/mail/imap/index.ts";
import { ALICE_PASSWORD, BOB_PASSWORD, RawClient, deliver, mailFixture, plainMessage, startTestImap, type MailFixture } from "./support-imap.ts";
import type { ImapServer } from "../../src/services/mail/imap/index.ts";

/** Every message file (new/, cur/, tmp/ of every folder) under a Maildir, with its size. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\/(new|cur|tmp)\/[^/]+$/.test(p)) out.push(`${p.slice(dir.length)}:${statSync(p).size}`);
    }
  };
  walk(dir);
  return out.sort();
}

async function greeted(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.waitFor((s) => s.includes("\r\n"));
  return c;
}

async function loggedIn(port: number): Promise<RawClient> {
  const c = await greeted(port);
  assert.match(await c.command("L", `LOGIN alice@a.example ${ALICE_PASSWORD}`), /^L OK/);
  return c;
}

function openFds(): number {
  return readdirSync("/proc/self/fd").length;
}

async function settled(srv: ImapServer): Promise<void> {
  for (let i = 0; i < 200 && srv.metrics().connectionsOpen > 0; i++) await sleep(25);
  assert.equal(srv.metrics().connectionsOpen, 0, "every connection is gone");
  assert.equal(srv.metrics().idleOpen, 0);
  assert.equal(srv.metrics().inflightBytes, 0, "no bytes held for unfinished commands");
}

async function world(t: { after: (fn: () => unknown) => void }): Promise<{ fx: MailFixture; bobBefore: string[] }> {
  const fx = await mailFixture();
  t.after(() => fx.cleanup());
  await deliver(fx, fx.alice, [plainMessage(1), plainMessage(2)]);
  await deliver(fx, fx.bob, [Buffer.from("Subject: secret for bob\r\nFrom: x@b.example\r\n\r\nbob's private mail\r\n")]);
  return { fx, bobBefore: snapshot(fx.bob.maildirPath) };
}

test("gate 16: another IMVU's mailbox cannot be logged in to, named, linked or listed", async (t) => {
  const { fx, bobBefore } = await world(t);
  const srv = await startTestImap(fx, { limits: { authFailuresMax: 10 } });
  t.after(() => srv.close());
  // Alice's password for Bob's address, Bob's for Alice's, an unknown user, and PLAIN acting as Bob.
  const c = await greeted(srv.port);
  assert.match(await c.command("a1", `LOGIN bob@b.example ${ALICE_PASSWORD}`), /^a1 NO \[AUTHENTICATIONFAILED\]/);
  assert.match(await c.command("a2", `LOGIN alice@a.example ${BOB_PASSWORD}`), /^a2 NO \[AUTHENTICATIONFAILED\]/);
  assert.match(await c.command("a3", `LOGIN mallory@b.example ${BOB_PASSWORD}`), /^a3 NO \[AUTHENTICATIONFAILED\]/);
  const asBob = Buffer.from(`bob@b.example\0alice@a.example\0${ALICE_PASSWORD}`).toString("base64");
  assert.match(await c.command("a4", `AUTHENTICATE PLAIN ${asBob}`), /^a4 NO \[AUTHORIZATIONFAILED\]/);
  assert.match(await c.command("a5", "SELECT INBOX"), /^a5 BAD/, "nothing is reachable before login");
  assert.ok(!c.received.includes(ALICE_PASSWORD) && !c.received.includes(BOB_PASSWORD), "no reply echoes a password");
  c.close();

  // Logged in as Alice: names that would leave her Maildir, and a link planted into Bob's.
  symlinkSync(fx.bob.maildirPath, join(fx.alice.maildirPath, ".Evil"));
  mkdirSync(join(fx.alice.maildirPath, ".Evil2"));
  symlinkSync(join(fx.bob.maildirPath, "cur"), join(fx.alice.maildirPath, ".Evil2", "cur"));
  const a = await loggedIn(srv.port);
  const rel = "../../../beta/bob@b.example/Maildir";
  for (const [i, name] of [rel, `INBOX/${rel}`, `.${rel}`, "..", ".", "/etc", "~bob", "Evil", "Evil2", "a..b", "&Jjo"].entries()) {
    const q = JSON.stringify(name);
    for (const [j, cmd] of [`SELECT ${q}`, `EXAMINE ${q}`, `STATUS ${q} (MESSAGES)`, `DELETE ${q}`, `RENAME ${q} Stolen`, `CREATE ${q}`, `SUBSCRIBE ${q}`].entries()) {
      const reply = await a.command(`n${i}x${j}`, cmd);
      // "Evil" and "Evil2" are valid names of Alice's own; subscribing to them touches only her list.
      const ownName = cmd.startsWith("SUBSCRIBE") && /^Evil2?$/.test(name);
      assert.match(reply, ownName ? /OK/ : /^n\d+x\d+ (NO \[(CANNOT|NONEXISTENT|ALREADYEXISTS)\]|BAD)/, `${cmd} → ${reply}`);
    }
  }
  assert.match(await a.command("s", "SELECT INBOX"), /^s OK/);
  assert.match(await a.command("cp", `COPY 1 ${JSON.stringify(rel)}`), /^cp NO \[CANNOT\]/);
  assert.match(await a.command("ap", `APPEND "${rel}" {1+}\r\nx`), /^ap NO \[CANNOT\]/);
  const start = a.received.length;
  for (const [i, [ref, pat]] of [["", "*"], ["../", "*"], ["", "../*"], ["/", "*"], ["~bob/", "*"]].entries()) await a.command(`l${i}`, `LIST "${ref}" "${pat}"`);
  const listed = a.received.slice(start);
  assert.ok(!/bob|Evil|beta/i.test(listed), listed);
  await a.command("f", "FETCH 1:* (BODY.PEEK[])");
  assert.ok(!a.received.includes("secret for bob") && !a.received.includes("bob's private mail"), "nothing of Bob's reaches Alice");
  a.close();
  assert.deepEqual(snapshot(fx.bob.maildirPath), bobBefore, "Bob's Maildir is untouched");
  await settled(srv);
});

test("failed logins are bounded per connection; the connection ends with BYE [UNAVAILABLE]", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const c = await greeted(srv.port);
  for (let i = 0; i < 3; i++) assert.match(await c.command(`x${i}`, `LOGIN alice@a.example wrong${i}`), /NO \[AUTHENTICATIONFAILED\]/);
  const bye = await c.waitClosed();
  assert.match(bye, /\* BYE \[UNAVAILABLE\] Too many failed authentications/);
  assert.equal(srv.metrics().authFailures, 3);
  await settled(srv);
});

test("oversized lines end the connection; oversized literals are refused and the session goes on; nothing is stored", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx, { limits: { appendBytesMax: 1024 * 1024 } });
  t.after(() => srv.close());
  const before = snapshot(fx.alice.maildirPath);
  const fdsBefore = openFds();

  const long = await greeted(srv.port);
  long.send(`a NOOP ${"x".repeat(200 * 1024)}`);
  assert.match(await long.waitClosed(), /\* BYE \[LIMIT\] Command line too long/);

  const c = await loggedIn(srv.port);
  assert.match(await c.command("b1", "LOGIN {100000}"), /^b1 BAD \[LIMIT\] Literal larger than the limit/);
  assert.match(await c.command("b2", "APPEND INBOX {2000000}"), /^b2 NO \[TOOBIG\]/);
  assert.match(await c.command("b3", "NOOP"), /^b3 OK/, "the session survives refused literals");
  // A pipelined run of literals that together exceed the command bound.
  c.send("b4 SEARCH TEXT {60000}\r\n");
  for (let i = 0; i < 8 && !/b4 BAD/.test(c.received); i++) {
    const n = (c.received.match(/\+ Ready for literal data\r\n/g) ?? []).length;
    await c.waitFor((s) => (s.match(/\+ Ready for literal data\r\n/g) ?? []).length > n || /b4 BAD/.test(s));
    if (!/b4 BAD/.test(c.received)) c.send(`${"y".repeat(60000)} TEXT {60000}\r\n`);
  }
  await c.waitFor((s) => /b4 BAD \[LIMIT\]/.test(s));
  assert.match(await c.command("b5", "NOOP"), /^b5 OK/);
  // LITERAL- (RFC 7888): a non-synchronizing literal over 4096 octets cannot be refused politely.
  c.send("b6 APPEND INBOX {5000+}\r\n");
  assert.match(await c.waitClosed(), /\* BYE \[TOOBIG\]/);

  assert.deepEqual(snapshot(fx.alice.maildirPath), before, "no message was stored or lost");
  await settled(srv);
  for (let i = 0; i < 50 && openFds() > fdsBefore; i++) await sleep(20);
  assert.ok(openFds() <= fdsBefore, `descriptors: ${openFds()} > ${fdsBefore}`);
});

test("property (fuzz over a live socket): malformed lines get BAD, misplaced commands BAD, and 20 of them end the session", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const pieces = fc.constantFrom("a ", "FETCH", " 1:*", " (", ")", "[", "]", "BODY[", '"', "\\", " NIL", "*", "%", "UID ", "x", " ", "\t", "\x01", "\xe9", "<0.1>", "SEARCH", " OR", "LOGIN", "\x7f", ":", ",", "STORE 1 +FLAGS");
  const garbage = fc
    .array(pieces, { minLength: 1, maxLength: 12 })
    .map((p) => p.join(""))
    .filter((l) => {
      if (/[{}\r\n]/.test(l)) return false;
      try {
        parseCommand(Buffer.from(`${l}\r\n`, "latin1"));
        return false;
      } catch {
        return true;
      }
    });
  const lines = fc.sample(garbage, { numRuns: 19, seed: 42 });
  const c = await loggedIn(srv.port);
  for (const l of lines) {
    const start = c.received.length;
    c.send(Buffer.from(`${l}\r\nz NOOP\r\n`, "latin1"));
    await c.waitFor((s) => /z OK/.test(s.slice(start)));
    assert.match(c.received.slice(start), /^\S+ BAD [^\r\n]*\r\n/, JSON.stringify(l));
  }
  assert.match(await c.command("s1", "STARTTLS"), /^s1 BAD/, "STARTTLS after login is out of place");
  c.send("last BAD-COMMAND\r\n");
  assert.match(await c.waitClosed(), /\* BYE \[LIMIT\] Too many malformed commands/);
  const fresh = await loggedIn(srv.port);
  assert.match(await fresh.command("f", "SELECT INBOX"), /^f OK/, "the server still serves others");
  fresh.close();
  await settled(srv);
});

test("STARTTLS: commands pipelined after it in clear text are discarded, not run over TLS (RFC 2595 3.1)", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx);
  t.after(() => srv.close());
  const c = await greeted(srv.port);
  c.send(`s STARTTLS\r\nx LOGIN alice@a.example ${ALICE_PASSWORD}\r\n`);
  await c.waitFor((s) => s.includes("s OK Begin TLS"));
  c.socket.removeAllListeners("data");
  const tls = tlsConnect({ socket: c.socket, rejectUnauthorized: false });
  await new Promise<void>((r) => tls.once("secureConnect", () => r()));
  let got = "";
  tls.on("data", (d: Buffer) => (got += d.toString("latin1")));
  tls.write("y CAPABILITY\r\n");
  for (let i = 0; i < 200 && !/y OK/.test(got); i++) await sleep(10);
  assert.match(got, /\* CAPABILITY [^\r]*AUTH=PLAIN/);
  assert.ok(!got.includes("STARTTLS"), "STARTTLS is no longer offered");
  assert.ok(!/^x /m.test(got), "the injected LOGIN was not run");
  tls.write("z SELECT INBOX\r\n");
  for (let i = 0; i < 200 && !/z BAD/.test(got); i++) await sleep(10);
  assert.match(got, /z BAD/, "still not authenticated");
  tls.destroy();
  await settled(srv);
});

test("connection floods are bounded per address and in total, and the slots come back", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx, { limits: { connectionsPerIpMax: 5, connectionsMax: 8 } });
  t.after(() => srv.close());
  const fdsBefore = openFds();
  const flood = await Promise.all(Array.from({ length: 12 }, () => RawClient.connect(srv.port)));
  await Promise.all(flood.map((c) => c.waitFor((s) => s.includes("\r\n"))));
  const greetings = flood.filter((c) => c.received.startsWith("* OK"));
  const refused = flood.filter((c) => c.received.startsWith("* BYE [UNAVAILABLE] Too many connections"));
  assert.equal(greetings.length, 5);
  assert.equal(refused.length, 7);
  await Promise.all(refused.map((c) => c.waitClosed()));
  assert.equal(srv.metrics().connectionsOpen, 5);
  assert.equal(srv.metrics().connectionsRefused, 7);
  for (const c of greetings) c.close();
  await settled(srv);
  const c = await loggedIn(srv.port);
  assert.match(await c.command("s", "EXAMINE INBOX"), /^s OK/, "after the flood a client is served");
  c.close();
  await settled(srv);
  for (let i = 0; i < 50 && openFds() > fdsBefore; i++) await sleep(20);
  assert.ok(openFds() <= fdsBefore, `descriptors: ${openFds()} > ${fdsBefore}`);
});

test("an idle connection that never logs in is logged out after the login time-out", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx, { limits: { loginTimeoutMs: 300 } });
  t.after(() => srv.close());
  const c = await greeted(srv.port);
  assert.match(await c.waitClosed(), /\* BYE Autologout/);
  await settled(srv);
});

test("a session may not outnumber its account's bound, and IMAP BAD/NO replies carry no internal paths", async (t) => {
  const { fx } = await world(t);
  const srv = await startTestImap(fx, { limits: { sessionsPerAccountMax: 2 } });
  t.after(() => srv.close());
  const a = await loggedIn(srv.port);
  const b = await loggedIn(srv.port);
  const c = await greeted(srv.port);
  assert.match(await c.command("x", `LOGIN alice@a.example ${ALICE_PASSWORD}`), /^x NO \[LIMIT\]/);
  b.close();
  await sleep(50);
  assert.match(await c.command("y", `LOGIN alice@a.example ${ALICE_PASSWORD}`), /^y OK/);
  assert.match(await a.command("n", "SELECT Nope"), /^n NO \[NONEXISTENT\] No such mailbox\r?$/);
  assert.ok(!a.received.includes(fx.dataDir) && !c.received.includes(fx.dataDir), "no path of the server leaks");
  a.close();
  c.close();
  await settled(srv);
});
