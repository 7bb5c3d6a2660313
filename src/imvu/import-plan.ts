/**
 * The import of a verified exit bundle on another installation, as the list of signed commands
 * the owner submits there (docs/exit.md, "Import"), computed from the bundle alone (pure but for
 * reading its files):
 *   imvu.create (name, jurisdiction, class, envelope of the bundle) → imvu.import (the origin's
 *   verifier key, signed checkpoint and manifest digest; gate 13 checks the checkpoint's
 *   signature) → dns.rrset.set for every RRset of the base zone the IMVU owns (not the apex SOA
 *   and NS, not the apex A/AAAA/MX that point at the hosting platform, not the DKIM keys the
 *   mail service publishes itself) → mail.mailbox.add per mailbox with the original verifier's
 *   commitment (same password), whose Maildir is then uploaded.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBase64, parseDsse, sha256Hex } from "../core/crypto/index.ts";
import type { RData } from "../core/dns/rdata.ts";
import type { CommandDraft } from "../core/pipeline/sign.ts";
import type { ImvuRecord } from "../core/pipeline/state.ts";
import { parseZoneFile } from "../services/dns/zonefile.ts";
import { commitment } from "../services/mail/directory.ts";
import { ExitManifestSchema, MANIFEST_FILE, PATHS, type ExitManifest } from "./bundle-layout.ts";

/** One mailbox to re-create. */
export interface MailboxImport {
  readonly address: string;
  /** The bundle's Maildir directory of the mailbox. */
  readonly maildir: string;
  readonly messages: number;
  readonly draft: CommandDraft;
  /** The original verifier (from the decrypted secrets), handed to the new secret store. */
  readonly verifier: string;
}

/** The commands of an import. */
export interface ImportPlan {
  readonly imvu: string;
  readonly manifest: ExitManifest;
  readonly create: CommandDraft;
  readonly record: CommandDraft;
  readonly rrsets: readonly CommandDraft[];
  readonly mailboxes: readonly MailboxImport[];
  /** What is not re-created, and why. */
  readonly skipped: readonly string[];
}

/** The manifest of a bundle and the SHA-256 of its payload. */
export function readManifest(dir: string): { manifest: ExitManifest; digest: string } {
  const env = parseDsse(readFileSync(join(dir, MANIFEST_FILE), "utf8"));
  const payload = fromBase64(env.payload) ?? new Uint8Array();
  return { manifest: ExitManifestSchema.parse(JSON.parse(Buffer.from(payload).toString("utf8"))), digest: sha256Hex(payload) };
}

function rebase(name: string, from: string, to: string): string {
  return name === from ? to : name.endsWith(`.${from}`) ? `${name.slice(0, -from.length)}${to}` : name;
}

/** True for RRsets the hosting platform manages (they follow the new platform's defaults instead). */
function platformManaged(name: string, type: string, origin: string): boolean {
  if (name === origin && ["NS", "A", "AAAA", "MX"].includes(type)) return true;
  return name.includes("._domainkey.");
}

/** The import plan of the bundle in `dir` as IMVU `name` under `baseDomain` (secrets already decrypted). */
export function importPlan(dir: string, opts: { name: string; baseDomain: string; verifiers: Readonly<Record<string, string>> }): ImportPlan {
  const { manifest, digest } = readManifest(dir);
  const rec = JSON.parse(readFileSync(join(dir, PATHS.imvu), "utf8")) as ImvuRecord;
  const name = opts.name;
  const newOrigin = `${name}.${opts.baseDomain.replace(/\.$/, "")}.`;
  const skipped: string[] = [];
  const create: CommandDraft = { type: "imvu.create", imvu: name, body: { name, jurisdiction: rec.jurisdiction, class: rec.class, envelope: rec.envelope } };
  const record: CommandDraft = {
    type: "imvu.import",
    imvu: name,
    body: { originImvu: manifest.imvu, verifierKey: manifest.platform.verifierKey, checkpoint: readFileSync(join(dir, PATHS.checkpoint), "utf8"), manifest: digest },
  };
  const rrsets: CommandDraft[] = [];
  for (const z of manifest.inventory.zones) {
    if (z.kind !== "base") {
      skipped.push(`zone ${z.origin}: a custom domain is claimed and proven again on the new installation (nexus domain claim)`);
      continue;
    }
    const zone = parseZoneFile(readFileSync(join(dir, z.file), "utf8"), { origin: z.origin }).zone;
    const sets = new Map<string, { name: string; type: string; ttl: number; values: RData[] }>();
    for (const r of zone.records) {
      const owner = rebase(String(r.name), z.origin, newOrigin);
      if (platformManaged(owner, r.data.type, newOrigin)) continue;
      const key = `${owner} ${r.data.type}`;
      const s = sets.get(key) ?? { name: owner, type: r.data.type, ttl: r.ttl ?? 3600, values: [] };
      s.values.push(r.data);
      sets.set(key, s);
    }
    for (const s of sets.values()) rrsets.push({ type: "dns.rrset.set", imvu: name, body: { name: s.name, type: s.type, ttl: s.ttl, values: s.values } });
  }
  const mailboxes: MailboxImport[] = [];
  const oldDomain = manifest.inventory.zones.find((z) => z.kind === "base")?.origin.replace(/\.$/, "");
  for (const m of manifest.inventory.mailboxes) {
    const verifier = opts.verifiers[m.address];
    if (verifier === undefined) {
      skipped.push(`mailbox ${m.address}: no verifier in the secrets`);
      continue;
    }
    const at = m.address.lastIndexOf("@");
    const domain = m.address.slice(at + 1);
    const address = oldDomain !== undefined && domain === oldDomain ? `${m.address.slice(0, at)}@${newOrigin.slice(0, -1)}` : m.address;
    mailboxes.push({ address, maildir: m.maildir, messages: m.messages, verifier, draft: { type: "mail.mailbox.add", imvu: name, body: { address, verifierCommitment: commitment(verifier) } } });
  }
  if (manifest.inventory.workloads.length > 0) skipped.push(`workloads ${manifest.inventory.workloads.join(", ")}: redeploy from compute/workloads.json (compute.workload.deploy); the volume is compute/volume.tar`);
  if (manifest.inventory.routes.length > 0) skipped.push(`routes ${manifest.inventory.routes.join(", ")}: re-add after the workloads (network/routes.json)`);
  return { imvu: name, manifest, create, record, rrsets, mailboxes, skipped };
}
