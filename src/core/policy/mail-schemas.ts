/**
 * Body schemas of the mail command types (docs/mail-ledger.md, "Commands"). Mailboxes carry only
 * a commitment (SHA-256 hex) of their scrypt password verifier; DKIM keys are published by the
 * mail service as public keys with a commitment of each (SHA-256 of the SubjectPublicKeyInfo
 * DER). Secrets never appear in a command.
 */
import { z } from "zod";

/** RFC 5321 4.5.3.1.1 / 4.5.3.1.2 bounds of a hostable address. */
export const MAIL_LOCAL_PART_CHARS_MAX = 64;
export const MAIL_ADDRESS_CHARS_MAX = 254;
/** Keys one `mail.dkim.publish` carries at most (one per algorithm today, room for a rotation). */
export const DKIM_KEYS_MAX = 4;
/** Longest base64 public key accepted (RSA-4096 SPKI is ~736 characters). */
export const DKIM_PUBLIC_KEY_CHARS_MAX = 1024;

const LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
// RFC 5322 3.2.3 dot-atom without "/" (it would make a Maildir path separator), lower case.
const ATOM = "[a-z0-9!#$%&'*+=?^_`{|}~-]+";
const ADDRESS_RE = new RegExp(`^${ATOM}(?:\\.${ATOM})*@(?:${LABEL}\\.)+${LABEL}$`);

/** A hostable mailbox address in lower case: dot-atom local part (no "/"), LDH domain. */
export const MailAddress = z
  .string()
  .min(5)
  .max(MAIL_ADDRESS_CHARS_MAX)
  .regex(ADDRESS_RE, "a lower-case mailbox address like creator@stage.nexus.test")
  .refine((a) => a.lastIndexOf("@") <= MAIL_LOCAL_PART_CHARS_MAX, `a local part of at most ${MAIL_LOCAL_PART_CHARS_MAX} characters`);

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256");
const Identity = z.string().regex(/^nx1[a-z2-7]{20,80}$/, "an identity id (nx1…)");
const Domain = z
  .string()
  .min(3)
  .max(253)
  .regex(new RegExp(`^(?:${LABEL}\\.)+${LABEL}$`), "a lower-case domain name");

/** One DKIM public key as published: selector, algorithm, p= value (base64) and its commitment. */
export const DkimPublicKeyWire = z
  .object({
    selector: z.string().max(63).regex(new RegExp(`^${LABEL}$`), "a DKIM selector: one lower-case label"),
    algorithm: z.enum(["rsa-sha256", "ed25519-sha256"]),
    publicKey: z.string().min(40).max(DKIM_PUBLIC_KEY_CHARS_MAX).regex(/^[A-Za-z0-9+/]+={0,2}$/, "base64"),
    commitment: Sha256Hex,
  })
  .strict();

/** The body schema of each mail command type. */
export const MAIL_BODY_SCHEMAS = {
  "mail.mailbox.add": z.object({ address: MailAddress, identity: Identity.optional(), verifierCommitment: Sha256Hex }).strict(),
  "mail.mailbox.passwd": z.object({ address: MailAddress, verifierCommitment: Sha256Hex }).strict(),
  "mail.mailbox.delete": z.object({ address: MailAddress }).strict(),
  "mail.snapshot.record": z
    .object({
      address: MailAddress,
      snapshot: Sha256Hex,
      bytes: z.string().regex(/^(0|[1-9][0-9]{0,15})$/, "a byte count"),
      of: z.string().regex(/^(0|[1-9][0-9]{0,19})$/, "the ledger index of the delete"),
    })
    .strict(),
  "mail.dkim.publish": z.object({ domain: Domain, keys: z.array(DkimPublicKeyWire).min(1).max(DKIM_KEYS_MAX) }).strict(),
} as const;
