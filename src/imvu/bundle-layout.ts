/**
 * The exit bundle's layout and its manifest (docs/exit.md). The manifest is the JCS (RFC 8785) of
 * `ExitManifest`, carried as the payload of a DSSE envelope in `manifest.json`: the first
 * signature is the platform identity's, the second the owner's countersignature over the same
 * payload. Every other file of the bundle is listed in `files` with its SHA-256 and size, so a
 * missing, added or altered byte is found by `verifyBundle` without any server.
 */
import { z } from "zod";

/** The format tag of the manifest. */
export const EXIT_FORMAT = "nexus-exit-bundle/1";
/** The DSSE payload type of the manifest envelope. */
export const EXIT_MANIFEST_PAYLOAD_TYPE = "application/vnd.nexus.exit-manifest+json";
/** The manifest's file name at the bundle root. */
export const MANIFEST_FILE = "manifest.json";
/** Most files one bundle lists. */
export const BUNDLE_FILES_MAX = 2_000_000;
/** Most ledger entries one bundle carries. */
export const BUNDLE_ENTRIES_MAX = 1_000_000;
/** Most revenue periods (months) one bundle carries. */
export const BUNDLE_PERIODS_MAX = 1200;
/**
 * Largest manifest payload: the JCS of the inventory and every file's digest, ~200 bytes a file,
 * so about 240,000 files (mails count one each in Maildir). Its base64 envelope stays under the
 * strict JSON parser's 64 MiB bound.
 */
export const EXIT_MANIFEST_BYTES_MAX = 47 * 1024 * 1024;
/** Largest JSON file of the bundle read whole (entries, statements, lists). */
export const BUNDLE_JSON_BYTES_MAX = 64 * 1024 * 1024;

/** Fixed paths of the bundle (relative, POSIX). */
export const PATHS = {
  imvu: "imvu.json",
  platform: "platform.json",
  ownerKel: "identity/owner-kel.json",
  platformKel: "identity/platform-kel.json",
  checkpoint: "ledger/checkpoint.txt",
  entries: "ledger/entries.json",
  consistency: "ledger/consistency.json",
  workloads: "compute/workloads.json",
  k8s: "compute/k8s.json",
  volume: "compute/volume.tar",
  routes: "network/routes.json",
  grants: "network/grants.json",
  slice: "network/slice.json",
  envelope: "policies/envelope.json",
  delegations: "policies/delegations.json",
  consents: "policies/consents.json",
  mailboxes: "mail/mailboxes.json",
  domains: "dns/domains.json",
  accounts: "revenue/accounts.json",
  usage: "usage/usage.json",
  throttle: "usage/throttle.json",
  secrets: "secrets/mail-secrets.json.age",
} as const;

/**
 * Where each resource kind gate 13 lets a command create (EXPORTABLE_RESOURCES) is in the bundle:
 * a fixed path, or a folder of per-item files. test/imvu keeps this map equal to the gate's set.
 */
export const RESOURCE_PARTS: Readonly<Record<string, string>> = {
  imvu: "imvu.json",
  envelope: "policies/envelope.json",
  delegation: "policies/delegations.json",
  consent: "policies/consents.json",
  revenue: "revenue/",
  usage: "usage/usage.json",
  throttle: "usage/throttle.json",
  domain: "dns/domains.json",
  zone: "dns/",
  rrset: "dns/",
  mailbox: "mail/mailboxes.json",
  message: "mail/",
  workload: "compute/workloads.json",
  volume: "compute/",
  snapshot: "compute/",
  route: "network/routes.json",
  grant: "network/grants.json",
  slice: "network/slice.json",
};

/** The master file of a zone: `dns/<origin without the final dot>.zone`. */
export function zonePath(origin: string): string {
  return `dns/${origin.replace(/\.$/, "")}.zone`;
}

/** The Maildir of a mailbox in the bundle. */
export function maildirBundlePath(address: string): string {
  return `mail/${address}/Maildir`;
}

/** The mbox of one folder of a mailbox ("INBOX" or the Maildir++ folder name without its dot). */
export function mboxBundlePath(address: string, folder: string): string {
  return `mail/${address}/mbox/${folder}.mbox`;
}

/** The proven statement of one month. */
export function statementPath(month: string): string {
  return `revenue/${month}.json`;
}

/** The uploaded root file system or app tree a workload runs from (its deterministic tar). */
export function sourcePath(hex: string): string {
  return `compute/sources/${hex}.tar`;
}

/** A compute snapshot archive. */
export function snapshotPath(hex: string): string {
  return `compute/snapshots/${hex}.tar`;
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const index = z.string().regex(/^\d{1,20}$/);
const rel = z
  .string()
  .max(4096)
  .refine((p) => p !== "" && !p.startsWith("/") && !p.split("/").some((x) => x === "" || x === "." || x === ".."), "a relative path inside the bundle");

/** One file of the bundle. */
export const FileEntrySchema = z.object({ path: rel, sha256: hex64, bytes: z.number().int().nonnegative() }).strict();

/** The manifest (the DSSE payload). */
export const ExitManifestSchema = z
  .object({
    format: z.literal(EXIT_FORMAT),
    imvu: z.string().max(63),
    owner: z.string().max(200),
    class: z.enum(["imvu", "mini-platform"]),
    jurisdiction: z.string().max(8),
    status: z.string().max(32),
    exitRequestedIndex: index,
    createdAt: z.string().max(40),
    constitution: z.object({ version: z.number().int(), hash: hex64 }).strict(),
    platform: z
      .object({ platformId: z.string().max(200), baseDomain: z.string().max(253), origin: z.string().max(1000), verifierKey: z.string().max(1000), genesisIndex: index })
      .strict(),
    checkpoint: z.object({ size: index, root: hex64 }).strict(),
    inventory: z
      .object({
        zones: z.array(z.object({ origin: z.string(), kind: z.enum(["base", "custom"]), file: rel, records: z.number().int() }).strict()).max(1000),
        mailboxes: z
          .array(
            z
              .object({
                address: z.string(),
                maildir: rel,
                messages: z.number().int(),
                bytes: z.number().int(),
                folders: z.array(z.object({ name: z.string(), messages: z.number().int(), mbox: rel }).strict()).max(1000),
              })
              .strict(),
          )
          .max(100_000),
        workloads: z.array(z.string()).max(10_000),
        volume: z.object({ file: rel, sha256: hex64, entries: z.number().int() }).strict().nullable(),
        snapshots: z.array(z.object({ sha256: hex64, file: rel, kind: z.string() }).strict()).max(100_000),
        sources: z.array(z.object({ sha256: hex64, file: rel }).strict()).max(10_000),
        routes: z.array(z.string()).max(100_000),
        grants: z.number().int(),
        delegations: z.number().int(),
        consents: z.number().int(),
        ledgerEntries: z.array(index).max(BUNDLE_ENTRIES_MAX),
        statements: z.array(z.object({ month: z.string().regex(/^\d{4}-\d{2}$/), file: rel, entries: z.number().int() }).strict()).max(BUNDLE_PERIODS_MAX),
        secrets: z.object({ file: rel, format: z.literal("age"), contents: z.array(z.string()).max(100_000) }).strict(),
        consistency: z.array(z.object({ fromSize: index, toSize: index }).strict()).max(64),
      })
      .strict(),
    files: z.array(FileEntrySchema).max(BUNDLE_FILES_MAX),
  })
  .strict();

/** The manifest. */
export type ExitManifest = z.infer<typeof ExitManifestSchema>;
/** One file of the manifest. */
export type FileEntry = z.infer<typeof FileEntrySchema>;

/** One ledger entry of the bundle with its inclusion proof to the bundle's checkpoint. */
export const ProvenEntrySchema = z.object({ index, leafHash: hex64, entry: z.string(), inclusionProof: z.array(hex64).max(128) }).strict();
/** `ledger/entries.json`. */
export const EntriesFileSchema = z.object({ treeSize: index, entries: z.array(ProvenEntrySchema).max(BUNDLE_ENTRIES_MAX) }).strict();
/** `ledger/consistency.json`: from each checkpoint the owner's CLI saw to the bundle's. */
export const ConsistencyFileSchema = z
  .array(z.object({ fromSize: index, fromRoot: hex64, fromCheckpoint: z.string().max(65_536).optional(), toSize: index, proof: z.array(hex64).max(128) }).strict())
  .max(64);
