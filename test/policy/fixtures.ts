/** A small projection state and command builders for gate tests. */
import { classifyActor } from "../../src/core/policy/actor.ts";
import type { GateContext } from "../../src/core/policy/context.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { BODY_SCHEMAS, type Command, type CommandType } from "../../src/core/policy/schemas.ts";
import { MemoryState, put } from "../../src/core/pipeline/state.ts";

export const PLATFORM = "nx1" + "p".repeat(52);
export const ADMIN = "nx1" + "a".repeat(52);
export const OWNER = "nx1" + "o".repeat(52);
export const OTHER = "nx1" + "x".repeat(52);
export const DELEGATE = "nx1" + "d".repeat(52);
export const REVENUE = "nx1" + "r".repeat(52);
export const DNS_SVC = "nx1" + "n".repeat(52);
export const T0 = "2026-11-23T00:00:00.000Z";

const key = { publicKey: "AAAA", nextKeyDigest: "0".repeat(64), seq: 0, lastEventDigest: "0".repeat(64) };

/** A platform with an admin, two people, a delegate, two services and two IMVUs (stage, other). */
export function baseState(): MemoryState {
  const s = new MemoryState();
  s.apply([
    put("platform", "genesis", { platformId: PLATFORM, baseDomain: "nexus.test", constitutionVersion: 1, constitutionHash: "0".repeat(64), genesisIndex: "0" }),
    put("identity", PLATFORM, { id: PLATFORM, kind: "platform", roles: [], ...key }),
    put("identity", ADMIN, { id: ADMIN, kind: "person", roles: [], ...key }),
    put("admin", ADMIN, { addedIndex: "1" }),
    put("identity", OWNER, { id: OWNER, kind: "person", roles: [], ...key }),
    put("identity", OTHER, { id: OTHER, kind: "person", roles: [], ...key }),
    put("identity", DELEGATE, { id: DELEGATE, kind: "person", roles: [], ...key }),
    put("identity", REVENUE, { id: REVENUE, kind: "service", roles: ["revenue-source"], ...key }),
    put("identity", DNS_SVC, { id: DNS_SVC, kind: "service", roles: ["dns"], ...key }),
    put("imvu", "stage", { name: "stage", owner: OWNER, jurisdiction: "DE", class: "imvu", envelope: envelopeToWire(ENVELOPE_PROFILES.small), status: "active", createdIndex: "5" }),
    put("imvu", "other", { name: "other", owner: OTHER, jurisdiction: "FR", class: "imvu", envelope: envelopeToWire(ENVELOPE_PROFILES.small), status: "active", createdIndex: "6" }),
    put("delegation", `stage/${DELEGATE}`, { imvu: "stage", delegate: DELEGATE, scope: ["imvu.envelope.change"], grantedIndex: "7" }),
  ]);
  return s;
}

let n = 0;
/** A validated command of `type` (the body is parsed by its schema, as the pipeline does). */
export function cmd<T extends CommandType>(type: T, actor: string, body: unknown, imvu?: string): Command {
  const parsed = BODY_SCHEMAS[type].parse(body);
  n += 1;
  return { type, v: 1, actor, nonce: `nonce-${String(n).padStart(12, "0")}`, issuedAt: T0, body: parsed, ...(imvu ? { imvu } : {}) } as Command;
}

/** The gate context for `c` over `state`. */
export function ctxFor(state: MemoryState, c: Command, over: Partial<GateContext> = {}): GateContext {
  return {
    state,
    cmd: c,
    digest: "c".repeat(64),
    time: T0,
    actorClasses: classifyActor(state, c),
    signerKeyIds: [`${c.actor}#0`],
    entryBytes: 1000,
    ...over,
  };
}

/** The small profile as wire JSON, with overrides. */
export function envelope(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...envelopeToWire(ENVELOPE_PROFILES.small), ...over };
}
