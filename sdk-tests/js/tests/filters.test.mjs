// Filter-based bulk actions and multi-value filters of the official SDK: messages.cancel({filter}),
// logs filters (label arrays, host/path, fromDate/toDate), dlq.listMessages/retry/delete with
// filters and {all: true}.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, messageStates, startReceiver, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

const unique = (name) => uniquePath(name).slice(1);

async function failNow(c, receiver, path, extra = {}) {
  receiver.script(path, { status: 500, body: `boom ${path}` });
  const { messageId } = await c.publish({ url: receiver.url + path, body: `body ${path}`, retries: 0, ...extra });
  await waitForState(c, messageId, "FAILED");
  const { messages } = await c.dlq.listMessages({ filter: { messageId } });
  assert.equal(messages.length, 1);
  return { messageId, dlqId: messages[0].dlqId };
}

describe("messages.cancel with filters", () => {
  test("by label cancels only the labelled pending messages", async () => {
    const label = unique("cancel-label");
    const path = uniquePath("cancel-label");
    const labelled = [];
    for (let i = 0; i < 3; i++) {
      labelled.push((await client.publish({ url: rx.url + path, body: `l${i}`, label, delay: 600 })).messageId);
    }
    const other = (await client.publish({ url: rx.url + path, body: "other", label: `${label}-x`, delay: 600 }))
      .messageId;
    const result = await client.messages.cancel({ filter: { label } });
    assert.equal(result.cancelled, 3);
    for (const id of labelled) await waitForState(client, id, "CANCELED");
    assert.equal((await client.messages.get(other)).messageId, other);
    await server.advance("700s");
    const [got] = await rx.waitFor(path, 1);
    await rx.assertQuiet(path, 1, 300);
    assert.equal(got.body, "other");
  });

  test("by url (several values) and by path", async () => {
    const pathA = uniquePath("cancel-url-a");
    const pathB = uniquePath("cancel-url-b");
    const pathC = uniquePath("cancel-url-c");
    const a = (await client.publish({ url: rx.url + pathA, body: "a", delay: 600 })).messageId;
    const b = (await client.publish({ url: rx.url + pathB, body: "b", delay: 600 })).messageId;
    const c = (await client.publish({ url: rx.url + pathC, body: "c", delay: 600 })).messageId;
    const byUrl = await client.messages.cancel({ filter: { url: [rx.url + pathA, rx.url + pathB] } });
    assert.equal(byUrl.cancelled, 2);
    await waitForState(client, a, "CANCELED");
    await waitForState(client, b, "CANCELED");
    assert.ok(!(await messageStates(client, c)).includes("CANCELED"));
    const byPath = await client.messages.cancel({ filter: { path: pathC } });
    assert.equal(byPath.cancelled, 1);
    await waitForState(client, c, "CANCELED");
  });
});

describe("bulk cancel of many messages", () => {
  // @upstash/qstash 2.12.0 sends `count=100` with cancel({all: true}) and cancel({filter}).
  // The server honours `count` (the official SDK suites expect cancel({all: true, count: 1})
  // to cancel one; issue 8), so more than 100 pending messages take more than one call, as
  // with the older SDKs that loop until `cancelled` is 0.
  test("cancel({all: true}) cancels at most 100 (the SDK's default count) per call; looping cancels everything", async () => {
    const c = server.client(USERS.testUser1);
    try {
      const ids = [];
      for (let i = 0; i < 130; i++) {
        ids.push((await c.publish({ url: `${rx.url}/never-${i}`, body: "x", delay: 600 })).messageId);
      }
      const first = await c.messages.cancel({ all: true });
      const second = await c.messages.cancel({ all: true });
      const third = await c.messages.cancel({ all: true });
      assert.deepEqual(
        [first.cancelled, second.cancelled, third.cancelled],
        [100, 30, 0],
        "100 per call, oldest first, until nothing is left",
      );
      await server.advance("700s");
      for (let i = 0; i < 130; i += 43) await rx.assertQuiet(`/never-${i}`, 0, 50);
    } finally {
      // Whatever the outcome, leave nothing pending for the tests that follow.
      for (let i = 0; i < 5; i++) if ((await c.messages.cancel({ all: true })).cancelled === 0) break;
    }
  });
});

describe("dlq bulk actions with count and cursor", () => {
  test("dlq.delete({all: true, count}) and dlq.retry({all: true, count}) page with a cursor until it is undefined", async () => {
    const user = USERS.testUser3;
    const c = server.client(user);
    const own = await startReceiver(user);
    try {
      const path = uniquePath("dlq-cursor");
      for (let i = 0; i < 5; i++) await failNow(c, own, path);

      let deleted = 0;
      let cursor;
      let calls = 0;
      do {
        const res = await c.dlq.delete({ all: true, count: 2, cursor });
        calls += 1;
        assert.ok(calls <= 10, "the cursor loop must end");
        assert.ok(res.deleted <= 2, `count: 2 caps each call, got ${res.deleted}`);
        deleted += res.deleted;
        cursor = res.cursor;
      } while (cursor);
      assert.equal(deleted, 5);
      assert.equal((await c.dlq.listMessages()).messages.length, 0);

      for (let i = 0; i < 3; i++) await failNow(c, own, path);
      const retried = [];
      cursor = undefined;
      calls = 0;
      do {
        const res = await c.dlq.retry({ all: true, count: 2, cursor });
        calls += 1;
        assert.ok(calls <= 10, "the cursor loop must end");
        assert.ok(res.responses.length <= 2);
        retried.push(...res.responses.map((r) => r.messageId));
        cursor = res.cursor;
      } while (cursor);
      assert.equal(retried.length, 3);
      assert.equal(new Set(retried).size, 3);
      for (const id of retried) await waitForState(c, id, "DELIVERED");
      assert.equal((await c.dlq.listMessages()).messages.length, 0);
      own.assertAllVerified();
    } finally {
      await own.close();
    }
  });
});

describe("logs with filters", () => {
  test("several labels are OR-ed", async () => {
    const l1 = unique("lbl-a");
    const l2 = unique("lbl-b");
    const path = uniquePath("lbl");
    const a = (await client.publish({ url: rx.url + path, body: "a", label: l1 })).messageId;
    const b = (await client.publish({ url: rx.url + path, body: "b", label: l2 })).messageId;
    const c = (await client.publish({ url: rx.url + path, body: "c", label: unique("lbl-c") })).messageId;
    for (const id of [a, b, c]) await waitForState(client, id, "DELIVERED");
    const res = await client.logs({ filter: { label: [l1, l2] } });
    assert.deepEqual([...new Set(res.logs.map((l) => l.messageId))].sort(), [a, b].sort());
  });

  test("host and path filters", async () => {
    const path = uniquePath("hostpath");
    const id = (await client.publish({ url: `${rx.url}${path}?q=1`, body: "h" })).messageId;
    await waitForState(client, id, "DELIVERED");
    const byPath = await client.logs({ filter: { path } });
    assert.deepEqual([...new Set(byPath.logs.map((l) => l.messageId))], [id]);
    const byHostAndPath = await client.logs({ filter: { host: "127.0.0.1", path } });
    assert.equal(byHostAndPath.logs.length, 3);
    const wrongHost = await client.logs({ filter: { host: "example.com", path } });
    assert.equal(wrongHost.logs.length, 0);
  });

  test("fromDate / toDate bound the entries by time (server clock, ms)", async () => {
    const path = uniquePath("dates");
    const url = rx.url + path;
    const early = (await client.publish({ url, body: "early" })).messageId;
    await waitForState(client, early, "DELIVERED");
    await server.advance("60s");
    const boundary = (await server.clock()).now;
    await server.advance("60s");
    const late = (await client.publish({ url, body: "late" })).messageId;
    await waitForState(client, late, "DELIVERED");

    const from = await client.logs({ filter: { url, fromDate: boundary } });
    assert.deepEqual([...new Set(from.logs.map((l) => l.messageId))], [late]);
    assert.equal(from.logs.length, 3);
    const to = await client.logs({ filter: { url, toDate: boundary } });
    assert.deepEqual([...new Set(to.logs.map((l) => l.messageId))], [early]);
    assert.equal(to.logs.length, 3);
    const both = await client.logs({ filter: { url, fromDate: new Date(boundary - 1), toDate: new Date(boundary + 1) } });
    assert.equal(both.logs.length, 0);
  });
});

describe("dlq with filters", () => {
  test("listMessages by label, by responseStatus and by several urls", async () => {
    const label = unique("dlq-label");
    const pathA = uniquePath("dlq-fa");
    const pathB = uniquePath("dlq-fb");
    const a = await failNow(client, rx, pathA, { label });
    const b = await failNow(client, rx, pathB);
    const byLabel = await client.dlq.listMessages({ filter: { label } });
    assert.deepEqual(
      byLabel.messages.map((m) => m.dlqId),
      [a.dlqId],
    );
    assert.equal(byLabel.messages[0].label, label);
    const byUrls = await client.dlq.listMessages({ filter: { url: [rx.url + pathA, rx.url + pathB] } });
    assert.deepEqual(byUrls.messages.map((m) => m.dlqId).sort(), [a.dlqId, b.dlqId].sort());
    const byStatus = await client.dlq.listMessages({ filter: { url: rx.url + pathA, responseStatus: 500 } });
    assert.equal(byStatus.messages.length, 1);
    const wrongStatus = await client.dlq.listMessages({ filter: { url: rx.url + pathA, responseStatus: [502, 503] } });
    assert.equal(wrongStatus.messages.length, 0);
  });

  test("dlq.retry({filter}) retries every matching entry", async () => {
    const path = uniquePath("dlq-retry-filter");
    const a = await failNow(client, rx, path);
    const b = await failNow(client, rx, path);
    const other = await failNow(client, rx, uniquePath("dlq-retry-other"));
    const result = await client.dlq.retry({ filter: { url: rx.url + path } });
    assert.equal(result.responses.length, 2);
    assert.equal(result.cursor, undefined);
    await rx.waitFor(path, 4);
    for (const r of result.responses) await waitForState(client, r.messageId, "DELIVERED");
    assert.equal((await client.dlq.listMessages({ dlqIds: [a.dlqId, b.dlqId] })).messages.length, 0);
    assert.equal((await client.dlq.listMessages({ dlqIds: [other.dlqId] })).messages.length, 1);
  });

  test("dlq.delete({filter}) deletes every matching entry", async () => {
    const label = unique("dlq-del-label");
    const path = uniquePath("dlq-del-filter");
    await failNow(client, rx, path, { label });
    await failNow(client, rx, path, { label });
    const kept = await failNow(client, rx, path);
    const result = await client.dlq.delete({ filter: { label } });
    assert.equal(result.deleted, 2);
    const left = await client.dlq.listMessages({ filter: { url: rx.url + path } });
    assert.deepEqual(
      left.messages.map((m) => m.dlqId),
      [kept.dlqId],
    );
  });

  test("dlq.retry({all: true}) retries the whole DLQ of the caller only", async () => {
    const other = server.client(USERS.testUser2);
    const otherRx = await startReceiver(USERS.testUser2);
    try {
      const mine = await failNow(client, rx, uniquePath("dlq-all-mine"));
      const path = uniquePath("dlq-all-retry");
      await failNow(other, otherRx, path);
      await failNow(other, otherRx, path);
      const result = await other.dlq.retry({ all: true });
      assert.equal(result.responses.length, 2);
      await otherRx.waitFor(path, 4);
      assert.equal((await other.dlq.listMessages()).messages.length, 0);
      assert.equal((await client.dlq.listMessages({ dlqIds: [mine.dlqId] })).messages.length, 1);
      otherRx.assertAllVerified();
    } finally {
      await otherRx.close();
    }
  });
});
