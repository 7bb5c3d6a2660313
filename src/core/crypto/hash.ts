/** SHA-256 through node:crypto. */
import { createHash, hash } from "node:crypto";

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return new Uint8Array(hash("sha256", parts[0], "buffer"));
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Lower-case hex SHA-256 of `data`. */
export function sha256Hex(data: Uint8Array | string): string {
  return hash("sha256", data, "hex");
}
