/** core/crypto's public surface: bytes, SHA-256, Ed25519 (RFC 8032), canonical JSON (RFC 8785) and DSSE. */
export * from "./bytes.ts";
export * from "./hash.ts";
export * from "./ed25519.ts";
export * from "./jcs.ts";
export * from "./dsse.ts";
export { cryptoErrors, type CryptoErrorCode } from "./errors.ts";
