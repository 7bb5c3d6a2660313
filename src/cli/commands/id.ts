/**
 * `nexus id ...`: the creator's identities in the local keyring ($NEXUS_KEYRING, default
 * ~/.config/nexus/keyring; see docs/identity.md). Private keys never leave the keyring: `create`
 * and `rotate` print the signed key event to register with a platform, `export-public` the key
 * event log anyone can verify. Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 not found/busy.
 */
import type { Command } from "commander";
import {
  createIdentity,
  exportPublic,
  keyringDir,
  listIdentities,
  loadIdentity,
  rotateIdentity,
  setDefaultIdentity,
  type IdentitySummary,
  type LocalIdentity,
  type SignedKeyEvent,
} from "../../core/identity/index.ts";
import { action, emit } from "../output.ts";

interface JsonOpt {
  readonly json?: boolean;
}

/** What `show`, `create` and `rotate` print about an identity (no private material). */
interface IdentityView {
  readonly id: string;
  readonly name?: string;
  readonly seq: number;
  readonly publicKey: string;
  readonly nextKeyDigest: string;
  readonly lastEventDigest: string;
  readonly isDefault: boolean;
  readonly path: string;
  readonly event?: SignedKeyEvent;
}

function view(l: LocalIdentity, event?: SignedKeyEvent): IdentityView {
  const { id, state, isDefault, path } = l;
  return {
    id,
    ...(l.name === undefined ? {} : { name: l.name }),
    seq: state.seq,
    publicKey: state.publicKey,
    nextKeyDigest: state.nextKeyDigest,
    lastEventDigest: state.lastEventDigest,
    isDefault,
    path,
    ...(event === undefined ? {} : { event }),
  };
}

function human(v: IdentityView): string {
  const rows: [string, string][] = [
    ["id", v.id],
    ["name", v.name ?? "(none)"],
    ["seq", String(v.seq)],
    ["public key", v.publicKey],
    ["next key digest", v.nextKeyDigest],
    ["default", v.isDefault ? "yes" : "no"],
    ["file", v.path],
  ];
  return rows.map(([k, val]) => `${k.padEnd(16)}${val}`).join("\n");
}

function listLine(s: IdentitySummary): string {
  return `${s.isDefault ? "*" : " "} ${s.id}  ${(s.name ?? "-").padEnd(20)} seq ${s.seq}`;
}

/** Adds `id` and its verbs to the program. */
export function register(program: Command): void {
  const id = program
    .command("id")
    .description("self-certifying identities in the local keyring ($NEXUS_KEYRING, default ~/.config/nexus/keyring)");
  addCreate(id);
  addShow(id);
  addRotate(id);
  addExportPublic(id);
  addList(id);
  addDefault(id);
}

function addCreate(id: Command): void {
  id.command("create")
    .description("create an identity (a current key and a pre-committed next key); the first one becomes the default")
    .option("--name <name>", "a local name: 1-63 of [A-Za-z0-9._-] (part of the inception, so public)")
    .option("--default", "make it the default identity")
    .option("--json", "print JSON (with the signed inception event)")
    .action(
      action((opts: JsonOpt & { name?: string; default?: boolean }) => {
        const created = createIdentity(keyringDir(), { ...(opts.name === undefined ? {} : { name: opts.name }), makeDefault: opts.default === true });
        emit(view(created, created.kel[0]), opts.json, (v) => `created\n${human(v)}`);
      }),
    );
}

function addShow(id: Command): void {
  id.command("show")
    .description("show an identity's current key state")
    .argument("[identity]", "id or name (default: the default identity)")
    .option("--json", "print JSON")
    .action(
      action((nameOrId: string | undefined, opts: JsonOpt) => {
        emit(view(loadIdentity(keyringDir(), nameOrId)), opts.json, human);
      }),
    );
}

function addRotate(id: Command): void {
  id.command("rotate")
    .description("rotate to the pre-committed next key and commit to a fresh one")
    .argument("[identity]", "id or name (default: the default identity)")
    .option("--json", "print JSON (with the signed rotation event)")
    .action(
      action((nameOrId: string | undefined, opts: JsonOpt) => {
        const { identity, event } = rotateIdentity(keyringDir(), nameOrId);
        emit(view(identity, event), opts.json, (v) => `rotated to seq ${v.seq}\n${human(v)}`);
      }),
    );
}

function addExportPublic(id: Command): void {
  id.command("export-public")
    .description("print the identity's public key event log as JSON (verifiable by anyone)")
    .argument("[identity]", "id or name (default: the default identity)")
    .option("--json", "print JSON (always the case)")
    .action(
      action((nameOrId: string | undefined, _opts: JsonOpt) => {
        emit(exportPublic(keyringDir(), nameOrId), true, () => "");
      }),
    );
}

function addList(id: Command): void {
  id.command("list")
    .description("list the keyring's identities (* marks the default)")
    .option("--json", "print JSON")
    .action(
      action((opts: JsonOpt) => {
        const all = listIdentities(keyringDir());
        emit(all, opts.json, (v) => (v.length === 0 ? "no identities; create one with 'nexus id create'" : v.map(listLine).join("\n")));
      }),
    );
}

function addDefault(id: Command): void {
  id.command("default")
    .description("show the default identity, or make the given one the default")
    .argument("[identity]", "id or name to make the default")
    .option("--json", "print JSON")
    .action(
      action((nameOrId: string | undefined, opts: JsonOpt) => {
        const dir = keyringDir();
        const chosen = nameOrId === undefined ? loadIdentity(dir) : setDefaultIdentity(dir, nameOrId);
        emit(view(chosen), opts.json, human);
      }),
    );
}
