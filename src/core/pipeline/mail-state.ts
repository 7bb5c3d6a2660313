/**
 * Projection records of mail (docs/mail-ledger.md, "Projection"): mailboxes bound to an IMVU and
 * an identity (with the commitment of their password verifier, never the verifier), the DKIM
 * public keys of each mail domain (the TXT records themselves live in the zone's `dns-rrset`
 * rows) and the snapshots taken before a mailbox's Maildir is removed (gate 12).
 */

/** A mailbox, key "<imvu>/<address>". */
export interface MailboxRecord {
  readonly imvu: string;
  readonly address: string;
  readonly domain: string;
  /** The identity the mailbox is bound to (gate 5): the one named at creation, else the owner. */
  readonly identity: string;
  /** SHA-256 hex of the scrypt verifier in the secret store; a verifier that does not hash to it is refused. */
  readonly verifierCommitment: string;
  readonly createdIndex: string;
  readonly changedIndex: string;
  /** Set by an applied delete: no delivery or login from then on; the row goes once the snapshot is recorded. */
  readonly deletingIndex?: string;
}

/** One published DKIM public key. */
export interface DkimKeyRecord {
  readonly selector: string;
  readonly algorithm: "rsa-sha256" | "ed25519-sha256";
  /** The p= value (base64): SPKI DER for RSA, the raw 32 bytes for Ed25519 (RFC 8463 section 4). */
  readonly publicKey: string;
  /** SHA-256 hex of the SubjectPublicKeyInfo DER. */
  readonly commitment: string;
}

/** The DKIM keys of a mail domain, key: the domain. */
export interface MailDomainRecord {
  readonly imvu: string;
  readonly domain: string;
  readonly keys: readonly DkimKeyRecord[];
  readonly publishedIndex: string;
}

/** A snapshot of a Maildir taken before its removal, key "<imvu>/<sha256>". */
export interface MailSnapshotRecord {
  readonly imvu: string;
  readonly address: string;
  readonly sha256: string;
  readonly bytes: string;
  /** The index of the delete it was taken for. */
  readonly of: string;
  readonly recordedIndex: string;
}

/** The key of a mailbox row. */
export function mailboxKey(imvu: string, address: string): string {
  return `${imvu}/${address}`;
}

/** The domain of an address (after the last "@"). */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1);
}
