/** services/net: the route model and table, slices, regions, sessions, and the edge gateway. */
export { netErrors, type NetErrorCode } from "./errors.ts";
export { normalizeTarget, hostFromAuthority, canonicalRouteHost, isCanonicalHost, prefixCovers, TARGET_CHARS_MAX, HOST_CHARS_MAX, type PathResult } from "./normalize.ts";
export {
  RouteSchema, SliceSchema, buildRouteTable, matchRoute, emptyRouteTable, ROUTE_KINDS, ROUTES_MAX, ROUTES_PER_HOST_MAX, GRANTS_MAX, ALLOW_REGIONS_MAX,
  type Route, type RouteInput, type RouteKind, type RouteTable, type RouteTableInput, type Slice, type SliceInput,
} from "./route.ts";
export { buildRegionTable, regionOf, parseAddress, REGION_PREFIXES_MAX, type RegionRange, type RegionTable } from "./region.ts";
export {
  TokenBucket, SliceState, SliceBook, QosQueue, EpisodeTracker, QOS_WEIGHTS, RETRY_AFTER_S_MAX,
  type Qos, type SliceRefusal, type ThrottleEpisode, type ThrottleLimit,
} from "./slice.ts";
export { Meter, sumMeters, meterDelta, type MeterSnapshot, type RouteCounters, type GatewayCounters } from "./meter.ts";
export { issueSession, verifySession, SESSION_TTL_S_DEFAULT, SESSION_TTL_S_MAX, type SessionSigner, type SessionClaims } from "./session.ts";
export { SESSION_PATH, SIGNATURE_AGE_S_MAX, SIGNATURE_REQUIRED } from "./decide.ts";
export { loadOrCreateHostCert, DEFAULT_CERT_HOST } from "./certs.ts";
export {
  startGateway, GATEWAY_PORT_DEFAULT, GATEWAY_LIMITS, WORKERS_MAX,
  type Gateway, type GatewayOptions, type GatewayLimits, type GatewayEvent, type UsageReport,
} from "./gateway.ts";
export {
  applyRate, clearRate, currentRate, tbfParams, shapeBridge, unshapeBridge, redirectPort, bridgeShaping, portRedirect, listLinks, listQdiscs,
  interfaceAddresses, orphanIfbs, sweepIfbs, ifbName, TBF_LATENCY_MS, TBF_BURST_BYTES_MIN, IFB_PREFIX,
  type TcTarget, type BridgeTarget, type BridgeShaping, type LinkInfo, type QdiscInfo, type InterfaceAddresses,
} from "./tc.ts";
export {
  KernelShaper, planShaping, observeBridge, bridgeForSubnet, sliceRate, SHAPING_RATE_MAX, SHAPING_BRIDGES_MAX, KERNEL_EPISODE_VERSION,
  type ShapeWant, type ShapePlan, type ShapeAction, type BridgeObserved, type ShapingPass, type KernelShaperOptions,
} from "./shaping.ts";
