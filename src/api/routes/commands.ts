/**
 * POST /v1/commands: the HTTP door of the command pipeline. The body is a DSSE envelope (JSON,
 * at most COMMAND_BYTES_MAX), handed to the pipeline as the exact bytes received: the pipeline
 * decodes it strictly (duplicate keys, canonical payload) and answers a receipt or a typed error.
 *   applied  → 201 {receipt}
 *   denied   → 403 {error:{code:"GATE_DENIED", details:{gates}}, receipt}  (recorded: "all attempts logged")
 *   rejected → the pipeline's code and status (nonce reuse 409, bad signature 401, schema 400, ...)
 * Commands are limited per identity with a token bucket (429 with Retry-After beyond it).
 * Also the token exchange for reads: GET /v1/auth/challenge, POST /v1/auth/token.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { isNexusError, type NexusError } from "../../core/errors.ts";
import { COMMAND_BYTES_MAX } from "../../core/pipeline/authenticate.ts";
import { pipelineErrors } from "../../core/pipeline/errors.ts";
import type { Pipeline, Receipt } from "../../core/pipeline/pipeline.ts";
import { policyErrors } from "../../core/policy/errors.ts";
import { IdentityId } from "../../core/policy/schemas.ts";
import type { ApiModule } from "../app.ts";
import { CHALLENGE_PREFIX, CHALLENGE_TTL_SEC, TOKEN_TTL_SEC, TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { httpError } from "../http-errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths } from "../openapi.ts";
import { parseInput } from "../params.ts";

/** Sustained commands per second one identity may submit. */
export const COMMANDS_PER_SEC_PER_IDENTITY = 50;
/** Commands one identity may submit at once above the sustained rate (the bucket's size). */
export const COMMAND_BURST_PER_IDENTITY = 100;
/** Sustained rejected-before-authentication requests per second from one client address. */
export const UNAUTHENTICATED_PER_SEC_PER_ADDRESS = 100;
/** Burst of those per address. */
export const UNAUTHENTICATED_BURST_PER_ADDRESS = 200;
/** Identities whose buckets are remembered (the least recently refilled are forgotten first). */
export const RATE_BUCKETS_MAX = 100_000;
/** Media types accepted for a command envelope. */
export const COMMAND_MEDIA_TYPES = ["application/json", "application/vnd.dsse.envelope.v1+json"] as const;

/** Rejections that happen before the actor's signature is checked: they do not spend its bucket. */
const UNAUTHENTICATED_REJECTIONS = new Set([
  "PIPELINE_TOO_LARGE", "PIPELINE_MALFORMED", "PIPELINE_PAYLOAD_TYPE", "PIPELINE_NOT_CANONICAL", "PIPELINE_UNKNOWN_TYPE",
  "PIPELINE_SCHEMA", "PIPELINE_ACTOR_UNKNOWN", "PIPELINE_KEY_EVENT_INVALID", "PIPELINE_BAD_SIGNATURE", "PIPELINE_NOT_GENESIS",
  "PIPELINE_IDENTITY_EXISTS", "PIPELINE_OVERLOADED",
]);

/** A token bucket per key: `take` spends one token or says how long to wait for one. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly perSec: number;
  private readonly burst: number;
  private readonly clock: () => number;

  constructor(opts: { perSec: number; burst: number; clock?: () => number }) {
    if (!(opts.perSec > 0 && opts.burst >= 1)) throw new RangeError("a rate limit needs perSec > 0 and burst >= 1");
    this.perSec = opts.perSec;
    this.burst = opts.burst;
    this.clock = opts.clock ?? (() => Date.now());
  }

  /** Spends a token of `key`: 0 when allowed, else the seconds to wait (at least 1). */
  take(key: string): number {
    const now = this.clock();
    const b = this.buckets.get(key) ?? { tokens: this.burst, atMs: now };
    const tokens = Math.min(this.burst, b.tokens + ((now - b.atMs) / 1000) * this.perSec);
    this.buckets.delete(key);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, atMs: now });
      return Math.max(1, Math.ceil((1 - tokens) / this.perSec));
    }
    this.buckets.set(key, { tokens: tokens - 1, atMs: now });
    if (this.buckets.size > RATE_BUCKETS_MAX) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return 0;
  }

  /** Gives back the token of a request that turned out not to be the identity's. */
  refund(key: string): void {
    const b = this.buckets.get(key);
    if (b) b.tokens = Math.min(this.burst, b.tokens + 1);
  }
}

let shared: TokenAuthority | undefined;
/** The process's token authority, shared by the command and read modules unless one is given. */
export function sharedTokenAuthority(): TokenAuthority {
  shared ??= new TokenAuthority();
  return shared;
}

/** What the command routes need. */
export interface CommandRoutesOptions {
  readonly pipeline: Pipeline;
  /** Issues and checks read tokens (default: the process's shared one). */
  readonly tokens?: TokenAuthority;
  /** The per-identity limit (default COMMANDS_PER_SEC_PER_IDENTITY, COMMAND_BURST_PER_IDENTITY). */
  readonly rate?: { readonly perSec: number; readonly burst: number };
  /** The per-address limit on requests that fail before their signature verifies (default UNAUTHENTICATED_*_PER_ADDRESS). */
  readonly unauthenticatedRate?: { readonly perSec: number; readonly burst: number };
  /** Milliseconds clock of the rate limiter (tests move it). */
  readonly clock?: () => number;
}

const TokenRequest = z.strictObject({
  identity: IdentityId,
  challenge: z.string().min(1).max(200),
  signature: z.string().min(1).max(200),
});

const receiptSchema = {
  type: "object",
  required: ["index", "leafHash", "outcome", "gates", "digest", "treeSize", "checkpoint", "inclusionProof"],
  properties: {
    index: { type: "string", description: "ledger index of the entry (decimal)" },
    leafHash: { type: "string", description: "hex SHA-256(0x00 || entry), RFC 9162" },
    outcome: { enum: ["applied", "denied"] },
    gates: {
      type: "array",
      items: { type: "object", required: ["gate", "pass", "reason"], properties: { gate: { type: "integer" }, pass: { type: "boolean" }, reason: { type: "string" } } },
    },
    digest: { type: "string", description: "hex SHA-256 of the canonical command (what an owner consents to)" },
    treeSize: { type: "string" },
    checkpoint: { type: "string", description: "C2SP signed note of the tree of treeSize" },
    inclusionProof: { type: "array", items: { type: "string", description: "hex" } },
  },
};
const errorRef = { $ref: "#/components/schemas/Error" };

/** The OpenAPI description of the command and token routes. */
export const commandDocs: OpenApiPaths = {
  "/v1/commands": {
    post: {
      summary: "Submit a DSSE-signed command: it is authenticated, held to its gates, recorded in the ledger and applied in one transaction",
      requestBody: {
        required: true,
        description: `A DSSE envelope (payloadType application/vnd.nexus.command+json; payload the RFC 8785 JSON of the command), at most ${COMMAND_BYTES_MAX} bytes`,
        content: Object.fromEntries(COMMAND_MEDIA_TYPES.map((t) => [t, { schema: { type: "object", required: ["payload", "payloadType", "signatures"] } }])),
      },
      responses: {
        "201": jsonResponse("Applied: the receipt (entry index, signed checkpoint, inclusion proof)", { type: "object", required: ["receipt"], properties: { receipt: receiptSchema } }),
        "400": jsonResponse("Malformed, not canonical, schema violation or stale (PIPELINE_MALFORMED, PIPELINE_SCHEMA, PIPELINE_STALE, ...); nothing recorded", errorRef),
        "401": jsonResponse("Bad signature or unknown actor (PIPELINE_BAD_SIGNATURE, PIPELINE_ACTOR_UNKNOWN); nothing recorded", errorRef),
        "403": jsonResponse("Denied by a gate (GATE_DENIED): recorded, nothing applied; details.gates lists the failing gates", {
          type: "object",
          required: ["error", "receipt"],
          properties: { error: errorRef, receipt: receiptSchema },
        }),
        "409": jsonResponse("Nonce reused (a replayed command) or identity exists (PIPELINE_NONCE_REUSED, PIPELINE_IDENTITY_EXISTS)", errorRef),
        "413": jsonResponse(`Envelope larger than ${COMMAND_BYTES_MAX} bytes (PIPELINE_TOO_LARGE)`, errorRef),
        "415": jsonResponse("Not JSON (API_MEDIA_TYPE)", errorRef),
        "429": jsonResponse(
          `More than ${COMMANDS_PER_SEC_PER_IDENTITY}/s (burst ${COMMAND_BURST_PER_IDENTITY}) from one identity, or more than ${UNAUTHENTICATED_PER_SEC_PER_ADDRESS}/s (burst ${UNAUTHENTICATED_BURST_PER_ADDRESS}) failing authentication from one address (API_RATE_LIMITED); see Retry-After`,
          errorRef,
        ),
        ...errorResponses(500, 503),
      },
    },
  },
  "/v1/auth/challenge": {
    get: {
      summary: `A challenge to sign for a read token: sign the UTF-8 of "${CHALLENGE_PREFIX}" + challenge with the identity's current Ed25519 key`,
      responses: {
        "200": jsonResponse("The challenge", {
          type: "object",
          required: ["challenge", "prefix", "expiresInSec"],
          properties: { challenge: { type: "string" }, prefix: { type: "string" }, expiresInSec: { type: "integer" } },
        }),
      },
    },
  },
  "/v1/auth/token": {
    post: {
      summary: "Exchange a signed challenge for a short-lived bearer token (Authorization: Bearer ...) for reads",
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: {
              type: "object",
              required: ["identity", "challenge", "signature"],
              properties: { identity: { type: "string" }, challenge: { type: "string" }, signature: { type: "string", description: "base64 Ed25519 signature" } },
            },
          },
        },
      },
      responses: {
        "200": jsonResponse("The token", { type: "object", required: ["token", "expiresInSec"], properties: { token: { type: "string" }, expiresInSec: { type: "integer" } } }),
        "400": jsonResponse("Malformed request (INPUT_INVALID)", errorRef),
        "401": jsonResponse("The answer does not verify (API_CHALLENGE_INVALID)", errorRef),
      },
    },
  },
};

function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const { status, body } = httpError(e);
  if (status === 500) reply.log.error({ err: e }, "request failed");
  return reply.code(status).type("application/json; charset=utf-8").send(body);
}

/** Framework errors of this scope in the command vocabulary (too large, wrong media type). */
function scopeError(e: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE") return sendError(reply, pipelineErrors.make("PIPELINE_TOO_LARGE", `at most ${COMMAND_BYTES_MAX} bytes`));
  if (e.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return sendError(reply, apiErrors.make("API_MEDIA_TYPE", `send ${COMMAND_MEDIA_TYPES.join(" or ")}`));
  if (e.code === "FST_ERR_CTP_EMPTY_JSON_BODY") return sendError(reply, pipelineErrors.make("PIPELINE_MALFORMED", "empty body"));
  return sendError(reply, e);
}

/**
 * The `actor` a command envelope claims, read cheaply (no schema, no signature: the pipeline does
 * that) to pick a rate bucket; undefined when it cannot be read. Only a key, never trusted.
 */
function claimedActor(raw: string): string | undefined {
  try {
    const env = JSON.parse(raw) as { payload?: unknown };
    if (typeof env.payload !== "string") return undefined;
    const cmd = JSON.parse(Buffer.from(env.payload, "base64").toString("utf8")) as { actor?: unknown };
    return typeof cmd.actor === "string" && IdentityId.safeParse(cmd.actor).success ? cmd.actor : undefined;
  } catch {
    return undefined;
  }
}

function deniedBody(r: Receipt): { error: ReturnType<NexusError["toJSON"]>["error"]; receipt: Receipt } {
  const failing = r.gates.filter((g) => !g.pass);
  const e = policyErrors.make("GATE_DENIED", `entry ${r.index}: ${failing.map((g) => `gate ${g.gate}: ${g.reason}`).join("; ")}`, {
    index: r.index,
    gates: failing,
  });
  return { error: e.toJSON().error, receipt: r };
}

/** The command and token routes as an API module. */
export function commandRoutes(opts: CommandRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const limiter = new RateLimiter({
    perSec: opts.rate?.perSec ?? COMMANDS_PER_SEC_PER_IDENTITY,
    burst: opts.rate?.burst ?? COMMAND_BURST_PER_IDENTITY,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  // Failures before authentication cost a signature check or a parse and name nobody for sure:
  // they are limited per client address instead, so a flood of forgeries is bounded too.
  const strangers = new RateLimiter({
    perSec: opts.unauthenticatedRate?.perSec ?? UNAUTHENTICATED_PER_SEC_PER_ADDRESS,
    burst: opts.unauthenticatedRate?.burst ?? UNAUTHENTICATED_BURST_PER_ADDRESS,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const limited = (reply: FastifyReply, waitSec: number, who: string): NexusError => {
    reply.header("retry-after", String(waitSec));
    return apiErrors.make("API_RATE_LIMITED", `${who}: retry in ${waitSec} s`, { retryAfterSec: waitSec });
  };
  const submit = async (raw: unknown, reply: FastifyReply, address: string): Promise<FastifyReply> => {
    const addrKey = `addr:${address}`;
    const addrWait = strangers.take(addrKey);
    if (addrWait > 0) throw limited(reply, addrWait, `too many failed commands from ${address}`);
    try {
      const r = await submitFor(raw, reply);
      strangers.refund(addrKey);
      return r;
    } catch (e) {
      if (!isNexusError(e) || !UNAUTHENTICATED_REJECTIONS.has(e.code)) strangers.refund(addrKey);
      throw e;
    }
  };
  const submitFor = async (raw: unknown, reply: FastifyReply): Promise<FastifyReply> => {
    if (typeof raw !== "string" || raw.length === 0) throw pipelineErrors.make("PIPELINE_MALFORMED", "the body must be a DSSE envelope");
    // The actor the command claims; only spent for good once its signature has verified.
    const actor = claimedActor(raw);
    if (actor !== undefined) {
      const waitSec = limiter.take(actor);
      if (waitSec > 0) throw limited(reply, waitSec, actor);
    }
    let receipt: Receipt;
    try {
      receipt = await opts.pipeline.submit(raw);
    } catch (e) {
      if (actor !== undefined && (!isNexusError(e) || UNAUTHENTICATED_REJECTIONS.has(e.code))) limiter.refund(actor);
      throw e;
    }
    if (receipt.outcome === "applied") return reply.code(201).send({ receipt });
    return reply.code(403).send(deniedBody(receipt));
  };
  return {
    name: "commands",
    docs: commandDocs,
    register: (app: FastifyInstance) => {
      void app.register(async (scope) => {
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser([...COMMAND_MEDIA_TYPES], { parseAs: "string", bodyLimit: COMMAND_BYTES_MAX }, (_req, body, done) => done(null, body));
        scope.setErrorHandler(scopeError);
        scope.post("/v1/commands", async (req, reply) => submit(req.body, reply, req.ip));
      });
      app.get("/v1/auth/challenge", async () => ({ challenge: tokens.challenge(), prefix: CHALLENGE_PREFIX, expiresInSec: CHALLENGE_TTL_SEC }));
      app.post("/v1/auth/token", async (req) => {
        const body = parseInput(TokenRequest, req.body, "body");
        const token = tokens.token(opts.pipeline.state, body.identity, body.challenge, body.signature);
        if (token === undefined) throw apiErrors.make("API_CHALLENGE_INVALID");
        return { token, expiresInSec: TOKEN_TTL_SEC };
      });
    },
  };
}
