/** Where tests find the repository and the published vectors in ../shared/vectors. */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** ../shared/vectors beside the project root (or $NEXUS_SHARED/vectors). */
export const VECTORS_DIR = join(process.env.NEXUS_SHARED ?? join(REPO_ROOT, "..", "shared"), "vectors");

/** Reads a vector file, failing loudly (never skipping) when it is absent. */
export function readVector(rel: string): string {
  const p = join(VECTORS_DIR, rel);
  if (!existsSync(p)) throw new Error(`test vector ${p} is missing: the project expects ../shared/vectors beside it`);
  return readFileSync(p, "utf8");
}

/** Reads and parses a JSON vector file. */
export function readJsonVector<T = unknown>(rel: string): T {
  return JSON.parse(readVector(rel)) as T;
}
