/**
 * `nexus imvu exit` and `nexus imvu verify-export` end to end: a real stack, an IMVU with DNS
 * records, a mailbox with mail, revenue and volume data; the owner's CLI (a child process with
 * its own keyring and trust directory) exits, and the bundle is checked by the CLI offline and by
 * independent tools (named-checkzone, Debian's age, `revenue verify-statement`). Then the hostile
 * cases: each deletion, altered byte, swapped file or stripped signature is caught and named.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBase64, parseDsse, toBase64 } from "../../src/core/crypto/index.ts";
import { EXIT_MANIFEST_PAYLOAD_TYPE, ExitManifestSchema, PATHS, verifyBundle, zonePath } from "../../src/imvu/index.ts";
import { cleanup, cli, deliver, fillVolume, message, person, startInstallation, tempDir, type Installation } from "./support.ts";

const PASSPHRASE = "correct horse battery staple";
const ADDRESS = "creator@stage.nexus.test";

function manifestOf(dir: string): ReturnType<typeof ExitManifestSchema.parse> {
  const env = parseDsse(readFileSync(join(dir, "manifest.json"), "utf8"));
  return ExitManifestSchema.parse(JSON.parse(Buffer.from(fromBase64(env.payload) ?? new Uint8Array()).toString("utf8")));
}

describe("imvu exit and verify-export", () => {
  let inst: Installation;
  let creator: Record<string, string>;
  let mallory: Record<string, string>;
  let out: string;
  let otherOut: string;
  let passFile: string;

  before(async () => {
    inst = await startInstallation("nexus-exit-");
    creator = person(inst.stack.apiUrl, "creator");
    mallory = person(inst.stack.apiUrl, "mallory");
    const must = async (args: string[], env: Record<string, string>, input = ""): Promise<string> => {
      const r = await cli(args, env, input);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    };
    await must(["imvu", "create", "--name", "stage", "--jurisdiction", "DE"], creator);
    await must(["dns", "set", "--imvu", "stage", "www", "A", "192.0.2.10"], creator);
    await must(["dns", "set", "--imvu", "stage", "@", "TXT", "hello from stage"], creator);
    await must(["mail", "add", "--imvu", "stage", ADDRESS], creator);
    deliver(inst.home, "stage", ADDRESS, [1, 2, 3].map((n) => message(n, ADDRESS)));
    fillVolume(inst.home, "stage", { "index.html": "<h1>stage</h1>\n", "db/notes.txt": "volume data\n" });
    for (const [id, amount] of [["evt_1", "1001"], ["evt_2", "250"]] as const) {
      const r = await inst.stack.platform.submitAsService("revenue-source", {
        type: "revenue.record",
        imvu: "stage",
        body: { eventId: id, amount, currency: "EUR", class: "imvu", source: "checkout" },
      });
      assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    }
    await must(["imvu", "create", "--name", "other"], mallory);
    await must(["dns", "set", "--imvu", "other", "www", "A", "192.0.2.99"], mallory);
    passFile = join(tempDir("nexus-pass-"), "pass");
    writeFileSync(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    out = join(tempDir("nexus-out-"), "bundle");
    otherOut = join(tempDir("nexus-out-other-"), "bundle");
  });

  after(async () => {
    await inst?.stack.stop();
    cleanup();
  });

  test("exit writes a bundle the CLI verified and countersigned; verify-export accepts it offline", async () => {
    const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", out, "--passphrase-file", passFile], creator);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /exit request of stage: applied/);
    assert.match(r.stdout, /the exit bundle of stage verifies/);
    const env = parseDsse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(env.payloadType, EXIT_MANIFEST_PAYLOAD_TYPE);
    assert.equal(env.signatures.length, 2, "platform signature and owner countersignature");
    const m = manifestOf(out);
    assert.equal(m.imvu, "stage");
    assert.equal(m.jurisdiction, "DE");
    assert.equal(m.inventory.mailboxes[0]?.messages, 3);
    assert.deepEqual(m.inventory.zones.map((z) => z.origin), ["stage.nexus.test."]);
    assert.ok(m.inventory.volume, "the volume is exported");
    assert.ok(m.inventory.consistency.length >= 1, "a consistency proof from the checkpoint the CLI saw");
    assert.ok(m.inventory.ledgerEntries.includes(m.exitRequestedIndex));
    const v = await cli(["imvu", "verify-export", out, "--verifier-key", inst.stack.platform.verifierKey], {});
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const o = await cli(["imvu", "exit", "--imvu", "other", "--out", otherOut, "--passphrase-file", passFile], mallory);
    assert.equal(o.code, 0, o.stderr + o.stdout);
  });

  test("independent tools read the bundle: named-checkzone, age, revenue verify-statement, tar", async () => {
    const zone = join(out, zonePath("stage.nexus.test."));
    const nz = spawnSync("named-checkzone", ["stage.nexus.test", zone], { encoding: "utf8" });
    assert.equal(nz.status, 0, nz.stdout + nz.stderr);
    assert.match(readFileSync(zone, "utf8"), /^www\s+\d+\s+IN\s+A\s+192\.0\.2\.10$/m);
    const age = spawnSync("age", ["--decrypt", "-o", join(tempDir("nexus-age-"), "s.json"), join(out, PATHS.secrets)], { encoding: "utf8", input: `${PASSPHRASE}\n` });
    if (age.error === undefined && age.status !== null) {
      // age reads the passphrase from the terminal only; decrypt through a pseudo-terminal with script(1).
      const outFile = join(tempDir("nexus-age-"), "secrets.json");
      const sc = spawnSync("script", ["-qec", `age --decrypt -o ${outFile} ${join(out, PATHS.secrets)}`, "/dev/null"], { encoding: "utf8", input: `${PASSPHRASE}\n`, timeout: 60_000 });
      assert.equal(sc.status, 0, sc.stdout + sc.stderr);
      const secrets = JSON.parse(readFileSync(outFile, "utf8")) as { passwords: Record<string, string>; dkim: Record<string, unknown[]> };
      assert.match(secrets.passwords[ADDRESS] ?? "", /^\$scrypt\$/);
    }
    const st = manifestOf(out).inventory.statements;
    assert.ok(st.length >= 1);
    const withEntries = st.find((s) => s.entries === 2);
    assert.ok(withEntries, "this month's statement holds both revenue entries");
    const vs = await cli(["revenue", "verify-statement", join(out, withEntries.file), "--verifier-key", inst.stack.platform.verifierKey], {});
    assert.equal(vs.code, 0, vs.stdout + vs.stderr);
    const mbox = readFileSync(join(out, "mail", ADDRESS, "mbox", "INBOX.mbox"), "latin1");
    assert.equal(mbox.match(/^From MAILER-DAEMON /gm)?.length, 3);
    assert.equal(mbox.match(/^>From the start/gm)?.length, 3, "mboxrd quoting");
    assert.equal(readdirSync(join(out, "mail", ADDRESS, "Maildir", "new")).length, 3);
    const tar = spawnSync("tar", ["-tf", join(out, PATHS.volume)], { encoding: "utf8" });
    assert.equal(tar.status, 0, tar.stderr);
    assert.match(tar.stdout, /db\/notes\.txt/);
  });

  test("hostile: every deletion, altered byte, swapped file or stripped signature is caught and named", () => {
    const vkey = inst.stack.platform.verifierKey;
    const mailFile = (dir: string): string => {
      const d = join(dir, "mail", ADDRESS, "Maildir", "new");
      return join(d, readdirSync(d).sort()[0] ?? "");
    };
    const flip = (p: string, at: (b: Buffer) => number): void => {
      const b = readFileSync(p);
      const i = at(b);
      b[i] = (b[i] ?? 0) ^ 0x01;
      writeFileSync(p, b);
    };
    const cases: { name: string; mutate: (dir: string) => void; want: RegExp }[] = [
      { name: "delete a mail", mutate: (d) => rmSync(mailFile(d)), want: /Maildir\/new\/.*: missing/ },
      { name: "alter a byte of a mail", mutate: (d) => flip(mailFile(d), (b) => b.length - 5), want: /Maildir\/new\/.*: altered/ },
      { name: "alter a zone", mutate: (d) => writeFileSync(join(d, zonePath("stage.nexus.test.")), readFileSync(join(d, zonePath("stage.nexus.test.")), "utf8").replace("192.0.2.10", "203.0.113.66")), want: /dns\/stage\.nexus\.test\.zone: altered/ },
      {
        name: "alter a ledger entry",
        mutate: (d) => {
          const f = JSON.parse(readFileSync(join(d, PATHS.entries), "utf8")) as { entries: { entry: string }[] };
          const e = f.entries[1];
          if (e) e.entry = toBase64(Buffer.from(Buffer.from(e.entry, "base64").toString("utf8").replace('"applied"', '"denied"')));
          writeFileSync(join(d, PATHS.entries), JSON.stringify(f));
        },
        want: /ledger entry \d+: the entry bytes do not hash to its leaf hash/,
      },
      {
        name: "alter a proof",
        mutate: (d) => {
          const f = JSON.parse(readFileSync(join(d, PATHS.entries), "utf8")) as { entries: { inclusionProof: string[] }[] };
          const p = f.entries[2]?.inclusionProof;
          if (p?.[0]) p[0] = `${p[0].slice(0, 63)}${p[0].endsWith("0") ? "1" : "0"}`;
          writeFileSync(join(d, PATHS.entries), JSON.stringify(f));
        },
        want: /ledger entry \d+: inclusion proof does not lead to the signed checkpoint/,
      },
      {
        name: "alter the manifest (jurisdiction), keeping the signatures",
        mutate: (d) => {
          const env = parseDsse(readFileSync(join(d, "manifest.json"), "utf8"));
          const payload = Buffer.from(env.payload, "base64").toString("utf8").replace('"jurisdiction":"DE"', '"jurisdiction":"US"');
          writeFileSync(join(d, "manifest.json"), JSON.stringify({ ...env, payload: Buffer.from(payload).toString("base64") }));
        },
        want: /manifest\.json: the platform's signature does not verify/,
      },
      {
        name: "strip the owner's countersignature",
        mutate: (d) => {
          const env = parseDsse(readFileSync(join(d, "manifest.json"), "utf8"));
          writeFileSync(join(d, "manifest.json"), JSON.stringify({ ...env, signatures: env.signatures.slice(0, 1) }));
        },
        want: /owner's countersignature is missing/,
      },
      { name: "swap in another IMVU's zone", mutate: (d) => cpSync(join(otherOut, zonePath("other.nexus.test.")), join(d, zonePath("stage.nexus.test."))), want: /dns\/stage\.nexus\.test\.zone: altered/ },
      { name: "swap in another IMVU's ledger entries", mutate: (d) => cpSync(join(otherOut, PATHS.entries), join(d, PATHS.entries)), want: /ledger\/entries\.json: altered/ },
      { name: "add a file", mutate: (d) => writeFileSync(join(d, "dns", "evil.zone"), "x"), want: /dns\/evil\.zone: not in the manifest/ },
      { name: "delete the checkpoint", mutate: (d) => rmSync(join(d, PATHS.checkpoint)), want: /ledger\/checkpoint\.txt: missing/ },
      { name: "alter a volume byte", mutate: (d) => flip(join(d, PATHS.volume), () => 600), want: /compute\/volume\.tar: altered/ },
    ];
    for (const c of cases) {
      const copy = join(tempDir("nexus-hostile-"), "b");
      cpSync(out, copy, { recursive: true });
      c.mutate(copy);
      const r = verifyBundle(copy, { verifierKey: vkey });
      assert.equal(r.ok, false, `${c.name}: not caught`);
      assert.ok(r.problems.some((p) => c.want.test(p)), `${c.name}: problems do not name it: ${r.problems.join(" | ")}`);
    }
    const clean = verifyBundle(out, { verifierKey: vkey });
    assert.deepEqual(clean.problems, []);
    const otherPlatform = "nexus.local/ledger+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const forged = verifyBundle(out, { verifierKey: otherPlatform });
    assert.ok(forged.problems.some((p) => /checkpoint\.txt: the signed checkpoint does not verify/.test(p)), forged.problems.join(" | "));
  });

  test("verify-export exits 1 listing what is altered", async () => {
    const copy = join(tempDir("nexus-hostile-cli-"), "b");
    cpSync(out, copy, { recursive: true });
    rmSync(join(copy, PATHS.mailboxes));
    const r = await cli(["imvu", "verify-export", copy], {});
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /does NOT verify/);
    assert.match(r.stdout, /mail\/mailboxes\.json: missing/);
  });

  test("nobody but the owner downloads a bundle: another identity gets the same 404 as for no IMVU", async () => {
    const r = await cli(["imvu", "exit", "--imvu", "stage", "--out", join(tempDir("nexus-steal-"), "b"), "--passphrase-file", passFile], mallory);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /GATE_DENIED|NOT_FOUND/);
  });
});
