/**
 * The web console, built and served by a real stack, driven in Debian's Chromium (playwright-core,
 * headless): a creator signs in with a fresh browser key, creates an IMVU, sets a DNS record and
 * verifies its receipts in the page; an intruder's action on that IMVU is denied and the console
 * names the refusing gate; a tampered server answer (a wrong consistency proof, a wrong inclusion
 * proof) turns the verification red; revenue statements, the public ledger explorer, a CLI
 * identity file import and an exit request. Each page's screenshot goes to test-artifacts/console/.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { ensureConsoleBuilt } from "../../console/build.ts";
import { CONSOLE_CSP } from "../../src/api/routes/console.ts";
import { ed25519Sign } from "../../src/core/crypto/ed25519.ts";
import { createIdentity } from "../../src/core/identity/keyring.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { REPO_ROOT } from "../support/paths.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts", "console");
/** Time limit of one page interaction. */
const STEP_MS = 20_000;

// Scripts run in the page (as text: the root tsconfig has no DOM types; the console's own has them).
/** What IndexedDB holds of the first identity's keys, and whether its private key can be exported. */
const IDENTITY_KEY_PROBE = `(async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open("nexus-console"); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  const ids = await new Promise((res) => { const r = db.transaction("identities").objectStore("identities").getAll(); r.onsuccess = () => res(r.result); });
  const first = ids[0];
  if (!first) return undefined;
  let exported = true;
  try { await crypto.subtle.exportKey("pkcs8", first.current); } catch { exported = false; }
  return { id: first.id, extractable: first.current.extractable, nextExtractable: first.next?.extractable, algorithm: first.current.algorithm.name, exported };
})()`;
/** The tree size of the last checkpoint the page remembers. */
const LAST_SEEN_SIZE_PROBE = `(async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open("nexus-console"); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  return new Promise((res) => { const r = db.transaction("meta").objectStore("meta").get("checkpoint"); r.onsuccess = () => res(r.result?.size); });
})()`;

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe("the web console in Chromium against a running stack", () => {
  let stack: Stack;
  let base: string;
  let browser: Browser;
  let alice: BrowserContext;
  let mallory: BrowserContext;
  let page: Page;
  let baseDomain: string;
  const pageErrors: string[] = [];

  before(async () => {
    const err = ensureConsoleBuilt((s) => process.stderr.write(`console: ${s}\n`));
    assert.equal(err, undefined, `the console must build: ${err ?? ""}`);
    assert.ok(existsSync(CHROMIUM), "Debian's chromium is needed (./nexus test installs it as root)");
    mkdirSync(ARTIFACTS, { recursive: true });
    const port = await freePort();
    stack = await startStack({
      home: tempDir("nexus-console-"),
      config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: port }, public: false },
      modules: [],
      log: () => {},
    });
    base = stack.apiUrl;
    baseDomain = stack.platform.baseDomain;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
    alice = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    mallory = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await alice.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("serves the built console with a strict CSP, exact files only, no traversal", async () => {
    const index = await fetch(`${base}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(index.headers.get("content-security-policy"), CONSOLE_CSP);
    assert.equal(index.headers.get("x-content-type-options"), "nosniff");
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script");
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(js, "index.html names its bundle");
    const asset = await fetch(`${base}${js}`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
    for (const bad of ["/assets/../../package.json", "/assets/%2e%2e/%2e%2e/package.json", "/assets/..%2f..%2fpackage.json", "/assets//etc/passwd", "/assets/nope.js"]) {
      const r = await fetch(`${base}${bad}`);
      assert.equal(r.status, 404, bad);
      assert.doesNotMatch(await r.text(), /nexus-cos/, `${bad} must not leak package.json`);
    }
    const api = await fetch(`${base}/v1/platform`);
    assert.equal(api.status, 200, "the API still answers beside the console");
  });

  test("sign in with a fresh browser key: non-extractable, registered by a signed inception", async () => {
    await page.goto(`${base}/#/signin`);
    await page.getByLabel(/^Name/).fill("alice");
    await page.getByRole("button", { name: "Create key and register" }).click();
    await page.getByTestId("whoami").getByText("alice").waitFor();
    const key = await page.evaluate<{ id: string; extractable: boolean; nextExtractable?: boolean; algorithm: string; exported: boolean } | undefined>(IDENTITY_KEY_PROBE);
    assert.ok(key, "the identity is in IndexedDB");
    assert.equal(key.algorithm, "Ed25519");
    assert.equal(key.extractable, false);
    assert.equal(key.nextExtractable, false);
    assert.equal(key.exported, false, "the private key cannot be exported");
    const r = await fetch(`${base}/v1/identities/${key.id}`);
    assert.equal(r.status, 200, "the platform registered the inception");
    await shot(page, "signin");
  });

  test("keyboard only: skip link first, labelled fields, Enter submits", async () => {
    const ctx = await browser.newContext();
    const k = await ctx.newPage();
    k.setDefaultTimeout(STEP_MS);
    await k.goto(`${base}/#/signin`);
    await k.getByRole("heading", { name: "Sign in" }).waitFor();
    // Each page moves focus to its heading; from the top of the document the skip link comes first.
    assert.equal(await k.evaluate<string | undefined>("document.activeElement?.tagName"), "H1");
    assert.equal(await k.evaluate<string | undefined>(`document.querySelector("a[href], button, input, select")?.textContent`), "Skip to content");
    await k.getByText("Skip to content").focus();
    await k.keyboard.press("Enter");
    assert.equal(await k.evaluate<string | undefined>("document.activeElement?.id"), "main");
    await k.getByLabel(/^Name/).focus();
    await k.keyboard.type("keyboard-user");
    await k.keyboard.press("Enter");
    await k.getByTestId("whoami").getByText("keyboard-user").waitFor();
    for (const label of [/^Name \(a DNS label/, /^Jurisdiction/, /^Class/, /^Resource envelope/, /^IMVU name/]) {
      await k.goto(`${base}/#/`);
      await k.getByLabel(label).waitFor();
    }
    await ctx.close();
  });

  test("create an IMVU with a signed imvu.create and see its overview", async () => {
    await page.goto(`${base}/#/`);
    await page.getByLabel(/^Name \(a DNS label/).fill("stage");
    await page.getByLabel(/^Jurisdiction/).fill("DE");
    await page.getByRole("button", { name: "Sign and create" }).click();
    const result = page.getByTestId("result");
    await result.waitFor();
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    await shot(page, "create-imvu");
    await page.getByRole("link", { name: "Open stage" }).click();
    await page.getByRole("heading", { name: "IMVU stage" }).waitFor();
    await page.getByText("Resource envelope").waitFor();
    await page.getByRole("cell", { name: "0.5 cores" }).waitFor();
    await page.getByTestId("feed").getByText("imvu.create").waitFor();
    assert.equal(stack.platform.state.get("imvu", "stage")?.owner !== undefined, true);
  });

  test("add a DNS record from the overview", async () => {
    await page.getByLabel("Owner name (absolute)").fill(`www.stage.${baseDomain}.`);
    await page.getByLabel("Type", { exact: true }).selectOption("A");
    await page.getByLabel(/^Value/).fill("192.0.2.10");
    await page.getByRole("button", { name: "Sign and set the record" }).click();
    const result = page.locator("#set-dns").locator("xpath=..").getByTestId("result");
    await result.waitFor();
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    await page.getByTestId("dns-records").getByText("192.0.2.10").waitFor();
    await shot(page, "imvu-overview");
  });

  test("a second identity acting on the IMVU is denied, and the console names the gate", async () => {
    const m = await mallory.newPage();
    m.setDefaultTimeout(STEP_MS);
    await m.goto(`${base}/#/signin`);
    await m.getByLabel(/^Name/).fill("mallory");
    await m.getByRole("button", { name: "Create key and register" }).click();
    await m.getByTestId("whoami").getByText("mallory").waitFor();
    await m.goto(`${base}/#/imvu/stage`);
    await m.getByTestId("not-visible").waitFor();
    await m.getByRole("button", { name: "Sign and request exit" }).click();
    const result = m.getByTestId("result");
    await result.waitFor();
    assert.equal(await result.getAttribute("data-outcome"), "denied");
    const refused = result.locator('tr[data-pass="false"]');
    assert.ok((await refused.count()) >= 1);
    assert.equal(await refused.first().getAttribute("data-gate"), "1", await result.innerText());
    assert.match(await result.innerText(), /gate 1 \(Identity binding\)/);
    await shot(m, "denied-action");
    // The denial's receipt verifies in mallory's page too: a denied attempt is recorded and proven.
    await result.getByRole("button", { name: "Verify this receipt" }).click();
    const checks = result.locator("[data-verdict]");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "verified", await checks.innerText());
    await m.close();
  });

  test("verify the creator's receipts in the page", async () => {
    await page.goto(`${base}/#/trust`);
    await page.getByRole("button", { name: "Verify all receipts" }).click();
    const all = page.getByTestId("all-checks");
    await all.waitFor();
    assert.equal(await all.getAttribute("data-verdict"), "verified", await all.innerText());
    assert.equal(await all.locator('li[data-ok="true"]').count(), 3, "inception, imvu.create and dns.rrset.set");
    await page.getByTestId("last-seen").waitFor();
    const first = page.locator('[data-testid^="receipt-"]').first();
    await first.getByRole("button", { name: "Verify this receipt" }).click();
    const checks = first.locator("[data-verdict]");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "verified");
    const text = await checks.innerText();
    for (const label of ["Checkpoint signature", "Leaf hash", "Command in the entry", "Inclusion proof", "Consistency"]) assert.match(text, new RegExp(label));
    await shot(page, "trust");
  });

  test("a tampered consistency proof turns the verification red, and the last checkpoint seen stays", async () => {
    const seenSize = (): Promise<string | undefined> => page.evaluate<string | undefined>(LAST_SEEN_SIZE_PROBE);
    const seenBefore = await seenSize();
    assert.ok(seenBefore !== undefined);
    // A new command grows the tree past the last checkpoint seen, so verifying it needs a consistency proof.
    await page.goto(`${base}/#/imvu/stage`);
    await page.getByLabel("Owner name (absolute)").fill(`api.stage.${baseDomain}.`);
    await page.getByLabel(/^Value/).fill("192.0.2.11");
    await page.getByRole("button", { name: "Sign and set the record" }).click();
    const result = page.locator("#set-dns").locator("xpath=..").getByTestId("result");
    await result.waitFor();
    await page.route("**/v1/ledger/proofs/consistency**", async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { proof: string[] };
      const first = Buffer.from(body.proof[0] ?? "", "base64");
      first[0] = (first[0] ?? 0) ^ 0x01;
      body.proof[0] = first.toString("base64");
      await route.fulfill({ response: res, json: body });
    });
    await result.getByRole("button", { name: "Verify this receipt" }).click();
    const checks = result.locator("[data-verdict]");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "failed");
    const bad = checks.locator('li[data-ok="false"]');
    assert.match(await bad.first().innerText(), /Consistency/);
    assert.equal(await bad.first().evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el).color), "rgb(164, 22, 26)", "flagged in red");
    await shot(page, "tampered-consistency");
    await page.unroute("**/v1/ledger/proofs/consistency**");
    assert.equal(await seenSize(), seenBefore, "an inconsistent checkpoint is never remembered");
    // The honest proof, asked again, verifies: the red came from the altered answer alone.
    await result.getByRole("button", { name: "Verify this receipt" }).click();
    await result.locator('[data-verdict="verified"]').waitFor();
    assert.ok(BigInt((await seenSize()) ?? "0") > BigInt(seenBefore), "the consistent, newer checkpoint is remembered");
  });

  test("a tampered inclusion proof in a receipt turns the verification red", async () => {
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const sizeBefore = stack.platform.ledger.size;
    await page.route("**/v1/commands", async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { receipt: { inclusionProof: string[] } };
      const p = body.receipt.inclusionProof;
      if (p.length > 0) p[0] = `${((parseInt(p[0]?.[0] ?? "0", 16) ^ 1).toString(16))}${p[0]?.slice(1) ?? ""}`;
      await route.fulfill({ response: res, json: body });
    });
    await page.getByLabel("Owner name (absolute)").fill(`mail.stage.${baseDomain}.`);
    await page.getByLabel(/^Value/).fill("192.0.2.12");
    await page.getByRole("button", { name: "Sign and set the record" }).click();
    const result = page.locator(`#set-dns >> xpath=.. >> [data-testid="result"][data-index="${sizeBefore}"]`);
    await result.waitFor();
    await page.unroute("**/v1/commands");
    await result.getByRole("button", { name: "Verify this receipt" }).click();
    const checks = result.locator("[data-verdict]");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "failed");
    assert.match(await checks.locator('li[data-ok="false"]').first().innerText(), /Inclusion proof/);
    await shot(page, "tampered-inclusion");
  });

  test("revenue statement: the split drawn, every entry proven in the page and linked to the ledger", async () => {
    for (const [i, amount] of ["1001", "2500", "333"].entries()) {
      await stack.platform.submitAsService("revenue-source", {
        type: "revenue.record",
        imvu: "stage",
        body: { class: "imvu", currency: "EUR", amount, source: "checkout", eventId: `evt_${i}` },
      });
    }
    await page.goto(`${base}/#/imvu/stage/revenue`);
    await page.getByRole("button", { name: "Show the statement" }).click();
    const split = page.getByTestId("split-EUR");
    await split.waitFor();
    // 38.34 EUR: creator ceil(3834 × 55 / 100) = 2109, platform 1725.
    assert.match(await split.innerText(), /21\.09 EUR/);
    assert.match(await split.innerText(), /17\.25 EUR/);
    await page.locator("canvas").first().waitFor();
    await page.getByRole("button", { name: "Verify every entry in the page" }).click();
    const checks = page.getByTestId("statement-checks");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "verified", await checks.innerText());
    const link = page.getByTestId("statement").getByRole("link").first();
    const index = await link.innerText();
    await shot(page, "revenue");
    await link.click();
    await page.getByRole("heading", { name: `Ledger entry ${index}` }).waitFor();
  });

  test("the public ledger explorer: checkpoint, denied attempts with their gates, proofs", async () => {
    const auditor = await browser.newContext();
    const a = await auditor.newPage();
    a.setDefaultTimeout(STEP_MS);
    await a.goto(`${base}/#/ledger`);
    const cp = a.getByTestId("explorer-checkpoint");
    await cp.waitFor();
    assert.equal(await cp.getAttribute("data-verdict"), "verified", await cp.innerText());
    await a.getByLabel("Denied attempts only").check();
    const denied = a.getByTestId("entries").locator('tr[data-outcome="denied"]');
    await denied.first().waitFor();
    assert.match(await denied.first().innerText(), /imvu\.exit\.request[\s\S]*denied by gate 1 \(Identity binding\)/);
    await shot(a, "ledger");
    await a.getByRole("button", { name: "Verify", exact: true }).click();
    const cons = a.getByTestId("consistency-checks");
    await cons.waitFor();
    assert.equal(await cons.getAttribute("data-verdict"), "verified", await cons.innerText());
    await denied.first().getByRole("link").click();
    await a.getByTestId("entry-outcome").getByText("denied").waitFor();
    await a.getByRole("button", { name: "Prove this entry is in the signed log" }).click();
    const proof = a.getByTestId("entry-checks");
    await proof.waitFor();
    assert.equal(await proof.getAttribute("data-verdict"), "verified", await proof.innerText());
    await shot(a, "ledger-entry");
    await auditor.close();
    // A checkpoint whose root was altered in transit fails its signature check in the page.
    const forged = await browser.newContext();
    const f = await forged.newPage();
    f.setDefaultTimeout(STEP_MS);
    await f.route("**/v1/ledger/checkpoint", async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { note: string };
      const lines = body.note.split("\n");
      const root = Buffer.from(lines[2] ?? "", "base64");
      root[0] = (root[0] ?? 0) ^ 0x80;
      lines[2] = root.toString("base64");
      await route.fulfill({ response: res, json: { ...body, note: lines.join("\n") } });
    });
    await f.goto(`${base}/#/ledger`);
    const bad = f.getByTestId("explorer-checkpoint");
    await bad.waitFor();
    assert.equal(await bad.getAttribute("data-verdict"), "failed");
    assert.match(await bad.innerText(), /Checkpoint signature/);
    await shot(f, "ledger-forged-checkpoint");
    await forged.close();
  });

  test("import a CLI identity file: verified, registered, then signs in this browser", async () => {
    const keyring = join(tempDir("nexus-console-keyring-"), "keyring");
    const id = createIdentity(keyring, { name: "cli-bob" });
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    p.setDefaultTimeout(STEP_MS);
    await p.goto(`${base}/#/signin`);
    await p.getByLabel(/^Identity file/).setInputFiles({ name: `${id.id}.json`, mimeType: "application/json", buffer: readFileSync(id.path) });
    await p.getByRole("button", { name: "Import and sign in" }).click();
    await p.getByTestId("whoami").getByText("cli-bob").waitFor();
    assert.equal((await fetch(`${base}/v1/identities/${id.id}`)).status, 200);
    await shot(p, "import-cli-identity");
    // The console's resources read follows gate 16: anonymous 401, another identity 404 (as for no IMVU at all).
    assert.equal((await fetch(`${base}/v1/console/imvus/stage/resources`)).status, 401);
    const ch = (await (await fetch(`${base}/v1/auth/challenge`)).json()) as { challenge: string; prefix: string };
    const signature = Buffer.from(ed25519Sign(id.current.privateKey, Buffer.from(ch.prefix + ch.challenge))).toString("base64");
    const tok = (await (await fetch(`${base}/v1/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ identity: id.id, challenge: ch.challenge, signature }) })).json()) as { token: string };
    const auth = { authorization: `Bearer ${tok.token}` };
    assert.equal((await fetch(`${base}/v1/console/imvus/stage/resources`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${base}/v1/console/imvus/nosuch/resources`, { headers: auth })).status, 404);
    await ctx.close();
  });

  test("usage reported by the services is drawn as charts on the overview", async () => {
    const t0 = Date.now() - 3 * 60_000;
    for (let i = 0; i < 3; i++) {
      const r = await stack.platform.submitAsService("meter", {
        type: "usage.report",
        imvu: "stage",
        body: {
          service: "meter",
          intervalStart: new Date(t0 + i * 60_000).toISOString(),
          intervalEnd: new Date(t0 + (i + 1) * 60_000).toISOString(),
          metrics: { cpuMillis: String(100 + i * 50), bandwidthBytes: String(1000 * (i + 1)) },
        },
      });
      assert.equal(r.outcome, "applied", JSON.stringify(r.gates));
    }
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const usage = page.locator("#usage >> xpath=..");
    await usage.getByRole("img", { name: /meter · cpuMillis: 3 reports, latest 200/ }).waitFor();
    assert.equal(await usage.locator("canvas").count(), 2, "one chart per metric");
    await usage.screenshot({ path: join(ARTIFACTS, "usage.png") });
  });

  test("the owner starts an exit; the bundle download is announced for a later release", async () => {
    await page.goto(`${base}/#/imvu/stage`);
    await page.getByText(/download of the exit bundle/).waitFor();
    await page.getByRole("button", { name: "Sign and request exit" }).click();
    const result = page.locator("#exit").locator("xpath=..").getByTestId("result");
    await result.waitFor();
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    await page.getByTestId("status").getByText("exit requested").waitFor();
    await shot(page, "exit");
  });

  test("no script error and no CSP violation in the page", () => {
    assert.deepEqual(pageErrors, []);
  });
});
