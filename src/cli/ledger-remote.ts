/**
 * The CLI's ledger client for `--api URL`: fetches checkpoints, entries and proofs from a running
 * API and verifies everything locally against the signed checkpoint (the server's word is never
 * taken: roots it names are bound to the signed root by consistency proofs, leaves are hashed
 * here). Every response is hostile input: bounded in size and time, and schema-checked.
 */
import { z } from "zod";
import { bytesEqual, fromBase64 } from "../core/crypto/bytes.ts";
import { commonErrors } from "../core/common-errors.ts";
import { NexusError } from "../core/errors.ts";
import { ledgerLogErrors } from "../core/ledger/ledger-errors.ts";
import { appendLeaves, type CompactRange, emptyRange, leafHash, rangeRoot, verifyConsistency, verifyInclusion } from "../core/ledger/merkle.ts";
import { type Checkpoint, openNote, parseCheckpoint } from "../core/ledger/note.ts";

/** Time limit of one request. */
export const REMOTE_TIMEOUT_MS = 30_000;
/** Largest response body read. */
export const REMOTE_BODY_BYTES_MAX = 64 * 1024 * 1024;
/** Entries asked for per page while verifying. */
export const REMOTE_PAGE_ENTRIES = 1000;

const b64 = z.string().transform((s, ctx) => {
  const b = fromBase64(s);
  if (b === undefined) {
    ctx.addIssue({ code: "custom", message: "not base64" });
    return z.NEVER;
  }
  return b;
});
const dec = z.string().regex(/^(0|[1-9][0-9]{0,19})$/).transform(BigInt);
const hash = b64.refine((b) => b.length === 32, "a 32-byte hash");
const entrySchema = z.object({ index: dec, leafHash: hash, entry: b64 });
const schemas = {
  checkpoint: z.object({ origin: z.string(), size: dec, rootHash: hash, note: z.string().max(1_048_576) }),
  entry: entrySchema,
  entries: z.object({ entries: z.array(entrySchema).max(REMOTE_PAGE_ENTRIES), size: dec }),
  inclusion: z.object({ index: dec, size: dec, leafHash: hash, rootHash: hash, proof: z.array(hash).max(128) }),
  consistency: z.object({ from: dec, to: dec, fromRoot: hash, toRoot: hash, proof: z.array(hash).max(128) }),
};
const errorBody = z.object({ error: z.object({ code: z.string().max(100), message: z.string().max(2000) }) });

const invalid = (detail: string): NexusError => ledgerLogErrors.make("LEDGER_API_INVALID_RESPONSE", detail);

/** A verified checkpoint from the server. */
export interface RemoteCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: string;
}

/** What a remote full verification found. */
export interface RemoteVerifyReport {
  readonly ok: boolean;
  readonly size: bigint;
  readonly entriesChecked: bigint;
  readonly firstBadIndex?: bigint;
  readonly problem?: string;
}

async function readBody(res: Response): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > REMOTE_BODY_BYTES_MAX) throw invalid("response too large");
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > REMOTE_BODY_BYTES_MAX) {
      await reader.cancel();
      throw invalid("response too large");
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A client of one API base URL that trusts only what it can verify with `verifierKey`. */
export class RemoteLedger {
  private readonly base: URL;
  private readonly verifierKey: string;

  constructor(base: string, verifierKey: string) {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw commonErrors.make("INPUT_INVALID", "--api must be an http:// or https:// URL", { field: "api" });
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username !== "" || url.password !== "") {
      throw commonErrors.make("INPUT_INVALID", "--api must be an http:// or https:// URL without credentials", { field: "api" });
    }
    this.base = url;
    this.verifierKey = verifierKey;
  }

  private async get<K extends keyof typeof schemas>(kind: K, path: string, query: Record<string, bigint | number | undefined>): Promise<z.output<(typeof schemas)[K]>> {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v.toString());
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS), headers: { accept: "application/json" } });
    } catch (e) {
      throw ledgerLogErrors.make("LEDGER_API_UNREACHABLE", `${url.origin}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const text = await readBody(res);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw invalid(`${path}: not JSON (HTTP ${res.status})`);
    }
    if (!res.ok) {
      const e = errorBody.safeParse(json);
      const code = e.success ? e.data.error.code : "LEDGER_API_INVALID_RESPONSE";
      const message = e.success ? e.data.error.message : `HTTP ${res.status}`;
      // The server's refusal, relayed with its code: 4xx is our bad input, 5xx the server's trouble.
      throw new NexusError(code, { message: `the API answered ${res.status}: ${message}`, http: res.status, exit: res.status < 500 ? 2 : 3 });
    }
    const r = schemas[kind].safeParse(json);
    if (!r.success) throw invalid(`${path}: ${r.error.issues[0]?.message ?? "malformed"}`);
    return r.data as z.output<(typeof schemas)[K]>;
  }

  /** The latest checkpoint, its signature verified with the verifier key. */
  async checkpoint(): Promise<RemoteCheckpoint> {
    const r = await this.get("checkpoint", "/v1/ledger/checkpoint", {});
    const checkpoint = parseCheckpoint(openNote(r.note, [this.verifierKey]).text);
    if (checkpoint.size !== r.size || !bytesEqual(checkpoint.root, r.rootHash) || checkpoint.origin !== r.origin) {
      throw invalid("the JSON fields differ from the signed note");
    }
    return { checkpoint, note: r.note };
  }

  /** The root of the tree of `size`, proven consistent with the signed checkpoint. */
  async provenRoot(size: bigint, signed: Checkpoint): Promise<Uint8Array> {
    if (size === signed.size) return signed.root;
    const c = await this.get("consistency", "/v1/ledger/proofs/consistency", { from: size, to: signed.size });
    if (c.from !== size || c.to !== signed.size) throw invalid("consistency proof for other sizes");
    if (!verifyConsistency(size, signed.size, c.fromRoot, signed.root, c.proof)) {
      throw ledgerLogErrors.make("LEDGER_API_INVALID_RESPONSE", `the root served for size ${size} is not consistent with the signed checkpoint`);
    }
    return c.fromRoot;
  }

  /** Entry `index`, its leaf hashed here. */
  async entry(index: bigint): Promise<{ index: bigint; entry: Uint8Array; leafHash: Uint8Array }> {
    const e = await this.get("entry", `/v1/ledger/entries/${index}`, {});
    if (e.index !== index) throw invalid("entry for another index");
    return { index, entry: e.entry, leafHash: leafHash(e.entry) };
  }

  /** The inclusion proof of `index` in the tree of `size`, verified against the signed checkpoint. */
  async proveInclusion(index: bigint, size: bigint | undefined, signed: Checkpoint) {
    const s = size ?? signed.size;
    const { entry, leafHash: leaf } = await this.entry(index);
    const p = await this.get("inclusion", "/v1/ledger/proofs/inclusion", { index, size: s });
    if (p.index !== index || p.size !== s) throw invalid("inclusion proof for another index or size");
    const root = await this.provenRoot(s, signed);
    return { index, size: s, entry, leafHash: leaf, rootHash: root, proof: p.proof, verified: verifyInclusion(leaf, index, s, p.proof, root) };
  }

  /** The consistency proof between `from` and `to`, the newer root bound to the signed checkpoint. */
  async proveConsistency(from: bigint, to: bigint | undefined, signed: Checkpoint) {
    const t = to ?? signed.size;
    const c = await this.get("consistency", "/v1/ledger/proofs/consistency", { from, to: t });
    if (c.from !== from || c.to !== t) throw invalid("consistency proof for other sizes");
    const toRoot = await this.provenRoot(t, signed);
    const verified = bytesEqual(toRoot, c.toRoot) && verifyConsistency(from, t, c.fromRoot, toRoot, c.proof);
    return { from, to: t, fromRoot: c.fromRoot, toRoot, proof: c.proof, verified };
  }

  /** Reads every entry, recomputes the tree and checks it against the signed checkpoint, page by page. */
  async verifyAll(signed: Checkpoint): Promise<RemoteVerifyReport> {
    let range: CompactRange = emptyRange();
    while (range.size < signed.size) {
      const page = await this.get("entries", "/v1/ledger/entries", { from: range.size, limit: REMOTE_PAGE_ENTRIES });
      const want = signed.size - range.size;
      const rows = page.entries.slice(0, Number(want < BigInt(REMOTE_PAGE_ENTRIES) ? want : BigInt(REMOTE_PAGE_ENTRIES)));
      if (rows.length === 0) return this.bad(range.size, signed, `the API served no entry at ${range.size}`);
      const leaves: Uint8Array[] = [];
      for (const [i, r] of rows.entries()) {
        const at = range.size + BigInt(i);
        if (r.index !== at) return this.bad(at, signed, `the API served entry ${r.index} for index ${at}`);
        leaves.push(leafHash(r.entry));
      }
      const next = appendLeaves(range, leaves).range;
      if (!bytesEqual(rangeRoot(next), await this.provenRoot(next.size, signed))) {
        return this.locate(range, leaves, signed);
      }
      range = next;
    }
    return { ok: true, size: signed.size, entriesChecked: range.size };
  }

  private bad(index: bigint, signed: Checkpoint, problem: string): RemoteVerifyReport {
    return { ok: false, size: signed.size, entriesChecked: index, firstBadIndex: index, problem };
  }

  /** Bisects a page whose prefix root disagrees with the signed tree: the first bad entry. */
  private async locate(start: CompactRange, leaves: readonly Uint8Array[], signed: Checkpoint): Promise<RemoteVerifyReport> {
    let good = 0; // leaves known good (prefix matches)
    let badAt = leaves.length; // a prefix length known bad
    while (badAt - good > 1) {
      const mid = (good + badAt) >> 1;
      const local = rangeRoot(appendLeaves(start, leaves.slice(0, mid)).range);
      const proven = await this.provenRoot(start.size + BigInt(mid), signed);
      if (bytesEqual(local, proven)) good = mid;
      else badAt = mid;
    }
    const index = start.size + BigInt(good);
    return this.bad(index, signed, `entry ${index} served by the API is not the entry in the signed tree`);
  }
}
