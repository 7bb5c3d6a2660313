/**
 * The import of a verified exit bundle on another installation, as the list of signed commands
 * the owner submits there (docs/exit.md, "Import"), computed from the bundle alone (pure but for
 * reading its files):
 *   imvu.create (name, jurisdiction, class, envelope of the bundle) → imvu.import (the origin's
 *   verifier key, signed checkpoint and manifest digest; gate 13 checks the checkpoint's
 *   signature) → dns.rrset.set for every RRset of the base zone the IMVU owns (not the apex SOA
 *   and NS, not the apex A/AAAA/MX that point at the hosting platform, not the DKIM keys the
 *   mail service publishes itself) → mail.mailbox.add per mailbox with the original verifier's
 *   commitment (same password), whose Maildir is then uploaded → the volume's tar uploaded into
 *   the new volume (before any workload) → compute.workload.deploy per workload with the same
 *   spec, its uploaded source first (compute.workload.stop after it for one that was stopped) →
 *   net.route.add per route of the base domain (hosts rebased) → net.grant.add per grant.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBase64, parseDsse, sha256Hex } from "../core/crypto/index.ts";
import type { RData } from "../core/dns/rdata.ts";
import type { CommandDraft } from "../core/pipeline/sign.ts";
import type { ComputeWorkloadRecord } from "../core/pipeline/compute-state.ts";
import type { NetGrantRecord, NetRouteRecord } from "../core/pipeline/net-state.ts";
import type { ImvuRecord } from "../core/pipeline/state.ts";
import { parseZoneFile } from "../services/dns/zonefile.ts";
import { commitment } from "../services/mail/directory.ts";
import { EXIT_MANIFEST_BYTES_MAX, ExitManifestSchema, MANIFEST_FILE, PATHS, type ExitManifest } from "./bundle-layout.ts";

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

/** One workload to re-create: its source tar (in the bundle) to upload first, then the commands. */
export interface WorkloadImport {
  readonly name: string;
  /** The bundle file of its uploaded source (rootfs/app), or undefined for an image. */
  readonly source?: { readonly sha256: string; readonly file: string };
  readonly deploy: CommandDraft;
  /** compute.workload.stop when it was stopped at the origin. */
  readonly stop?: CommandDraft;
}

/** The commands of an import. */
export interface ImportPlan {
  readonly imvu: string;
  readonly manifest: ExitManifest;
  readonly create: CommandDraft;
  readonly record: CommandDraft;
  readonly rrsets: readonly CommandDraft[];
  readonly mailboxes: readonly MailboxImport[];
  /** The volume's tar to upload (before the workloads), or undefined when the IMVU had none. */
  readonly volume?: { readonly sha256: string; readonly file: string };
  readonly workloads: readonly WorkloadImport[];
  readonly routes: readonly CommandDraft[];
  readonly grants: readonly CommandDraft[];
  /** What is not re-created, and why. */
  readonly skipped: readonly string[];
}

/** The manifest of a bundle and the SHA-256 of its payload. */
export function readManifest(dir: string): { manifest: ExitManifest; digest: string } {
  const env = parseDsse(readFileSync(join(dir, MANIFEST_FILE), "utf8"), { payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
  const payload = fromBase64(env.payload) ?? new Uint8Array();
  return { manifest: ExitManifestSchema.parse(JSON.parse(Buffer.from(payload).toString("utf8"))), digest: sha256Hex(payload) };
}

function readJson<T>(dir: string, rel: string): T {
  return JSON.parse(readFileSync(join(dir, rel), "utf8")) as T;
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
  const workloads: WorkloadImport[] = [];
  for (const w of readJson<ComputeWorkloadRecord[]>(dir, PATHS.workloads)) {
    if (w.removingIndex !== undefined) {
      skipped.push(`workload ${w.name}: it was being removed at the origin`);
      continue;
    }
    const source = w.source;
    const src = source.kind === "image" ? undefined : manifest.inventory.sources.find((x) => x.sha256 === source.sha256);
    if (source.kind !== "image" && src === undefined) {
      skipped.push(`workload ${w.name}: its source ${source.sha256} is not in the bundle`);
      continue;
    }
    const body = {
      name: w.name,
      source: w.source,
      ...(w.cmd === undefined ? {} : { cmd: w.cmd }),
      ...(w.port === undefined ? {} : { port: w.port }),
      ...(w.env === undefined ? {} : { env: w.env }),
      ...(w.resources === undefined ? {} : { resources: w.resources }),
    };
    workloads.push({
      name: w.name,
      ...(src === undefined ? {} : { source: { sha256: src.sha256, file: src.file } }),
      deploy: { type: "compute.workload.deploy", imvu: name, body },
      ...(w.state === "stopped" ? { stop: { type: "compute.workload.stop", imvu: name, body: { name: w.name } } } : {}),
    });
  }
  const routes: CommandDraft[] = [];
  const oldOrigin = manifest.inventory.zones.find((z) => z.kind === "base")?.origin;
  const kept = new Set<string>();
  for (const r of readJson<NetRouteRecord[]>(dir, PATHS.routes)) {
    const fq = `${r.host}.`;
    if (oldOrigin === undefined || (fq !== oldOrigin && !fq.endsWith(`.${oldOrigin}`))) {
      skipped.push(`route ${r.route} (${r.host}): its host is in a custom domain, claimed and proven again here first`);
      continue;
    }
    const host = rebase(fq, oldOrigin, newOrigin).slice(0, -1);
    if (!workloads.some((w) => w.name === r.upstream.workload)) {
      skipped.push(`route ${r.route}: its workload ${r.upstream.workload} is not re-created`);
      continue;
    }
    kept.add(r.route);
    routes.push({
      type: "net.route.add",
      imvu: name,
      body: { route: r.route, host, pathPrefix: r.pathPrefix, kind: r.kind, ...(r.allowRegions === undefined ? {} : { allowRegions: r.allowRegions }), upstream: r.upstream },
    });
  }
  const grants = readJson<NetGrantRecord[]>(dir, PATHS.grants)
    .filter((g) => kept.has(g.route))
    .map((g): CommandDraft => ({ type: "net.grant.add", imvu: name, body: { route: g.route, identity: g.identity } }));
  const volume = manifest.inventory.volume === null ? undefined : { sha256: manifest.inventory.volume.sha256, file: manifest.inventory.volume.file };
  return { imvu: name, manifest, create, record, rrsets, mailboxes, ...(volume === undefined ? {} : { volume }), workloads, routes, grants, skipped };
}
