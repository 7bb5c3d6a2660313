/**
 * The exit bundle download (gate 13, docs/exit.md):
 *   POST /v1/imvus/:name/exit/bundle {passphrase, ownerKel, seen?}  → application/x-tar
 * Owner only, authenticated like every read (RFC 9421 signature or bearer token); anyone else,
 * delegates included, gets 404 exactly as for a name that does not exist (gate 16). The IMVU must
 * have a recorded exit request (the owner's CLI submits one first; it is always accepted, so a
 * suspension cannot block the download). The bundle is streamed as a tar as it is read: no staging
 * copy; every file is hashed on the way out and the platform-signed manifest comes last.
 *   POST /v1/imvus/:name/import/maildir?address=A  (application/x-tar)  → {messages}
 * The import side (`nexus imvu import`): the owner uploads a mailbox's Maildir from an exit bundle
 * into a mailbox its signed `mail.mailbox.add` already created here; only message files under
 * cur/ and new/ (of the top level and of Maildir++ folders) are taken, and none is overwritten.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { commonErrors } from "../../core/common-errors.ts";
import type { ImvuRecord, StateReader } from "../../core/pipeline/state.ts";
import { ImvuName } from "../../core/policy/schemas.ts";
import type { ServerResponse } from "node:http";
import { BufferRing, readTarSync, safeRelPath } from "../../services/compute/tar.ts";
import { maildirPath, maildirRoot } from "../../services/mail/directory.ts";
import { mailboxKey } from "../../core/pipeline/mail-state.ts";
import { exitErrors } from "../../imvu/errors.ts";
import { bundleTarChunks, planBundle, type ExportSource } from "../../imvu/bundle-writer.ts";
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
/** Largest Maildir archive one import request carries. */
export const MAILDIR_UPLOAD_BYTES_MAX = 1024 * 1024 * 1024;
/** A message file's place in a Maildir: [.Folder/](cur|new)/<name>. */
const MAILDIR_FILE_RE = /^(?:\.[^/]{1,200}\/)?(?:cur|new)\/[^/.][^/]{0,254}$/;

/** What the exit route needs (a Platform satisfies it). */
export interface ExitRoutesOptions {
  readonly platform: ExportSource;
  readonly tokens?: TokenAuthority;
  readonly clockSec?: () => number;
  /** scrypt work factor of the secrets file (tests lower it). */
  readonly scryptLog2N?: number;
  /** The running compute fabric's id (default: the installation's, installationFabric). */
  readonly fabric?: string | undefined;
}

const nameParams = z.strictObject({ name: ImvuName });
const bundleBody = z.strictObject({
  passphrase: z.string().min(8, "at least 8 characters").max(PASSPHRASE_CHARS_MAX),
  ownerKel: z.array(z.unknown()).min(1).max(1000),
  seen: z.array(z.string().regex(/^\d{1,20}$/)).max(SEEN_SIZES_MAX).optional(),
});

const maildirQuery = z.strictObject({ address: z.string().min(3).max(320) });
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
  "/v1/imvus/{name}/import/maildir": {
    post: {
      summary: "Upload a mailbox's Maildir (application/x-tar) from an exit bundle into an existing mailbox of the caller's IMVU",
      security: [{ httpSignature: [] }, { bearer: [] }],
      parameters: [parameter("name", "path", ImvuName, "the IMVU's name", true), parameter("address", "query", z.string(), "the mailbox", true)],
      responses: {
        "200": jsonResponse("Messages stored, and those already there (from an earlier run of the same import)", { type: "object", required: ["messages", "present"], properties: { messages: { type: "integer" }, present: { type: "integer" } } }),
        "400": jsonResponse("Bad archive or query (INPUT_INVALID)", errorRef),
        "401": jsonResponse("Unsigned or badly signed request (API_UNAUTHENTICATED)", errorRef),
        "404": jsonResponse("No such IMVU or mailbox among the caller's (NOT_FOUND)", errorRef),
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
      /** The IMVU of the path when the caller owns it; 404 otherwise (gate 16). */
      const owned = (req: FastifyRequest): { name: string; rec: ImvuRecord } => {
        const url = `${req.protocol}://${req.headers.host ?? "localhost"}${req.url}`;
        const who = callerOf(state(), tokens, { method: req.method, url, headers: headersOf(req) }, clockSec());
        if (who === undefined) throw apiErrors.make("API_UNAUTHENTICATED");
        const { name } = parseInput(nameParams, req.params, "path");
        const rec = state().get("imvu", name);
        if (!rec || rec.owner !== who) throw commonErrors.make("NOT_FOUND", `no IMVU ${name} among yours`);
        return { name, rec };
      };
      // The parser is scoped to this route (other modules take tar bodies their own way).
      void app.register(async (scope) => {
        scope.addContentTypeParser("application/x-tar", { parseAs: "buffer", bodyLimit: MAILDIR_UPLOAD_BYTES_MAX }, (_req, body, done) => done(null, body));
        scope.post("/v1/imvus/:name/import/maildir", { bodyLimit: MAILDIR_UPLOAD_BYTES_MAX }, async (req) => {
          const { name } = owned(req);
          const { address } = parseInput(maildirQuery, req.query, "query");
          const m = state().get("mail-mailbox", mailboxKey(name, address.toLowerCase()));
          if (!m || m.deletingIndex !== undefined) throw commonErrors.make("NOT_FOUND", `no mailbox ${address} in ${name}`);
          if (!Buffer.isBuffer(req.body)) throw commonErrors.make("INPUT_INVALID", "body: send the Maildir as application/x-tar", { field: "body" });
          return storeMaildir(opts.platform.home, name, m.address, req.body);
        });
      });
      app.post("/v1/imvus/:name/exit/bundle", async (req, reply) => {
        const { name, rec } = owned(req);
        const body = parseInput(bundleBody, req.body, "body");
        if (!rec.exit) throw exitErrors.make("EXIT_NOT_REQUESTED", name);
        try {
          const plan = await planBundle(opts.platform, {
            imvu: name,
            passphrase: body.passphrase,
            ownerKel: body.ownerKel,
            seenSizes: (body.seen ?? []).map(BigInt),
            ...(opts.scryptLog2N === undefined ? {} : { scryptLog2N: opts.scryptLog2N }),
            ...(opts.fabric === undefined ? {} : { fabric: opts.fabric }),
          });
          // Streamed as it is read: each file read once and hashed on the way, the signed manifest last.
          // A failure half-way cuts the answer short, and the CLI refuses an archive without its end.
          reply.hijack();
          reply.raw.writeHead(200, { "content-type": "application/x-tar", "content-disposition": `attachment; filename="${name}-exit.tar"` });
          void pump(bundleTarChunks(plan, new BufferRing(STREAM_BUFFERS)), reply.raw).catch((e: unknown) => {
            // Usually the client going away (ECANCELED, EPIPE); a read failure would be named here too.
            req.log.warn({ imvu: name, reason: e instanceof Error ? e.message : String(e) }, "exit bundle stream ended before its end");
            reply.raw.destroy();
          });
          return reply;
        } catch (e) {
          if (e instanceof Error && /key event log does not match|IDENTITY_/.test(`${e.message} ${(e as { code?: string }).code ?? ""}`)) {
            throw commonErrors.make("INPUT_INVALID", `body.ownerKel: ${e.message}`, { field: "body.ownerKel" });
          }
          throw e;
        }
      });
    },
  };
}

/** The unique part of a Maildir message file's name (before its ":2,<flags>" info). */
const uniqueOf = (name: string): string => name.split(":")[0] ?? name;

/** Read buffers of one bundle stream: each chunk is handed to the socket before its buffer comes round again. */
const STREAM_BUFFERS = 4;

/**
 * Writes `chunks` to `res` and ends it. At most STREAM_BUFFERS - 1 writes are unfinished at a
 * time, so a BufferRing of STREAM_BUFFERS buffers is never refilled under a pending write (and a
 * slow reader holds back reading).
 */
async function pump(chunks: Iterable<Buffer>, res: ServerResponse): Promise<void> {
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let unfinished = 0;
  const fail = (e: Error): void => {
    failure ??= e;
    wake?.();
  };
  const written = (e?: Error | null): void => {
    unfinished--;
    if (e) fail(e);
    else wake?.();
  };
  const gone = (): void => fail(new Error("the client went away"));
  res.on("close", gone);
  const wait = (): Promise<void> => new Promise<void>((r) => (wake = r));
  try {
    for (const c of chunks) {
      unfinished++;
      res.write(c, written);
      while (unfinished >= STREAM_BUFFERS - 1 && failure === undefined) await wait();
      if (failure !== undefined) throw failure;
    }
    res.end(() => wake?.());
    while (!res.writableFinished && failure === undefined) await wait();
    if (failure !== undefined && !res.writableFinished) throw failure;
  } finally {
    res.off("close", gone);
  }
}

/** Unpacks an uploaded Maildir archive into the mailbox's Maildir; counts the messages stored and those already there. */
function storeMaildir(home: string, imvu: string, address: string, tar: Buffer): { messages: number; present: number } {
  const root = maildirPath(maildirRoot(home), imvu, address);
  const tmp = join(home, "exports", `upload-${randomBytes(8).toString("hex")}.tar`);
  mkdirSync(join(home, "exports"), { recursive: true, mode: 0o700 });
  writeFileSync(tmp, tar, { mode: 0o600 });
  let messages = 0;
  let present = 0;
  // A message's identity in a Maildir is the unique part of its name, before ":2,<flags>": a
  // reader moves it from new/ to cur/ and changes its flags, and it is still the same message.
  const seen = new Map<string, Set<string>>();
  const uniquesOf = (folder: string): Set<string> => {
    let u = seen.get(folder);
    if (u === undefined) {
      u = new Set<string>();
      for (const sub of ["cur", "new"]) for (const n of existsSync(join(folder, sub)) ? readdirSync(join(folder, sub)) : []) u.add(uniqueOf(n));
      seen.set(folder, u);
    }
    return u;
  };
  try {
    readTarSync(tmp, (e, data) => {
      if (e.type === "dir") return;
      let rel: string;
      try {
        rel = safeRelPath(e.path);
      } catch {
        throw commonErrors.make("INPUT_INVALID", `body: unsafe path ${JSON.stringify(e.path)}`, { field: "body" });
      }
      if (e.type !== "file" || !MAILDIR_FILE_RE.test(rel)) throw commonErrors.make("INPUT_INVALID", `body: ${rel} is not a Maildir message file`, { field: "body" });
      const target = join(root, rel);
      if (existsSync(target) || uniquesOf(dirname(dirname(target))).has(uniqueOf(basename(target)))) {
        present++; // stored by an earlier run of the same import (and perhaps moved to cur/ by a reader since)
        return data(() => {});
      }
      for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(target, "..", "..", sub), { recursive: true, mode: 0o700 });
      const fd = openSync(target, "wx", 0o600);
      try {
        data((chunk) => void writeSync(fd, chunk));
      } finally {
        closeSync(fd);
      }
      uniquesOf(dirname(dirname(target))).add(uniqueOf(basename(target)));
      messages++;
    });
  } catch (e) {
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("COMPUTE_")) throw commonErrors.make("INPUT_INVALID", `body: ${e.message}`, { field: "body" });
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  return { messages, present };
}
