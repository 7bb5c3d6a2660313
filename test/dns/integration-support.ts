/**
 * Support of the DNS integration tests: a real installation (Platform.open on a temp home, SQLite)
 * with the DNS service module started on free ports, creators acting through signed commands, and
 * dig against the served zones.
 */
import assert from "node:assert/strict";
import type { LocalIdentity } from "../../src/core/identity/index.ts";
import type { Receipt } from "../../src/core/pipeline/pipeline.ts";
import { createDnsService, type DnsRunning, type DnsServiceOptions } from "../../src/platform/services/dns.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { act, envelope, install, person, type Installation } from "../pipeline/support.ts";

/** An installation with its DNS service running. */
export interface DnsInstallation {
  readonly inst: Installation;
  readonly dns: DnsRunning;
  /** The authoritative server's port. */
  readonly port: number;
  readonly log: string[];
  stop(): Promise<void>;
}

/** Opens an installation and starts the DNS service on free ports (the resolver forwards to `upstreams`). */
export async function startDns(opts: DnsServiceOptions = {}): Promise<DnsInstallation> {
  const inst = await install("sqlite");
  const log: string[] = [];
  try {
    const module = createDnsService({ verifyIntervalMs: 200, meterIntervalMs: 3_600_000, ...opts, config: { upstreams: [{ host: "127.0.0.1", port: 9 }], ...opts.config } });
    const dns = (await module.start({
      platform: inst.platform,
      config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, dns: 0, resolver: 0 }, public: false },
      log: (line) => log.push(line),
    })) as DnsRunning;
    return {
      inst, dns, port: dns.server.port, log,
      stop: async () => {
        await dns.stop();
        await inst.cleanup();
      },
    };
  } catch (e) {
    await inst.cleanup();
    throw e;
  }
}

/** Creates a creator and its IMVU `name` (small envelope, with overrides). */
export async function creatorWithImvu(d: DnsInstallation, name: string, env: Record<string, unknown> = {}): Promise<{ owner: LocalIdentity; receipt: Receipt }> {
  const owner = await person(d.inst, `owner-${name}`);
  const receipt = await act(d.inst, owner, { type: "imvu.create", imvu: name, body: { name, jurisdiction: "DE", class: "imvu", envelope: envelope(env) } });
  assert.equal(receipt.outcome, "applied", JSON.stringify(receipt.gates.filter((g) => !g.pass)));
  return { owner, receipt };
}

/** Sets an RRset through the pipeline as `who`. */
export function setRRset(d: DnsInstallation, who: LocalIdentity, imvu: string, name: string, type: string, values: unknown[], ttl?: number): Promise<Receipt> {
  return act(d.inst, who, { type: "dns.rrset.set", imvu, body: { name, type, values, ...(ttl === undefined ? {} : { ttl }) } });
}
