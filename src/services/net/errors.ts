/** Error codes of the network part (services/net); docs/errors.md lists them under "## net". */
import { defineErrors } from "../../core/errors.ts";

/** The network part's error table. The HTTP status is also what the gateway answers on the wire. */
export const netErrors = defineErrors({
  NET_ROUTE_INVALID: { message: "The route is not valid (id, IMVU, host, path prefix, kind, regions, upstream or grants)", http: 400, exit: 2 },
  NET_ROUTE_CONFLICT: { message: "Two routes share one host and path prefix, or a host mixes IMVUs", http: 409, exit: 1 },
  NET_SLICE_MISSING: { message: "A route's IMVU has no slice (envelope) in the route table", http: 422, exit: 1 },
  NET_TABLE_TOO_LARGE: { message: "The route table has more routes, or more routes per host, than the gateway serves", http: 413, exit: 2 },
  NET_REGION_TABLE_INVALID: { message: "The region table is not valid (CIDR prefix or region code)", http: 400, exit: 2 },
  NET_CONFIG_INVALID: { message: "The gateway options are not valid", http: 400, exit: 2 },
  NET_BIND_FAILED: { message: "The gateway could not bind its listening sockets", http: 503, exit: 3 },
  NET_TLS_FAILED: { message: "The gateway could not load or create a TLS certificate", http: 500, exit: 3 },
  NET_REQUEST_INVALID: {
    message: "The request is malformed or ambiguous (framing, several Host fields, :authority and Host differing, absolute URI and Host differing)",
    http: 400,
    exit: 2,
  },
  NET_HOST_INVALID: { message: "The Host is not a valid host name", http: 400, exit: 2 },
  NET_PATH_INVALID: {
    message: "The request path is refused (dot segments, encoded slash or backslash, double encoding, NUL or control, non-ASCII, over-long)",
    http: 400,
    exit: 2,
  },
  NET_HEADERS_TOO_LARGE: { message: "The request header section is larger than the gateway's limit", http: 431, exit: 2 },
  NET_BODY_TOO_LARGE: { message: "The request body is larger than the gateway's limit", http: 413, exit: 2 },
  NET_TIMEOUT: { message: "The request's header section or body did not arrive in time", http: 408, exit: 3 },
  NET_NOT_FOUND: { message: "Not found", http: 404, exit: 3 },
  NET_AUTH_REQUIRED: {
    message: "The route is private: sign the request (RFC 9421, Ed25519, keyid = a granted identity) or present a session token",
    http: 401,
    exit: 1,
  },
  NET_SIGNATURE_INVALID: { message: "The request signature did not verify", http: 401, exit: 1 },
  NET_SESSION_INVALID: { message: "The session token is malformed, expired, for another host, or not signed by a gateway key", http: 401, exit: 1 },
  NET_NOT_GRANTED: { message: "The identity is not granted access to this private route", http: 403, exit: 1 },
  NET_REGION_REFUSED: { message: "The route's region policy does not allow requests from the client's region", http: 451, exit: 1 },
  NET_RATE_LIMITED: { message: "The IMVU's declared request rate is exhausted; retry after the indicated delay", http: 429, exit: 1 },
  NET_CONNECTIONS_LIMITED: { message: "The IMVU's declared concurrent connections are all in use; retry after the indicated delay", http: 503, exit: 1 },
  NET_CAPACITY_EXCEEDED: { message: "The gateway's declared capacity is in use and the request waited its QoS class's longest wait", http: 503, exit: 1 },
  NET_UPSTREAM_FAILED: { message: "The route's upstream could not be reached or broke the exchange", http: 502, exit: 3 },
  NET_UPSTREAM_TIMEOUT: { message: "The route's upstream did not answer in time", http: 504, exit: 3 },
  NET_TC_FAILED: { message: "The kernel traffic shaping (tc) could not be applied", http: 500, exit: 3 },
});

/** One network error code. */
export type NetErrorCode = keyof typeof netErrors.specs;
