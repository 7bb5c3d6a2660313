/** The API route modules the stack mounts beside the ledger routes (each part adds its own here). */
import type { ApiModule } from "../api/app.ts";
import { commandRoutes } from "../api/routes/commands.ts";
import { CONSOLE_DIST_DIR, consoleReadRoutes, consoleRoutes } from "../api/routes/console.ts";
import { imvuRoutes } from "../api/routes/imvus.ts";
import { exitRoutes } from "../api/routes/exit.ts";
import { mailRoutes } from "./services/mail-api.ts";
import { dnsRoutes } from "../api/routes/dns.ts";
import { dnsServiceOf } from "./services/dns.ts";
import { computeRoutes } from "../api/routes/compute.ts";
import { computeOf } from "./services/compute.ts";
import { auditRoutes } from "../api/routes/audit.ts";
import { auditPlatform } from "./audit.ts";
import type { Platform } from "./platform.ts";
import type { RunningService } from "./service.ts";

/** Route modules for a started platform and its running services. */
export function apiModules(platform: Platform, services: readonly RunningService[]): ApiModule[] {
  const { pipeline, ledger, verifierKey } = platform;
  return [
    commandRoutes({ pipeline }),
    imvuRoutes({ pipeline, ledger, verifierKey, services: () => Object.fromEntries(services.map((s) => [s.name, s.listens ?? {}])) }),
    consoleReadRoutes({ pipeline, ledger }),
    mailRoutes({ platform }),
    dnsRoutes({ platform, verifier: dnsServiceOf(services) }),
    computeRoutes({ platform, compute: computeOf(services) }),
    exitRoutes({ platform, fabric: computeOf(services)?.fabric?.fabric }),
    auditRoutes({ run: () => auditPlatform(platform, services) }),
    consoleRoutes({ distDir: CONSOLE_DIST_DIR }),
  ];
}
