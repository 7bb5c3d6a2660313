/**
 * Talking to the Nexus API from the page: commands are built and signed here (JCS payload
 * `{type, v:1, actor, imvu?, nonce, issuedAt, body}` in a DSSE envelope, keyid `<id>#<seq>`,
 * src/core/pipeline/sign.ts), reads carry a bearer token obtained by signing a challenge. Every
 * receipt that comes back is kept in IndexedDB for the Trust page to verify.
 */
import { sha256Hex, toBase64, toBase64Url, randomBytes, utf8 } from "./bytes.ts";
import { addReceipt, type Receipt, type StoredIdentity } from "./db.ts";
import { pae, sign } from "./identity.ts";
import { canonicalize } from "./jcs.ts";

/** The DSSE payload type of commands. */
export const COMMAND_PAYLOAD_TYPE = "application/vnd.nexus.command+json";
/** Time limit of one request. */
export const API_TIMEOUT_MS = 30_000;

/** An error answer of the API, with its stable code. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly body: unknown;
  constructor(code: string, message: string, status: number, body: unknown) {
    super(message);
    this.code = code;
    this.status = status;
    this.body = body;
  }
}

/** A command before it is signed. */
export interface Draft {
  readonly type: string;
  readonly imvu?: string;
  readonly body: Record<string, unknown>;
}

/** The answer to a command: the receipt (applied or denied), or a rejection before the gates. */
export type Submitted =
  | { readonly kind: "receipt"; readonly receipt: Receipt; readonly status: number }
  | { readonly kind: "rejected"; readonly code: string; readonly message: string; readonly status: number };

async function call(method: string, path: string, init: { body?: string; token?: string } = {}): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(path, { method, headers, ...(init.body === undefined ? {} : { body: init.body }), signal: AbortSignal.timeout(API_TIMEOUT_MS) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError("CONSOLE_BAD_RESPONSE", `${method} ${path}: HTTP ${res.status}, not JSON`, res.status, text);
  }
  return { status: res.status, json };
}

function errorOf(status: number, json: unknown): ApiError {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof e?.code === "string" ? e.code : "CONSOLE_BAD_RESPONSE";
  const message = typeof e?.message === "string" ? e.message : `HTTP ${status}`;
  return new ApiError(code, message, status, json);
}

/** A public GET answered as JSON (errors keep the server's code). */
export async function getPublic<T>(path: string): Promise<T> {
  const r = await call("GET", path);
  if (r.status !== 200) throw errorOf(r.status, r.json);
  return r.json as T;
}

/** A POST of JSON answered with 200 and JSON (errors keep the server's code), e.g. POST /v1/mail/verifiers. */
export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const r = await call("POST", path, { body: JSON.stringify(body) });
  if (r.status !== 200) throw errorOf(r.status, r.json);
  return r.json as T;
}

/** The platform's public facts. */
export interface PlatformInfo {
  readonly platformId: string;
  readonly baseDomain: string;
  readonly genesisIndex: string;
  readonly constitution: { readonly version: number; readonly hash: string };
  readonly verifierKey: string;
  readonly origin: string;
}

/** GET /v1/platform. */
export function platformInfo(): Promise<PlatformInfo> {
  return getPublic<PlatformInfo>("/v1/platform");
}

/** Builds and signs a command with the identity's current key, now, with a fresh nonce. */
export async function signCommand(who: StoredIdentity, draft: Draft): Promise<{ json: string; digest: string }> {
  const payload = {
    type: draft.type,
    v: 1,
    actor: who.id,
    ...(draft.imvu === undefined ? {} : { imvu: draft.imvu }),
    nonce: toBase64Url(randomBytes(16)),
    issuedAt: new Date().toISOString(),
    body: draft.body,
  };
  const bytes = utf8(canonicalize(payload));
  const sig = await sign(who.current, pae(COMMAND_PAYLOAD_TYPE, bytes));
  const envelope = { payload: toBase64(bytes), payloadType: COMMAND_PAYLOAD_TYPE, signatures: [{ keyid: `${who.id}#${who.seq}`, sig: toBase64(sig) }] };
  return { json: JSON.stringify(envelope), digest: await sha256Hex(bytes) };
}

function isReceipt(r: unknown): r is Receipt {
  const o = r as Partial<Receipt> | undefined;
  return (
    typeof o === "object" && o !== null && typeof o.index === "string" && typeof o.leafHash === "string" &&
    (o.outcome === "applied" || o.outcome === "denied") && Array.isArray(o.gates) && typeof o.treeSize === "string" &&
    typeof o.checkpoint === "string" && Array.isArray(o.inclusionProof) && typeof o.digest === "string"
  );
}

/** Signs and submits a command; a receipt (applied or denied) is stored before it is returned. */
export async function submit(who: StoredIdentity, draft: Draft): Promise<Submitted> {
  const signed = await signCommand(who, draft);
  const r = await call("POST", "/v1/commands", { body: signed.json });
  const receipt = (r.json as { receipt?: unknown } | undefined)?.receipt;
  if (isReceipt(receipt)) {
    await addReceipt({ identity: who.id, type: draft.type, ...(draft.imvu === undefined ? {} : { imvu: draft.imvu }), at: new Date().toISOString(), receipt });
    return { kind: "receipt", receipt, status: r.status };
  }
  const e = errorOf(r.status, r.json);
  return { kind: "rejected", code: e.code, message: e.message, status: r.status };
}

const tokens = new Map<string, { token: string; until: number }>();

/** A bearer token for the identity's reads (a signed challenge, cached until shortly before expiry). */
export async function tokenFor(who: StoredIdentity): Promise<string> {
  const cached = tokens.get(who.id);
  if (cached && cached.until > Date.now()) return cached.token;
  const ch = await getPublic<{ challenge: string; prefix: string }>("/v1/auth/challenge");
  const sig = await sign(who.current, utf8(ch.prefix + ch.challenge));
  const r = await call("POST", "/v1/auth/token", { body: JSON.stringify({ identity: who.id, challenge: ch.challenge, signature: toBase64(sig) }) });
  if (r.status !== 200) throw errorOf(r.status, r.json);
  const t = r.json as { token: string; expiresInSec: number };
  tokens.set(who.id, { token: t.token, until: Date.now() + Math.max(0, t.expiresInSec - 30) * 1000 });
  return t.token;
}

/** An authenticated GET as the identity (gate 16 filters what it sees). */
export async function getAs<T>(who: StoredIdentity, path: string): Promise<T> {
  const r = await call("GET", path, { token: await tokenFor(who) });
  if (r.status !== 200) throw errorOf(r.status, r.json);
  return r.json as T;
}

/** Whether the platform knows the identity (GET /v1/identities/:id). */
export async function isRegistered(id: string): Promise<boolean> {
  const r = await call("GET", `/v1/identities/${encodeURIComponent(id)}`);
  if (r.status === 200) return true;
  if (r.status === 404) return false;
  throw errorOf(r.status, r.json);
}

/** Registers the identity by its signed inception (`identity.inception`, no gates but 1, 11, 17). */
export async function register(who: StoredIdentity): Promise<Submitted> {
  const inception = who.kel[0];
  if (inception === undefined) throw new Error("the identity has no inception event");
  return submit(who, { type: "identity.inception", body: { inception: inception as Record<string, unknown> } });
}
