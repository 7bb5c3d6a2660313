import { defineErrors } from "./errors.ts";

/** Errors shared by every boundary (CLI flags, API parameters, files). */
export const commonErrors = defineErrors({
  INPUT_INVALID: { message: "The input is not valid; fix the named field and retry", http: 400, exit: 2 },
  INPUT_TOO_LARGE: { message: "The input is larger than the declared limit", http: 413, exit: 2 },
  NOT_FOUND: { message: "No such resource", http: 404, exit: 3 },
  INTERNAL: { message: "Internal error; the operation was not applied, see the server log", http: 500, exit: 70 },
});
