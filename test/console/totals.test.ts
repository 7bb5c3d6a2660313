/**
 * GET /v1/platform/totals' counting (src/api/routes/console.ts): entry outcomes counted from the
 * ledger itself, each entry once, at most `step` entries a request, never twice under concurrent
 * requests; the projection's aggregates (IMVUs by status and class, revenue per currency and
 * class with the creators' and the platform's parts) from a real platform's projection.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OutcomeTally, projectionTotals } from "../../src/api/routes/console.ts";
import { createIdentity } from "../../src/core/identity/index.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { signerOf } from "../../src/platform/platform.ts";
import { Platform } from "../../src/platform/platform.ts";

let home: string;
let platform: Platform;

before(async () => {
  home = mkdtempSync(join(tmpdir(), "nexus-console-totals-"));
  platform = await Platform.open({ home });
});
after(async () => {
  await platform.close();
  rmSync(home, { recursive: true, force: true });
});

/** Outcomes counted here, entry by entry, for comparison. */
async function countDirectly(): Promise<{ applied: number; denied: number }> {
  let applied = 0;
  let denied = 0;
  for (let i = 0n; i < platform.ledger.size; ) {
    const rows = await platform.ledger.entries(i, 1000);
    for (const r of rows) {
      const o = (JSON.parse(Buffer.from(r.bytes).toString()) as { outcome?: string }).outcome;
      if (o === "applied") applied++;
      if (o === "denied") denied++;
    }
    i += BigInt(rows.length);
  }
  return { applied, denied };
}

test("entry outcomes: counted forward at most `step` a request, each entry once even under concurrent requests", async () => {
  // A denied command: an admin-only command by a service identity.
  const d = await platform.submitAsService("meter", { type: "admin.add", body: { identity: "nx1" + "a".repeat(52) } });
  assert.equal(d.outcome, "denied");
  const size = Number(platform.ledger.size);
  assert.ok(size > 6, `a few entries (${size})`);
  const tally = new OutcomeTally(platform.ledger, 3);
  const first = await tally.advance();
  assert.equal(first.counted, "3", "no more than the step at once");
  const all = await Promise.all(Array.from({ length: 10 }, () => tally.advance()));
  const done = all[all.length - 1];
  assert.ok(done);
  assert.equal(done.counted, String(size));
  const direct = await countDirectly();
  assert.equal(done.applied, String(direct.applied));
  assert.equal(done.denied, String(direct.denied));
  assert.ok(direct.denied >= 1);
  assert.equal(BigInt(done.applied) + BigInt(done.denied) + BigInt(done.other), BigInt(size), "every entry counted exactly once");
  // New entries are counted on the next request, the old ones not again.
  await platform.submitAsService("meter", { type: "admin.add", body: { identity: "nx1" + "b".repeat(52) } });
  const next = await tally.advance();
  assert.equal(next.counted, String(size + 1));
  assert.equal(next.denied, String(direct.denied + 1));
});

test("projection aggregates: IMVUs by status and class, revenue per currency and class with both parts, nothing per IMVU", async () => {
  const empty = projectionTotals(platform.state);
  assert.equal(empty.imvus.total, 0);
  assert.deepEqual(empty.revenue, {});
  const owner = createIdentity(join(home, "creators"), { name: "owner" });
  const act = async (draft: CommandDraft): Promise<void> => {
    const r = await platform.pipeline.submit(signCommand(draft, signerOf(owner)).json);
    assert.equal(r.outcome, "applied", `${draft.type}: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
  };
  await act({ type: "identity.inception", body: { inception: owner.kel[0] } });
  const envelope = envelopeToWire(ENVELOPE_PROFILES.small);
  await act({ type: "imvu.create", imvu: "alpha", body: { name: "alpha", jurisdiction: "DE", class: "imvu", envelope } });
  await act({ type: "imvu.create", imvu: "beta", body: { name: "beta", jurisdiction: "FR", class: "mini-platform", envelope } });
  await act({ type: "imvu.exit.request", imvu: "beta", body: {} });
  const revenue = async (imvu: string, cls: string, currency: string, amount: string, eventId: string): Promise<void> => {
    const r = await platform.submitAsService("revenue-source", { type: "revenue.record", imvu, body: { class: cls, currency, amount, source: "checkout", eventId } });
    assert.equal(r.outcome, "applied", JSON.stringify(r.gates.filter((g) => !g.pass)));
  };
  await revenue("alpha", "imvu", "EUR", "1001", "evt_a1");
  await revenue("beta", "mini-platform", "EUR", "1000", "evt_b1");
  await revenue("beta", "mini-platform", "USD", "50", "evt_b2");
  const t = projectionTotals(platform.state);
  assert.deepEqual(t.imvus, { total: 2, byStatus: { active: 2, suspended: 0 }, byClass: { imvu: 1, "mini-platform": 1 }, exitRequested: 1, departed: 0 });
  assert.equal(t.identities.byKind["person"], 1);
  assert.equal(t.resources.domains, platform.state.list("domain").length);
  // EUR: alpha 1001 at 55 % -> creator ceil(550.55) = 551, platform 450; beta 1000 at 80 % -> 800 and 200.
  assert.deepEqual(t.revenue, {
    EUR: {
      gross: "2001", creator: "1351", platform: "650", paidOut: "0",
      byClass: { imvu: { gross: "1001", creator: "551", platform: "450", paidOut: "0" }, "mini-platform": { gross: "1000", creator: "800", platform: "200", paidOut: "0" } },
    },
    USD: { gross: "50", creator: "40", platform: "10", paidOut: "0", byClass: { "mini-platform": { gross: "50", creator: "40", platform: "10", paidOut: "0" } } },
  });
  assert.doesNotMatch(JSON.stringify(t), /alpha|beta|nx1/, "aggregates only");
});
