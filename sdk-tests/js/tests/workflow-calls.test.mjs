// context.call, waits and notifications, webhooks, invoke/serveMany and cancellation through
// @upstash/workflow 1.3.3, against the real binary.

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createWorkflow } from "@upstash/workflow/cloudflare";
import { waitUntil } from "./helpers.mjs";
import { useWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

let server;
let app;
let client;
// The server, the workflow app and a workflow client, shared by this file's tests.
const shared = useWorkflowApp();
before(async () => ({ server, app, client } = await shared.ready));

describe("context.call", () => {
  test("the third-party request goes out unchanged and its answer (even a failing one) is a step", async () => {
    const api = `${app.url}/third/orders`;
    app.script("/third/orders", { status: 201, body: JSON.stringify({ id: 9 }), headers: { "X-Api": "v2" } });
    app.script("/third/orders", { status: 503, body: "down" });
    const url = app.define("call", async (context) => {
      const ok = await context.call("create", {
        url: api,
        method: "PUT",
        body: { item: "book" },
        headers: { "X-Key": "secret", "Content-Type": "application/json" },
        timeout: 30,
      });
      const failing = await context.call("again", { url: api, method: "POST", body: "raw", retries: 0 });
      app.note(context, "done", { ok, failing });
    });
    const { workflowRunId } = await client.trigger({ url, headers: { "x-user": "dora" } });
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.equal(done.data.ok.status, 201);
    assert.deepEqual(done.data.ok.body, { id: 9 });
    assert.deepEqual(done.data.ok.header["X-Api"], ["v2"]);
    assert.equal(done.data.failing.status, 503);
    assert.equal(done.data.failing.body, "down");

    const [first, second] = app.on("/third/orders");
    assert.equal(first.method, "PUT");
    assert.equal(first.body, JSON.stringify({ item: "book" }));
    assert.equal(first.headers["x-key"], "secret");
    assert.equal(first.headers["content-type"], "application/json");
    assert.equal(second.method, "POST");
    assert.equal(second.body, "raw");
    for (const call of [first, second]) {
      assert.equal(call.headers["x-user"], undefined, "the run's headers are not for the third party");
      assert.equal(call.headers["upstash-workflow-runid"], undefined);
      assert.ok(call.headers["upstash-signature"], "third-party calls are signed like any delivery");
    }
    const { events } = (await server.raw("GET", `/v2/events?state=CREATED&url=${encodeURIComponent(api)}`)).json;
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => e.maxRetries === 0), "calls keep their own retries (0 by default)");
    assert.deepEqual(events.map((e) => e.timeout ?? null).sort(), [30000, null], "timeout: 30 s on the first call only");
    await waitForRunEnd(server, workflowRunId);
    // Init, the call step, its result; the second call, its result; and the final step.
    const calls = app.ofRun(workflowRunId);
    assert.ok(calls.every((c) => c.headers["x-user"] === "dora"), "every workflow call has the user header");
    assert.equal(calls.filter((c) => c.headers["upstash-workflow-callback"] === "true").length, 2);
  });

  test("retries of a call apply to the third party; only the final answer comes back", async () => {
    const api = `${app.url}/third/flaky`;
    app.script("/third/flaky", { status: 500, body: "1" }, { status: 500, body: "2" }, { status: 200, body: "\"third\"" });
    const url = app.define("retrying-call", async (context) => {
      const r = await context.call("flaky", { url: api, retries: 2, retryDelay: "100" });
      app.note(context, "done", r);
    });
    const { workflowRunId } = await client.trigger({ url });
    await app.waitFor("/third/flaky", 1);
    await waitUntil(async () => {
      await server.advance("1s");
      return app.on("/third/flaky").length >= 3;
    }, { what: "three attempts at the third party" });
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.equal(done.data.status, 200);
    assert.equal(done.data.body, "third");
    assert.equal(app.on("/third/flaky")[0].method, "GET");
  });
});

describe("waitForEvent and notify", () => {
  test("notify after the wait, notify before the wait (run-scoped), a timeout, getWaiters and context.notify", async () => {
    const url = app.define("waiter", async (context) => {
      const early = await context.waitForEvent("early", `early-${context.workflowRunId}`, { timeout: "1h" });
      const late = await context.waitForEvent("late", `late-${context.workflowRunId}`, { timeout: "1h" });
      const never = await context.waitForEvent("never", "never-event", { timeout: 60 });
      app.note(context, "done", { early, late, never });
    });
    const notifier = app.define("notifier", async (context) => {
      const sent = await context.notify("tell", `late-${context.requestPayload}`, { from: "workflow" });
      app.note(context, "sent", { count: sent.notifyResponse.length, eventId: sent.eventId });
    });
    const { workflowRunId } = await client.trigger({ url });
    // Before the run waits for it: stored for the run.
    await client.notify({ eventId: `early-${workflowRunId}`, eventData: "first!", workflowRunId });
    await waitUntil(async () => (await client.getWaiters({ eventId: `late-${workflowRunId}` })).length === 1, {
      what: "the second wait",
    });
    const [waiter] = await client.getWaiters({ eventId: `late-${workflowRunId}` });
    assert.equal(waiter.url, url);
    assert.ok(waiter.deadline > Date.now() / 1000);
    const { workflowRunId: notifierRun } = await client.trigger({ url: notifier, body: workflowRunId });
    const [sent] = await app.waitForNote(notifierRun, "sent");
    assert.deepEqual(sent.data, { count: 1, eventId: `late-${workflowRunId}` });
    await waitUntil(async () => (await client.getWaiters({ eventId: "never-event" })).length === 1, {
      what: "the third wait",
    });
    assert.deepEqual(await client.notify({ eventId: "nobody-waits", eventData: 1 }), []);
    await server.advance("61s");
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.deepEqual(done.data, {
      early: { eventData: "first!", timeout: false },
      late: { eventData: { from: "workflow" }, timeout: false },
      never: { eventData: undefined, timeout: true },
    });
    await waitForRunEnd(server, workflowRunId);
  });

  test("client.notify wakes every run waiting for the event", async () => {
    const url = app.define("broadcast", async (context) => {
      const got = await context.waitForEvent("wait", "shared-event");
      app.note(context, "done", got.eventData);
    });
    const runs = await client.trigger([{ url }, { url }]);
    await waitUntil(async () => (await client.getWaiters({ eventId: "shared-event" })).length === 2, {
      what: "two waiters",
    });
    const notified = await client.notify({ eventId: "shared-event", eventData: { n: 1 } });
    assert.equal(notified.length, 2);
    assert.deepEqual(notified.map((n) => n.waiter.url), [url, url]);
    for (const { workflowRunId } of runs) {
      const [done] = await app.waitForNote(workflowRunId, "done");
      assert.deepEqual(done.data, { n: 1 });
    }
  });

  test("createWebhook and waitForWebhook: any method on the hook URL, no token", async () => {
    const url = app.define("hooked", async (context) => {
      const webhook = await context.createWebhook("make hook");
      await context.run("publish hook", () => app.note(context, "hook", webhook));
      const got = await context.waitForWebhook("wait hook", webhook, "1h");
      const body = await got.request.text();
      app.note(context, "done", { method: got.request.method, body, header: got.request.headers.get("x-hub") });
    });
    const { workflowRunId } = await client.trigger({ url });
    const [hook] = await app.waitForNote(workflowRunId, "hook");
    assert.ok(hook.data.webhookUrl.startsWith(`${server.url}/v2/workflows/hooks/defaultUser/${workflowRunId}/`));
    await waitUntil(async () => (await client.getWaiters({ eventId: hook.data.eventId })).length === 1, {
      what: "the webhook wait",
    });
    const res = await fetch(hook.data.webhookUrl, { method: "PATCH", headers: { "X-Hub": "push" }, body: "payload!" });
    assert.equal(res.status, 200);
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.deepEqual(done.data, { method: "PATCH", body: "payload!", header: "push" });
  });
});

describe("invoke and serveMany", () => {
  test("an invoked workflow's result and failure come back to the parent", async () => {
    const { WorkflowNonRetryableError } = await import("@upstash/workflow");
    const child = createWorkflow(async (context) => {
      const doubled = await context.run("double", () => context.requestPayload.n * 2);
      return { doubled };
    });
    const broken = createWorkflow(async (context) => {
      await context.run("break", () => {
        throw new WorkflowNonRetryableError("child gave up");
      });
    });
    const parent = createWorkflow(async (context) => {
      const ok = await context.invoke("call child", { workflow: child, body: { n: 21 }, headers: { "x-from": "parent" } });
      const bad = await context.invoke("call broken", { workflow: broken, body: {}, retries: 0 });
      app.note(context, "done", { ok, bad: { isFailed: bad.isFailed, isCanceled: bad.isCanceled } });
    });
    const urls = app.defineMany("family", { parent, child, broken });
    const { workflowRunId } = await client.trigger({ url: urls.parent });
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.deepEqual(done.data.ok, { body: { doubled: 42 }, isFailed: false, isCanceled: false });
    assert.deepEqual(done.data.bad, { isFailed: true, isCanceled: false });
    const childCalls = app.on("/many/family/child");
    assert.ok(childCalls.length >= 2);
    assert.equal(childCalls[0].headers["x-from"], "parent");
    assert.equal(childCalls[0].headers["upstash-workflow-invoke-count"], "1");
    await waitForRunEnd(server, workflowRunId);
  });
});

describe("cancellation", () => {
  test("context.cancel, client.cancel by id, by URL prefix, by label, and all; steps of a cancelled run are refused", async () => {
    const url = app.define("cancelled", async (context) => {
      await context.run("one", () => 1);
      await context.cancel();
      await context.run("never", () => app.note(context, "ran", {}));
    });
    const { workflowRunId } = await client.trigger({ url });
    await waitForRunEnd(server, workflowRunId);
    assert.equal(app.notes(workflowRunId, "ran").length, 0);

    const sleeper = app.define("sleeper", async (context) => {
      await context.sleep("long", "1d");
      app.note(context, "woke", {});
    });
    const started = await client.trigger([
      { url: sleeper },
      { url: sleeper, label: "drop-me" },
      { url: sleeper },
      { url: sleeper },
    ]);
    const ids = started.map((s) => s.workflowRunId);
    await waitUntil(() => ids.every((id) => app.ofRun(id).some((c) => c.status === 200)), { what: "four sleeping runs" });
    assert.deepEqual(await client.cancel(ids[0]), { cancelled: 1 });
    assert.deepEqual(await client.cancel({ filter: { label: "drop-me" } }), { cancelled: 1 });
    assert.deepEqual(await client.cancel({ filter: { workflowUrlStartingWith: `${app.url}/wf/sleep` }, count: 1 }), {
      cancelled: 1,
    });
    assert.deepEqual(await client.cancel({ all: true }), { cancelled: 1 });
    assert.deepEqual(await client.cancel({ all: true }), { cancelled: 0 });
    for (const id of ids) await waitForRunEnd(server, id);
    await server.advance("25h");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(app.journal.filter((j) => j.kind === "woke").length, 0, "a cancelled run never wakes");
  });
});
