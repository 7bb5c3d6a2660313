/**
 * The listening servers of a gateway, with every parser and connection limit set from
 * GatewayLimits: node:http for plain HTTP/1.1, node:http2 with allowHTTP1 for TLS (ALPN h2 or
 * http/1.1, SNI from the CertStore). Handlers come from gateway.ts.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { once } from "node:events";
import type { Duplex } from "node:stream";
import type { CertStore } from "./certs.ts";
import { netErrors } from "./errors.ts";
import type { GatewayLimits } from "./gateway.ts";

/** A request of either server. */
export type AnyReq = IncomingMessage | Http2ServerRequest;
/** A response of either server. */
export type AnyRes = ServerResponse | Http2ServerResponse;

/** What the servers call. */
export interface ServerHandlers {
  readonly request: (req: AnyReq, res: AnyRes, scheme: "http" | "https") => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, scheme: "http" | "https") => void;
  readonly clientError: (err: NodeJS.ErrnoException, socket: Duplex) => void;
  readonly drop: () => void;
  readonly fault: (where: string, message: string) => void;
}

/** The plain HTTP/1.1 server (strict parser, header and request deadlines, connection cap). */
export function plainServer(limits: GatewayLimits, h: ServerHandlers): HttpServer {
  const s = createHttpServer({
    maxHeaderSize: limits.headerBytesMax,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often node:http checks the two deadlines above: the slowloris reaction time.
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    requireHostHeader: true,
    joinDuplicateHeaders: false,
    insecureHTTPParser: false,
  });
  s.maxHeadersCount = limits.headersCountMax;
  s.maxConnections = limits.connectionsMax;
  s.on("request", (req: IncomingMessage, res: ServerResponse) => h.request(req, res, "http"));
  s.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => h.upgrade(req, socket, head, "http"));
  s.on("clientError", h.clientError);
  s.on("drop", h.drop);
  return s;
}

/** The TLS server: HTTP/2 with HTTP/1.1 fallback, per-host certificates by SNI; its sockets go to `sockets` (for close). */
export function tlsServer(limits: GatewayLimits, certs: CertStore, h: ServerHandlers, sockets: Set<Duplex>): Http2SecureServer {
  const s = createSecureServer({
    key: certs.defaultCreds.key,
    cert: certs.defaultCreds.cert,
    allowHTTP1: true,
    SNICallback: (name, cb) => {
      try {
        cb(null, certs.context(name));
      } catch (e) {
        h.fault("sni", String(e));
        cb(e as Error);
      }
    },
    settings: { maxConcurrentStreams: limits.h2StreamsMax, maxHeaderListSize: limits.headerBytesMax },
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    peerMaxConcurrentStreams: limits.h2StreamsMax,
    unknownProtocolTimeout: limits.headersTimeoutMs,
  });
  s.setTimeout(limits.keepAliveTimeoutMs * 6);
  // The HTTP/1.1 fallback honours node:http's deadlines, set as properties.
  const h1 = s as unknown as { headersTimeout: number; requestTimeout: number };
  h1.headersTimeout = limits.headersTimeoutMs;
  h1.requestTimeout = limits.requestTimeoutMs;
  s.maxConnections = limits.connectionsMax;
  s.on("request", (req: AnyReq, res: AnyRes) => h.request(req, res, "https"));
  s.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => h.upgrade(req, socket, head, "https"));
  // With allowHTTP1 the HTTP/1.1 parser's errors arrive as node:http's clientError.
  (s as unknown as NodeJS.EventEmitter).on("clientError", h.clientError);
  s.on("tlsClientError", (_e, socket) => socket.destroy());
  s.on("secureConnection", (sock) => {
    sockets.add(sock);
    sock.once("close", () => sockets.delete(sock));
  });
  return s;
}

/** Listens (SO_REUSEPORT when serving threads share the port); the bound port. Throws NET_BIND_FAILED. */
export async function listen(s: HttpServer | Http2SecureServer, host: string, port: number, reusePort: boolean): Promise<number> {
  try {
    s.listen({ host, port, reusePort });
    await once(s, "listening");
  } catch (e) {
    throw netErrors.make("NET_BIND_FAILED", `${host}:${port}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const a = s.address();
  return typeof a === "object" && a !== null ? a.port : port;
}
