/**
 * End-to-end support for the pipeline suites: a real installation (Platform.open on a temp home,
 * SQLite or a fresh PostgreSQL schema), creator identities in their own keyring, signing helpers,
 * and the independent receipt check (checkpoint note opened with the platform's verifier key,
 * RFC 9162 inclusion proof folded to that note's root).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { fromHex, toHex } from "../../src/core/crypto/bytes.ts";
import { isNexusError } from "../../src/core/errors.ts";
import { createIdentity, rotateIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { leafHash, verifyInclusion } from "../../src/core/ledger/merkle.ts";
import { openNote, parseCheckpoint } from "../../src/core/ledger/note.ts";
import type { Receipt } from "../../src/core/pipeline/pipeline.ts";
import { signCommand, type CommandDraft, type SignedCommand } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { Platform, signerOf, type ServiceRole } from "../../src/platform/platform.ts";
import { testDatabaseUrl } from "../store/harness.ts";

/** Which store a suite runs on. */
export type Backend = "sqlite" | "postgres";

/** A test installation and the means to act on it. */
export interface Installation {
  readonly backend: Backend;
  readonly platform: Platform;
  readonly home: string;
  /** A creators' keyring (never the platform's). */
  readonly keyring: string;
  /** The clock the sequencer reads; tests move it. */
  now: Date;
  /** Reopens the platform on the same home and database (a restart). */
  reopen(): Promise<Platform>;
  cleanup(): Promise<void>;
}

/** Opens a fresh installation on `backend`. */
export async function install(backend: Backend): Promise<Installation> {
  const home = mkdtempSync(join(tmpdir(), "nexus-pipeline-"));
  const keyring = join(home, "creators");
  const url = backend === "postgres" ? testDatabaseUrl() : undefined;
  const schema = backend === "postgres" ? `p_${process.pid}_${randomBytes(6).toString("hex")}` : undefined;
  const inst: Installation = {
    backend,
    home,
    keyring,
    now: new Date(),
    platform: undefined as unknown as Platform,
    reopen: async () => {
      await inst.platform.close();
      (inst as { platform: Platform }).platform = await open();
      return inst.platform;
    },
    cleanup: async () => {
      await inst.platform.close().catch(() => undefined);
      if (url !== undefined && schema !== undefined) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await c.end();
        }
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
  const open = (): Promise<Platform> => Platform.open({ home, databaseUrl: url, databaseSchema: schema, clock: () => inst.now });
  (inst as { platform: Platform }).platform = await open();
  return inst;
}

/** Signs `draft` as `id` at the installation's clock (or `at`), with a fresh nonce unless given. */
export function sign(inst: Installation, id: LocalIdentity, draft: CommandDraft, opts: { at?: Date; nonce?: string } = {}): SignedCommand {
  return signCommand(draft, signerOf(id), opts.at ?? inst.now, opts.nonce);
}

/** Submits a signed command. */
export function submit(inst: Installation, cmd: SignedCommand | string): Promise<Receipt> {
  return inst.platform.pipeline.submit(typeof cmd === "string" ? cmd : cmd.json);
}

/** Signs and submits `draft` as `id`. */
export function act(inst: Installation, id: LocalIdentity, draft: CommandDraft): Promise<Receipt> {
  return submit(inst, sign(inst, id, draft));
}

/** Creates a person identity in the creators' keyring and registers it (identity.inception). */
export async function person(inst: Installation, name: string): Promise<LocalIdentity> {
  const id = createIdentity(inst.keyring, { name, makeDefault: false });
  const r = await act(inst, id, { type: "identity.inception", body: { inception: id.kel[0] } });
  assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
  await checkReceipt(inst, r);
  return id;
}

/** Rotates `id` in the keyring and records the rotation; returns the rotated identity. */
export async function rotate(inst: Installation, id: LocalIdentity): Promise<{ identity: LocalIdentity; receipt: Receipt }> {
  const { identity, event } = rotateIdentity(inst.keyring, id.id);
  const receipt = await act(inst, identity, { type: "identity.rotate", body: { rotation: event } });
  return { identity, receipt };
}

/** The small envelope profile as wire JSON, with overrides. */
export function envelope(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...envelopeToWire(ENVELOPE_PROFILES.small), ...over };
}

/** Creates IMVU `name` owned by `owner`. */
export async function imvu(inst: Installation, owner: LocalIdentity, name: string, cls: "imvu" | "mini-platform" = "imvu"): Promise<Receipt> {
  const r = await act(inst, owner, { type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: cls, envelope: envelope() } });
  assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
  return r;
}

/** The platform's service identity for `role`. */
export function service(inst: Installation, role: ServiceRole): LocalIdentity {
  return inst.platform.serviceIdentity(role);
}

/**
 * Verifies a receipt with nothing but the platform's verifier key: the note's signature, the
 * checkpoint's size, the inclusion proof of the leaf in that root, and the leaf against the
 * stored entry.
 */
export async function checkReceipt(inst: Installation, r: Receipt): Promise<void> {
  const { text } = openNote(r.checkpoint, [inst.platform.verifierKey]);
  const cp = parseCheckpoint(text);
  assert.equal(cp.size.toString(), r.treeSize, "the receipt's tree size is the signed checkpoint's");
  const leaf = fromHex(r.leafHash);
  assert.ok(leaf, "leaf hash is hex");
  const proof = r.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array());
  assert.ok(verifyInclusion(leaf, BigInt(r.index), cp.size, proof, cp.root), `inclusion proof of ${r.index} in ${r.treeSize}`);
  const stored = await inst.platform.ledger.entry(BigInt(r.index));
  assert.equal(toHex(leafHash(stored)), r.leafHash, "the leaf is the stored entry's");
}

/** Asserts a receipt was recorded as denied by exactly `gates` (the failing ones). */
export async function expectDenied(inst: Installation, p: Promise<Receipt>, gates: readonly number[]): Promise<Receipt> {
  const r = await p;
  assert.equal(r.outcome, "denied", `expected a denial, got ${JSON.stringify(r.gates)}`);
  assert.deepEqual(
    r.gates.filter((v) => !v.pass).map((v) => v.gate),
    [...gates],
    JSON.stringify(r.gates.filter((v) => !v.pass)),
  );
  await checkReceipt(inst, r);
  return r;
}

/** Asserts a receipt was applied, and verifies it. */
export async function expectApplied(inst: Installation, p: Promise<Receipt>): Promise<Receipt> {
  const r = await p;
  assert.equal(r.outcome, "applied", JSON.stringify(r.gates.filter((v) => !v.pass)));
  await checkReceipt(inst, r);
  return r;
}

/** Asserts the submission is rejected before the gates with `code`, and that nothing was recorded. */
export async function expectRejected(inst: Installation, p: Promise<Receipt>, code: string): Promise<void> {
  const before = inst.platform.ledger.size;
  const digest = inst.platform.pipeline.stateDigest();
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isNexusError(e, code), `expected ${code}, got ${isNexusError(e) ? e.code : String(e)}`);
    return true;
  });
  assert.equal(inst.platform.ledger.size, before, "a rejection records nothing");
  assert.equal(inst.platform.pipeline.stateDigest(), digest, "a rejection changes no state");
}

/** The projection rows outside the bookkeeping tables (nonce, feed), as a comparable string. */
export function stateWithoutBookkeeping(inst: Installation): string {
  const s = inst.platform.state;
  const tables = ["platform", "identity", "admin", "imvu", "delegation", "consent", "revenue-account", "revenue-event", "usage", "throttle"] as const;
  return JSON.stringify(tables.map((t) => [t, s.list(t)]));
}
