/** The network gates (2, 7, 8, 14 for `net.*`): the lawful case passes, each hostile one is denied with a reason. */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { evaluateGates } from "../../src/core/policy/gates.ts";
import { NET_BODY_SCHEMAS } from "../../src/core/policy/net-schemas.ts";
import { put, type MemoryState } from "../../src/core/pipeline/state.ts";
import { ADMIN, OTHER, OWNER, baseState, cmd, ctxFor } from "./fixtures.ts";

function withNet(): MemoryState {
  const s = baseState();
  const workload = (imvu: string, name: string) =>
    put("compute-workload", `${imvu}/${name}`, {
      imvu, name, source: { kind: "image", ref: "localhost/x" }, port: 8080, state: "running", jurisdiction: "DE", deployedIndex: "9",
    });
  s.apply([
    put("domain", "stage.nexus.test", { domain: "stage.nexus.test", imvu: "stage", kind: "base", boundIndex: "5" }),
    put("domain", "other.nexus.test", { domain: "other.nexus.test", imvu: "other", kind: "base", boundIndex: "6" }),
    workload("stage", "web"),
    workload("other", "web"),
  ]);
  return s;
}

const route = (over: Record<string, unknown> = {}) => ({
  route: "site", host: "stage.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 8080 }, ...over,
});

function failing(s: MemoryState, c: ReturnType<typeof cmd>): number[] {
  return evaluateGates(ctxFor(s, c)).filter((v) => !v.pass).map((v) => v.gate);
}

describe("net.route.add", () => {
  test("the owner routes a host of its own domain to its own workload", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route(), "stage")), []);
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ host: "www.stage.nexus.test", pathPrefix: "/api" }), "stage")), []);
  });
  test("a host in another IMVU's domain is denied by gate 8", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ host: "other.nexus.test" }), "stage")), [8]);
  });
  test("a host in no bound domain is denied by gate 8", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ host: "example.org" }), "stage")), [8]);
  });
  test("an upstream that is another IMVU's workload (or none) is denied by gate 2", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ upstream: { workload: "api", port: 80 } }), "stage")), [2]);
  });
  test("the same host and path routed by another route is denied by gate 8", () => {
    const s = withNet();
    s.apply([put("net-route", "stage/site", { imvu: "stage", route: "site", host: "stage.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 8080 }, jurisdiction: "DE", index: "10" })]);
    assert.deepEqual(failing(s, cmd("net.route.add", OWNER, route({ route: "dup" }), "stage")), [8]);
    assert.deepEqual(failing(s, cmd("net.route.add", OWNER, route(), "stage")), [], "re-adding the same route id replaces it");
  });
  test("a restricted route needs its regions; a public one takes none", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ kind: "restricted" }), "stage")), [8]);
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ kind: "restricted", allowRegions: ["DE", "FR"] }), "stage")), []);
    assert.deepEqual(failing(withNet(), cmd("net.route.add", OWNER, route({ allowRegions: ["DE"] }), "stage")), [8]);
  });
  test("routes beyond the envelope are denied by gate 7", () => {
    const s = withNet();
    const imvu = s.get("imvu", "stage");
    assert.ok(imvu);
    s.apply([put("imvu", "stage", { ...imvu, envelope: { ...imvu.envelope, routes: 1 } })]);
    s.apply([put("net-route", "stage/a", { imvu: "stage", route: "a", host: "a.stage.nexus.test", pathPrefix: "/", kind: "public", upstream: { workload: "web", port: 8080 }, jurisdiction: "DE", index: "10" })]);
    assert.deepEqual(failing(s, cmd("net.route.add", OWNER, route(), "stage")), [7]);
  });
  test("an admin repointing an IMVU's route without consent is denied (gates 10, 14); another creator by gate 1", () => {
    assert.deepEqual(failing(withNet(), cmd("net.route.add", ADMIN, route(), "stage")), [10, 14]);
    assert.ok(failing(withNet(), cmd("net.route.add", OTHER, route(), "stage")).includes(1));
  });
});

describe("grants and deletes name the IMVU's own routes", () => {
  test("a grant on a route of this IMVU passes; on a missing one gate 2 denies", () => {
    const s = withNet();
    s.apply([put("net-route", "stage/site", { imvu: "stage", route: "site", host: "stage.nexus.test", pathPrefix: "/", kind: "private", upstream: { workload: "web", port: 8080 }, jurisdiction: "DE", index: "10" })]);
    assert.deepEqual(failing(s, cmd("net.grant.add", OWNER, { route: "site", identity: OTHER }, "stage")), []);
    assert.deepEqual(failing(s, cmd("net.grant.add", OWNER, { route: "nope", identity: OTHER }, "stage")), [2]);
    assert.deepEqual(failing(s, cmd("net.grant.revoke", OWNER, { route: "site", identity: OTHER }, "stage")), [2], "no grant to revoke");
    assert.deepEqual(failing(s, cmd("net.route.delete", OWNER, { route: "site" }, "stage")), []);
  });
});

describe("schemas refuse hostile paths and hosts before the gates", () => {
  const bad = [
    { pathPrefix: "/a/../b" }, { pathPrefix: "/a%2Fb" }, { pathPrefix: "//a" }, { pathPrefix: "/a/" }, { pathPrefix: "a" },
    { host: "Stage.nexus.test" }, { host: "stage.nexus.test." }, { host: "stage.nexus.test:8080" }, { host: "*.nexus.test" },
  ];
  for (const b of bad) {
    test(`rejects ${JSON.stringify(b)}`, () => {
      assert.equal(NET_BODY_SCHEMAS["net.route.add"].safeParse(route(b)).success, false);
    });
  }
});
