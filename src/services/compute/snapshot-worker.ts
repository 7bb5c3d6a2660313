/** Worker thread body of snapshot.ts: runs one job synchronously and posts the outcome. */
import { parentPort, workerData } from "node:worker_threads";
import { isNexusError } from "../../core/errors.ts";
import { runSnapshotJob, type SnapshotJob } from "./snapshot.ts";

try {
  parentPort?.postMessage({ ok: true, value: runSnapshotJob(workerData as SnapshotJob) });
} catch (e) {
  parentPort?.postMessage({ ok: false, code: isNexusError(e) ? e.code : undefined, message: (e as Error).message });
}
