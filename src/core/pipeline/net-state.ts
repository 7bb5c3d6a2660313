/**
 * Projection records of the network part (docs/net.md, "Projection"): the routes an IMVU declared
 * and the identities granted on its private routes. Derived only from ledger entries.
 */

/** A route through the edge gateway, key "<imvu>/<route>". */
export interface NetRouteRecord {
  readonly imvu: string;
  readonly route: string;
  readonly host: string;
  readonly pathPrefix: string;
  readonly kind: "public" | "private" | "restricted";
  readonly allowRegions?: readonly string[];
  readonly upstream: { readonly workload: string; readonly port: number };
  /** Inherited from the IMVU (gate 9). */
  readonly jurisdiction: string;
  readonly index: string;
}

/** An identity granted on a private route, key "<imvu>/<route>/<identity>". */
export interface NetGrantRecord {
  readonly imvu: string;
  readonly route: string;
  readonly identity: string;
  readonly index: string;
}
