/**
 * Names and labels of what compute creates in the runtime. Every object carries the fabric label
 * (one per installation, or per test run) so two fabrics on one machine never touch each other's
 * containers, and the IMVU and workload labels the reconciler adopts containers by.
 */
import { resolve } from "node:path";
import { z } from "zod";
import { sha256Hex } from "../../core/crypto/hash.ts";

/** Label keys on containers and networks. */
export const LABEL_FABRIC = "nexus.fabric";
export const LABEL_IMVU = "nexus.imvu";
export const LABEL_WORKLOAD = "nexus.workload";
/** The hash of the run specification a container was made from. */
export const LABEL_SPEC = "nexus.spec";

/** A fabric id: short lower-case alphanumerics ("main", "t1a2b3"). */
export const FabricSchema = z.string().regex(/^[a-z0-9]{1,12}$/, "a fabric id is 1-12 lower-case letters or digits");
/** An IMVU id as the ledger names it (any printable id; runtime names use its slug). */
export const ImvuIdSchema = z.string().regex(/^[\x21-\x7e]{1,128}$/, "an IMVU id is 1-128 printable ASCII characters");
/** A workload name: a DNS label of at most 40 characters. */
export const WorkloadNameSchema = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/, "a workload name is a DNS label of at most 40 characters");

const SLUG_CHARS_MAX = 24;

/** A runtime-safe name for an id: kept when already safe and short, else cleaned plus a hash. */
export function slug(id: string): string {
  const clean = id.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "");
  if (clean === id && clean.length <= SLUG_CHARS_MAX && clean !== "") return clean;
  return `${clean.slice(0, SLUG_CHARS_MAX - 9)}-${sha256Hex(id).slice(0, 8)}`.replace(/^-/, "x");
}

/** The podman network of an IMVU. */
export function networkName(fabric: string, imvu: string): string {
  return `nx-${fabric}-${slug(imvu)}`;
}

/** The container name of a workload. */
export function containerName(fabric: string, imvu: string, workload: string): string {
  return `nx-${fabric}-${slug(imvu)}-${workload}`;
}

/** The parent control group of an IMVU (relative to each controller's mount). */
export function groupPath(fabric: string, imvu: string): string {
  return `/nexus/${fabric}/${slug(imvu)}`;
}

/** The environment variable that overrides an installation's fabric id. */
export const FABRIC_ENV = "NEXUS_COMPUTE_FABRIC";

/**
 * The default fabric id of an installation: "h" + 11 hex digits of SHA-256 of its data directory,
 * so two installations on one machine (or a test run beside `nexus up`) never reconcile away each
 * other's containers.
 */
export function fabricForHome(home: string): string {
  return `h${sha256Hex(new TextEncoder().encode(resolve(home))).slice(0, 11)}`;
}

/** The fabric id an installation's compute service uses: $NEXUS_COMPUTE_FABRIC, else fabricForHome. */
export function installationFabric(home: string): string {
  return process.env[FABRIC_ENV] ?? fabricForHome(home);
}
