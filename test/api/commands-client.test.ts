/** The CLI's API client (src/cli/client.ts) against these routes: signed submits with receipt checks, signed reads. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiGet, apiGetPublic, submitDraft } from "../../src/cli/client.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { createIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { envelope } from "../pipeline/support.ts";
import { cli } from "../imvu/support.ts";

let stack: Stack;
let home: string;
let me: LocalIdentity;

before(async () => {
  home = mkdtempSync(join(tmpdir(), "nexus-client-"));
  stack = await startStack({ home, config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: 0 }, public: false }, modules: [], log: () => undefined });
  process.env.NEXUS_API = stack.apiUrl;
  process.env.NEXUS_KEYRING = join(home, "creator-keys");
  process.env.NEXUS_TRUST_DIR = join(home, "trust");
  me = createIdentity(process.env.NEXUS_KEYRING, { name: "cli-user", makeDefault: true });
});
after(async () => {
  await stack.stop();
  rmSync(home, { recursive: true, force: true });
});

test("register, create, list, show and feed through the CLI client; a denial is GATE_DENIED with its verified receipt", async () => {
  await assert.rejects(apiGetPublic(`/v1/identities/${me.id}`), (e: unknown) => isNexusError(e, "NOT_FOUND"));
  await submitDraft({ type: "identity.inception", body: { inception: me.kel[0] } });
  const r = await submitDraft({ type: "imvu.create", imvu: "clisite", body: { name: "clisite", jurisdiction: "NL", class: "imvu", envelope: envelope() } });
  assert.equal(r.outcome, "applied");
  const list = await apiGet<{ imvus: { name: string }[] }>("/v1/imvus");
  assert.deepEqual(list.imvus.map((i) => i.name), ["clisite"]);
  const show = await apiGet<{ owner: string }>("/v1/imvus/clisite");
  assert.equal(show.owner, me.id);
  await assert.rejects(submitDraft({ type: "admin.add", body: { identity: me.id } }), (e: unknown) => isNexusError(e, "GATE_DENIED"));
  const feed = await apiGet<{ feed: { type: string }[] }>("/v1/imvus/clisite/feed");
  assert.deepEqual(feed.feed.map((f) => f.type), ["imvu.create"]);
  await assert.rejects(apiGet("/v1/imvus/someone-else"), (e: unknown) => isNexusError(e, "NOT_FOUND"));
});

test("several CLI processes of one user at once share the trust file: none fails on it, and it keeps the largest checkpoint seen", async () => {
  const env = { NEXUS_API: stack.apiUrl, NEXUS_KEYRING: process.env.NEXUS_KEYRING ?? "", NEXUS_TRUST_DIR: process.env.NEXUS_TRUST_DIR ?? "" };
  const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => cli(["dns", "set", "--imvu", "clisite", `w${i}`, "A", `192.0.2.${i + 1}`], env)));
  for (const r of runs) assert.equal(r.code, 0, r.stdout + r.stderr);
  const files = readdirSync(env.NEXUS_TRUST_DIR);
  assert.deepEqual(files.filter((f) => f.endsWith(".tmp")), [], "no temporary file left");
  const trust = JSON.parse(readFileSync(join(env.NEXUS_TRUST_DIR, files.find((f) => f.endsWith(".json")) ?? ""), "utf8")) as { size: string };
  assert.equal(BigInt(trust.size), stack.platform.ledger.size, "the latest tree size, not an older one written last");
});
