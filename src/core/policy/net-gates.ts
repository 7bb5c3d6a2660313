/**
 * The network part of the gates (docs/net.md): pure checks of `net.*` commands, called by the
 * gate functions of gates.ts for these command types (each returns undefined for other types).
 * Gate 2: a route's upstream is a workload of the same IMVU, a grant names a route of it.
 * Gate 7: the route count stays within the envelope. Gate 8: a public or restricted route's host
 * lies in a domain bound to the IMVU, a (host, path) is routed by one IMVU only, a restricted
 * route carries its region policy.
 */
import { deny, ok, type GateContext } from "./context.ts";

type Result = { pass: true; reason: string } | { pass: false; reason: string };

/** The domain bound to `imvu` that `host` lies in (at or below), if any. */
export function owningDomain(ctx: GateContext, imvu: string, host: string): string | undefined {
  const labels = host.split(".");
  for (let i = 0; i < labels.length - 1; i++) {
    const suffix = labels.slice(i).join(".");
    const d = ctx.state.get("domain", suffix);
    if (d) return d.imvu === imvu ? suffix : undefined;
  }
  return undefined;
}

/** Gate 2 for net commands. */
export function netIsolation(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  const imvu = cmd.imvu ?? "";
  switch (cmd.type) {
    case "net.route.add": {
      const w = state.get("compute-workload", `${imvu}/${cmd.body.upstream.workload}`);
      if (!w) return deny(`workload ${cmd.body.upstream.workload} is not one of ${imvu}'s workloads`);
      return ok(`the upstream ${cmd.body.upstream.workload} is ${imvu}'s workload`);
    }
    case "net.route.delete":
    case "net.grant.add":
    case "net.grant.revoke": {
      if (!state.get("net-route", `${imvu}/${cmd.body.route}`)) return deny(`route ${cmd.body.route} is not one of ${imvu}'s routes`);
      if (cmd.type === "net.grant.revoke" && !state.get("net-grant", `${imvu}/${cmd.body.route}/${cmd.body.identity}`)) {
        return deny(`${cmd.body.identity} holds no grant on route ${cmd.body.route}`);
      }
      return ok(`route ${cmd.body.route} belongs to ${imvu}`);
    }
    default:
      return undefined;
  }
}

/** Gate 7 for net commands: routes within the envelope. */
export function netQuota(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type !== "net.route.add") return undefined;
  const imvu = state.get("imvu", cmd.imvu ?? "");
  if (!imvu) return deny("no such IMVU");
  const existing = state.list("net-route", `${imvu.name}/`);
  const replacing = existing.some(([k]) => k === `${imvu.name}/${cmd.body.route}`);
  const after = existing.length + (replacing ? 0 : 1);
  if (after > imvu.envelope.routes) return deny(`${after} routes exceed the envelope's ${imvu.envelope.routes}`);
  return ok(`${after} of ${imvu.envelope.routes} routes`);
}

/** Gate 8: network governance. */
export function netGovernance(ctx: GateContext): Result | undefined {
  const { cmd, state } = ctx;
  if (cmd.type !== "net.route.add") return undefined;
  const imvu = cmd.imvu ?? "";
  const { host, pathPrefix, kind } = cmd.body;
  const domain = owningDomain(ctx, imvu, host);
  if (domain === undefined) return deny(`${host} is not in a domain bound to ${imvu}; bind it first (domain claim/verify)`);
  for (const [, r] of state.list("net-route")) {
    if (r.host === host && r.pathPrefix === pathPrefix && !(r.imvu === imvu && r.route === cmd.body.route)) {
      return deny(`${host}${pathPrefix} is already routed by ${r.imvu === imvu ? `route ${r.route}` : "another IMVU"}`);
    }
  }
  if (kind === "restricted" && cmd.body.allowRegions === undefined) return deny("a restricted route must carry --allow-region");
  if (kind !== "restricted" && cmd.body.allowRegions !== undefined) return deny(`a ${kind} route takes no region policy; make it restricted`);
  return ok(`${kind} route on ${host} in ${domain}, bound to ${imvu}`);
}
