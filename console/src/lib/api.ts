/**
 * Talking to the Nexus API from the page: commands are built and signed here (JCS payload
 * `{type, v:1, actor, imvu?, nonce, issuedAt, body}` in a DSSE envelope, keyid `<id>#<seq>`,
 * src/core/pipeline/sign.ts), reads carry a bearer token obtained by signing a challenge. Every
 * receipt that comes back is kept in IndexedDB for the Trust page to verify.
 */
import { sha256Hex, toBase64, toBase64Url, randomBytes, utf8 } from "./bytes.ts";
import { addReceipt, type Receipt, type StoredIdentity } from "./db.ts";
import { signRequest } from "./httpsig.ts";
import { pae, sign } from "./identity.ts";
import { canonicalize } from "./jcs.ts";

/** The DSSE payload type of commands. */
export const COMMAND_PAYLOAD_TYPE = "application/vnd.nexus.command+json";
/** Time limit of one request. */
export const API_TIMEOUT_MS = 30_000;
/** Time limit of one source upload (up to 512 MiB). */
export const UPLOAD_TIMEOUT_MS = 600_000;

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

async function call(method: string, path: string, init: { body?: string; token?: string; timeoutMs?: number } = {}): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(path, { method, headers, ...(init.body === undefined ? {} : { body: init.body }), signal: AbortSignal.timeout(init.timeoutMs ?? API_TIMEOUT_MS) });
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

/**
 * A POST answered with 200, 201 or 202 and JSON, as `who` when given (a bearer token), else
 * anonymously; errors keep the server's code. E.g. POST /v1/audit, which may run for minutes.
 */
export async function postMaybeAs<T>(who: StoredIdentity | undefined, path: string, body: unknown, timeoutMs = API_TIMEOUT_MS): Promise<T> {
  const r = await call("POST", path, { body: JSON.stringify(body), timeoutMs, ...(who === undefined ? {} : { token: await tokenFor(who) }) });
  if (r.status !== 200 && r.status !== 201 && r.status !== 202) throw errorOf(r.status, r.json);
  return r.json as T;
}

/** A public GET that may answer 404: undefined then (e.g. GET /v1/audit/latest before any audit ran). */
export async function getPublicOr404<T>(path: string): Promise<T | undefined> {
  const r = await call("GET", path);
  if (r.status === 404) return undefined;
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

/** What the API says of an uploaded source. */
export interface UploadedSource {
  readonly imvu: string;
  readonly sha256: string;
  readonly sizeBytes: number;
  /** The same bytes were there already (HTTP 200 rather than 201). */
  readonly existed: boolean;
}

/**
 * Uploads a packed directory to PUT /v1/compute/imvus/<imvu>/sources/<sha256>, signed like the
 * CLI's upload (RFC 9421 over @method and @target-uri): the API stores the bytes only under the
 * SHA-256 they hash to, in the IMVU's own area (the owner's or a delegate's request only).
 */
export async function uploadSource(who: StoredIdentity, imvu: string, tar: { blob: Blob; sha256: string }): Promise<UploadedSource> {
  if (!/^[0-9a-f]{64}$/.test(tar.sha256)) throw new ApiError("CONSOLE_BAD_INPUT", "a lower-case hex SHA-256", 0, undefined);
  const path = `/v1/compute/imvus/${encodeURIComponent(imvu)}/sources/${tar.sha256}`;
  const sig = await signRequest(who, "PUT", new URL(path, location.origin).href);
  const res = await fetch(path, {
    method: "PUT",
    headers: { accept: "application/json", "content-type": "application/x-tar", ...sig },
    body: tar.blob,
    signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError("CONSOLE_BAD_RESPONSE", `PUT ${path}: HTTP ${res.status}, not JSON`, res.status, text);
  }
  if (res.status !== 200 && res.status !== 201) throw errorOf(res.status, json);
  const r = json as { imvu: string; sha256: string; sizeBytes: number };
  if (r.sha256 !== tar.sha256) throw new ApiError("CONSOLE_BAD_RESPONSE", `the API stored ${String(r.sha256)}, not ${tar.sha256}`, res.status, json);
  return { imvu: r.imvu, sha256: r.sha256, sizeBytes: r.sizeBytes, existed: res.status === 200 };
}
