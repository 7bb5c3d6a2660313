/** Moved to core/dns (the gates validate records with it; core never imports services): re-exported here. */
export * from "../../core/dns/zone.ts";
