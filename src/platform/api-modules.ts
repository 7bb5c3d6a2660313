/** The API route modules the stack mounts beside the ledger routes (each part adds its own here). */
import type { ApiModule } from "../api/app.ts";
import type { Platform } from "./platform.ts";
import type { RunningService } from "./service.ts";

/** Route modules for a started platform and its running services. */
export function apiModules(platform: Platform, services: readonly RunningService[]): ApiModule[] {
  void services;
  void platform;
  return [];
}
