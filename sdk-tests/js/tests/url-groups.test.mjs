// URL groups through the official SDK: client.urlGroups.addEndpoints/get/list/removeEndpoints/
// delete, and publish/publishJSON/enqueue to a group fanning out to two local receivers that
// verify every delivery with the SDK's Receiver.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isStatus, logsWhere, uniquePath, useServerAndReceiver, waitForState } from "./helpers.mjs";

let server;
let rx;
let rx2;
let client;

useServerAndReceiver((c) => ({ server, rx, rx2, client } = c), { receivers: 2 });

let groupCounter = 0;
const groupName = (tag) => `grp-${tag}-${++groupCounter}-${Math.random().toString(36).slice(2, 7)}`;

/** A group with a named endpoint on rx and an unnamed one on rx2. */
async function twoEndpointGroup(tag) {
  const name = groupName(tag);
  const p1 = uniquePath(`${tag}-a`);
  const p2 = uniquePath(`${tag}-b`);
  const endpoints = [
    { name: "first", url: rx.url + p1 },
    { url: rx2.url + p2 },
  ];
  await client.urlGroups.addEndpoints({ name, endpoints });
  return { name, p1, p2, u1: rx.url + p1, u2: rx2.url + p2 };
}

describe("url group management", () => {
  test("addEndpoints creates the group; get returns exactly {name, url} / {url} endpoints", async () => {
    const before = (await server.clock()).now;
    const g = await twoEndpointGroup("create");
    const group = await client.urlGroups.get(g.name);
    assert.equal(group.name, g.name);
    assert.equal(typeof group.createdAt, "number");
    assert.equal(typeof group.updatedAt, "number");
    assert.ok(group.createdAt >= before - 1000, `createdAt ${group.createdAt} should be recent (${before})`);
    assert.ok(group.updatedAt >= group.createdAt);
    assert.deepEqual(group.endpoints, [{ name: "first", url: g.u1 }, { url: g.u2 }]);
  });

  test("addEndpoints on an existing group adds new URLs and updates the name of a known URL", async () => {
    const g = await twoEndpointGroup("upsert");
    const created = await client.urlGroups.get(g.name);
    const p3 = uniquePath("upsert-c");
    await server.advance("5s");
    await client.urlGroups.addEndpoints({
      name: g.name,
      endpoints: [
        { name: "renamed", url: g.u1 },
        { name: "third", url: rx.url + p3 },
      ],
    });
    const group = await client.urlGroups.get(g.name);
    assert.equal(group.endpoints.length, 3, JSON.stringify(group.endpoints));
    assert.deepEqual(
      [...group.endpoints].sort((a, b) => a.url.localeCompare(b.url)),
      [{ name: "renamed", url: g.u1 }, { url: g.u2 }, { name: "third", url: rx.url + p3 }].sort((a, b) =>
        a.url.localeCompare(b.url),
      ),
    );
    assert.equal(group.createdAt, created.createdAt);
    assert.ok(group.updatedAt > created.updatedAt, `updatedAt ${group.updatedAt} > ${created.updatedAt}`);
  });

  test("list contains every group with its endpoints", async () => {
    const g1 = await twoEndpointGroup("list1");
    const g2 = await twoEndpointGroup("list2");
    const groups = await client.urlGroups.list();
    assert.ok(Array.isArray(groups));
    for (const g of [g1, g2]) {
      const found = groups.find((x) => x.name === g.name);
      assert.ok(found, `${g.name} missing from list`);
      assert.deepEqual(found.endpoints, [{ name: "first", url: g.u1 }, { url: g.u2 }]);
      assert.equal(typeof found.createdAt, "number");
      assert.equal(typeof found.updatedAt, "number");
    }
  });

  test("removeEndpoints by url and by name; removing the last endpoint deletes the group", async () => {
    const g = await twoEndpointGroup("remove");
    await client.urlGroups.removeEndpoints({ name: g.name, endpoints: [{ url: g.u2 }] });
    assert.deepEqual((await client.urlGroups.get(g.name)).endpoints, [{ name: "first", url: g.u1 }]);

    await client.urlGroups.removeEndpoints({ name: g.name, endpoints: [{ name: "first" }] });
    // The Python SDK documents: "If all endpoints have been removed, the url group will be deleted."
    await assert.rejects(client.urlGroups.get(g.name), isStatus(404));
    assert.ok(!(await client.urlGroups.list()).some((x) => x.name === g.name));
  });

  test("delete removes the group; get and removeEndpoints then answer 404, delete again is fine", async () => {
    const g = await twoEndpointGroup("delete");
    await client.urlGroups.delete(g.name);
    await assert.rejects(client.urlGroups.get(g.name), isStatus(404));
    assert.ok(!(await client.urlGroups.list()).some((x) => x.name === g.name));
    await assert.rejects(
      client.urlGroups.removeEndpoints({ name: g.name, endpoints: [{ url: g.u1 }] }),
      isStatus(404),
    );
    // Deleting an unknown group is accepted (the Python SDK's own tests rely on it).
    await client.urlGroups.delete(g.name);
  });

  test("invalid group names and endpoint URLs are rejected with 400", async () => {
    await assert.rejects(
      client.urlGroups.addEndpoints({ name: "bad!name", endpoints: [{ url: rx.url + "/x" }] }),
      isStatus(400),
    );
    await assert.rejects(
      client.urlGroups.addEndpoints({ name: groupName("badurl"), endpoints: [{ url: "ftp://example.com/x" }] }),
      isStatus(400),
    );
    await assert.rejects(
      client.urlGroups.addEndpoints({ name: groupName("badurl2"), endpoints: [{ url: "not a url" }] }),
      isStatus(400),
    );
  });
});

describe("publishing to a url group", () => {
  test("publish fans out: [{messageId, url}] in endpoint order, one signed delivery per endpoint", async () => {
    const g = await twoEndpointGroup("fanout");
    const res = await client.publish({
      urlGroup: g.name,
      body: "to everyone",
      headers: { "Content-Type": "text/plain", "X-Fan": "out" },
    });
    assert.ok(Array.isArray(res), `expected an array, got ${JSON.stringify(res)}`);
    assert.equal(res.length, 2);
    assert.deepEqual(
      res.map((r) => r.url),
      [g.u1, g.u2],
    );
    for (const r of res) assert.match(r.messageId, /^msg_/);
    assert.notEqual(res[0].messageId, res[1].messageId);

    const [d1] = await rx.waitFor(g.p1, 1);
    const [d2] = await rx2.waitFor(g.p2, 1);
    await rx.assertQuiet(g.p1, 1, 200);
    await rx2.assertQuiet(g.p2, 1, 0);
    for (const [d, r] of [
      [d1, res[0]],
      [d2, res[1]],
    ]) {
      assert.equal(d.verifyError, undefined);
      assert.equal(d.body, "to everyone");
      assert.equal(d.headers["upstash-topic-name"], g.name);
      assert.equal(d.headers["upstash-message-id"], r.messageId);
      assert.equal(d.headers["x-fan"], "out");
      assert.equal(d.headers["content-type"], "text/plain");
    }
  });

  test("messages.get and the logs carry topicName / endpointName; logs filter by urlGroup", async () => {
    const g = await twoEndpointGroup("meta");
    const res = await client.publish({ urlGroup: g.name, body: "later", delay: 300 });
    const [m1, m2] = await Promise.all(res.map((r) => client.messages.get(r.messageId)));
    assert.equal(m1.url, g.u1);
    assert.equal(m1.topicName, g.name);
    assert.equal(m1.urlGroup, g.name); // the SDK's alias
    assert.equal(m1.endpointName, "first");
    assert.equal(m2.url, g.u2);
    assert.equal(m2.topicName, g.name);
    assert.equal(m2.endpointName, undefined);

    await server.advance("310s");
    await rx.waitFor(g.p1, 1);
    await rx2.waitFor(g.p2, 1);
    for (const r of res) await waitForState(client, r.messageId, "DELIVERED");

    const entries = await logsWhere(client, { urlGroup: g.name });
    assert.deepEqual(new Set(entries.map((e) => e.messageId)), new Set(res.map((r) => r.messageId)));
    assert.equal(entries.length, 6, `CREATED/ACTIVE/DELIVERED for each: ${entries.map((e) => e.state)}`);
    for (const entry of entries) {
      assert.equal(entry.topicName, g.name);
      assert.equal(entry.urlGroup, g.name);
      if (entry.messageId === res[0].messageId) {
        assert.equal(entry.url, g.u1);
        assert.equal(entry.endpointName, "first");
      } else {
        assert.equal(entry.url, g.u2);
        assert.equal(entry.endpointName, undefined);
      }
    }
  });

  test("publishJSON to a group delivers the JSON body to every endpoint", async () => {
    const g = await twoEndpointGroup("json");
    const payload = { hello: "group", n: 2 };
    const res = await client.publishJSON({ urlGroup: g.name, body: payload });
    assert.equal(res.length, 2);
    const [d1] = await rx.waitFor(g.p1, 1);
    const [d2] = await rx2.waitFor(g.p2, 1);
    for (const d of [d1, d2]) {
      assert.equal(d.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(d.body), payload);
      assert.equal(d.headers["upstash-topic-name"], g.name);
    }
  });

  test("each endpoint retries independently: one fails and retries, the other is delivered once", async () => {
    const g = await twoEndpointGroup("indep");
    rx.script(g.p1, { status: 500 });
    const res = await client.publish({ urlGroup: g.name, body: "x", retries: 1 });
    await waitForState(client, res[0].messageId, "RETRY");
    await waitForState(client, res[1].messageId, "DELIVERED");
    await server.advance("13s");
    const attempts = await rx.waitFor(g.p1, 2);
    assert.deepEqual(
      attempts.map((a) => a.headers["upstash-retried"]),
      ["0", "1"],
    );
    await waitForState(client, res[0].messageId, "DELIVERED");
    await rx2.assertQuiet(g.p2, 1, 100);
  });

  test("a group publish with a deduplicationId answers the original array, flagged deduplicated", async () => {
    const g = await twoEndpointGroup("dedup");
    const deduplicationId = `grp-dedup-${Date.now()}`;
    const first = await client.publish({ urlGroup: g.name, body: "once", deduplicationId });
    const second = await client.publish({ urlGroup: g.name, body: "once", deduplicationId });
    assert.deepEqual(
      second.map((r) => [r.messageId, r.url]),
      first.map((r) => [r.messageId, r.url]),
    );
    for (const r of second) assert.equal(r.deduplicated, true);
    await rx.waitFor(g.p1, 1);
    await rx2.waitFor(g.p2, 1);
    await rx.assertQuiet(g.p1, 1, 300);
    await rx2.assertQuiet(g.p2, 1, 0);
  });

  test("queue.enqueue to a group returns the array and delivers to every endpoint", async () => {
    const g = await twoEndpointGroup("enqueue");
    const queueName = `q-grp-${Date.now()}`;
    const res = await client.queue({ queueName }).enqueue({ urlGroup: g.name, body: "queued" });
    assert.ok(Array.isArray(res));
    assert.deepEqual(
      res.map((r) => r.url),
      [g.u1, g.u2],
    );
    const [d1] = await rx.waitFor(g.p1, 1);
    const [d2] = await rx2.waitFor(g.p2, 1);
    assert.equal(d1.headers["upstash-topic-name"], g.name);
    assert.equal(d2.headers["upstash-topic-name"], g.name);
    const entries = await logsWhere(client, { queueName });
    assert.deepEqual(new Set(entries.map((e) => e.messageId)), new Set(res.map((r) => r.messageId)));
    await client.queue({ queueName }).delete();
  });

  test("later changes to the group do not affect messages already created", async () => {
    const g = await twoEndpointGroup("snapshot");
    const res = await client.publish({ urlGroup: g.name, body: "snap", delay: 60 });
    await client.urlGroups.removeEndpoints({ name: g.name, endpoints: [{ url: g.u2 }] });
    await server.advance("61s");
    await rx.waitFor(g.p1, 1);
    await rx2.waitFor(g.p2, 1);
    for (const r of res) await waitForState(client, r.messageId, "DELIVERED");
    // A new publish only reaches the remaining endpoint.
    const again = await client.publish({ urlGroup: g.name, body: "after" });
    assert.equal(again.length, 1);
    assert.equal(again[0].url, g.u1);
    await rx.waitFor(g.p1, 2);
    await rx2.assertQuiet(g.p2, 1, 300);
  });

  test("an endpoint URL with a query string is called and signed exactly as registered", async () => {
    const name = groupName("query.name_1");
    const path = uniquePath("eq");
    const url = `${rx.url}${path}?a=1&b=x%20y`;
    await client.urlGroups.addEndpoints({ name, endpoints: [{ url }] });
    assert.deepEqual((await client.urlGroups.get(name)).endpoints, [{ url }]);
    const [res] = await client.publish({ urlGroup: name, body: "q" });
    assert.equal(res.url, url);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.target, `${path}?a=1&b=x%20y`);
    assert.equal(d.url, url);
    assert.equal(d.verifyError, undefined);
  });

  test("publishing to an unknown group fails with 404 and creates nothing", async () => {
    const name = groupName("unknown");
    await assert.rejects(client.publish({ urlGroup: name, body: "x" }), isStatus(404));
    await assert.rejects(client.publishJSON({ urlGroup: name, body: { a: 1 } }), isStatus(404));
    await assert.rejects(client.queue({ queueName: `q-${name}` }).enqueue({ urlGroup: name, body: "x" }), isStatus(404));
    const entries = await logsWhere(client, { urlGroup: name });
    assert.equal(entries.length, 0);
  });
});
