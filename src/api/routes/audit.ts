/**
 * The stack audit over HTTP (docs/operations.md, "The stack audit"):
 *   POST /v1/audit          runs an audit now and answers its report
 *   GET  /v1/audit/latest   the last report (404 NOT_FOUND before the first)
 * Anyone may run and read it: the report holds counts, check titles and problem lines that name
 * ledger indices, IMVUs, records and routes (all public in the ledger and in DNS), never amounts
 * or usage figures. One audit runs at a time; a POST while one runs waits for that run and gets
 * its report, so callers cannot pile audits onto the machine.
 */
import type { FastifyInstance } from "fastify";
import { commonErrors } from "../../core/common-errors.ts";
import { AUDIT_CHECK_IDS, type AuditReport } from "../../core/audit/report.ts";
import type { ApiModule } from "../app.ts";
import { errorResponses, jsonResponse, type OpenApiPaths } from "../openapi.ts";

/** What the audit routes need: something that runs an audit (src/platform/audit.ts). */
export interface AuditRoutesOptions {
  readonly run: () => Promise<AuditReport>;
}

const reportSchema = {
  type: "object",
  required: ["version", "at", "treeSize", "root", "ok", "checks"],
  properties: {
    version: { const: 1 },
    at: { type: "string", format: "date-time" },
    treeSize: { type: "string", description: "the ledger size audited (decimal)" },
    root: { type: "string", description: "hex Merkle root of that tree (verify it against a signed checkpoint)" },
    ok: { type: "boolean" },
    checks: {
      type: "array",
      items: {
        type: "object",
        required: ["id", "title", "ok", "problems", "checked"],
        properties: {
          id: { type: "string", enum: [...AUDIT_CHECK_IDS] },
          title: { type: "string" },
          ok: { type: "boolean" },
          problems: { type: "array", items: { type: "string" } },
          checked: { type: "integer" },
          skipped: { type: "string", description: "why the check did not run (it then counts as ok)" },
        },
      },
    },
  },
};

/** The OpenAPI description of the audit routes. */
export const auditDocs: OpenApiPaths = {
  "/v1/audit": {
    post: {
      summary: "Run the stack audit now (one at a time: a call during a run gets that run's report)",
      responses: { "200": jsonResponse("The report (ok false on any violation)", reportSchema), ...errorResponses(500, 503) },
    },
  },
  "/v1/audit/latest": {
    get: {
      summary: "The last audit report",
      responses: { "200": jsonResponse("The report", reportSchema), ...errorResponses(404) },
    },
  },
};

/** The audit routes. */
export function auditRoutes(opts: AuditRoutesOptions): ApiModule {
  let running: Promise<AuditReport> | undefined;
  let latest: AuditReport | undefined;
  const runOnce = (): Promise<AuditReport> => {
    running ??= opts.run().then(
      (r) => {
        latest = r;
        running = undefined;
        return r;
      },
      (e: unknown) => {
        running = undefined;
        throw e;
      },
    );
    return running;
  };
  return {
    name: "audit",
    docs: auditDocs,
    register(app: FastifyInstance): void {
      app.post("/v1/audit", async () => runOnce());
      app.get("/v1/audit/latest", async () => {
        if (latest === undefined) throw commonErrors.make("NOT_FOUND", "no audit has run yet: POST /v1/audit");
        return latest;
      });
    },
  };
}
