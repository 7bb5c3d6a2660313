/**
 * The mail routes of the API (docs/mail-ledger.md, "API"):
 *
 *   GET  /v1/mail/mailboxes[?imvu=<name>]   signed read (RFC 9421 or bearer token), gate 16: the
 *        mailboxes of the caller's IMVUs (owner or delegate) and those bound to the caller; an
 *        IMVU that is not the caller's answers 404 as one that does not exist.
 *   POST /v1/mail/verifiers {imvu, address, verifier}   hands a mailbox's scrypt verifier to the
 *        per-IMVU secret store. The authorisation is the ledger: the verifier is stored only when
 *        its SHA-256 is the `verifierCommitment` an applied, owner-signed (or consented) command
 *        recorded for that mailbox, so nobody but the command's author can produce one that is
 *        accepted, and replaying it stores the same bytes again. The password never leaves the
 *        CLI; the verifier never enters the ledger.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import { defineErrors } from "../../core/errors.ts";
import { mailboxKey, type MailboxRecord } from "../../core/pipeline/mail-state.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { MailAddress } from "../../core/policy/mail-schemas.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import type { ApiModule } from "../../api/app.ts";
import { callerOf, type TokenAuthority } from "../../api/auth.ts";
import { apiErrors } from "../../api/errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths, parameter } from "../../api/openapi.ts";
import { parseInput } from "../../api/params.ts";
import { sharedTokenAuthority } from "../../api/routes/commands.ts";
import { commitment, MailSecretStore, parseVerifier } from "../../services/mail/directory.ts";

/** Error codes of the mail ledger side (docs/errors.md, "## mail (ledger)"). */
export const mailLedgerErrors = defineErrors({
  MAIL_MAILBOX_NOT_FOUND: { message: "No such mailbox among the caller's, or it is being deleted", http: 404, exit: 1 },
  MAIL_VERIFIER_MISMATCH: {
    message: "The verifier's SHA-256 is not the commitment the ledger recorded for this mailbox; submit mail.mailbox.add or mail.mailbox.passwd with its commitment first",
    http: 409,
    exit: 1,
  },
});

/** Longest verifier string accepted (the PHC string of scrypt is ~110 characters). */
export const VERIFIER_CHARS_MAX = 256;

/** What the mail routes need. */
export interface MailRoutesOptions {
  /** The platform (its committed projection and home directory). */
  readonly platform: { readonly state: StateReader; readonly home: string };
  /** Checks read tokens (default: the process's shared one). */
  readonly tokens?: TokenAuthority;
  /** Seconds clock for signature freshness (tests move it). */
  readonly clockSec?: () => number;
}

/** A mailbox as the API shows it (no secret, not even the commitment's preimage). */
export interface MailboxView {
  readonly imvu: string;
  readonly address: string;
  readonly identity: string;
  readonly status: "active" | "deleting";
  readonly verifierCommitment: string;
  /** Whether the secret store holds the verifier the ledger committed to (logins work). */
  readonly verifierStored: boolean;
  readonly createdIndex: string;
  readonly changedIndex: string;
  /**
   * The DKIM selectors the mail service has published for the mailbox's domain
   * (`mail.dkim.publish`); empty until then, which follows the mailbox's creation.
   */
  readonly dkimSelectors: readonly string[];
}

const listQuery = z.strictObject({ imvu: ImvuName.optional() });
const verifierBody = z.strictObject({ imvu: ImvuName, address: MailAddress, verifier: z.string().min(1).max(VERIFIER_CHARS_MAX) });

const mailboxSchema = {
  type: "object",
  required: ["imvu", "address", "identity", "status", "verifierCommitment", "verifierStored", "createdIndex", "changedIndex", "dkimSelectors"],
  properties: {
    imvu: { type: "string" }, address: { type: "string" }, identity: { type: "string" }, status: { enum: ["active", "deleting"] },
    verifierCommitment: { type: "string" }, verifierStored: { type: "boolean" }, createdIndex: { type: "string" }, changedIndex: { type: "string" },
    dkimSelectors: { type: "array", items: { type: "string" }, description: "the DKIM keys published for the mailbox's domain (mail.dkim.publish); empty until the mail service has published them" },
  },
};

/** The OpenAPI description of the mail routes. */
export const mailDocs: OpenApiPaths = {
  "/v1/mail/mailboxes": {
    get: {
      summary: "The mailboxes of the caller's IMVUs and those bound to the caller (signed read; gate 16)",
      parameters: [parameter("imvu", "query", ImvuName, "only this IMVU (404 unless it is the caller's)", false)],
      responses: {
        "200": jsonResponse("The mailboxes", { type: "object", required: ["mailboxes"], properties: { mailboxes: { type: "array", items: mailboxSchema } } }),
        ...errorResponses(400, 401, 404, 500),
      },
    },
  },
  "/v1/mail/verifiers": {
    post: {
      summary: "Store a mailbox's scrypt verifier in the IMVU's secret store; accepted only when its SHA-256 is the commitment the ledger recorded",
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["imvu", "address", "verifier"],
              properties: { imvu: { type: "string" }, address: { type: "string" }, verifier: { type: "string", description: "$scrypt$ln=..,r=..,p=..$salt$key" } },
            },
          },
        },
      },
      responses: {
        "200": jsonResponse("Stored", { type: "object", required: ["stored", "commitment"], properties: { stored: { const: true }, commitment: { type: "string" } } }),
        "404": jsonResponse("No such mailbox, or it is being deleted (MAIL_MAILBOX_NOT_FOUND)", { $ref: "#/components/schemas/Error" }),
        "409": jsonResponse("The verifier does not hash to the ledger's commitment (MAIL_VERIFIER_MISMATCH)", { $ref: "#/components/schemas/Error" }),
        ...errorResponses(400, 500),
      },
    },
  },
};

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The IMVUs whose mail an identity may see: those it owns or is a delegate of. */
export function mailImvusOf(state: StateReader, who: string): Set<string> {
  const out = new Set<string>();
  for (const [name, r] of state.list("imvu")) if (r.owner === who) out.add(name);
  for (const [, d] of state.list("delegation")) if (d.delegate === who) out.add(d.imvu);
  return out;
}

function view(state: StateReader, secrets: MailSecretStore, m: MailboxRecord): MailboxView {
  let stored: string | undefined;
  try {
    stored = secrets.read(m.imvu).passwords[m.address];
  } catch {
    stored = undefined;
  }
  return {
    imvu: m.imvu, address: m.address, identity: m.identity, status: m.deletingIndex === undefined ? "active" : "deleting",
    verifierCommitment: m.verifierCommitment, verifierStored: stored !== undefined && commitment(stored) === m.verifierCommitment,
    createdIndex: m.createdIndex, changedIndex: m.changedIndex,
    dkimSelectors: (state.get("mail-domain", m.domain)?.keys ?? []).map((k) => k.selector),
  };
}

/** The mail routes as an API module. */
export function mailRoutes(opts: MailRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const state = (): StateReader => opts.platform.state;
  const secrets = new MailSecretStore(opts.platform.home);
  const caller = (req: FastifyRequest): string => {
    const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
    const id = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
    if (id === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
    return id;
  };
  return {
    name: "mail",
    docs: mailDocs,
    register: (app: FastifyInstance) => {
      app.get("/v1/mail/mailboxes", async (req) => {
        const who = caller(req);
        const q = parseInput(listQuery, req.query, "query");
        const imvus = mailImvusOf(state(), who);
        if (q.imvu !== undefined && !imvus.has(q.imvu)) throw commonErrors.make("NOT_FOUND", `no IMVU ${q.imvu} among yours`);
        const rows = state()
          .list("mail-mailbox", q.imvu === undefined ? "" : `${q.imvu}/`)
          .map(([, m]) => m)
          .filter((m) => imvus.has(m.imvu) || (q.imvu === undefined && m.identity === who));
        return { mailboxes: rows.map((m) => view(state(), secrets, m)) };
      });
      app.post("/v1/mail/verifiers", async (req) => {
        const body = parseInput(verifierBody, req.body, "body");
        parseVerifier(body.verifier);
        const m = state().get("mail-mailbox", mailboxKey(body.imvu, body.address));
        if (!m || m.deletingIndex !== undefined) throw mailLedgerErrors.make("MAIL_MAILBOX_NOT_FOUND", body.address);
        const c = commitment(body.verifier);
        if (c !== m.verifierCommitment) throw mailLedgerErrors.make("MAIL_VERIFIER_MISMATCH", body.address);
        secrets.setVerifier(m.imvu, m.address, body.verifier);
        return { stored: true, commitment: c };
      });
    },
  };
}
