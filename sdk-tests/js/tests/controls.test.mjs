// The test controls under /__qstash/ used the way a test suite would, around SDK calls: wait
// until idle instead of sleeping, deliver a delayed message now, run a schedule now, and reset
// a user's state between tests.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, messageStates, uniquePath, useServerAndReceiver } from "./helpers.mjs";

let server;
let rx;
let client;

useServerAndReceiver((c) => ({ server, rx, client } = c));

describe("test controls", () => {
  test("waitIdle returns once every delivery (and retry due now) is done", async () => {
    const path = uniquePath("idle");
    rx.script(path, { status: 500 }, { delayMs: 300 });
    const { messageId } = await client.publish({ url: rx.url + path, body: "x", retries: 1, retryDelay: "0" });
    const idle = await server.waitIdle();
    assert.deepEqual(idle, { idle: true, due: 0, inFlight: 0, gated: 0 });
    assert.equal(rx.on(path).length, 2);
    assert.equal((await messageStates(client, messageId)).at(-1), "DELIVERED");
  });

  test("a delayed message is delivered now, on request", async () => {
    const path = uniquePath("deliver-now");
    const { messageId } = await client.publish({ url: rx.url + path, body: "later", delay: "7d" });
    const res = await server.raw("POST", `/__qstash/messages/${messageId}/deliver`);
    assert.equal(res.status, 200, res.text);
    await server.waitIdle();
    const [d] = rx.on(path);
    assert.equal(d.body, "later");
  });

  test("a schedule runs now, on request, and keeps its cron", async () => {
    const path = uniquePath("run-now");
    const { scheduleId } = await client.schedules.create({ destination: rx.url + path, cron: "0 0 1 1 *", body: "tick" });
    const res = await server.raw("POST", `/__qstash/schedules/${scheduleId}/run`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.messageIds.length, 1);
    await server.waitIdle();
    const [d] = rx.on(path);
    assert.equal(d.headers["upstash-schedule-id"], scheduleId);
    assert.equal((await client.schedules.get(scheduleId)).cron, "0 0 1 1 *");
  });

  test("reset wipes the user's schedules, DLQ and logs; other users keep theirs", async () => {
    const path = uniquePath("reset");
    const other = server.client(USERS.testUser1);
    const { messageId: kept } = await other.publish({ url: rx.url + path, body: "x", delay: "1d" });
    await client.schedules.create({ destination: rx.url + path, cron: "0 0 1 1 *" });
    rx.script(path, { status: 500 });
    await client.publish({ url: rx.url + path, body: "x", retries: 0 });
    await server.waitIdle();
    assert.equal((await client.dlq.listMessages()).messages.length > 0, true);

    await server.reset();
    assert.deepEqual(await client.schedules.list(), []);
    assert.deepEqual((await client.dlq.listMessages()).messages, []);
    assert.deepEqual((await client.logs()).logs, []);
    assert.equal((await other.messages.get(kept)).messageId, kept);
    await server.reset({ all: true });
    await assert.rejects(other.messages.get(kept));
  });
});
