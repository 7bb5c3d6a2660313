/**
 * The exit grace period: after an exit request the platform keeps serving the IMVU; an
 * `imvu.exit.expire` before the grace period ends is recorded and denied by gate 13; after it,
 * the platform's sweeper records the expiry and the DNS projection stops serving the IMVU's
 * zones (and the platform zone's delegation to it). An owner's departure ends serving at once,
 * and the expiry is then denied (no second departure). And the import record: gate 13 applies
 * imvu.import only with an origin checkpoint signed by the key it names.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { EXIT_GRACE_MS } from "../../src/core/policy/gates.ts";
import { servedZoneInput, servedZoneInputs } from "../../src/core/policy/dns-zones.ts";
import { dueForExpiry, sweepExpiredExits } from "../../src/imvu/index.ts";
import { Platform, signerOf } from "../../src/platform/platform.ts";
import { cleanup, tempDir } from "./support.ts";

const DAY_MS = 86_400_000;

describe("exit grace period", () => {
  let now = Date.parse("2026-12-02T10:00:00Z");
  let p: Platform;
  let owner: LocalIdentity;
  const asOwner = (draft: CommandDraft) => p.pipeline.submit(signCommand(draft, signerOf(owner), new Date(now)).json);

  before(async () => {
    p = await Platform.open({ home: join(tempDir("nexus-grace-"), "home"), clock: () => new Date(now) });
    owner = createIdentity(join(tempDir("nexus-grace-owner-"), "keyring"), { name: "owner", makeDefault: true });
    const first = owner.kel[0];
    assert.ok(first);
    assert.equal((await asOwner({ type: "identity.inception", body: { inception: first } })).outcome, "applied");
    for (const name of ["stage", "solo"]) {
      const r = await asOwner({ type: "imvu.create", imvu: name, body: { name, jurisdiction: "ZZ", class: "imvu", envelope: envelopeToWire(ENVELOPE_PROFILES.small) } });
      assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    }
  });

  after(async () => {
    await p?.close();
    cleanup();
  });

  test("no expiry without an exit request", async () => {
    const r = await p.submitAsPlatform({ type: "imvu.exit.expire", imvu: "stage", body: {} });
    assert.equal(r.outcome, "denied");
    assert.match(r.gates.find((g) => g.gate === 13)?.reason ?? "", /no exit request/);
  });

  test("during the grace period the IMVU is served and an expiry is denied; after it, the sweeper expires it and DNS stops", async () => {
    assert.equal((await asOwner({ type: "imvu.exit.request", imvu: "stage", body: {} })).outcome, "applied");
    assert.equal(p.state.get("imvu", "stage")?.exit?.requestedAt, new Date(now).toISOString());
    now += 29 * DAY_MS;
    assert.deepEqual(dueForExpiry(p.state, now), []);
    const early = await p.submitAsPlatform({ type: "imvu.exit.expire", imvu: "stage", body: {} });
    assert.equal(early.outcome, "denied", "an expiry inside the grace period is recorded and denied");
    assert.match(early.gates.find((g) => g.gate === 13)?.reason ?? "", /grace period runs until/);
    assert.ok(servedZoneInput(p.state, "stage.nexus.test."), "still served during the grace period");
    now += 1 * DAY_MS + 1000;
    assert.ok(now - Date.parse(p.state.get("imvu", "stage")?.exit?.requestedAt ?? "") > EXIT_GRACE_MS);
    const receipts = await sweepExpiredExits(p, now);
    assert.equal(receipts.length, 1);
    assert.equal(receipts[0]?.outcome, "applied", JSON.stringify(receipts[0]?.gates));
    const rec = p.state.get("imvu", "stage");
    assert.equal(rec?.exit?.expired, true);
    assert.equal(rec?.exit?.departedIndex, receipts[0]?.index);
    assert.equal(servedZoneInput(p.state, "stage.nexus.test."), undefined, "the departed IMVU's zone is no longer served");
    const platformZone = servedZoneInputs(p.state)[0];
    assert.ok(platformZone && !platformZone.records.some((r) => r.name === "stage.nexus.test." && r.data.type === "NS"), "no delegation to it");
    assert.deepEqual(await sweepExpiredExits(p, now), [], "one expiry only");
    const feed = p.state.list("feed", "stage/").map(([, f]) => `${f.type}:${f.outcome}`);
    assert.ok(feed.includes("imvu.exit.expire:applied") && feed.includes("imvu.exit.expire:denied"), "the ledger records both");
  });

  test("the owner's departure ends serving at once; a later expiry is denied", async () => {
    assert.equal((await asOwner({ type: "imvu.exit.request", imvu: "solo", body: {} })).outcome, "applied");
    assert.equal((await asOwner({ type: "imvu.depart", imvu: "solo", body: {} })).outcome, "applied");
    assert.equal(servedZoneInput(p.state, "solo.nexus.test."), undefined);
    now += 31 * DAY_MS;
    assert.deepEqual(dueForExpiry(p.state, now), []);
    const late = await p.submitAsPlatform({ type: "imvu.exit.expire", imvu: "solo", body: {} });
    assert.equal(late.outcome, "denied");
    assert.match(late.gates.find((g) => g.gate === 13)?.reason ?? "", /already departed/);
  });

  test("imvu.import is applied only with an origin checkpoint that verifies with the given key (gate 13)", async () => {
    const other = await Platform.open({ home: join(tempDir("nexus-origin-"), "home") });
    try {
      const note = (await other.ledger.checkpoint()).note;
      const body = { originImvu: "stage", checkpoint: note, manifest: "ab".repeat(32) };
      const forged = await asOwner({ type: "imvu.import", imvu: "stage", body: { ...body, verifierKey: p.verifierKey } });
      assert.equal(forged.outcome, "denied");
      assert.match(forged.gates.find((g) => g.gate === 13)?.reason ?? "", /does not verify/);
      const real = await asOwner({ type: "imvu.import", imvu: "stage", body: { ...body, verifierKey: other.verifierKey } });
      assert.equal(real.outcome, "applied", JSON.stringify(real.gates));
      assert.equal(p.state.get("imvu", "stage")?.importedFrom?.verifierKey, other.verifierKey);
    } finally {
      await other.close();
    }
  });
});
