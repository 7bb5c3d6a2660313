/**
 * The composition root of one Nexus installation: the data directory, the store, the ledger, the
 * command pipeline and the platform's own identities (the platform and one identity per service
 * role). `Platform.open` creates what is missing on first run: the log key, the genesis entry,
 * the service registrations, all as signed commands through the pipeline like any other.
 *
 * Keys: the checkpoint (log) key is `<home>/platform.key`; the platform and service identities
 * live in the keyring `<home>/keys` (mode 0700, files 0600). Creator keys never come here.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createIdentity, loadIdentity, type LocalIdentity } from "../core/identity/index.ts";
import { isNexusError } from "../core/errors.ts";
import { Ledger } from "../core/ledger/ledger.ts";
import { noteSignerFromEd25519, verifierKey } from "../core/ledger/note.ts";
import { Pipeline, type Receipt } from "../core/pipeline/pipeline.ts";
import { signCommand, type CommandDraft, type CommandSigner } from "../core/pipeline/sign.ts";
import type { PlatformDnsRecord, StateReader } from "../core/pipeline/state.ts";
import { CONSTITUTION_VERSION, constitutionHash } from "../core/policy/constitution.ts";
import { SERVICE_ROLES } from "../core/policy/schemas.ts";
import { openStore, type Store } from "../store/index.ts";
import { loadPlatformKey } from "../cli/commands/ledger.ts";
import { identityVerifiers } from "./verifiers.ts";

/** A service role of the constitution (dns, mail, compute, gateway, revenue-source, meter). */
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** The default base domain of an installation. */
export const BASE_DOMAIN_DEFAULT = "nexus.test";
/** The default log origin (C2SP checkpoint origin line). */
export const LEDGER_ORIGIN_DEFAULT = "nexus.local/ledger";
/** Name of the platform identity in the platform keyring. */
export const PLATFORM_IDENTITY_NAME = "platform";

/** How to open an installation. */
export interface PlatformConfig {
  /** $NEXUS_HOME. */
  readonly home: string;
  /** postgres://… for the scale-out store; SQLite in the home when absent. */
  readonly databaseUrl?: string | undefined;
  /** PostgreSQL only: the schema to use (tests isolate themselves this way). */
  readonly databaseSchema?: string | undefined;
  /** The base domain recorded at genesis (ignored once genesis exists). */
  readonly baseDomain?: string;
  /** DNS facts recorded at genesis (name servers, gateway addresses, mail host; ignored once genesis exists). */
  readonly dns?: PlatformDnsRecord;
  /** The log origin; default LEDGER_ORIGIN_DEFAULT. */
  readonly origin?: string;
  /** The sequencer clock (tests move it). */
  readonly clock?: () => Date;
}

/** Keyring name of the identity holding a service role. */
export function serviceIdentityName(role: ServiceRole): string {
  return `svc-${role}`;
}

/** An open installation. */
export class Platform {
  readonly home: string;
  readonly store: Store;
  readonly ledger: Ledger;
  readonly pipeline: Pipeline;
  /** The checkpoint verifier key ("origin+hash+base64"). */
  readonly verifierKey: string;
  /** The platform keyring directory (platform and service identities). */
  readonly keyring: string;
  private readonly clock: () => Date;

  private constructor(home: string, store: Store, ledger: Ledger, pipeline: Pipeline, vkey: string, clock: () => Date) {
    this.home = home;
    this.store = store;
    this.ledger = ledger;
    this.pipeline = pipeline;
    this.verifierKey = vkey;
    this.keyring = join(home, "keys");
    this.clock = clock;
  }

  /** Opens (and on first run initialises) the installation at `cfg.home`. */
  static async open(cfg: PlatformConfig): Promise<Platform> {
    const home = resolve(cfg.home);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    mkdirSync(join(home, "keys"), { recursive: true, mode: 0o700 });
    chmodSync(join(home, "keys"), 0o700);
    const origin = cfg.origin ?? LEDGER_ORIGIN_DEFAULT;
    const key = loadPlatformKey(home, true);
    if (!key) throw new Error("invariant: platform key not created");
    const vkey = verifierKey(origin, key.publicKey);
    const store = await openStore({ url: cfg.databaseUrl, dataDir: home, schema: cfg.databaseSchema });
    try {
      const ledger = await Ledger.open(store, { origin, signer: noteSignerFromEd25519(origin, key.privateKey, key.publicKey), verifierKey: vkey });
      const clock = cfg.clock ?? (() => new Date());
      const pipeline = await Pipeline.open({ ledger, db: store, verifiers: identityVerifiers, clock });
      const p = new Platform(home, store, ledger, pipeline, vkey, clock);
      await p.initialise(cfg.baseDomain ?? BASE_DOMAIN_DEFAULT, cfg.dns);
      return p;
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  /** The committed projection. */
  get state(): StateReader {
    return this.pipeline.state;
  }

  /** The base domain recorded at genesis. */
  get baseDomain(): string {
    const g = this.state.get("platform", "genesis");
    if (!g) throw new Error("invariant: no genesis after open");
    return g.baseDomain;
  }

  /** The platform identity (signs platform actions). */
  platformIdentity(): LocalIdentity {
    return loadOrCreate(this.keyring, PLATFORM_IDENTITY_NAME);
  }

  /** The identity holding `role`. */
  serviceIdentity(role: ServiceRole): LocalIdentity {
    return loadOrCreate(this.keyring, serviceIdentityName(role));
  }

  /** Signs `draft` as the platform and submits it. */
  submitAsPlatform(draft: CommandDraft): Promise<Receipt> {
    return this.pipeline.submit(signCommand(draft, signerOf(this.platformIdentity()), this.clock()).json);
  }

  /** Signs `draft` as the service holding `role` and submits it (usage, throttle, revenue reports). */
  submitAsService(role: ServiceRole, draft: CommandDraft): Promise<Receipt> {
    return this.pipeline.submit(signCommand(draft, signerOf(this.serviceIdentity(role)), this.clock()).json);
  }

  /** Closes the ledger and the store. */
  async close(): Promise<void> {
    await this.ledger.close();
    await this.store.close();
  }

  /** Genesis and service registrations, each once. */
  private async initialise(baseDomain: string, dns: PlatformDnsRecord | undefined): Promise<void> {
    const platform = this.platformIdentity();
    if (!this.state.get("platform", "genesis")) {
      await this.submitAsPlatform({
        type: "platform.genesis",
        body: {
          constitutionVersion: CONSTITUTION_VERSION, constitutionHash: constitutionHash(), baseDomain, inception: platform.kel[0],
          ...(dns === undefined ? {} : { dns }),
        },
      });
    }
    for (const role of SERVICE_ROLES) {
      const svc = this.serviceIdentity(role);
      if (this.state.get("identity", svc.id)) continue;
      await this.submitAsPlatform({ type: "service.register", body: { inception: svc.kel[0], roles: [role] } });
    }
  }
}

/** The command signer of a local identity. */
export function signerOf(id: LocalIdentity): CommandSigner {
  return { id: id.id, seq: id.state.seq, privateKey: id.current.privateKey };
}

function loadOrCreate(dir: string, name: string): LocalIdentity {
  try {
    return loadIdentity(dir, name);
  } catch (e) {
    if (!isNexusError(e, "IDENTITY_NOT_FOUND")) throw e;
    return createIdentity(dir, { name, makeDefault: false });
  }
}
