/**
 * The mail parts of gates 2, 4, 5, 7, 12, 13 and 16 (CONSTITUTION.md; docs/mail-ledger.md,
 * "Gates"): pure checks of the `mail.*` command types, called by gates.ts (each returns undefined
 * for other types). `dkimRRsets` is shared with the reducer, so the TXT records gate 4 checked are
 * exactly the ones the zone receives.
 */
import { createPublicKey } from "node:crypto";
import { fromBase64 } from "../crypto/bytes.ts";
import { sha256Hex } from "../crypto/hash.ts";
import { toAbsoluteName, type Name } from "../dns/name.ts";
import type { RData } from "../dns/rdata.ts";
import { TTL_DEFAULT_S } from "../dns/zone.ts";
import type { DkimKeyRecord, MailboxRecord } from "../pipeline/mail-state.ts";
import { domainOf, mailboxKey } from "../pipeline/mail-state.ts";
import type { DnsZoneRecord, StateReader } from "../pipeline/state.ts";
import { deny, ok, type GateContext } from "./context.ts";
import type { Envelope } from "./envelope.ts";
import { imvuRecordCount, rrsetKey } from "./dns-zones.ts";
import type { Command } from "./schemas.ts";

type Result = { pass: true; reason: string } | { pass: false; reason: string };
type MailCommand = Extract<Command, { type: `mail.${string}` }>;

/** Smallest RSA modulus a published DKIM key may have (RFC 8301 section 3.2 asks 1024; we ask 2048). */
export const DKIM_RSA_BITS_MIN = 2048;
/** RFC 1035 3.3.14: one TXT character-string holds at most 255 octets. */
export const TXT_STRING_CHARS_MAX = 255;
/** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 section 4) before the raw 32-byte key. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** True for the command types whose gates this module evaluates. */
export function isMailCommand(cmd: Command): cmd is MailCommand {
  return cmd.type.startsWith("mail.");
}

/** The IMVU a domain is bound to (gate 3's `domain` table), if any. */
export function domainImvu(state: StateReader, domain: string): string | undefined {
  return state.get("domain", domain)?.imvu;
}

/** The mailboxes of an IMVU (including those being deleted), in address order. */
export function imvuMailboxes(state: StateReader, imvu: string): MailboxRecord[] {
  return state.list("mail-mailbox", `${imvu}/`).map(([, r]) => r);
}

/** The latest mail storage the mail service reported for an IMVU (bytes), 0 when none. */
export function mailStorageInUse(state: StateReader, imvu: string): bigint {
  const reports = state.list("usage", `${imvu}/mail/`);
  const last = reports[reports.length - 1]?.[1].metrics["storageBytes"];
  return last === undefined ? 0n : BigInt(last);
}

/** The TXT RRset of one DKIM key: `v=DKIM1; k=…; p=…` in strings of at most 255 octets (RFC 6376 3.6.2.2). */
export function dkimTxt(key: DkimKeyRecord): RData {
  const value = `v=DKIM1; k=${key.algorithm === "rsa-sha256" ? "rsa" : "ed25519"}; p=${key.publicKey}`;
  const text: string[] = [];
  for (let i = 0; i < value.length; i += TXT_STRING_CHARS_MAX) text.push(value.slice(i, i + TXT_STRING_CHARS_MAX));
  return { type: "TXT", text };
}

/** The owner name of a DKIM key record: `<selector>._domainkey.<domain>.` (RFC 6376 3.6.2.1). */
export function dkimName(selector: string, domain: string): Name {
  return toAbsoluteName(`${selector}._domainkey.${domain}`);
}

/** The zone rows `mail.dkim.publish` writes: one TXT RRset per key, in the domain's zone. */
export function dkimRRsets(zone: DnsZoneRecord, domain: string, keys: readonly DkimKeyRecord[]): { key: string; name: Name; values: RData[]; ttl: number }[] {
  return keys.map((k) => {
    const name = dkimName(k.selector, domain);
    return { key: rrsetKey(zone.origin, name, "TXT"), name, values: [dkimTxt(k)], ttl: TTL_DEFAULT_S };
  });
}

/** The zone of a mail domain (its apex zone), if the domain has one. */
export function mailZone(state: StateReader, domain: string): DnsZoneRecord | undefined {
  return state.get("dns-zone", toAbsoluteName(domain));
}

/** The SHA-256 hex of a published key's SPKI DER, or why the key is unacceptable. */
export function dkimKeyCheck(key: DkimKeyRecord): { commitment: string } | { reason: string } {
  const raw = fromBase64(key.publicKey);
  if (!raw) return { reason: `${key.selector}: the public key is not base64` };
  if (key.algorithm === "ed25519-sha256") {
    if (raw.length !== 32) return { reason: `${key.selector}: an Ed25519 key is 32 bytes (RFC 8463 section 4)` };
    return { commitment: sha256Hex(new Uint8Array(Buffer.concat([ED25519_SPKI_PREFIX, raw]))) };
  }
  try {
    const k = createPublicKey({ key: Buffer.from(raw), format: "der", type: "spki" });
    const bits = k.asymmetricKeyDetails?.modulusLength ?? 0;
    if (k.asymmetricKeyType !== "rsa" || bits < DKIM_RSA_BITS_MIN) return { reason: `${key.selector}: an RSA key of at least ${DKIM_RSA_BITS_MIN} bits` };
  } catch {
    return { reason: `${key.selector}: not an RSA SubjectPublicKeyInfo` };
  }
  return { commitment: sha256Hex(raw) };
}

function mailboxOf(ctx: GateContext, address: string): MailboxRecord | undefined {
  return ctx.state.get("mail-mailbox", mailboxKey(ctx.cmd.imvu ?? "", address));
}

/** Gate 2: the address's domain (or the DKIM domain) is the command's IMVU's, and so is the mailbox. */
export function mailIsolation(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  if (!isMailCommand(cmd)) return undefined;
  const imvu = cmd.imvu ?? "";
  const domain = cmd.type === "mail.dkim.publish" ? cmd.body.domain : domainOf(cmd.body.address);
  const owner = domainImvu(state, domain);
  if (owner !== imvu) return deny(`${domain} is ${owner === undefined ? "not a domain bound to any IMVU" : "a domain of another IMVU"}, not of ${imvu}`);
  if (cmd.type === "mail.mailbox.add" || cmd.type === "mail.dkim.publish") return ok(`${domain} is bound to ${imvu}`);
  if (!mailboxOf(ctx, cmd.body.address)) return deny(`${cmd.body.address} is not one of ${imvu}'s mailboxes`);
  return ok(`${cmd.body.address} is ${imvu}'s mailbox`);
}

/** Gate 5: a mailbox is bound to its IMVU and a person identity; DKIM keys are real keys with true commitments. */
export function mailAttributionCheck(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  switch (cmd.type) {
    case "mail.mailbox.add": {
      const existing = mailboxOf(ctx, cmd.body.address);
      if (existing) return deny(`${cmd.body.address} already exists (ledger index ${existing.createdIndex})`);
      const bound = cmd.body.identity ?? state.get("imvu", cmd.imvu ?? "")?.owner ?? "";
      const id = state.get("identity", bound);
      if (id?.kind !== "person") return deny(`a mailbox is bound to a registered person identity; ${bound} is not one`);
      return ok(`${cmd.body.address} bound to ${cmd.imvu} and ${bound}`);
    }
    case "mail.mailbox.passwd":
    case "mail.mailbox.delete": {
      const m = mailboxOf(ctx, cmd.body.address);
      if (m?.deletingIndex !== undefined) return deny(`${cmd.body.address} is being deleted (ledger index ${m.deletingIndex})`);
      return ok(`${cmd.body.address} stays bound to ${m?.identity ?? "?"}`);
    }
    case "mail.dkim.publish":
      return dkimKeysCheck(cmd.body.keys);
    default:
      return undefined;
  }
}

function dkimKeysCheck(keys: readonly DkimKeyRecord[]): Result {
  const algorithms = new Set(keys.map((k) => k.algorithm));
  if (!algorithms.has("rsa-sha256") || !algorithms.has("ed25519-sha256")) return deny("a mail domain publishes an RSA and an Ed25519 key (RFC 8463)");
  if (new Set(keys.map((k) => k.selector)).size !== keys.length) return deny("DKIM selectors must differ");
  for (const k of keys) {
    const c = dkimKeyCheck(k);
    if ("reason" in c) return deny(c.reason);
    if (c.commitment !== k.commitment) return deny(`${k.selector}: the commitment is not the SHA-256 of the key's SubjectPublicKeyInfo`);
  }
  return ok(`${keys.length} DKIM keys with their commitments`);
}

/** Gate 4 for `mail.dkim.publish`: the key records go into the domain's own zone, beside no CNAME. */
export function mailDnsAuthority(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type !== "mail.dkim.publish") return undefined;
  const zone = mailZone(state, cmd.body.domain);
  if (!zone || zone.imvu !== cmd.imvu) return deny(`${cmd.body.domain} has no zone of ${cmd.imvu ?? "?"} to publish DKIM keys in`);
  for (const r of dkimRRsets(zone, cmd.body.domain, cmd.body.keys)) {
    if (r.name.length > 254) return deny(`${r.name} is longer than a domain name may be`);
    if (state.get("dns-rrset", rrsetKey(zone.origin, r.name, "CNAME"))) return deny(`${r.name} holds a CNAME; no other data may sit beside it`);
  }
  return ok(`DKIM TXT records at <selector>._domainkey.${cmd.body.domain} inside ${zone.origin}`);
}

/** Gate 7: mailboxes and mail storage within the envelope; DKIM records within `dnsRecords`. */
export function mailQuota(ctx: GateContext, envelope: () => Envelope | undefined): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type !== "mail.mailbox.add" && cmd.type !== "mail.dkim.publish") return undefined;
  const e = envelope();
  if (!e) return deny("no such IMVU");
  const imvu = cmd.imvu ?? "";
  if (cmd.type === "mail.dkim.publish") {
    const zone = mailZone(state, cmd.body.domain);
    const added = zone ? dkimRRsets(zone, cmd.body.domain, cmd.body.keys).filter((r) => !state.get("dns-rrset", r.key)).length : 0;
    const after = imvuRecordCount(state, imvu) + added;
    if (after > e.dnsRecords) return deny(`${after} DNS records exceed the envelope's ${e.dnsRecords}`);
    return ok(`${after} of ${e.dnsRecords} DNS records`);
  }
  const after = imvuMailboxes(state, imvu).length + 1;
  if (after > e.mailboxes) return deny(`${after} mailboxes exceed the envelope's ${e.mailboxes}`);
  const used = mailStorageInUse(state, imvu);
  if (used >= e.mailStorageBytes) return deny(`mail storage in use ${used} leaves nothing of the envelope's ${e.mailStorageBytes} bytes`);
  return ok(`${after} of ${e.mailboxes} mailboxes; ${used} of ${e.mailStorageBytes} mail storage bytes in use`);
}

/** Gate 7 on lowering an envelope: not below the mailboxes that exist or the storage in use. */
export function mailBelowUse(state: StateReader, imvu: string, next: Envelope): string[] {
  const out: string[] = [];
  const count = imvuMailboxes(state, imvu).length;
  if (count > next.mailboxes) out.push(`mailboxes in use ${count} > ${next.mailboxes}`);
  const used = mailStorageInUse(state, imvu);
  if (used > next.mailStorageBytes) out.push(`mail storage in use ${used} > ${next.mailStorageBytes}`);
  return out;
}

/** Gate 12: a mailbox's Maildir goes only after its content-addressed snapshot is recorded. */
export function mailSnapshots(ctx: GateContext): Result | undefined {
  const { cmd } = ctx;
  if (cmd.type === "mail.mailbox.delete") {
    return ok("the mail service snapshots the Maildir (content-addressed tar) and records it before anything is removed");
  }
  if (cmd.type !== "mail.snapshot.record") return undefined;
  const m = mailboxOf(ctx, cmd.body.address);
  if (m?.deletingIndex === undefined) return deny(`${cmd.body.address} has no pending delete to snapshot for`);
  if (m.deletingIndex !== cmd.body.of) return deny(`the pending delete of ${cmd.body.address} is ledger index ${m.deletingIndex}, not ${cmd.body.of}`);
  return ok(`snapshot sha256:${cmd.body.snapshot} of ${cmd.body.address} recorded before its removal`);
}

/** Gate 13: the resource kinds a mail command creates (all exportable). */
export function mailCreatedKinds(type: Command["type"]): string[] | undefined {
  if (type === "mail.mailbox.add") return ["mailbox"];
  if (type === "mail.dkim.publish") return ["rrset"];
  if (type === "mail.snapshot.record") return ["snapshot"];
  return undefined;
}

/** Gate 16: mail stays inside the IMVU: mailboxes bound only to persons, records only in its zone. */
export function mailLeakage(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  if (!isMailCommand(cmd)) return undefined;
  if (cmd.type === "mail.mailbox.add") {
    const bound = cmd.body.identity;
    if (bound !== undefined && state.get("identity", bound)?.kind !== "person") {
      return deny(`${bound} is not a registered person: a mailbox's mail reaches only a person identity`);
    }
    return ok("the mailbox's Maildir and secrets live under the IMVU's own directories");
  }
  if (cmd.type === "mail.dkim.publish") {
    const zone = mailZone(state, cmd.body.domain);
    if (zone && zone.imvu !== cmd.imvu) return deny(`the zone of ${cmd.body.domain} belongs to another IMVU`);
    return ok("the key records stay in the IMVU's zone; private keys stay in its secret store");
  }
  const m = mailboxOf(ctx, cmd.body.address);
  if (!m) return deny(`${cmd.body.address} is not one of ${cmd.imvu ?? "?"}'s mailboxes`);
  return ok(`${cmd.body.address} stays within ${m.imvu}`);
}
