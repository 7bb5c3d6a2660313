/**
 * HTTP Message Signatures (RFC 9421) with Ed25519 (§3.3.6), for requests: signing and verifying,
 * with the derived components the API and the gateway need (§2.2) and header fields (§2.1).
 * Only the RFC 8941 structured-field subset the two headers use is parsed, with bounded sizes.
 */
import { fromBase64, toBase64, utf8 } from "./bytes.ts";
import { ed25519Sign, ed25519Verify } from "./ed25519.ts";
import type { KeyObject } from "node:crypto";

/** Longest Signature-Input / Signature header accepted. */
export const SIGNATURE_HEADER_CHARS_MAX = 4096;
/** Most components one signature may cover. */
export const COMPONENTS_MAX = 32;

/** A request as the signature sees it. */
export interface SignableRequest {
  readonly method: string;
  /** Absolute URL (scheme, authority, path, query). */
  readonly url: string;
  /** Header fields, names in any case; repeated fields already joined with ", ". */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** Signature parameters (§2.3). */
export interface SignatureParams {
  readonly created?: number;
  readonly expires?: number;
  readonly keyid?: string;
  readonly alg?: string;
  readonly nonce?: string;
  readonly tag?: string;
}

type Item = { readonly value: string; readonly isString: boolean };

/** The value of one covered component, or undefined when the request lacks it. */
function componentValue(req: SignableRequest, name: string): string | undefined {
  let u: URL;
  try {
    u = new URL(req.url);
  } catch {
    return undefined;
  }
  switch (name) {
    case "@method":
      return req.method.toUpperCase();
    case "@target-uri":
      return u.href;
    case "@authority":
      return u.host.toLowerCase();
    case "@scheme":
      return u.protocol.replace(/:$/, "").toLowerCase();
    case "@request-target":
      return `${u.pathname}${u.search}`;
    case "@path":
      return u.pathname;
    case "@query":
      return u.search === "" ? "?" : u.search;
    default: {
      if (name.startsWith("@")) return undefined;
      const key = Object.keys(req.headers).find((k) => k.toLowerCase() === name);
      const v = key === undefined ? undefined : req.headers[key];
      return v === undefined ? undefined : v.trim().replace(/\s*\r?\n\s*/g, " ");
    }
  }
}

/** Serialises the parameter list of @signature-params (§2.3), in the given order. */
function serializeParams(components: readonly string[], p: SignatureParams): string {
  const parts = [`(${components.map((c) => `"${c}"`).join(" ")})`];
  if (p.created !== undefined) parts.push(`;created=${p.created}`);
  if (p.expires !== undefined) parts.push(`;expires=${p.expires}`);
  if (p.keyid !== undefined) parts.push(`;keyid="${p.keyid}"`);
  if (p.alg !== undefined) parts.push(`;alg="${p.alg}"`);
  if (p.nonce !== undefined) parts.push(`;nonce="${p.nonce}"`);
  if (p.tag !== undefined) parts.push(`;tag="${p.tag}"`);
  return parts.join("");
}

/** The signature base (§2.5), or undefined when a covered component is missing. */
export function signatureBase(req: SignableRequest, components: readonly string[], paramsText: string): string | undefined {
  const lines: string[] = [];
  for (const c of components) {
    const v = componentValue(req, c);
    if (v === undefined) return undefined;
    lines.push(`"${c}": ${v}`);
  }
  lines.push(`"@signature-params": ${paramsText}`);
  return lines.join("\n");
}

/** Signs a request; returns the Signature-Input and Signature header values. */
export function signRequest(
  req: SignableRequest,
  opts: { readonly label?: string; readonly components: readonly string[]; readonly params: SignatureParams; readonly privateKey: KeyObject },
): { signatureInput: string; signature: string } {
  const label = opts.label ?? "sig1";
  const paramsText = serializeParams(opts.components, opts.params);
  const base = signatureBase(req, opts.components, paramsText);
  if (base === undefined) throw new RangeError("a covered component is missing from the request");
  const sig = ed25519Sign(opts.privateKey, utf8(base));
  return { signatureInput: `${label}=${paramsText}`, signature: `${label}=:${toBase64(sig)}:` };
}

/** Parsed Signature-Input member: components, params, and the exact serialised text. */
interface InputMember {
  readonly components: string[];
  readonly params: Record<string, Item>;
  readonly text: string;
}

const TOKEN_KEY = /^[a-z*][a-z0-9_.*-]*/;

/** Parses `label=(...);params, label2=...` (RFC 8941 dictionary of inner lists), bounded. */
function parseSignatureInput(header: string): Map<string, InputMember> | undefined {
  const out = new Map<string, InputMember>();
  let s = header.trim();
  while (s.length > 0) {
    const key = TOKEN_KEY.exec(s)?.[0];
    if (!key || s[key.length] !== "=" || s[key.length + 1] !== "(") return undefined;
    s = s.slice(key.length + 1);
    const close = s.indexOf(")");
    if (close < 0) return undefined;
    const inner = s.slice(1, close).trim();
    const components = inner === "" ? [] : inner.split(/\s+/).map((c) => (/^"[a-z0-9@_.-]+"$/.test(c) ? c.slice(1, -1) : ""));
    if (components.some((c) => c === "") || components.length > COMPONENTS_MAX) return undefined;
    let rest = s.slice(close + 1);
    const params: Record<string, Item> = {};
    while (rest.startsWith(";")) {
      const m = /^;([a-z*][a-z0-9_.*-]*)=("((?:[^"\\]|\\.)*)"|-?[0-9]{1,15})/.exec(rest);
      if (!m || m[1] === undefined || m[2] === undefined) return undefined;
      params[m[1]] = m[3] !== undefined ? { value: m[3].replace(/\\(.)/g, "$1"), isString: true } : { value: m[2], isString: false };
      rest = rest.slice(m[0].length);
    }
    const text = s.slice(0, s.length - rest.length);
    out.set(key, { components, params, text });
    rest = rest.trimStart();
    if (rest.startsWith(",")) rest = rest.slice(1).trimStart();
    else if (rest.length > 0) return undefined;
    s = rest;
  }
  return out;
}

/** Parses `label=:base64:, ...` (RFC 8941 dictionary of byte sequences). */
function parseSignature(header: string): Map<string, Uint8Array> | undefined {
  const out = new Map<string, Uint8Array>();
  for (const part of header.split(",")) {
    const m = /^\s*([a-z*][a-z0-9_.*-]*)=:([A-Za-z0-9+/=]*):\s*$/.exec(part);
    if (!m || m[1] === undefined || m[2] === undefined) return undefined;
    const bytes = fromBase64(m[2]);
    if (!bytes) return undefined;
    out.set(m[1], bytes);
  }
  return out;
}

/** What a verifier demands. */
export interface VerifyPolicy {
  /** The public key for a keyid, or undefined when unknown. */
  readonly resolveKey: (keyid: string) => Uint8Array | undefined;
  /** Components every accepted signature must cover. */
  readonly required: readonly string[];
  /** Now, in seconds since the epoch. */
  readonly nowSec: number;
  /** Oldest `created` accepted, as an age in seconds; future skew allowed is the same. */
  readonly maxAgeSec: number;
}

/** The verification result. */
export type VerifyResult = { ok: true; keyid: string; label: string; params: SignatureParams } | { ok: false; reason: string };

/** Verifies the request's signatures; accepts when one of them verifies under the policy. */
export function verifyRequest(req: SignableRequest, policy: VerifyPolicy): VerifyResult {
  const inputHeader = componentValue(req, "signature-input");
  const sigHeader = componentValue(req, "signature");
  if (inputHeader === undefined || sigHeader === undefined) return { ok: false, reason: "no Signature-Input and Signature headers" };
  if (inputHeader.length > SIGNATURE_HEADER_CHARS_MAX || sigHeader.length > SIGNATURE_HEADER_CHARS_MAX) {
    return { ok: false, reason: "signature headers too long" };
  }
  const inputs = parseSignatureInput(inputHeader);
  const sigs = parseSignature(sigHeader);
  if (!inputs || !sigs) return { ok: false, reason: "malformed Signature-Input or Signature header" };
  let reason = "no signature label matches";
  for (const [label, member] of inputs) {
    const sig = sigs.get(label);
    if (!sig) continue;
    const r = verifyMember(req, label, member, sig, policy);
    if (r.ok) return r;
    reason = r.reason;
  }
  return { ok: false, reason };
}

function verifyMember(req: SignableRequest, label: string, m: InputMember, sig: Uint8Array, policy: VerifyPolicy): VerifyResult {
  const keyid = m.params["keyid"];
  if (!keyid?.isString) return { ok: false, reason: "keyid missing" };
  const alg = m.params["alg"];
  if (alg && alg.value !== "ed25519") return { ok: false, reason: `unsupported alg ${alg.value}` };
  const missing = policy.required.filter((c) => !m.components.includes(c));
  if (missing.length > 0) return { ok: false, reason: `signature must cover ${missing.join(", ")}` };
  const created = m.params["created"];
  if (!created || created.isString) return { ok: false, reason: "created missing" };
  const createdSec = Number(created.value);
  if (Math.abs(policy.nowSec - createdSec) > policy.maxAgeSec) return { ok: false, reason: "signature too old or from the future" };
  const expires = m.params["expires"];
  if (expires && !expires.isString && Number(expires.value) < policy.nowSec) return { ok: false, reason: "signature expired" };
  const key = policy.resolveKey(keyid.value);
  if (!key) return { ok: false, reason: `unknown keyid ${keyid.value}` };
  const base = signatureBase(req, m.components, m.text);
  if (base === undefined) return { ok: false, reason: "a covered component is missing from the request" };
  if (!ed25519Verify(key, utf8(base), sig)) return { ok: false, reason: "signature does not verify" };
  const params: SignatureParams = { keyid: keyid.value, created: createdSec, ...(expires ? { expires: Number(expires.value) } : {}) };
  return { ok: true, keyid: keyid.value, label, params };
}
