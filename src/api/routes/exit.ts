/**
 * The exit bundle download (gate 13, docs/exit.md):
 *   POST /v1/imvus/:name/exit/bundle {passphrase, ownerKel, seen?}  → application/x-tar
 * Owner only, authenticated like every read (RFC 9421 signature or bearer token); anyone else,
 * delegates included, gets 404 exactly as for a name that does not exist (gate 16). The IMVU must
 * have a recorded exit request (the owner's CLI submits one first; it is always accepted, so a
 * suspension cannot block the download). The bundle is written to a staging directory of the
 * data directory, archived as a deterministic tar, streamed, and removed.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { StateReader } from "../../core/pipeline/state.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import { writeTarSync } from "../../services/compute/tar.ts";
import { exitErrors } from "../../imvu/errors.ts";
import { writeBundle, type ExportSource } from "../../imvu/bundle-writer.ts";
import type { ApiModule } from "../app.ts";
import { callerOf, type TokenAuthority } from "../auth.ts";
import { apiErrors } from "../errors.ts";
import { jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { parseInput } from "../params.ts";
import { sharedTokenAuthority } from "./commands.ts";

/** Longest passphrase accepted. */
export const PASSPHRASE_CHARS_MAX = 1024;
/** Most checkpoints the owner may say it saw. */
export const SEEN_SIZES_MAX = 16;

/** What the exit route needs (a Platform satisfies it). */
export interface ExitRoutesOptions {
  readonly platform: ExportSource;
  readonly tokens?: TokenAuthority;
  readonly clockSec?: () => number;
  /** scrypt work factor of the secrets file (tests lower it). */
  readonly scryptLog2N?: number;
}

const nameParams = z.strictObject({ name: ImvuName });
const bundleBody = z.strictObject({
  passphrase: z.string().min(8, "at least 8 characters").max(PASSPHRASE_CHARS_MAX),
  ownerKel: z.array(z.unknown()).min(1).max(1000),
  seen: z.array(z.string().regex(/^\d{1,20}$/)).max(SEEN_SIZES_MAX).optional(),
});

const errorRef = { $ref: "#/components/schemas/Error" };

/** The OpenAPI description of the exit route. */
export const exitDocs: OpenApiPaths = {
  "/v1/imvus/{name}/exit/bundle": {
    post: {
      summary: "The IMVU's exit bundle as a tar archive (owner only; needs a recorded exit request)",
      security: [{ httpSignature: [] }, { bearer: [] }],
      parameters: [parameter("name", "path", ImvuName, "the IMVU's name", true)],
      responses: {
        "200": { description: "The bundle (application/x-tar), layout in docs/exit.md" },
        "400": jsonResponse("Bad body (INPUT_INVALID)", errorRef),
        "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef),
        "404": jsonResponse("No IMVU of that name owned by the caller (NOT_FOUND)", errorRef),
        "409": jsonResponse("No exit request recorded (EXIT_NOT_REQUESTED)", errorRef),
      },
    },
  },
};

function headersOf(req: FastifyRequest): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The exit route as an API module. */
export function exitRoutes(opts: ExitRoutesOptions): ApiModule {
  const tokens = opts.tokens ?? sharedTokenAuthority();
  const clockSec = opts.clockSec ?? (() => Math.floor(Date.now() / 1000));
  const state = (): StateReader => opts.platform.state;
  return {
    name: "exit",
    docs: exitDocs,
    register: (app: FastifyInstance) => {
      app.post("/v1/imvus/:name/exit/bundle", async (req, reply) => {
        const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
        const who = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
        if (who === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
        const { name } = parseInput(nameParams, req.params, "path");
        const rec = state().get("imvu", name);
        if (!rec || rec.owner !== who) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
        const body = parseInput(bundleBody, req.body, "body");
        if (!rec.exit) throw exitErrors.make("EXIT_NOT_REQUESTED", name);
        const staging = join(opts.platform.home, "exports", `${name}-${randomBytes(8).toString("hex")}`);
        const dir = join(staging, "bundle");
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        try {
          await writeBundle(
            opts.platform,
            { imvu: name, passphrase: body.passphrase, ownerKel: body.ownerKel, seenSizes: (body.seen ?? []).map(BigInt), ...(opts.scryptLog2N === undefined ? {} : { scryptLog2N: opts.scryptLog2N }) },
            dir,
          );
          const tar = join(staging, "bundle.tar");
          writeTarSync(dir, tar);
          rmSync(dir, { recursive: true, force: true });
          const stream = createReadStream(tar);
          stream.on("close", () => rmSync(staging, { recursive: true, force: true }));
          return reply.type("application/x-tar").header("content-disposition", `attachment; filename="${name}-exit.tar"`).send(stream);
        } catch (e) {
          rmSync(staging, { recursive: true, force: true });
          if (e instanceof Error && /key event log does not match|IDENTITY_/.test(`${e.message} ${(e as { code?: string }).code ?? ""}`)) {
            throw commonErrors.make("INPUT_INVALID", `body.ownerKel: ${e.message}`, { field: "body.ownerKel" });
          }
          throw e;
        }
      });
    },
  };
}
