/** CLI output and error handling shared by every subcommand. */
import { isNexusError } from "../core/errors.ts";

/** Serialises bigint as decimal strings so --json output is plain JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2);
}

/** Prints `value` as JSON when `json` is set, else with the given human formatter. */
export function emit<T>(value: T, json: boolean | undefined, human: (v: T) => string): void {
  process.stdout.write((json ? toJson(value) : human(value)) + "\n");
}

/** Runs a command action, mapping typed errors to their exit codes and a one-line message. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (isNexusError(e)) {
        process.stderr.write(`nexus: ${e.code}: ${e.message}\n`);
        process.exitCode = e.exit;
        return;
      }
      process.stderr.write(`nexus: INTERNAL: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 70;
    }
  };
}
