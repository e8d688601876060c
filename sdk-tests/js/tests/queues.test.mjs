// Queues through the official SDK: client.queue({queueName}).upsert/get/delete/pause/resume,
// client.queue().list(), enqueue/enqueueJSON; FIFO order and parallelism observed at a local
// receiver that answers slowly and verifies every delivery with the SDK's Receiver.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isStatus, logsWhere, uniquePath, useServerAndReceiver, waitForState, waitUntil } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

const queueName = (tag) => `q-${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;

/** Scripts `n` slow 200 answers on `path`. */
function slow(path, n, delayMs) {
  rx.script(path, ...Array.from({ length: n }, () => ({ delayMs })));
}

const waitForLag = (queue, lag) =>
  waitUntil(async () => (await queue.get()).lag === lag, { what: `lag ${lag} on ${queue.queueName}` });

describe("queue management", () => {
  test("upsert creates, get reports all fields, upsert updates parallelism and paused", async () => {
    const name = queueName("crud");
    const queue = client.queue({ queueName: name });
    const t0 = (await server.clock()).now;
    await queue.upsert({ parallelism: 1 });
    const created = await queue.get();
    assert.equal(created.name, name);
    assert.equal(created.parallelism, 1);
    assert.equal(created.lag, 0);
    assert.equal(created.paused, false);
    assert.equal(typeof created.createdAt, "number");
    assert.equal(typeof created.updatedAt, "number");
    assert.ok(created.createdAt >= t0 - 1000);

    await server.advance("2s");
    await queue.upsert({ parallelism: 3, paused: true });
    const updated = await queue.get();
    assert.equal(updated.parallelism, 3);
    assert.equal(updated.paused, true);
    assert.equal(updated.createdAt, created.createdAt);
    assert.ok(updated.updatedAt > created.updatedAt, `updatedAt ${updated.updatedAt} > ${created.updatedAt}`);

    // upsert without `paused` sends paused: false (the SDK always sends all three fields).
    await queue.upsert({ parallelism: 2 });
    const again = await queue.get();
    assert.equal(again.paused, false);
    assert.equal(again.parallelism, 2);
  });

  test("client.queue().list() lists every queue; delete removes one", async () => {
    const [a, b] = [queueName("list-a"), queueName("list-b")];
    await client.queue({ queueName: a }).upsert({ parallelism: 1 });
    await client.queue({ queueName: b }).upsert({ parallelism: 2, paused: true });
    const list = await client.queue().list();
    assert.ok(Array.isArray(list));
    const qa = list.find((q) => q.name === a);
    const qb = list.find((q) => q.name === b);
    assert.ok(qa && qb, `both queues listed: ${list.map((q) => q.name)}`);
    assert.equal(qb.parallelism, 2);
    assert.equal(qb.paused, true);
    for (const q of [qa, qb]) {
      for (const field of ["name", "createdAt", "updatedAt", "parallelism", "lag", "paused"]) {
        assert.ok(field in q, `${field} missing in ${JSON.stringify(q)}`);
      }
    }

    await client.queue({ queueName: a }).delete();
    await assert.rejects(client.queue({ queueName: a }).get(), isStatus(404));
    assert.ok(!(await client.queue().list()).some((q) => q.name === a));
  });

  test("get of an unknown queue is 404; invalid names and parallelism 0 are 400, parallelism above the plan 412", async () => {
    await assert.rejects(client.queue({ queueName: queueName("nope") }).get(), isStatus(404));
    await assert.rejects(client.queue({ queueName: "bad!queue" }).upsert({ parallelism: 1 }), isStatus(400));
    await assert.rejects(client.queue({ queueName: queueName("zero") }).upsert({ parallelism: 0 }), isStatus(400));
    // Above the plan's maximum queue parallelism (100 for the default payg quota): 412.
    await assert.rejects(client.queue({ queueName: queueName("huge") }).upsert({ parallelism: 101 }), isStatus(412));
    await assert.rejects(client.queue({ queueName: "bad!queue" }).enqueue({ url: rx.url + "/never", body: "x" }), isStatus(400));
  });

  test("enqueue creates a missing queue with parallelism 1", async () => {
    const name = queueName("implicit");
    const path = uniquePath("implicit");
    const res = await client.queue({ queueName: name }).enqueue({ url: rx.url + path, body: "x" });
    assert.match(res.messageId, /^msg_/);
    await rx.waitFor(path, 1);
    const queue = await client.queue({ queueName: name }).get();
    assert.equal(queue.parallelism, 1);
    assert.equal(queue.paused, false);
  });
});

describe("queue delivery", () => {
  test("parallelism 1: FIFO order, one at a time, lag counts down to 0", async () => {
    const name = queueName("fifo");
    const queue = client.queue({ queueName: name });
    await queue.upsert({ parallelism: 1 });
    const path = uniquePath("fifo");
    slow(path, 5, 150);
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await queue.enqueueJSON({ url: rx.url + path, body: { i } })).messageId);
    }
    const lag = (await queue.get()).lag;
    assert.ok(lag >= 4 && lag <= 5, `lag right after enqueueing 5 slow messages: ${lag}`);
    const waiting = await client.messages.get(ids[4]);
    assert.equal(waiting.queueName, name);

    const got = await rx.waitFor(path, 5);
    assert.deepEqual(
      got.map((d) => JSON.parse(d.body).i),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      got.map((d) => d.headers["upstash-message-id"]),
      ids,
    );
    for (let i = 1; i < got.length; i++) {
      const gap = got[i].at - got[i - 1].at;
      assert.ok(gap >= 140, `delivery ${i} started ${gap} ms after ${i - 1}, before it was answered`);
    }
    await waitForLag(queue, 0);
    const entries = await logsWhere(client, { queueName: name });
    assert.deepEqual(new Set(entries.map((e) => e.messageId)), new Set(ids));
    assert.ok(entries.every((e) => e.queueName === name));
  });

  test("the next message waits while the head of the queue is waiting for its retry", async () => {
    const queue = client.queue({ queueName: queueName("retry-head") });
    await queue.upsert({ parallelism: 1 });
    const path = uniquePath("retry-head");
    rx.script(path, { status: 500, body: "fail once" });
    const a = await queue.enqueue({ url: `${rx.url}${path}?m=a`, body: "a", retries: 1 });
    const b = await queue.enqueue({ url: `${rx.url}${path}?m=b`, body: "b" });
    await rx.waitFor(path, 1);
    await waitForState(client, a.messageId, "RETRY");
    await rx.assertQuiet(path, 1, 400);
    assert.equal((await queue.get()).lag, 2);
    await server.advance("13s");
    const got = await rx.waitFor(path, 3);
    assert.deepEqual(
      got.map((d) => d.body),
      ["a", "a", "b"],
    );
    assert.equal(got[1].headers["upstash-retried"], "1");
    await waitForState(client, b.messageId, "DELIVERED");
  });

  test("the next message waits for the callback of the previous one", async () => {
    const queue = client.queue({ queueName: queueName("cb-wait") });
    await queue.upsert({ parallelism: 1 });
    const [path, cb] = [uniquePath("cbq"), uniquePath("cbq-cb")];
    rx.script(cb, { delayMs: 500 });
    await queue.enqueue({ url: `${rx.url}${path}?m=a`, body: "a", callback: rx.url + cb });
    await queue.enqueue({ url: `${rx.url}${path}?m=b`, body: "b" });
    const [c] = await rx.waitFor(cb, 1);
    const got = await rx.waitFor(path, 2);
    assert.deepEqual(
      got.map((d) => d.body),
      ["a", "b"],
    );
    assert.ok(
      got[1].at >= c.at + 450,
      `b started ${got[1].at - c.at} ms after the callback began, before it finished (500 ms)`,
    );
  });

  test("parallelism 2: at most two deliveries in flight, still started in order", async () => {
    const queue = client.queue({ queueName: queueName("par2") });
    await queue.upsert({ parallelism: 2 });
    const path = uniquePath("par2");
    // Staggered answers, so that the slots free up at distinct times: 0 answers after 300 ms
    // (then 2 starts), 1 after 900 ms, 2 after 300 ms (then 3 starts, at ~600 ms).
    rx.script(path, { delayMs: 300 }, { delayMs: 900 }, { delayMs: 300 }, { delayMs: 100 });
    for (let i = 0; i < 4; i++) await queue.enqueue({ url: rx.url + path, body: String(i) });
    const got = await rx.waitFor(path, 4);
    assert.deepEqual(
      got.map((d) => d.body),
      ["0", "1", "2", "3"],
    );
    const since = (i) => got[i].at - got[0].at;
    assert.ok(since(1) < 250, `the second delivery should start alongside the first (${since(1)} ms)`);
    assert.ok(since(2) >= 280, `the third must wait for the first to finish (${since(2)} ms)`);
    assert.ok(since(3) >= 580, `the fourth must wait for the third to finish (${since(3)} ms)`);
    assert.ok(since(3) < 880, `the fourth should not wait for the slow second one (${since(3)} ms)`);
  });

  test("pause holds enqueued messages (lag grows), resume delivers them in order", async () => {
    const name = queueName("pause");
    const queue = client.queue({ queueName: name });
    await queue.upsert({ parallelism: 1 });
    await queue.pause();
    assert.equal((await queue.get()).paused, true);
    const path = uniquePath("paused");
    const ids = [];
    for (const body of ["p1", "p2", "p3"]) ids.push((await queue.enqueue({ url: rx.url + path, body })).messageId);
    await rx.assertQuiet(path, 0, 500);
    assert.equal((await queue.get()).lag, 3);
    for (const id of ids) assert.deepEqual((await logsWhere(client, { messageId: id })).map((e) => e.state), ["CREATED"]);
    // Pausing twice is fine.
    await queue.pause();

    await queue.resume();
    assert.equal((await queue.get()).paused, false);
    const got = await rx.waitFor(path, 3);
    assert.deepEqual(
      got.map((d) => d.body),
      ["p1", "p2", "p3"],
    );
    await waitForLag(queue, 0);
  });

  test("pausing while a delivery is in flight lets it finish but dispatches nothing else", async () => {
    const queue = client.queue({ queueName: queueName("pause-inflight") });
    await queue.upsert({ parallelism: 1 });
    const path = uniquePath("pause-inflight");
    rx.script(path, { delayMs: 500 });
    const a = await queue.enqueue({ url: rx.url + path, body: "a" });
    await queue.enqueue({ url: rx.url + path, body: "b" });
    await rx.waitFor(path, 1);
    await queue.pause();
    await waitForState(client, a.messageId, "DELIVERED");
    await rx.assertQuiet(path, 1, 400);
    assert.equal((await queue.get()).lag, 1);
    await queue.resume();
    const got = await rx.waitFor(path, 2);
    assert.equal(got[1].body, "b");
  });

  test("upsert({paused: true}) holds messages until upsert({paused: false})", async () => {
    const queue = client.queue({ queueName: queueName("upsert-pause") });
    await queue.upsert({ parallelism: 1, paused: true });
    const path = uniquePath("upsert-paused");
    await queue.enqueueJSON({ url: rx.url + path, body: { held: true } });
    await rx.assertQuiet(path, 0, 400);
    await queue.upsert({ parallelism: 1, paused: false });
    const [got] = await rx.waitFor(path, 1);
    assert.deepEqual(JSON.parse(got.body), { held: true });
  });

  test("enqueue honours delay, headers and method", async () => {
    const name = queueName("delay");
    const queue = client.queue({ queueName: name });
    const path = uniquePath("q-delay");
    const { messageId } = await queue.enqueue({
      url: rx.url + path,
      body: "delayed",
      method: "PATCH",
      delay: 90,
      headers: { "X-Queued": "yes" },
    });
    const message = await client.messages.get(messageId);
    assert.equal(message.queueName, name);
    assert.equal(message.method, "PATCH");
    assert.ok(message.notBefore >= message.createdAt + 89_000);
    await rx.assertQuiet(path, 0, 300);
    await server.advance("91s");
    const [got] = await rx.waitFor(path, 1);
    assert.equal(got.method, "PATCH");
    assert.equal(got.headers["x-queued"], "yes");
  });
});
