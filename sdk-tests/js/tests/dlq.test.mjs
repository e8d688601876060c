// Retries on the controllable clock, the dead letter queue and its API through the official
// SDK: dlq.listMessages, dlq.retry (bulk route), dlq.delete (single and bulk).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, isStatus, messageStates, startReceiver, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

/** Publishes to a path that always answers 500 with retries: 0: straight to the DLQ. */
async function failNow(c, receiver, path, extra = {}) {
  receiver.script(path, { status: 500, body: `boom ${path}` });
  const { messageId } = await c.publish({ url: receiver.url + path, body: `body ${path}`, retries: 0, ...extra });
  await waitForState(c, messageId, "FAILED");
  await receiver.waitFor(path, 1);
  const { messages } = await c.dlq.listMessages({ filter: { messageId } });
  assert.equal(messages.length, 1, `one DLQ entry for ${messageId}`);
  return { messageId, dlqId: messages[0].dlqId, entry: messages[0] };
}

describe("retries", () => {
  test("retries: 1 - two attempts 12 s apart on the clock, then FAILED and in the DLQ", async () => {
    const path = uniquePath("r1");
    rx.script(path, { status: 500, body: "first failure" }, { status: 503, body: "second failure" });
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "payload",
      retries: 1,
      headers: { "X-Kept": "kept" },
    });
    await rx.waitFor(path, 1);
    await waitForState(client, messageId, "RETRY");
    await server.advance("11s");
    await rx.assertQuiet(path, 1, 300);
    await server.advance("2s");
    const attempts = await rx.waitFor(path, 2);
    assert.deepEqual(
      attempts.map((a) => a.headers["upstash-retried"]),
      ["0", "1"],
    );
    assert.ok(attempts.every((a) => a.body === "payload" && a.headers["upstash-message-id"] === messageId));

    const states = await waitForState(client, messageId, "FAILED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]);

    const { messages, cursor } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(cursor, undefined);
    assert.equal(messages.length, 1);
    const entry = messages[0];
    assert.equal(typeof entry.dlqId, "string");
    assert.ok(entry.dlqId.length > 0);
    assert.equal(entry.messageId, messageId);
    assert.equal(entry.url, rx.url + path);
    assert.equal(entry.method, "POST");
    assert.equal(entry.body, "payload");
    assert.equal(entry.maxRetries, 1);
    assert.equal(entry.responseStatus, 503);
    assert.equal(entry.responseBody, "second failure");
    assert.equal(new Headers(entry.header).get("x-kept"), "kept");
    await rx.assertQuiet(path, 2, 300);
  });

  test("retries: 2 - default backoff 12 s then 2 m 28 s, nothing fires early", async () => {
    const path = uniquePath("r2");
    rx.script(path, { status: 500 }, { status: 500 }, { status: 500 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 2 });
    await waitForState(client, messageId, "RETRY");
    await server.advance("11s");
    await rx.assertQuiet(path, 1, 300);
    await server.advance("2s");
    await rx.waitFor(path, 2);
    await waitForState(client, messageId, "RETRY", { times: 2 });
    await server.advance("140s");
    await rx.assertQuiet(path, 2, 300);
    await server.advance("10s");
    const attempts = await rx.waitFor(path, 3);
    assert.deepEqual(
      attempts.map((a) => a.headers["upstash-retried"]),
      ["0", "1", "2"],
    );
    await waitForState(client, messageId, "FAILED");
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].maxRetries, 2);
    assert.equal(messages[0].responseStatus, 500);
  });

  test("a failure followed by a success is DELIVERED and never reaches the DLQ", async () => {
    const path = uniquePath("recover");
    rx.script(path, { status: 500 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 3 });
    await waitForState(client, messageId, "RETRY");
    await server.advance("13s");
    await rx.waitFor(path, 2);
    const states = await waitForState(client, messageId, "DELIVERED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "DELIVERED"]);
    assert.equal((await client.dlq.listMessages({ filter: { messageId } })).messages.length, 0);
  });

  test("a retryDelay expression replaces the default backoff", async () => {
    const path = uniquePath("retry-delay");
    rx.script(path, { status: 500 }, { status: 500 });
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "x",
      retries: 2,
      retryDelay: "1000 * (1 + retried) * 60",
    });
    // First retry after 60 s (retried = 0), second after 120 s.
    await waitForState(client, messageId, "RETRY");
    await server.advance("50s");
    await rx.assertQuiet(path, 1, 300);
    await server.advance("15s");
    await rx.waitFor(path, 2);
    await waitForState(client, messageId, "RETRY", { times: 2 });
    await server.advance("100s");
    await rx.assertQuiet(path, 2, 300);
    await server.advance("30s");
    await rx.waitFor(path, 3);
    await waitForState(client, messageId, "DELIVERED");
  });

  test("489 with Upstash-NonRetryable-Error fails at once despite retries left", async () => {
    const path = uniquePath("nonretryable");
    rx.script(path, { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: "do not retry" });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 3 });
    const states = await waitForState(client, messageId, "FAILED");
    assert.deepEqual(states, ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    await server.advance("1h");
    await rx.assertQuiet(path, 1, 300);
    const { messages } = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].responseStatus, 489);
    assert.equal(messages[0].responseBody, "do not retry");
  });

  test("489 without the header is an ordinary, retried failure", async () => {
    const path = uniquePath("489-plain");
    rx.script(path, { status: 489 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 1 });
    await waitForState(client, messageId, "RETRY");
    await server.advance("13s");
    await rx.waitFor(path, 2);
    await waitForState(client, messageId, "DELIVERED");
  });
});

describe("dlq api", () => {
  test("listMessages filters by dlqIds and by url, and pages with count/cursor", async () => {
    const path = uniquePath("dlq-list");
    const a = await failNow(client, rx, path);
    const b = await failNow(client, rx, path);
    const c = await failNow(client, rx, path);

    const byIds = await client.dlq.listMessages({ dlqIds: [a.dlqId, c.dlqId] });
    assert.deepEqual(byIds.messages.map((m) => m.dlqId).sort(), [a.dlqId, c.dlqId].sort());

    const url = rx.url + path;
    const all = await client.dlq.listMessages({ filter: { url } });
    assert.deepEqual(
      all.messages.map((m) => m.messageId).sort(),
      [a.messageId, b.messageId, c.messageId].sort(),
    );
    assert.equal(all.cursor, undefined);

    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const page = await client.dlq.listMessages({ filter: { url }, count: 2, cursor });
      pages += 1;
      assert.ok(pages <= 10, "pagination must end");
      assert.ok(page.messages.length <= 2);
      seen.push(...page.messages.map((m) => m.dlqId));
      cursor = page.cursor;
    } while (cursor !== undefined);
    assert.equal(pages, 2);
    assert.deepEqual([...seen].sort(), [a.dlqId, b.dlqId, c.dlqId].sort());
  });

  test("dlq.retry(id) republishes as a new message, delivers it and removes the entry", async () => {
    const path = uniquePath("dlq-retry");
    const failed = await failNow(client, rx, path, { headers: { "X-Original": "yes" } });
    const result = await client.dlq.retry(failed.dlqId);
    assert.equal(result.responses.length, 1);
    const newId = result.responses[0].messageId;
    assert.match(newId, /^msg_/);
    assert.notEqual(newId, failed.messageId);
    assert.equal(result.cursor, undefined);

    const attempts = await rx.waitFor(path, 2);
    const redelivery = attempts[1];
    assert.equal(redelivery.body, `body ${path}`);
    assert.equal(redelivery.headers["x-original"], "yes");
    assert.equal(redelivery.headers["upstash-message-id"], newId);
    assert.equal(redelivery.verifyError, undefined);
    await waitForState(client, newId, "DELIVERED");

    assert.equal((await client.dlq.listMessages({ dlqIds: [failed.dlqId] })).messages.length, 0);
    await assert.rejects(client.dlq.retry(failed.dlqId), isStatus(404));
  });

  test("dlq.retry of several ids returns one response per entry", async () => {
    const path = uniquePath("dlq-retry-many");
    const a = await failNow(client, rx, path);
    const b = await failNow(client, rx, path);
    const result = await client.dlq.retry([a.dlqId, b.dlqId]);
    assert.equal(result.responses.length, 2);
    for (const r of result.responses) assert.match(r.messageId, /^msg_/);
    await rx.waitFor(path, 4);
    for (const r of result.responses) await waitForState(client, r.messageId, "DELIVERED");
    assert.equal((await client.dlq.listMessages({ filter: { url: rx.url + path } })).messages.length, 0);
  });

  test("a message retried from the DLQ that fails again gets a new DLQ entry", async () => {
    const path = uniquePath("dlq-again");
    const failed = await failNow(client, rx, path);
    rx.script(path, { status: 500, body: "still broken" });
    const { responses } = await client.dlq.retry(failed.dlqId);
    const newId = responses[0].messageId;
    await waitForState(client, newId, "FAILED");
    const { messages } = await client.dlq.listMessages({ filter: { messageId: newId } });
    assert.equal(messages.length, 1);
    assert.notEqual(messages[0].dlqId, failed.dlqId);
    assert.equal(messages[0].responseBody, "still broken");
  });

  test("dlq.delete(id) removes one entry; deleting it again rejects with 404", async () => {
    const path = uniquePath("dlq-del");
    const keep = await failNow(client, rx, path);
    const gone = await failNow(client, rx, path);
    assert.deepEqual(await client.dlq.delete(gone.dlqId), { deleted: 1 });
    const { messages } = await client.dlq.listMessages({ filter: { url: rx.url + path } });
    assert.deepEqual(
      messages.map((m) => m.dlqId),
      [keep.dlqId],
    );
    await assert.rejects(client.dlq.delete(gone.dlqId), isStatus(404));
  });

  test("bulk delete by ids", async () => {
    const path = uniquePath("dlq-bulk-del");
    const a = await failNow(client, rx, path);
    const b = await failNow(client, rx, path);
    const c = await failNow(client, rx, path);
    const result = await client.dlq.delete([a.dlqId, b.dlqId]);
    assert.equal(result.deleted, 2);
    const left = await client.dlq.listMessages({ filter: { url: rx.url + path } });
    assert.deepEqual(
      left.messages.map((m) => m.dlqId),
      [c.dlqId],
    );
    assert.equal(await client.dlq.deleteMany({ dlqIds: [c.dlqId] }).then((r) => r.deleted), 1);
    assert.equal((await client.dlq.listMessages({ filter: { url: rx.url + path } })).messages.length, 0);
  });

  test("dlq.delete({all: true}) empties the user's DLQ only", async () => {
    const other = server.client(USERS.testUser1);
    const otherRx = await startReceiver(USERS.testUser1);
    try {
      const mine = await failNow(client, rx, uniquePath("dlq-mine"));
      const path = uniquePath("dlq-all");
      await failNow(other, otherRx, path);
      await failNow(other, otherRx, path);
      const result = await other.dlq.delete({ all: true });
      assert.equal(result.deleted, 2);
      assert.equal((await other.dlq.listMessages()).messages.length, 0);
      assert.equal((await client.dlq.listMessages({ dlqIds: [mine.dlqId] })).messages.length, 1);
      otherRx.assertAllVerified();
    } finally {
      await otherRx.close();
    }
  });

  test("dlq.delete with a misspelt filter key rejects with 400 and deletes nothing", async () => {
    const path = uniquePath("dlq-typo");
    const kept = await failNow(client, rx, path);
    await assert.rejects(client.dlq.delete({ filter: { labeel: "x" } }), isStatus(400));
    await assert.rejects(client.dlq.listMessages({ filter: { host: "127.0.0.1" } }), isStatus(400));
    assert.equal((await client.dlq.listMessages({ dlqIds: [kept.dlqId] })).messages.length, 1);
  });

  test("dlq.delete({filter, count: 1}) deletes one entry and returns a cursor for the rest", async () => {
    const path = uniquePath("dlq-count");
    await failNow(client, rx, path);
    await failNow(client, rx, path);
    const first = await client.dlq.delete({ filter: { url: rx.url + path }, count: 1 });
    assert.equal(first.deleted, 1);
    const second = await client.dlq.delete({ filter: { url: rx.url + path }, count: 1 });
    assert.equal(second.deleted, 1);
    assert.equal((await client.dlq.listMessages({ filter: { url: rx.url + path } })).messages.length, 0);
  });

  test("the failed attempts are in the logs with their response status", async () => {
    const path = uniquePath("dlq-logs");
    const failed = await failNow(client, rx, path);
    assert.deepEqual(await messageStates(client, failed.messageId), ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    const { logs } = await client.logs({ filter: { messageId: failed.messageId, state: "ERROR" } });
    assert.equal(logs.length, 1);
    assert.equal(logs[0].responseStatus, 500);
  });
});
