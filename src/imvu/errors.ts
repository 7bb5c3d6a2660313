/** Error codes of the IMVU lifecycle part (docs/errors.md, "## imvu exit"). */
import { defineErrors } from "../core/errors.ts";

/** The exit part's errors. */
export const exitErrors = defineErrors({
  EXIT_NOT_REQUESTED: { message: "The IMVU has no recorded exit request; submit imvu.exit.request first (`nexus imvu exit` does)", http: 409, exit: 1 },
  EXIT_BUNDLE_INVALID: { message: "The exit bundle is incomplete or altered; the report lists each missing or altered part", http: 422, exit: 1 },
  EXIT_OUT_NOT_EMPTY: { message: "The output directory exists and is not empty", http: 400, exit: 2 },
});

/** An exit error code. */
export type ExitErrorCode = keyof typeof exitErrors.specs;
