// client.logs(): filters (messageId, messageIds, state, url) and cursor pagination to the end.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { QstashError } from "@upstash/qstash";
import { USERS, startReceiver, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

async function publishDelivered(url, body) {
  const { messageId } = await client.publish({ url, body });
  await waitForState(client, messageId, "DELIVERED");
  return messageId;
}

describe("logs", () => {
  test("filter by messageId returns only that message's entries, newest first, with the required fields", async () => {
    const path = uniquePath("by-id");
    const a = await publishDelivered(rx.url + path, "a");
    const b = await publishDelivered(rx.url + path, "b");
    const res = await client.logs({ filter: { messageId: a } });
    assert.equal(res.cursor, undefined);
    assert.deepEqual(
      res.logs.map((l) => l.state),
      ["DELIVERED", "ACTIVE", "CREATED"],
    );
    for (const entry of res.logs) {
      assert.equal(entry.messageId, a);
      assert.equal(entry.url, rx.url + path);
      assert.equal(typeof entry.time, "number");
    }
    for (let i = 1; i < res.logs.length; i++) {
      assert.ok(res.logs[i - 1].time >= res.logs[i].time, "newest entry first");
    }
    // res.events is the same list (deprecated alias).
    assert.deepEqual(res.events, res.logs);
    assert.ok(!res.logs.some((l) => l.messageId === b));
  });

  test("messageIds selects several messages at once", async () => {
    const path = uniquePath("by-ids");
    const a = await publishDelivered(rx.url + path, "a");
    const b = await publishDelivered(rx.url + path, "b");
    const c = await publishDelivered(rx.url + path, "c");
    const res = await client.logs({ messageIds: [a, c] });
    const ids = new Set(res.logs.map((l) => l.messageId));
    assert.deepEqual([...ids].sort(), [a, c].sort());
    assert.equal(res.logs.length, 6);
    assert.ok(!ids.has(b));
  });

  test("state filter: DELIVERED, CREATED", async () => {
    const path = uniquePath("by-state");
    const id = await publishDelivered(rx.url + path, "s");
    const delivered = await client.logs({ filter: { messageId: id, state: "DELIVERED" } });
    assert.equal(delivered.logs.length, 1, "exactly one DELIVERED entry per delivered message");
    assert.equal(delivered.logs[0].state, "DELIVERED");
    const created = await client.logs({ filter: { messageId: id, state: "CREATED" } });
    assert.equal(created.logs.length, 1);
    assert.equal(created.logs[0].state, "CREATED");
    const failed = await client.logs({ filter: { messageId: id, state: "FAILED" } });
    assert.equal(failed.logs.length, 0);
  });

  test("url filter matches the exact destination", async () => {
    const pathA = uniquePath("url-a");
    const pathB = uniquePath("url-b");
    const a = await publishDelivered(rx.url + pathA, "a");
    await publishDelivered(rx.url + pathB, "b");
    const res = await client.logs({ filter: { url: rx.url + pathA } });
    assert.equal(res.logs.length, 3);
    assert.ok(res.logs.every((l) => l.messageId === a && l.url === rx.url + pathA));
  });

  test("pagination with count follows the cursor to the end; cursor is undefined on the last page", async () => {
    const path = uniquePath("pages");
    const url = rx.url + path;
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await publishDelivered(url, `p${i}`));

    const seen = [];
    const pageSizes = [];
    let cursor;
    let pages = 0;
    do {
      const res = await client.logs({ filter: { url }, count: 2, cursor });
      pages += 1;
      assert.ok(pages <= 20, "pagination must end");
      pageSizes.push(res.logs.length);
      assert.ok(res.logs.length <= 2, `page ${pages} has ${res.logs.length} entries (count: 2)`);
      seen.push(...res.logs);
      cursor = res.cursor;
      if (cursor !== undefined) assert.equal(typeof cursor, "string");
    } while (cursor !== undefined);

    assert.equal(seen.length, 15, `5 messages x 3 entries, pages: ${JSON.stringify(pageSizes)}`);
    const keys = seen.map((l) => `${l.messageId}/${l.state}`);
    assert.equal(new Set(keys).size, 15, "no entry is returned twice");
    assert.deepEqual([...new Set(seen.map((l) => l.messageId))].sort(), [...ids].sort());
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i - 1].time >= seen[i].time, "newest entry first across pages");
    }
    // The newest message's DELIVERED entry comes first.
    assert.equal(seen[0].messageId, ids[4]);
    assert.equal(seen[0].state, "DELIVERED");
    assert.equal(seen.at(-1).messageId, ids[0]);
    assert.equal(seen.at(-1).state, "CREATED");
  });

  test("a page that is exactly full with nothing after it has no cursor", async () => {
    const path = uniquePath("exact");
    const id = await publishDelivered(rx.url + path, "e");
    const full = await client.logs({ filter: { messageId: id }, count: 3 });
    assert.equal(full.logs.length, 3);
    assert.equal(full.cursor, undefined);
    const first = await client.logs({ filter: { messageId: id }, count: 2 });
    assert.equal(first.logs.length, 2);
    assert.equal(typeof first.cursor, "string");
    const last = await client.logs({ filter: { messageId: id }, count: 2, cursor: first.cursor });
    assert.deepEqual(
      last.logs.map((l) => l.state),
      ["CREATED"],
    );
    assert.equal(last.cursor, undefined);
  });

  test("the default page holds 100 entries and count is capped at 100", async () => {
    // testUser2 has no other traffic in this file, so its totals are exact.
    const user = USERS.testUser2;
    const c = server.client(user);
    const own = await startReceiver(user);
    try {
      const path = uniquePath("page-size");
      const ids = await Promise.all(
        Array.from({ length: 40 }, (_, i) => c.publish({ url: `${own.url}${path}?i=${i}`, body: `${i}` })),
      );
      await own.waitFor(path, 40);
      for (const { messageId } of ids) await waitForState(c, messageId, "DELIVERED");
      const firstPage = await c.logs();
      assert.equal(firstPage.logs.length, 100);
      assert.equal(typeof firstPage.cursor, "string");
      const rest = await c.logs({ cursor: firstPage.cursor });
      assert.equal(rest.logs.length, 20);
      assert.equal(rest.cursor, undefined);
      const capped = await c.logs({ count: 1000 });
      assert.equal(capped.logs.length, 100);
      assert.equal(typeof capped.cursor, "string");
      const small = await c.logs({ count: 30 });
      assert.equal(small.logs.length, 30);
      own.assertAllVerified();
    } finally {
      await own.close();
    }
  });

  test("a query that matches nothing returns an empty list and no cursor", async () => {
    const res = await client.logs({ filter: { messageId: "msg_nothing_here" } });
    assert.deepEqual(res.logs, []);
    assert.equal(res.cursor, undefined);
  });

  test("log entries of a delayed message carry nextDeliveryTime", async () => {
    const path = uniquePath("next");
    const { messageId } = await client.publish({ url: rx.url + path, body: "d", delay: 300 });
    const message = await client.messages.get(messageId);
    const res = await client.logs({ filter: { messageId } });
    assert.equal(res.logs.length, 1);
    assert.equal(res.logs[0].state, "CREATED");
    assert.equal(res.logs[0].nextDeliveryTime, message.notBefore);
    await client.messages.cancel(messageId);
  });

  test("a wrong token is rejected with 401", async () => {
    const bad = server.client({ token: "not-a-valid-token" });
    await assert.rejects(bad.logs(), (error) => error instanceof QstashError && error.status === 401);
  });
});
