/**
 * The web console, built and served by a real stack, driven in Debian's Chromium (playwright-core,
 * headless): a creator signs in with a fresh browser key, creates an IMVU, sets a DNS record and
 * verifies its receipts in the page; an intruder's action on that IMVU is denied and the console
 * names the refusing gate; a tampered server answer (a wrong consistency proof, a wrong inclusion
 * proof) turns the verification red; revenue statements, the public ledger explorer, a CLI
 * identity file import, a mailbox whose password (made in the page) logs in over IMAP and whose
 * password changed in the page logs in while the old one no longer does, a workload deployed from an
 * image and one from a directory chosen in the page (packed there into the CLI's exact tar, uploaded
 * and bound by its SHA-256), a private route and a grant, routes denied by gate 2 (no such workload)
 * and gate 8 (a host outside the IMVU's domain), platform totals, the stack audit panel (against a
 * stubbed /v1/audit while the real route does not exist, and the real one once it does), and an
 * exit request. Each page's screenshot goes to test-artifacts/console/.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImapFlow } from "imapflow";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";
import { ensureConsoleBuilt } from "../../console/build.ts";
import { CONSOLE_CSP } from "../../src/api/routes/console.ts";
import { ed25519Sign } from "../../src/core/crypto/ed25519.ts";
import { createIdentity } from "../../src/core/identity/keyring.ts";
import { freePort } from "../../src/cli/dev/system.ts";
import { DEFAULT_PORTS } from "../../src/platform/service.ts";
import { createMailService } from "../../src/platform/services/mail.ts";
import { checkPassword, MailSecretStore } from "../../src/services/mail/directory.ts";
import { startStack, type Stack } from "../../src/platform/stack.ts";
import { sourceTarPath } from "../../src/services/compute/sources.ts";
import { writeTarSync } from "../../src/services/compute/tar.ts";
import { REPO_ROOT } from "../support/paths.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(REPO_ROOT, "test-artifacts", "console");
/** Time limit of one page interaction. */
const STEP_MS = 20_000;
/** Longest a real audit run may take here. */
const AUDIT_MS = 180_000;
/** The mail service's metering interval here: longer than the suite, so no usage report adds charts. */
const MAIL_METER_MS = 3_600_000;

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

/**
 * Writes a directory with the metadata a browser cannot show and the page therefore assumes
 * (files 0644, directories 0755, owner 0:0 when root, a directory's mtime the newest beneath it),
 * so the CLI's tar of it is what the page must make; returns the CLI's archive digest and bytes.
 */
function siteTree(root: string, files: Readonly<Record<string, string>>): { sha256: string; tar: Buffer } {
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  let t = 1_700_000_000;
  for (const [rel, text] of Object.entries(files)) {
    const abs = join(root, rel);
    mkdirSync(join(abs, ".."), { recursive: true });
    writeFileSync(abs, text);
    chmodSync(abs, 0o644);
    if (asRoot) chownSync(abs, 0, 0);
    utimesSync(abs, t, t);
    t += 17;
  }
  const fix = (dir: string): number => {
    let newest = 0;
    for (const n of readdirSync(dir)) {
      const st = lstatSync(join(dir, n));
      newest = Math.max(newest, st.isDirectory() ? fix(join(dir, n)) : Math.floor(st.mtimeMs / 1000));
    }
    chmodSync(dir, 0o755);
    if (asRoot) chownSync(dir, 0, 0);
    utimesSync(dir, newest, newest);
    return newest;
  };
  fix(root);
  const out = join(mkdtempSync(join(tmpdir(), "nexus-console-tar-")), "cli.tar");
  const { sha256 } = writeTarSync(root, out);
  const tar = readFileSync(out);
  rmSync(join(out, ".."), { recursive: true, force: true });
  return { sha256, tar };
}

/** Logs in over IMAP (STARTTLS, a real client); whether the server accepted the password. */
async function imapLogin(port: number, user: string, pass: string): Promise<boolean> {
  const c = new ImapFlow({ host: "127.0.0.1", port, secure: false, doSTARTTLS: true, tls: { rejectUnauthorized: false }, auth: { user, pass }, logger: false });
  c.on("error", () => {});
  try {
    await c.connect();
    const ok = c.authenticated !== false;
    await c.logout();
    return ok;
  } catch {
    c.close();
    return false;
  }
}

/** The signed command of a ledger entry served by the API. */
async function commandAtEntry(base: string, index: string): Promise<{ entry: string; type: string; body: Record<string, unknown> }> {
  const served = (await (await fetch(`${base}/v1/ledger/entries/${index}`)).json()) as { entry: string };
  const entry = Buffer.from(served.entry, "base64").toString();
  const parsed = JSON.parse(entry) as { envelope: { payload: string } };
  const signed = JSON.parse(Buffer.from(parsed.envelope.payload, "base64").toString()) as { type: string; body: Record<string, unknown> };
  return { entry, type: signed.type, body: signed.body };
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Clicks a section's submit button and returns the new result box (not the one shown before). */
async function submitIn(page: Page, section: string, button: string): Promise<Locator> {
  const box = page.locator(`#${section} >> xpath=..`);
  const prev = (await box.getByTestId("result").count()) > 0 ? await box.getByTestId("result").getAttribute("data-index") : null;
  await box.getByRole("button", { name: button }).click();
  const result = prev === null ? box.getByTestId("result") : box.locator(`[data-testid="result"]:not([data-index="${prev}"])`);
  await result.waitFor();
  return result;
}

/** Asserts a denied result whose first refusing gate is `gate`, named with its reason on the page. */
async function assertDeniedBy(result: Locator, gate: number, name: string, reason: RegExp): Promise<void> {
  const text = await result.innerText();
  assert.equal(await result.getAttribute("data-outcome"), "denied", text);
  const refused = result.locator('tr[data-pass="false"]');
  assert.equal(await refused.count(), 1, text);
  assert.equal(await refused.first().getAttribute("data-gate"), String(gate), text);
  assert.match(text, new RegExp(`Refused by gate ${gate} \\(${name}\\): `));
  assert.match(text, reason);
}

describe("the web console in Chromium against a running stack", () => {
  let stack: Stack;
  let base: string;
  let browser: Browser;
  let alice: BrowserContext;
  let mallory: BrowserContext;
  let page: Page;
  let baseDomain: string;
  let imapPort: number;
  /** The password the page generated for the first mailbox (the password-change test replaces it). */
  let mailPassword = "";
  const pageErrors: string[] = [];

  before(async () => {
    const err = ensureConsoleBuilt((s) => process.stderr.write(`console: ${s}\n`));
    assert.equal(err, undefined, `the console must build: ${err ?? ""}`);
    assert.ok(existsSync(CHROMIUM), "Debian's chromium is needed (./nexus test installs it as root)");
    mkdirSync(ARTIFACTS, { recursive: true });
    const port = await freePort();
    const [smtp, submission, imap] = [await freePort(), await freePort(), await freePort()];
    imapPort = imap;
    stack = await startStack({
      home: tempDir("nexus-console-"),
      config: { host: "127.0.0.1", ports: { ...DEFAULT_PORTS, api: port, smtp, submission, imap }, public: false },
      // Mail only (for the IMAP login of a mailbox added in the page); no compute, DNS or gateway.
      modules: [createMailService({ meterIntervalMs: MAIL_METER_MS })],
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

  test("platform totals: GET /v1/platform/totals counts what the ledger and projection hold; the explorer shows them and checks the tree size", async () => {
    const r = await fetch(`${base}/v1/platform/totals`);
    assert.equal(r.status, 200);
    const totals = (await r.json()) as {
      treeSize: string; entries: { counted: string; applied: string; denied: string; other: string };
      imvus: { total: number; byStatus: Record<string, number>; byClass: Record<string, number> };
      revenue: Record<string, { gross: string; creator: string; platform: string; byClass: Record<string, { gross: string }> }>;
    };
    // Counted independently here, from the ledger's own entries.
    const size = BigInt(totals.treeSize);
    let applied = 0n;
    let denied = 0n;
    for (let i = 0n; i < size; ) {
      const rows = await stack.platform.ledger.entries(i, 1000);
      for (const row of rows) {
        const o = (JSON.parse(Buffer.from(row.bytes).toString()) as { outcome?: string }).outcome;
        if (o === "applied") applied++;
        else if (o === "denied") denied++;
      }
      i += BigInt(rows.length);
    }
    assert.equal(totals.entries.counted, totals.treeSize);
    assert.equal(totals.entries.applied, applied.toString());
    assert.equal(totals.entries.denied, denied.toString());
    assert.ok(denied >= 1n, "the denied attempts of the earlier tests");
    assert.equal(totals.imvus.total, stack.platform.state.list("imvu").length);
    assert.equal(totals.imvus.byClass["imvu"], stack.platform.state.list("imvu").filter(([, i]) => i.class === "imvu").length);
    // 1001 + 2500 + 333 = 3834 EUR cents: creators ceil(3834 × 55 / 100) = 2109, the platform 1725.
    assert.deepEqual({ gross: totals.revenue["EUR"]?.gross, creator: totals.revenue["EUR"]?.creator, platform: totals.revenue["EUR"]?.platform }, { gross: "3834", creator: "2109", platform: "1725" });
    assert.equal(totals.revenue["EUR"]?.byClass["imvu"]?.gross, "3834");
    assert.doesNotMatch(JSON.stringify(totals), /nx1[a-z2-7]{10}|stage|creator@/, "aggregates only: no identity, IMVU name or address");
    assert.equal((await fetch(`${base}/v1/platform/totals?imvu=stage`)).status, 400, "no query parameters");
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    assert.ok(doc.paths["/v1/platform/totals"]?.["get"], "GET /v1/platform/totals is documented");

    const ctx = await browser.newContext();
    const a = await ctx.newPage();
    a.setDefaultTimeout(STEP_MS);
    await a.goto(`${base}/#/ledger`);
    const panel = a.getByTestId("totals");
    await panel.waitFor();
    assert.equal(await a.getByTestId("totals-denied").innerText(), Number(denied).toLocaleString("en"));
    assert.equal(await a.getByTestId("totals-imvus").innerText(), String(totals.imvus.total));
    const eur = a.getByTestId("totals-revenue").locator('tr[data-currency="EUR"]');
    assert.match(await eur.innerText(), /38\.34 EUR[\s\S]*21\.09 EUR[\s\S]*17\.25 EUR/);
    const checks = a.getByTestId("totals-checks");
    await checks.waitFor();
    assert.equal(await checks.getAttribute("data-verdict"), "verified", await checks.innerText());
    await panel.screenshot({ path: join(ARTIFACTS, "totals.png") });
    await ctx.close();

    // Totals that claim a tree older than the signed checkpoint (a stale or rolled-back answer) are flagged red.
    const stale = await browser.newContext();
    const s2 = await stale.newPage();
    s2.setDefaultTimeout(STEP_MS);
    await s2.route("**/v1/platform/totals", async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as Record<string, unknown>;
      await route.fulfill({ response: res, json: { ...body, treeSize: "1" } });
    });
    await s2.goto(`${base}/#/ledger`);
    const bad = s2.getByTestId("totals-checks");
    await bad.waitFor();
    assert.equal(await bad.getAttribute("data-verdict"), "failed");
    assert.match(await bad.innerText(), /older than the signed checkpoint/);
    await stale.close();
  });

  test("the stack audit panel (against a STUB of /v1/audit in this test): no audit yet, run one, each check green or red, the audited tree checked", async () => {
    const ctx = await browser.newContext();
    const a = await ctx.newPage();
    a.setDefaultTimeout(STEP_MS);
    const cp = (await (await fetch(`${base}/v1/ledger/checkpoint`)).json()) as { size: string; rootHash: string };
    // STUB, in this test only: the real GET /v1/audit/latest and POST /v1/audit come with `nexus audit`.
    let latest: unknown;
    let runs = 0;
    const stubReport = (root: string) => ({
      version: 1,
      at: new Date().toISOString(),
      treeSize: Number(cp.size),
      root,
      ok: false,
      checks: [
        { id: "ledger.replay", title: "The projection replays from the ledger", ok: true, problems: [], checked: Number(cp.size) },
        { id: "dns.zones", title: "DNS answers match the ledger", ok: false, problems: ["www.stage answers A 192.0.2.99, the ledger says 192.0.2.10"], checked: 3 },
        { id: "compute.workloads", title: "Running workloads match the ledger", ok: true, problems: [], checked: 0, skipped: "compute is not running" },
      ],
    });
    await a.route("**/v1/audit/latest", (route) =>
      latest === undefined
        ? route.fulfill({ status: 404, json: { error: { code: "NOT_FOUND", message: "no audit has run yet" } } })
        : route.fulfill({ status: 200, json: latest }),
    );
    await a.route("**/v1/audit", async (route) => {
      assert.equal(route.request().method(), "POST");
      runs++;
      latest = stubReport(cp.rootHash);
      await route.fulfill({ status: 202, json: { started: true } });
    });
    await a.goto(`${base}/#/ledger`);
    await a.getByTestId("audit-none").waitFor();
    await a.locator("#audit >> xpath=..").screenshot({ path: join(ARTIFACTS, "audit-none.png") });
    await a.getByRole("button", { name: "Run an audit now" }).focus();
    await a.keyboard.press("Enter");
    const report = a.getByTestId("audit-report");
    await report.waitFor();
    assert.equal(runs, 1);
    assert.equal(await report.getAttribute("data-ok"), "false");
    assert.match(await report.innerText(), /The last audit FAILED: 1 check found problems/);
    const dns = report.locator('tr[data-check="dns.zones"]');
    assert.equal(await dns.getAttribute("data-ok"), "false");
    assert.match(await dns.innerText(), /FAILED[\s\S]*192\.0\.2\.99/);
    assert.equal(await dns.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el.querySelector("td")).color), "rgb(164, 22, 26)", "a failed check in red");
    assert.match(await report.locator('tr[data-check="ledger.replay"]').innerText(), /✓ ok/);
    assert.match(await report.locator('tr[data-check="compute.workloads"]').innerText(), /skipped: compute is not running/);
    const tree = a.getByTestId("audit-tree");
    await tree.waitFor();
    assert.equal(await tree.getAttribute("data-verdict"), "verified", await tree.innerText());
    await shot(a, "audit-report");
    await ctx.close();

    // A report about another log (its root is not the signed one) is flagged red in the page.
    const forged = await browser.newContext();
    const f = await forged.newPage();
    f.setDefaultTimeout(STEP_MS);
    const wrong = Buffer.from(cp.rootHash, "base64");
    wrong[0] = (wrong[0] ?? 0) ^ 0x01;
    await f.route("**/v1/audit/latest", (route) => route.fulfill({ status: 200, json: { ...stubReport(wrong.toString("base64")), ok: true, checks: [] } }));
    await f.goto(`${base}/#/ledger`);
    const bad = f.getByTestId("audit-tree");
    await bad.waitFor();
    assert.equal(await bad.getAttribute("data-verdict"), "failed");
    assert.match(await bad.innerText(), /another log|NOT a prefix/);
    await shot(f, "audit-forged-root");
    await forged.close();
  });

  test("the stack audit panel against the real /v1/audit (when the stack mounts it): run one from the page, every check shown, the audited tree proven", async (t) => {
    const probe = await fetch(`${base}/v1/audit/latest`);
    const probeBody = (await probe.json()) as { at?: string; error?: { message?: string } };
    if (probe.status === 404 && /^GET \/v1\/audit\/latest/.test(probeBody.error?.message ?? "")) {
      t.skip("this stack mounts no /v1/audit yet (the stubbed test above covers the page)");
      return;
    }
    const ctx = await browser.newContext();
    const a = await ctx.newPage();
    a.setDefaultTimeout(STEP_MS);
    await a.goto(`${base}/#/ledger`);
    if (probe.status === 404) await a.getByTestId("audit-none").waitFor();
    await a.getByRole("button", { name: "Run an audit now" }).click();
    const report = a.locator(probeBody.at === undefined ? '[data-testid="audit-report"]' : `[data-testid="audit-report"]:not([data-at="${probeBody.at}"])`);
    await report.waitFor({ timeout: AUDIT_MS });
    const served = (await (await fetch(`${base}/v1/audit/latest`)).json()) as { ok: boolean; treeSize: string; checks: { id: string; ok: boolean; problems: string[] }[] };
    assert.equal(await report.getAttribute("data-ok"), String(served.ok));
    for (const c of served.checks) {
      const row = report.locator(`tr[data-check="${c.id}"]`);
      assert.equal(await row.getAttribute("data-ok"), String(c.ok), c.id);
      for (const p of c.problems.slice(0, 3)) assert.ok((await row.innerText()).includes(p), `${c.id}: ${p}`);
    }
    const tree = a.getByTestId("audit-tree");
    await tree.waitFor();
    assert.equal(await tree.getAttribute("data-verdict"), "verified", `the real report's tree (size ${served.treeSize}) is the signed log's: ${await tree.innerText()}`);
    await shot(a, "audit-real");
    await ctx.close();
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

  test("add a mailbox: password and scrypt verifier made in the page, listed, and the password logs in over IMAP", async () => {
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const address = `creator@stage.${baseDomain}`;
    const box = page.locator("#add-mailbox >> xpath=..");
    await box.getByLabel("Mailbox address").fill(address);
    await shot(page, "form-add-mailbox");
    const result = await submitIn(page, "add-mailbox", "Generate a password, sign and add the mailbox");
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    const password = await box.getByTestId("password").innerText();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/, "18 random bytes, base64url, as the CLI makes");
    await page.getByTestId("mailboxes").getByText(address).waitFor();
    await page.getByTestId("mailboxes").getByText(/password set/).waitFor();
    await shot(page, "add-mailbox");
    // The ledger holds only the commitment; the secret store holds the verifier the page derived.
    const mailbox = stack.platform.state.get("mail-mailbox", `stage/${address}`);
    assert.ok(mailbox, "the mailbox is in the projection");
    const stored = new MailSecretStore(stack.platform.home).read("stage").passwords[address];
    assert.ok(stored !== undefined, "the verifier was posted to /v1/mail/verifiers");
    assert.equal(await checkPassword(stored, password), true, "the server's verifier check accepts the page's password");
    const served = (await (await fetch(`${base}/v1/ledger/entries/${await result.getAttribute("data-index")}`)).json()) as { entry: string };
    const entry = JSON.parse(Buffer.from(served.entry, "base64").toString()) as { envelope: { payload: string } };
    const signed = JSON.parse(Buffer.from(entry.envelope.payload, "base64").toString()) as { type: string; body: Record<string, unknown> };
    assert.equal(signed.type, "mail.mailbox.add");
    assert.deepEqual(Object.keys(signed.body).sort(), ["address", "verifierCommitment"], "the command carries the commitment only");
    assert.equal(signed.body["verifierCommitment"], mailbox.verifierCommitment);
    for (const text of [JSON.stringify(entry), JSON.stringify(signed)]) {
      assert.doesNotMatch(text, /scrypt|\$ln=/, "no verifier in the ledger");
      assert.ok(!text.includes(password), "no password in the ledger");
    }
    // A real IMAP client (STARTTLS) logs in with the password shown once; a wrong one is refused.
    const login = (pass: string): Promise<boolean> => imapLogin(imapPort, address, pass);
    assert.equal(await login(password), true, "IMAP login with the page's password");
    mailPassword = password;
    assert.equal(await login(`${password}x`), false, "a wrong password is refused");
    // Hiding the password removes it from the page: it was shown once.
    await box.getByRole("button", { name: /hide the password/ }).click();
    assert.equal(await box.getByTestId("password").count(), 0);
  });

  test("change a mailbox password in the page: only the new verifier's SHA-256 is signed; IMAP takes the new password, not the old", async () => {
    assert.notEqual(mailPassword, "", "the mailbox of the previous test");
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const address = `creator@stage.${baseDomain}`;
    const box = page.locator("#mail-passwd >> xpath=..");
    await page.getByTestId("mailboxes").getByText(address).waitFor();
    assert.equal(await box.getByLabel("Mailbox").inputValue(), address, "the IMVU's mailbox is offered");
    // A typed password, confirmed: a mismatch is caught in the page and nothing is signed.
    await box.getByLabel("Type my own").check();
    const chosen = `Tr0ub4dor & 3 ✓ ${Date.now()}`;
    await box.getByLabel("New password", { exact: true }).fill(chosen);
    await box.getByLabel("New password again").fill(`${chosen}!`);
    const sizeBefore = stack.platform.ledger.size;
    await box.getByRole("button", { name: "Sign and change the password" }).click();
    await box.getByRole("alert").getByText("The two passwords differ.").waitFor();
    assert.equal(stack.platform.ledger.size, sizeBefore, "nothing was submitted");
    await box.getByLabel("New password again").fill(chosen);
    await shot(page, "form-mail-passwd");
    const before = stack.platform.state.get("mail-mailbox", `stage/${address}`)?.verifierCommitment;
    const result = await submitIn(page, "mail-passwd", "Sign and change the password");
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    await box.getByTestId("passwd-done").waitFor();
    assert.equal(await box.getByTestId("new-password").count(), 0, "a typed password is never shown back");
    const mailbox = stack.platform.state.get("mail-mailbox", `stage/${address}`);
    assert.ok(mailbox);
    assert.notEqual(mailbox.verifierCommitment, before, "a new commitment");
    const cmd = await commandAtEntry(base, (await result.getAttribute("data-index")) ?? "");
    assert.equal(cmd.type, "mail.mailbox.passwd");
    assert.deepEqual(Object.keys(cmd.body).sort(), ["address", "verifierCommitment"], "the command carries the commitment only");
    assert.equal(cmd.body["verifierCommitment"], mailbox.verifierCommitment);
    assert.doesNotMatch(cmd.entry, /scrypt|\$ln=/, "no verifier in the ledger");
    assert.ok(!cmd.entry.includes(chosen) && !cmd.entry.includes(Buffer.from(chosen).toString("base64")), "no password in the ledger");
    const stored = new MailSecretStore(stack.platform.home).read("stage").passwords[address];
    assert.ok(stored !== undefined);
    assert.equal(await checkPassword(stored, chosen), true, "the stored verifier is the page's, for the typed password");
    assert.equal(await imapLogin(imapPort, address, chosen), true, "IMAP login with the new password");
    assert.equal(await imapLogin(imapPort, address, mailPassword), false, "the old password no longer logs in");
    await shot(page, "mail-passwd");
    // A generated one, shown once; the typed one stops working.
    await box.getByLabel(/^Generate one in this page/).check();
    const again = await submitIn(page, "mail-passwd", "Sign and change the password");
    assert.equal(await again.getAttribute("data-outcome"), "applied", await again.innerText());
    const generated = await box.getByTestId("new-password").innerText();
    assert.match(generated, /^[A-Za-z0-9_-]{24}$/);
    assert.equal(await imapLogin(imapPort, address, generated), true, "IMAP login with the generated password");
    assert.equal(await imapLogin(imapPort, address, chosen), false, "the typed password no longer logs in");
    mailPassword = generated;
    await box.getByRole("button", { name: /hide the password/ }).click();
    assert.equal(await box.getByTestId("new-password").count(), 0);
  });

  test("another identity cannot change the mailbox password: denied by a gate, and the password still logs in", async () => {
    const address = `creator@stage.${baseDomain}`;
    const m = await mallory.newPage();
    m.setDefaultTimeout(STEP_MS);
    await m.goto(`${base}/#/imvu/stage`);
    await m.getByTestId("not-visible").waitFor();
    const box = m.locator("#mail-passwd >> xpath=..");
    await box.getByLabel("Mailbox").fill(address);
    const result = await submitIn(m, "mail-passwd", "Sign and change the password");
    assert.equal(await result.getAttribute("data-outcome"), "denied", await result.innerText());
    assert.match(await result.innerText(), /Refused by gate \d+ \(/);
    assert.equal(await box.getByTestId("new-password").count(), 0, "no password shown for a denied change");
    assert.equal(await imapLogin(imapPort, address, mailPassword), true, "the owner's password still logs in");
    await shot(m, "mail-passwd-denied");
    await m.close();
  });

  test("deploy a workload from an image, route to it privately, and grant an identity on the route", async () => {
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const deploy = page.locator("#deploy >> xpath=..");
    await deploy.getByTestId("compute-status").waitFor();
    assert.equal(await deploy.getByLabel("An image", { exact: true }).isChecked(), true, "an image is the default source");
    await deploy.getByLabel("Workload name").fill("web");
    await deploy.getByLabel("Image reference").fill("docker.io/library/nginx:1.27");
    await deploy.getByLabel(/^Port the workload listens on/).fill("8080");
    await shot(page, "form-deploy-workload");
    const deployed = await submitIn(page, "deploy", "Sign and deploy");
    assert.equal(await deployed.getAttribute("data-outcome"), "applied", await deployed.innerText());
    await page.locator("#compute >> xpath=..").getByRole("cell", { name: "web", exact: true }).waitFor();
    assert.deepEqual(stack.platform.state.get("compute-workload", "stage/web")?.source, { kind: "image", ref: "docker.io/library/nginx:1.27" });

    const route = page.locator("#add-route >> xpath=..");
    await route.getByLabel("Route id").fill("members");
    assert.equal(await route.getByLabel("Host", { exact: true }).inputValue(), `stage.${baseDomain}`, "the host defaults to the IMVU's domain");
    await route.getByLabel("Path prefix").fill("/members");
    await route.getByLabel("Kind").selectOption("private");
    await route.getByLabel("Upstream workload").fill("web");
    await route.getByLabel(/^Upstream port \(default 8080/).waitFor();
    await shot(page, "form-add-route");
    const added = await submitIn(page, "add-route", "Sign and add the route");
    assert.equal(await added.getAttribute("data-outcome"), "applied", await added.innerText());
    const r = stack.platform.state.get("net-route", "stage/members");
    assert.equal(r?.kind, "private");
    assert.deepEqual(r?.upstream, { workload: "web", port: 8080 }, "the workload's port is the default");

    const mallory = stack.platform.state.list("identity").find(([, i]) => i.name === "mallory")?.[1].id;
    assert.ok(mallory !== undefined, "mallory registered earlier");
    const grant = page.locator("#grant >> xpath=..");
    // The page reloads the IMVU's resources after the receipt: wait until the new route is listed.
    const offered = grant.getByLabel("Private route");
    for (let i = 0; i < 100 && (await offered.inputValue()) !== "members"; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await offered.inputValue(), "members", "the private route is offered");
    await grant.getByLabel("Identity to grant").fill(mallory);
    await shot(page, "form-grant");
    const granted = await submitIn(page, "grant", "Sign and grant");
    assert.equal(await granted.getAttribute("data-outcome"), "applied", await granted.innerText());
    assert.ok(stack.platform.state.get("net-grant", `stage/members/${mallory}`), "the grant is in the projection");
    await page.locator("#compute >> xpath=..").getByRole("cell", { name: mallory }).waitFor();
    await shot(page, "routes-and-grants");
  });

  test("a route to a workload that does not exist is denied by gate 2, and the page names the gate", async () => {
    const route = page.locator("#add-route >> xpath=..");
    await route.getByLabel("Route id").fill("ghost");
    await route.getByLabel("Host", { exact: true }).fill(`stage.${baseDomain}`);
    await route.getByLabel("Path prefix").fill("/ghost");
    await route.getByLabel("Kind").selectOption("public");
    await route.getByLabel("Upstream workload").fill("nosuch");
    await route.getByLabel(/^Upstream port/).fill("8080");
    const result = await submitIn(page, "add-route", "Sign and add the route");
    await assertDeniedBy(result, 2, "IMVU isolation", /workload nosuch is not one of stage's workloads/);
    assert.equal(stack.platform.state.get("net-route", "stage/ghost"), undefined);
    await shot(page, "route-denied-gate-2");
  });

  test("a route on a host outside the IMVU's domain is denied by gate 8, and the page names the gate", async () => {
    const route = page.locator("#add-route >> xpath=..");
    await route.getByLabel("Route id").fill("shop");
    await route.getByLabel("Host", { exact: true }).fill("shop.example.org");
    await route.getByLabel("Path prefix").fill("/");
    await route.getByLabel("Kind").selectOption("public");
    await route.getByLabel("Upstream workload").fill("web");
    await route.getByLabel(/^Upstream port/).fill("");
    const result = await submitIn(page, "add-route", "Sign and add the route");
    await assertDeniedBy(result, 8, "Network governance", /shop\.example\.org is not in a domain bound to stage/);
    assert.equal(stack.platform.state.get("net-route", "stage/shop"), undefined);
    await shot(page, "route-denied-gate-8");
  });

  test("deploy from a directory chosen in the page: packed into the CLI's exact tar, uploaded, deployed as an app bound by its SHA-256", async (t) => {
    const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
    const site = join(tempDir("nexus-console-site-"), "site");
    const cli = siteTree(site, {
      "index.html": "<!doctype html><title>From the console</title><h1>Deployed from a browser</h1>\n",
      "css/site.css": "h1 { color: #0b4f94; }\n",
      "img/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>\n",
      ".well-known/security.txt": "Contact: mailto:security@example.org\n",
      "docs/a long name with spaces and ünïcödé.txt": "x".repeat(700),
    });
    await page.goto(`${base}/#/`);
    await page.goto(`${base}/#/imvu/stage`);
    const deploy = page.locator("#deploy >> xpath=..");
    await deploy.getByLabel("Workload name").fill("site");
    await deploy.getByLabel(/^A directory on this computer/).check();
    await deploy.getByLabel("Directory to deploy").setInputFiles(site);
    await deploy.getByTestId("picked").getByText(/^site: 5 files/).waitFor();
    await deploy.getByLabel(/^Port the workload listens on/).fill("8080");
    await deploy.getByLabel(/^Command/).fill("");
    await shot(page, "form-deploy-directory");
    const result = await submitIn(page, "deploy", "Pack, upload, sign and deploy");
    assert.equal(await result.getAttribute("data-outcome"), "applied", await result.innerText());
    const source = deploy.getByTestId("source");
    const sha = (await source.getAttribute("data-sha256")) ?? "";
    assert.match(sha, /^[0-9a-f]{64}$/);
    const w = stack.platform.state.get("compute-workload", "stage/site");
    assert.deepEqual(w?.source, { kind: "app", sha256: sha }, "the ledger binds the uploaded digest");
    assert.equal(w?.port, 8080);
    const stored = readFileSync(sourceTarPath(stack.platform.home, "stage", sha));
    if (asRoot) {
      assert.equal(sha, cli.sha256, "the page's tar is the CLI's tar of the same tree");
      assert.deepEqual(stored, cli.tar, "byte for byte");
    } else {
      t.diagnostic("not root: the tree cannot be owned by 0:0, so only the stored bytes' digest is compared");
    }
    assert.equal(createHash("sha256").update(stored).digest("hex"), sha, "the API stored the bytes under their own digest");
    const cmd = await commandAtEntry(base, (await result.getAttribute("data-index")) ?? "");
    assert.equal(cmd.type, "compute.workload.deploy");
    assert.deepEqual(cmd.body["source"], { kind: "app", sha256: sha });
    await page.locator("#compute >> xpath=..").getByRole("cell", { name: "site", exact: true }).waitFor();
    await shot(page, "deploy-directory");
    // The same tree again: the same digest, already there.
    await deploy.getByLabel("Workload name").fill("site2");
    await deploy.getByLabel("Directory to deploy").setInputFiles(site);
    const again = await submitIn(page, "deploy", "Pack, upload, sign and deploy");
    assert.equal(await again.getAttribute("data-outcome"), "applied", await again.innerText());
    assert.equal(await source.getAttribute("data-sha256"), sha);
    await source.getByText(/already uploaded/).waitFor();

    // Another identity cannot upload into stage's sources (gate 16: 404 as for no IMVU), and nothing is signed.
    const m = await mallory.newPage();
    m.setDefaultTimeout(STEP_MS);
    await m.goto(`${base}/#/imvu/stage`);
    await m.getByTestId("not-visible").waitFor();
    const md = m.locator("#deploy >> xpath=..");
    await md.getByLabel("Workload name").fill("evil");
    await md.getByLabel(/^A directory on this computer/).check();
    await md.getByLabel("Directory to deploy").setInputFiles(site);
    const sizeBefore = stack.platform.ledger.size;
    await md.getByRole("button", { name: "Pack, upload, sign and deploy" }).click();
    await md.getByRole("alert").getByText(/NOT_FOUND/).waitFor();
    assert.equal(stack.platform.ledger.size, sizeBefore, "no command after a refused upload");
    assert.equal(stack.platform.state.get("compute-workload", "stage/evil"), undefined);
    await shot(m, "deploy-directory-refused");
    await m.close();
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
