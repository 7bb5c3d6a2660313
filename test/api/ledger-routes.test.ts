/** The ledger routes over real HTTP (listen on port 0 + fetch), hostile parameters included. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { buildApi } from "../../src/api/app.ts";
import { Ledger } from "../../src/core/ledger/ledger.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "../../src/core/ledger/merkle.ts";
import { noteSignerFromEd25519, openNote, parseCheckpoint, verifierKey } from "../../src/core/ledger/note.ts";
import { ed25519FromSeed } from "../../src/core/crypto/ed25519.ts";
import { fromBase64, utf8 } from "../../src/core/crypto/bytes.ts";
import type { Store } from "../../src/store/types.ts";
import { sqliteHarness, type StoreHarness } from "../store/harness.ts";

const ORIGIN = "nexus.test/api";
const KEY = ed25519FromSeed(new Uint8Array(32).fill(3));
const VKEY = verifierKey(ORIGIN, KEY.publicKey);
const entryOf = (i: number): Uint8Array => utf8(`{"n":${i}}`);
const b64 = (s: unknown): Uint8Array => fromBase64(String(s)) ?? new Uint8Array(0);

let h: StoreHarness;
let store: Store;
let ledger: Ledger;
let app: FastifyInstance;
let base = "";
const batchEnds: bigint[] = [];

before(async () => {
  h = sqliteHarness();
  store = await h.open();
  ledger = await Ledger.open(store, { origin: ORIGIN, signer: noteSignerFromEd25519(ORIGIN, KEY.privateKey, KEY.publicKey), verifierKey: VKEY });
  for (let round = 0; round < 3; round++) {
    await ledger.submit(async (ctx) => {
      for (let i = 0; i < 100; i++) await ctx.append(entryOf(round * 100 + i));
    });
    batchEnds.push(ledger.size);
  }
  app = await buildApi({ ledger, stream: { heartbeatMs: 50, clientsMax: 3 } });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

after(async () => {
  await app.close();
  await ledger.close();
  await store.close();
  await h.cleanup();
});

async function getJson(path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(base + path, init);
  const text = await r.text();
  assert.match(r.headers.get("content-type") ?? "", /application\/json/, `${path}: ${text}`);
  return { status: r.status, body: JSON.parse(text) as Record<string, unknown> };
}

test("GET /v1/ledger/checkpoint: a signed C2SP checkpoint of the current tree", async () => {
  const { status, body } = await getJson("/v1/ledger/checkpoint");
  assert.equal(status, 200);
  const cp = parseCheckpoint(openNote(String(body.note), [VKEY]).text);
  assert.equal(cp.origin, ORIGIN);
  assert.equal(cp.size, 300n);
  assert.equal(body.size, "300");
  assert.deepEqual(b64(body.rootHash), cp.root);
  const older = await getJson(`/v1/ledger/checkpoint?size=${batchEnds[0]}`);
  assert.equal(older.status, 200);
  assert.equal(parseCheckpoint(openNote(String(older.body.note), [VKEY]).text).size, 100n);
  assert.equal((await getJson("/v1/ledger/checkpoint?size=150")).status, 404);
});

test("GET /v1/ledger/entries/:index and the paged /v1/ledger/entries", async () => {
  const { status, body } = await getJson("/v1/ledger/entries/123");
  assert.equal(status, 200);
  assert.deepEqual(body, { index: "123", leafHash: Buffer.from(leafHash(entryOf(123))).toString("base64"), entry: Buffer.from(entryOf(123)).toString("base64") });
  const page = await getJson("/v1/ledger/entries?from=295&limit=10");
  assert.equal(page.status, 200);
  assert.deepEqual((page.body.entries as { index: string }[]).map((e) => e.index), ["295", "296", "297", "298", "299"]);
  assert.equal(page.body.size, "300");
});

test("inclusion and consistency proofs verify against the roots (checked locally)", async () => {
  const cp = await getJson("/v1/ledger/checkpoint");
  for (const [index, size] of [[0, 300], [299, 300], [77, 100], [150, 201]] as const) {
    const q = size === 300 ? `index=${index}` : `index=${index}&size=${size}`;
    const { status, body } = await getJson(`/v1/ledger/proofs/inclusion?${q}`);
    assert.equal(status, 200);
    assert.equal(body.size, String(size));
    const proof = (body.proof as string[]).map(b64);
    assert.ok(verifyInclusion(leafHash(entryOf(index)), BigInt(index), BigInt(size), proof, b64(body.rootHash)));
    if (size === 300) assert.deepEqual(body.rootHash, cp.body.rootHash);
  }
  for (const [from, to] of [[1, 300], [100, 200], [37, 300], [0, 10], [300, 300]] as const) {
    const q = to === 300 ? `from=${from}` : `from=${from}&to=${to}`;
    const { status, body } = await getJson(`/v1/ledger/proofs/consistency?${q}`);
    assert.equal(status, 200, JSON.stringify(body));
    const ok = verifyConsistency(BigInt(from), BigInt(to), b64(body.fromRoot), b64(body.toRoot), (body.proof as string[]).map(b64));
    assert.ok(ok, `${from}→${to}`);
  }
});

const HOSTILE: [string, number, string][] = [
  ["/v1/ledger/entries/-1", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/1e99", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/abc", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/007", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/1.5", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/%20%31", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/99999999999999999999", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/9223372036854775808", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/9223372036854775807", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/entries/300", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/entries/%ZZ", 400, "INPUT_INVALID"],
  [`/v1/ledger/entries/${"9".repeat(1000)}`, 400, "INPUT_INVALID"],
  [`/v1/ledger/entries/${"9".repeat(5000)}`, 400, "INPUT_INVALID"],
  ["/v1/ledger/entries/5?x=1", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries?from=0&limit=0", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries?from=0&limit=1001", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries?from=0&limit=abc", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries?limit=5", 400, "INPUT_INVALID"],
  ["/v1/ledger/entries?from=300", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/inclusion", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=%00", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=1&index=2", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=-1", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=0&size=1e99", 400, "INPUT_INVALID"],
  [`/v1/ledger/proofs/inclusion?index=0&size=${"9".repeat(40)}`, 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/inclusion?index=0&size=100000", 404, "LEDGER_SIZE_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/inclusion?index=0&size=9223372036854775807", 404, "LEDGER_SIZE_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/inclusion?index=5&size=5", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/inclusion?index=0&size=0", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/inclusion?index[]=1", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/consistency?from=5&to=3", 400, "LEDGER_RANGE"],
  ["/v1/ledger/proofs/consistency?from=garbage", 400, "INPUT_INVALID"],
  ["/v1/ledger/proofs/consistency?from=1&to=301", 404, "LEDGER_SIZE_OUT_OF_RANGE"],
  ["/v1/ledger/proofs/consistency?to=3", 400, "INPUT_INVALID"],
  ["/v1/ledger/checkpoint?size=abc", 400, "INPUT_INVALID"],
  ["/v1/ledger/checkpoint?size=-5", 400, "INPUT_INVALID"],
  ["/v1/ledger/stream?from=garbage", 400, "INPUT_INVALID"],
  ["/v1/ledger/stream?from=-1", 400, "INPUT_INVALID"],
  ["/v1/ledger/stream?from=1e99", 400, "INPUT_INVALID"],
  [`/v1/ledger/stream?from=${"9".repeat(30)}`, 400, "INPUT_INVALID"],
  ["/v1/ledger/stream", 400, "INPUT_INVALID"],
  ["/v1/ledger/stream?from=301", 404, "LEDGER_INDEX_OUT_OF_RANGE"],
  ["/v1/ledger/nope", 404, "NOT_FOUND"],
  ["/v1/ledger/entries/1/extra", 404, "NOT_FOUND"],
];

test("hostile parameters get 400 (malformed) or 404 (beyond the log) with an error code, never a 500", async () => {
  for (const [path, status, code] of HOSTILE) {
    const r = await getJson(path);
    assert.equal(r.status, status, `${path}: ${JSON.stringify(r.body)}`);
    assert.equal((r.body.error as { code?: string } | undefined)?.code, code, path);
  }
  const hdr = await getJson("/v1/ledger/stream?from=0", { headers: { "last-event-id": "abc" } });
  assert.equal(hdr.status, 400);
  const post = await getJson("/v1/ledger/entries/1", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
  assert.equal(post.status, 404);
  const big = await getJson("/v1/ledger/entries/1", { method: "POST", body: "x".repeat(2 * 1024 * 1024), headers: { "content-type": "text/plain" } });
  assert.ok(big.status === 404 || big.status === 413, String(big.status));
});

/** Reads an SSE response until `want` entry events arrived; returns their ids and whether a heartbeat came. */
async function readEvents(res: Response, want: number, timeoutMs = 5000): Promise<{ ids: bigint[]; heartbeat: boolean }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  const ids: bigint[] = [];
  let buf = "";
  let heartbeat = false;
  const deadline = Date.now() + timeoutMs;
  while (ids.length < want || !heartbeat) {
    if (Date.now() > deadline) throw new Error(`timed out with ${ids.length} events`);
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      if (block.startsWith(": heartbeat")) heartbeat = true;
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data !== undefined) {
        const ev = JSON.parse(data) as { index: string; entry: string; leafHash: string };
        assert.deepEqual(b64(ev.entry), entryOf(Number(ev.index)));
        assert.deepEqual(b64(ev.leafHash), leafHash(entryOf(Number(ev.index))));
        assert.equal(/^id: (\d+)$/m.exec(block)?.[1], ev.index);
        ids.push(BigInt(ev.index));
      }
    }
  }
  await reader.cancel();
  return { ids, heartbeat };
}

test("GET /v1/ledger/stream replays from `from`, follows new commits, resumes with Last-Event-ID, bounds clients", async () => {
  const ac = new AbortController();
  const res = await fetch(`${base}/v1/ledger/stream?from=297`, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reading = readEvents(res, 6);
  await ledger.submit(async (ctx) => {
    for (let i = 300; i < 303; i++) await ctx.append(entryOf(i));
  });
  const { ids, heartbeat } = await reading;
  assert.deepEqual(ids, [297n, 298n, 299n, 300n, 301n, 302n]);
  assert.ok(heartbeat);
  ac.abort();
  const resumed = await fetch(`${base}/v1/ledger/stream?from=0`, { headers: { "last-event-id": "300" } });
  assert.deepEqual((await readEvents(resumed, 2)).ids, [301n, 302n]);
  // clientsMax is 3: hold three, the fourth is refused with 503.
  const held = await Promise.all([0, 1, 2].map(() => fetch(`${base}/v1/ledger/stream?from=303`)));
  assert.deepEqual(held.map((r) => r.status), [200, 200, 200]);
  await new Promise((r) => setTimeout(r, 50));
  const refused = await getJson("/v1/ledger/stream?from=303");
  assert.equal(refused.status, 503);
  assert.equal((refused.body.error as { code: string }).code, "LEDGER_OVERLOADED");
  for (const r of held) await r.body?.cancel();
  await new Promise((r) => setTimeout(r, 100));
  const again = await fetch(`${base}/v1/ledger/stream?from=303`);
  assert.equal(again.status, 200, "a slot frees when a client leaves");
  await again.body?.cancel();
});

test("/openapi.json describes every ledger route and its parameters", async () => {
  const { status, body } = await getJson("/openapi.json");
  assert.equal(status, 200);
  assert.equal(body.openapi, "3.1.0");
  const paths = body.paths as Record<string, { get: { parameters: { name: string; schema: { pattern?: string } }[] } }>;
  for (const p of ["/v1/ledger/checkpoint", "/v1/ledger/entries/{index}", "/v1/ledger/entries", "/v1/ledger/proofs/inclusion", "/v1/ledger/proofs/consistency", "/v1/ledger/stream"]) {
    assert.ok(paths[p]?.get, p);
  }
  const index = paths["/v1/ledger/entries/{index}"]?.get.parameters[0];
  assert.equal(index?.name, "index");
  assert.ok(index?.schema.pattern, "parameter schemas come from the zod validators");
});
