/** An installation (Platform.open on a temp home) with the compute service module, and creators acting on it. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIdentity, type LocalIdentity } from "../../src/core/identity/index.ts";
import { parseEntry, type Receipt } from "../../src/core/pipeline/pipeline.ts";
import { signCommand, type CommandDraft, type SignedCommand } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { Platform, signerOf } from "../../src/platform/platform.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { createComputeService, type ComputeServiceOptions, type RunningCompute } from "../../src/platform/services/compute.ts";
import { PodmanDriver } from "../../src/services/compute/podman.ts";
import { fabricId } from "./support.ts";

/** An installation under test. */
export interface Site {
  readonly home: string;
  readonly platform: Platform;
  readonly fabric: string;
  compute: RunningCompute;
  readonly logs: string[];
  /** Stops the compute module and starts a new one on the same home and fabric (a restart of Nexus). */
  restartCompute(): Promise<RunningCompute>;
  done(): Promise<void>;
}

/** Opens a platform on a temp home and starts the compute module on a fresh fabric. */
export async function openSite(opts: ComputeServiceOptions = {}): Promise<Site> {
  const home = mkdtempSync(join(tmpdir(), "nexus-compute-int-"));
  const platform = await Platform.open({ home });
  const fabric = opts.fabric ?? fabricId();
  const logs: string[] = [];
  const module = createComputeService({ fabric, meterIntervalMs: 2000, resyncMs: 60_000, debounceMs: 30, ...opts });
  const start = async (): Promise<RunningCompute> =>
    (await module.start({ platform, config: { host: "127.0.0.1", ports: DEFAULT_PORTS, public: false }, log: (l) => logs.push(l) })) as RunningCompute;
  const site: Site = {
    home,
    platform,
    fabric,
    logs,
    compute: await start(),
    restartCompute: async () => {
      await site.compute.stop();
      site.compute = await start();
      return site.compute;
    },
    done: async () => {
      try {
        await site.compute.stop();
        await site.compute.fabric?.teardown({ volumes: true });
      } finally {
        await platform.close();
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
  return site;
}

/** A registered person identity in the site's creators' keyring. */
export async function person(site: Site, name: string): Promise<LocalIdentity> {
  const id = createIdentity(join(site.home, "creators"), { name, makeDefault: false });
  const r = await site.platform.pipeline.submit(signCommand({ type: "identity.inception", body: { inception: id.kel[0] } }, signerOf(id)).json);
  assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
  return id;
}

/** Signs `draft` as `id`. */
export function sign(id: LocalIdentity, draft: CommandDraft): SignedCommand {
  return signCommand(draft, signerOf(id));
}

/** Signs and submits. */
export function act(site: Site, id: LocalIdentity, draft: CommandDraft): Promise<Receipt> {
  return site.platform.pipeline.submit(sign(id, draft).json);
}

/** Signs, submits and expects the command applied. */
export async function applied(site: Site, id: LocalIdentity, draft: CommandDraft): Promise<Receipt> {
  const r = await act(site, id, draft);
  assert.equal(r.outcome, "applied", `${draft.type}: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
  return r;
}

/** Expects a recorded denial whose failing gates are exactly `gates`. */
export function deniedBy(r: Receipt, gates: readonly number[]): void {
  assert.equal(r.outcome, "denied", JSON.stringify(r.gates));
  assert.deepEqual(r.gates.filter((g) => !g.pass).map((g) => g.gate), [...gates], JSON.stringify(r.gates.filter((g) => !g.pass)));
}

/** Creates IMVU `name` owned by `owner` with a small envelope (disk 32 MiB). */
export async function createImvu(site: Site, owner: LocalIdentity, name: string, over: Record<string, unknown> = {}): Promise<void> {
  const envelope = { ...envelopeToWire(ENVELOPE_PROFILES.small), diskBytes: String(32 * 1024 * 1024), ...over };
  await applied(site, owner, { type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: "imvu", envelope } });
}

/** The decoded command of ledger entry `index`. */
export async function commandAt(site: Site, index: string | bigint): Promise<{ type: string; actor: string; imvu?: string; body: Record<string, unknown>; outcome: string }> {
  const e = parseEntry(await site.platform.ledger.entry(BigInt(index)));
  const env = e.envelope as { payload: string };
  const cmd = JSON.parse(Buffer.from(env.payload, "base64").toString("utf8")) as { type: string; actor: string; imvu?: string; body: Record<string, unknown> };
  return { ...cmd, outcome: e.outcome };
}

/** Every recorded command of the ledger (decoded), in order. */
export async function allCommands(site: Site): Promise<Awaited<ReturnType<typeof commandAt>>[]> {
  const out: Awaited<ReturnType<typeof commandAt>>[] = [];
  for (let i = 0n; i < site.platform.ledger.size; i++) out.push(await commandAt(site, i));
  return out;
}

/** `podman inspect` of a container, as JSON. */
export function inspect(id: string): { HostConfig: { Memory: number; NanoCpus: number; PidsLimit: number; ReadonlyRootfs: boolean }; State: { Running: boolean; StartedAt: string } } {
  const r = spawnSync("podman", ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "inspect", id], { encoding: "utf8" });
  const list = JSON.parse(r.stdout) as ReturnType<typeof inspect>[];
  const first = list[0];
  assert.ok(first, `podman inspect ${id}`);
  return first;
}

/** The fabric's containers (id and state) as podman shows them. */
export async function containers(site: Site): Promise<string[]> {
  const driver = new PodmanDriver({ workDir: join(site.home, "inspect") });
  return (await driver.list({ "nexus.fabric": site.fabric })).map((c) => `${c.labels["nexus.workload"] ?? ""}:${c.id}:${c.state}`).sort();
}
