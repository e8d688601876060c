// publish / publishJSON through the official SDK, delivered to a local receiver that verifies
// every signature with the SDK's Receiver.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Receiver, SignatureError } from "@upstash/qstash";
import { USERS, isStatus, messageStates, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

describe("publish", () => {
  test("publish delivers exactly once, signed so that Receiver.verify accepts it", async () => {
    const path = uniquePath("plain");
    const res = await client.publish({
      url: rx.url + path,
      body: "hello world",
      headers: { "Content-Type": "text/plain" },
    });
    assert.match(res.messageId, /^msg_/);

    const [got] = await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 300);
    assert.equal(got.method, "POST");
    assert.equal(got.body, "hello world");
    assert.equal(got.headers["content-type"], "text/plain");
    assert.equal(got.headers["upstash-message-id"], res.messageId);
    assert.equal(got.headers["upstash-retried"], "0");
    assert.equal(got.headers["user-agent"], "Upstash-QStash");
    assert.equal(got.verifyError, undefined);

    const states = await waitForState(client, res.messageId, "DELIVERED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "DELIVERED"]);
  });

  test("Receiver.verify rejects a tampered body, a different URL and foreign keys", async () => {
    const path = uniquePath("tamper");
    await client.publish({ url: rx.url + path, body: "original body" });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.verifyError, undefined);

    const receiver = new Receiver({ ...USERS.default, devMode: false });
    assert.equal(await receiver.verify({ signature: got.signature, body: "original body", url: got.url }), true);
    await assert.rejects(
      receiver.verify({ signature: got.signature, body: "original body!", url: got.url }),
      SignatureError,
    );
    await assert.rejects(
      receiver.verify({ signature: got.signature, body: "original body", url: `${got.url}/other` }),
      SignatureError,
    );
    const foreign = new Receiver({ ...USERS.testUser1, devMode: false });
    await assert.rejects(foreign.verify({ signature: got.signature, body: "original body" }), SignatureError);
  });

  test("publishJSON serializes the body and delivers it as application/json", async () => {
    const path = uniquePath("json");
    const payload = { hello: "world", n: 42, nested: { list: [1, 2, 3] }, unicode: "çé✓" };
    const res = await client.publishJSON({ url: rx.url + path, body: payload });
    assert.match(res.messageId, /^msg_/);
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(got.body), payload);
    assert.equal(got.body, JSON.stringify(payload));
    assert.equal(got.verifyError, undefined);
    await rx.assertQuiet(path, 1, 200);
  });

  test("headers are forwarded, the method is honoured and the QStash token is not leaked", async () => {
    const path = uniquePath("fwd");
    const telemetryClient = server.client(USERS.default, { enableTelemetry: true });
    const res = await telemetryClient.publish({
      url: rx.url + path,
      method: "PUT",
      body: "put-body",
      headers: {
        "X-Custom-Header": "custom-value",
        "Upstash-Forward-Explicit": "explicit-value",
        "Content-Type": "text/x-custom",
      },
    });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.method, "PUT");
    assert.equal(got.body, "put-body");
    assert.equal(got.headers["x-custom-header"], "custom-value");
    assert.equal(got.headers["explicit"], "explicit-value");
    assert.equal(got.headers["content-type"], "text/x-custom");
    assert.equal(got.headers["authorization"], undefined, "the QStash token must not be forwarded");
    for (const name of Object.keys(got.headers)) {
      assert.ok(!name.startsWith("upstash-telemetry"), `telemetry header ${name} must not be forwarded`);
      assert.ok(!name.startsWith("upstash-forward"), `${name} must arrive without its prefix`);
    }
    assert.equal(got.headers["upstash-message-id"], res.messageId);
  });

  test("other methods: GET and DELETE arrive as such and still verify", async () => {
    for (const method of ["GET", "DELETE", "PATCH"]) {
      const path = uniquePath(method.toLowerCase());
      await client.publish({ url: rx.url + path, method });
      const [got] = await rx.waitFor(path, 1);
      assert.equal(got.method, method);
      assert.equal(got.verifyError, undefined);
    }
  });

  test("the destination's query string reaches the endpoint and is part of the signed URL", async () => {
    const path = uniquePath("query");
    const url = `${rx.url}${path}?a=1&b=two&empty=`;
    await client.publish({ url, body: "q" });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.target, `${path}?a=1&b=two&empty=`);
    assert.equal(got.url, url);
    assert.equal(got.verifyError, undefined);
  });

  test("an empty body is delivered empty and its signature verifies", async () => {
    const path = uniquePath("empty");
    await client.publish({ url: rx.url + path });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, "");
    assert.equal(got.verifyError, undefined);
  });

  test("messages.get works right after publish (finished messages stay readable briefly)", async () => {
    const path = uniquePath("get-now");
    const res = await client.publish({
      url: rx.url + path,
      body: "read me",
      headers: { "Content-Type": "text/plain", "X-Kept": "yes" },
      retries: 2,
    });
    const message = await client.messages.get(res.messageId);
    assert.equal(message.messageId, res.messageId);
    assert.equal(message.url, rx.url + path);
    assert.equal(message.method, "POST");
    assert.equal(message.body, "read me");
    assert.equal(message.maxRetries, 2);
    assert.equal(typeof message.createdAt, "number");
    assert.equal(typeof message.notBefore, "number");
    assert.deepEqual(new Headers(message.header).get("x-kept"), "yes");
    await rx.waitFor(path, 1);
  });
});

describe("delay and not-before", () => {
  test("a delayed message waits for the clock, is readable via messages.get, then is delivered", async () => {
    const path = uniquePath("delay");
    const before = (await server.clock()).now;
    const res = await client.publish({
      url: rx.url + path,
      body: "later",
      delay: 3600,
      headers: { "X-Delayed": "1" },
    });

    const message = await client.messages.get(res.messageId);
    assert.equal(message.messageId, res.messageId);
    assert.equal(message.url, rx.url + path);
    assert.equal(message.body, "later");
    assert.ok(message.createdAt >= before, `createdAt ${message.createdAt} >= clock ${before}`);
    assert.ok(
      message.notBefore >= message.createdAt + 3_600_000 - 1000,
      `notBefore ${message.notBefore} should be ~1h after createdAt ${message.createdAt}`,
    );
    assert.equal(new Headers(message.header).get("x-delayed"), "1");

    await rx.assertQuiet(path, 0, 300);
    await server.advance("3590s");
    await rx.assertQuiet(path, 0, 300);
    await server.advance("20s");
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, "later");
    assert.equal(got.headers["x-delayed"], "1");
    assert.equal(got.verifyError, undefined);
    const states = await waitForState(client, res.messageId, "DELIVERED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "DELIVERED"]);
  });

  test("retries above the plan's maximum reject with 412 (a quota error), framing headers are not forwarded", async () => {
    const path = uniquePath("quota");
    await assert.rejects(client.publish({ url: rx.url + path, body: "x", retries: 6 }), isStatus(412));
    // What a workflow route does: forward the headers of the request it received.
    const res = await client.publish({
      url: rx.url + path,
      body: "a body longer than five bytes",
      headers: { "Content-Length": "5", Host: "evil.example", Connection: "close", "X-Kept": "yes" },
    });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, "a body longer than five bytes");
    assert.equal(got.verifyError, undefined);
    assert.notEqual(got.headers.host, "evil.example");
    assert.equal(got.headers["x-kept"], "yes");
    await waitForState(client, res.messageId, "DELIVERED");
  });

  test("a string delay ('2h') is honoured", async () => {
    const path = uniquePath("delay-str");
    const res = await client.publish({ url: rx.url + path, body: "x", delay: "2h" });
    const message = await client.messages.get(res.messageId);
    assert.ok(message.notBefore - message.createdAt >= 7_200_000 - 1000);
    await server.advance("7100s");
    await rx.assertQuiet(path, 0, 300);
    await server.advance("200s");
    await rx.waitFor(path, 1);
  });

  test("notBefore (unix seconds on the server clock) delays delivery until that time", async () => {
    const path = uniquePath("notbefore");
    const now = (await server.clock()).now;
    const notBefore = Math.floor(now / 1000) + 1800;
    const res = await client.publish({ url: rx.url + path, body: "nb", notBefore });
    const message = await client.messages.get(res.messageId);
    assert.equal(message.notBefore, notBefore * 1000);
    await server.advance("1790s");
    await rx.assertQuiet(path, 0, 300);
    await server.advance("20s");
    await rx.waitFor(path, 1);
  });
});

describe("labels", () => {
  test("a label is stored on the message and usable as a logs filter", async () => {
    const path = uniquePath("label");
    const label = `lbl-${Date.now()}`;
    const res = await client.publish({ url: rx.url + path, body: "l", label, delay: 600 });
    const message = await client.messages.get(res.messageId);
    assert.equal(message.label, label);
    assert.deepEqual(message.labels, [label]);

    await server.advance("700s");
    await rx.waitFor(path, 1);
    await waitForState(client, res.messageId, "DELIVERED");
    const logs = await client.logs({ filter: { label } });
    assert.ok(logs.logs.length >= 3, `expected >= 3 entries for label ${label}, got ${logs.logs.length}`);
    for (const entry of logs.logs) {
      assert.equal(entry.messageId, res.messageId);
      assert.equal(entry.label, label);
    }
    const none = await client.logs({ filter: { label: `${label}-other` } });
    assert.equal(none.logs.length, 0);
  });

  test("several labels: label is the first one, labels holds all", async () => {
    const path = uniquePath("labels");
    const res = await client.publish({ url: rx.url + path, body: "l", label: ["first", "second"], delay: 600 });
    const message = await client.messages.get(res.messageId);
    assert.equal(message.label, "first");
    assert.deepEqual(message.labels, ["first", "second"]);
    await client.messages.cancel(res.messageId);
  });
});

describe("states", () => {
  test("logs of a delivered message are CREATED, ACTIVE, DELIVERED with one DELIVERED entry", async () => {
    const path = uniquePath("states");
    const res = await client.publish({ url: rx.url + path, body: "s" });
    await rx.waitFor(path, 1);
    await waitForState(client, res.messageId, "DELIVERED");
    // Give a duplicate delivery a chance to show up before counting.
    await rx.assertQuiet(path, 1, 300);
    assert.deepEqual(await messageStates(client, res.messageId), ["CREATED", "ACTIVE", "DELIVERED"]);
  });
});
