/**
 * `nexus net route add|list|delete` and `nexus net grant|revoke`: routes of an IMVU through the
 * edge gateway, as signed commands (gates 2, 7, 8, 14). Exit codes as every API verb: 0 applied,
 * 1 denied or a failed check, 2 bad input, 3 API unreachable.
 */
import type { Command } from "commander";
import { createHash } from "node:crypto";
import { commonErrors } from "../../core/common-errors.ts";
import { NET_BODY_SCHEMAS } from "../../core/policy/net-schemas.ts";
import { apiGet, submitDraft } from "../client.ts";
import { action, emit } from "../output.ts";
import { apiFlags, clientOpts, printReceipt, type ApiFlags } from "./imvu.ts";

interface AddFlags extends ApiFlags {
  readonly imvu: string;
  readonly host: string;
  readonly path: string;
  readonly to: string;
  readonly kind: string;
  readonly allowRegion?: string;
  readonly id?: string;
}

/** A stable route id for (host, path) when none is given. */
export function defaultRouteId(host: string, path: string): string {
  return `r-${createHash("sha256").update(`${host}${path}`).digest("hex").slice(0, 10)}`;
}

/** Parses `--to workload:port`. */
export function parseUpstream(to: string): { workload: string; port: number } {
  const m = /^([a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?):(\d{1,5})$/.exec(to);
  const port = Number(m?.[2]);
  if (!m?.[1] || port < 1 || port > 65_535) {
    throw commonErrors.make("INPUT_INVALID", `--to ${to}: WORKLOAD:PORT, e.g. web:8080 (a workload of this IMVU)`, { field: "to" });
  }
  return { workload: m[1], port };
}

function body(f: AddFlags): Record<string, unknown> {
  const regions = f.allowRegion?.split(",").map((r) => r.trim().toUpperCase()).filter((r) => r !== "");
  const raw = {
    route: f.id ?? defaultRouteId(f.host.toLowerCase(), f.path),
    host: f.host.toLowerCase(),
    pathPrefix: f.path,
    kind: f.kind,
    ...(regions === undefined ? {} : { allowRegions: regions }),
    upstream: parseUpstream(f.to),
  };
  const r = NET_BODY_SCHEMAS["net.route.add"].safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw commonErrors.make("INPUT_INVALID", `${issue?.path.join(".") ?? "route"}: ${issue?.message ?? "invalid"}`, { field: String(issue?.path[0] ?? "route") });
  }
  return raw;
}

interface RouteView {
  readonly route: string;
  readonly host: string;
  readonly pathPrefix: string;
  readonly kind: string;
  readonly upstream: { workload: string; port: number };
  readonly grants?: readonly string[];
}

/** Adds `net` to the program. */
export function register(program: Command): void {
  const net = program.command("net").description("routes through the edge gateway, and grants on private routes");
  const route = net.command("route").description("an IMVU's routes");
  apiFlags(route.command("add"))
    .description("route a host (and path) of your domain to one of your workloads")
    .requiredOption("--imvu <name>", "your IMVU")
    .requiredOption("--host <host>", "a host in a domain bound to the IMVU, e.g. stage.nexus.test")
    .option("--path <prefix>", "path prefix", "/")
    .requiredOption("--to <workload:port>", "the upstream: a workload of this IMVU and its port")
    .option("--kind <kind>", "public, private (granted identities only) or restricted (regions)", "public")
    .option("--allow-region <CC,…>", "regions a restricted route serves")
    .option("--id <route>", "route id (default: derived from host and path)")
    .action(action(async (f: AddFlags) => printReceipt(`route ${f.host}${f.path}`, await submitDraft({ type: "net.route.add", imvu: f.imvu, body: body(f) }, clientOpts(f)), f.json)));
  apiFlags(route.command("list"))
    .requiredOption("--imvu <name>", "your IMVU")
    .action(
      action(async (f: ApiFlags & { imvu: string }) => {
        const r = await apiGet<{ routes: RouteView[] }>(`/v1/imvus/${encodeURIComponent(f.imvu)}/routes`, clientOpts(f));
        emit(r, f.json, (v) =>
          v.routes.length === 0 ? "(no routes)" : v.routes.map((x) => `${x.route}\t${x.kind}\t${x.host}${x.pathPrefix}\t→ ${x.upstream.workload}:${x.upstream.port}`).join("\n"),
        );
      }),
    );
  apiFlags(route.command("delete").argument("<route>"))
    .requiredOption("--imvu <name>", "your IMVU")
    .action(
      action(async (id: string, f: ApiFlags & { imvu: string }) =>
        printReceipt(`route ${id} deleted`, await submitDraft({ type: "net.route.delete", imvu: f.imvu, body: { route: id } }, clientOpts(f)), f.json),
      ),
    );
  for (const [verb, type] of [
    ["grant", "net.grant.add"],
    ["revoke", "net.grant.revoke"],
  ] as const) {
    apiFlags(net.command(verb))
      .description(`${verb} an identity's access to a private route`)
      .requiredOption("--imvu <name>", "your IMVU")
      .requiredOption("--route <route>", "the route id")
      .requiredOption("--identity <id>", "the identity (nx1…)")
      .action(
        action(async (f: ApiFlags & { imvu: string; route: string; identity: string }) =>
          printReceipt(`${verb} ${f.identity}`, await submitDraft({ type, imvu: f.imvu, body: { route: f.route, identity: f.identity } }, clientOpts(f)), f.json),
        ),
      );
  }
}
