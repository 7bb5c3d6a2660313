/** Reducers of the network command types (docs/net.md): routes and grants in the projection. */
import type { Command } from "../policy/schemas.ts";
import type { EntryFacts } from "./reducer.ts";
import { del, put, type Change, type StateReader } from "./state.ts";

type NetCommand = Extract<Command, { type: "net.route.add" | "net.route.delete" | "net.grant.add" | "net.grant.revoke" }>;

/** The changes an applied network command makes. */
export function reduceNet(state: StateReader, cmd: NetCommand, facts: EntryFacts): Change[] {
  const imvu = cmd.imvu ?? "";
  const index = facts.index.toString();
  switch (cmd.type) {
    case "net.route.add": {
      const jurisdiction = state.get("imvu", imvu)?.jurisdiction ?? "ZZ";
      const b = cmd.body;
      return [
        put("net-route", `${imvu}/${b.route}`, {
          imvu,
          route: b.route,
          host: b.host,
          pathPrefix: b.pathPrefix,
          kind: b.kind,
          ...(b.allowRegions === undefined ? {} : { allowRegions: b.allowRegions }),
          upstream: { workload: b.upstream.workload, port: b.upstream.port },
          jurisdiction,
          index,
        }),
      ];
    }
    case "net.route.delete":
      // A deleted route takes its grants with it.
      return [del("net-route", `${imvu}/${cmd.body.route}`), ...state.list("net-grant", `${imvu}/${cmd.body.route}/`).map(([k]) => del("net-grant", k))];
    case "net.grant.add":
      return [put("net-grant", `${imvu}/${cmd.body.route}/${cmd.body.identity}`, { imvu, route: cmd.body.route, identity: cmd.body.identity, index })];
    case "net.grant.revoke":
      return [del("net-grant", `${imvu}/${cmd.body.route}/${cmd.body.identity}`)];
    default: {
      const never: never = cmd;
      throw new Error(`no net reducer for ${(never as Command).type}`);
    }
  }
}
