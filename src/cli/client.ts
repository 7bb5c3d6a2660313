/**
 * The CLI's API client: signs commands locally with the user's keyring identity, posts them to
 * $NEXUS_API, and trusts nothing it cannot check. Every receipt's checkpoint must verify with the
 * platform's verifier key (learned on first contact, or pinned with NEXUS_VERIFIER_KEY), its
 * inclusion proof must lead to that checkpoint's root, and every later checkpoint must be proven
 * consistent with the last one this CLI saw: a rewritten or forked history is reported loudly
 * (CLIENT_INCONSISTENT, exit 1) and the new checkpoint is not remembered.
 *
 * State per platform lives beside the keyring: `<keyring>/../trust/<sha256(api)>.json` (the
 * last checkpoint seen) and `receipts.jsonl` (every receipt received).
 */
import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { bytesEqual, fromBase64, fromHex, toHex } from "../core/crypto/bytes.ts";
import { signRequest } from "../core/crypto/httpsig.ts";
import { defineErrors, NexusError } from "../core/errors.ts";
import { keyringDir, loadIdentity, type LocalIdentity } from "../core/identity/index.ts";
import { verifyConsistency, verifyInclusion } from "../core/ledger/merkle.ts";
import { openNote, parseCheckpoint, parseVerifierKey } from "../core/ledger/note.ts";
import type { Receipt } from "../core/pipeline/pipeline.ts";
import { signCommand, type CommandDraft } from "../core/pipeline/sign.ts";
import { signerOf } from "../platform/platform.ts";

/** The API of the embedded default. */
export const API_DEFAULT = "http://127.0.0.1:8780";
/** Time limit of one request. */
export const CLIENT_TIMEOUT_MS = 30_000;
/** Largest answer read. */
export const CLIENT_BODY_BYTES_MAX = 16 * 1024 * 1024;

/** The client's error codes. */
export const clientErrors = defineErrors({
  CLIENT_API_UNREACHABLE: { message: "The Nexus API did not answer; start it with ./nexus up or set NEXUS_API", http: 503, exit: 3 },
  CLIENT_BAD_RESPONSE: { message: "The API answered something this CLI cannot accept", http: 502, exit: 1 },
  CLIENT_RECEIPT_INVALID: { message: "The receipt does not verify: the platform's answer cannot be trusted", http: 502, exit: 1 },
  CLIENT_INCONSISTENT: {
    message: "THE PLATFORM SHOWED A HISTORY INCONSISTENT WITH ONE IT SHOWED BEFORE (rewritten or forked log); keep the trust file as evidence",
    http: 502,
    exit: 1,
  },
  GATE_DENIED: { message: "The command was recorded and denied by the gates", http: 403, exit: 1 },
});

const hexHash = z.string().regex(/^[0-9a-f]{64}$/);
const ReceiptSchema = z.object({
  index: z.string().regex(/^\d{1,20}$/),
  leafHash: hexHash,
  outcome: z.enum(["applied", "denied"]),
  gates: z.array(z.object({ gate: z.number().int(), pass: z.boolean(), reason: z.string() })).max(17),
  digest: hexHash,
  treeSize: z.string().regex(/^\d{1,20}$/),
  checkpoint: z.string().max(65_536),
  inclusionProof: z.array(hexHash).max(128),
});
const ErrorBody = z.object({ error: z.object({ code: z.string().max(100), message: z.string().max(4000) }) }).passthrough();
const TrustSchema = z.object({ api: z.string(), verifierKey: z.string(), size: z.string(), root: hexHash, seenAt: z.string() }).strict();
type Trust = z.infer<typeof TrustSchema>;

/** Options of a call. */
export interface ClientOptions {
  /** Identity (name or id) in the keyring; the default identity when absent. */
  readonly identity?: string | undefined;
  /** API base URL; $NEXUS_API or API_DEFAULT when absent. */
  readonly api?: string | undefined;
}

/** The API base URL in force. */
export function apiBase(opts: ClientOptions = {}): string {
  return (opts.api ?? process.env.NEXUS_API ?? API_DEFAULT).replace(/\/+$/, "");
}

function trustDir(): string {
  return process.env.NEXUS_TRUST_DIR ?? join(dirname(keyringDir()), "trust");
}

function trustPath(api: string): string {
  return join(trustDir(), `${createHash("sha256").update(api).digest("hex").slice(0, 32)}.json`);
}

function readTrust(api: string): Trust | undefined {
  const p = trustPath(api);
  if (!existsSync(p)) return undefined;
  const r = TrustSchema.safeParse(JSON.parse(readFileSync(p, "utf8")));
  if (!r.success) throw clientErrors.make("CLIENT_BAD_RESPONSE", `trust file ${p} is damaged; move it away to start over`);
  return r.data;
}

/**
 * Remembers `t` atomically. Several CLI processes of one user may run at once: each writes its own
 * temporary file, and a checkpoint older than the one another process stored meanwhile does not
 * replace it (both were checked consistent with what each had read; the next command checks the
 * server against the larger).
 */
function writeTrust(t: Trust): void {
  const p = trustPath(t.api);
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  const now = readTrust(t.api);
  if (now !== undefined && now.verifierKey === t.verifierKey) {
    if (BigInt(now.size) > BigInt(t.size)) return;
    if (now.size === t.size && now.root !== t.root) throw clientErrors.make("CLIENT_INCONSISTENT", `two different roots for tree size ${t.size} (one seen by another nexus process)`);
  }
  const tmp = `${p}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(t, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, p);
}

async function request(method: string, url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; json: unknown; headers: Headers }> {
  let res: Response;
  try {
    res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }), signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
  } catch (e) {
    throw clientErrors.make("CLIENT_API_UNREACHABLE", `${url}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const text = await res.text();
  if (text.length > CLIENT_BODY_BYTES_MAX) throw clientErrors.make("CLIENT_BAD_RESPONSE", "answer too large");
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw clientErrors.make("CLIENT_BAD_RESPONSE", `${method} ${url}: ${res.status}, not JSON`);
  }
  return { status: res.status, json, headers: res.headers };
}

/** The server's typed error, as a NexusError with the same code (exit 2 for bad input, else 1). */
function serverError(status: number, json: unknown): NexusError {
  const e = ErrorBody.safeParse(json);
  if (!e.success) return clientErrors.make("CLIENT_BAD_RESPONSE", `HTTP ${status}`);
  const exit = status === 400 || status === 413 || status === 422 ? 2 : status === 404 || status === 503 ? 3 : 1;
  return new NexusError(e.data.error.code, { message: e.data.error.message, http: status, exit });
}

/** The platform's verifier key: pinned, remembered, or learned now (trust on first use). */
export async function trustedVerifierKey(api: string): Promise<string> {
  const pinned = process.env.NEXUS_VERIFIER_KEY;
  if (pinned) return pinned;
  const known = readTrust(api);
  if (known) return known.verifierKey;
  const r = await request("GET", `${api}/v1/platform`, { accept: "application/json" });
  const body = z.object({ verifierKey: z.string().max(1000) }).passthrough().safeParse(r.json);
  if (r.status !== 200 || !body.success) throw clientErrors.make("CLIENT_BAD_RESPONSE", "GET /v1/platform gave no verifier key");
  parseVerifierKey(body.data.verifierKey);
  return body.data.verifierKey;
}

/**
 * Checks a signed checkpoint against the last one this CLI saw (consistency proof from the API,
 * verified here) and remembers it. Returns the checkpoint's size and root.
 */
export async function observeCheckpoint(api: string, note: string): Promise<{ size: bigint; root: Uint8Array }> {
  const vkey = await trustedVerifierKey(api);
  let cp;
  try {
    cp = parseCheckpoint(openNote(note, [vkey]).text);
  } catch (e) {
    throw clientErrors.make("CLIENT_RECEIPT_INVALID", `checkpoint: ${e instanceof Error ? e.message : String(e)}`);
  }
  const last = readTrust(api);
  if (last) {
    const lastSize = BigInt(last.size);
    const lastRoot = fromHex(last.root) ?? new Uint8Array();
    if (cp.size === lastSize && !bytesEqual(cp.root, lastRoot)) {
      throw clientErrors.make("CLIENT_INCONSISTENT", `two different roots for tree size ${cp.size}`);
    }
    if (cp.size > lastSize && lastSize > 0n) await proveConsistent(api, { size: lastSize, root: lastRoot }, cp);
    if (cp.size < lastSize) {
      // An older checkpoint (another nexus process of this user saw a newer one meanwhile) is fine
      // only as a prefix of the remembered tree: a rolled-back history has no such proof.
      if (cp.size > 0n) await proveConsistent(api, cp, { size: lastSize, root: lastRoot }, `tree size ${cp.size} after ${lastSize} was seen: `);
      return { size: cp.size, root: cp.root };
    }
  }
  writeTrust({ api, verifierKey: vkey, size: cp.size.toString(), root: toHex(cp.root), seenAt: new Date().toISOString() });
  return { size: cp.size, root: cp.root };
}

/** Asks the API for the consistency proof from `older` to `newer` and verifies it here; CLIENT_INCONSISTENT otherwise. */
async function proveConsistent(api: string, older: { size: bigint; root: Uint8Array }, newer: { size: bigint; root: Uint8Array }, context = ""): Promise<void> {
  const r = await request("GET", `${api}/v1/ledger/proofs/consistency?from=${older.size}&to=${newer.size}`, { accept: "application/json" });
  const body = z.object({ proof: z.array(z.string().max(64)).max(128) }).passthrough().safeParse(r.json);
  if (r.status !== 200 || !body.success) throw clientErrors.make("CLIENT_INCONSISTENT", `${context}no consistency proof from ${older.size} to ${newer.size}`);
  const proof = body.data.proof.map((s) => fromBase64(s) ?? new Uint8Array());
  if (!verifyConsistency(older.size, newer.size, older.root, newer.root, proof)) {
    throw clientErrors.make("CLIENT_INCONSISTENT", `${context}the proof from size ${older.size} to ${newer.size} does not verify`);
  }
}

/** Verifies a receipt (checkpoint, consistency with what was seen, inclusion) and keeps it. */
export async function verifyReceipt(api: string, receipt: Receipt): Promise<void> {
  const cp = await observeCheckpoint(api, receipt.checkpoint);
  if (cp.size.toString() !== receipt.treeSize) throw clientErrors.make("CLIENT_RECEIPT_INVALID", "treeSize differs from the checkpoint");
  const leaf = fromHex(receipt.leafHash) ?? new Uint8Array();
  const proof = receipt.inclusionProof.map((h) => fromHex(h) ?? new Uint8Array());
  if (!verifyInclusion(leaf, BigInt(receipt.index), cp.size, proof, cp.root)) {
    throw clientErrors.make("CLIENT_RECEIPT_INVALID", `entry ${receipt.index} is not in the signed tree`);
  }
  const file = join(trustDir(), "receipts.jsonl");
  mkdirSync(trustDir(), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${JSON.stringify({ api, ...receipt })}\n`, { mode: 0o600 });
}

/** The user's identity from the keyring. */
export function localIdentity(opts: ClientOptions = {}): LocalIdentity {
  return loadIdentity(keyringDir(), opts.identity);
}

/** The receipt of an applied command; a denied one throws GATE_DENIED after its receipt verified. */
export async function submitDraft(draft: CommandDraft, opts: ClientOptions = {}): Promise<Receipt> {
  return submitSigned(signCommand(draft, signerOf(localIdentity(opts))).json, opts);
}

/** Posts an already signed envelope (JSON) and verifies the receipt. */
export async function submitSigned(envelopeJson: string, opts: ClientOptions = {}): Promise<Receipt> {
  const api = apiBase(opts);
  const r = await request("POST", `${api}/v1/commands`, { "content-type": "application/json", accept: "application/json" }, envelopeJson);
  const receiptJson = (r.json as { receipt?: unknown } | undefined)?.receipt;
  if (receiptJson === undefined) throw serverError(r.status, r.json);
  const parsed = ReceiptSchema.safeParse(receiptJson);
  if (!parsed.success) throw clientErrors.make("CLIENT_BAD_RESPONSE", "the receipt is malformed");
  const receipt = parsed.data as Receipt;
  await verifyReceipt(api, receipt);
  if (receipt.outcome === "denied") {
    const failing = receipt.gates.filter((g) => !g.pass).map((g) => `gate ${g.gate}: ${g.reason}`);
    throw clientErrors.make("GATE_DENIED", `entry ${receipt.index}; ${failing.join("; ")}`, { receipt });
  }
  return receipt;
}

/** A read signed with the identity's key (RFC 9421), answered as JSON; errors keep the server's code. */
export async function apiGet<T>(path: string, opts: ClientOptions = {}): Promise<T> {
  const api = apiBase(opts);
  const url = `${api}${path}`;
  const id = localIdentity(opts);
  const headers: Record<string, string> = { accept: "application/json" };
  const created = Math.floor(Date.now() / 1000);
  const sig = signRequest(
    { method: "GET", url, headers },
    { components: ["@method", "@target-uri"], params: { created, keyid: id.id, alg: "ed25519" }, privateKey: id.current.privateKey },
  );
  headers["signature-input"] = sig.signatureInput;
  headers.signature = sig.signature;
  const r = await request("GET", url, headers);
  if (r.status !== 200) throw serverError(r.status, r.json);
  return r.json as T;
}

/** An unauthenticated read (public routes). */
export async function apiGetPublic<T>(path: string, opts: ClientOptions = {}): Promise<T> {
  const r = await request("GET", `${apiBase(opts)}${path}`, { accept: "application/json" });
  if (r.status !== 200) throw serverError(r.status, r.json);
  return r.json as T;
}
