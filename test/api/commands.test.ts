/** POST /v1/commands and the token exchange over real HTTP (port 0), hostile inputs included. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { TokenAuthority, CHALLENGE_PREFIX } from "../../src/api/auth.ts";
import { commandRoutes, RateLimiter } from "../../src/api/routes/commands.ts";
import { imvuRoutes } from "../../src/api/routes/imvus.ts";
import { toBase64, utf8 } from "../../src/core/crypto/bytes.ts";
import { ed25519Sign } from "../../src/core/crypto/ed25519.ts";
import { COMMAND_BYTES_MAX } from "../../src/core/pipeline/authenticate.ts";
import { checkReceipt, envelope, install, person, sign, type Installation } from "../pipeline/support.ts";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import type { Receipt } from "../../src/core/pipeline/pipeline.ts";

let inst: Installation;
let app: FastifyInstance;
let base: string;
let zoe: LocalIdentity;
let rateClockMs = 0;
const RATE = { perSec: 1, burst: 5 };

before(async () => {
  inst = await install("sqlite");
  const tokens = new TokenAuthority();
  const { pipeline, ledger, verifierKey } = inst.platform;
  app = await buildApi({
    ledger,
    modules: [commandRoutes({ pipeline, tokens, rate: RATE, clock: () => rateClockMs }), imvuRoutes({ pipeline, ledger, verifierKey, tokens })],
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  zoe = await person(inst, "zoe-api");
});
after(async () => {
  await app.close();
  await inst.cleanup();
});

async function post(body: string, contentType = "application/json"): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}/v1/commands`, { method: "POST", headers: { "content-type": contentType }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

const code = (json: Record<string, unknown>): unknown => (json.error as { code?: unknown } | undefined)?.code;
const createDraft = (name: string) => ({ type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: "imvu", envelope: envelope() } });

test("applied → 201 with a receipt that verifies against the signed checkpoint", async () => {
  rateClockMs += 60_000;
  const r = await post(sign(inst, zoe, createDraft("zoesite")).json);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const receipt = r.json.receipt as Receipt;
  assert.equal(receipt.outcome, "applied");
  await checkReceipt(inst, receipt);
});

test("denied → 403 GATE_DENIED listing the failing gates, with the receipt of the recorded entry", async () => {
  rateClockMs += 60_000;
  const size = inst.platform.ledger.size;
  const r = await post(sign(inst, zoe, { type: "admin.add", body: { identity: zoe.id } }).json);
  assert.equal(r.status, 403);
  assert.equal(code(r.json), "GATE_DENIED");
  const details = (r.json.error as { details: { gates: { gate: number }[] } }).details;
  assert.deepEqual(details.gates.map((g) => g.gate), [1]);
  const receipt = r.json.receipt as Receipt;
  assert.equal(receipt.outcome, "denied");
  assert.equal(inst.platform.ledger.size, size + 1n, "a denial is recorded");
  await checkReceipt(inst, receipt);
});

test("a replayed command → 409 PIPELINE_NONCE_REUSED; nothing recorded", async () => {
  rateClockMs += 60_000;
  const cmd = sign(inst, zoe, createDraft("zoesite2"));
  assert.equal((await post(cmd.json)).status, 201);
  const size = inst.platform.ledger.size;
  const again = await post(cmd.json);
  assert.equal(again.status, 409);
  assert.equal(code(again.json), "PIPELINE_NONCE_REUSED");
  assert.equal(inst.platform.ledger.size, size);
});

test("hostile bodies: malformed JSON 400, wrong content type 415, oversized 413, empty 400, bad signature 401, stale 400", async () => {
  rateClockMs += 60_000;
  const size = inst.platform.ledger.size;
  const malformed = await post("{not json");
  assert.equal(malformed.status, 400);
  assert.equal(code(malformed.json), "PIPELINE_MALFORMED");
  const dup = await post('{"payload":"a","payload":"b","payloadType":"x","signatures":[]}');
  assert.equal(code(dup.json), "PIPELINE_MALFORMED");
  const wrongType = await post(sign(inst, zoe, createDraft("zoe-ct")).json, "text/plain");
  assert.equal(wrongType.status, 415);
  assert.equal(code(wrongType.json), "API_MEDIA_TYPE");
  const big = await post(JSON.stringify({ payload: "A".repeat(COMMAND_BYTES_MAX), payloadType: "x", signatures: [] }));
  assert.equal(big.status, 413);
  assert.equal(code(big.json), "PIPELINE_TOO_LARGE");
  const empty = await fetch(`${base}/v1/commands`, { method: "POST" });
  assert.equal(empty.status, 400);
  const good = sign(inst, zoe, createDraft("zoe-sig"));
  const forged = { ...good.envelope, signatures: [{ keyid: `${zoe.id}#0`, sig: toBase64(new Uint8Array(64)) }] };
  const bad = await post(JSON.stringify(forged));
  assert.equal(bad.status, 401);
  assert.equal(code(bad.json), "PIPELINE_BAD_SIGNATURE");
  const stale = await post(sign(inst, zoe, createDraft("zoe-old"), { at: new Date(Date.now() - 3_600_000) }).json);
  assert.equal(stale.status, 400);
  assert.equal(code(stale.json), "PIPELINE_STALE");
  assert.equal(inst.platform.ledger.size, size, "no rejection is recorded");
});

test("rate limit: beyond the burst of one identity → 429 with Retry-After; others unaffected; forged requests do not spend it", async () => {
  rateClockMs += 60_000;
  // Requests in the identity's name that fail its signature check do not drain its bucket.
  const good = sign(inst, zoe, createDraft("zoe-rl-x"));
  const forged = JSON.stringify({ ...good.envelope, signatures: [{ keyid: `${zoe.id}#0`, sig: toBase64(new Uint8Array(64)) }] });
  for (let i = 0; i < 10; i++) assert.equal((await post(forged)).status, 401);
  const statuses: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < RATE.burst + 2; i++) {
    const r = await post(sign(inst, zoe, createDraft(`zoe-rl-${i}`)).json);
    statuses.push(r.status);
    if (r.status === 429) {
      assert.equal(code(r.json), "API_RATE_LIMITED");
      retryAfter = r.headers.get("retry-after");
    }
  }
  assert.deepEqual(statuses, [...Array<number>(RATE.burst).fill(201), 429, 429]);
  assert.ok(retryAfter !== null && Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
  const yan = await person(inst, "yan-api");
  assert.equal((await post(sign(inst, yan, createDraft("yansite")).json)).status, 201, "another identity has its own bucket");
  rateClockMs += 1000 * Number(retryAfter);
  assert.equal((await post(sign(inst, zoe, createDraft("zoe-rl-late")).json)).status, 201, "the bucket refills");
});

test("a flood of forged commands from one address is limited too (429), and spends no identity's bucket", async () => {
  const { pipeline, ledger, verifierKey } = inst.platform;
  let now = 0;
  const strict = await buildApi({ ledger, modules: [commandRoutes({ pipeline, unauthenticatedRate: { perSec: 1, burst: 3 }, clock: () => now }), imvuRoutes({ pipeline, ledger, verifierKey })] });
  try {
    const good = sign(inst, zoe, createDraft("zoe-flood"));
    const forged = JSON.stringify({ ...good.envelope, signatures: [{ keyid: `${zoe.id}#0`, sig: toBase64(new Uint8Array(64)) }] });
    const send = async (body: string) => strict.inject({ method: "POST", url: "/v1/commands", headers: { "content-type": "application/json" }, payload: body });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(forged)).statusCode);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const limited = await send(good.json);
    assert.equal(limited.statusCode, 429);
    assert.ok(Number(limited.headers["retry-after"]) >= 1);
    now += 5000;
    assert.equal((await send(good.json)).statusCode, 201, "after the wait the same address is served, and the identity was never charged");
  } finally {
    await strict.close();
  }
});

test("the token bucket refills at its rate and never above its burst", () => {
  let now = 0;
  const rl = new RateLimiter({ perSec: 2, burst: 3, clock: () => now });
  assert.deepEqual([rl.take("a"), rl.take("a"), rl.take("a")], [0, 0, 0]);
  assert.equal(rl.take("a"), 1);
  now += 500;
  assert.equal(rl.take("a"), 0);
  now += 100_000;
  assert.deepEqual([rl.take("a"), rl.take("a"), rl.take("a"), rl.take("a") > 0], [0, 0, 0, true]);
});

test("token exchange: a signed challenge gives a bearer token; a wrong signature or altered challenge gives 401", async () => {
  const { challenge, prefix } = (await (await fetch(`${base}/v1/auth/challenge`)).json()) as { challenge: string; prefix: string };
  assert.equal(prefix, CHALLENGE_PREFIX);
  const sig = toBase64(ed25519Sign(zoe.current.privateKey, utf8(prefix + challenge)));
  const ask = (body: unknown) => fetch(`${base}/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const ok = await ask({ identity: zoe.id, challenge, signature: sig });
  assert.equal(ok.status, 200);
  const { token } = (await ok.json()) as { token: string };
  const list = await fetch(`${base}/v1/imvus`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(list.status, 200);
  assert.ok(((await list.json()) as { imvus: { name: string }[] }).imvus.some((i) => i.name === "zoesite"));
  const yan = inst.platform.state.list("identity").find(([, r]) => r.name === "yan-api")?.[0] ?? "";
  const wrong = await ask({ identity: yan, challenge, signature: sig });
  assert.equal(wrong.status, 401);
  assert.equal(code((await wrong.json()) as Record<string, unknown>), "API_CHALLENGE_INVALID");
  const altered = await ask({ identity: zoe.id, challenge: challenge.replace(/^\d/, "9"), signature: sig });
  assert.equal(altered.status, 401);
  assert.equal((await ask({ identity: zoe.id })).status, 400);
  assert.equal((await fetch(`${base}/v1/imvus`, { headers: { authorization: "Bearer x.y.z" } })).status, 401);
});

test("the routes are described in /openapi.json", async () => {
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  for (const [p, m] of [["/v1/commands", "post"], ["/v1/auth/challenge", "get"], ["/v1/auth/token", "post"], ["/v1/imvus", "get"], ["/v1/imvus/{name}", "get"], ["/v1/imvus/{name}/feed", "get"], ["/v1/imvus/{name}/revenue/statement", "get"], ["/v1/identities/{id}", "get"], ["/v1/platform", "get"]] as const) {
    assert.ok(doc.paths[p]?.[m], `${m.toUpperCase()} ${p} is documented`);
  }
});
