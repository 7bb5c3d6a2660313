/** The pure checks of the stack audit (docs/operations.md, "The stack audit") and its report format. */
export * from "./report.ts";
export { checkSplits, SPLITS_TITLE } from "./splits.ts";
export { checkQuotas, overEnvelope, QUOTAS_TITLE } from "./quotas.ts";
export {
  catalogueProblems, checkGates, CONSTITUTION_CATALOGUE, DESTRUCTIVE_TYPES, entryGateProblem, entryRequirements, GATES_TITLE,
  REQUIRED_BY_TYPE, requiredGates, type GateCatalogue, type Requirement,
} from "./gates.ts";
