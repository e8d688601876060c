// Schedules through the official SDK: client.schedules.create/get/list/pause/resume/delete. The
// server clock is moved to nextScheduleTime so every cron tick happens at once; each produced
// delivery carries Upstash-Schedule-Id and is verified with the SDK's Receiver.

import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fromBase64, isStatus, logsWhere, uniquePath, useServerAndReceiver, waitForState, waitUntil } from "./helpers.mjs";

let server;
let rx;
let rx2;
let client;
const created = new Set();

useServerAndReceiver((c) => ({ server, rx, rx2, client } = c), { receivers: 2 });

afterEach(async () => {
  // A schedule left behind would keep firing when later tests move the clock.
  for (const id of created) await client.schedules.delete(id).catch(() => {});
  created.clear();
});

const unique = (tag) => `${tag}-${Date.now()}-${Math.random().toString(36).slice(2, 7)}`;

async function create(request) {
  const res = await client.schedules.create(request);
  created.add(res.scheduleId);
  return res.scheduleId;
}

/** Moves the server clock just past the schedule's nextScheduleTime; returns that fire time. */
async function fire(scheduleId, extraMs = 1000) {
  const { nextScheduleTime } = await client.schedules.get(scheduleId);
  assert.equal(typeof nextScheduleTime, "number", `nextScheduleTime of ${scheduleId}`);
  const { now } = await server.clock();
  await server.advance(`${Math.max(0, nextScheduleTime - now) + extraMs}ms`);
  return nextScheduleTime;
}

const waitForScheduleStates = (scheduleId, predicate, what) =>
  waitUntil(
    async () => {
      const schedule = await client.schedules.get(scheduleId);
      return predicate(schedule.lastScheduleStates ?? {}) ? schedule : false;
    },
    { what: `${what} for ${scheduleId}` },
  );

describe("schedule management", () => {
  test("create with every option; get reports them all", async () => {
    const [path, cb, fcb] = [uniquePath("full"), uniquePath("full-cb"), uniquePath("full-fcb")];
    const scheduleId = unique("full");
    const key = unique("sfc");
    const t0 = (await server.clock()).now;
    const res = await client.schedules.create({
      destination: rx.url + path,
      cron: "*/10 * * * * ",
      scheduleId,
      body: JSON.stringify({ hello: "schedule" }),
      headers: { "X-Sched": "yes" },
      method: "PUT",
      delay: 30,
      retries: 2,
      retryDelay: "1000 * (1 + retried)",
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
      timeout: 20,
      label: ["nightly", "report"],
      flowControl: { key, rate: 5, period: "1m" },
    });
    created.add(res.scheduleId);
    assert.equal(res.scheduleId, scheduleId);

    const s = await client.schedules.get(scheduleId);
    assert.equal(s.scheduleId, scheduleId);
    assert.equal(s.cron, "*/10 * * * *", "the cron expression is stored trimmed");
    assert.equal(s.destination, rx.url + path);
    assert.equal(s.method, "PUT");
    assert.deepEqual(s.header, { "Content-Type": ["application/json"], "X-Sched": ["yes"] });
    assert.equal(s.body, JSON.stringify({ hello: "schedule" }));
    assert.equal(s.retries, 2);
    assert.equal(s.retryDelayExpression, "1000 * (1 + retried)");
    assert.equal(s.delay, 30);
    assert.equal(s.timeout, 20);
    assert.equal(s.callback, rx.url + cb);
    assert.equal(s.failureCallback, rx.url + fcb);
    assert.equal(s.isPaused, false);
    assert.equal(s.flowControlKey, key);
    assert.equal(s.rate, 5);
    assert.equal(s.ratePerSecond, 5);
    assert.equal(s.period, 60);
    assert.equal(s.parallelism, undefined);
    assert.deepEqual(s.labels, ["nightly", "report"]);
    assert.equal(s.label, "nightly");
    assert.ok(s.createdAt >= t0 - 1000);
    assert.equal(typeof (s.callerIP ?? s.callerIp), "string");
    assert.ok(s.nextScheduleTime > t0, "the next tick is in the future");
    assert.equal(s.nextScheduleTime % 600_000, 0, "*/10 fires on a 10-minute boundary");
    assert.ok(s.nextScheduleTime - t0 <= 600_000 + 1000);
    assert.equal(s.lastScheduleTime, undefined, "never triggered yet");

    // The flow-control key exists as soon as the schedule referencing it is accepted.
    const info = await client.flowControl.get(key);
    assert.equal(info.rateMax, 5);
  });

  test("list returns every schedule, isPaused always present", async () => {
    const a = await create({ destination: rx.url + uniquePath("list-a"), cron: "0 0 * * *" });
    const b = await create({ destination: rx.url + uniquePath("list-b"), cron: "0 12 * * *", body: "b" });
    await client.schedules.pause({ schedule: b });
    const list = await client.schedules.list();
    assert.ok(Array.isArray(list));
    const sa = list.find((s) => s.scheduleId === a);
    const sb = list.find((s) => s.scheduleId === b);
    assert.ok(sa && sb, `both listed: ${list.map((s) => s.scheduleId)}`);
    assert.equal(sa.isPaused, false);
    assert.equal(sb.isPaused, true);
    assert.equal(sa.cron, "0 0 * * *");
    assert.equal(sb.body, "b");
    assert.equal(sa.body, undefined);
    assert.equal(sa.method, "POST");
    assert.equal(sa.retries, 3, "default retries");
    assert.match(sa.scheduleId, /^scd_/);
  });

  test("create with an existing scheduleId replaces the whole definition (body removed)", async () => {
    const scheduleId = unique("overwrite");
    const [first, second] = [uniquePath("ow-1"), uniquePath("ow-2")];
    await create({
      destination: rx.url + first,
      cron: "0 * * * *",
      scheduleId,
      body: "first body",
      headers: { "X-First": "1" },
      retries: 1,
      label: "old-label",
    });
    const again = await client.schedules.create({ destination: rx.url + second, cron: "* * * * *", scheduleId });
    assert.equal(again.scheduleId, scheduleId);
    const s = await client.schedules.get(scheduleId);
    assert.equal(s.destination, rx.url + second);
    assert.equal(s.cron, "* * * * *");
    assert.equal(s.body, undefined, "no body after an overwrite without body");
    assert.equal(s.bodyBase64, undefined);
    assert.equal(s.retries, 3);
    assert.equal(s.label, undefined);
    assert.deepEqual(s.header, { "Content-Type": ["application/json"] });
    assert.equal(s.isPaused, false);
    assert.equal((await client.schedules.list()).filter((x) => x.scheduleId === scheduleId).length, 1);

    await fire(scheduleId);
    const [d] = await rx.waitFor(second, 1);
    assert.equal(d.body, "");
    assert.equal(d.headers["x-first"], undefined);
    assert.equal(d.headers["upstash-schedule-id"], scheduleId);
    await rx.assertQuiet(first, 0, 0);
  });

  test("pause and resume (PATCH): a paused schedule skips its ticks", async () => {
    const path = uniquePath("pause");
    const scheduleId = await create({ destination: rx.url + path, cron: "* * * * *", body: "tick" });
    await client.schedules.pause({ schedule: scheduleId });
    assert.equal((await client.schedules.get(scheduleId)).isPaused, true);
    await client.schedules.pause({ schedule: scheduleId }); // idempotent
    await server.advance("61s");
    await rx.assertQuiet(path, 0, 400);
    await server.advance("60s");
    await rx.assertQuiet(path, 0, 300);

    await client.schedules.resume({ schedule: scheduleId });
    const resumed = await client.schedules.get(scheduleId);
    assert.equal(resumed.isPaused, false);
    assert.ok(resumed.nextScheduleTime > (await server.clock()).now - 1000, "resumed schedules tick in the future");
    await fire(scheduleId);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.headers["upstash-schedule-id"], scheduleId);
    await rx.assertQuiet(path, 1, 300);
  });

  test("delete removes the schedule: get is 404, it is not listed and never fires again", async () => {
    const path = uniquePath("delete");
    const scheduleId = await create({ destination: rx.url + path, cron: "* * * * *" });
    await client.schedules.delete(scheduleId);
    await assert.rejects(client.schedules.get(scheduleId), isStatus(404));
    assert.ok(!(await client.schedules.list()).some((s) => s.scheduleId === scheduleId));
    await server.advance("61s");
    await rx.assertQuiet(path, 0, 400);
  });

  test("cron semantics: names, ranges, steps, lists, Sunday as 7, day-of-month OR day-of-week, leap day, CRON_TZ", async () => {
    const { now } = await server.clock();
    const inZone = (zone, ms) => {
      const parts = Object.fromEntries(
        new Intl.DateTimeFormat("en-US", {
          timeZone: zone,
          hourCycle: "h23",
          year: "numeric",
          month: "numeric",
          day: "numeric",
          hour: "numeric",
          minute: "numeric",
          weekday: "short",
        })
          .formatToParts(new Date(ms))
          .map((p) => [p.type, p.value]),
      );
      const weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday);
      return { min: +parts.minute, hour: +parts.hour, day: +parts.day, month: +parts.month, weekday };
    };
    const utc = (ms) => {
      const d = new Date(ms);
      return {
        min: d.getUTCMinutes(),
        hour: d.getUTCHours(),
        day: d.getUTCDate(),
        month: d.getUTCMonth() + 1,
        weekday: d.getUTCDay(),
      };
    };
    // Each case: the cron expression and a predicate over the wall-clock fields it must match.
    const cases = [
      ["30 9 * * MON-FRI", (t) => t.min === 30 && t.hour === 9 && t.weekday >= 1 && t.weekday <= 5],
      ["*/20 8-10 * * *", (t) => t.min % 20 === 0 && t.hour >= 8 && t.hour <= 10],
      ["0 0 1 JAN,JUL *", (t) => t.min === 0 && t.hour === 0 && t.day === 1 && (t.month === 1 || t.month === 7)],
      ["5 4 * * 7", (t) => t.min === 5 && t.hour === 4 && t.weekday === 0],
      ["0 22 * * 1-5/2", (t) => t.min === 0 && t.hour === 22 && [1, 3, 5].includes(t.weekday)],
      ["0 0 13 * FRI", (t) => t.min === 0 && t.hour === 0 && (t.day === 13 || t.weekday === 5)],
      ["0 12 29 2 *", (t) => t.min === 0 && t.hour === 12 && t.day === 29 && t.month === 2],
      ["15,45 */6 * * *", (t) => [15, 45].includes(t.min) && t.hour % 6 === 0],
      ["CRON_TZ=Asia/Kolkata 30 0 * * *", (t) => t.min === 30 && t.hour === 0, "Asia/Kolkata"],
      ["CRON_TZ=Australia/Sydney 0 9 * * SAT", (t) => t.min === 0 && t.hour === 9 && t.weekday === 6, "Australia/Sydney"],
    ];
    for (const [cron, matches, zone] of cases) {
      let expected;
      const first = Math.floor(now / 60_000) * 60_000 + 60_000;
      for (let t = first; t < first + 5 * 366 * 86_400_000; t += 60_000) {
        if (matches(zone ? inZone(zone, t) : utc(t))) {
          expected = t;
          break;
        }
      }
      const scheduleId = await create({ destination: rx.url + uniquePath("cron"), cron });
      const { nextScheduleTime } = await client.schedules.get(scheduleId);
      assert.equal(
        new Date(nextScheduleTime).toISOString(),
        new Date(expected).toISOString(),
        `next tick of "${cron}" after ${new Date(now).toISOString()}`,
      );
    }
  });

  test("errors: invalid cron, seconds field, invalid id, unknown group, unknown schedule", async () => {
    const destination = rx.url + uniquePath("bad");
    await assert.rejects(client.schedules.create({ destination, cron: "not a cron" }), isStatus(400));
    await assert.rejects(client.schedules.create({ destination, cron: "* * * * * *" }), isStatus(400));
    await assert.rejects(client.schedules.create({ destination, cron: "61 * * * *" }), isStatus(400));
    await assert.rejects(client.schedules.create({ destination, cron: "CRON_TZ=Mars/Olympus 0 4 * * *" }), isStatus(400));
    await assert.rejects(client.schedules.create({ destination, cron: "* * * * *", scheduleId: "bad!id" }), isStatus(400));
    for (const bad of [
      { queueName: "bad queue!" },
      { callback: "not-a-url" },
      { delay: "soon" },
      { method: "FETCH" },
      { retryDelay: "foo(1)" },
      { flowControl: { key: "k", rate: 0, parallelism: 1 } },
    ]) {
      await assert.rejects(client.schedules.create({ destination, cron: "* * * * *", ...bad }), isStatus(400), JSON.stringify(bad));
    }
    await assert.rejects(client.schedules.create({ destination: unique("nogroup"), cron: "* * * * *" }), isStatus(404));
    await assert.rejects(client.schedules.get(unique("scd-missing")), isStatus(404));
    await assert.rejects(client.schedules.pause({ schedule: unique("scd-missing") }), isStatus(404));
    await assert.rejects(client.schedules.resume({ schedule: unique("scd-missing") }), isStatus(404));
  });
});

describe("schedule triggering", () => {
  test("a tick delivers a signed message with Upstash-Schedule-Id; lastScheduleStates settles to SUCCESS", async () => {
    const path = uniquePath("tick");
    const scheduleId = await create({
      destination: rx.url + path,
      cron: "* * * * *",
      body: JSON.stringify({ tick: true }),
      headers: { "X-From": "schedule" },
    });
    const fireTime = await fire(scheduleId);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.verifyError, undefined);
    assert.equal(d.method, "POST");
    assert.equal(d.headers["upstash-schedule-id"], scheduleId);
    assert.equal(d.headers["x-from"], "schedule");
    assert.equal(d.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(d.body), { tick: true });
    const messageId = d.headers["upstash-message-id"];

    await waitForState(client, messageId, "DELIVERED");
    const s = await waitForScheduleStates(scheduleId, (st) => st[messageId] === "SUCCESS", "SUCCESS");
    assert.deepEqual(s.lastScheduleStates, { [messageId]: "SUCCESS" });
    assert.equal(s.lastScheduleTime, fireTime);
    assert.equal(s.nextScheduleTime, fireTime + 60_000);

    const message = await client.messages.get(messageId);
    assert.equal(message.scheduleId, scheduleId);
    const entries = await logsWhere(client, { scheduleId });
    assert.ok(entries.length >= 3);
    assert.ok(entries.every((e) => e.scheduleId === scheduleId && e.messageId === messageId));

    // The next tick produces a new message; lastScheduleStates then only holds that one.
    await fire(scheduleId);
    const both = await rx.waitFor(path, 2);
    const second = both[1].headers["upstash-message-id"];
    assert.notEqual(second, messageId);
    const s2 = await waitForScheduleStates(scheduleId, (st) => st[second] === "SUCCESS", "SUCCESS of the 2nd tick");
    assert.deepEqual(Object.keys(s2.lastScheduleStates), [second]);
    assert.equal(s2.lastScheduleTime, fireTime + 60_000);
  });

  test("delay, retries, callback and failure callback apply to produced messages; FAIL state", async () => {
    const [path, cb, fcb] = [uniquePath("sfail"), uniquePath("sfail-cb"), uniquePath("sfail-fcb")];
    rx.script(path, { status: 500, body: "nope" });
    const scheduleId = await create({
      destination: rx.url + path,
      cron: "* * * * *",
      body: "scheduled",
      method: "PATCH",
      delay: "30s",
      retries: 0,
      callback: rx.url + cb,
      failureCallback: rx.url + fcb,
    });
    const fireTime = await fire(scheduleId);
    await rx.assertQuiet(path, 0, 400);
    const s = await client.schedules.get(scheduleId);
    assert.equal(s.lastScheduleTime, fireTime);
    const [messageId] = Object.keys(s.lastScheduleStates ?? {});
    assert.ok(messageId, "the tick produced a message");
    assert.equal(s.lastScheduleStates[messageId], "IN_PROGRESS");
    const waiting = await client.messages.get(messageId);
    assert.equal(waiting.scheduleId, scheduleId);
    assert.equal(waiting.maxRetries, 0);
    assert.equal(waiting.method, "PATCH");
    assert.ok(waiting.notBefore >= fireTime + 30_000, `notBefore ${waiting.notBefore} vs tick ${fireTime}`);

    await server.advance("31s");
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.method, "PATCH");
    assert.equal(d.headers["upstash-schedule-id"], scheduleId);
    const [c] = await rx.waitFor(cb, 1);
    const [f] = await rx.waitFor(fcb, 1);
    const cbody = JSON.parse(c.body);
    const fbody = JSON.parse(f.body);
    for (const body of [cbody, fbody]) {
      assert.equal(body.scheduleId, scheduleId);
      assert.equal(body.sourceMessageId, messageId);
      assert.equal(body.status, 500);
      assert.equal(fromBase64(body.sourceBody), "scheduled");
    }
    assert.equal(typeof fbody.dlqId, "string");
    await waitForScheduleStates(scheduleId, (st) => st[messageId] === "FAIL", "FAIL");
    const { messages } = await client.dlq.listMessages({ filter: { scheduleId } });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].scheduleId, scheduleId);
  });

  test("cancelling a produced message: lastScheduleStates keeps one of its three values; the schedule goes on", async () => {
    const path = uniquePath("scancel");
    const scheduleId = await create({ destination: rx.url + path, cron: "* * * * *", delay: 100 });
    await fire(scheduleId);
    const [messageId] = Object.keys((await client.schedules.get(scheduleId)).lastScheduleStates ?? {});
    assert.ok(messageId);
    assert.deepEqual(await client.messages.cancel(messageId), { cancelled: 1 });
    await waitForState(client, messageId, "CANCELED");
    const s = await client.schedules.get(scheduleId);
    assert.ok(["IN_PROGRESS", "SUCCESS", "FAIL"].includes(s.lastScheduleStates[messageId]), JSON.stringify(s.lastScheduleStates));
    // 101 s later the cancelled message would have been due; the next tick's (60 s after the
    // first) is due 60 s after that.
    await server.advance("101s");
    await rx.assertQuiet(path, 0, 300);
    await server.advance("60s");
    const got = await rx.waitFor(path, 1);
    assert.ok(!got.some((d) => d.headers["upstash-message-id"] === messageId));
  });

  test("CRON_TZ=America/New_York 0 4 * * * fires at 04:00 New York time", async () => {
    const path = uniquePath("tz");
    const cron = "CRON_TZ=America/New_York 0 4 * * *";
    const scheduleId = await create({ destination: rx.url + path, cron, body: "good morning" });
    const s = await client.schedules.get(scheduleId);
    assert.equal(s.cron, cron);
    const now = (await server.clock()).now;
    assert.ok(s.nextScheduleTime > now && s.nextScheduleTime <= now + 25 * 3600_000, `${s.nextScheduleTime} vs ${now}`);
    const local = new Intl.DateTimeFormat("en-US", {
      timeZone: "America/New_York",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    }).format(new Date(s.nextScheduleTime));
    assert.equal(local, "04:00:00", `nextScheduleTime ${new Date(s.nextScheduleTime).toISOString()} in New York`);

    const fireTime = await fire(scheduleId);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.body, "good morning");
    const after = await client.schedules.get(scheduleId);
    assert.equal(after.lastScheduleTime, fireTime);
    const hours = (after.nextScheduleTime - fireTime) / 3600_000;
    assert.ok([23, 24, 25].includes(hours), `next tick ${hours} h later`);
  });

  test("queueName: produced messages are enqueued to that queue", async () => {
    const path = uniquePath("squeue");
    const queueName = unique("sq");
    const scheduleId = await create({ destination: rx.url + path, cron: "* * * * *", queueName, body: "to queue" });
    assert.equal((await client.schedules.get(scheduleId)).queueName, queueName);
    await fire(scheduleId);
    const [d] = await rx.waitFor(path, 1);
    const messageId = d.headers["upstash-message-id"];
    assert.equal((await client.messages.get(messageId)).queueName, queueName);
    const entries = await logsWhere(client, { queueName });
    assert.ok(entries.length > 0 && entries.every((e) => e.messageId === messageId && e.scheduleId === scheduleId));
    assert.equal((await client.queue({ queueName }).get()).name, queueName);
  });

  test("flow control and labels are carried by produced messages", async () => {
    const path = uniquePath("sfc");
    const key = unique("sfc-key");
    const scheduleId = await create({
      destination: rx.url + path,
      cron: "* * * * *",
      flowControl: { key, parallelism: 2, rate: 10, period: 30 },
      label: "sched-label",
      delay: 60,
    });
    const s = await client.schedules.get(scheduleId);
    assert.equal(s.flowControlKey, key);
    assert.equal(s.parallelism, 2);
    assert.equal(s.rate, 10);
    assert.equal(s.period, 30);
    assert.deepEqual(s.labels, ["sched-label"]);
    await fire(scheduleId);
    const [messageId] = Object.keys((await client.schedules.get(scheduleId)).lastScheduleStates ?? {});
    assert.ok(messageId);
    const message = await client.messages.get(messageId);
    assert.equal(message.flowControlKey, key);
    assert.equal(message.parallelism, 2);
    assert.equal(message.rate, 10);
    assert.equal(message.period, 30);
    assert.deepEqual(message.labels, ["sched-label"]);
    const entries = await logsWhere(client, { label: "sched-label" });
    assert.ok(entries.some((e) => e.messageId === messageId));
    await server.advance("61s");
    await rx.waitFor(path, 1);
  });

  test("a schedule to a URL group fans out on every tick", async () => {
    const name = unique("sgrp");
    const [p1, p2] = [uniquePath("sg-1"), uniquePath("sg-2")];
    await client.urlGroups.addEndpoints({
      name,
      endpoints: [
        { name: "one", url: rx.url + p1 },
        { url: rx2.url + p2 },
      ],
    });
    const scheduleId = await create({ destination: name, cron: "* * * * *", body: "fan" });
    assert.equal((await client.schedules.get(scheduleId)).destination, name);
    await fire(scheduleId);
    const [d1] = await rx.waitFor(p1, 1);
    const [d2] = await rx2.waitFor(p2, 1);
    for (const d of [d1, d2]) {
      assert.equal(d.headers["upstash-schedule-id"], scheduleId);
      assert.equal(d.headers["upstash-topic-name"], name);
      assert.equal(d.body, "fan");
    }
    const ids = [d1, d2].map((d) => d.headers["upstash-message-id"]);
    const s = await waitForScheduleStates(
      scheduleId,
      (st) => ids.every((id) => st[id] === "SUCCESS"),
      "SUCCESS for both endpoints",
    );
    assert.equal(Object.keys(s.lastScheduleStates).length, 2);
  });

  test("a tick whose URL group was deleted produces nothing and records an error on the schedule", async () => {
    const name = unique("sgone");
    const path = uniquePath("sgone");
    await client.urlGroups.addEndpoints({ name, endpoints: [{ url: rx.url + path }] });
    const scheduleId = await create({ destination: name, cron: "* * * * *", body: "x" });
    await client.urlGroups.delete(name);
    await fire(scheduleId);
    const s = await waitUntil(
      async () => {
        const schedule = await client.schedules.get(scheduleId);
        return schedule.error ? schedule : false;
      },
      { what: `error on ${scheduleId}` },
    );
    assert.equal(typeof s.error, "string");
    await rx.assertQuiet(path, 0, 200);
  });

  test("destinations with a query string or ending in /pause, and an id named \"pause\"", async () => {
    const [p1, p2] = [uniquePath("sq"), uniquePath("jobs")];
    const withQuery = await create({ destination: `${rx.url}${p1}?a=1&b=2`, cron: "* * * * *" });
    const endsInPause = await create({ destination: `${rx.url}${p2}/pause`, cron: "* * * * *" });
    const named = await create({ destination: rx.url + uniquePath("named"), cron: "0 0 1 1 *", scheduleId: "pause" });
    assert.equal(named, "pause");
    assert.equal((await client.schedules.get(withQuery)).destination, `${rx.url}${p1}?a=1&b=2`);
    assert.equal((await client.schedules.get(endsInPause)).destination, `${rx.url}${p2}/pause`);
    await client.schedules.pause({ schedule: "pause" });
    assert.equal((await client.schedules.get("pause")).isPaused, true);
    assert.equal((await client.schedules.get(endsInPause)).isPaused, false);
    await fire(withQuery);
    const [d1] = await rx.waitFor(p1, 1);
    const [d2] = await rx.waitFor(`${p2}/pause`, 1);
    assert.equal(d1.target, `${p1}?a=1&b=2`);
    assert.equal(d1.verifyError, undefined);
    assert.equal(d2.headers["upstash-schedule-id"], endsInPause);
  });

  test("a bare-seconds timeout string (\"30\") is accepted and reported", async () => {
    const scheduleId = await create({ destination: rx.url + uniquePath("timeout"), cron: "0 0 * * *", timeout: "30" });
    assert.equal((await client.schedules.get(scheduleId)).timeout, 30);
  });

  test("redact: get shows REDACTED, the produced delivery carries the originals", async () => {
    const path = uniquePath("sredact");
    const secret = unique("sched-secret");
    const scheduleId = await create({
      destination: rx.url + path,
      cron: "* * * * *",
      body: secret,
      headers: { "X-Api-Key": "key-secret" },
      redact: { body: true, header: ["X-Api-Key"] },
    });
    const s = await client.schedules.get(scheduleId);
    assert.ok(String(s.body).startsWith("REDACTED"), `schedule body shown as ${s.body}`);
    assert.ok(!JSON.stringify(s).includes(secret));
    assert.ok(!JSON.stringify(s).includes("key-secret"));
    assert.ok(!JSON.stringify(await client.schedules.list()).includes(secret));
    await fire(scheduleId);
    const [d] = await rx.waitFor(path, 1);
    assert.equal(d.body, secret);
    assert.equal(d.headers["x-api-key"], "key-secret");
    // The produced message keeps the redaction: its logs never show the originals.
    const messageId = d.headers["upstash-message-id"];
    await waitForState(client, messageId, "DELIVERED");
    for (const entry of await logsWhere(client, { messageId })) {
      assert.ok(fromBase64(entry.body ?? "").startsWith("REDACTED"), `${entry.state}: ${entry.body}`);
      assert.ok(!JSON.stringify(entry).includes("key-secret"));
    }
  });
});
