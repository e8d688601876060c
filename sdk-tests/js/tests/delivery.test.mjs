// Delivery details a user relies on: exact URLs (encoding, trailing slash, localhost),
// timeouts, unreachable endpoints, Retry-After, cancelling a message waiting for its retry,
// concurrent publishes, input validation (400) and the short retention of finished messages.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import { isStatus, messageStates, startReceiver, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

describe("destination URLs", () => {
  test("percent-encoded path and query are delivered and signed byte for byte", async () => {
    const path = uniquePath("enc");
    const url = `${rx.url}${path}/a%20b/c%2Fd?q=a%2Fb&x=%C3%A9&y=1+2`;
    await client.publish({ url, body: "enc" });
    const [got] = await rx.waitFor(path + "/a%20b/c%2Fd", 1);
    assert.equal(got.target, `${path}/a%20b/c%2Fd?q=a%2Fb&x=%C3%A9&y=1+2`);
    assert.equal(got.url, url);
    assert.equal(got.verifyError, undefined);
  });

  test("a trailing slash is kept", async () => {
    const path = uniquePath("slash");
    await client.publish({ url: `${rx.url}${path}/`, body: "s" });
    const [got] = await rx.waitFor(`${path}/`, 1);
    assert.equal(got.url, `${rx.url}${path}/`);
    assert.equal(got.verifyError, undefined);
  });

  test("localhost destinations are accepted and signed with the URL as given", async () => {
    const local = await startReceiver({ host: "localhost" });
    try {
      const path = uniquePath("localhost");
      const url = `${local.url}${path}`;
      assert.match(url, /^http:\/\/localhost:\d+\//);
      const { messageId } = await client.publish({ url, body: "l" });
      const [got] = await local.waitFor(path, 1);
      assert.equal(got.url, url);
      local.assertAllVerified();
      assert.equal((await client.messages.get(messageId)).url, url);
    } finally {
      await local.close();
    }
  });

  test("headers differing only in case are merged by the SDK and delivered as one value", async () => {
    const path = uniquePath("case");
    await client.publish({
      url: rx.url + path,
      body: "c",
      headers: { "TEST-CASE": "value-uppercase", "test-case": "value-lowercase" },
    });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.headers["test-case"], "value-uppercase, value-lowercase");
  });

  test("a 1 MB body arrives intact and verifies", async () => {
    const path = uniquePath("big");
    const body = "x".repeat(1024 * 1024 - 10) + "0123456789";
    await client.publish({ url: rx.url + path, body });
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body.length, body.length);
    assert.equal(got.body, body);
    assert.equal(got.verifyError, undefined);
  });
});

describe("bodies and metadata", () => {
  test("a non-UTF-8 body is delivered byte for byte, shown as bodyBase64, and signed over the raw bytes", async () => {
    const raw = await startReceiver();
    try {
      const path = uniquePath("binary");
      const bytes = Uint8Array.from([0xff, 0xfe, 0x00, 0x80, 0x41]);
      const { messageId } = await client.publish({
        url: raw.url + path,
        body: bytes,
        headers: { "Content-Type": "application/octet-stream" },
        delay: 60,
      });
      const message = await client.messages.get(messageId);
      assert.equal(message.bodyBase64, Buffer.from(bytes).toString("base64"));
      assert.equal(message.body, undefined);
      await server.advance("70s");
      const [got] = await raw.waitFor(path, 1);
      assert.deepEqual([...got.rawBody], [...bytes]);
      // Receiver.verify takes a string body, so check the body claim directly.
      const claims = JSON.parse(Buffer.from(got.signature.split(".")[1], "base64url").toString());
      const digest = createHash("sha256").update(bytes).digest("base64url");
      assert.equal(claims.body.replace(/=+$/, ""), digest);
      assert.equal(claims.sub, got.url);
      assert.equal(claims.iss, "Upstash");
    } finally {
      await raw.close();
    }
  });

  test("the publisher's IP is reported as callerIP and sent as Upstash-Caller-Ip", async () => {
    const path = uniquePath("caller-ip");
    const { messageId } = await client.publish({ url: rx.url + path, body: "ip", delay: 30 });
    const message = await client.messages.get(messageId);
    assert.equal(message.callerIP ?? message.callerIp, "127.0.0.1");
    await server.advance("40s");
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.headers["upstash-caller-ip"], "127.0.0.1");
  });

  test("log entries carry the body and, on ERROR, the response body, both base64", async () => {
    const path = uniquePath("log-bodies");
    rx.script(path, { status: 500, body: "the error body" });
    const { messageId } = await client.publish({ url: rx.url + path, body: "the request body", retries: 0 });
    await waitForState(client, messageId, "FAILED");
    const { logs } = await client.logs({ filter: { messageId } });
    for (const entry of logs) {
      assert.equal(Buffer.from(entry.body, "base64").toString(), "the request body", `body of ${entry.state}`);
    }
    const error = logs.find((l) => l.state === "ERROR");
    assert.equal(error.responseStatus, 500);
    assert.equal(Buffer.from(error.responseBody, "base64").toString(), "the error body");
  });
});

describe("failure modes", () => {
  test("timeout: an endpoint slower than the timeout fails the attempt with responseStatus 0", async () => {
    const path = uniquePath("timeout");
    rx.script(path, { delayMs: 4000, status: 200 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "t", timeout: 1, retries: 0 });
    const states = await waitForState(client, messageId, "FAILED", { timeout: 8000 });
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].responseStatus, 0);
  });

  test("an unreachable endpoint is retried and ends in the DLQ with responseStatus 0", async () => {
    const closed = http.createServer();
    await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = closed.address().port;
    await new Promise((resolve) => closed.close(resolve));
    const { messageId } = await client.publish({ url: `http://127.0.0.1:${port}/nobody`, body: "u", retries: 1 });
    await waitForState(client, messageId, "RETRY");
    await server.advance("13s");
    const states = await waitForState(client, messageId, "FAILED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]);
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages[0].responseStatus, 0);
  });

  test("Retry-After on a failed answer sets the next attempt time", async () => {
    const path = uniquePath("retry-after");
    rx.script(path, { status: 503, headers: { "Retry-After": "40" } });
    const { messageId } = await client.publish({ url: rx.url + path, body: "r", retries: 2 });
    await waitForState(client, messageId, "RETRY");
    await server.advance("30s");
    await rx.assertQuiet(path, 1, 300);
    await server.advance("12s");
    await rx.waitFor(path, 2);
    await waitForState(client, messageId, "DELIVERED");
  });

  test("a message waiting for its retry is readable, IN_PROGRESS in the logs, and can be cancelled", async () => {
    const path = uniquePath("cancel-retry");
    rx.script(path, { status: 500 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "c", retries: 3 });
    await waitForState(client, messageId, "RETRY");
    const message = await client.messages.get(messageId);
    assert.equal(message.messageId, messageId);

    const inProgress = await client.logs({ filter: { messageId, state: "IN_PROGRESS" } });
    assert.deepEqual(inProgress.logs.map((l) => l.state).sort(), ["ACTIVE", "ERROR", "RETRY"]);

    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    await server.advance("1h");
    await rx.assertQuiet(path, 1, 400);
    const states = await waitForState(client, messageId, "CANCELED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "RETRY", "CANCEL_REQUESTED", "CANCELED"]);
    assert.equal((await client.dlq.listMessages({ filter: { messageId } })).messages.length, 0);
  });

  test("the default number of retries is 3", async () => {
    const path = uniquePath("default-retries");
    const { messageId } = await client.publish({ url: rx.url + path, body: "d", delay: 60 });
    assert.equal((await client.messages.get(messageId)).maxRetries, 3);
    await client.messages.cancel(messageId);
  });
});

describe("many messages", () => {
  test("20 concurrent publishes are each delivered exactly once", async () => {
    const path = uniquePath("many");
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client.publish({ url: `${rx.url}${path}?i=${i}`, body: `m${i}` })),
    );
    const ids = results.map((r) => r.messageId);
    assert.equal(new Set(ids).size, 20, "message ids are unique");
    const got = await rx.waitFor(path, 20);
    await rx.assertQuiet(path, 20, 400);
    assert.deepEqual(
      got.map((r) => r.headers["upstash-message-id"]).sort(),
      [...ids].sort(),
    );
    for (const r of got) {
      const i = new URL(r.url).searchParams.get("i");
      assert.equal(r.body, `m${i}`);
    }
  });
});

describe("parallel deliveries", () => {
  test("a slow endpoint does not serialize deliveries: 3 slow messages are all in flight at once", async () => {
    const path = uniquePath("parallel");
    rx.script(path, { delayMs: 3000 }, { delayMs: 3000 }, { delayMs: 3000 });
    const started = Date.now();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await client.publish({ url: rx.url + path, body: `${i}` })).messageId);
    const got = await rx.waitFor(path, 3, { timeout: 2800 });
    assert.ok(got[2].at - started < 2800, "all three requests arrived before the first answer");
    await server.waitIdle();
    for (const id of ids) assert.equal((await messageStates(client, id)).at(-1), "DELIVERED");
  });
});

describe("validation", () => {
  test("invalid delay, method, retries, retryDelay and destination are rejected with 400", async () => {
    const path = uniquePath("invalid");
    const url = rx.url + path;
    await assert.rejects(client.publish({ url, body: "x", delay: "soon" }), isStatus(400));
    await assert.rejects(client.publish({ url, body: "x", method: "FETCH" }), isStatus(400));
    await assert.rejects(client.publish({ url, body: "x", retries: -1 }), isStatus(400));
    await assert.rejects(client.publish({ url, body: "x", retryDelay: "pow(2," }), isStatus(400));
    await assert.rejects(client.publish({ url, body: "x", retryDelay: "unknown(retried)" }), isStatus(400));
    await assert.rejects(client.publish({ url, body: "x", timeout: "forever" }), isStatus(400));
    await assert.rejects(client.publish({ url: "http://", body: "x" }), isStatus(400));
    await rx.assertQuiet(path, 0, 300);
  });
});

describe("retention", () => {
  test("a delivered message is readable for a short while, then 404 (on the server clock)", async () => {
    const path = uniquePath("retention");
    const { messageId } = await client.publish({ url: rx.url + path, body: "r" });
    await waitForState(client, messageId, "DELIVERED");
    assert.equal((await client.messages.get(messageId)).messageId, messageId);
    await assert.rejects(client.messages.cancel(messageId), isStatus(404));
    await server.advance("11s");
    await assert.rejects(client.messages.get(messageId), isStatus(404));
    assert.deepEqual(await messageStates(client, messageId), ["CREATED", "ACTIVE", "DELIVERED"]);
  });

  test("GET /v2/logs serves the same entries under the key logs", async () => {
    const path = uniquePath("v2logs");
    const { messageId } = await client.publish({ url: rx.url + path, body: "l" });
    await waitForState(client, messageId, "DELIVERED");
    const res = await server.raw("GET", `/v2/logs?messageId=${messageId}`);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.json.logs.map((l) => l.state),
      ["DELIVERED", "ACTIVE", "CREATED"],
    );
    assert.equal(res.json.cursor, undefined);
  });
});
