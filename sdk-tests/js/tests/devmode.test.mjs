// The SDK's own local-development mode: `new Client({devMode: true})` with QSTASH_DEV_PORT
// probes GET /v2/keys on 127.0.0.1:<port> with user 1's token and, when the answer carries the
// documented user-1 keys, uses the running server instead of downloading and spawning one.
// `new Receiver({devMode: true})` verifies with the hard-coded user-1 keys.
//
// Safety net: should the probe ever fail, the SDK would try to download the official binary
// over HTTPS. This file blocks node:https so nothing leaves the machine; the test then fails.

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { syncBuiltinESMExports } from "node:module";
import { Client, Receiver, SignatureError } from "@upstash/qstash";
import { USERS, startReceiver, startServer, uniquePath, waitForState } from "./helpers.mjs";

const blocked = () => {
  throw new Error("outbound HTTPS is blocked in the dev-mode test");
};
https.get = blocked;
https.request = blocked;
syncBuiltinESMExports();

let server;
let rx;

before(async () => {
  server = await startServer();
  rx = await startReceiver();
  process.env.QSTASH_DEV_PORT = new URL(server.url).port;
});

after(async () => {
  delete process.env.QSTASH_DEV_PORT;
  await rx?.close();
  await server?.stop();
});

afterEach(() => rx.assertAllVerified());

describe("SDK dev mode", () => {
  test("the health probe accepts the server: GET /v2/keys with user 1's token returns the hard-coded keys", async () => {
    const res = await server.raw("GET", "/v2/keys", { token: USERS.default.token });
    assert.equal(res.status, 200);
    assert.equal(res.json.current, "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r");
    assert.equal(res.json.next, "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs");
  });

  test("Client({devMode: true}) publishes through the running server and Receiver({devMode: true}) verifies", async () => {
    const client = new Client({ devMode: true, enableTelemetry: false });
    const path = uniquePath("devmode");
    const { messageId } = await client.publishJSON({ url: rx.url + path, body: { dev: true } });
    assert.match(messageId, /^msg_/);
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, JSON.stringify({ dev: true }));

    const devReceiver = new Receiver({ devMode: true });
    assert.equal(await devReceiver.verify({ signature: got.signature, body: got.body, url: got.url }), true);
    await assert.rejects(devReceiver.verify({ signature: got.signature, body: "{}", url: got.url }), SignatureError);

    // The message really went through this server, as user 1.
    const direct = server.client(USERS.default);
    await waitForState(direct, messageId, "DELIVERED");
    const logs = await client.logs({ filter: { messageId } });
    assert.equal(logs.logs[0].state, "DELIVERED");
  });

  test("Receiver({devMode: true}) rejects deliveries signed for another user", async () => {
    const other = await startReceiver(USERS.testUser2);
    try {
      const path = uniquePath("devmode-other");
      await server.client(USERS.testUser2).publish({ url: other.url + path, body: "x" });
      const [got] = await other.waitFor(path, 1);
      other.assertAllVerified();
      await assert.rejects(
        new Receiver({ devMode: true }).verify({ signature: got.signature, body: "x", url: got.url }),
        SignatureError,
      );
    } finally {
      await other.close();
    }
  });
});
