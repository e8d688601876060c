// Signing keys and authentication. @upstash/qstash 2.12.0 has no keys API on Client, so the
// keys routes are called as the SDK's dev-server health probe calls them (GET /v2/keys with a
// Bearer token) and the effect of a rotation is checked through the SDK's Receiver.
// Rotation is done as testUser3 (user 4) so user 1 keeps the keys the SDK's dev mode expects.

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { QstashError, Receiver, SignatureError } from "@upstash/qstash";
import { USERS, startReceiver, startServer, uniquePath } from "./helpers.mjs";

let server;
let rx;

before(async () => {
  server = await startServer();
  rx = await startReceiver();
});

after(async () => {
  await rx?.close();
  await server?.stop();
});

afterEach(() => rx.assertAllVerified());

const isStatus = (status) => (error) => {
  assert.ok(error instanceof QstashError, `expected a QstashError, got ${error}`);
  assert.equal(error.status, status, `expected status ${status}: ${error.message}`);
  return true;
};

describe("signing keys", () => {
  test("GET /v2/keys returns each user's documented keys (the SDK dev-mode probe relies on user 1's)", async () => {
    for (const user of Object.values(USERS)) {
      const res = await server.raw("GET", "/v2/keys", { token: user.token });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { current: user.currentSigningKey, next: user.nextSigningKey });
    }
  });

  test("deliveries of each user are signed with that user's current key", async () => {
    for (const [name, user] of Object.entries(USERS)) {
      // This receiver verifies with the publishing user's own keys.
      const own = await startReceiver(user);
      try {
        const path = uniquePath(`user-${name}`);
        await server.client(user).publish({ url: own.url + path, body: name });
        const [got] = await own.waitFor(path, 1);
        own.assertAllVerified();
        const currentOnly = new Receiver({
          currentSigningKey: user.currentSigningKey,
          nextSigningKey: user.currentSigningKey,
          devMode: false,
        });
        assert.equal(await currentOnly.verify({ signature: got.signature, body: name, url: got.url }), true);
        for (const [otherName, otherUser] of Object.entries(USERS)) {
          if (otherName === name) continue;
          const foreign = new Receiver({ ...otherUser, devMode: false });
          await assert.rejects(foreign.verify({ signature: got.signature, body: name, url: got.url }), SignatureError);
        }
      } finally {
        await own.close();
      }
    }
  });

  test("rotate: next becomes current, a fresh next is generated, deliveries follow", async () => {
    const user = USERS.testUser3;
    const before = await server.raw("GET", "/v2/keys", { token: user.token });
    assert.deepEqual(before.json, { current: user.currentSigningKey, next: user.nextSigningKey });

    const rotated = await server.raw("POST", "/v2/keys/rotate", { token: user.token });
    assert.equal(rotated.status, 200);
    assert.equal(rotated.json.current, user.nextSigningKey);
    assert.match(rotated.json.next, /^sig_[1-9A-HJ-NP-Za-km-z]{28}$/);
    assert.notEqual(rotated.json.next, user.currentSigningKey);
    assert.notEqual(rotated.json.next, user.nextSigningKey);
    const after = await server.raw("GET", "/v2/keys", { token: user.token });
    assert.deepEqual(after.json, rotated.json);

    // Other users are untouched (user 1's keys must stay what the JS dev mode expects).
    const defaults = await server.raw("GET", "/v2/keys");
    assert.deepEqual(defaults.json, {
      current: USERS.default.currentSigningKey,
      next: USERS.default.nextSigningKey,
    });

    const receiver = await startReceiver({
      currentSigningKey: rotated.json.current,
      nextSigningKey: rotated.json.next,
    });
    try {
      const path = uniquePath("rotated");
      await server.client(user).publish({ url: receiver.url + path, body: "after rotation" });
      const [got] = await receiver.waitFor(path, 1);
      assert.equal(got.verifyError, undefined);
      const sig = { signature: got.signature, body: "after rotation", url: got.url };

      // A receiver still configured with the old pair accepts it through its next key...
      const oldPair = new Receiver({
        currentSigningKey: user.currentSigningKey,
        nextSigningKey: user.nextSigningKey,
        devMode: false,
      });
      assert.equal(await oldPair.verify(sig), true);
      // ...but the retired current key alone no longer verifies anything.
      const retired = new Receiver({
        currentSigningKey: user.currentSigningKey,
        nextSigningKey: user.currentSigningKey,
        devMode: false,
      });
      await assert.rejects(retired.verify(sig), SignatureError);
      receiver.assertAllVerified();
    } finally {
      await receiver.close();
    }
  });
});

describe("authentication", () => {
  test("a wrong token is rejected with 401 on publish, messages, logs and dlq", async () => {
    const bad = server.client({ token: "eyJVc2VySUQiOiJub2JvZHkiLCJQYXNzd29yZCI6Im5vcGUifQ==" });
    const path = uniquePath("unauthorized");
    await assert.rejects(bad.publish({ url: rx.url + path, body: "x" }), isStatus(401));
    await assert.rejects(bad.publishJSON({ url: rx.url + path, body: { a: 1 } }), isStatus(401));
    await assert.rejects(bad.messages.get("msg_x"), isStatus(401));
    await assert.rejects(bad.messages.cancel("msg_x"), isStatus(401));
    await assert.rejects(bad.messages.cancel({ all: true }), isStatus(401));
    await assert.rejects(bad.logs(), isStatus(401));
    await assert.rejects(bad.dlq.listMessages(), isStatus(401));
    await assert.rejects(bad.dlq.delete("1-0"), isStatus(401));
    await rx.assertQuiet(path, 0, 300);
  });

  test("a valid user's password with another user's id is rejected (the token is compared exactly)", async () => {
    const tampered = Buffer.from(JSON.stringify({ UserID: "defaultUser", Password: "testPassword" })).toString("base64");
    const res = await server.raw("GET", "/v2/keys", { token: tampered });
    assert.equal(res.status, 401);
    const c = server.client({ token: tampered });
    await assert.rejects(c.logs(), isStatus(401));
  });

  test("a missing token is rejected with 401 and an {error} body", async () => {
    const res = await fetch(`${server.url}/v2/messages/msg_x`);
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(typeof body.error, "string");
  });

  test("the token can be passed as ?qstash_token=", async () => {
    const res = await fetch(`${server.url}/v2/keys?qstash_token=${encodeURIComponent(USERS.default.token)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      current: USERS.default.currentSigningKey,
      next: USERS.default.nextSigningKey,
    });
  });
});
