/**
 * How a service joins the running stack. Each service part (services/dns, services/mail, ...)
 * stays free of the platform; its adapter in src/platform/services/<name>.ts is a ServiceModule
 * that tails the pipeline (`platform.pipeline.onRecorded`, `platform.state`), feeds the service
 * the projection it needs, and reports back (usage, throttling) as signed commands of its own
 * service identity (`platform.submitAsService`). Nothing else reaches state.
 */
import type { Platform } from "./platform.ts";

/** Ports of the embedded default (ARCHITECTURE.md, "Ports of the embedded default"). */
export interface StackPorts {
  readonly api: number;
  readonly dns: number;
  readonly resolver: number;
  readonly smtp: number;
  readonly submission: number;
  readonly imap: number;
  readonly gateway: number;
  /** The gateway's TLS port (HTTP/2 and HTTP/1.1 with SNI). */
  readonly gatewayTls: number;
}

/** The embedded defaults. */
export const DEFAULT_PORTS: StackPorts = { api: 8780, dns: 1053, resolver: 1054, smtp: 2525, submission: 2587, imap: 1143, gateway: 8080, gatewayTls: 8443 };
/** The standard ports `--public` asks for. */
export const PUBLIC_PORTS: StackPorts = { api: 8780, dns: 53, resolver: 1054, smtp: 25, submission: 587, imap: 993, gateway: 80, gatewayTls: 443 };

/** What a running stack was configured with. */
export interface StackConfig {
  /** Address every listener binds (127.0.0.1 unless configured). */
  readonly host: string;
  readonly ports: StackPorts;
  /** `nexus up --public`. */
  readonly public: boolean;
}

/** What a service module gets when it starts. */
export interface ServiceContext {
  readonly platform: Platform;
  readonly config: StackConfig;
  /** One line to the operator's console (prefixed by the module's name). */
  readonly log: (line: string) => void;
  /** The services started before this one (the gateway finds compute's workload addresses here). */
  readonly services?: readonly RunningService[];
}

/** A started service. */
export interface RunningService {
  readonly name: string;
  /** Where it listens, for people: e.g. "dns udp+tcp 127.0.0.1:1053". */
  readonly endpoints: readonly string[];
  /** Where it listens, for programs: protocol → "host:port" (e.g. {dns: "127.0.0.1:1053"}). */
  readonly listens?: Readonly<Record<string, string>>;
  /** Stops listening and flushes what it must (usage reports). */
  stop(): Promise<void>;
}

/** A service of the stack. `start` fails (throws) only for what the operator must fix; a service
 * that cannot run on this machine (podman missing) starts degraded and says so in `endpoints`. */
export interface ServiceModule {
  readonly name: string;
  start(ctx: ServiceContext): Promise<RunningService>;
}
