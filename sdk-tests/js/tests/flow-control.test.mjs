// Flow control through the official SDK: publish/enqueue with `flowControl`, and
// client.flowControl.get/pause/resume/pin/unpin/resetRate/getGlobalParallelism (the JS SDK has no
// list method). Rate and parallelism limits are observed at a local receiver, on the server's
// controllable clock.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isStatus, logsWhere, uniquePath, useServerAndReceiver, waitUntil } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

const fcKey = (tag) => `fc-${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;

const NUMERIC_FIELDS = [
  "waitListSize",
  "parallelismMax",
  "parallelismCount",
  "rateMax",
  "rateCount",
  "ratePeriod",
  "ratePeriodStart",
];
const BOOLEAN_FIELDS = ["isPaused", "isPinnedParallelism", "isPinnedRate"];

function assertShape(info, key) {
  assert.equal(info.flowControlKey, key);
  for (const field of NUMERIC_FIELDS) assert.equal(typeof info[field], "number", `${field} in ${JSON.stringify(info)}`);
  for (const field of BOOLEAN_FIELDS) assert.equal(typeof info[field], "boolean", `${field} in ${JSON.stringify(info)}`);
}

const waitForInfo = (key, predicate, what) =>
  waitUntil(
    async () => {
      const info = await client.flowControl.get(key);
      return predicate(info) ? info : false;
    },
    { what: `${what} on ${key}` },
  );

describe("flow control configuration", () => {
  test("get right after publishing reports the key's config; messages.get shows it per message", async () => {
    const key = fcKey("cfg");
    const path = uniquePath("fc-cfg");
    const { messageId } = await client.publish({
      url: rx.url + path,
      body: "x",
      delay: 600,
      flowControl: { key, parallelism: 2, rate: 3, period: 60 },
    });
    const info = await client.flowControl.get(key);
    assertShape(info, key);
    assert.equal(info.parallelismMax, 2);
    assert.equal(info.rateMax, 3);
    assert.equal(info.ratePeriod, 60);
    assert.equal(info.parallelismCount, 0);
    assert.equal(info.waitListSize, 0, "a message that is not due yet is not waiting");
    assert.equal(info.isPaused, false);
    assert.equal(info.isPinnedParallelism, false);
    assert.equal(info.isPinnedRate, false);

    const message = await client.messages.get(messageId);
    assert.equal(message.flowControlKey, key);
    assert.equal(message.parallelism, 2);
    assert.equal(message.rate, 3);
    assert.equal(message.ratePerSecond, 3); // the SDK's deprecated alias
    assert.equal(message.period, 60);

    const entries = await logsWhere(client, { flowControlKey: key });
    assert.equal(entries.length, 1);
    assert.equal(entries[0].messageId, messageId);
    assert.equal(entries[0].flowControlKey, key);
    await client.messages.cancel(messageId);
  });

  test("period defaults to 1 s; parallelism/rate are only reported when given; duration strings", async () => {
    const cases = [
      [{ rate: 1 }, { parallelism: undefined, rate: 1, period: 1 }],
      [{ parallelism: 5 }, { parallelism: 5, rate: undefined, period: 1 }],
      [{ rate: 23, period: "1h30m3s" }, { parallelism: undefined, rate: 23, period: 5403 }],
      [{ parallelism: 3, rate: 4, period: "2s" }, { parallelism: 3, rate: 4, period: 2 }],
      [{ rate: 2, period: "1d" }, { parallelism: undefined, rate: 2, period: 86400 }],
    ];
    for (const [flowControl, expected] of cases) {
      const key = fcKey("defaults");
      const { messageId } = await client.publish({
        url: rx.url + uniquePath("fc-def"),
        body: "x",
        delay: 600,
        flowControl: { key, ...flowControl },
      });
      const message = await client.messages.get(messageId);
      assert.equal(message.flowControlKey, key);
      assert.deepEqual(
        { parallelism: message.parallelism, rate: message.rate, period: message.period },
        expected,
        JSON.stringify(flowControl),
      );
      const info = await client.flowControl.get(key);
      assert.equal(info.parallelismMax, expected.parallelism ?? 0);
      assert.equal(info.rateMax, expected.rate ?? 0);
      await client.messages.cancel(messageId);
    }
  });

  test("config updates: the highest pending values win until the older messages are gone", async () => {
    const key = fcKey("update");
    const url = rx.url + uniquePath("fc-update");
    const limits = async () => {
      const i = await client.flowControl.get(key);
      return [i.parallelismMax, i.rateMax, i.ratePeriod];
    };
    const a = await client.publish({ url, delay: 600, flowControl: { key, parallelism: 4, rate: 5, period: 10 } });
    assert.deepEqual(await limits(), [4, 5, 10]);
    const b = await client.publish({ url, delay: 600, flowControl: { key, parallelism: 1, rate: 2, period: 60 } });
    assert.deepEqual(await limits(), [4, 5, 10], "the older, higher limits still apply while it is pending");
    await client.messages.cancel(a.messageId);
    await waitUntil(async () => JSON.stringify(await limits()) === JSON.stringify([1, 2, 60]), {
      what: "the newer config once the older message is gone",
    });
    await client.messages.cancel(b.messageId);
  });

  test("invalid flow-control values are rejected with 400", async () => {
    const url = rx.url + uniquePath("fc-bad");
    await assert.rejects(client.publish({ url, flowControl: { key: fcKey("p0"), parallelism: 0, rate: 1 } }), isStatus(400));
    await assert.rejects(client.publish({ url, flowControl: { key: fcKey("r0"), rate: 0, parallelism: 1 } }), isStatus(400));
    await assert.rejects(client.publish({ url, flowControl: { key: fcKey("long"), rate: 1, period: "8d" } }), isStatus(400));
  });

  test("a key with a colon works with get/pause/resume", async () => {
    const key = `user:${Date.now()}`;
    const { messageId } = await client.publish({ url: rx.url + uniquePath("fc-colon"), delay: 60, flowControl: { key, rate: 2 } });
    assert.equal((await client.flowControl.get(key)).rateMax, 2);
    await client.flowControl.pause(key);
    assert.equal((await client.flowControl.get(key)).isPaused, true);
    await client.flowControl.resume(key);
    assert.equal((await client.flowControl.get(key)).isPaused, false);
    assert.equal((await client.messages.get(messageId)).flowControlKey, key);
    await client.messages.cancel(messageId);
  });

  test("get of a key that was never used is 404", async () => {
    await assert.rejects(client.flowControl.get(fcKey("unknown")), isStatus(404));
  });
});

describe("flow control delivery", () => {
  test("rate 2 per minute: two deliveries per window, the rest wait in the wait list", async () => {
    const key = fcKey("rate");
    const path = uniquePath("fc-rate");
    const ids = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.publish({ url: rx.url + path, body: `r${i}`, flowControl: { key, rate: 2, period: "1m" } })).messageId);
    }
    await rx.waitFor(path, 2);
    await rx.assertQuiet(path, 2, 500);
    const info = await waitForInfo(key, (i) => i.waitListSize === 3, "waitListSize 3");
    assert.equal(info.rateMax, 2);
    assert.equal(info.rateCount, 2);
    assert.equal(info.ratePeriod, 60);

    await server.advance("61s");
    await rx.waitFor(path, 4);
    await rx.assertQuiet(path, 4, 500);
    await waitForInfo(key, (i) => i.waitListSize === 1, "waitListSize 1");

    await server.advance("61s");
    const got = await rx.waitFor(path, 5);
    await rx.assertQuiet(path, 5, 200);
    assert.deepEqual(got.map((d) => d.body).sort(), ["r0", "r1", "r2", "r3", "r4"]);
    await waitForInfo(key, (i) => i.waitListSize === 0, "empty wait list");
  });

  test("parallelism 1: one delivery in flight at a time; counts visible while in flight", async () => {
    const key = fcKey("par");
    const path = uniquePath("fc-par");
    rx.script(path, { delayMs: 600 }, { delayMs: 300 }, { delayMs: 300 });
    for (let i = 0; i < 3; i++) {
      await client.publish({ url: rx.url + path, body: `p${i}`, flowControl: { key, parallelism: 1 } });
    }
    await rx.waitFor(path, 1);
    const info = await waitForInfo(key, (i) => i.parallelismCount === 1 && i.waitListSize === 2, "1 in flight, 2 waiting");
    assert.equal(info.parallelismMax, 1);
    const global = await client.flowControl.getGlobalParallelism();
    assert.ok(global.parallelismCount >= 1, `global count while in flight: ${JSON.stringify(global)}`);
    assert.ok(global.parallelismMax > 0);

    const got = await rx.waitFor(path, 3);
    assert.ok(got[1].at - got[0].at >= 580, `second started ${got[1].at - got[0].at} ms after the first`);
    assert.ok(got[2].at - got[1].at >= 280, `third started ${got[2].at - got[1].at} ms after the second`);
    await waitForInfo(key, (i) => i.parallelismCount === 0 && i.waitListSize === 0, "idle");
  });

  test("getGlobalParallelism reports numbers when idle", async () => {
    const global = await client.flowControl.getGlobalParallelism();
    assert.equal(typeof global.parallelismMax, "number");
    assert.equal(typeof global.parallelismCount, "number");
    assert.ok(global.parallelismMax > 0);
  });

  test("pause holds new messages in the wait list; resume releases them", async () => {
    const key = fcKey("pause");
    const path = uniquePath("fc-pause");
    await client.publish({ url: rx.url + path, body: "before", flowControl: { key, parallelism: 5 } });
    await rx.waitFor(path, 1);
    await client.flowControl.pause(key);
    assert.equal((await client.flowControl.get(key)).isPaused, true);
    await client.publish({ url: rx.url + path, body: "held-1", flowControl: { key, parallelism: 5 } });
    await client.publish({ url: rx.url + path, body: "held-2", flowControl: { key, parallelism: 5 } });
    await rx.assertQuiet(path, 1, 500);
    await waitForInfo(key, (i) => i.waitListSize === 2, "2 waiting while paused");

    await client.flowControl.resume(key);
    const got = await rx.waitFor(path, 3);
    assert.deepEqual(got.map((d) => d.body).sort(), ["before", "held-1", "held-2"]);
    const info = await waitForInfo(key, (i) => i.waitListSize === 0, "empty wait list");
    assert.equal(info.isPaused, false);
  });

  test("pin overrides message configs and gates delivery; unpin clears the selected parts", async () => {
    const key = fcKey("pin");
    const path = uniquePath("fc-pin");
    const pending = await client.publish({
      url: rx.url + path,
      body: "pending",
      delay: 3600,
      flowControl: { key, parallelism: 1, rate: 1 },
    });
    await client.flowControl.pin(key, { parallelism: 3, rate: 20, period: 120 });
    let info = await client.flowControl.get(key);
    assertShape(info, key);
    assert.equal(info.parallelismMax, 3);
    assert.equal(info.rateMax, 20);
    assert.equal(info.ratePeriod, 120);
    assert.equal(info.isPinnedParallelism, true);
    assert.equal(info.isPinnedRate, true);

    // A new message with another config does not change a pinned key.
    const other = await client.publish({ url: rx.url + path, body: "x", delay: 3600, flowControl: { key, parallelism: 9, rate: 50 } });
    info = await client.flowControl.get(key);
    assert.equal(info.parallelismMax, 3);
    assert.equal(info.rateMax, 20);

    await client.flowControl.unpin(key, { parallelism: true });
    info = await client.flowControl.get(key);
    assert.equal(info.isPinnedParallelism, false);
    assert.equal(info.isPinnedRate, true);
    assert.equal(info.rateMax, 20);
    assert.equal(info.ratePeriod, 120);

    await client.flowControl.unpin(key, { rate: true });
    info = await client.flowControl.get(key);
    assert.equal(info.isPinnedParallelism, false);
    assert.equal(info.isPinnedRate, false);
    await client.messages.cancel([pending.messageId, other.messageId]);
  });

  test("a pinned rate limits delivery even if the messages ask for more", async () => {
    const key = fcKey("pin-gate");
    const path = uniquePath("fc-pin-gate");
    await client.publish({ url: rx.url + path, body: "first", flowControl: { key, rate: 100 } });
    await rx.waitFor(path, 1);
    await client.flowControl.pin(key, { rate: 1, period: 60 });
    await client.publish({ url: rx.url + path, body: "a", flowControl: { key, rate: 100 } });
    await client.publish({ url: rx.url + path, body: "b", flowControl: { key, rate: 100 } });
    await rx.waitFor(path, 2);
    await rx.assertQuiet(path, 2, 500);
    await server.advance("61s");
    await rx.waitFor(path, 3);
    await client.flowControl.unpin(key, { rate: true, parallelism: true });
  });

  test("resetRate starts a new window at once: a waiting message goes out without moving the clock", async () => {
    const key = fcKey("reset");
    const path = uniquePath("fc-reset");
    await client.publish({ url: rx.url + path, body: "one", flowControl: { key, rate: 1, period: "1h" } });
    await client.publish({ url: rx.url + path, body: "two", flowControl: { key, rate: 1, period: "1h" } });
    await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 400);
    const before = await waitForInfo(key, (i) => i.waitListSize === 1 && i.rateCount === 1, "one waiting");
    await server.advance("10s");
    await client.flowControl.resetRate(key);
    const got = await rx.waitFor(path, 2);
    assert.deepEqual(
      got.map((d) => d.body),
      ["one", "two"],
    );
    const after = await waitForInfo(key, (i) => i.waitListSize === 0, "empty wait list");
    assert.equal(after.rateCount, 1, "the released message counts in the new window");
    assert.ok(after.ratePeriodStart >= before.ratePeriodStart + 10, `${after.ratePeriodStart} vs ${before.ratePeriodStart}`);
    const nowSeconds = Math.floor((await server.clock()).now / 1000);
    assert.ok(Math.abs(after.ratePeriodStart - nowSeconds) <= 5, "ratePeriodStart is unix seconds");
  });

  test("flow control applies to enqueued messages too", async () => {
    const key = fcKey("queue");
    const path = uniquePath("fc-queue");
    const queue = client.queue({ queueName: `fcq-${Date.now()}` });
    await queue.upsert({ parallelism: 5 });
    for (const body of ["q1", "q2", "q3"]) {
      await queue.enqueue({ url: rx.url + path, body, flowControl: { key, rate: 1, period: 60 } });
    }
    await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 500);
    await server.advance("61s");
    await rx.waitFor(path, 2);
    await server.advance("61s");
    const got = await rx.waitFor(path, 3);
    assert.deepEqual(
      got.map((d) => d.body),
      ["q1", "q2", "q3"],
    );
  });
});
