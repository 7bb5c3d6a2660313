/**
 * Reducers: the effect of an applied command on the projection, as a list of Changes. Pure and
 * deterministic (time and index come from the entry), so replaying the ledger rebuilds the same
 * state. Denied commands change only the nonce table and the IMVU's feed.
 */
import { CATALOGUE } from "../policy/constitution.ts";
import { envelopeToWire } from "../policy/envelope.ts";
import type { Command } from "../policy/schemas.ts";
import type { KeyState } from "./identity-events.ts";
import { reduceCompute } from "./compute-reducer.ts";
import { reduceDns, reduceImvuDns } from "./dns-reducer.ts";
import { reduceNet } from "./net-reducer.ts";
import { reduceMail } from "./mail-reducer.ts";
import { reduceRevenue } from "./revenue.ts";
import { del, put, type Change, type ImvuRecord, type StateReader } from "./state.ts";

/** What a reducer knows about the entry that records the command. */
export interface EntryFacts {
  readonly index: bigint;
  readonly time: string;
  readonly digest: string;
  /** Key state established by authentication for identity-changing commands. */
  readonly keyState?: KeyState;
}

/** Changes recorded for every authenticated command, applied or denied. */
export function bookkeeping(cmd: Command, facts: EntryFacts, outcome: "applied" | "denied", imvuExists = true): Change[] {
  const out: Change[] = [put("nonce", `${cmd.actor}/${cmd.nonce}`, { index: facts.index.toString() })];
  // Only an existing IMVU (or the one this command creates) has a feed: a command naming a free
  // name must not leave rows that its future owner would inherit.
  if (cmd.imvu !== undefined && imvuExists) {
    out.push(
      put("feed", `${cmd.imvu}/${facts.index.toString().padStart(20, "0")}`, {
        index: facts.index.toString(),
        type: cmd.type,
        actor: cmd.actor,
        outcome,
        redirect: CATALOGUE[cmd.type].redirects === true,
      }),
    );
  }
  return out;
}

/** The changes an applied command makes. */
export function reduce(state: StateReader, cmd: Command, facts: EntryFacts): Change[] {
  const index = facts.index.toString();
  switch (cmd.type) {
    case "platform.genesis":
      return [
        put("platform", "genesis", {
          platformId: cmd.actor,
          baseDomain: cmd.body.baseDomain,
          constitutionVersion: cmd.body.constitutionVersion,
          constitutionHash: cmd.body.constitutionHash,
          genesisIndex: index,
          ...(cmd.body.dns === undefined ? {} : { dns: cmd.body.dns }),
        }),
        identityPut(cmd.actor, "platform", [], facts),
      ];
    case "identity.inception":
      return [identityPut(cmd.actor, "person", [], facts)];
    case "service.register": {
      const ks = need(facts.keyState);
      return [identityPut(ks.id, "service", cmd.body.roles, facts)];
    }
    case "identity.rotate": {
      const prev = state.get("identity", cmd.actor);
      return [identityPut(cmd.actor, prev?.kind ?? "person", prev?.roles ?? [], facts)];
    }
    case "admin.add":
      return [put("admin", cmd.body.identity, { addedIndex: index })];
    case "admin.remove":
      return [del("admin", cmd.body.identity)];
    case "delegation.grant":
      return [
        put("delegation", `${cmd.imvu}/${cmd.body.delegate}`, {
          imvu: need(cmd.imvu),
          delegate: cmd.body.delegate,
          scope: cmd.body.scope,
          grantedIndex: index,
        }),
      ];
    case "delegation.revoke":
      return [del("delegation", `${cmd.imvu}/${cmd.body.delegate}`)];
    case "imvu.create":
      return [
        put("imvu", cmd.body.name, {
          name: cmd.body.name,
          owner: cmd.actor,
          jurisdiction: cmd.body.jurisdiction,
          class: cmd.body.class,
          envelope: envelopeToWire(cmd.body.envelope),
          status: "active",
          createdIndex: index,
        }),
        ...reduceImvuDns(state, cmd, facts),
      ];
    case "imvu.envelope.change":
      return [updateImvu(state, cmd.imvu, (r) => ({ ...r, envelope: envelopeToWire(cmd.body.envelope) }))];
    case "imvu.suspend":
      return [
        updateImvu(state, cmd.imvu, (r) => ({ ...r, status: "suspended", suspension: { reason: cmd.body.reason, by: cmd.actor, index } })),
      ];
    case "imvu.resume":
      return [
        updateImvu(state, cmd.imvu, (r) => {
          const { suspension: _s, ...rest } = r;
          return { ...rest, status: "active" };
        }),
      ];
    case "imvu.exit.request":
      // Idempotent: a repeated request keeps the first request (and a departure) on record.
      return [updateImvu(state, cmd.imvu, (r) => ({ ...r, exit: r.exit ?? { requestedIndex: index, requestedAt: facts.time } }))];
    case "imvu.depart":
      return [
        updateImvu(state, cmd.imvu, (r) => ({ ...r, exit: { ...r.exit, requestedIndex: r.exit?.requestedIndex ?? index, departedIndex: index } })),
      ];
    case "imvu.import": {
      const b = cmd.body;
      const treeSize = /\n(\d+)\n/.exec(b.checkpoint)?.[1] ?? "0";
      return [updateImvu(state, cmd.imvu, (r) => ({ ...r, importedFrom: { index, originImvu: b.originImvu, verifierKey: b.verifierKey, treeSize, manifest: b.manifest } }))];
    }
    case "imvu.exit.expire":
      // Gate 13 applied it only after an exit request and the whole grace period.
      return [updateImvu(state, cmd.imvu, (r) => ({ ...r, exit: { ...r.exit, requestedIndex: r.exit?.requestedIndex ?? index, departedIndex: index, expired: true } }))];
    case "consent.give": {
      const imvu = state.get("imvu", need(cmd.imvu));
      return [put("consent", cmd.body.digest, { imvu: need(cmd.imvu), owner: imvu?.owner ?? cmd.actor, digest: cmd.body.digest, index })];
    }
    case "revenue.record":
    case "revenue.refund":
    case "revenue.payout":
      return reduceRevenue(state, cmd, facts);
    case "usage.report":
      return [
        put("usage", `${cmd.imvu}/${cmd.body.service}/${cmd.body.intervalStart}`, {
          imvu: need(cmd.imvu),
          service: cmd.body.service,
          intervalStart: cmd.body.intervalStart,
          intervalEnd: cmd.body.intervalEnd,
          metrics: cmd.body.metrics,
          index,
        }),
      ];
    case "throttle.report":
      return [
        put("throttle", `${cmd.imvu}/${cmd.body.service}/${cmd.body.episodeId}`, {
          imvu: need(cmd.imvu),
          service: cmd.body.service,
          limit: cmd.body.limit,
          declared: cmd.body.declared,
          episodeId: cmd.body.episodeId,
          count: cmd.body.count,
          index,
        }),
      ];
    case "net.route.add":
    case "net.route.delete":
    case "net.grant.add":
    case "net.grant.revoke":
      return reduceNet(state, cmd, facts);
    case "dns.rrset.set":
    case "dns.rrset.delete":
    case "domain.claim":
    case "domain.verify":
      return reduceDns(state, cmd, facts);
    case "compute.workload.deploy":
    case "compute.workload.stop":
    case "compute.workload.remove":
    case "compute.snapshot.create":
    case "compute.snapshot.restore":
    case "compute.snapshot.delete":
    case "compute.snapshot.record":
    case "compute.event":
      return reduceCompute(state, cmd, facts);
    case "mail.mailbox.add":
    case "mail.mailbox.passwd":
    case "mail.mailbox.delete":
    case "mail.snapshot.record":
    case "mail.dkim.publish":
      return reduceMail(state, cmd, facts);
    default: {
      const never: never = cmd;
      throw new Error(`no reducer for ${(never as Command).type}`);
    }
  }
}

function identityPut(id: string, kind: "person" | "service" | "platform", roles: readonly string[], facts: EntryFacts): Change {
  const ks = need(facts.keyState);
  return put("identity", id, {
    id,
    kind,
    roles,
    publicKey: ks.publicKey,
    nextKeyDigest: ks.nextKeyDigest,
    seq: ks.seq,
    lastEventDigest: ks.lastEventDigest,
    ...(ks.name === undefined ? {} : { name: ks.name }),
  });
}

function updateImvu(state: StateReader, name: string | undefined, f: (r: ImvuRecord) => ImvuRecord): Change {
  const r = state.get("imvu", need(name));
  if (!r) throw new Error(`invariant: IMVU ${name} vanished between gates and reducer`);
  return put("imvu", r.name, f(r));
}

/** Marks the owner's consent used when a non-owner's applied command relied on it (single use). */
export function consumeConsent(state: StateReader, cmd: Command, facts: EntryFacts): Change[] {
  const c = state.get("consent", facts.digest);
  if (!c || c.usedIndex !== undefined || cmd.imvu === undefined || c.imvu !== cmd.imvu) return [];
  return [put("consent", facts.digest, { ...c, usedIndex: facts.index.toString() })];
}

function need<T>(v: T | undefined): T {
  if (v === undefined) throw new Error("invariant: a value validated earlier is missing");
  return v;
}
