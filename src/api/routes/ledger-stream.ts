/**
 * GET /v1/ledger/stream?from=N: the ledger as server-sent events (the bus services tail across
 * processes). Replays entries from N, then follows commits. Each event carries `id: <index>` so a
 * reconnecting EventSource resumes with Last-Event-ID. Bounded: clients, a heartbeat comment,
 * and a slow client that does not drain within a time limit is disconnected (it reconnects).
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { toBase64 } from "../../core/crypto/bytes.ts";
import type { Ledger } from "../../core/ledger/ledger.ts";
import { leafHash } from "../../core/ledger/merkle.ts";
import { ledgerLogErrors } from "../../core/ledger/ledger-errors.ts";
import { errorResponses, type OpenApiPaths, parameter } from "../openapi.ts";
import { decimalIndex, parseInput } from "../params.ts";

/** Concurrent stream clients. */
export const STREAM_CLIENTS_MAX = 256;
/** Interval between heartbeat comments. */
export const STREAM_HEARTBEAT_MS = 15_000;
/** How long a client may leave its socket buffer full before it is disconnected. */
export const STREAM_DRAIN_TIMEOUT_MS = 30_000;
/** Reconnection delay suggested to EventSource clients. */
const STREAM_RETRY_MS = 2_000;

/** Tunables (tests shorten the heartbeat). */
export interface StreamOptions {
  readonly heartbeatMs?: number;
  readonly clientsMax?: number;
  readonly drainTimeoutMs?: number;
}

const streamQuery = z.strictObject({ from: decimalIndex });

/** The OpenAPI description of the stream. */
export const streamDocs: OpenApiPaths = {
  "/v1/ledger/stream": {
    get: {
      summary: "Server-sent events: every entry from `from` on, then each new one as it commits",
      description:
        "Events are `event: entry`, `id: <index>`, `data: {\"index\",\"leafHash\",\"entry\"}` (base64). " +
        "Comments (`: heartbeat`) keep the connection alive. A Last-Event-ID header resumes after that index.",
      parameters: [
        parameter("from", "query", decimalIndex, "the first index to send (at most the current size)", true),
        parameter("Last-Event-ID", "header", decimalIndex, "resume after this index (overrides `from`)", false),
      ],
      responses: {
        "200": { description: "The event stream", content: { "text/event-stream": { schema: { type: "string" } } } },
        ...errorResponses(400, 404, 503),
      },
    },
  },
};

function frame(index: bigint, entry: Uint8Array, leaf: Uint8Array): string {
  const data = JSON.stringify({ index: index.toString(), leafHash: toBase64(leaf), entry: toBase64(entry) });
  return `id: ${index}\nevent: entry\ndata: ${data}\n\n`;
}

/** The first index to send: Last-Event-ID + 1 when present, else `from`. */
function startOf(query: unknown, lastEventId: unknown): bigint {
  const q = parseInput(streamQuery, query, "query");
  if (lastEventId === undefined) return q.from;
  return parseInput(decimalIndex, lastEventId, "header.last-event-id") + 1n;
}

/** Registers the stream route on `app`. */
export function registerLedgerStream(app: FastifyInstance, ledger: Ledger, opts: StreamOptions): void {
  const clients = new Set<() => void>();
  const clientsMax = opts.clientsMax ?? STREAM_CLIENTS_MAX;
  app.addHook("preClose", async () => {
    for (const end of [...clients]) end();
  });
  app.get("/v1/ledger/stream", async (req, reply) => {
    const from = startOf(req.query, req.headers["last-event-id"]);
    if (from > ledger.size) throw ledgerLogErrors.make("LEDGER_INDEX_OUT_OF_RANGE", `from ${from}, size ${ledger.size}`);
    if (clients.size >= clientsMax) throw ledgerLogErrors.make("LEDGER_OVERLOADED", "too many stream clients");
    follow(reply, ledger, from, clients, opts);
  });
}

function follow(reply: FastifyReply, ledger: Ledger, from: bigint, clients: Set<() => void>, opts: StreamOptions): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write(`retry: ${STREAM_RETRY_MS}\n\n`);
  let ended = false;
  const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), opts.heartbeatMs ?? STREAM_HEARTBEAT_MS);
  const end = (): void => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    clients.delete(end);
    res.end();
  };
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        end();
        resolve();
      }, opts.drainTimeoutMs ?? STREAM_DRAIN_TIMEOUT_MS);
      res.once("drain", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const unsubscribe = ledger.subscribe(
    from,
    (index, entry) => {
      if (ended) return undefined;
      return res.write(frame(index, entry, leafHash(entry))) ? undefined : drained();
    },
    () => end(),
  );
  clients.add(end);
  res.on("close", end);
}
