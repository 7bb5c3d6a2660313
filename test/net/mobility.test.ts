/**
 * Session mobility: two gateways — this process and a child process — share only the route table
 * and the session key. A token obtained from one is accepted by the other; a WebSocket whose
 * gateway goes away reconnects through the other with the same token, without signing again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { request } from "undici";
import WebSocket from "ws";
import { ed25519FromSeed } from "../../src/core/crypto/ed25519.ts";
import { toHex } from "../../src/core/crypto/bytes.ts";
import { buildRouteTable, startGateway, type Gateway, type RouteTableInput } from "../../src/services/net/index.ts";
import { REPO_ROOT } from "../support/paths.ts";
import { newIdentity, ROOMY, signedHeaders, startUpstream, waitFor, type Upstream } from "./support.ts";

const alice = newIdentity();

describe("gateway: session mobility between two gateway processes", () => {
  let up: Upstream;
  let a: Gateway | undefined;
  let child: ChildProcess;
  let portB = 0;
  const seed = randomBytes(32);
  let input: RouteTableInput;

  before(async () => {
    up = await startUpstream("app");
    input = {
      version: 9,
      routes: [{ id: "p", imvu: "imvu-p", host: "app.nexus.test", kind: "private", grants: [alice.id], upstream: { host: "127.0.0.1", port: up.port } }],
      slices: { "imvu-p": ROOMY },
    };
    a = await startGateway({
      port: 0,
      routes: buildRouteTable(input),
      resolveKey: (id) => (id === alice.id ? alice.keys.publicKey : undefined),
      session: { signer: { keyId: "gw-2026", ...ed25519FromSeed(seed) } },
    });
    child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", join(REPO_ROOT, "test/net/gateway-child.ts")], {
      env: { ...process.env, NEXUS_NET_CHILD: JSON.stringify({ table: input, sessionSeedHex: toHex(seed), keyId: "gw-2026", identities: { [alice.id]: toHex(alice.keys.publicKey) } }) },
      stdio: ["pipe", "pipe", "inherit"],
    });
    const line = await new Promise<string>((r) => createInterface({ input: child.stdout! }).once("line", r));
    portB = (JSON.parse(line) as { port: number }).port;
  });
  after(async () => {
    await a?.close();
    child.stdin?.end();
    await new Promise((r) => child.once("exit", r));
    await up.close();
  });

  it("accepts on gateway B a token issued by gateway A (and refuses it without the key)", async () => {
    const url = `http://app.nexus.test/.nexus/session`;
    const r = await request(`http://127.0.0.1:${a!.port}/.nexus/session`, { method: "POST", headers: { host: "app.nexus.test", ...signedHeaders(alice, "POST", url) } });
    assert.equal(r.statusCode, 200);
    const { token } = (await r.body.json()) as { token: string };
    const onB = await request(`http://127.0.0.1:${portB}/data`, { headers: { host: "app.nexus.test", authorization: `Bearer ${token}` } });
    assert.equal(onB.statusCode, 200);
    assert.equal(((await onB.body.json()) as { identity: string }).identity, alice.id);

    const stranger = await startGateway({
      port: 0, routes: buildRouteTable(input), resolveKey: () => undefined, session: { signer: { keyId: "gw-2026", ...ed25519FromSeed(randomBytes(32)) } },
    });
    const onStranger = await request(`http://127.0.0.1:${stranger.port}/data`, { headers: { host: "app.nexus.test", authorization: `Bearer ${token}` } });
    assert.equal(onStranger.statusCode, 401, "a gateway without the shared key refuses the token");
    await onStranger.body.dump();
    await stranger.close();
  });

  it("moves a WebSocket from gateway A to gateway B with the same token", async () => {
    const url = `http://app.nexus.test/.nexus/session`;
    const r = await request(`http://127.0.0.1:${a!.port}/.nexus/session`, { method: "POST", headers: { host: "app.nexus.test", ...signedHeaders(alice, "POST", url) } });
    const { token } = (await r.body.json()) as { token: string };
    const open = async (port: number): Promise<{ ws: WebSocket; msgs: string[] }> => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/live`, { headers: { host: "app.nexus.test", cookie: `nexus-session=${token}` } });
      const msgs: string[] = [];
      ws.on("message", (m: Buffer) => msgs.push(m.toString()));
      await new Promise((res, rej) => (ws.once("open", res), ws.once("error", rej)));
      return { ws, msgs };
    };
    const first = await open(a!.port!);
    first.ws.send("one");
    await waitFor(() => first.msgs.length >= 2);
    assert.equal(JSON.parse(first.msgs[0]!).identity, alice.id);
    assert.equal(first.msgs[1], "app:one");
    const closed = new Promise((res) => first.ws.once("close", res));
    await a!.close();
    a = undefined;
    await closed;
    const second = await open(portB);
    second.ws.send("two");
    await waitFor(() => second.msgs.length >= 2);
    assert.equal(JSON.parse(second.msgs[0]!).identity, alice.id, "same identity, no new signature");
    assert.equal(second.msgs[1], "app:two");
    second.ws.close();
  });
});
