// Run logs, the workflow DLQ and recovery through @upstash/workflow 1.3.3's Client:
// client.logs() for successful, parallel, sleeping, waiting, calling, invoked, cancelled and
// failed runs, field by field; paging to the end; the failure function's state; and the DLQ
// life cycle: fail → list → resume (the run then completes) / restart / delete, and a failed
// failure function retried.

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/workflow";
import { createWorkflow } from "@upstash/workflow/cloudflare";
import { Client as QStashClient } from "@upstash/qstash";
import { USERS, sleep, waitUntil } from "./helpers.mjs";
import { useWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

let server;
let app;
let client;
// The server, the workflow app and a workflow client, shared by this file's tests.
const shared = useWorkflowApp();
before(async () => ({ server, app, client } = await shared.ready));

/** The run's log entry (there is exactly one run with this id). */
async function runLog(workflowRunId) {
  const { runs, cursor } = await client.logs({ filter: { workflowRunId } });
  assert.equal(runs.length, 1, `one run ${workflowRunId}`);
  assert.equal(cursor, undefined, "a single page has no cursor");
  return runs[0];
}

async function waitForLog(workflowRunId, cond, what) {
  let last;
  await waitUntil(async () => {
    last = await runLog(workflowRunId);
    return cond(last);
  }, { what: `${what} (last: ${JSON.stringify(last)})` });
  return last;
}

const stepsOf = (run, type) => run.steps.filter((g) => g.type === type).flatMap((g) => g.steps);
const named = (run, name) => run.steps.flatMap((g) => g.steps).find((s) => s.stepName === name);

/** Advances the clock until `cond()` holds (each retry is planned after the previous answer). */
async function advanceUntil(by, cond, what) {
  await waitUntil(async () => {
    if (await cond()) return true;
    await server.advance(by);
    return false;
  }, { what, interval: 50 });
}

describe("client.logs", () => {
  test("a successful run: initial payload, sequential and parallel steps, a sleep, the response and the run's configuration", async () => {
    const url = app.define("logged", async (context) => {
      await context.run("first", () => "a");
      await Promise.all([context.run("p1", () => 1), context.run("p2", () => ({ two: 2 }))]);
      await context.sleep("nap", 5);
      app.note(context, "woke", {});
      return { ok: true };
    });
    const key = `logs-flow-${Date.now()}`;
    const { workflowRunId } = await client.trigger({
      url,
      body: { n: 1 },
      headers: { "x-user": "lee" },
      label: "logs-ok",
      flowControl: { key, parallelism: 5 },
      retries: 2,
    });
    // Once the call that recorded the sleep has been answered, only the sleep's message is left.
    const sleeping = await waitForLog(
      workflowRunId,
      (r) => named(r, "nap") && stepsOf(r, "next").length === 1 && stepsOf(r, "next")[0].messageId === named(r, "nap").messageId,
      "the sleep step as the only message in flight",
    );
    assert.equal(sleeping.workflowState, "RUN_STARTED");
    assert.equal(sleeping.workflowRunCompletedAt, undefined);
    const [pending] = stepsOf(sleeping, "next");
    assert.equal(pending.state, "STEP_PROGRESS");
    assert.equal(pending.retries, 2);

    await advanceUntil("6s", () => app.notes(workflowRunId, "woke").length > 0, "the end of the nap");
    await waitForRunEnd(server, workflowRunId);
    const run = await runLog(workflowRunId);
    assert.equal(run.workflowRunId, workflowRunId);
    assert.equal(run.workflowUrl, url);
    assert.equal(run.workflowState, "RUN_SUCCESS");
    assert.equal(typeof run.workflowRunCreatedAt, "number");
    assert.ok(run.workflowRunCompletedAt >= run.workflowRunCreatedAt);
    assert.equal(run.workflowRunResponse, JSON.stringify({ ok: true }));
    assert.equal(run.label, "logs-ok");
    assert.deepEqual(run.labels, ["logs-ok"]);
    assert.equal(run.flowControlKey, key);
    assert.equal(run.workflowRunCallerIp, "127.0.0.1");
    assert.equal(run.invoker, undefined);
    assert.equal(run.failureFunction, undefined);
    assert.equal(run.dlqId, undefined);
    assert.deepEqual(run.steps.map((g) => g.type), ["sequential", "sequential", "parallel", "sequential"]);

    const [init] = run.steps[0].steps;
    assert.equal(init.stepType, "Initial");
    assert.equal(init.stepId, 0);
    assert.equal(init.out, JSON.stringify({ n: 1 }));
    assert.equal(init.messageId, app.ofRun(workflowRunId)[0].headers["upstash-message-id"]);

    const [first] = run.steps[1].steps;
    assert.deepEqual(
      { ...first, messageId: typeof first.messageId, createdAt: typeof first.createdAt },
      {
        stepId: 1,
        stepName: "first",
        stepType: "Run",
        callType: "step",
        messageId: "string",
        out: JSON.stringify("a"),
        concurrent: 1,
        state: "STEP_SUCCESS",
        createdAt: "number",
        retries: 2,
        headers: first.headers,
      },
    );
    assert.deepEqual(first.headers["X-User"] ?? first.headers["x-user"], ["lee"]);

    const parallel = run.steps[2].steps;
    assert.deepEqual(parallel.map((s) => [s.stepName, s.concurrent, s.out]).sort(), [
      ["p1", 2, "1"],
      ["p2", 2, JSON.stringify({ two: 2 })],
    ]);
    assert.deepEqual(parallel.map((s) => s.stepId).sort(), [2, 3]);
    const [nap] = run.steps[3].steps;
    assert.equal(nap.stepType, "SleepFor");
    assert.equal(nap.sleepFor, 5);
  });

  test("a waiting run shows its wait; the event's step carries the event, a call its request and response", async () => {
    app.script("/third/logged", { status: 201, body: JSON.stringify({ id: 7 }), headers: { "X-Api": "v1" } });
    const url = app.define("waits-and-calls", async (context) => {
      const got = await context.waitForEvent("wait", `evt-${context.workflowRunId}`, { timeout: "1h" });
      const r = await context.call("order", {
        url: `${app.url}/third/logged`,
        method: "PUT",
        body: { item: "pen" },
        headers: { "X-Key": "k" },
      });
      app.note(context, "done", { got: got.eventData, status: r.status });
    });
    const { workflowRunId } = await client.trigger({ url });
    const eventId = `evt-${workflowRunId}`;
    const waiting = await waitForLog(workflowRunId, (r) => stepsOf(r, "next").some((s) => s.waitEventId), "the wait");
    const wait = stepsOf(waiting, "next").find((s) => s.waitEventId);
    assert.equal(wait.stepName, "wait");
    assert.equal(wait.stepType, "Wait");
    assert.equal(wait.state, "STEP_PROGRESS");
    assert.equal(wait.waitEventId, eventId);
    assert.equal(wait.waitTimeoutDuration, "1h");
    assert.ok(Math.abs(wait.waitTimeoutDeadline - (Date.now() + 3600_000)) < 60_000, "deadline in an hour (ms)");

    await client.notify({ eventId, eventData: { hello: "there" } });
    await app.waitForNote(workflowRunId, "done");
    await waitForRunEnd(server, workflowRunId);
    const run = await runLog(workflowRunId);
    const waited = named(run, "wait");
    assert.equal(waited.stepType, "Wait");
    assert.equal(waited.waitEventId, eventId);
    assert.equal(waited.waitTimeout, false);
    assert.equal(waited.waitTimeoutDuration, "1h");
    assert.equal(waited.waitTimeoutDeadline, wait.waitTimeoutDeadline);
    assert.deepEqual(JSON.parse(Buffer.from(waited.out, "base64").toString()), { hello: "there" });
    const call = named(run, "order");
    assert.equal(call.stepType, "Call");
    assert.equal(call.callUrl, `${app.url}/third/logged`);
    assert.equal(call.callMethod, "PUT");
    assert.deepEqual(call.callBody, { item: "pen" });
    assert.deepEqual(call.callHeaders["X-Key"], ["k"]);
    assert.equal(call.callResponseStatus, 201);
    assert.deepEqual(call.callResponseBody, { id: 7 });
    assert.deepEqual(call.callResponseHeaders["X-Api"], ["v1"]);
  });

  test("parallel calls: each result shows its own request", async () => {
    app.script("/third/par-a", { status: 200, body: "A", delayMs: 100 });
    app.script("/third/par-b", { status: 201, body: "B" });
    const url = app.define("parallel-calls", async (context) => {
      const [a, b] = await Promise.all([
        context.call("ca", { url: `${app.url}/third/par-a`, method: "POST", body: "bodyA" }),
        context.call("cb", { url: `${app.url}/third/par-b`, method: "PUT", body: "bodyB" }),
      ]);
      app.note(context, "done", [a.status, b.status]);
    });
    const { workflowRunId } = await client.trigger({ url });
    await app.waitForNote(workflowRunId, "done");
    await waitForRunEnd(server, workflowRunId);
    const run = await runLog(workflowRunId);
    const [group] = run.steps.filter((g) => g.type === "parallel");
    assert.deepEqual(group.steps.map((s) => s.stepName).sort(), ["ca", "cb"]);
    const ca = named(run, "ca");
    const cb = named(run, "cb");
    assert.deepEqual([ca.callUrl, ca.callMethod, ca.callBody, ca.callResponseStatus, ca.callResponseBody], [`${app.url}/third/par-a`, "POST", "bodyA", 200, "A"]);
    assert.deepEqual([cb.callUrl, cb.callMethod, cb.callBody, cb.callResponseStatus, cb.callResponseBody], [`${app.url}/third/par-b`, "PUT", "bodyB", 201, "B"]);
  });

  test("the plain logs follow a run message by message (by run id or workflow URL), the server's own steps included", async () => {
    const url = app.define("followed", async (context) => {
      await context.run("first", () => 1);
      await context.waitForEvent("wait", `follow-${context.workflowRunId}`, { timeout: "1h" });
      app.note(context, "done", {});
    });
    const { workflowRunId } = await client.trigger({ url });
    // Another run the filters must leave out.
    const other = await client.trigger({ url: app.define("not-followed", async (context) => context.run("only", () => 1)) });
    await waitForLog(workflowRunId, (r) => stepsOf(r, "next").some((s) => s.waitEventId), "the wait");
    await client.notify({ eventId: `follow-${workflowRunId}`, eventData: "hi" });
    await app.waitForNote(workflowRunId, "done");
    await waitForRunEnd(server, workflowRunId);
    await waitForRunEnd(server, other.workflowRunId);
    const run = await runLog(workflowRunId);
    for (const query of [`workflowRunId=${workflowRunId}`, `workflowUrl=${encodeURIComponent(url)}`]) {
      const got = await server.raw("GET", `/v2/events?${query}`);
      assert.equal(got.status, 200, got.text);
      const events = got.json.events;
      assert.ok(events.length > 0);
      assert.ok(events.every((e) => e.workflowRunId === workflowRunId), `${query}: only the run's messages`);
      assert.ok(events.every((e) => e.workflowUrl === url), `${query}: ${JSON.stringify(events.filter((e) => e.workflowUrl !== url))}`);
      assert.ok(events.every((e) => e.workflowCreatedAt === run.workflowRunCreatedAt), `${query}: workflowCreatedAt`);
      // The wait's result is a step the server wrote.
      const waitResult = named(run, "wait").messageId;
      assert.ok(events.some((e) => e.messageId === waitResult && e.state === "DELIVERED"), `${query}: the wait's result`);
    }
  });

  test("an invoked run names its invoker; the invoker's step names the invoked run", async () => {
    const child = createWorkflow(async (context) => {
      await context.run("work", () => "done");
      return "child result";
    });
    const parent = createWorkflow(async (context) => {
      const r = await context.invoke("call child", { workflow: child, body: { n: 3 }, headers: { "x-from": "parent" } });
      app.note(context, "done", r);
    });
    const urls = app.defineMany("logs-family", { parent, child });
    const { workflowRunId } = await client.trigger({ url: urls.parent });
    await app.waitForNote(workflowRunId, "done");
    await waitForRunEnd(server, workflowRunId);
    const parentRun = await runLog(workflowRunId);
    const invoke = named(parentRun, "call child");
    assert.equal(invoke.stepType, "Invoke");
    assert.equal(invoke.invokedWorkflowUrl, urls.child);
    assert.equal(typeof invoke.invokedWorkflowCreatedAt, "number");
    assert.deepEqual(invoke.invokedWorkflowRunBody, { n: 3 });
    assert.deepEqual(invoke.invokedWorkflowRunHeaders["x-from"] ?? invoke.invokedWorkflowRunHeaders["X-From"], ["parent"]);
    const childRun = await runLog(invoke.invokedWorkflowRunId);
    assert.equal(childRun.workflowState, "RUN_SUCCESS");
    assert.equal(childRun.workflowRunCreatedAt, invoke.invokedWorkflowCreatedAt);
    assert.deepEqual(childRun.invoker, {
      workflowRunId,
      workflowUrl: urls.parent,
      workflowRunCreatedAt: parentRun.workflowRunCreatedAt,
    });
  });

  test("a cancelled run: RUN_CANCELED, its waiting message cancelled; filters by state and label; paging to the end", async () => {
    const url = app.define("logs-sleeper", async (context) => {
      await context.sleep("long", "1d");
    });
    const label = `page-${Date.now()}`;
    const started = await client.trigger([{ url, label }, { url, label }, { url, label }]);
    const ids = started.map((s) => s.workflowRunId);
    await waitUntil(() => ids.every((id) => app.ofRun(id).some((c) => c.status === 200)), { what: "three sleeping runs" });
    assert.deepEqual(await client.cancel(ids[0]), { cancelled: 1 });
    const cancelled = await runLog(ids[0]);
    assert.equal(cancelled.workflowState, "RUN_CANCELED");
    assert.ok(cancelled.workflowRunCompletedAt);
    // The sleep's message (and any still being answered when the cancel came) is cancelled.
    const gone = stepsOf(cancelled, "next");
    assert.ok(gone.every((s) => s.state === "STEP_CANCELED"), JSON.stringify(gone));
    assert.ok(gone.some((s) => s.messageId === named(cancelled, "long").messageId), JSON.stringify(gone));

    const { runs: canceledOnly } = await client.logs({ filter: { label, state: "RUN_CANCELED" } });
    assert.deepEqual(canceledOnly.map((r) => r.workflowRunId), [ids[0]]);
    const seen = [];
    let cursor;
    let pages = 0;
    do {
      const page = await client.logs({ cursor, count: 2, filter: { label } });
      seen.push(...page.runs.map((r) => r.workflowRunId));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    assert.equal(pages, 2);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    const createdAts = (await client.logs({ filter: { label } })).runs.map((r) => r.workflowRunCreatedAt);
    assert.deepEqual(createdAts, [...createdAts].sort((a, b) => b - a), "newest first");
    await client.cancel({ filter: { label } });
  });
});

describe("the workflow DLQ", () => {
  /** A workflow whose second step fails while `app.broken[name]` is set. */
  function failing(name, failureFunction) {
    app.broken ??= {};
    app.broken[name] = true;
    return app.define(
      name,
      async (context) => {
        await context.run("fine", () => {
          app.note(context, "fine", {});
          return "ok";
        });
        await context.run("broken", () => {
          if (app.broken[name]) throw new Error("the step broke");
          return "fixed";
        });
        app.note(context, "done", {});
        return "finished";
      },
      failureFunction ? { failureFunction } : {},
    );
  }

  test("a failed run: its log, the failure function's state, listed (not in the plain DLQ), resumed to completion", async () => {
    const url = failing("resumable", async ({ context }) => {
      app.note(context, "failure", {});
      return "handled";
    });
    const { workflowRunId } = await client.trigger({ url, retries: 0, label: "dlq-resume" });
    await app.waitForNote(workflowRunId, "failure");
    await waitForRunEnd(server, workflowRunId);
    const run = await waitForLog(
      workflowRunId,
      (r) => r.failureFunction?.state === "CALLBACK_SUCCESS",
      "the failure function's success",
    );
    assert.equal(run.workflowState, "RUN_FAILED");
    assert.ok(run.dlqId);
    const [failed] = stepsOf(run, "next");
    assert.equal(failed.state, "STEP_FAILED");
    assert.equal(failed.retries, 0);
    assert.equal(failed.errors.length, 1);
    const [error] = failed.errors;
    assert.equal(error.status, 500);
    assert.match(error.body, /the step broke/);
    assert.equal(typeof error.error, "string");
    assert.equal(typeof error.time, "number");
    assert.equal(typeof error.headers, "object");
    const f = run.failureFunction;
    assert.equal(f.url, url);
    assert.equal(f.failStatus, 500);
    assert.match(f.failResponse, /the step broke/);
    assert.equal(f.dlqId, run.dlqId);
    assert.equal(f.responseStatus, 200);
    assert.equal(typeof f.messageId, "string");

    const { messages } = await client.dlq.list({ filter: { workflowRunId } });
    assert.equal(messages.length, 1);
    const [entry] = messages;
    assert.equal(entry.dlqId, run.dlqId);
    assert.equal(entry.workflowRunId, workflowRunId);
    assert.equal(entry.workflowCreatedAt, run.workflowRunCreatedAt);
    assert.equal(entry.workflowUrl, url);
    assert.equal(entry.responseStatus, 500);
    assert.match(entry.responseBody, /the step broke/);
    assert.equal(entry.failureCallback, url);
    assert.equal(entry.failureCallbackInfo.state, "CALLBACK_SUCCESS");
    assert.equal(entry.failureCallbackInfo.responseStatus, 200);
    assert.equal(entry.label, "dlq-resume");
    const plain = new QStashClient({ baseUrl: server.url, token: USERS.default.token });
    const { messages: plainMessages } = await plain.dlq.listMessages();
    assert.ok(!plainMessages.some((m) => m.dlqId === entry.dlqId), "the plain DLQ does not list workflow entries");
    const got = await server.raw("GET", `/v2/workflows/dlq/${entry.dlqId}`);
    assert.equal(got.json.workflowRunId, workflowRunId);

    app.broken.resumable = false;
    const resumed = await client.dlq.resume(entry.dlqId, { retries: 1 });
    assert.equal(resumed.workflowRuns.length, 1);
    const newRun = resumed.workflowRuns[0].workflowRunId;
    assert.notEqual(newRun, workflowRunId);
    await app.waitForNote(newRun, "done");
    await waitForRunEnd(server, newRun);
    assert.equal(app.notes(newRun, "fine").length, 0, "the successful step is not run again");
    const after = await runLog(newRun);
    assert.equal(after.workflowState, "RUN_SUCCESS");
    assert.equal(after.workflowRunResponse, JSON.stringify("finished"));
    assert.equal(named(after, "fine").out, JSON.stringify("ok"));
    assert.equal(named(after, "broken").out, JSON.stringify("fixed"));
    assert.equal(named(after, "broken").retries, 1, "the override applies to the new run");
    assert.equal(after.label, "dlq-resume");
    assert.deepEqual((await client.dlq.list({ filter: { workflowRunId } })).messages, [], "the entry left the DLQ");
  });

  test("a run whose context.call result could not be delivered resumes to completion; later steps are plain steps", async () => {
    app.script("/third/resume-call", { status: 500, body: "third party down" });
    let failCallback = true;
    const url = app.define(
      "resume-call",
      async (context) => {
        const r = await context.call("call", { url: `${app.url}/third/resume-call`, method: "POST", body: "x", retries: 0 });
        const after = await context.run("after", () => `got ${r.status}`);
        app.note(context, "done", { status: r.status, after });
      },
      {
        // The app is down when the call's result comes back.
        intercept: (request) =>
          failCallback && request.headers.get("upstash-workflow-callback") ? new Response("down", { status: 500 }) : undefined,
      },
    );
    const { workflowRunId } = await client.trigger({ url, retries: 0 });
    await waitForRunEnd(server, workflowRunId);
    const { messages } = await client.dlq.list({ filter: { workflowRunId } });
    assert.equal(messages.length, 1);
    failCallback = false;
    const resumed = await client.dlq.resume({ dlqId: messages[0].dlqId });
    const newRun = resumed.workflowRunId;
    const [done] = await app.waitForNote(newRun, "done");
    assert.deepEqual(done.data, { status: 500, after: "got 500" });
    await waitForRunEnd(server, newRun);
    assert.equal((await runLog(newRun)).workflowState, "RUN_SUCCESS");
    // Only the re-delivered result is a call result; the steps after it are not.
    const marked = app.ofRun(newRun).filter((r) => r.headers["upstash-workflow-callback"]);
    assert.equal(marked.length, 1, JSON.stringify(app.ofRun(newRun).map((r) => r.headers)));
  });

  test("a run whose parallel branch failed resumes with the other branch's result", async () => {
    let fail = true;
    let bRuns = 0;
    const url = app.define("resume-parallel", async (context) => {
      const [a, b] = await Promise.all([
        context.run("a", async () => {
          // b's result is recorded before a fails.
          await sleep(200);
          if (fail) throw new Error("a fails");
          return "A";
        }),
        context.run("b", () => {
          bRuns++;
          return "B";
        }),
      ]);
      const both = await context.run("end", () => a + b);
      app.note(context, "done", { both });
    });
    const { workflowRunId } = await client.trigger({ url, retries: 0 });
    await waitForRunEnd(server, workflowRunId);
    const { messages } = await client.dlq.list({ filter: { workflowRunId } });
    assert.equal(messages.length, 1);
    fail = false;
    const ran = bRuns;
    const resumed = await client.dlq.resume({ dlqId: messages[0].dlqId });
    const newRun = resumed.workflowRunId;
    const [done] = await app.waitForNote(newRun, "done");
    assert.deepEqual(done.data, { both: "AB" });
    await waitForRunEnd(server, newRun);
    assert.equal(bRuns, ran, "the successful branch is not run again");
    const run = await runLog(newRun);
    assert.equal(run.workflowState, "RUN_SUCCESS");
    assert.equal(named(run, "b").out, JSON.stringify("B"));
    assert.equal(named(run, "a").out, JSON.stringify("A"));
  });

  test("restart runs from the start; delete removes an entry; unknown ids are errors", async () => {
    const url = failing("restartable");
    const runs = await client.trigger([{ url, retries: 0, body: "one" }, { url, retries: 0, body: "two" }]);
    const ids = runs.map((r) => r.workflowRunId);
    for (const id of ids) await waitForRunEnd(server, id);
    const { messages } = await client.dlq.list({ filter: { workflowUrl: url } });
    assert.equal(messages.length, 2);
    const byRun = Object.fromEntries(messages.map((m) => [m.workflowRunId, m.dlqId]));
    app.broken.restartable = false;
    const restarted = await client.dlq.restart(byRun[ids[0]]);
    const newRun = restarted.workflowRuns[0].workflowRunId;
    await app.waitForNote(newRun, "done");
    assert.equal(app.notes(newRun, "fine").length, 1, "a restart runs every step again");
    assert.equal((await runLog(newRun)).steps[0].steps[0].out, "one");
    assert.equal((await client.dlq.delete(byRun[ids[1]])).deleted, 1);
    assert.equal((await server.raw("GET", `/v2/workflows/dlq/${byRun[ids[1]]}`)).status, 404);
    assert.deepEqual((await client.dlq.list({ filter: { workflowUrl: url } })).messages, []);
    await assert.rejects(client.dlq.resume(byRun[ids[1]]), /not found|404/i);
  });

  test("a failure function that fails is retried (nextDeliveryTime), then CALLBACK_FAIL, listed by that state and retried", async () => {
    let failures = 0;
    let fixed = false;
    const url = failing("failing-failure", async ({ context }) => {
      app.note(context, "failure", {});
      if (!fixed) {
        failures++;
        throw new Error("the failure function broke too");
      }
      return "second time";
    });
    const { workflowRunId } = await client.trigger({ url, retries: 1, retryDelay: "60000" });
    await advanceUntil("61s", () => app.notes(workflowRunId, "failure").length > 0, "the failure function's first attempt");
    const retrying = await waitForLog(workflowRunId, (r) => r.failureFunction?.nextDeliveryTime, "the failure function's retry");
    assert.equal(retrying.failureFunction.state, "CALLBACK_INPROGRESS");
    assert.equal(retrying.failureFunction.errors.length, 1);
    assert.ok(retrying.failureFunction.nextDeliveryTime > retrying.failureFunction.errors[0].time);
    const run = await (async () => {
      let last;
      await advanceUntil("61s", async () => (last = await runLog(workflowRunId)).failureFunction.state === "CALLBACK_FAIL", "the failure function to fail");
      return last;
    })();
    assert.equal(run.failureFunction.errors.length, failures);
    assert.equal(run.failureFunction.errors[0].status, 500);
    assert.equal(run.failureFunction.nextDeliveryTime, undefined);
    const { messages } = await client.dlq.list({ filter: { failureFunctionState: "CALLBACK_FAIL", workflowRunId } });
    assert.equal(messages.length, 1);
    assert.equal(messages[0].failureCallbackInfo.state, "CALLBACK_FAIL");
    assert.equal(messages[0].failureCallbackInfo.responseStatus, 500);
    fixed = true;
    const retried = await client.dlq.retryFailureFunction({ dlqId: messages[0].dlqId });
    assert.equal(retried.workflowRunId, workflowRunId);
    await waitForLog(workflowRunId, (r) => r.failureFunction.state === "CALLBACK_SUCCESS", "the retried failure function");
    await assert.rejects(client.dlq.retryFailureFunction({ dlqId: messages[0].dlqId }), /has not failed/);
  });

  test("retrying the failure function of a run whose id is in use again updates that run, not the new one", async () => {
    let first = true;
    let fixed = false;
    const url = app.define(
      "reused-id",
      async (context) => {
        if (first) {
          await context.run("broken", () => {
            throw new Error("the step broke");
          });
        }
        await context.waitForEvent("hold", `hold-${context.workflowRunId}`, { timeout: "1h" });
      },
      {
        failureFunction: async ({ context }) => {
          app.note(context, "failure", { payload: context.requestPayload });
          if (!fixed) throw new Error("the failure function broke too");
          return "second time";
        },
      },
    );
    const given = `reused-${Date.now()}`;
    const { workflowRunId } = await client.trigger({ url, workflowRunId: given, retries: 0, body: { n: 1 } });
    const failed = await waitForLog(workflowRunId, (r) => r.failureFunction?.state === "CALLBACK_FAIL", "the failure function to fail");
    first = false;
    const again = await client.trigger({ url, workflowRunId: given, retries: 0, body: { n: 2 } });
    assert.equal(again.workflowRunId, workflowRunId);
    assert.notEqual(again.deduplicated, true);
    await waitUntil(async () => (await client.logs({ filter: { workflowRunId } })).runs.length === 2, { what: "the second run" });
    fixed = true;
    const retried = await client.dlq.retryFailureFunction({ dlqId: failed.dlqId });
    assert.equal(retried.workflowRunId, workflowRunId);
    assert.equal(retried.workflowCreatedAt, failed.workflowRunCreatedAt);
    const failures = await app.waitForNote(workflowRunId, "failure", 2);
    assert.deepEqual(failures[1].data, { payload: { n: 1 } }, "the retried failure function gets the failed run's payload");
    let runs;
    await waitUntil(async () => {
      ({ runs } = await client.logs({ filter: { workflowRunId } }));
      return runs.find((r) => r.workflowRunCreatedAt === failed.workflowRunCreatedAt)?.failureFunction?.state === "CALLBACK_SUCCESS";
    }, { what: "the old run's failure function to succeed" });
    const current = runs.find((r) => r.workflowRunCreatedAt !== failed.workflowRunCreatedAt);
    assert.equal(current.workflowState, "RUN_STARTED");
    assert.equal(current.failureFunction, undefined, "the new run has no failure function record");
    await client.cancel({ ids: workflowRunId });
  });

  test("a failure function in progress can be cancelled (CALLBACK_CANCELED), once", async () => {
    let release;
    const gate = new Promise((r) => (release = r));
    const url = failing("cancelled-failure", async ({ context }) => {
      app.note(context, "failure", {});
      await gate;
      throw new Error("always broken");
    });
    const { workflowRunId } = await client.trigger({ url, retries: 0 });
    await app.waitForNote(workflowRunId, "failure");
    const run = await runLog(workflowRunId);
    assert.equal(run.failureFunction.state, "CALLBACK_INPROGRESS");
    const cancel = await server.raw("DELETE", `/v2/workflows/dlq/callback/${run.dlqId}`);
    assert.equal(cancel.status, 200, cancel.text);
    release();
    await waitForLog(workflowRunId, (r) => r.failureFunction.state === "CALLBACK_CANCELED", "the cancelled failure function");
    const again = await server.raw("DELETE", `/v2/workflows/dlq/callback/${run.dlqId}`);
    assert.equal(again.status, 400);
    assert.match(again.json.error, /not in progress/);
    await assert.rejects(client.dlq.retryFailureFunction({ dlqId: run.dlqId }), /has not failed/);
  });
});
