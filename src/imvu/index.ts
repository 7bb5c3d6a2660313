/** The IMVU lifecycle part's public surface: the exit bundle (writer, verifier, countersignature). */
export * from "./bundle-layout.ts";
export { writeBundle, listFiles, SECRETS_SCRYPT_LOG2_N, type ExportRequest, type ExportSource } from "./bundle-writer.ts";
export { verifyBundle, verifySignaturesOnly, type BundleReport, type KnownDigests } from "./bundle-verify.ts";
export { countersign } from "./countersign.ts";
export { exitErrors, type ExitErrorCode } from "./errors.ts";
export { dueForExpiry, sweepExpiredExits, createExitGraceService, exitGraceService, GRACE_SWEEP_INTERVAL_MS } from "./grace.ts";
