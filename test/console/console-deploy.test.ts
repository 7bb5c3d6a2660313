/**
 * A static site deployed from the browser, end to end on a real stack with compute on podman and
 * the edge gateway: a creator signs in with a fresh browser key, creates an IMVU, chooses a
 * directory in the page (packed there into the CLI's deterministic tar, uploaded under its
 * SHA-256 with an RFC 9421 signature), deploys it as an `app` workload, adds a public route to it
 * from the page, and the gateway serves the site's own files on the IMVU's host. The digest in the
 * ledger is the CLI's for the same tree. Screenshots go to test-artifacts/console/.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Locator, type Page } from "playwright-core";
import { request } from "undici";
import { ensureConsoleBuilt } from "../../console/build.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { createComputeService, type RunningCompute } from "../../src/platform/services/compute.ts";
import { gatewayService } from "../../src/platform/services/gateway.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { writeTarSync } from "../../src/services/compute/tar.ts";
import { REPO_ROOT } from "../support/paths.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts", "console");
/** Time limit of one page interaction. */
const STEP_MS = 20_000;
/** Longest the workload may take to run (the base image is built on first use). */
const RUN_MS = 120_000;

const podman = spawnSync("podman", ["--version"], { encoding: "utf8" }).status === 0;

/** A GET through the gateway with the given Host (fetch may not set Host). */
async function viaGateway(port: number, host: string, path: string): Promise<{ status: number; text: string }> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers: { host } });
  return { status: r.statusCode, text: await r.body.text() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms: number, stepMs = 250): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Clicks a section's submit button and returns its new result box. */
async function submitIn(page: Page, section: string, button: string): Promise<Locator> {
  const box = page.locator(`#${section} >> xpath=..`);
  const prev = (await box.getByTestId("result").count()) > 0 ? await box.getByTestId("result").getAttribute("data-index") : null;
  await box.getByRole("button", { name: button }).click();
  const result = prev === null ? box.getByTestId("result") : box.locator(`[data-testid="result"]:not([data-index="${prev}"])`);
  await result.waitFor();
  return result;
}

describe("a static site deployed from a directory chosen in the browser, served by the gateway", { skip: podman ? false : "podman is not installed" }, () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let gatewayPort: number;
  const dirs: string[] = [];
  const pageErrors: string[] = [];
  const logs: string[] = [];

  before(async () => {
    assert.equal(ensureConsoleBuilt((s) => process.stderr.write(`console: ${s}\n`)), undefined, "the console must build");
    assert.ok(existsSync(CHROMIUM), "Debian's chromium is needed");
    mkdirSync(ARTIFACTS, { recursive: true });
    const home = mkdtempSync(join(tmpdir(), "nexus-console-deploy-"));
    dirs.push(home);
    gatewayPort = await freePort();
    stack = await startStack({
      home,
      config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: await freePort(), gateway: gatewayPort, gatewayTls: await freePort() }, public: false },
      modules: [createComputeService({ fabric: `t${randomBytes(4).toString("hex")}`, resyncMs: 60_000, debounceMs: 30 }), gatewayService],
      log: (line) => logs.push(line),
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    const compute = stack?.services.find((s) => s.name === "compute") as RunningCompute | undefined;
    await stack?.stop();
    await compute?.fabric?.teardown({ volumes: true });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("sign in, create an IMVU, deploy a directory, route to it: the gateway serves the site", async () => {
    const base = stack.apiUrl;
    const host = `stage.${stack.platform.baseDomain}`;
    await page.goto(`${base}/#/signin`);
    await page.getByLabel(/^Name/).fill("creator");
    await page.getByRole("button", { name: "Create key and register" }).click();
    await page.getByTestId("whoami").getByText("creator").waitFor();
    await page.goto(`${base}/#/`);
    await page.getByLabel(/^Name \(a DNS label/).fill("stage");
    await page.getByLabel(/^Jurisdiction/).fill("DE");
    await page.getByRole("button", { name: "Sign and create" }).click();
    assert.equal(await page.getByTestId("result").getAttribute("data-outcome"), "applied");

    // The site: what a browser shows of it is all the tree has (modes 0644/0755, owner 0:0, directory mtimes the newest beneath).
    const site = join(mkdtempSync(join(tmpdir(), "nexus-console-site-")), "site");
    dirs.push(join(site, ".."));
    const marker = `deployed-from-the-browser-${randomBytes(6).toString("hex")}`;
    const files: Record<string, string> = { "index.html": `<!doctype html><title>${marker}</title><h1>${marker}</h1>\n`, "css/site.css": "h1 { color: #0b4f94; }\n" };
    const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(join(site, rel, ".."), { recursive: true });
      writeFileSync(join(site, rel), text);
      chmodSync(join(site, rel), 0o644);
      if (asRoot) chownSync(join(site, rel), 0, 0);
      utimesSync(join(site, rel), 1_700_000_000, 1_700_000_000);
    }
    const fix = (d: string): void => {
      for (const n of readdirSync(d)) if (lstatSync(join(d, n)).isDirectory()) fix(join(d, n));
      chmodSync(d, 0o755);
      if (asRoot) chownSync(d, 0, 0);
      utimesSync(d, 1_700_000_000, 1_700_000_000);
    };
    fix(site);
    const cli = writeTarSync(site, join(site, "..", "cli.tar"));

    await page.goto(`${base}/#/imvu/stage`);
    const deploy = page.locator("#deploy >> xpath=..");
    await deploy.getByLabel("Workload name").fill("site");
    await deploy.getByLabel(/^A directory on this computer/).check();
    await deploy.getByLabel("Directory to deploy").setInputFiles(site);
    await deploy.getByTestId("picked").getByText(/^site: 2 files/).waitFor();
    await deploy.getByLabel(/^Port the workload listens on/).fill("8080");
    const deployed = await submitIn(page, "deploy", "Pack, upload, sign and deploy");
    assert.equal(await deployed.getAttribute("data-outcome"), "applied", await deployed.innerText());
    const sha = await deploy.getByTestId("source").getAttribute("data-sha256");
    assert.deepEqual(stack.platform.state.get("compute-workload", "stage/site")?.source, { kind: "app", sha256: sha });
    if (asRoot) assert.equal(sha, cli.sha256, "the page's tar is the CLI's tar of the same tree");

    const route = page.locator("#add-route >> xpath=..");
    await route.getByLabel("Route id").fill("www");
    assert.equal(await route.getByLabel("Host", { exact: true }).inputValue(), host);
    await route.getByLabel("Upstream workload").fill("site");
    const routed = await submitIn(page, "add-route", "Sign and add the route");
    assert.equal(await routed.getAttribute("data-outcome"), "applied", await routed.innerText());

    // The gateway serves the uploaded files on the IMVU's host once the workload runs.
    let last = "";
    const body = await waitFor("the site through the gateway", async () => {
      const r = await viaGateway(gatewayPort, host, "/");
      last = `HTTP ${r.status}: ${r.text.slice(0, 300)}`;
      return r.status === 200 && r.text.includes(marker) ? r.text : undefined;
    }, RUN_MS, 500).catch((e: unknown) => {
      const events = stack.platform.state.list("compute-event", "stage/").map(([, e2]) => JSON.stringify(e2));
      const c = stack.services.find((x) => x.name === "compute") as RunningCompute | undefined;
      events.push(`degraded=${String(c?.degraded)}`, `address=${JSON.stringify(c?.address("stage", "site"))}`, `routes=${JSON.stringify(stack.platform.state.list("net-route"))}`);
      throw new Error(`${e instanceof Error ? e.message : String(e)}; last answer ${last}; events ${events.join(" ")}; logs:\n${logs.slice(-40).join("\n")}`);
    });
    assert.match(body, new RegExp(`<h1>${marker}</h1>`));
    const css = await viaGateway(gatewayPort, host, "/css/site.css");
    assert.equal(css.status, 200);
    assert.equal(css.text, files["css/site.css"]);
    const other = await viaGateway(gatewayPort, `nowhere.${stack.platform.baseDomain}`, "/");
    assert.equal(other.status, 404, "another host is not served the site");
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    await page.locator("#compute >> xpath=..").getByRole("cell", { name: "site", exact: true }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "deploy-directory-served.png"), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });
});
