/**
 * Trust in the page: what the console checks itself, never taking the server's word.
 * - The platform's checkpoint verifier key is pinned in IndexedDB on first contact (or set by
 *   the user); a different key announced later is flagged.
 * - A receipt verifies when its checkpoint is signed by that key (C2SP signed note), its tree
 *   size is the checkpoint's, the ledger entry at its index hashes to its leaf hash (RFC 9162
 *   leaf) and carries the command of its digest, and its inclusion proof leads to the root.
 * - Every checkpoint is proven consistent (RFC 9162 §2.1.4) with the last one this browser saw:
 *   a later one by a proof from the last to it, an earlier one by a proof from it to the last.
 *   Only a consistent, newer checkpoint replaces the last one seen; anything else stays red.
 */
import { fromBase64, fromHex, fromUtf8, sha256Hex, toHex } from "./bytes.ts";
import { getMeta, setMeta, type Receipt, type SeenCheckpoint } from "./db.ts";
import { getPublic, platformInfo } from "./api.ts";
import { leafHash, verifyConsistency, verifyInclusion } from "./merkle.ts";
import { openCheckpoint, parseVerifierKey, type Checkpoint, type VerifierKey } from "./note.ts";

/** One check and its outcome. */
export interface Check {
  readonly label: string;
  readonly ok: boolean;
  readonly detail: string;
}

const META_VKEY = "verifierKey";
const META_CHECKPOINT = "checkpoint";

/** The pinned verifier key (pinned now from /v1/platform when none is). */
export async function pinnedVerifierKey(): Promise<{ key: VerifierKey; checks: Check[] }> {
  const checks: Check[] = [];
  let text = await getMeta<string>(META_VKEY);
  const announced = await platformInfo().then((p) => p.verifierKey, () => undefined);
  if (text === undefined) {
    if (announced === undefined) throw new Error("the platform did not announce a verifier key");
    text = announced;
    await setMeta(META_VKEY, text);
    checks.push({ label: "Verifier key", ok: true, detail: `pinned on first contact: ${text}` });
  } else if (announced !== undefined && announced !== text) {
    checks.push({ label: "Verifier key", ok: false, detail: `the platform now announces ${announced}, but this browser pinned ${text}` });
  } else {
    checks.push({ label: "Verifier key", ok: true, detail: `pinned: ${text}` });
  }
  return { key: await parseVerifierKey(text), checks };
}

/** Replaces the pinned verifier key (the user pastes the one `nexus up` printed). */
export async function pinVerifierKey(text: string): Promise<void> {
  await parseVerifierKey(text);
  await setMeta(META_VKEY, text);
}

/** The last checkpoint this browser saw. */
export function lastSeen(): Promise<SeenCheckpoint | undefined> {
  return getMeta<SeenCheckpoint>(META_CHECKPOINT);
}

const hexList = (l: readonly string[]): Uint8Array[] => l.map((h) => fromHex(h) ?? new Uint8Array());
const b64List = (l: readonly string[]): Uint8Array[] => l.map((h) => fromBase64(h) ?? new Uint8Array());

/**
 * Checks `cp` against the last checkpoint seen, fetching the consistency proof between them and
 * verifying it here; remembers `cp` when it is consistent and newer.
 */
export async function observe(cp: Checkpoint, note: string, vkey: VerifierKey): Promise<Check> {
  const last = await lastSeen();
  const remember = (): Promise<void> =>
    setMeta(META_CHECKPOINT, { verifierKey: vkey.text, size: cp.size.toString(), root: toHex(cp.root), note, seenAt: new Date().toISOString() } satisfies SeenCheckpoint);
  if (last === undefined || last.verifierKey !== vkey.text) {
    await remember();
    return { label: "Consistency", ok: true, detail: `first checkpoint seen by this browser (size ${cp.size}); remembered` };
  }
  const lastSize = BigInt(last.size);
  const lastRoot = fromHex(last.root) ?? new Uint8Array();
  if (cp.size === lastSize) {
    const same = toHex(cp.root) === last.root;
    return { label: "Consistency", ok: same, detail: same ? `same tree as the last seen (size ${cp.size})` : `TWO DIFFERENT ROOTS for tree size ${cp.size}: a forked log` };
  }
  const [from, to, fromRoot, toRoot] = cp.size > lastSize ? [lastSize, cp.size, lastRoot, cp.root] : [cp.size, lastSize, cp.root, lastRoot];
  let proof: Uint8Array[];
  try {
    const r = await getPublic<{ proof: string[] }>(`/v1/ledger/proofs/consistency?from=${from}&to=${to}`);
    proof = b64List(r.proof);
  } catch (e) {
    return { label: "Consistency", ok: false, detail: `no consistency proof from ${from} to ${to}: ${e instanceof Error ? e.message : String(e)}` };
  }
  const ok = await verifyConsistency(from, to, fromRoot, toRoot, proof);
  if (!ok) return { label: "Consistency", ok: false, detail: `the proof that tree ${to} extends tree ${from} DOES NOT VERIFY: the history shown is inconsistent` };
  if (cp.size > lastSize) await remember();
  return { label: "Consistency", ok: true, detail: `tree ${to} extends tree ${from} (proof of ${proof.length} hashes verified here)` };
}

/** Opens a checkpoint note with the pinned key (a check, never a throw). */
async function checkpointCheck(note: string, vkey: VerifierKey): Promise<{ check: Check; cp?: Checkpoint }> {
  try {
    const cp = await openCheckpoint(note, vkey);
    return { check: { label: "Checkpoint signature", ok: true, detail: `signed by ${vkey.name}: tree size ${cp.size}, root ${toHex(cp.root).slice(0, 16)}…` }, cp };
  } catch (e) {
    return { check: { label: "Checkpoint signature", ok: false, detail: e instanceof Error ? e.message : String(e) } };
  }
}

/** The ledger entry's own checks: its leaf hash, and the command digest and outcome inside it. */
async function entryChecks(receipt: Receipt): Promise<Check[]> {
  let bytes: Uint8Array | undefined;
  try {
    const e = await getPublic<{ entry: string }>(`/v1/ledger/entries/${receipt.index}`);
    bytes = fromBase64(e.entry);
  } catch (e) {
    return [{ label: "Ledger entry", ok: false, detail: `entry ${receipt.index} not served: ${e instanceof Error ? e.message : String(e)}` }];
  }
  if (bytes === undefined) return [{ label: "Ledger entry", ok: false, detail: "the entry is not base64" }];
  const leaf = toHex(await leafHash(bytes));
  const out: Check[] = [{ label: "Leaf hash", ok: leaf === receipt.leafHash, detail: leaf === receipt.leafHash ? `SHA-256(0x00 || entry ${receipt.index}) = ${leaf.slice(0, 16)}…` : `the entry hashes to ${leaf}, the receipt says ${receipt.leafHash}` }];
  try {
    const entry = JSON.parse(fromUtf8(bytes)) as { envelope?: { payload?: string }; outcome?: string };
    const payload = fromBase64(entry.envelope?.payload ?? "");
    const digest = payload === undefined ? "" : await sha256Hex(payload);
    const ok = digest === receipt.digest && entry.outcome === receipt.outcome;
    out.push({ label: "Command in the entry", ok, detail: ok ? `the entry holds the command of digest ${digest.slice(0, 16)}…, outcome ${entry.outcome}` : `the entry holds digest ${digest.slice(0, 16)}… outcome ${String(entry.outcome)}, the receipt says ${receipt.digest.slice(0, 16)}… ${receipt.outcome}` });
  } catch {
    out.push({ label: "Command in the entry", ok: false, detail: "the entry is not JSON" });
  }
  return out;
}

/** Verifies a receipt in the page (see the module comment); every check is reported. */
export async function verifyReceipt(receipt: Receipt): Promise<Check[]> {
  const { key, checks } = await pinnedVerifierKey();
  const { check, cp } = await checkpointCheck(receipt.checkpoint, key);
  checks.push(check);
  if (cp === undefined) return checks;
  checks.push({ label: "Tree size", ok: cp.size.toString() === receipt.treeSize, detail: `receipt ${receipt.treeSize}, checkpoint ${cp.size}` });
  checks.push(...(await entryChecks(receipt)));
  const leaf = fromHex(receipt.leafHash) ?? new Uint8Array();
  const included = await verifyInclusion(leaf, BigInt(receipt.index), cp.size, hexList(receipt.inclusionProof), cp.root);
  checks.push({
    label: "Inclusion proof",
    ok: included,
    detail: included ? `entry ${receipt.index} is in the signed tree of size ${cp.size} (${receipt.inclusionProof.length} hashes verified here)` : `entry ${receipt.index} is NOT in the signed tree: the proof does not lead to the root`,
  });
  if (checks.every((c) => c.ok)) checks.push(await observe(cp, receipt.checkpoint, key));
  return checks;
}

/** Fetches the latest checkpoint, verifies its signature and its consistency with the last one seen. */
export async function checkLatest(): Promise<{ checks: Check[]; cp?: Checkpoint; note?: string }> {
  const { key, checks } = await pinnedVerifierKey();
  const latest = await getPublic<{ note: string }>("/v1/ledger/checkpoint");
  const { check, cp } = await checkpointCheck(latest.note, key);
  checks.push(check);
  if (cp === undefined) return { checks };
  checks.push(await observe(cp, latest.note, key));
  return { checks, cp, note: latest.note };
}

/**
 * Verifies entries (bytes, index, hex inclusion proof) against one signed checkpoint, here: the
 * signature, the checkpoint's consistency with the last one seen, then each entry's inclusion.
 */
export async function verifyEntriesIn(entries: readonly { entry: Uint8Array; index: bigint; proof: readonly string[] }[], note: string): Promise<Check[]> {
  const { key, checks } = await pinnedVerifierKey();
  const { check, cp } = await checkpointCheck(note, key);
  checks.push(check);
  if (cp === undefined) return checks;
  checks.push(await observe(cp, note, key));
  for (const e of entries) {
    const ok = await verifyInclusion(await leafHash(e.entry), e.index, cp.size, hexList(e.proof), cp.root);
    checks.push({ label: `Entry ${e.index}`, ok, detail: ok ? `included in the signed tree of size ${cp.size}` : `NOT included in the signed tree of size ${cp.size}` });
  }
  return checks;
}

/** Verifies a base64 inclusion proof as GET /v1/ledger/proofs/inclusion serves it, against a checkpoint. */
export async function verifyServedInclusion(entry: Uint8Array, index: bigint, proofB64: readonly string[], cp: Checkpoint): Promise<boolean> {
  return verifyInclusion(await leafHash(entry), index, cp.size, b64List(proofB64), cp.root);
}
