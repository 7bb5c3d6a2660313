/** Authenticated reads over real HTTP (port 0): RFC 9421 signatures, gate 16 filtering, statements with proofs; public reads. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { TokenAuthority } from "../../src/api/auth.ts";
import { commandRoutes } from "../../src/api/routes/commands.ts";
import { imvuRoutes } from "../../src/api/routes/imvus.ts";
import { fromBase64, fromHex } from "../../src/core/crypto/bytes.ts";
import { signRequest } from "../../src/core/crypto/httpsig.ts";
import { parseStatementJson, recomputeStatement } from "../../src/core/handshake/index.ts";
import { verifyProvenStatement } from "../../src/core/handshake/proven-statement.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import { leafHash, verifyInclusion } from "../../src/core/ledger/merkle.ts";
import { openNote, parseCheckpoint } from "../../src/core/ledger/note.ts";
import { constitutionHash } from "../../src/core/policy/constitution.ts";
import { act, expectApplied, imvu, install, person, service, type Installation } from "../pipeline/support.ts";

let inst: Installation;
let app: FastifyInstance;
let base: string;
let owner: LocalIdentity;
let delegate: LocalIdentity;
let stranger: LocalIdentity;

before(async () => {
  inst = await install("sqlite");
  const tokens = new TokenAuthority();
  const { pipeline, ledger, verifierKey } = inst.platform;
  app = await buildApi({ ledger, modules: [commandRoutes({ pipeline, tokens }), imvuRoutes({ pipeline, ledger, verifierKey, tokens })] });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  owner = await person(inst, "olga-read");
  delegate = await person(inst, "dora-read");
  stranger = await person(inst, "sven-read");
  await imvu(inst, owner, "olgasite");
  await imvu(inst, stranger, "svensite");
  await expectApplied(inst, act(inst, owner, { type: "delegation.grant", imvu: "olgasite", body: { delegate: delegate.id, scope: ["imvu.envelope.change"] } }));
  const rev = service(inst, "revenue-source");
  for (const [i, [cur, amount]] of [["EUR", "1001"], ["JPY", "333"], ["KWD", "12345"], ["EUR", "77"]].entries()) {
    await expectApplied(inst, act(inst, rev, { type: "revenue.record", imvu: "olgasite", body: { class: "imvu", currency: cur, amount, source: i % 2 ? "stripe" : "paypal", eventId: `evt_olga_${i}` } }));
  }
  await expectApplied(inst, act(inst, rev, { type: "revenue.refund", imvu: "olgasite", body: { currency: "EUR", amount: "1", refOf: "evt_olga_0", eventId: "evt_olga_r", source: "paypal" } }));
  await expectApplied(inst, act(inst, rev, { type: "revenue.payout", imvu: "olgasite", body: { currency: "EUR", amount: "500", eventId: "po_olga" } }));
  await act(inst, stranger, { type: "imvu.exit.request", imvu: "olgasite", body: {} }); // denied, in olga's feed
});
after(async () => {
  await app.close();
  await inst.cleanup();
});

async function signedGet(id: LocalIdentity, path: string, opts: { created?: number } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = `${base}${path}`;
  const headers: Record<string, string> = { accept: "application/json" };
  const sig = signRequest(
    { method: "GET", url, headers },
    { components: ["@method", "@target-uri"], params: { created: opts.created ?? Math.floor(Date.now() / 1000), keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey },
  );
  const res = await fetch(url, { headers: { ...headers, "signature-input": sig.signatureInput, signature: sig.signature } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const code = (json: Record<string, unknown>): unknown => (json.error as { code?: unknown } | undefined)?.code;

test("unsigned, badly signed, stale or wrongly signed reads → 401", async () => {
  const r = await fetch(`${base}/v1/imvus`);
  assert.equal(r.status, 401);
  assert.equal(code((await r.json()) as Record<string, unknown>), "API_UNAUTHENTICATED");
  const stale = await signedGet(owner, "/v1/imvus", { created: Math.floor(Date.now() / 1000) - 3600 });
  assert.equal(stale.status, 401);
  // A signature for one URL replayed on another.
  const url = `${base}/v1/imvus`;
  const sig = signRequest({ method: "GET", url, headers: {} }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: owner.id, alg: "ed25519" }, privateKey: owner.current.privateKey });
  const moved = await fetch(`${base}/v1/imvus/olgasite`, { headers: { "signature-input": sig.signatureInput, signature: sig.signature } });
  assert.equal(moved.status, 401);
  // Signed by another key under the owner's keyid.
  const forged = signRequest({ method: "GET", url, headers: {} }, { components: ["@method", "@target-uri"], params: { created: Math.floor(Date.now() / 1000), keyid: owner.id, alg: "ed25519" }, privateKey: stranger.current.privateKey });
  assert.equal((await fetch(url, { headers: { "signature-input": forged.signatureInput, signature: forged.signature } })).status, 401);
});

test("GET /v1/imvus lists only the caller's IMVUs: owned and delegated", async () => {
  const mine = await signedGet(owner, "/v1/imvus");
  assert.equal(mine.status, 200);
  assert.deepEqual((mine.json.imvus as { name: string; role: string }[]).map((i) => [i.name, i.role]), [["olgasite", "owner"]]);
  const del = await signedGet(delegate, "/v1/imvus");
  assert.deepEqual((del.json.imvus as { name: string; role: string; scope: string[] }[]).map((i) => [i.name, i.role, i.scope]), [["olgasite", "delegate", ["imvu.envelope.change"]]]);
  const his = await signedGet(stranger, "/v1/imvus");
  assert.deepEqual((his.json.imvus as { name: string }[]).map((i) => i.name), ["svensite"]);
});

test("another's IMVU answers 404 exactly like a name that does not exist (gate 16)", async () => {
  const theirs = await signedGet(stranger, "/v1/imvus/olgasite");
  const none = await signedGet(stranger, "/v1/imvus/nosuchsite");
  assert.equal(theirs.status, 404);
  assert.equal(none.status, 404);
  assert.equal(code(theirs.json), "NOT_FOUND");
  assert.equal((theirs.json.error as { message: string }).message.replace("olgasite", "X"), (none.json.error as { message: string }).message.replace("nosuchsite", "X"));
  for (const sub of ["/feed", "/revenue/statement?from=2026-01-01&to=2026-12-31"]) {
    assert.equal((await signedGet(stranger, `/v1/imvus/olgasite${sub}`)).status, 404, sub);
  }
  const ok = await signedGet(owner, "/v1/imvus/olgasite");
  assert.equal(ok.status, 200);
  assert.equal(ok.json.owner, owner.id);
  assert.equal((await signedGet(delegate, "/v1/imvus/olgasite")).status, 200);
  assert.equal((await signedGet(owner, "/v1/imvus/Bad_Name")).status, 400);
});

test("the feed lists every command on the IMVU, the stranger's denied attempt included", async () => {
  const r = await signedGet(owner, "/v1/imvus/olgasite/feed");
  assert.equal(r.status, 200);
  const feed = r.json.feed as { index: string; type: string; actor: string; outcome: string }[];
  assert.ok(feed.some((f) => f.type === "imvu.create" && f.outcome === "applied"));
  assert.ok(feed.some((f) => f.type === "imvu.exit.request" && f.actor === stranger.id && f.outcome === "denied"));
  const page = await signedGet(owner, "/v1/imvus/olgasite/feed?limit=2");
  assert.equal((page.json.feed as unknown[]).length, 2);
  assert.equal(typeof page.json.next, "string");
  const rest = await signedGet(owner, `/v1/imvus/olgasite/feed?from=${String(page.json.next)}`);
  assert.equal((rest.json.feed as unknown[]).length, feed.length - 2);
  assert.equal((await signedGet(owner, "/v1/imvus/olgasite/feed?limit=0")).status, 400);
});

test("the revenue statement recomputes offline and each entry's proof leads to the signed checkpoint", async () => {
  const today = new Date().toISOString().slice(0, 10);
  const r = await signedGet(delegate, `/v1/imvus/olgasite/revenue/statement?from=${today}&to=${today}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const st = parseStatementJson(JSON.parse(JSON.stringify(r.json.statement)));
  const check = recomputeStatement(st);
  assert.ok(check.ok, JSON.stringify(check.issues));
  assert.equal(st.entries.length, 6);
  const eur = st.totals.find((t) => t.currency === "EUR");
  assert.deepEqual([eur?.gross, eur?.refunds, eur?.payouts], [1078n, 1n, 500n]);
  const acct = inst.platform.state.get("revenue-account", "olgasite/imvu/EUR");
  assert.equal(BigInt(acct?.creator ?? -1), (eur?.openingBalance ?? 0n) + (eur?.creator ?? 0n));
  assert.equal(eur?.closingBalance, BigInt(acct?.creator ?? 0) - BigInt(acct?.paidOut ?? 0));
  const cp = parseCheckpoint(openNote(String(r.json.checkpoint), [inst.platform.verifierKey]).text);
  assert.equal(cp.size.toString(), r.json.treeSize);
  const proofs = r.json.proofs as { index: string; leafHash: string; entry: string; inclusionProof: string[] }[];
  assert.deepEqual(proofs.map((p) => p.index), st.entries.map((e) => e.index.toString()));
  for (const p of proofs) {
    const leaf = leafHash(fromBase64(p.entry) ?? new Uint8Array());
    assert.deepEqual(leaf, fromHex(p.leafHash));
    assert.ok(verifyInclusion(leaf, BigInt(p.index), cp.size, p.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array()), cp.root), `entry ${p.index}`);
  }
  // The CLI's offline verifier (`revenue verify-statement`) accepts the answer as it is.
  const proven = verifyProvenStatement(r.json, inst.platform.verifierKey);
  assert.ok(proven.ok, proven.problems.join("; "));
  assert.equal(proven.entries, 6);
  // A period before anything happened: no entries, still valid.
  const empty = await signedGet(owner, "/v1/imvus/olgasite/revenue/statement?from=2020-01-01&to=2020-01-31");
  assert.equal(empty.status, 200);
  assert.equal((empty.json.statement as { entries: unknown[] }).entries.length, 0);
  for (const q of ["from=2026-13-01&to=2026-12-01", "from=2026-02-30&to=2026-03-01", "from=2026-05-01&to=2026-04-01", "from=2026-01-01"]) {
    assert.equal((await signedGet(owner, `/v1/imvus/olgasite/revenue/statement?${q}`)).status, 400, q);
  }
});

test("public reads: an identity's key state, 404 for an unknown one; the platform's genesis facts and verifier key", async () => {
  const r = await fetch(`${base}/v1/identities/${owner.id}`);
  assert.equal(r.status, 200);
  const id = (await r.json()) as { publicKey: string; seq: number; admin: boolean };
  assert.deepEqual([id.publicKey, id.seq, id.admin], [owner.state.publicKey, 0, false]);
  assert.equal((await fetch(`${base}/v1/identities/nx1${"q".repeat(52)}`)).status, 404);
  assert.equal((await fetch(`${base}/v1/identities/nope`)).status, 400);
  const p = (await (await fetch(`${base}/v1/platform`)).json()) as { verifierKey: string; constitution: { version: number; hash: string }; baseDomain: string };
  assert.equal(p.verifierKey, inst.platform.verifierKey);
  assert.deepEqual(p.constitution.version, 1);
  assert.equal(p.constitution.hash, constitutionHash());
  assert.equal(p.baseDomain, "nexus.test");
});
