// messages.get / cancel / delete (single, bulk by ids, {all: true}) through the official SDK.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, isStatus, messageStates, startReceiver, uniquePath, useServerAndReceiver, waitForState, waitUntil } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

describe("messages", () => {
  test("messages.get of an unknown id rejects with 404", async () => {
    await assert.rejects(client.messages.get("msg_doesnotexist"), isStatus(404));
  });

  test("messages.cancel(id) on a delayed message returns {cancelled: 1}; it is never delivered", async () => {
    const path = uniquePath("cancel-one");
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", delay: 600 });
    assert.equal((await client.messages.get(messageId)).messageId, messageId);

    const result = await client.messages.cancel(messageId);
    assert.deepEqual(result, { cancelled: 1 });
    // A finished message may stay readable for a short grace period, but cannot be
    // cancelled a second time.
    await assert.rejects(client.messages.cancel(messageId), isStatus(404));

    await server.advance("700s");
    await rx.assertQuiet(path, 0, 400);
    const states = await waitForState(client, messageId, "CANCELED");
    assert.deepEqual(states, ["CREATED", "CANCEL_REQUESTED", "CANCELED"]);
    // Past the grace period the message is gone.
    await assert.rejects(client.messages.get(messageId), isStatus(404));
  });

  test("messages.delete(id) (deprecated) cancels a delayed message", async () => {
    const path = uniquePath("delete-one");
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", delay: 600 });
    await client.messages.delete(messageId);
    await server.advance("700s");
    await rx.assertQuiet(path, 0, 400);
    await waitForState(client, messageId, "CANCELED");
    await assert.rejects(client.messages.get(messageId), isStatus(404));
  });

  test("messages.delete(id) on a message whose delivery is in flight succeeds; a 2xx answer still counts as DELIVERED", async () => {
    const path = uniquePath("inflight");
    rx.script(path, { delayMs: 1500, status: 200 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "slow" });
    await rx.waitFor(path, 1);
    await client.messages.delete(messageId);
    // The endpoint answered 2xx, so the attempt counts as delivered (spec delivery.md §15).
    const states = await waitUntil(
      async () => {
        const s = await messageStates(client, messageId);
        return s.includes("DELIVERED") || s.includes("CANCELED") ? s : false;
      },
      { what: `a final state for ${messageId}` },
    );
    assert.deepEqual(states, ["CREATED", "ACTIVE", "CANCEL_REQUESTED", "DELIVERED"]);
    await rx.assertQuiet(path, 1, 300);
  });

  test("messages.cancel(id) while in flight and the endpoint then fails: CANCELED, no retry, no DLQ entry", async () => {
    const path = uniquePath("inflight-fail");
    rx.script(path, { delayMs: 1500, status: 500, body: "boom" });
    const { messageId } = await client.publish({ url: rx.url + path, body: "slow", retries: 3 });
    await rx.waitFor(path, 1);
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    const states = await waitForState(client, messageId, "CANCELED");
    assert.ok(!states.includes("RETRY"), `no retry after a cancel: ${JSON.stringify(states)}`);
    assert.ok(!states.includes("FAILED"), `no FAILED after a cancel: ${JSON.stringify(states)}`);
    assert.deepEqual(states.slice(0, 3), ["CREATED", "ACTIVE", "CANCEL_REQUESTED"]);
    await server.advance("3h");
    await rx.assertQuiet(path, 1, 400);
    const dlq = await client.dlq.listMessages({ filter: { messageId } });
    assert.equal(dlq.messages.length, 0);
  });

  test("bulk cancel by ids cancels exactly those messages", async () => {
    const path = uniquePath("bulk");
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const { messageId } = await client.publish({ url: `${rx.url}${path}?i=${i}`, body: `m${i}`, delay: 600 });
      ids.push(messageId);
    }
    const result = await client.messages.cancel([ids[0], ids[1]]);
    assert.deepEqual(result, { cancelled: 2 });
    await assert.rejects(client.messages.cancel(ids[0]), isStatus(404));
    assert.equal((await client.messages.get(ids[2])).messageId, ids[2]);

    await server.advance("700s");
    const [got] = await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 300);
    assert.equal(got.body, "m2");
    assert.equal(got.headers["upstash-message-id"], ids[2]);
    for (const id of ids.slice(0, 2)) {
      assert.deepEqual(await messageStates(client, id), ["CREATED", "CANCEL_REQUESTED", "CANCELED"]);
    }
  });

  test("deleteMany (deprecated) returns the number cancelled", async () => {
    const path = uniquePath("delmany");
    const a = await client.publish({ url: rx.url + path, body: "a", delay: 600 });
    const b = await client.publish({ url: rx.url + path, body: "b", delay: 600 });
    assert.equal(await client.messages.deleteMany([a.messageId, b.messageId]), 2);
    await server.advance("700s");
    await rx.assertQuiet(path, 0, 300);
  });

  test("cancel({all: true}) cancels every pending message of the user and no one else's", async () => {
    // Done as testUser2 so the default user's messages in this file stay untouched, and one
    // default-user message proves other users are not affected.
    const other = server.client(USERS.testUser2);
    const otherRx = await startReceiver(USERS.testUser2);
    try {
      const path = uniquePath("all");
      const ids = [];
      for (let i = 0; i < 4; i++) {
        ids.push((await other.publish({ url: otherRx.url + path, body: `${i}`, delay: 900 })).messageId);
      }
      const mainPath = uniquePath("all-untouched");
      const kept = await client.publish({ url: rx.url + mainPath, body: "keep", delay: 900 });

      const result = await other.messages.cancel({ all: true });
      assert.equal(result.cancelled, 4);
      for (const id of ids) await assert.rejects(other.messages.cancel(id), isStatus(404));
      assert.equal((await client.messages.get(kept.messageId)).messageId, kept.messageId);

      // Nothing left to cancel.
      assert.equal((await other.messages.cancel({ all: true })).cancelled, 0);

      await server.advance("1000s");
      await rx.waitFor(mainPath, 1);
      await otherRx.assertQuiet(path, 0, 300);
      for (const id of ids) {
        await assert.rejects(other.messages.get(id), isStatus(404));
        assert.deepEqual(await messageStates(other, id), ["CREATED", "CANCEL_REQUESTED", "CANCELED"]);
      }
      otherRx.assertAllVerified();
    } finally {
      await otherRx.close();
    }
  });

  test("cancel({all: true, count: 1}) and cancel({filter: {label}, count: 1}) cancel exactly one each", async () => {
    // As testUser3 (user 4) so no other test's pending messages are selected.
    const other = server.client(USERS.testUser3);
    const otherRx = await startReceiver(USERS.testUser3);
    try {
      const path = uniquePath("count");
      for (let i = 0; i < 2; i++) await other.publish({ url: otherRx.url + path, body: `${i}`, delay: 900 });
      assert.equal((await other.messages.cancel({ all: true, count: 1 })).cancelled, 1);
      assert.equal((await other.messages.cancel({ all: true, count: 1 })).cancelled, 1);
      assert.equal((await other.messages.cancel({ all: true, count: 1 })).cancelled, 0);

      const label = `count-${Date.now()}`;
      for (let i = 0; i < 2; i++) await other.publish({ url: otherRx.url + path, body: `${i}`, delay: 900, label });
      assert.equal((await other.messages.cancel({ filter: { label }, count: 1 })).cancelled, 1);
      assert.equal((await other.messages.cancel({ filter: { label } })).cancelled, 1);
    } finally {
      await otherRx.close();
    }
  });

  test("a bulk cancel with an unknown filter key rejects with 400 and cancels nothing", async () => {
    const path = uniquePath("typo");
    const { messageId } = await client.publish({ url: rx.url + path, body: "kept", delay: 600, label: "typo" });
    await assert.rejects(client.messages.cancel({ filter: { labeel: "typo" } }), isStatus(400));
    assert.equal((await client.messages.get(messageId)).messageId, messageId);
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
  });

  test("a user cannot read or cancel another user's message", async () => {
    const path = uniquePath("isolation");
    const { messageId } = await client.publish({ url: rx.url + path, body: "mine", delay: 600 });
    const other = server.client(USERS.testUser1);
    await assert.rejects(other.messages.get(messageId), isStatus(404));
    await assert.rejects(other.messages.cancel(messageId), isStatus(404));
    assert.equal((await other.logs({ filter: { messageId } })).logs.length, 0);
    assert.equal((await client.messages.get(messageId)).messageId, messageId);
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
  });
});
