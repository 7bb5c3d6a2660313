/** core/identity's public surface: self-certifying ids, key events with pre-rotation, the local keyring. */
export * from "./id.ts";
export * from "./events.ts";
export * from "./keyring.ts";
export { identityErrors, type IdentityErrorCode } from "./errors.ts";
