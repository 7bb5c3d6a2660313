import { defineErrors } from "../errors.ts";

/** The answer to a command that passed authentication and was recorded, but failed a gate. */
export const policyErrors = defineErrors({
  GATE_DENIED: { message: "The command was recorded and denied by the gates", http: 403, exit: 1 },
});
