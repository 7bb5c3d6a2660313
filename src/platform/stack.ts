/**
 * The running stack of one installation: the platform (store, ledger, pipeline), the HTTP API
 * and every service module, started in order and stopped in reverse. `nexus up` is this plus the
 * console output; tests start it on free ports.
 */
import type { FastifyInstance } from "fastify";
import { buildApi, type ApiModule } from "../api/app.ts";
import { Platform, type PlatformConfig } from "./platform.ts";
import type { RunningService, ServiceModule, StackConfig } from "./service.ts";
import { SERVICE_MODULES } from "./services/index.ts";
import { apiModules } from "./api-modules.ts";

/** What `startStack` needs. */
export interface StackOptions extends PlatformConfig {
  readonly config: StackConfig;
  /** Service modules to start (default: SERVICE_MODULES). */
  readonly modules?: readonly ServiceModule[];
  readonly log?: (line: string) => void;
}

/** A started stack. */
export interface Stack {
  readonly platform: Platform;
  readonly api: FastifyInstance;
  /** The API's base URL. */
  readonly apiUrl: string;
  readonly services: readonly RunningService[];
  /** Stops services (reverse order), the API, then closes the platform. */
  stop(): Promise<void>;
}

/** Opens the platform and starts the API and the service modules. */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const platform = await Platform.open(opts);
  const services: RunningService[] = [];
  let api: FastifyInstance | undefined;
  const stop = async (): Promise<void> => {
    for (const s of [...services].reverse()) {
      try {
        await s.stop();
      } catch (e) {
        log(`${s.name}: stop failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await api?.close();
    await platform.close();
  };
  try {
    for (const m of opts.modules ?? SERVICE_MODULES) {
      services.push(await m.start({ platform, config: opts.config, log: (line) => log(`${m.name}: ${line}`), services: [...services] }));
    }
    const modules: ApiModule[] = apiModules(platform, services);
    api = await buildApi({ ledger: platform.ledger, modules });
    await api.listen({ host: opts.config.host, port: opts.config.ports.api });
    const addr = api.server.address();
    const port = typeof addr === "object" && addr ? addr.port : opts.config.ports.api;
    const host = opts.config.host.includes(":") ? `[${opts.config.host}]` : opts.config.host;
    return { platform, api, apiUrl: `http://${host}:${port}`, services, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
