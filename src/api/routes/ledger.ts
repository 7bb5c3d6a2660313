/**
 * The ledger's read API: the latest signed checkpoint, entries, inclusion and consistency proofs,
 * and the server-sent-event stream services tail. Every parameter is validated (400 on malformed
 * input, 404 beyond the log); clients verify what they get with proofs, never on our word.
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { toBase64 } from "../../core/crypto/bytes.ts";
import { leafHash } from "../../core/ledger/merkle.ts";
import type { Ledger } from "../../core/ledger/ledger.ts";
import { ENTRIES_PAGE_MAX } from "../../core/ledger/ledger.ts";
import { ledgerLogErrors } from "../../core/ledger/ledger-errors.ts";
import { errorResponses, jsonResponse, type OpenApiPaths, parameter } from "../openapi.ts";
import { decimalIndex, parseInput } from "../params.ts";
import { registerLedgerStream, type StreamOptions, streamDocs } from "./ledger-stream.ts";
import type { ApiModule } from "../app.ts";

const limitParam = z
  .string()
  .regex(/^[1-9][0-9]{0,3}$/, `an integer from 1 to ${ENTRIES_PAGE_MAX}`)
  .transform(Number)
  .refine((n) => n <= ENTRIES_PAGE_MAX, `at most ${ENTRIES_PAGE_MAX}`);

const checkpointQuery = z.strictObject({ size: decimalIndex.optional() });
const entryParams = z.strictObject({ index: decimalIndex });
const entriesQuery = z.strictObject({ from: decimalIndex, limit: limitParam.optional() });
const inclusionQuery = z.strictObject({ index: decimalIndex, size: decimalIndex.optional() });
const consistencyQuery = z.strictObject({ from: decimalIndex, to: decimalIndex.optional() });
const emptyParams = z.strictObject({});

const b64 = (b: Uint8Array): string => toBase64(b);

function entryJson(index: bigint, bytes: Uint8Array, leaf?: Uint8Array): Record<string, string> {
  return { index: index.toString(), leafHash: b64(leaf ?? leafHash(bytes)), entry: b64(bytes) };
}

const hashList = { type: "array", items: { type: "string", contentEncoding: "base64" } };
const decimal = { type: "string", pattern: "^(0|[1-9][0-9]*)$" };
const entrySchema = {
  type: "object",
  required: ["index", "leafHash", "entry"],
  properties: { index: decimal, leafHash: { type: "string", contentEncoding: "base64" }, entry: { type: "string", contentEncoding: "base64" } },
};

/** The OpenAPI description of the ledger routes. */
export const ledgerDocs: OpenApiPaths = {
  "/v1/ledger/checkpoint": {
    get: {
      summary: "The latest signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note), or the one stored for `size`",
      parameters: [parameter("size", "query", decimalIndex, "a size where a batch ended (default: the latest)", false)],
      responses: {
        "200": jsonResponse("The checkpoint", {
          type: "object",
          required: ["origin", "size", "rootHash", "note"],
          properties: { origin: { type: "string" }, size: decimal, rootHash: { type: "string", contentEncoding: "base64" }, note: { type: "string" } },
        }),
        ...errorResponses(400, 404, 500),
      },
    },
  },
  "/v1/ledger/entries/{index}": {
    get: {
      summary: "One entry and its leaf hash",
      parameters: [parameter("index", "path", decimalIndex, "the entry index", true)],
      responses: { "200": jsonResponse("The entry", entrySchema), ...errorResponses(400, 404, 500) },
    },
  },
  "/v1/ledger/entries": {
    get: {
      summary: `Consecutive entries from \`from\` (at most ${ENTRIES_PAGE_MAX})`,
      parameters: [
        parameter("from", "query", decimalIndex, "the first index", true),
        parameter("limit", "query", limitParam, `entries wanted (default ${ENTRIES_PAGE_MAX})`, false),
      ],
      responses: {
        "200": jsonResponse("The entries", { type: "object", required: ["entries", "size"], properties: { entries: { type: "array", items: entrySchema }, size: decimal } }),
        ...errorResponses(400, 404, 500),
      },
    },
  },
  "/v1/ledger/proofs/inclusion": {
    get: {
      summary: "RFC 9162 inclusion proof of entry `index` in the tree of `size` (default: current), with that tree's root",
      parameters: [
        parameter("index", "query", decimalIndex, "the entry index", true),
        parameter("size", "query", decimalIndex, "the tree size (default: the current size)", false),
      ],
      responses: {
        "200": jsonResponse("The proof", {
          type: "object",
          required: ["index", "size", "leafHash", "rootHash", "proof"],
          properties: { index: decimal, size: decimal, leafHash: { type: "string" }, rootHash: { type: "string" }, proof: hashList },
        }),
        ...errorResponses(400, 404, 500),
      },
    },
  },
  "/v1/ledger/proofs/consistency": {
    get: {
      summary: "RFC 9162 consistency proof from the tree of `from` to the tree of `to` (default: current), with both roots",
      parameters: [
        parameter("from", "query", decimalIndex, "the older tree size", true),
        parameter("to", "query", decimalIndex, "the newer tree size (default: the current size)", false),
      ],
      responses: {
        "200": jsonResponse("The proof", {
          type: "object",
          required: ["from", "to", "fromRoot", "toRoot", "proof"],
          properties: { from: decimal, to: decimal, fromRoot: { type: "string" }, toRoot: { type: "string" }, proof: hashList },
        }),
        ...errorResponses(400, 404, 500),
      },
    },
  },
  ...streamDocs,
};

/** The ledger routes as an API module. */
export function ledgerRoutes(ledger: Ledger, stream: StreamOptions = {}): ApiModule {
  return {
    name: "ledger",
    docs: ledgerDocs,
    register: (app: FastifyInstance) => {
      app.get("/v1/ledger/checkpoint", async (req) => {
        const q = parseInput(checkpointQuery, req.query, "query");
        const cp = q.size === undefined ? await ledger.checkpoint() : await ledger.checkpointAt(q.size);
        if (cp === undefined) throw ledgerLogErrors.make("LEDGER_SIZE_OUT_OF_RANGE", `no checkpoint stored for size ${q.size}`);
        const c = cp.checkpoint;
        return { origin: c.origin, size: c.size.toString(), rootHash: b64(c.root), note: cp.note };
      });
      app.get("/v1/ledger/entries/:index", async (req) => {
        const { index } = parseInput(entryParams, req.params, "path");
        parseInput(emptyParams, req.query, "query");
        const [row] = await ledger.entries(index, 1);
        if (row === undefined) throw ledgerLogErrors.make("LEDGER_INDEX_OUT_OF_RANGE");
        return entryJson(row.index, row.bytes, row.leafHash);
      });
      app.get("/v1/ledger/entries", async (req) => {
        const q = parseInput(entriesQuery, req.query, "query");
        const rows = await ledger.entries(q.from, q.limit ?? ENTRIES_PAGE_MAX);
        return { entries: rows.map((r) => entryJson(r.index, r.bytes, r.leafHash)), size: ledger.size.toString() };
      });
      app.get("/v1/ledger/proofs/inclusion", async (req) => {
        const q = parseInput(inclusionQuery, req.query, "query");
        const size = q.size ?? ledger.size;
        const proof = await ledger.inclusionProof(q.index, size);
        const [row] = await ledger.entries(q.index, 1);
        const root = await ledger.rootAt(size);
        return { index: q.index.toString(), size: size.toString(), leafHash: b64(row?.leafHash ?? new Uint8Array(0)), rootHash: b64(root), proof: proof.map(b64) };
      });
      app.get("/v1/ledger/proofs/consistency", async (req) => {
        const q = parseInput(consistencyQuery, req.query, "query");
        const to = q.to ?? ledger.size;
        const proof = await ledger.consistencyProof(q.from, to);
        const [fromRoot, toRoot] = [await ledger.rootAt(q.from), await ledger.rootAt(to)];
        return { from: q.from.toString(), to: to.toString(), fromRoot: b64(fromRoot), toRoot: b64(toRoot), proof: proof.map(b64) };
      });
      registerLedgerStream(app, ledger, stream);
    },
  };
}
