/**
 * Reducers of the mail command types (docs/mail-ledger.md, "Projection"). A mailbox row holds the
 * commitment of its verifier; a delete only marks the row (no delivery, no login) until the mail
 * service records the Maildir's snapshot, which removes it (gate 12). Publishing DKIM keys writes
 * their TXT RRsets into the domain's zone rows, so the DNS server serves them without knowing
 * about mail, and stamps the zone's `changedIndex` (its SOA serial).
 */
import { dkimRRsets, mailZone } from "../policy/mail-gates.ts";
import type { Command } from "../policy/schemas.ts";
import { domainOf, mailboxKey } from "./mail-state.ts";
import type { EntryFacts } from "./reducer.ts";
import { del, put, type Change, type StateReader } from "./state.ts";

type MailCommand = Extract<Command, { type: "mail.mailbox.add" | "mail.mailbox.passwd" | "mail.mailbox.delete" | "mail.snapshot.record" | "mail.dkim.publish" }>;

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`invariant: ${what} was checked by the gates`);
  return v;
}

/** The changes an applied mail command makes. */
export function reduceMail(state: StateReader, cmd: MailCommand, facts: EntryFacts): Change[] {
  const imvu = need(cmd.imvu, "the IMVU");
  const index = facts.index.toString();
  switch (cmd.type) {
    case "mail.mailbox.add": {
      const owner = need(state.get("imvu", imvu), "the IMVU").owner;
      const a = cmd.body.address;
      return [
        put("mail-mailbox", mailboxKey(imvu, a), {
          imvu, address: a, domain: domainOf(a), identity: cmd.body.identity ?? owner,
          verifierCommitment: cmd.body.verifierCommitment, createdIndex: index, changedIndex: index,
        }),
      ];
    }
    case "mail.mailbox.passwd": {
      const key = mailboxKey(imvu, cmd.body.address);
      const m = need(state.get("mail-mailbox", key), "the mailbox");
      return [put("mail-mailbox", key, { ...m, verifierCommitment: cmd.body.verifierCommitment, changedIndex: index })];
    }
    case "mail.mailbox.delete": {
      const key = mailboxKey(imvu, cmd.body.address);
      const m = need(state.get("mail-mailbox", key), "the mailbox");
      return [put("mail-mailbox", key, { ...m, deletingIndex: index, changedIndex: index })];
    }
    case "mail.snapshot.record": {
      const b = cmd.body;
      return [
        put("mail-snapshot", `${imvu}/${b.snapshot}`, { imvu, address: b.address, sha256: b.snapshot, bytes: b.bytes, of: b.of, recordedIndex: index }),
        del("mail-mailbox", mailboxKey(imvu, b.address)),
      ];
    }
    case "mail.dkim.publish":
      return reduceDkim(state, imvu, cmd.body.domain, cmd.body.keys, index);
    default: {
      const never: never = cmd;
      throw new Error(`no mail reducer for ${(never as Command).type}`);
    }
  }
}

function reduceDkim(state: StateReader, imvu: string, domain: string, keys: Extract<MailCommand, { type: "mail.dkim.publish" }>["body"]["keys"], index: string): Change[] {
  const zone = need(mailZone(state, domain), "the zone");
  const out: Change[] = [];
  // Selectors of an earlier set that this one does not carry are withdrawn from the zone.
  const previous = state.get("mail-domain", domain);
  const next = dkimRRsets(zone, domain, keys);
  const nextKeys = new Set(next.map((r) => r.key));
  for (const r of previous ? dkimRRsets(zone, domain, previous.keys) : []) if (!nextKeys.has(r.key)) out.push(del("dns-rrset", r.key));
  for (const r of next) out.push(put("dns-rrset", r.key, { zone: zone.origin, imvu, name: r.name, type: "TXT", ttl: r.ttl, values: r.values, index }));
  out.push(put("dns-zone", zone.origin, { ...zone, changedIndex: index }));
  out.push(put("mail-domain", domain, { imvu, domain, keys: keys.map((k) => ({ ...k })), publishedIndex: index }));
  return out;
}
