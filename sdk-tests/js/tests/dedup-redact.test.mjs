// Deduplication (deduplicationId, contentBasedDeduplication) and redaction (the `redact` option)
// through the official SDK, with deliveries verified by the SDK's Receiver.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fromBase64, messageLogs, messageStates, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

const unique = (tag) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;

function headerValues(map, name) {
  const key = Object.keys(map ?? {}).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : map[key];
}

const isRedacted = (value) => typeof value === "string" && value.startsWith("REDACTED");

describe("deduplication", () => {
  test("deduplicationId: the second publish returns the same messageId, deduplicated, one delivery", async () => {
    const path = uniquePath("dedup-id");
    const deduplicationId = unique("id");
    const first = await client.publish({ url: rx.url + path, body: "first", deduplicationId });
    assert.ok(!first.deduplicated, "the first publish is not a duplicate");
    const second = await client.publish({ url: rx.url + path, body: "second", deduplicationId });
    assert.equal(second.messageId, first.messageId);
    assert.equal(second.deduplicated, true);
    // The id alone decides, not the destination.
    const elsewhere = await client.publishJSON({ url: `${rx.url}${path}-other`, body: { x: 1 }, deduplicationId });
    assert.equal(elsewhere.messageId, first.messageId);
    assert.equal(elsewhere.deduplicated, true);

    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, "first");
    await rx.assertQuiet(path, 1, 300);
    await rx.assertQuiet(`${path}-other`, 0, 0);
    await waitForState(client, first.messageId, "DELIVERED");
    assert.deepEqual(await messageStates(client, first.messageId), ["CREATED", "ACTIVE", "DELIVERED"]);
  });

  test("contentBasedDeduplication: same URL, body and headers dedupe; any difference does not", async () => {
    const path = uniquePath("dedup-content");
    const body = unique("content");
    const base = { url: rx.url + path, body, headers: { "X-H": "1" }, contentBasedDeduplication: true, delay: 60 };
    const a = await client.publish(base);
    const b = await client.publish(base);
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.deduplicated, true);

    const others = [
      await client.publish({ ...base, body: `${body}!` }),
      await client.publish({ ...base, headers: { "X-H": "2" } }),
      await client.publish({ ...base, url: `${rx.url}${path}?q=1` }),
      await client.publish({ ...base, headers: { "X-H": "1", "Content-Type": "text/plain" } }),
    ];
    const ids = new Set([a.messageId, ...others.map((o) => o.messageId)]);
    assert.equal(ids.size, 5, "body, forwarded header, URL and content type all count");
    for (const o of others) assert.ok(!o.deduplicated);

    await server.advance("61s");
    await rx.waitFor(path, 5);
    await rx.assertQuiet(path, 5, 300);
  });

  test("publishJSON with contentBasedDeduplication: equal JSON bodies are duplicates", async () => {
    const path = uniquePath("dedup-json");
    const payload = { order: unique("o"), items: [1, 2] };
    const a = await client.publishJSON({ url: rx.url + path, body: payload, contentBasedDeduplication: true });
    const b = await client.publishJSON({ url: rx.url + path, body: payload, contentBasedDeduplication: true });
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.deduplicated, true);
    await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 300);
  });

  test("queue.enqueue deduplicates too", async () => {
    const path = uniquePath("dedup-queue");
    const queue = client.queue({ queueName: unique("dq") });
    const deduplicationId = unique("qid");
    const a = await queue.enqueue({ url: rx.url + path, body: "q", deduplicationId });
    const b = await queue.enqueue({ url: rx.url + path, body: "q", deduplicationId });
    assert.equal(b.messageId, a.messageId);
    assert.equal(b.deduplicated, true);
    await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 300);
  });

  test("the deduplication window is 10 minutes", async () => {
    const path = uniquePath("dedup-window");
    const deduplicationId = unique("win");
    const a = await client.publish({ url: rx.url + path, body: "1", deduplicationId });
    await rx.waitFor(path, 1);
    await server.advance("9m");
    const b = await client.publish({ url: rx.url + path, body: "2", deduplicationId });
    assert.equal(b.messageId, a.messageId, "still inside the window after 9 minutes");
    assert.equal(b.deduplicated, true);
    await server.advance("61s");
    const c = await client.publish({ url: rx.url + path, body: "3", deduplicationId });
    assert.notEqual(c.messageId, a.messageId, "a new message after 10 minutes");
    assert.ok(!c.deduplicated);
    const got = await rx.waitFor(path, 2);
    assert.deepEqual(
      got.map((d) => d.body),
      ["1", "3"],
    );
  });
});

describe("redaction", () => {
  test("redact body + one header: messages.get and logs show REDACTED, the delivery the originals", async () => {
    const path = uniquePath("redact");
    const secretBody = unique("secret-body");
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: secretBody,
      headers: { Authorization: "Bearer s3cr3t-token", "X-Visible": "visible-value" },
      redact: { body: true, header: ["Authorization"] },
      delay: 60,
    });

    const message = await client.messages.get(messageId);
    assert.ok(isRedacted(message.body), `body shown as ${message.body}`);
    assert.ok(!message.body.includes(secretBody));
    const auth = headerValues(message.header, "Authorization");
    assert.equal(auth.length, 1);
    assert.ok(isRedacted(auth[0]), `Authorization shown as ${auth}`);
    assert.ok(!auth[0].includes("s3cr3t"));
    assert.deepEqual(headerValues(message.header, "X-Visible"), ["visible-value"]);

    await server.advance("61s");
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.body, secretBody);
    assert.equal(got.headers["authorization"], "Bearer s3cr3t-token");
    assert.equal(got.headers["x-visible"], "visible-value");

    await waitForState(client, messageId, "DELIVERED");
    const entries = await messageLogs(client, messageId);
    assert.equal(entries.length, 3);
    for (const entry of entries) {
      const shown = entry.body === undefined ? "" : fromBase64(entry.body);
      assert.ok(!shown.includes(secretBody) && !String(entry.body).includes(secretBody), `${entry.state} log body leaks`);
      assert.ok(isRedacted(shown), `${entry.state} log body shown as ${shown}`);
      const logAuth = headerValues(entry.header, "Authorization");
      assert.ok(logAuth && isRedacted(logAuth[0]), `${entry.state} log Authorization ${logAuth}`);
      assert.deepEqual(headerValues(entry.header, "X-Visible"), ["visible-value"]);
      assert.ok(!JSON.stringify(entry).includes("s3cr3t"), `${entry.state} log entry leaks the token`);
    }
  });

  test("redact header: true hides every header value but leaves the body", async () => {
    const path = uniquePath("redact-all-headers");
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "plain body",
      headers: { "X-One": "one-secret", "X-Two": "two-secret" },
      redact: { header: true },
      delay: 30,
    });
    const message = await client.messages.get(messageId);
    assert.equal(message.body, "plain body");
    for (const name of ["X-One", "X-Two"]) {
      const values = headerValues(message.header, name);
      assert.ok(values && isRedacted(values[0]), `${name} shown as ${values}`);
    }
    assert.ok(!JSON.stringify(message).includes("-secret"));
    await server.advance("31s");
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.headers["x-one"], "one-secret");
    assert.equal(got.headers["x-two"], "two-secret");
  });

  test("redacted values stay hidden in the DLQ, and a DLQ retry delivers the originals", async () => {
    const path = uniquePath("redact-dlq");
    const secretBody = unique("dlq-secret");
    rx.script(path, { status: 500 });
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: secretBody,
      headers: { "X-Token": "tok-secret" },
      retries: 0,
      redact: { body: true, header: ["X-Token"] },
    });
    await waitForState(client, messageId, "FAILED");
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 1);
    const entry = messages[0];
    assert.ok(isRedacted(entry.body), `DLQ body shown as ${entry.body}`);
    assert.ok(!JSON.stringify(entry).includes(secretBody));
    assert.ok(!JSON.stringify(entry).includes("tok-secret"));
    const token = headerValues(entry.header, "X-Token");
    assert.ok(token && isRedacted(token[0]));

    const { responses } = await client.dlq.retry(entry.dlqId);
    assert.equal(responses.length, 1);
    const attempts = await rx.waitFor(path, 2);
    assert.equal(attempts[1].body, secretBody);
    assert.equal(attempts[1].headers["x-token"], "tok-secret");
    assert.equal(attempts[1].headers["upstash-message-id"], responses[0].messageId);
  });

  test("redaction applies to group, batch and queue messages; header names match case-insensitively", async () => {
    const name = unique("rgrp");
    const [g1, g2] = [uniquePath("rg1"), uniquePath("rg2")];
    await client.urlGroups.addEndpoints({ name, endpoints: [{ url: rx.url + g1 }, { url: rx.url + g2 }] });
    const secret = unique("many-secret");
    const group = await client.publish({ urlGroup: name, body: secret, redact: { body: true }, delay: 30 });
    const [batched] = await client.batch([
      { url: rx.url + uniquePath("rb"), body: secret, redact: { body: true }, delay: 30 },
    ]);
    const queued = await client
      .queue({ queueName: unique("rq") })
      .enqueue({ url: rx.url + uniquePath("rq"), body: secret, redact: { body: true }, delay: 30 });
    for (const { messageId } of [...group, batched, queued]) {
      const m = await client.messages.get(messageId);
      assert.ok(isRedacted(m.body), `${messageId}: ${m.body}`);
      assert.ok(!JSON.stringify(m).includes(secret));
    }
    const { messageId } = await client.publish({
      url: rx.url + uniquePath("rci"),
      body: "b",
      headers: { "X-Token": "tok-ci" },
      redact: { header: ["x-token"] },
      delay: 30,
    });
    const [token] = headerValues((await client.messages.get(messageId)).header, "X-Token");
    assert.ok(isRedacted(token), `X-Token shown as ${token}`);
    await server.advance("31s");
    const [d] = await rx.waitFor(g1, 1);
    assert.equal(d.body, secret);
  });

  test("publishJSON with redact body hides the JSON payload", async () => {
    const path = uniquePath("redact-json");
    const { messageId } = await client.publishJSON({
      url: rx.url + path,
      body: { card: "4111-1111-1111-1111" },
      redact: { body: true },
      delay: 30,
    });
    const message = await client.messages.get(messageId);
    assert.ok(isRedacted(message.body));
    assert.ok(!JSON.stringify(message).includes("4111"));
    assert.deepEqual(headerValues(message.header, "Content-Type"), ["application/json"]);
    await server.advance("31s");
    const [got] = await rx.waitFor(path, 1);
    assert.deepEqual(JSON.parse(got.body), { card: "4111-1111-1111-1111" });
  });
});
