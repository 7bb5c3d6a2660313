/**
 * Durability: SMTP in acknowledges a message only once it is fsync'ed in Maildir, so a kill -9 of
 * the server in the middle of a load loses no acknowledged message and leaves no partial file in
 * new/. The server runs as a child process that is killed with SIGKILL after a fixed number of
 * acknowledgements (not after a time, so the test does not depend on machine speed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { REPO_ROOT } from "../support/paths.ts";
import { RawSmtp, tempDir } from "./support-smtp.ts";

const CONNECTIONS = 8;
const KILL_AFTER_ACKS = 150;

function startServer(dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "test", "mail", "support-smtp-server.ts"), dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (l) => resolve({ child, port: (JSON.parse(l) as { inbound: number }).inbound }));
    child.once("exit", (code) => reject(new Error(`server exited early (${code})`)));
  });
}

/** One connection sending messages until it fails; `onAck` sees each acknowledged sequence id. */
async function sender(port: number, conn: number, onAck: (id: string) => void): Promise<void> {
  let c: RawSmtp;
  try {
    c = await RawSmtp.connect(port);
    if (!(await c.reply()).startsWith("220")) return;
    await c.cmd("EHLO load.example");
  } catch {
    return;
  }
  try {
    for (let i = 0; ; i++) {
      const id = `${conn}-${i}`;
      if (!(await c.cmd("MAIL FROM:<load@sender.example>")).startsWith("250")) return;
      if (!(await c.cmd("RCPT TO:<sink@load.test>")).startsWith("250")) return;
      if (!(await c.cmd("DATA")).startsWith("354")) return;
      const body = `${"payload line of a message under load\r\n".repeat(40)}end-of-message ${id}\r\n`;
      const r = await c.cmd(`From: load@sender.example\r\nSubject: load\r\nX-Seq: ${id}\r\n\r\n${body}.`);
      if (!r.startsWith("250")) return;
      onAck(id);
    }
  } catch {
    return;
  } finally {
    c.close();
  }
}

test("kill -9 mid-load: every acknowledged message is complete in new/, nothing partial there; the server restarts on the same Maildir", async () => {
  const tmp = tempDir("crash");
  let child: ChildProcess | undefined;
  try {
    const started = await startServer(tmp.path);
    child = started.child;
    const acked = new Set<string>();
    const victim = child;
    const onAck = (id: string): void => {
      acked.add(id);
      if (acked.size === KILL_AFTER_ACKS) victim.kill("SIGKILL");
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => sender(started.port, i, onAck)));
    assert.ok(acked.size >= KILL_AFTER_ACKS);
    const newDir = join(tmp.path, "mail", "load", "sink@load.test", "Maildir", "new");
    const stored = new Set<string>();
    for (const name of readdirSync(newDir)) {
      const path = join(newDir, name);
      const text = readFileSync(path, "latin1");
      const id = /\nX-Seq: (\S+)\n/.exec(text)?.[1];
      assert.ok(id, `a complete header in ${name}`);
      assert.ok(text.endsWith(`end-of-message ${id}\n`), `complete body in ${name}`);
      assert.equal(Number(/,S=(\d+)/.exec(name)?.[1]), statSync(path).size);
      stored.add(id);
    }
    const lost = [...acked].filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `acknowledged but lost: ${lost.length} of ${acked.size}`);
    const again = await startServer(tmp.path);
    child = again.child;
    const more = new Set<string>();
    const c = await RawSmtp.connect(again.port);
    assert.match(await c.reply(), /^220 /);
    c.close();
    await sender(again.port, 99, (id) => {
      more.add(id);
      if (more.size === 3) again.child.kill("SIGTERM");
    });
    assert.ok(more.size >= 3);
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    tmp.cleanup();
  }
});
