/** Worker of the ledger benchmark's verify pool: verifies chunks of Ed25519 signatures. */
import { verify } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import { publicKeyFromRaw } from "../../src/core/crypto/ed25519.ts";

const key = publicKeyFromRaw(new Uint8Array(workerData as Uint8Array));
const SIG_BYTES = 64;

/** A chunk, packed into transferable buffers: messages back to back, their end offsets, signatures. */
interface Chunk {
  readonly id: number;
  readonly msgs: Uint8Array;
  readonly ends: Uint32Array;
  readonly sigs: Uint8Array;
}

parentPort?.on("message", (c: Chunk) => {
  const ok = new Uint8Array(c.ends.length);
  let start = 0;
  for (let i = 0; i < c.ends.length; i++) {
    const end = c.ends[i] ?? start;
    ok[i] = verify(null, c.msgs.subarray(start, end), key, c.sigs.subarray(i * SIG_BYTES, (i + 1) * SIG_BYTES)) ? 1 : 0;
    start = end;
  }
  parentPort?.postMessage({ id: c.id, ok }, [ok.buffer]);
});
