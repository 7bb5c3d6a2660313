/** The mail parts of the gates, as pure functions: a pass and a fail for each gate a mail command declares. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { GATES, evaluateGates } from "../../src/core/policy/gates.ts";
import { CATALOGUE, gatesFor, type GateNumber } from "../../src/core/policy/constitution.ts";
import { dkimKeyCheck } from "../../src/core/policy/mail-gates.ts";
import { reduceMail } from "../../src/core/pipeline/mail-reducer.ts";
import { MemoryState, put } from "../../src/core/pipeline/state.ts";
import type { Command } from "../../src/core/policy/schemas.ts";
import { dkimKeyCommitment, dkimPublicKeyValue, generateDkimKeys } from "../../src/services/mail/dkim.ts";
import { ADMIN, DELEGATE, DNS_SVC, OTHER, OWNER, baseState, cmd, ctxFor, envelope } from "./fixtures.ts";

const MAIL_SVC = "nx1" + "m".repeat(52);
const C = "c".repeat(64);
const key = { publicKey: "AAAA", nextKeyDigest: "0".repeat(64), seq: 0, lastEventDigest: "0".repeat(64) };

/** The fixtures' platform plus domains, zones, the mail service and one mailbox of stage. */
function mailState(): MemoryState {
  const s = baseState();
  const rows = [];
  for (const [imvu, d] of [["stage", "stage.nexus.test"], ["other", "other.nexus.test"]] as const) {
    rows.push(put("domain", d, { domain: d, imvu, kind: "base", boundIndex: "8" }));
    rows.push(put("dns-zone", `${d}.`, { origin: `${d}.`, imvu, kind: "base", createdIndex: "8", changedIndex: "8" }));
  }
  s.apply([
    ...rows,
    put("identity", MAIL_SVC, { id: MAIL_SVC, kind: "service", roles: ["mail"], ...key }),
    put("mail-mailbox", "stage/creator@stage.nexus.test", {
      imvu: "stage", address: "creator@stage.nexus.test", domain: "stage.nexus.test", identity: OWNER, verifierCommitment: C, createdIndex: "9", changedIndex: "9",
    }),
  ]);
  return s;
}

function verdict(s: MemoryState, c: Command, gate: GateNumber, over = {}): { pass: boolean; reason: string } {
  return GATES[gate](ctxFor(s, c, over));
}

const add = (actor: string, imvu: string, address: string, extra: Record<string, unknown> = {}): Command =>
  cmd("mail.mailbox.add", actor, { address, verifierCommitment: C, ...extra }, imvu);

const keys = generateDkimKeys(new Date("2026-12-02T00:00:00Z"));
const published = keys.map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKey: dkimPublicKeyValue(k), commitment: dkimKeyCommitment(k) }));

describe("mail command catalogue", () => {
  test("each mail command declares its gates; owner commands are redirects a non-owner needs consent for", () => {
    assert.deepEqual(gatesFor("mail.mailbox.add"), [1, 2, 5, 7, 10, 11, 13, 14, 16, 17]);
    assert.deepEqual(gatesFor("mail.mailbox.delete"), [1, 2, 5, 10, 11, 12, 14, 16, 17]);
    assert.deepEqual(CATALOGUE["mail.dkim.publish"].actors, ["service:mail"]);
    assert.deepEqual(CATALOGUE["mail.snapshot.record"].actors, ["service:mail"]);
    for (const t of ["mail.mailbox.add", "mail.mailbox.passwd", "mail.mailbox.delete"] as const) assert.equal(CATALOGUE[t].redirects, true);
  });

  test("the schema refuses a verifier in place of its commitment, and an address that could leave its Maildir", () => {
    assert.throws(() => add(OWNER, "stage", "creator@stage.nexus.test", { verifierCommitment: "$scrypt$ln=15,r=8,p=1$abc$def" }));
    assert.throws(() => add(OWNER, "stage", "../x@stage.nexus.test"));
    assert.throws(() => add(OWNER, "stage", "a/b@stage.nexus.test"));
    assert.throws(() => add(OWNER, "stage", "Creator@stage.nexus.test"), "addresses are lower case on the wire");
  });
});

describe("gate 2 IMVU isolation (mail)", () => {
  test("a mailbox in the IMVU's own domain passes; in another IMVU's domain is denied", () => {
    const s = mailState();
    assert.equal(verdict(s, add(OWNER, "stage", "new@stage.nexus.test"), 2).pass, true);
    const v = verdict(s, add(OWNER, "stage", "spy@other.nexus.test"), 2);
    assert.equal(v.pass, false);
    assert.match(v.reason, /another IMVU/);
  });
  test("deleting another IMVU's mailbox is denied", () => {
    const s = mailState();
    assert.equal(verdict(s, cmd("mail.mailbox.delete", OWNER, { address: "creator@stage.nexus.test" }, "stage"), 2).pass, true);
    assert.equal(verdict(s, cmd("mail.mailbox.delete", OTHER, { address: "creator@stage.nexus.test" }, "other"), 2).pass, false);
  });
});

describe("gate 5 mail attribution", () => {
  test("a new mailbox bound to a person passes; an existing address or a service identity is denied", () => {
    const s = mailState();
    assert.equal(verdict(s, add(OWNER, "stage", "new@stage.nexus.test", { identity: DELEGATE }), 5).pass, true);
    assert.match(verdict(s, add(OWNER, "stage", "creator@stage.nexus.test"), 5).reason, /already exists/);
    assert.equal(verdict(s, add(OWNER, "stage", "bot@stage.nexus.test", { identity: DNS_SVC }), 5).pass, false);
  });
  test("DKIM keys with true commitments pass; a false commitment or a missing algorithm is denied", () => {
    const s = mailState();
    const ok = cmd("mail.dkim.publish", MAIL_SVC, { domain: "stage.nexus.test", keys: published }, "stage");
    assert.equal(verdict(s, ok, 5).pass, true, verdict(s, ok, 5).reason);
    const lying = cmd("mail.dkim.publish", MAIL_SVC, { domain: "stage.nexus.test", keys: published.map((k) => ({ ...k, commitment: C })) }, "stage");
    assert.match(verdict(s, lying, 5).reason, /commitment/);
    const onlyRsa = cmd("mail.dkim.publish", MAIL_SVC, { domain: "stage.nexus.test", keys: published.slice(0, 1) }, "stage");
    assert.equal(verdict(s, onlyRsa, 5).pass, false);
  });
  test("an RSA key below 2048 bits is refused", () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "der", type: "spki" }).toString("base64");
    assert.ok("reason" in dkimKeyCheck({ selector: "s", algorithm: "rsa-sha256", publicKey: small, commitment: C }));
    const ed = createPublicKey(keys[1]?.privateKeyPem ?? "").export({ format: "der", type: "spki" });
    assert.ok("commitment" in dkimKeyCheck({ selector: "e", algorithm: "ed25519-sha256", publicKey: ed.subarray(-32).toString("base64"), commitment: C }));
  });
});

describe("gate 4 DNS authority (DKIM records)", () => {
  test("keys for the IMVU's own zone pass; for a domain without its zone are denied", () => {
    const s = mailState();
    assert.equal(verdict(s, cmd("mail.dkim.publish", MAIL_SVC, { domain: "stage.nexus.test", keys: published }, "stage"), 4).pass, true);
    assert.equal(verdict(s, cmd("mail.dkim.publish", MAIL_SVC, { domain: "other.nexus.test", keys: published }, "stage"), 4).pass, false);
  });
});

describe("gate 7 resource quotas (mail)", () => {
  test("a mailbox within the envelope's count passes; beyond it is denied", () => {
    const s = mailState();
    assert.equal(verdict(s, add(OWNER, "stage", "new@stage.nexus.test"), 7).pass, true);
    s.apply([put("imvu", "stage", { ...(s.get("imvu", "stage") ?? assert.fail()), envelope: envelope({ mailboxes: 1 }) as never })]);
    const v = verdict(s, add(OWNER, "stage", "new@stage.nexus.test"), 7);
    assert.equal(v.pass, false);
    assert.match(v.reason, /2 mailboxes exceed the envelope's 1/);
  });
  test("a new mailbox is denied when the reported mail storage fills the envelope", () => {
    const s = mailState();
    s.apply([put("usage", "stage/mail/2026-12-01T00:00:00.000Z", {
      imvu: "stage", service: "mail", intervalStart: "2026-12-01T00:00:00.000Z", intervalEnd: "2026-12-01T00:01:00.000Z", metrics: { storageBytes: String(1n << 30n) }, index: "10",
    })]);
    assert.match(verdict(s, add(OWNER, "stage", "new@stage.nexus.test"), 7).reason, /mail storage in use/);
  });
  test("lowering the envelope below the mailboxes in use is denied", () => {
    const s = mailState();
    const lower = cmd("imvu.envelope.change", OWNER, { envelope: envelope({ mailboxes: 0 }) }, "stage");
    assert.match(verdict(s, lower, 7).reason, /mailboxes in use 1 > 0/);
    assert.equal(verdict(s, cmd("imvu.envelope.change", OWNER, { envelope: envelope({ mailboxes: 1 }) }, "stage"), 7).pass, true);
  });
});

describe("gates 10 and 14: a non-owner needs consent", () => {
  test("the owner passes; an admin without consent is denied; with consent to the digest passes", () => {
    const s = mailState();
    const own = add(OWNER, "stage", "new@stage.nexus.test");
    assert.equal(verdict(s, own, 10).pass, true);
    assert.equal(verdict(s, own, 14).pass, true);
    const byAdmin = add(ADMIN, "stage", "intercept@stage.nexus.test");
    assert.equal(verdict(s, byAdmin, 10).pass, false);
    assert.equal(verdict(s, byAdmin, 14).pass, false);
    s.apply([put("consent", "d".repeat(64), { imvu: "stage", owner: OWNER, digest: "d".repeat(64), index: "11" })]);
    assert.equal(verdict(s, byAdmin, 10, { digest: "d".repeat(64) }).pass, true);
    assert.equal(verdict(s, byAdmin, 14, { digest: "d".repeat(64) }).pass, true);
  });
});

describe("gate 12 immutable snapshots (mail)", () => {
  test("a snapshot for the pending delete passes; without a pending delete, or for another delete, is denied", () => {
    const s = mailState();
    const snap = (of: string): Command => cmd("mail.snapshot.record", MAIL_SVC, { address: "creator@stage.nexus.test", snapshot: "e".repeat(64), bytes: "10240", of }, "stage");
    assert.equal(verdict(s, snap("12"), 12).pass, false, "no delete pending");
    const del = cmd("mail.mailbox.delete", OWNER, { address: "creator@stage.nexus.test" }, "stage");
    assert.equal(verdict(s, del, 12).pass, true);
    s.apply(reduceMail(s, del as Extract<Command, { type: "mail.mailbox.delete" }>, { index: 12n, time: "2026-12-02T00:00:00.000Z", digest: C }));
    assert.equal(s.get("mail-mailbox", "stage/creator@stage.nexus.test")?.deletingIndex, "12", "the delete only marks the mailbox");
    assert.equal(verdict(s, snap("12"), 12).pass, true);
    assert.equal(verdict(s, snap("13"), 12).pass, false);
    assert.equal(verdict(s, del, 5).pass, false, "a second delete while one is pending");
  });
});

describe("gate 16 no cross-IMVU leakage (mail)", () => {
  test("a mailbox bound to a person passes; to a service identity is denied; another IMVU's mailbox is denied", () => {
    const s = mailState();
    assert.equal(verdict(s, add(OWNER, "stage", "new@stage.nexus.test", { identity: OTHER }), 16).pass, true);
    assert.equal(verdict(s, add(OWNER, "stage", "bot@stage.nexus.test", { identity: MAIL_SVC }), 16).pass, false);
    assert.equal(verdict(s, cmd("mail.mailbox.passwd", OTHER, { address: "creator@stage.nexus.test", verifierCommitment: C }, "other"), 16).pass, false);
  });
});

describe("gate 1 actors and the whole evaluation", () => {
  test("only the mail service publishes DKIM keys; the owner's add passes every gate", () => {
    const s = mailState();
    const byOwner = cmd("mail.dkim.publish", OWNER, { domain: "stage.nexus.test", keys: published }, "stage");
    assert.equal(verdict(s, byOwner, 1).pass, false);
    const all = evaluateGates(ctxFor(s, add(OWNER, "stage", "new@stage.nexus.test")));
    assert.ok(all.every((v) => v.pass), JSON.stringify(all.filter((v) => !v.pass)));
  });
  test("publishing writes the DKIM TXT rows into the zone and stamps its serial", () => {
    const s = mailState();
    const c = cmd("mail.dkim.publish", MAIL_SVC, { domain: "stage.nexus.test", keys: published }, "stage");
    assert.ok(evaluateGates(ctxFor(s, c)).every((v) => v.pass));
    s.apply(reduceMail(s, c as Extract<Command, { type: "mail.dkim.publish" }>, { index: 20n, time: "2026-12-02T00:00:00.000Z", digest: C }));
    const rows = s.list("dns-rrset", "stage.nexus.test. ").map(([, r]) => r);
    assert.equal(rows.length, 2);
    for (const r of rows) assert.match(r.name, /^nx-20261202-(rsa|ed25519)\._domainkey\.stage\.nexus\.test\.$/);
    assert.ok(rows.every((r) => r.values.every((v) => v.type === "TXT" && v.text.every((t) => t.length <= 255))));
    assert.equal(s.get("dns-zone", "stage.nexus.test.")?.changedIndex, "20");
  });
});

describe("docs/errors.md", () => {
  test('lists every MAIL_ code under "## mail (ledger)"', async () => {
    const { mailLedgerErrors } = await import("../../src/platform/services/mail-api.ts");
    const { errorRows } = await import("../crypto/doc-rows.ts");
    const rows = errorRows("mail (ledger)", "MAIL_");
    const specs = Object.entries(mailLedgerErrors.specs);
    assert.deepEqual([...rows.keys()].sort(), specs.map(([c]) => c).sort());
    for (const [c, s] of specs) assert.equal(rows.get(c), `${s.http} | ${s.exit} | ${s.message}`, c);
  });
});
