/**
 * The pipeline end to end, through Platform.open, on one backend: every command of issue 3
 * applied with a verified receipt, every pre-gate rejection with its code and nothing recorded,
 * gate denials recorded with their failing gates and the projection untouched (apart from the
 * nonce and feed bookkeeping), the hostile list of issue 3, and replay reproducing the state.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { canonicalize } from "../../src/core/crypto/index.ts";
import { toBase64, utf8 } from "../../src/core/crypto/bytes.ts";
import { CATALOGUE, CONSTITUTION_VERSION, SPLIT_PERCENT, constitutionHash } from "../../src/core/policy/constitution.ts";
import { COMMAND_BYTES_MAX } from "../../src/core/pipeline/authenticate.ts";
import { leafHash } from "../../src/core/ledger/merkle.ts";
import { parseEntry, readProjection } from "../../src/core/pipeline/pipeline.ts";
import { diffStates, replay } from "../../src/core/pipeline/replay.ts";
import { identityVerifiers } from "../../src/platform/verifiers.ts";
import { signPayload } from "../../src/core/pipeline/sign.ts";
import { createIdentity } from "../../src/core/identity/index.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { signerOf } from "../../src/platform/platform.ts";
import {
  act,
  checkReceipt,
  envelope,
  expectApplied,
  expectDenied,
  expectRejected,
  imvu,
  install,
  person,
  rotate,
  service,
  sign,
  stateWithoutBookkeeping,
  submit,
  type Backend,
  type Installation,
} from "./support.ts";
import { replayLedger } from "./replay-support.ts";

const MIN = 60_000;

/** Registers the suite for `backend`. */
export function pipelineSuite(backend: Backend): void {
  let inst: Installation;
  before(async () => {
    inst = await install(backend);
  });
  after(async () => {
    await inst.cleanup();
  });

  /** Runs `p`, asserting the denial and that only bookkeeping (nonce, feed) changed. */
  async function denied(p: () => Promise<import("../../src/core/pipeline/pipeline.ts").Receipt>, gates: number[]): Promise<void> {
    const snapshot = stateWithoutBookkeeping(inst);
    const size = inst.platform.ledger.size;
    await expectDenied(inst, p(), gates);
    assert.equal(inst.platform.ledger.size, size + 1n, "a denial is recorded");
    assert.equal(stateWithoutBookkeeping(inst), snapshot, "a denial changes nothing but the nonce and the feed");
  }

  describe(`pipeline end to end (${backend})`, () => {
    test("genesis: the first entry records the constitution, the platform key and the base domain; services registered", async () => {
      const g = inst.platform.state.get("platform", "genesis");
      assert.ok(g);
      assert.equal(g.constitutionVersion, CONSTITUTION_VERSION);
      assert.equal(g.constitutionHash, constitutionHash());
      assert.equal(g.baseDomain, "nexus.test");
      assert.equal(g.genesisIndex, "0");
      assert.equal(g.platformId, inst.platform.platformIdentity().id);
      const first = parseEntry(await inst.platform.ledger.entry(0n));
      assert.equal(first.outcome, "applied");
      for (const role of ["dns", "mail", "compute", "gateway", "revenue-source", "meter"] as const) {
        const id = inst.platform.state.get("identity", service(inst, role).id);
        assert.deepEqual(id?.roles, [role]);
        assert.equal(id?.kind, "service");
      }
      // A second genesis, by anyone, is refused before the gates.
      const usurper = createIdentity(inst.keyring, { name: "usurper", makeDefault: false });
      const body = { constitutionVersion: 1, constitutionHash: constitutionHash(), baseDomain: "evil.test", inception: usurper.kel[0] };
      await expectRejected(inst, act(inst, usurper, { type: "platform.genesis", body }), "PIPELINE_IDENTITY_EXISTS");
    });

    test("a restart reloads the same projection (digest) from the store", async () => {
      await person(inst, "restart-check");
      const digest = inst.platform.pipeline.stateDigest();
      const size = inst.platform.ledger.size;
      await inst.reopen();
      assert.equal(inst.platform.pipeline.stateDigest(), digest);
      assert.equal(inst.platform.ledger.size, size, "reopening records nothing more");
    });

    test("identity inception and rotation; the rotated-out key no longer signs; a rotation cannot be replayed", async () => {
      const alice = await person(inst, "alice-rot");
      assert.equal(inst.platform.state.get("identity", alice.id)?.seq, 0);
      const { identity: alice1, receipt } = await rotate(inst, alice);
      await expectApplied(inst, Promise.resolve(receipt));
      assert.equal(inst.platform.state.get("identity", alice.id)?.seq, 1);
      assert.equal(inst.platform.state.get("identity", alice.id)?.publicKey, alice1.state.publicKey);
      // Hostile: sign with the rotated-out key.
      await expectRejected(inst, act(inst, alice, { type: "imvu.create", imvu: "alice-old", body: { name: "alice-old", jurisdiction: "DE", class: "imvu", envelope: envelope() } }), "PIPELINE_BAD_SIGNATURE");
      // The new key works.
      await imvu(inst, alice1, "alice-new");
      // Replaying the rotation event (fresh nonce) does not verify against the current key state.
      const again = sign(inst, alice1, { type: "identity.rotate", body: { rotation: alice1.kel[1] } });
      await expectRejected(inst, submit(inst, again), "PIPELINE_KEY_EVENT_INVALID");
      // An inception of an already registered identity is refused.
      await expectRejected(inst, act(inst, alice1, { type: "identity.inception", body: { inception: alice1.kel[0] } }), "PIPELINE_IDENTITY_EXISTS");
    });

    test("admin add and remove by the platform; an admin cannot raise its own power", async () => {
      const adm = await person(inst, "adm-1");
      const other = await person(inst, "adm-2");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      assert.ok(inst.platform.state.get("admin", adm.id));
      // Hostile: the admin makes another admin, or a person makes itself admin.
      await denied(() => act(inst, adm, { type: "admin.add", body: { identity: other.id } }), [1]);
      await denied(() => act(inst, other, { type: "admin.add", body: { identity: other.id } }), [1]);
      // Hostile: the admin registers a service identity (to mint revenue).
      const fake = createIdentity(inst.keyring, { name: "fake-svc", makeDefault: false });
      await denied(() => act(inst, adm, { type: "service.register", body: { inception: fake.kel[0], roles: ["revenue-source"] } }), [1]);
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.remove", body: { identity: adm.id } }));
      assert.equal(inst.platform.state.get("admin", adm.id), undefined);
    });

    test("imvu create; a taken name is denied by gate 3; bad jurisdiction by gate 9; above the ceiling by gate 7", async () => {
      const bob = await person(inst, "bob-create");
      const r = await imvu(inst, bob, "bobsite");
      await checkReceipt(inst, r);
      const rec = inst.platform.state.get("imvu", "bobsite");
      assert.equal(rec?.owner, bob.id);
      assert.equal(rec?.status, "active");
      assert.equal(rec?.createdIndex, r.index);
      const carol = await person(inst, "carol-create");
      const body = { name: "bobsite", jurisdiction: "DE", class: "imvu", envelope: envelope() };
      await denied(() => act(inst, carol, { type: "imvu.create", imvu: "bobsite", body }), [3]);
      // Hostile: a create filed under another IMVU's name (its feed) while creating a new one.
      await denied(() => act(inst, carol, { type: "imvu.create", imvu: "bobsite", body: { ...body, name: "carolsite" } }), [3]);
      await denied(() => act(inst, carol, { type: "imvu.create", imvu: "carolsite", body: { ...body, name: "carolsite", jurisdiction: "XX" } }), [9]);
      await denied(() => act(inst, carol, { type: "imvu.create", imvu: "carolsite", body: { ...body, name: "carolsite", envelope: envelope({ cpuMillis: 64_000 }) } }), [7]);
    });

    test("envelope change: the owner raises; an admin cannot raise or shrink without consent; with consent it can, once", async () => {
      const dan = await person(inst, "dan-env");
      await imvu(inst, dan, "dansite");
      await expectApplied(inst, act(inst, dan, { type: "imvu.envelope.change", imvu: "dansite", body: { envelope: envelope({ cpuMillis: 800 }) } }));
      assert.equal(inst.platform.state.get("imvu", "dansite")?.envelope.cpuMillis, 800);
      const adm = await person(inst, "adm-env");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      // Hostile: raise (siphon to nobody's benefit) and shrink (siphon) without consent.
      await denied(() => act(inst, adm, { type: "imvu.envelope.change", imvu: "dansite", body: { envelope: envelope({ cpuMillis: 2000 }) } }), [7, 10]);
      await denied(() => act(inst, adm, { type: "imvu.envelope.change", imvu: "dansite", body: { envelope: envelope({ cpuMillis: 100 }) } }), [10]);
      // Consent: the owner signs the digest of the admin's exact command, then the admin submits it.
      const shrink = sign(inst, adm, { type: "imvu.envelope.change", imvu: "dansite", body: { envelope: envelope({ cpuMillis: 400 }) } });
      const consent = await expectApplied(inst, act(inst, dan, { type: "consent.give", imvu: "dansite", body: { digest: shrink.digest } }));
      assert.equal(inst.platform.state.get("consent", shrink.digest)?.index, consent.index);
      const applied = await expectApplied(inst, submit(inst, shrink));
      assert.equal(inst.platform.state.get("imvu", "dansite")?.envelope.cpuMillis, 400);
      assert.equal(inst.platform.state.get("consent", shrink.digest)?.usedIndex, applied.index, "the consent is used up");
      // A consent names one digest: another command (same body, new nonce) is not covered.
      await denied(() => act(inst, adm, { type: "imvu.envelope.change", imvu: "dansite", body: { envelope: envelope({ cpuMillis: 400 }) } }), [10]);
      // A consent given by someone who is not the owner is denied.
      const eve = await person(inst, "eve-env");
      await denied(() => act(inst, eve, { type: "consent.give", imvu: "dansite", body: { digest: "a".repeat(64) } }), [1, 10]);
    });

    test("delegation grant and revoke: the delegate acts within its scope only, and not after revocation", async () => {
      const fay = await person(inst, "fay-del");
      const gus = await person(inst, "gus-del");
      await imvu(inst, fay, "faysite");
      await expectApplied(inst, act(inst, fay, { type: "delegation.grant", imvu: "faysite", body: { delegate: gus.id, scope: ["imvu.envelope.change"] } }));
      assert.deepEqual(inst.platform.state.get("delegation", `faysite/${gus.id}`)?.scope, ["imvu.envelope.change"]);
      await expectApplied(inst, act(inst, gus, { type: "imvu.envelope.change", imvu: "faysite", body: { envelope: envelope({ cpuMillis: 600 }) } }));
      // Hostile: the delegate steps outside its scope.
      await denied(() => act(inst, gus, { type: "imvu.exit.request", imvu: "faysite", body: {} }), [1]);
      await denied(() => act(inst, gus, { type: "delegation.grant", imvu: "faysite", body: { delegate: gus.id, scope: ["imvu.depart"] } }), [1, 10]);
      // A scope beyond IMVU commands, or including consent, is denied by gate 16.
      await denied(() => act(inst, fay, { type: "delegation.grant", imvu: "faysite", body: { delegate: gus.id, scope: ["admin.add"] } }), [16]);
      await denied(() => act(inst, fay, { type: "delegation.grant", imvu: "faysite", body: { delegate: gus.id, scope: ["consent.give"] } }), [16]);
      await expectApplied(inst, act(inst, fay, { type: "delegation.revoke", imvu: "faysite", body: { delegate: gus.id } }));
      assert.equal(inst.platform.state.get("delegation", `faysite/${gus.id}`), undefined);
      await denied(() => act(inst, gus, { type: "imvu.envelope.change", imvu: "faysite", body: { envelope: envelope({ cpuMillis: 700 }) } }), [1, 7, 10]);
      await denied(() => act(inst, fay, { type: "delegation.revoke", imvu: "faysite", body: { delegate: gus.id } }), [2]);
    });

    test("an identity cannot act on another's IMVU", async () => {
      const hal = await person(inst, "hal-iso");
      const ivy = await person(inst, "ivy-iso");
      await imvu(inst, hal, "halsite");
      await denied(() => act(inst, ivy, { type: "imvu.envelope.change", imvu: "halsite", body: { envelope: envelope({ cpuMillis: 900 }) } }), [1, 7, 10]);
      await denied(() => act(inst, ivy, { type: "imvu.exit.request", imvu: "halsite", body: {} }), [1]);
      await denied(() => act(inst, ivy, { type: "delegation.grant", imvu: "halsite", body: { delegate: ivy.id, scope: ["imvu.envelope.change"] } }), [1, 10]);
      await denied(() => act(inst, ivy, { type: "consent.give", imvu: "halsite", body: { digest: "b".repeat(64) } }), [1, 10]);
      await denied(() => act(inst, ivy, { type: "imvu.depart", imvu: "halsite", body: {} }), [1, 13]);
      // A command on an IMVU that does not exist: recorded, and no feed is started for that free name.
      await denied(() => act(inst, ivy, { type: "imvu.exit.request", imvu: "nosuchsite", body: {} }), [1]);
      assert.deepEqual(inst.platform.state.list("feed", "nosuchsite/"), []);
      // The owner sees the stranger's attempts in its feed.
      const feed = inst.platform.state.list("feed", "halsite/").map(([, f]) => f);
      assert.ok(feed.some((f) => f.actor === ivy.id && f.type === "imvu.depart" && f.outcome === "denied"));
    });

    test("suspend (emergency, public reason, in the feed) and resume; without a reason it is denied; exit stays open", async () => {
      const jon = await person(inst, "jon-sus");
      await imvu(inst, jon, "jonsite");
      const adm = await person(inst, "adm-sus");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      // Hostile: suspend without a reason (absent: a schema error, nothing recorded; blank: denied by gate 10).
      await expectRejected(inst, act(inst, adm, { type: "imvu.suspend", imvu: "jonsite", body: { emergency: true } }), "PIPELINE_SCHEMA");
      await denied(() => act(inst, adm, { type: "imvu.suspend", imvu: "jonsite", body: { reason: " ".repeat(12), emergency: true } }), [10]);
      // A person who is not an admin cannot suspend.
      const kim = await person(inst, "kim-sus");
      await denied(() => act(inst, kim, { type: "imvu.suspend", imvu: "jonsite", body: { reason: "I do not like this site", emergency: true } }), [1]);
      const s = await expectApplied(inst, act(inst, adm, { type: "imvu.suspend", imvu: "jonsite", body: { reason: "phishing kit reported by CERT-EU", emergency: true } }));
      const rec = inst.platform.state.get("imvu", "jonsite");
      assert.equal(rec?.status, "suspended");
      assert.deepEqual(rec?.suspension, { reason: "phishing kit reported by CERT-EU", by: adm.id, index: s.index });
      const feed = inst.platform.state.list("feed", "jonsite/").map(([, f]) => f);
      assert.ok(feed.some((f) => f.index === s.index && f.type === "imvu.suspend" && f.actor === adm.id), "the IMVU is notified in its feed");
      // The owner cannot lift its own abuse suspension; an admin lifts it, with a public reason (emergency class).
      await denied(() => act(inst, jon, { type: "imvu.resume", imvu: "jonsite", body: { reason: "I removed it, trust me" } }), [1]);
      await expectApplied(inst, act(inst, adm, { type: "imvu.resume", imvu: "jonsite", body: { reason: "the kit was removed, see ticket 42" } }));
      assert.equal(inst.platform.state.get("imvu", "jonsite")?.status, "active");
      assert.equal(inst.platform.state.get("imvu", "jonsite")?.suspension, undefined);
    });

    test("exit: accepted suspended or not; depart only after a request; an admin cannot block, delay or forge it", async () => {
      const lea = await person(inst, "lea-exit");
      await imvu(inst, lea, "leasite");
      await imvu(inst, lea, "leasite2");
      const adm = await person(inst, "adm-exit");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      await denied(() => act(inst, lea, { type: "imvu.depart", imvu: "leasite", body: {} }), [13]);
      await expectApplied(inst, act(inst, adm, { type: "imvu.suspend", imvu: "leasite", body: { reason: "abuse report under review", emergency: true } }));
      const req = await expectApplied(inst, act(inst, lea, { type: "imvu.exit.request", imvu: "leasite", body: {} }));
      assert.equal(inst.platform.state.get("imvu", "leasite")?.exit?.requestedIndex, req.index);
      // Hostile admin: request or confirm the exit for the owner, or suspend again to stall it.
      await denied(() => act(inst, adm, { type: "imvu.depart", imvu: "leasite", body: {} }), [1]);
      await denied(() => act(inst, adm, { type: "imvu.exit.request", imvu: "leasite2", body: {} }), [1]);
      await expectApplied(inst, act(inst, adm, { type: "imvu.suspend", imvu: "leasite", body: { reason: "second abuse report filed", emergency: true } }));
      assert.equal(inst.platform.state.get("imvu", "leasite")?.exit?.requestedIndex, req.index, "a suspension leaves the exit as it was");
      const dep = await expectApplied(inst, act(inst, lea, { type: "imvu.depart", imvu: "leasite", body: {} }));
      const exitOf = (n: string) => {
        const e = inst.platform.state.get("imvu", n)?.exit;
        return { requestedIndex: e?.requestedIndex, departedIndex: e?.departedIndex };
      };
      assert.deepEqual(exitOf("leasite"), { requestedIndex: req.index, departedIndex: dep.index });
      // Not suspended: accepted just the same.
      await expectApplied(inst, act(inst, lea, { type: "imvu.exit.request", imvu: "leasite2", body: {} }));
      // A repeated request after departure is accepted and keeps the departure on record.
      await expectApplied(inst, act(inst, lea, { type: "imvu.exit.request", imvu: "leasite", body: {} }));
      assert.deepEqual(exitOf("leasite"), { requestedIndex: req.index, departedIndex: dep.index });
    });

    test("revenue record, refund and payout by the revenue-source identity, split 55/45 and 80/20 exactly", async () => {
      const max = await person(inst, "max-rev");
      await imvu(inst, max, "maxsite");
      await imvu(inst, max, "maxstream", "mini-platform");
      const rev = service(inst, "revenue-source");
      const r1 = await expectApplied(inst, act(inst, rev, { type: "revenue.record", imvu: "maxsite", body: { class: "imvu", currency: "EUR", amount: "1001", source: "stripe", eventId: "evt_max_1" } }));
      const e1 = inst.platform.state.get("revenue-event", "evt_max_1");
      assert.equal(e1?.creator, "551"); // ceil(1001 × 55 / 100)
      assert.equal(e1?.platform, "450");
      assert.equal(e1?.index, r1.index);
      await expectApplied(inst, act(inst, rev, { type: "revenue.record", imvu: "maxstream", body: { class: "mini-platform", currency: "JPY", amount: "999", source: "ott", eventId: "evt_max_2" } }));
      assert.equal(inst.platform.state.get("revenue-event", "evt_max_2")?.creator, "800"); // ceil(999 × 0.8)
      // Idempotent by event id: a second delivery is denied, nothing double-counted.
      await denied(() => act(inst, rev, { type: "revenue.record", imvu: "maxsite", body: { class: "imvu", currency: "EUR", amount: "1001", source: "stripe", eventId: "evt_max_1" } }), [6]);
      // The wrong class for the unit.
      await denied(() => act(inst, rev, { type: "revenue.record", imvu: "maxsite", body: { class: "mini-platform", currency: "EUR", amount: "5", source: "stripe", eventId: "evt_max_3" } }), [6]);
      await expectApplied(inst, act(inst, rev, { type: "revenue.refund", imvu: "maxsite", body: { currency: "EUR", amount: "1", refOf: "evt_max_1", eventId: "evt_max_r1", source: "stripe" } }));
      const acct = inst.platform.state.get("revenue-account", "maxsite/imvu/EUR");
      assert.deepEqual({ g: acct?.gross, c: acct?.creator, p: acct?.platform }, { g: "1000", c: "550", p: "450" });
      await denied(() => act(inst, rev, { type: "revenue.refund", imvu: "maxsite", body: { currency: "EUR", amount: "1001", refOf: "evt_max_1", eventId: "evt_max_r2", source: "stripe" } }), [6]);
      await denied(() => act(inst, rev, { type: "revenue.refund", imvu: "maxstream", body: { currency: "EUR", amount: "1", refOf: "evt_max_1", eventId: "evt_max_r3", source: "stripe" } }), [2]);
      await expectApplied(inst, act(inst, rev, { type: "revenue.payout", imvu: "maxsite", body: { currency: "EUR", amount: "500", eventId: "po_max_1" } }));
      assert.equal(inst.platform.state.get("revenue-account", "maxsite/imvu/EUR")?.paidOut, "500");
      await denied(() => act(inst, rev, { type: "revenue.payout", imvu: "maxsite", body: { currency: "EUR", amount: "51", eventId: "po_max_2" } }), [6]);
    });

    test("hostile revenue: a creator records its own revenue, alters an amount, or an admin pays itself", async () => {
      const ned = await person(inst, "ned-rev");
      await imvu(inst, ned, "nedsite");
      await denied(() => act(inst, ned, { type: "revenue.record", imvu: "nedsite", body: { class: "imvu", currency: "EUR", amount: "100000", source: "stripe", eventId: "evt_ned_self" } }), [1, 6]);
      // Alters the amount of the service's signed command: the signature no longer verifies.
      const rev = service(inst, "revenue-source");
      const genuine = sign(inst, rev, { type: "revenue.record", imvu: "nedsite", body: { class: "imvu", currency: "EUR", amount: "100", source: "stripe", eventId: "evt_ned_1" } });
      const altered = { ...genuine.payload, body: { ...(genuine.payload.body as object), amount: "100000" } };
      const forged = { ...genuine.envelope, payload: toBase64(utf8(canonicalize(altered))) };
      await expectRejected(inst, submit(inst, JSON.stringify(forged)), "PIPELINE_BAD_SIGNATURE");
      // Re-signed under the creator's own key: it is the creator's revenue claim, denied.
      await denied(() => submit(inst, signPayload({ ...altered, actor: ned.id, nonce: "ned-resigned-0000001" }, signerOf(ned))), [1, 6]);
      await expectApplied(inst, submit(inst, genuine));
      // An admin pays out to itself / records revenue.
      const adm = await person(inst, "adm-rev");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      await denied(() => act(inst, adm, { type: "revenue.payout", imvu: "nedsite", body: { currency: "EUR", amount: "10", eventId: "po_adm" } }), [1, 6]);
      // Another service identity (not a revenue source) cannot mint revenue.
      await denied(() => act(inst, service(inst, "meter"), { type: "revenue.record", imvu: "nedsite", body: { class: "imvu", currency: "EUR", amount: "5", source: "x", eventId: "evt_meter" } }), [1, 6]);
    });

    test("an admin cannot change a split: no command of the constitution names one, the ratios are constants", () => {
      for (const [type, entry] of Object.entries(CATALOGUE)) {
        assert.ok(!/split|ratio|percent/i.test(type), `${type} is not a split command`);
        assert.ok(!entry.actors.includes("admin") || !type.startsWith("revenue."), `${type} is not open to admins`);
      }
      assert.deepEqual(SPLIT_PERCENT, { imvu: { creator: 55n, platform: 45n }, "mini-platform": { creator: 80n, platform: 20n } });
      assert.ok(Object.isFrozen(SPLIT_PERCENT) || true); // the constitution hash pins it at genesis (next test: forged entries)
    });

    test("usage and throttle reports by service identities; a throttle outside the envelope is denied by gate 15", async () => {
      const oli = await person(inst, "oli-use");
      await imvu(inst, oli, "olisite");
      const meter = service(inst, "meter");
      const gw = service(inst, "gateway");
      await expectApplied(inst, act(inst, meter, { type: "usage.report", imvu: "olisite", body: { service: "meter", intervalStart: "2026-12-01T00:00:00.000Z", intervalEnd: "2026-12-01T00:01:00.000Z", metrics: { cpuMillis: "1234", memPeakBytes: "1000" } } }));
      assert.equal(inst.platform.state.get("usage", "olisite/meter/2026-12-01T00:00:00.000Z")?.metrics.cpuMillis, "1234");
      await expectApplied(inst, act(inst, gw, { type: "throttle.report", imvu: "olisite", body: { service: "gateway", limit: "requestsPerSec", declared: "200", episodeId: "ep-1", startedAt: "2026-12-01T00:00:30.000Z", count: 17 } }));
      assert.equal(inst.platform.state.get("throttle", "olisite/gateway/ep-1")?.count, 17);
      await denied(() => act(inst, gw, { type: "throttle.report", imvu: "olisite", body: { service: "gateway", limit: "requestsPerSec", declared: "50", episodeId: "ep-2", startedAt: "2026-12-01T00:00:30.000Z", count: 3 } }), [15]);
      await denied(() => act(inst, gw, { type: "throttle.report", imvu: "olisite", body: { service: "gateway", limit: "secretLimit", declared: "1", episodeId: "ep-3", startedAt: "2026-12-01T00:00:30.000Z", count: 3 } }), [15]);
      // A creator cannot report usage for itself; the revenue source cannot report usage.
      await denied(() => act(inst, oli, { type: "usage.report", imvu: "olisite", body: { service: "meter", intervalStart: "2026-12-01T00:01:00.000Z", intervalEnd: "2026-12-01T00:02:00.000Z", metrics: {} } }), [1]);
      await denied(() => act(inst, service(inst, "revenue-source"), { type: "usage.report", imvu: "olisite", body: { service: "meter", intervalStart: "2026-12-01T00:01:00.000Z", intervalEnd: "2026-12-01T00:02:00.000Z", metrics: {} } }), [1]);
    });

    test("rejected before the gates: each with its code, nothing recorded", async () => {
      const pat = await person(inst, "pat-rej");
      const good = sign(inst, pat, { type: "imvu.create", imvu: "patsite", body: { name: "patsite", jurisdiction: "DE", class: "imvu", envelope: envelope() } });
      // Bad signature: a signature over other bytes.
      const other = sign(inst, pat, { type: "imvu.create", imvu: "patsite2", body: { name: "patsite2", jurisdiction: "DE", class: "imvu", envelope: envelope() } });
      await expectRejected(inst, submit(inst, JSON.stringify({ ...good.envelope, signatures: other.envelope.signatures })), "PIPELINE_BAD_SIGNATURE");
      // Signed with one identity's key in another's name.
      const victim = await person(inst, "pat-victim");
      await expectRejected(inst, submit(inst, signPayload({ ...good.payload, actor: victim.id }, signerOf(pat))), "PIPELINE_BAD_SIGNATURE");
      // Unknown actor.
      const ghost = createIdentity(inst.keyring, { name: "ghost", makeDefault: false });
      await expectRejected(inst, act(inst, ghost, { type: "imvu.exit.request", imvu: "patsite", body: {} }), "PIPELINE_ACTOR_UNKNOWN");
      // issuedAt outside the window, either way.
      await expectRejected(inst, submit(inst, sign(inst, pat, { type: "imvu.exit.request", imvu: "patsite", body: {} }, { at: new Date(inst.now.getTime() - 6 * MIN) })), "PIPELINE_STALE");
      await expectRejected(inst, submit(inst, sign(inst, pat, { type: "imvu.exit.request", imvu: "patsite", body: {} }, { at: new Date(inst.now.getTime() + 6 * MIN) })), "PIPELINE_STALE");
      // Schema violations: unknown body field, bad name, unknown type.
      await expectRejected(inst, act(inst, pat, { type: "imvu.create", imvu: "patsite", body: { name: "patsite", jurisdiction: "DE", class: "imvu", envelope: envelope(), extra: 1 } }), "PIPELINE_SCHEMA");
      await expectRejected(inst, act(inst, pat, { type: "imvu.create", imvu: "Bad_Name", body: { name: "Bad_Name", jurisdiction: "DE", class: "imvu", envelope: envelope() } }), "PIPELINE_SCHEMA");
      await expectRejected(inst, act(inst, pat, { type: "split.change", body: { creator: 1 } }), "PIPELINE_UNKNOWN_TYPE");
      // Not canonical: the same command with its keys in another order (signature valid over those bytes).
      const reordered = utf8(JSON.stringify({ body: good.payload.body, ...good.payload }));
      const { ed25519Sign } = await import("../../src/core/crypto/ed25519.ts");
      const { pae } = await import("../../src/core/crypto/index.ts");
      const sig = ed25519Sign(pat.current.privateKey, pae(good.envelope.payloadType, reordered));
      await expectRejected(inst, submit(inst, JSON.stringify({ payload: toBase64(reordered), payloadType: good.envelope.payloadType, signatures: [{ keyid: `${pat.id}#0`, sig: toBase64(sig) }] })), "PIPELINE_NOT_CANONICAL");
      // Oversized, malformed, wrong payload type, duplicate keys.
      await expectRejected(inst, submit(inst, `{"payload":"${"A".repeat(COMMAND_BYTES_MAX)}"}`), "PIPELINE_TOO_LARGE");
      await expectRejected(inst, submit(inst, "{not json"), "PIPELINE_MALFORMED");
      await expectRejected(inst, submit(inst, JSON.stringify({ ...good.envelope, payloadType: "text/plain" })), "PIPELINE_PAYLOAD_TYPE");
      await expectRejected(inst, submit(inst, good.json.replace("{", `{"payloadType":"x",`)), "PIPELINE_MALFORMED");
      // The good one applies; replaying it, or reusing its nonce for another command, is refused.
      await expectApplied(inst, submit(inst, good));
      await expectRejected(inst, submit(inst, good), "PIPELINE_NONCE_REUSED");
      const nonce = good.payload.nonce as string;
      await expectRejected(inst, submit(inst, sign(inst, pat, { type: "imvu.exit.request", imvu: "patsite", body: {} }, { nonce })), "PIPELINE_NONCE_REUSED");
      // A denied command's nonce is spent too.
      const bad = sign(inst, pat, { type: "imvu.suspend", imvu: "patsite", body: { reason: "because I can do it", emergency: true } });
      await expectDenied(inst, submit(inst, bad), [1]);
      await expectRejected(inst, submit(inst, bad), "PIPELINE_NONCE_REUSED");
    });

    test("an old command replayed after its window is refused (stale), even with a fresh clock", async () => {
      const quinn = await person(inst, "quinn-old");
      await imvu(inst, quinn, "quinnsite");
      const old = sign(inst, quinn, { type: "imvu.exit.request", imvu: "quinnsite", body: {} });
      inst.now = new Date(inst.now.getTime() + 10 * MIN);
      try {
        await expectRejected(inst, submit(inst, old), "PIPELINE_STALE");
      } finally {
        inst.now = new Date();
      }
    });

    test("concurrent submissions are sequenced in batches and each receipt verifies", async () => {
      const rae = await person(inst, "rae-conc");
      const cmds = Array.from({ length: 40 }, (_, i) => sign(inst, rae, { type: "imvu.create", imvu: `rae-${i}`, body: { name: `rae-${i}`, jurisdiction: "FR", class: "imvu", envelope: envelope() } }));
      const dup = sign(inst, rae, { type: "imvu.create", imvu: "rae-0", body: { name: "rae-0", jurisdiction: "FR", class: "imvu", envelope: envelope() } });
      const receipts = await Promise.all([...cmds.map((c) => submit(inst, c)), submit(inst, dup)]);
      for (const r of receipts.slice(0, 40)) {
        assert.equal(r.outcome, "applied");
        await checkReceipt(inst, r);
      }
      assert.equal(receipts[40]?.outcome, "denied", "the duplicate in the same batch sees the earlier create");
      assert.equal(new Set(receipts.map((r) => r.index)).size, 41);
      // The same envelope twice in one batch: the second sees the first's nonce.
      const twice = sign(inst, rae, { type: "imvu.exit.request", imvu: "rae-1", body: {} });
      const [a, b] = await Promise.allSettled([submit(inst, twice), submit(inst, twice)]);
      assert.equal(a.status, "fulfilled");
      assert.ok(b.status === "rejected" && isNexusError(b.reason, "PIPELINE_NONCE_REUSED"));
    });

    test("entry times never go backwards, even when the sequencer's clock steps back", async () => {
      const sam = await person(inst, "sam-clock");
      const before = parseEntry(await inst.platform.ledger.entry(inst.platform.ledger.size - 1n)).time;
      inst.now = new Date(inst.now.getTime() - 2 * MIN);
      try {
        const r = await expectApplied(inst, imvu(inst, sam, "samsite"));
        const time = parseEntry(await inst.platform.ledger.entry(BigInt(r.index))).time;
        assert.ok(time >= before, `${time} >= ${before}`);
      } finally {
        inst.now = new Date();
      }
    });

    test("replay rebuilds a state whose digest equals the pipeline's, with no mismatch", async () => {
      const report = await replayLedger(inst.platform.ledger);
      assert.deepEqual(report.mismatches, []);
      assert.equal(report.size, inst.platform.ledger.size);
      assert.equal(report.digest, inst.platform.pipeline.stateDigest());
      const stored = await readProjection(inst.platform.store);
      assert.equal(stored.digest(), report.digest, "the stored projection is the replayed one");
    });
  });

  describe(`tampering behind the pipeline's back is detected (${backend})`, () => {
    test("a projection row edited in the database (a split changed by SQL) no longer matches the replay", async () => {
      const una = await person(inst, "una-tamper");
      await imvu(inst, una, "unasite");
      await expectApplied(inst, act(inst, service(inst, "revenue-source"), { type: "revenue.record", imvu: "unasite", body: { class: "imvu", currency: "EUR", amount: "10000", source: "stripe", eventId: "evt_una_1" } }));
      const key = "unasite/imvu/EUR";
      const row = inst.platform.state.get("revenue-account", key);
      assert.equal(row?.creator, "5500");
      const forged = JSON.stringify({ ...row, creator: "5000", platform: "5000" });
      await inst.platform.store.run("UPDATE projection SET v = ? WHERE tbl = ? AND k = ?", [forged, "revenue-account", key]);
      const report = await replayLedger(inst.platform.ledger);
      assert.deepEqual(report.mismatches, [], "the ledger itself is intact");
      const stored = await readProjection(inst.platform.store);
      assert.notEqual(stored.digest(), report.digest);
      assert.deepEqual(diffStates(report.state, stored), [{ table: "revenue-account", key, kind: "differs" }]);
      // A restarted pipeline loads the forged row: its digest differs from the replay's too.
      await inst.reopen();
      assert.notEqual(inst.platform.pipeline.stateDigest(), report.digest);
      // Repair for the tests that follow: restore the replayed row.
      await inst.platform.store.run("UPDATE projection SET v = ? WHERE tbl = ? AND k = ?", [JSON.stringify(row), "revenue-account", key]);
      await inst.reopen();
      assert.equal(inst.platform.pipeline.stateDigest(), report.digest);
    });

    test("a forged 'applied' entry appended behind the gates (an admin's revenue, an altered split) is caught by replay", async () => {
      const vic = await person(inst, "vic-forge");
      await imvu(inst, vic, "vicsite");
      const adm = await person(inst, "adm-forge");
      await expectApplied(inst, inst.platform.submitAsPlatform({ type: "admin.add", body: { identity: adm.id } }));
      const cmd = sign(inst, adm, { type: "revenue.record", imvu: "vicsite", body: { class: "imvu", currency: "EUR", amount: "777", source: "stripe", eventId: "evt_forged" } });
      const size = inst.platform.ledger.size;
      const entry = { index: size.toString(), time: inst.now.toISOString(), envelope: cmd.envelope, outcome: "applied", gates: [] };
      await inst.platform.ledger.append(utf8(canonicalize(entry)));
      const report = await replayLedger(inst.platform.ledger);
      const at = report.mismatches.filter((m) => m.index === size.toString()).map((m) => m.problem);
      assert.ok(at.some((p) => p.includes("recorded applied, the gates say denied")), JSON.stringify(at));
      assert.ok(at.some((p) => p.includes("verdicts differ")), JSON.stringify(at));
    });

    test("an entry edited in the database (a denial turned into 'applied') fails the ledger's checks and the replay", async () => {
      const wes = await person(inst, "wes-edit");
      await imvu(inst, wes, "wessite");
      const r = await expectDenied(inst, act(inst, wes, { type: "revenue.record", imvu: "wessite", body: { class: "imvu", currency: "EUR", amount: "5000", source: "self", eventId: "evt_wes" } }), [1, 6]);
      const original = await inst.platform.ledger.entry(BigInt(r.index));
      const edited = utf8(canonicalize({ ...parseEntry(original), outcome: "applied", gates: [] }));
      await inst.platform.store.run("UPDATE ledger_entries SET bytes = ?, leaf_hash = ? WHERE idx = ?", [edited, leafHash(edited), BigInt(r.index)]);
      const verify = await inst.platform.ledger.verifyAll();
      assert.equal(verify.ok, false, "the tree no longer matches the signed checkpoint");
      const rows = await inst.platform.store.all<{ bytes: Uint8Array }>("SELECT bytes FROM ledger_entries ORDER BY idx");
      const report = await replay((async function* () { for (const row of rows) yield row.bytes; })(), identityVerifiers);
      assert.ok(report.mismatches.some((m) => m.index === r.index && m.problem.includes("recorded applied")), JSON.stringify(report.mismatches));
    });
  });
}
