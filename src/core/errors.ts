/**
 * Typed errors with stable codes. Each part declares its codes with `defineErrors` in its own
 * `errors.ts`; `src/core/error-registry.ts` gathers them into the one registry that maps a code to
 * its wire forms (HTTP status, CLI exit code) and that docs/errors.md must list in full.
 */

/** How one error code shows on each wire. */
export interface ErrorSpec {
  /** What went wrong and what to do about it. */
  readonly message: string;
  /** HTTP status when it crosses the API. */
  readonly http: number;
  /** Process exit code when it ends a CLI command (2 = bad input, 1 = failed check, 3+ = other). */
  readonly exit: number;
}

/** An expected failure with a stable code; never thrown for broken invariants (use assert). */
export class NexusError extends Error {
  readonly code: string;
  readonly http: number;
  readonly exit: number;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, spec: ErrorSpec, detail?: string, details?: Record<string, unknown>) {
    super(detail === undefined ? spec.message : `${spec.message}: ${detail}`);
    this.name = "NexusError";
    this.code = code;
    this.http = spec.http;
    this.exit = spec.exit;
    this.details = details;
  }

  /** The wire form used by the API and the CLI's --json output. */
  toJSON(): { error: { code: string; message: string; details?: Readonly<Record<string, unknown>> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/** A part's error table: `fail(code, detail)` builds the error, `specs` lists them for the registry. */
export interface ErrorTable<C extends string> {
  readonly specs: Readonly<Record<C, ErrorSpec>>;
  make(code: C, detail?: string, details?: Record<string, unknown>): NexusError;
}

/** Declares a part's error codes (each starting with the part's prefix, e.g. `LEDGER_`). */
export function defineErrors<C extends string>(specs: Record<C, ErrorSpec>): ErrorTable<C> {
  return {
    specs,
    make: (code, detail, details) => new NexusError(code, specs[code], detail, details),
  };
}

/** True when `e` is a NexusError, optionally with the given code. */
export function isNexusError(e: unknown, code?: string): e is NexusError {
  return e instanceof NexusError && (code === undefined || e.code === code);
}
