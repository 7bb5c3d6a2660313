/**
 * `nexus imvu …`, `nexus consent …`, `nexus delegate …`, `nexus id register`: the creator's
 * governance commands. Each is built and signed here with the keyring identity and posted to
 * $NEXUS_API; the receipt is verified before anything is printed (src/cli/client.ts).
 * Exit codes: 0 applied, 1 denied by a gate or a failed check, 2 bad input, 3 API unreachable.
 */
import type { Command } from "commander";
import { commonErrors } from "../../core/common-errors.ts";
import { isNexusError } from "../../core/errors.ts";
import { createIdentity, keyringDir, listIdentities } from "../../core/identity/index.ts";
import type { Receipt } from "../../core/pipeline/pipeline.ts";
import type { CommandDraft } from "../../core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire, type Envelope } from "../../core/policy/envelope.ts";
import { JURISDICTIONS } from "../../core/policy/jurisdiction.ts";
import { apiGet, apiGetPublic, localIdentity, submitDraft, type ClientOptions } from "../client.ts";
import { action, emit } from "../output.ts";
import { createAll } from "./imvu-create.ts";

/** Common flags of commands that talk to the API. */
export interface ApiFlags {
  /** `--as`: the keyring identity that signs (`--identity` is left to verbs that bind one). */
  readonly as?: string;
  readonly api?: string;
  readonly json?: boolean;
}

/** Client options from the common flags. */
export function clientOpts(f: ApiFlags): ClientOptions {
  return { identity: f.as, api: f.api };
}

/** Adds --as, --api and --json to a subcommand. */
export function apiFlags(c: Command): Command {
  return c
    .option("--as <name|id>", "keyring identity that signs (default: the keyring's default)")
    .option("--api <url>", "API base URL (default: $NEXUS_API or http://127.0.0.1:8780)")
    .option("--json", "print JSON");
}

/** Prints a receipt (human: one line; --json: the whole receipt). */
export function printReceipt(what: string, r: Receipt, json: boolean | undefined): void {
  emit(r, json, (v) => `${what}: ${v.outcome} at ledger index ${v.index} (tree size ${v.treeSize}; receipt verified)`);
}

const SIZE_RE = /^(\d{1,15})(?:\s*([KMGT])i?B?)?$/i;
const SIZE_SHIFT: Readonly<Record<string, bigint>> = { K: 10n, M: 20n, G: 30n, T: 40n };

/** Parses a byte size flag: 512M, 1G, 1048576, 2GiB. */
export function parseBytes(s: string, flag: string): bigint {
  const m = SIZE_RE.exec(s.trim());
  if (!m?.[1]) throw commonErrors.make("INPUT_INVALID", `${flag} ${s}: use bytes or a size like 512M or 2G`, { field: flag });
  const unit = m[2]?.toUpperCase();
  return BigInt(m[1]) << (unit ? (SIZE_SHIFT[unit] ?? 0n) : 0n);
}

/** Parses CPU as millicores ("500m") or cores ("0.5", "2"), exactly (no floating point). */
export function parseCpuMillis(s: string): number {
  const milli = /^(\d{1,6})m$/.exec(s);
  if (milli?.[1]) return Number(milli[1]);
  const cores = /^(\d{1,3})(?:\.(\d{1,3}))?$/.exec(s);
  if (!cores?.[1]) throw commonErrors.make("INPUT_INVALID", `--cpu ${s}: use cores (0.5, 2) or millicores (500m)`, { field: "cpu" });
  return Number(cores[1]) * 1000 + Number((cores[2] ?? "").padEnd(3, "0"));
}

function parseCount(s: string, flag: string): number {
  if (!/^\d{1,9}$/.test(s)) throw commonErrors.make("INPUT_INVALID", `${flag} ${s}: a whole number`, { field: flag });
  return Number(s);
}

interface EnvelopeFlags {
  readonly profile?: string;
  readonly cpu?: string;
  readonly memory?: string;
  readonly disk?: string;
  readonly pids?: string;
  readonly mailboxes?: string;
  readonly bandwidth?: string;
}

/** The envelope from a profile and flag overrides. */
export function envelopeFromFlags(f: EnvelopeFlags, base?: Envelope): Envelope {
  const profile = f.profile ?? "small";
  if (!Object.hasOwn(ENVELOPE_PROFILES, profile)) {
    throw commonErrors.make("INPUT_INVALID", `--profile ${profile}: one of ${Object.keys(ENVELOPE_PROFILES).join(", ")}`, { field: "profile" });
  }
  const e: Envelope = { ...(base ?? ENVELOPE_PROFILES[profile as keyof typeof ENVELOPE_PROFILES]) };
  return {
    ...e,
    ...(f.cpu === undefined ? {} : { cpuMillis: parseCpuMillis(f.cpu) }),
    ...(f.memory === undefined ? {} : { memoryBytes: parseBytes(f.memory, "--memory") }),
    ...(f.disk === undefined ? {} : { diskBytes: parseBytes(f.disk, "--disk") }),
    ...(f.pids === undefined ? {} : { pids: parseCount(f.pids, "--pids") }),
    ...(f.mailboxes === undefined ? {} : { mailboxes: parseCount(f.mailboxes, "--mailboxes") }),
    ...(f.bandwidth === undefined ? {} : { bandwidthBytesPerSec: parseBytes(f.bandwidth, "--bandwidth") }),
  };
}

function envelopeOptions(c: Command): Command {
  return c
    .option("--profile <name>", "envelope profile: small, medium, large (default small)")
    .option("--cpu <cores>", "CPU: cores (0.5) or millicores (500m)")
    .option("--memory <size>", "memory, e.g. 512M")
    .option("--disk <size>", "volume size, e.g. 1G")
    .option("--pids <n>", "process limit")
    .option("--mailboxes <n>", "mailbox limit")
    .option("--bandwidth <size>", "gateway bandwidth per second, e.g. 5M");
}

/**
 * Makes sure the signing identity exists locally and is registered with the platform (submits
 * its inception when the platform does not know it). Returns the identity id.
 */
export async function ensureRegistered(f: ApiFlags): Promise<string> {
  const dir = keyringDir();
  if (f.as === undefined && listIdentities(dir).length === 0) {
    const created = createIdentity(dir, { name: "creator", makeDefault: true });
    process.stderr.write(`nexus: created identity ${created.id} (creator) in ${dir}\n`);
  }
  const id = localIdentity(clientOpts(f));
  try {
    await apiGetPublic(`/v1/identities/${id.id}`, clientOpts(f));
    return id.id;
  } catch (e) {
    if (!isNexusError(e, "NOT_FOUND")) throw e;
  }
  const first = id.kel[0];
  if (!first) throw new Error("invariant: a keyring identity has an inception event");
  if (id.state.seq !== 0) {
    throw commonErrors.make("INPUT_INVALID", `${id.id} was rotated before it was registered; create a new identity`, { field: "identity" });
  }
  const r = await submitDraft({ type: "identity.inception", body: { inception: first } }, clientOpts(f));
  process.stderr.write(`nexus: registered ${id.id} with the platform (ledger index ${r.index})\n`);
  return id.id;
}

function checkName(name: string): string {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
    throw commonErrors.make("INPUT_INVALID", `--name ${name}: a lower-case DNS label (letters, digits, inner hyphens)`, { field: "name" });
  }
  return name;
}

function checkJurisdiction(cc: string): string {
  const up = cc.toUpperCase();
  if (!JURISDICTIONS.has(up)) throw commonErrors.make("INPUT_INVALID", `--jurisdiction ${cc}: an ISO 3166-1 alpha-2 code, or ZZ`, { field: "jurisdiction" });
  return up;
}

async function submitAndPrint(what: string, draft: CommandDraft, f: ApiFlags): Promise<Receipt> {
  const r = await submitDraft(draft, clientOpts(f));
  printReceipt(what, r, f.json);
  return r;
}

interface CreateFlags extends ApiFlags, EnvelopeFlags {
  readonly name: string;
  readonly jurisdiction: string;
  readonly class: string;
  readonly app?: string;
  readonly bare?: boolean;
  readonly wait: boolean;
}

async function create(f: CreateFlags): Promise<void> {
  const name = checkName(f.name);
  const klass = f.class;
  if (klass !== "imvu" && klass !== "mini-platform") throw commonErrors.make("INPUT_INVALID", "--class imvu or mini-platform", { field: "class" });
  if (f.bare && f.app !== undefined) throw commonErrors.make("INPUT_INVALID", "--app deploys the welcome workload, which --bare leaves out", { field: "app" });
  const envelope = envelopeToWire(envelopeFromFlags(f));
  await createAll({
    name,
    jurisdiction: checkJurisdiction(f.jurisdiction),
    class: klass,
    envelope,
    app: f.app,
    bare: f.bare,
    wait: f.wait,
    json: f.json,
    opts: clientOpts(f),
    ensureIdentity: () => ensureRegistered(f),
  });
}

interface ImvuView {
  readonly name: string;
  readonly owner: string;
  readonly status: string;
  readonly jurisdiction: string;
  readonly class: string;
}

/** Adds `imvu`, `consent`, `delegate` and `id register` to the program. */
export function register(program: Command): void {
  const imvu = program.command("imvu").description("create and govern IMVUs (signed commands through the API)");
  envelopeOptions(apiFlags(imvu.command("create")))
    .description(
      "create an IMVU in one command: the identity if none, the IMVU and its zone, the mailbox creator@<name>.<base>, a welcome workload and its public route; waits until each answers (re-run to resume)",
    )
    .requiredOption("--name <label>", "the IMVU's name (becomes <name>.<base domain>)")
    .option("--jurisdiction <CC>", "ISO 3166-1 jurisdiction tag (ZZ: unspecified)", "ZZ")
    .option("--class <class>", "split class: imvu (55/45) or mini-platform (80/20)", "imvu")
    .option("--app <dir>", "the welcome workload's static site or Node.js app (default: a welcome page)")
    .option("--bare", "only the IMVU and its zone: no mailbox, workload or route")
    .option("--no-wait", "do not wait for DNS, the workload and the gateway to answer")
    .action(action(create));
  apiFlags(imvu.command("list"))
    .description("the IMVUs the signing identity owns or is delegated on")
    .action(
      action(async (f: ApiFlags) => {
        const r = await apiGet<{ imvus: ImvuView[] }>("/v1/imvus", clientOpts(f));
        emit(r, f.json, (v) => (v.imvus.length === 0 ? "(no IMVUs)" : v.imvus.map((i) => `${i.name}\t${i.status}\t${i.class}\t${i.jurisdiction}`).join("\n")));
      }),
    );
  apiFlags(imvu.command("show").argument("<name>"))
    .description("one IMVU: owner, status, envelope")
    .action(
      action(async (name: string, f: ApiFlags) => {
        const r = await apiGet<Record<string, unknown>>(`/v1/imvus/${checkName(name)}`, clientOpts(f));
        emit(r, f.json, (v) => JSON.stringify(v, null, 2));
      }),
    );
  apiFlags(imvu.command("feed").argument("<name>"))
    .description("every command that touched the IMVU, by anyone (gate 14)")
    .action(
      action(async (name: string, f: ApiFlags) => {
        const r = await apiGet<{ feed: { index: string; type: string; actor: string; outcome: string; redirect: boolean }[] }>(
          `/v1/imvus/${checkName(name)}/feed`,
          clientOpts(f),
        );
        emit(r, f.json, (v) => v.feed.map((e) => `${e.index}\t${e.type}\t${e.outcome}${e.redirect ? "\tREDIRECT" : ""}\t${e.actor}`).join("\n"));
      }),
    );
  envelopeOptions(apiFlags(imvu.command("envelope").argument("<name>")))
    .description("change the IMVU's envelope (raising needs the owner; lowering below use is denied)")
    .action(
      action(async (name: string, f: ApiFlags & EnvelopeFlags) => {
        const envelope = envelopeToWire(envelopeFromFlags(f));
        await submitAndPrint(`envelope of ${name}`, { type: "imvu.envelope.change", imvu: checkName(name), body: { envelope } }, f);
      }),
    );
  for (const [verb, type, desc] of [
    ["suspend", "imvu.suspend", "emergency suspension (admins): needs a public --reason; never blocks exit"],
    ["resume", "imvu.resume", "lift a suspension, with a --reason"],
  ] as const) {
    apiFlags(imvu.command(verb).argument("<name>"))
      .description(desc)
      .requiredOption("--reason <text>", "public reason (at least 10 characters)")
      .action(
        action(async (name: string, f: ApiFlags & { reason: string }) => {
          const body = type === "imvu.suspend" ? { reason: f.reason, emergency: true } : { reason: f.reason };
          await submitAndPrint(`${verb} ${name}`, { type, imvu: checkName(name), body }, f);
        }),
      );
  }
  apiFlags(imvu.command("exit-request").argument("<name>"))
    .description("record the owner's exit request (always accepted; `imvu exit` writes the bundle)")
    .action(action(async (name: string, f: ApiFlags) => void (await submitAndPrint(`exit of ${name}`, { type: "imvu.exit.request", imvu: checkName(name), body: {} }, f))));
  apiFlags(imvu.command("depart").argument("<name>"))
    .description("confirm departure after exit: the platform stops serving the IMVU")
    .action(action(async (name: string, f: ApiFlags) => void (await submitAndPrint(`departure of ${name}`, { type: "imvu.depart", imvu: checkName(name), body: {} }, f))));

  const consent = program.command("consent").description("the owner's consent to one exact command (gate 10)");
  apiFlags(consent.command("give"))
    .description("consent to the command whose digest is given (the digest a denied command's author shows you)")
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--digest <sha256>", "hex SHA-256 of the command's canonical payload")
    .option("--note <text>", "why")
    .action(
      action(async (f: ApiFlags & { imvu: string; digest: string; note?: string }) => {
        if (!/^[0-9a-f]{64}$/.test(f.digest)) throw commonErrors.make("INPUT_INVALID", "--digest: 64 lower-case hex digits", { field: "digest" });
        const body = { digest: f.digest, ...(f.note === undefined ? {} : { note: f.note }) };
        await submitAndPrint(`consent on ${f.imvu}`, { type: "consent.give", imvu: checkName(f.imvu), body }, f);
      }),
    );

  const delegate = program.command("delegate").description("let another identity act on your IMVU, scoped to command types");
  apiFlags(delegate.command("grant"))
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--to <id>", "the delegate's identity id")
    .requiredOption("--scope <types>", "comma-separated command types, e.g. dns.rrset.set,dns.rrset.delete")
    .action(
      action(async (f: ApiFlags & { imvu: string; to: string; scope: string }) => {
        const scope = f.scope.split(",").map((s) => s.trim()).filter((s) => s !== "");
        await submitAndPrint(`delegation to ${f.to}`, { type: "delegation.grant", imvu: checkName(f.imvu), body: { delegate: f.to, scope } }, f);
      }),
    );
  apiFlags(delegate.command("revoke"))
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--to <id>", "the delegate's identity id")
    .action(
      action(async (f: ApiFlags & { imvu: string; to: string }) => {
        await submitAndPrint(`revocation of ${f.to}`, { type: "delegation.revoke", imvu: checkName(f.imvu), body: { delegate: f.to } }, f);
      }),
    );
}

/** Adds `register` and `submit-rotation` to the existing `id` command. */
export function registerIdVerbs(program: Command): void {
  const id = program.commands.find((c) => c.name() === "id");
  if (!id) throw new Error("invariant: `id` is registered before its platform verbs");
  apiFlags(id.command("register"))
    .description("register the identity with the platform (submits its signed inception)")
    .action(action(async (f: ApiFlags) => void emit({ id: await ensureRegistered(f) }, f.json, (v) => `registered: ${v.id}`)));
  apiFlags(id.command("submit-rotation"))
    .description("tell the platform about the latest local rotation (after `id rotate`)")
    .action(
      action(async (f: ApiFlags) => {
        const me = localIdentity(clientOpts(f));
        const last = me.kel[me.kel.length - 1];
        if (!last || last.event.kind !== "rotation") throw commonErrors.make("INPUT_INVALID", "the identity has no rotation to submit", { field: "identity" });
        await submitAndPrint(`rotation of ${me.id}`, { type: "identity.rotate", body: { rotation: last } }, f);
      }),
    );
}
