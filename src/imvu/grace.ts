/**
 * The exit grace period (docs/exit.md, "After exit"): after the owner's exit request the platform
 * keeps serving the IMVU until the owner confirms departure (`imvu.depart`) or EXIT_GRACE_MS has
 * passed, when the platform records `imvu.exit.expire`. Gate 13 applies that command only after
 * an exit request and the whole grace period, so an early one is recorded as denied; once applied,
 * every service stops serving the IMVU as for a departure (DNS drops its zones and delegation).
 */
import type { Receipt } from "../core/pipeline/pipeline.ts";
import type { CommandDraft } from "../core/pipeline/sign.ts";
import type { StateReader } from "../core/pipeline/state.ts";
import { EXIT_GRACE_MS } from "../core/policy/gates.ts";
import type { ServiceModule } from "../platform/service.ts";

/** How often the sweeper looks for ended grace periods. */
export const GRACE_SWEEP_INTERVAL_MS = 60 * 60 * 1000;
/** Most expiries one sweep submits. */
export const GRACE_SWEEP_BATCH_MAX = 256;

/** The IMVUs whose grace period has ended at `nowMs` and that have not departed (pure). */
export function dueForExpiry(state: StateReader, nowMs: number): string[] {
  const out: string[] = [];
  for (const [name, r] of state.list("imvu")) {
    const e = r.exit;
    if (!e || e.departedIndex !== undefined || e.requestedAt === undefined) continue;
    if (Date.parse(e.requestedAt) + EXIT_GRACE_MS <= nowMs) out.push(name);
    if (out.length >= GRACE_SWEEP_BATCH_MAX) break;
  }
  return out;
}

/** What the sweeper needs of the platform. */
export interface GraceHost {
  readonly state: StateReader;
  submitAsPlatform(draft: CommandDraft): Promise<Receipt>;
}

/** Records `imvu.exit.expire` for each IMVU whose grace period has ended; returns the receipts. */
export async function sweepExpiredExits(host: GraceHost, nowMs: number): Promise<Receipt[]> {
  const out: Receipt[] = [];
  for (const imvu of dueForExpiry(host.state, nowMs)) out.push(await host.submitAsPlatform({ type: "imvu.exit.expire", imvu, body: {} }));
  return out;
}

/** The service module that sweeps once at start and then every GRACE_SWEEP_INTERVAL_MS. */
export function createExitGraceService(opts: { intervalMs?: number; now?: () => number } = {}): ServiceModule {
  return {
    name: "exit-grace",
    start: async (ctx) => {
      const now = opts.now ?? (() => Date.now());
      const sweep = async (): Promise<void> => {
        try {
          for (const r of await sweepExpiredExits(ctx.platform, now())) ctx.log(`grace period ended: imvu.exit.expire ${r.outcome} at ledger index ${r.index}`);
        } catch (e) {
          ctx.log(`sweep failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      };
      await sweep();
      const timer = setInterval(() => void sweep(), opts.intervalMs ?? GRACE_SWEEP_INTERVAL_MS);
      timer.unref();
      return { name: "exit-grace", endpoints: [`exit grace period ${EXIT_GRACE_MS / 86_400_000} days`], stop: async () => clearInterval(timer) };
    },
  };
}

/** The sweeper with its defaults. */
export const exitGraceService: ServiceModule = createExitGraceService();
