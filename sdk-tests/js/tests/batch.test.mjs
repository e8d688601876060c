// client.batch / client.batchJSON through the official SDK: URL items, a URL-group item (nested
// array in the result), a queue item, delays/headers/retries/labels per item, results in order.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { QstashError } from "@upstash/qstash";
import { logsWhere, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let rx2;
let client;

useServerAndReceiver((c) => ({ server, rx, rx2, client } = c), { receivers: 2 });

const unique = (tag) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;

async function group(tag) {
  const name = unique(`bgrp-${tag}`);
  const g1 = uniquePath(`${tag}-g1`);
  const g2 = uniquePath(`${tag}-g2`);
  await client.urlGroups.addEndpoints({
    name,
    endpoints: [
      { name: "ep1", url: rx.url + g1 },
      { name: "ep2", url: rx2.url + g2 },
    ],
  });
  return { name, g1, g2 };
}

describe("batch", () => {
  test("URL, URL-group, queue and delayed items: results in order, the group item nested", async () => {
    const g = await group("mixed");
    const queueName = unique("bq");
    const [p1, p3, p4] = [uniquePath("b-url"), uniquePath("b-queue"), uniquePath("b-delay")];
    const res = await client.batch([
      { url: rx.url + p1, body: "one", headers: { "Content-Type": "text/plain", "X-One": "1" } },
      { urlGroup: g.name, body: "two", headers: { "X-Two": "2" } },
      { url: rx.url + p3, body: "three", queueName },
      { url: rx.url + p4, body: "four", delay: 120, retries: 2, label: "batch-label", method: "PUT" },
    ]);

    assert.ok(Array.isArray(res));
    assert.equal(res.length, 4, JSON.stringify(res));
    assert.match(res[0].messageId, /^msg_/);
    assert.ok(Array.isArray(res[1]), `item 1 must be a nested array: ${JSON.stringify(res[1])}`);
    assert.deepEqual(
      res[1].map((r) => r.url),
      [rx.url + g.g1, rx2.url + g.g2],
    );
    for (const r of res[1]) assert.match(r.messageId, /^msg_/);
    assert.match(res[2].messageId, /^msg_/);
    assert.match(res[3].messageId, /^msg_/);
    const ids = [res[0].messageId, ...res[1].map((r) => r.messageId), res[2].messageId, res[3].messageId];
    assert.equal(new Set(ids).size, 5, "every message gets its own id");

    const [d1] = await rx.waitFor(p1, 1);
    assert.equal(d1.body, "one");
    assert.equal(d1.headers["x-one"], "1");
    assert.equal(d1.headers["content-type"], "text/plain");
    assert.equal(d1.headers["upstash-message-id"], res[0].messageId);

    const [dg1] = await rx.waitFor(g.g1, 1);
    const [dg2] = await rx2.waitFor(g.g2, 1);
    for (const [d, r] of [
      [dg1, res[1][0]],
      [dg2, res[1][1]],
    ]) {
      assert.equal(d.body, "two");
      assert.equal(d.headers["x-two"], "2");
      assert.equal(d.headers["upstash-topic-name"], g.name);
      assert.equal(d.headers["upstash-message-id"], r.messageId);
    }

    const [d3] = await rx.waitFor(p3, 1);
    assert.equal(d3.body, "three");
    assert.equal(d3.headers["upstash-message-id"], res[2].messageId);
    const queued = await logsWhere(client, { queueName });
    assert.ok(queued.length > 0, "the queue item is logged under its queue");
    for (const entry of queued) {
      assert.equal(entry.messageId, res[2].messageId);
      assert.equal(entry.queueName, queueName);
    }
    const queue = await client.queue({ queueName }).get();
    assert.equal(queue.name, queueName);

    // The delayed item waits for the clock.
    const delayed = await client.messages.get(res[3].messageId);
    assert.equal(delayed.maxRetries, 2);
    assert.equal(delayed.method, "PUT");
    assert.deepEqual(delayed.labels, ["batch-label"]);
    assert.ok(delayed.notBefore >= delayed.createdAt + 119_000, `${delayed.notBefore} vs ${delayed.createdAt}`);
    await rx.assertQuiet(p4, 0, 300);
    await server.advance("121s");
    const [d4] = await rx.waitFor(p4, 1);
    assert.equal(d4.method, "PUT");
    assert.equal(d4.body, "four");
    assert.equal(d4.headers["upstash-message-id"], res[3].messageId);
    await waitForState(client, res[3].messageId, "DELIVERED");
    await rx.assertQuiet(p1, 1, 0);
  });

  test("batchJSON serializes every body and sends application/json, also to the group and the queue", async () => {
    const g = await group("json");
    const queueName = unique("bqj");
    const [p1, p3] = [uniquePath("bj-url"), uniquePath("bj-queue")];
    const res = await client.batchJSON([
      { url: rx.url + p1, body: { item: 1, text: "çé" } },
      { urlGroup: g.name, body: { item: 2 } },
      { url: rx.url + p3, body: [3, "three"], queueName, headers: { "X-Three": "3" } },
    ]);
    assert.equal(res.length, 3);
    assert.ok(!Array.isArray(res[0]) && Array.isArray(res[1]) && !Array.isArray(res[2]));
    const checks = [
      [rx, p1, { item: 1, text: "çé" }, res[0].messageId],
      [rx, g.g1, { item: 2 }, res[1][0].messageId],
      [rx2, g.g2, { item: 2 }, res[1][1].messageId],
      [rx, p3, [3, "three"], res[2].messageId],
    ];
    for (const [receiver, path, body, messageId] of checks) {
      const [d] = await receiver.waitFor(path, 1);
      assert.equal(d.headers["content-type"], "application/json", path);
      assert.deepEqual(JSON.parse(d.body), body);
      assert.equal(d.headers["upstash-message-id"], messageId);
    }
    assert.equal(rx.on(p3)[0].headers["x-three"], "3");
    const queued = await logsWhere(client, { queueName });
    assert.ok(queued.every((e) => e.messageId === res[2].messageId) && queued.length > 0);
  });

  test("an item's URL keeps its query string, and the signature covers it", async () => {
    const path = uniquePath("b-query");
    const res = await client.batch([{ url: `${rx.url}${path}?x=1&y=%2F`, body: "q" }]);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.target, `${path}?x=1&y=%2F`);
    assert.equal(d.headers["upstash-message-id"], res[0].messageId);
    assert.equal(d.verifyError, undefined);
  });

  test("a single item still yields an array", async () => {
    const path = uniquePath("b-single");
    const res = await client.batch([{ url: rx.url + path, body: "alone" }]);
    assert.ok(Array.isArray(res));
    assert.equal(res.length, 1);
    assert.match(res[0].messageId, /^msg_/);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.headers["upstash-message-id"], res[0].messageId);
  });

  test("deduplication applies per item: a repeated deduplicationId yields the first id, one delivery", async () => {
    const path = uniquePath("b-dedup");
    const deduplicationId = unique("bd");
    const res = await client.batch([
      { url: rx.url + path, body: "first", deduplicationId },
      { url: rx.url + path, body: "second", deduplicationId },
      { url: rx.url + path, body: "third" },
    ]);
    assert.equal(res.length, 3);
    assert.equal(res[1].messageId, res[0].messageId);
    assert.equal(res[1].deduplicated, true);
    assert.ok(!res[0].deduplicated);
    assert.notEqual(res[2].messageId, res[0].messageId);
    const got = await rx.waitFor(path, 2);
    await rx.assertQuiet(path, 2, 300);
    assert.deepEqual(got.map((d) => d.body).sort(), ["first", "third"]);
  });

  test("an item with an unknown URL group or an invalid header gets its own error, the others go", async () => {
    // Our issue's rule: one bad item gets an {"error"} element in its place while the others
    // are still accepted and delivered.
    const invalidItems = [
      { urlGroup: unique("no-such-group"), body: "x" },
      { url: rx.url + uniquePath("bad-delay"), body: "x", delay: "soon" },
    ];
    for (const bad of invalidItems) {
      const good = uniquePath("b-good");
      const res = await client.batch([bad, { url: rx.url + good, body: "good" }]);
      assert.equal(res.length, 2, JSON.stringify(res));
      assert.equal(res[0].messageId, undefined, `invalid item got a message: ${JSON.stringify(res[0])}`);
      assert.equal(typeof res[0].error, "string", JSON.stringify(res[0]));
      const [d] = await rx.waitFor(good, 1);
      assert.equal(d.headers["upstash-message-id"], res[1].messageId);
    }
  });

  test("items keep their own callbacks and flow control", async () => {
    const [p1, cb, p2] = [uniquePath("b-cbsrc"), uniquePath("b-cb"), uniquePath("b-fc")];
    const key = unique("bfc");
    const res = await client.batch([
      { url: rx.url + p1, body: "with callback", callback: rx.url + cb },
      { url: rx.url + p2, body: "flow", flowControl: { key, parallelism: 1, rate: 5, period: 60 }, delay: 30 },
    ]);
    const message = await client.messages.get(res[1].messageId);
    assert.equal(message.flowControlKey, key);
    assert.equal(message.parallelism, 1);
    assert.equal(message.rate, 5);
    assert.equal(message.period, 60);
    const [c] = await rx.waitFor(cb, 1);
    assert.equal(JSON.parse(c.body).sourceMessageId, res[0].messageId);
    await server.advance("31s");
    await rx.waitFor(p2, 1);
  });
});
