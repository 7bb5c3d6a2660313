/**
 * `nexus imvu create`: one command from nothing to an IMVU whose every part answers (issue 8,
 * docs/imvu-create.md). In one gated sequence of the owner's signed commands:
 *   1. the owner identity (created and registered if there is none),
 *   2. `imvu.create`: the IMVU, its envelope and `<name>.<base>` with its zone (SOA, NS, A/AAAA,
 *      MX, SPF, DMARC; the mail service publishes DKIM),
 *   3. `compute.workload.deploy`: the welcome workload `welcome` (a static page, or `--app DIR`),
 *   4. `net.route.add`: the public route `<name>.<base>` → welcome:8080, under the IMVU's slice,
 *   5. `mail.mailbox.add`: `creator@<name>.<base>` with a generated password printed once (while
 *      the container starts),
 * then waits until DNS, the workload and the gateway answer, and prints how to reach each part.
 *
 * Resumable: each step first reads whether it is already done (the projection is the truth), so
 * a run that failed half-way is completed by running the same command again; nothing half-made
 * stays behind (every step is one atomic command). A step whose service this installation does
 * not run (no podman, no gateway) is skipped and says so. `--bare` stops after step 2.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineErrors, isNexusError } from "../../core/errors.ts";
import { apiGet, apiGetPublic, submitDraft, type ClientOptions } from "../client.ts";
import { emit } from "../output.ts";
import { uploadSource } from "./compute.ts";
import { submitMailboxPassword, generatedPassword } from "./mail.ts";
import { defaultRouteId } from "./net.ts";

/** Errors of `imvu create`. */
export const createErrors = defineErrors({
  IMVU_CREATE_NOT_ANSWERING: {
    http: 504,
    exit: 1,
    message: "A part of the new IMVU did not answer in time; every command was applied: check the service (nexus up output), then run the same imvu create again to wait once more",
  },
});

/** The welcome workload's name and port. */
export const WELCOME_WORKLOAD = "welcome";
export const WELCOME_PORT = 8080;
/** How long `imvu create` waits for the parts to answer. */
export const CREATE_WAIT_MS = 90_000;
const POLL_MS = 150;

/** One step of the sequence and how it ended. */
export interface CreateStep {
  readonly step: "identity" | "imvu" | "mailbox" | "workload" | "route" | "answers";
  readonly status: "done" | "existed" | "skipped" | "failed";
  readonly detail: string;
  readonly index?: string;
}

/** What the sequence needs from the flags (the envelope is already wire form). */
export interface CreateAllInput {
  readonly name: string;
  readonly jurisdiction: string;
  readonly class: string;
  readonly envelope: Record<string, unknown>;
  readonly app?: string | undefined;
  readonly bare?: boolean | undefined;
  readonly wait?: boolean | undefined;
  readonly json?: boolean | undefined;
  readonly opts: ClientOptions;
  /** Registers the signing identity if needed; returns its id. */
  readonly ensureIdentity: () => Promise<string>;
}

interface PlatformView {
  readonly baseDomain: string;
  readonly services?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

interface Reach {
  dig?: string;
  swaks?: string;
  imap?: string;
  curl?: string;
  https?: string;
}

const WELCOME_HTML = (host: string): string => `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${host}</title></head>
<body>
<h1>Welcome to ${host}</h1>
<p>This IMVU runs on Nexus COS: its domain, mail, compute and routes are all recorded in a verifiable ledger.</p>
<p>Replace this page with <code>nexus compute deploy --imvu ${host.split(".")[0] ?? ""} --name welcome --app DIR --port 8080</code>.</p>
</body>
</html>
`;

/** The first answer of `probe` within the wait, or the last error. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw createErrors.make("IMVU_CREATE_NOT_ANSWERING", `${what}: ${last instanceof Error ? last.message : "no answer"} after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** The status of `GET /` with `Host: vhost` at host:port (fetch may not set Host). */
function statusOf(host: string, port: number, vhost: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host, port, path: "/", headers: { host: vhost }, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${host}:${port}`)));
    req.on("error", reject);
  });
}

function hostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(":");
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}

/** Runs the sequence, printing progress; throws (after printing what was done) on a failed step. */
export async function createAll(input: CreateAllInput): Promise<void> {
  const { name, opts } = input;
  const steps: CreateStep[] = [];
  const say = (s: CreateStep): void => {
    steps.push(s);
    if (!input.json) process.stdout.write(`${s.step.padEnd(9)} ${s.status.padEnd(8)} ${s.detail}${s.index === undefined ? "" : ` (ledger index ${s.index}; receipt verified)`}\n`);
  };
  let password: string | undefined;
  const reach: Reach = {};
  let current: CreateStep["step"] = "identity";
  try {
    const me = await input.ensureIdentity();
    say({ step: "identity", status: "done", detail: me });
    const platform = await apiGetPublic<PlatformView>("/v1/platform", opts);
    const services = platform.services ?? {};
    const host = `${name}.${platform.baseDomain.replace(/\.$/, "")}`;

    current = "imvu";
    const existing = await apiGet<{ owner: string }>(`/v1/imvus/${name}`, opts).catch((e: unknown) => {
      if (isNexusError(e, "NOT_FOUND")) return undefined;
      throw e;
    });
    if (existing) say({ step: "imvu", status: "existed", detail: `${name} (${host}); resuming` });
    else {
      const r = await submitDraft({ type: "imvu.create", imvu: name, body: { name, jurisdiction: input.jurisdiction, class: input.class, envelope: input.envelope } }, opts);
      say({ step: "imvu", status: "done", detail: `${name}, zone ${host}`, index: r.index });
    }
    const dns = services.dns?.dns;
    if (dns !== undefined) {
      const d = hostPort(dns);
      reach.dig = `dig @${d.host} -p ${d.port} ${host} A +short`;
    }
    if (input.bare) return;

    current = "workload";
    const compute = await apiGetPublic<{ running: boolean; available: boolean; degraded?: string }>("/v1/compute/status", opts);
    let deployed = false;
    if (!compute.running || !compute.available) {
      say({ step: "workload", status: "skipped", detail: `compute does not run on this installation${compute.degraded ? ` (${compute.degraded})` : ""}` });
    } else {
      const wl = await apiGet<{ workloads: { name: string }[] }>(`/v1/compute/imvus/${name}/workloads`, opts);
      if (wl.workloads.some((w) => w.name === WELCOME_WORKLOAD)) say({ step: "workload", status: "existed", detail: WELCOME_WORKLOAD });
      else {
        let dir = input.app;
        const tmp = dir === undefined ? mkdtempSync(join(tmpdir(), "nexus-welcome-")) : undefined;
        try {
          if (tmp !== undefined) {
            writeFileSync(join(tmp, "index.html"), WELCOME_HTML(host));
            dir = tmp;
          }
          const sha256 = await uploadSource(name, dir ?? "", { ...(opts.identity === undefined ? {} : { as: opts.identity }), ...(opts.api === undefined ? {} : { api: opts.api }) });
          const r = await submitDraft({ type: "compute.workload.deploy", imvu: name, body: { name: WELCOME_WORKLOAD, source: { kind: "app", sha256 }, port: WELCOME_PORT } }, opts);
          say({ step: "workload", status: "done", detail: `${WELCOME_WORKLOAD} (${input.app === undefined ? "a welcome page" : input.app}, port ${WELCOME_PORT})`, index: r.index });
        } finally {
          if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
        }
      }
      deployed = true;
    }

    current = "route";
    const gateway = services.gateway;
    if (!deployed || gateway?.http === undefined) {
      say({ step: "route", status: "skipped", detail: deployed ? "the gateway does not run on this installation" : "no workload to route to" });
    } else {
      const routes = await apiGet<{ routes: { host: string; pathPrefix: string }[] }>(`/v1/imvus/${name}/routes`, opts);
      if (routes.routes.some((r) => r.host === host && r.pathPrefix === "/")) say({ step: "route", status: "existed", detail: `${host}/` });
      else {
        const body = { route: defaultRouteId(host, "/"), host, pathPrefix: "/", kind: "public", upstream: { workload: WELCOME_WORKLOAD, port: WELCOME_PORT } };
        const r = await submitDraft({ type: "net.route.add", imvu: name, body }, opts);
        say({ step: "route", status: "done", detail: `public ${host}/ → ${WELCOME_WORKLOAD}:${WELCOME_PORT}`, index: r.index });
      }
      reach.curl = `curl -H 'Host: ${host}' http://${gateway.http}/`;
      if (gateway.https) reach.https = `curl -k --resolve ${host}:${hostPort(gateway.https).port}:${hostPort(gateway.https).host} https://${host}:${hostPort(gateway.https).port}/`;
    }

    // The mailbox after the workload and route: its scrypt work overlaps the container start.
    current = "mailbox";
    const address = `creator@${host}`;
    const boxes = await apiGet<{ mailboxes: { address: string; verifierStored?: boolean }[] }>(`/v1/mail/mailboxes?imvu=${name}`, opts);
    const box = boxes.mailboxes.find((m) => m.address === address);
    if (box?.verifierStored) say({ step: "mailbox", status: "existed", detail: `${address} (its password was shown when it was made; \`nexus mail passwd\` sets a new one)` });
    else {
      password = generatedPassword();
      const r = await submitMailboxPassword(box ? "mail.mailbox.passwd" : "mail.mailbox.add", name, address, password, opts);
      say({ step: "mailbox", status: "done", detail: address, index: r.index });
      // Printed at once, so a later step's failure cannot lose it.
      if (!input.json) process.stdout.write(`mailbox password: ${password}\n(shown once: it is stored nowhere, only a salted scrypt verifier is kept)\n`);
    }
    if (services.mail) {
      if (services.mail.smtp) reach.swaks = `swaks --server ${services.mail.smtp} --to ${address} --from you@example.org`;
      if (services.mail.imap) reach.imap = `${services.mail.imap}, STARTTLS, user ${address}`;
    }

    current = "answers";
    if (input.wait === false) return;
    const answered: string[] = [];
    if (dns !== undefined) {
      const d = hostPort(dns);
      const res = new Resolver({ timeout: 1000, tries: 1 });
      res.setServers([`${d.host}:${d.port}`]);
      await until(`DNS ${host} A at ${dns}`, async () => ((await res.resolve4(host)).length > 0 ? true : undefined), CREATE_WAIT_MS);
      answered.push("DNS");
      if (services.mail) {
        // The mail service makes and publishes the domain's DKIM keys after the mailbox is recorded:
        // wait for that command, then for the mail records (SPF and DMARC are the zone's defaults) to answer.
        const selectors = await until(`the DKIM keys of ${host}`, async () => {
          const v = await apiGet<{ mailboxes: { address: string; dkimSelectors?: readonly string[] }[] }>(`/v1/mail/mailboxes?imvu=${name}`, opts);
          const s = v.mailboxes.find((m) => m.address === address)?.dkimSelectors ?? [];
          return s.length > 0 ? s : undefined;
        }, CREATE_WAIT_MS);
        const txt = async (n: string, prefix: string): Promise<true | undefined> => ((await res.resolveTxt(n)).some((r) => r.join("").startsWith(prefix)) ? true : undefined);
        await until(`DNS ${host} TXT (SPF) at ${dns}`, () => txt(host, "v=spf1"), CREATE_WAIT_MS);
        await until(`DNS _dmarc.${host} TXT at ${dns}`, () => txt(`_dmarc.${host}`, "v=DMARC1"), CREATE_WAIT_MS);
        for (const s of selectors) await until(`DNS ${s}._domainkey.${host} TXT at ${dns}`, () => txt(`${s}._domainkey.${host}`, "v=DKIM1"), CREATE_WAIT_MS);
        answered.push("mail DNS (SPF, DKIM, DMARC)");
      }
    }
    if (deployed && gateway?.http !== undefined) {
      // The welcome page served through the gateway proves the workload runs too (and costs the
      // runtime no status query while its container starts).
      const g = hostPort(gateway.http);
      await until(`the gateway ${gateway.http} for ${host}`, async () => ((await statusOf(g.host, g.port, host)) === 200 ? true : undefined), CREATE_WAIT_MS);
      answered.push("workload", "gateway");
    } else if (deployed) {
      await until(`the workload ${WELCOME_WORKLOAD}`, async () => {
        const v = await apiGet<{ workloads: { name: string; runtime: { state: string } | null }[] }>(`/v1/compute/imvus/${name}/workloads`, opts);
        return v.workloads.find((w) => w.name === WELCOME_WORKLOAD)?.runtime?.state === "running" ? true : undefined;
      }, CREATE_WAIT_MS);
      answered.push("workload");
    }
    say({ step: "answers", status: "done", detail: answered.length === 0 ? "nothing to wait for" : `${answered.join(", ")} answer` });
  } catch (e) {
    say({ step: current, status: "failed", detail: `${e instanceof Error ? e.message : String(e)}; run the same command again to resume (finished steps are kept and skipped)` });
    if (input.json) emit({ imvu: name, steps, ok: false, ...(password === undefined ? {} : { mailboxPassword: password }) }, true, () => "");
    throw e;
  } finally {
    if (steps.at(-1)?.status !== "failed") {
      const out = { imvu: name, steps, ok: true, reach, ...(password === undefined ? {} : { mailboxPassword: password }) };
      emit(out, input.json, (v) => {
        const lines = [`${v.imvu} is ready. Reach it:`];
        if (v.reach.dig) lines.push(`  DNS    ${v.reach.dig}`);
        if (v.reach.swaks) lines.push(`  mail   ${v.reach.swaks}`);
        if (v.reach.imap) lines.push(`  IMAP   ${v.reach.imap}`);
        if (v.reach.curl) lines.push(`  web    ${v.reach.curl}`);
        if (v.reach.https) lines.push(`  https  ${v.reach.https}`);
        return lines.join("\n");
      });
    }
  }
}
