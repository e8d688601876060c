// Callbacks and failure callbacks through the official SDK (callback / failureCallback options,
// Upstash-Callback-* / Upstash-Failure-Callback-* configuration passed through `headers`), with
// every callback delivery verified by the SDK's Receiver like any other delivery.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fromBase64, messageStates, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

/** Values of a header map entry, looked up case-insensitively. */
function headerValues(map, name) {
  assert.ok(map && typeof map === "object", `expected a header map, got ${JSON.stringify(map)}`);
  const key = Object.keys(map).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : map[key];
}

function assertMsString(value, { min, max }, what) {
  assert.equal(typeof value, "string", `${what} must be a JSON string of ms, got ${JSON.stringify(value)}`);
  assert.match(value, /^\d+$/, what);
  const n = Number(value);
  assert.ok(n >= min && n <= max, `${what} ${n} outside [${min}, ${max}]`);
}

describe("callback", () => {
  test("a successful delivery calls the callback with the response and the source message", async () => {
    const [path, cb, fcb] = [uniquePath("src"), uniquePath("cb"), uniquePath("fcb")];
    rx.script(path, { status: 201, body: "target says hi", headers: { "X-Reply": "r1" } });
    const t0 = (await server.clock()).now;
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "source body",
      headers: { "Content-Type": "text/plain", "X-Src": "s" },
      retries: 2,
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
    });
    const t1 = (await server.clock()).now;

    const message = await client.messages.get(messageId);
    assert.equal(message.callback, rx.url + cb);
    assert.equal(message.failureCallback, rx.url + fcb);

    const [c] = await rx.waitFor(cb, 1);
    assert.equal(c.verifyError, undefined, "the callback delivery is signed for the callback URL");
    assert.equal(c.method, "POST");
    assert.notEqual(c.headers["upstash-message-id"], messageId, "the callback is a message of its own");
    assert.match(c.headers["upstash-message-id"], /^msg_/);
    assert.equal(c.headers["upstash-retried"], "0");
    const body = JSON.parse(c.body);
    assert.equal(body.status, 201);
    assert.deepEqual(headerValues(body.header, "X-Reply"), ["r1"]);
    assert.equal(fromBase64(body.body), "target says hi");
    assert.equal(body.retried ?? 0, 0);
    assert.equal(body.maxRetries, 2);
    assert.equal(body.sourceMessageId, messageId);
    assert.equal(body.url, rx.url + path);
    assert.equal(body.method, "POST");
    assert.deepEqual(headerValues(body.sourceHeader, "X-Src"), ["s"]);
    assert.deepEqual(headerValues(body.sourceHeader, "Content-Type"), ["text/plain"]);
    assert.equal(fromBase64(body.sourceBody), "source body");
    assertMsString(body.createdAt, { min: t0 - 1000, max: t1 + 1000 }, "createdAt");
    assertMsString(body.notBefore, { min: Number(body.createdAt), max: t1 + 1000 }, "notBefore");
    assert.equal(typeof body.callerIP, "string");
    assert.ok(body.callerIP.length > 0);
    assert.equal(body.dlqId, undefined);
    assert.equal(body.topicName, undefined);
    assert.equal(body.scheduleId, undefined);

    // The callback message has logs of its own; the failure callback is never called.
    // Once the server is idle nothing more can come: no sleeping to see that it stays quiet.
    const callbackId = c.headers["upstash-message-id"];
    await server.waitIdle();
    assert.equal((await messageStates(client, callbackId)).at(-1), "DELIVERED");
    assert.equal((await messageStates(client, messageId)).at(-1), "DELIVERED");
    await rx.assertQuiet(cb, 1, 0);
    await rx.assertQuiet(fcb, 0, 0);
  });

  test("callback after every attempt, failure callback once with the dlqId after retries are exhausted", async () => {
    const [path, cb, fcb] = [uniquePath("fail"), uniquePath("fail-cb"), uniquePath("fail-fcb")];
    rx.script(path, { status: 500, body: "nope 1" }, { status: 502, body: "nope 2", headers: { "X-Last": "yes" } });
    const { messageId } = await client.publish({
      url: rx.url + path,
      method: "PUT",
      body: "will fail",
      retries: 1,
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
    });
    const [first] = await rx.waitFor(cb, 1);
    await waitForState(client, messageId, "RETRY");
    await rx.assertQuiet(fcb, 0, 0);
    await server.advance("13s");
    const callbacks = await rx.waitFor(cb, 2);
    const [f] = await rx.waitFor(fcb, 1);
    await waitForState(client, messageId, "FAILED");

    const c1 = JSON.parse(first.body);
    const c2 = JSON.parse(callbacks[1].body);
    assert.equal(c1.status, 500);
    assert.equal(fromBase64(c1.body), "nope 1");
    assert.equal(c1.retried ?? 0, 0);
    assert.equal(c2.status, 502);
    assert.equal(fromBase64(c2.body), "nope 2");
    assert.equal(c2.retried, 1);
    for (const c of [c1, c2]) {
      assert.equal(c.sourceMessageId, messageId);
      assert.equal(c.maxRetries, 1);
      assert.equal(c.method, "PUT");
      assert.equal(c.dlqId, undefined);
    }

    assert.equal(f.verifyError, undefined);
    assert.equal(f.method, "POST");
    const fb = JSON.parse(f.body);
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 1);
    assert.equal(fb.dlqId, messages[0].dlqId);
    assert.equal(fb.status, 502);
    assert.deepEqual(headerValues(fb.header, "X-Last"), ["yes"]);
    assert.equal(fromBase64(fb.body), "nope 2");
    assert.equal(fb.retried, 1);
    assert.equal(fb.maxRetries, 1);
    assert.equal(fb.sourceMessageId, messageId);
    assert.equal(fb.url, rx.url + path);
    assert.equal(fb.method, "PUT");
    assert.equal(fromBase64(fb.sourceBody), "will fail");
    assert.match(fb.createdAt, /^\d+$/);
    assert.match(fb.notBefore, /^\d+$/);
    assert.equal(typeof fb.callerIP, "string");
    await rx.assertQuiet(fcb, 1, 300);
    await rx.assertQuiet(cb, 2, 0);
  });

  test("a cancelled message produces no further callbacks and no failure callback", async () => {
    const [path, cb, fcb] = [uniquePath("cancel"), uniquePath("cancel-cb"), uniquePath("cancel-fcb")];
    rx.script(path, { status: 500 }, { status: 500 }, { status: 500 });
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "x",
      retries: 2,
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
    });
    await rx.waitFor(cb, 1);
    await waitForState(client, messageId, "RETRY");
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    await waitForState(client, messageId, "CANCELED");
    await server.advance("200s");
    await rx.assertQuiet(path, 1, 400);
    await rx.assertQuiet(cb, 1, 0);
    await rx.assertQuiet(fcb, 0, 0);
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 0);
  });

  test("a non-retryable 489 goes straight to the failure callback", async () => {
    const [path, fcb] = [uniquePath("489"), uniquePath("489-fcb")];
    rx.script(path, { status: 489, body: "stop", headers: { "Upstash-NonRetryable-Error": "true" } });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 3, failureCallback: rx.url + fcb });
    const [f] = await rx.waitFor(fcb, 1);
    const fb = JSON.parse(f.body);
    assert.equal(fb.status, 489);
    assert.equal(fb.sourceMessageId, messageId);
    assert.equal(fb.maxRetries, 3);
    assert.equal(fb.retried ?? 0, 0);
    assert.equal(typeof fb.dlqId, "string");
    await rx.assertQuiet(path, 1, 200);
  });

  test("Upstash-Callback-* / Upstash-Failure-Callback-* headers configure the callback messages", async () => {
    const [path, cb, fcb] = [uniquePath("cfg"), uniquePath("cfg-cb"), uniquePath("cfg-fcb")];
    rx.script(path, { status: 500 });
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "configured",
      retries: 0,
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
      headers: {
        "Upstash-Callback-Forward-X-Cb": "cb-value",
        "Upstash-Callback-Method": "PUT",
        "Upstash-Failure-Callback-Forward-X-Fcb": "fcb-value",
        "Upstash-Failure-Callback-Method": "PATCH",
      },
      delay: 10,
    });
    const message = await client.messages.get(messageId);
    assert.deepEqual(headerValues(message.callbackHeader, "X-Cb"), ["cb-value"]);
    assert.deepEqual(headerValues(message.failureCallbackHeader, "X-Fcb"), ["fcb-value"]);
    assert.equal(headerValues(message.header, "X-Cb"), undefined, "callback headers are not message headers");

    await server.advance("11s");
    const [c] = await rx.waitFor(cb, 1);
    const [f] = await rx.waitFor(fcb, 1);
    assert.equal(c.method, "PUT");
    assert.equal(c.headers["x-cb"], "cb-value");
    assert.equal(c.headers["x-fcb"], undefined);
    assert.equal(f.method, "PATCH");
    assert.equal(f.headers["x-fcb"], "fcb-value");
    assert.equal(f.headers["x-cb"], undefined);
    const [d] = rx.on(path);
    assert.equal(d.headers["x-cb"], undefined, "callback headers are not forwarded to the destination");
    assert.equal(d.headers["x-fcb"], undefined);
  });

  test("Upstash-Callback-Retries governs a failing callback (retries 0: one attempt, then FAILED)", async () => {
    const [path, cb] = [uniquePath("cbr"), uniquePath("cbr-cb")];
    rx.script(cb, { status: 500 }, { status: 500 });
    await client.publish({
      url: rx.url + path,
      body: "x",
      retries: 3,
      callback: rx.url + cb,
      headers: { "Upstash-Callback-Retries": "0" },
    });
    const [c] = await rx.waitFor(cb, 1);
    const callbackId = c.headers["upstash-message-id"];
    const states = await waitForState(client, callbackId, "FAILED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    await rx.assertQuiet(cb, 1, 200);
  });

  test("callbacks of a URL-group message carry topicName and endpointName", async () => {
    const name = `cb-grp-${Date.now()}`;
    const [p1, cb] = [uniquePath("cbg"), uniquePath("cbg-cb")];
    await client.urlGroups.addEndpoints({ name, endpoints: [{ name: "named-ep", url: rx.url + p1 }] });
    const [res] = await client.publish({ urlGroup: name, body: "grp", callback: rx.url + cb });
    const [c] = await rx.waitFor(cb, 1);
    const body = JSON.parse(c.body);
    assert.equal(body.sourceMessageId, res.messageId);
    assert.equal(body.topicName, name);
    assert.equal(body.endpointName, "named-ep");
    assert.equal(body.url, rx.url + p1);
  });

  test("the callback message appears in the logs and the source message's states are unaffected", async () => {
    const [path, cb] = [uniquePath("cbl"), uniquePath("cbl-cb")];
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", callback: rx.url + cb });
    const [c] = await rx.waitFor(cb, 1);
    await waitForState(client, messageId, "DELIVERED");
    assert.deepEqual(await messageStates(client, messageId), ["CREATED", "ACTIVE", "DELIVERED"]);
    const callbackStates = await waitForState(client, c.headers["upstash-message-id"], "DELIVERED");
    assert.deepEqual(callbackStates, ["CREATED", "ACTIVE", "DELIVERED"]);
  });
});
