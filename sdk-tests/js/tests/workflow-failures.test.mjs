// Failures and run configuration through @upstash/workflow 1.3.3: the failure function and
// the failure URL get the run's fields and the failing answer, WorkflowNonRetryableError
// fails at once, WorkflowRetryAfterError waits (on the server clock), retries / retry delay /
// flow control / label / headers given at trigger apply to every call of the run, and a
// call above the plan's retries is a quota error (412) the SDK turns into a failure.

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { WorkflowNonRetryableError, WorkflowRetryAfterError } from "@upstash/workflow";
import { Receiver } from "@upstash/qstash";
import { USERS, waitUntil } from "./helpers.mjs";
import { useWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

let server;
let app;
let client;
// The server, the workflow app and a workflow client, shared by this file's tests.
const shared = useWorkflowApp();
before(async () => ({ server, app, client } = await shared.ready));

/** Advances the clock until `cond()` holds (each retry is planned after the previous answer). */
async function advanceUntil(by, cond, what) {
  await waitUntil(async () => {
    if (await cond()) return true;
    await server.advance(by);
    return false;
  }, { what, interval: 50 });
}

describe("failures", () => {
  test("a failing step is retried as configured at trigger, then the failure function gets the run and the error", async () => {
    const url = app.define(
      "failing",
      async (context) => {
        await context.run("fine", () => "ok");
        await context.run("broken", () => {
          app.note(context, "attempt", {});
          throw new Error("the step broke");
        });
      },
      {
        failureFunction: async ({ context, failStatus, failResponse, failHeaders }) => {
          app.note(context, "failure", {
            failStatus,
            failResponse,
            payload: context.requestPayload,
            user: context.headers.get("x-user"),
            hasHeaders: typeof failHeaders === "object",
          });
          return "handled";
        },
      },
    );
    const { workflowRunId } = await client.trigger({
      url,
      body: { order: 1 },
      headers: { "x-user": "erin" },
      retries: 2,
      retryDelay: "1000",
    });
    await app.waitForNote(workflowRunId, "attempt", 1);
    await advanceUntil("1100ms", () => app.notes(workflowRunId, "failure").length > 0, "the failure function");
    const [failure] = app.notes(workflowRunId, "failure");
    assert.deepEqual(failure.data, {
      failStatus: 500,
      failResponse: "the step broke",
      payload: { order: 1 },
      user: "erin",
      hasHeaders: true,
    });
    assert.equal(app.notes(workflowRunId, "attempt").length, 3, "1 attempt + 2 retries");
    await waitForRunEnd(server, workflowRunId);
    const failureCall = app.ofRun(workflowRunId).find((c) => c.headers["upstash-workflow-failure-callback"] === "true");
    assert.equal(failureCall.status, 200);
    assert.equal(failureCall.headers["x-user"], "erin");
    const { messages } = (await server.raw("GET", `/v2/dlq?source=workflow&url=${encodeURIComponent(url)}`)).json;
    assert.equal(messages.length, 1);
    assert.equal(messages[0].responseStatus, 500);
  });

  test("a failure URL gets the run's fields, the initial payload and the failing answer", async () => {
    const url = app.define("failing-with-url", async (context) => {
      await context.run("broken", () => {
        throw new Error("nope");
      });
    });
    const failureUrl = `${app.url}/failure/hook`;
    const { workflowRunId } = await client.trigger({ url, body: "initial text", failureUrl, retries: 0 });
    const [call] = await app.waitFor("/failure/hook", 1);
    const receiver = new Receiver({
      currentSigningKey: USERS.default.currentSigningKey,
      nextSigningKey: USERS.default.nextSigningKey,
    });
    assert.equal(await receiver.verify({ signature: call.headers["upstash-signature"], body: call.body, url: failureUrl }), true);
    const body = JSON.parse(call.body);
    assert.equal(body.workflowRunId, workflowRunId);
    assert.equal(typeof body.workflowCreatedAt, "number");
    assert.equal(body.url, url);
    assert.equal(Buffer.from(body.sourceBody, "base64").toString(), "initial text");
    assert.equal(body.status, 500);
    assert.equal(JSON.parse(Buffer.from(body.body, "base64").toString()).message, "nope");
    assert.ok(body.dlqId);
    assert.equal(call.headers["upstash-workflow-runid"], workflowRunId);
    assert.equal(call.headers["upstash-workflow-is-failure"], "true");
    await waitForRunEnd(server, workflowRunId);
  });

  test("WorkflowNonRetryableError fails the run at once", async () => {
    const url = app.define(
      "give-up",
      async (context) => {
        await context.run("try", () => {
          app.note(context, "attempt", {});
          throw new WorkflowNonRetryableError("not worth retrying");
        });
      },
      { failureFunction: async ({ context, failStatus, failResponse }) => app.note(context, "failure", { failStatus, failResponse }) },
    );
    const { workflowRunId } = await client.trigger({ url, retries: 3 });
    const [failure] = await app.waitForNote(workflowRunId, "failure");
    assert.deepEqual(failure.data, { failStatus: 489, failResponse: "not worth retrying" });
    assert.equal(app.notes(workflowRunId, "attempt").length, 1);
  });

  test("WorkflowRetryAfterError waits the given time on the server clock", async () => {
    const url = app.define("later", async (context) => {
      await context.run("wait for it", () => {
        app.note(context, "attempt", {});
        if (app.notes(context.workflowRunId, "attempt").length === 1) {
          throw new WorkflowRetryAfterError("rate limited", 30);
        }
        return "second time lucky";
      });
      app.note(context, "done", {});
    });
    const { workflowRunId } = await client.trigger({ url });
    await app.waitForNote(workflowRunId, "attempt", 1);
    await waitUntil(async () => {
      const { events } = (await server.raw("GET", `/v2/events?state=RETRY&url=${encodeURIComponent(url)}`)).json;
      return events.length > 0;
    }, { what: "the planned retry" });
    await server.advance("29s");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(app.notes(workflowRunId, "attempt").length, 1, "retried before Retry-After");
    await server.advance("2s");
    await app.waitForNote(workflowRunId, "done");
  });

  test("a call with more retries than the plan allows is a quota error (412) that fails the run", async () => {
    const url = app.define(
      "over-quota",
      async (context) => {
        await context.call("greedy", { url: `${app.url}/third/quota`, retries: 99 });
      },
      { failureFunction: async ({ context, failStatus, failResponse }) => app.note(context, "failure", { failStatus, failResponse }) },
    );
    const { workflowRunId } = await client.trigger({ url });
    const [failure] = await app.waitForNote(workflowRunId, "failure");
    assert.equal(failure.data.failStatus, 489);
    assert.match(failure.data.failResponse, /retries/);
    assert.equal(app.on("/third/quota").length, 0);
  });
});

describe("run configuration given at trigger", () => {
  test("flow control, label and headers reach every call of the run; parallelism 1 holds", async () => {
    const url = app.define("configured", async (context) => {
      await Promise.all([1, 2, 3].map((i) => context.run(`p${i}`, async () => {
        await new Promise((r) => setTimeout(r, 30));
        return i;
      })));
      await context.sleep("pause", 1);
      app.note(context, "done", { label: context.label, tenant: context.headers.get("x-tenant") });
    });
    const key = `wf-flow-${Date.now()}`;
    const { workflowRunId } = await client.trigger({
      url,
      headers: { "x-tenant": "acme" },
      label: "configured",
      flowControl: { key, parallelism: 1 },
    });
    const flow = await server.raw("GET", `/v2/flowControl/${key}`);
    assert.equal(flow.status, 200, "the key exists as soon as the run starts");
    await advanceUntil("2s", () => app.notes(workflowRunId, "done").length > 0, "the configured run");
    const [done] = app.notes(workflowRunId, "done");
    assert.deepEqual(done.data, { label: "configured", tenant: "acme" });
    const calls = app.ofRun(workflowRunId);
    assert.ok(calls.length >= 8);
    for (const c of calls) {
      assert.equal(c.headers["x-tenant"], "acme");
      assert.equal(c.headers["upstash-label"], "configured");
    }
    const sorted = [...calls].sort((a, b) => a.at - b.at);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(sorted[i].at >= sorted[i - 1].doneAt - 5, "two calls of the run overlapped under parallelism 1");
    }
    const { events } = (await server.raw("GET", `/v2/events?flowControlKey=${key}&state=DELIVERED`)).json;
    assert.equal(events.length, calls.length, "every message of the run was flow controlled");
    assert.ok(events.every((e) => e.label === "configured"));
  });
});
