// Workflow runs through @upstash/workflow 1.3.3: starting them (client.trigger, one and many,
// the SDK's own first invocation, /v2/trigger), steps in sequence and in parallel with every
// JSON type, 100 steps, sleeps on the controlled clock, early returns, dedup and the check
// that a trigger reaches a workflow.

import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/workflow";
import { Client as QStashClient } from "@upstash/qstash";
import { USERS } from "./helpers.mjs";
import { deliveredSteps, useWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

let server;
let app;
let client;
// The server, the workflow app and a workflow client, shared by this file's tests.
const shared = useWorkflowApp();
before(async () => ({ server, app, client } = await shared.ready));

describe("starting runs and running steps", () => {
  test("sequential steps return every JSON type; each call carries the steps so far and the user's headers", async () => {
    const url = app.define("sequential", async (context) => {
      const text = await context.run("text", () => "hello");
      const number = await context.run("number", () => 42.5);
      const object = await context.run("object", () => ({ nested: { list: [1, "two", null] } }));
      const array = await context.run("array", () => [true, false, 0]);
      const boolean = await context.run("boolean", () => false);
      const nil = await context.run("null", () => null);
      const nothing = await context.run("undefined", () => undefined);
      app.note(context, "done", {
        values: { text, number, object, array, boolean, nil, nothing: nothing === undefined },
        payload: context.requestPayload,
        user: context.headers.get("x-user"),
        labels: context.labels,
      });
      return { finished: true };
    });
    const { workflowRunId } = await client.trigger({
      url,
      body: { order: 7 },
      headers: { "x-user": "alice" },
      label: "checkout",
    });
    assert.match(workflowRunId, /^wfr_/);
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.deepEqual(done.data, {
      values: {
        text: "hello",
        number: 42.5,
        object: { nested: { list: [1, "two", null] } },
        array: [true, false, 0],
        boolean: false,
        nil: null,
        nothing: true,
      },
      payload: { order: 7 },
      user: "alice",
      labels: ["checkout"],
    });
    await waitForRunEnd(server, workflowRunId);
    // Init + one call per step, in order, each with one more step in its body.
    const calls = app.on("/wf/sequential");
    assert.equal(calls.length, 8);
    calls.forEach((call, i) => {
      assert.equal(call.status, 200, call.answer);
      assert.equal(call.headers["upstash-workflow-runid"], workflowRunId);
      assert.equal(call.headers["x-user"], "alice", `call ${i} lacks the user header`);
      assert.equal(call.headers["upstash-label"], "checkout");
      const steps = deliveredSteps(call);
      assert.equal(steps.length, i + 1);
      assert.equal(steps.at(-1).messageId, call.headers["upstash-message-id"]);
    });
    assert.deepEqual(JSON.parse(deliveredSteps(calls[0])[0].decoded), { order: 7 });
    assert.equal(JSON.parse(deliveredSteps(calls[7])[7].decoded).stepName, "undefined");
  });

  test("parallel steps (Promise.all) run once each and return in order", async () => {
    const url = app.define("parallel", async (context) => {
      const results = await Promise.all([
        context.run("a", () => "A"),
        context.run("b", () => ({ b: 2 })),
        context.run("c", () => [3]),
      ]);
      const after = await context.run("after", () => results.length);
      app.note(context, "done", { results, after });
    });
    const { workflowRunId } = await client.trigger({ url, body: "x" });
    const [done] = await app.waitForNote(workflowRunId, "done");
    assert.deepEqual(done.data, { results: ["A", { b: 2 }, [3]], after: 3 });
    await waitForRunEnd(server, workflowRunId);
    // Init, 3 plan steps, 3 results, the step after.
    assert.equal(app.ofRun(workflowRunId).length, 8);
    const recorded = app.ofRun(workflowRunId).flatMap((r) => deliveredSteps(r).slice(1).map((s) => JSON.parse(s.decoded)));
    const executed = recorded.filter((s) => s.stepType === "Run" && s.stepId > 0 && s.concurrent === 3);
    assert.deepEqual([...new Set(executed.map((s) => s.stepName))].sort(), ["a", "b", "c"]);
  });

  test("a run of 100 steps completes", async () => {
    const url = app.define("hundred", async (context) => {
      let total = 0;
      for (let i = 1; i <= 100; i++) {
        total = await context.run(`step-${i}`, () => total + i);
      }
      app.note(context, "done", { total });
    });
    const { workflowRunId } = await client.trigger({ url });
    const [done] = await app.waitForNote(workflowRunId, "done", 1, 60_000);
    assert.equal(done.data.total, 5050);
    await waitForRunEnd(server, workflowRunId);
    assert.equal(app.ofRun(workflowRunId).length, 101);
  });

  test("sleep and sleepUntil wait for the server clock", async () => {
    const url = app.define("sleepy", async (context) => {
      await context.sleep("nap", "10m");
      app.note(context, "woke", {});
      await context.sleepUntil("until", Math.floor(Date.now() / 1000) + 7200);
      app.note(context, "done", {});
    });
    const { workflowRunId } = await client.trigger({ url });
    // The Init call submits the sleep step, then nothing happens until the clock moves.
    await app.waitFor("/wf/sleepy", 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(app.on("/wf/sleepy").length, 1);
    assert.equal(app.notes(workflowRunId, "woke").length, 0, "woke before the clock moved");
    await server.advance("11m");
    await app.waitForNote(workflowRunId, "woke");
    const sleeping = app.on("/wf/sleepy").length;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(app.on("/wf/sleepy").length, sleeping);
    await server.advance("2h");
    await app.waitForNote(workflowRunId, "done");
    await waitForRunEnd(server, workflowRunId);
  });

  test("client.trigger with many runs, given and generated ids; an active id is deduplicated", async () => {
    const url = app.define("pair", async (context) => {
      const v = await context.run("only", () => context.requestPayload);
      app.note(context, "done", { v });
    });
    const given = `given-${Date.now()}`;
    const runs = await client.trigger([
      { url, body: "one", workflowRunId: given, delay: "1h" },
      { url, body: "two" },
    ]);
    assert.equal(runs.length, 2);
    assert.equal(runs[0].workflowRunId, `wfr_${given}`);
    const [second] = await app.waitForNote(runs[1].workflowRunId, "done");
    assert.equal(second.data.v, "two");
    // The delayed run is still active: a second trigger with its id starts nothing.
    const again = await client.trigger({ url, body: "three", workflowRunId: given });
    assert.equal(again.workflowRunId, `wfr_${given}`);
    await server.advance("61m");
    const [first] = await app.waitForNote(`wfr_${given}`, "done");
    assert.equal(first.data.v, "one");
    await waitForRunEnd(server, `wfr_${given}`);
    assert.equal(app.ofRun(`wfr_${given}`).length, 2, "one Init and one step, not two runs");
  });

  test("the SDK's own first invocation: a plain publish to the endpoint starts a run", async () => {
    const url = app.define("first", async (context) => {
      const got = await context.run("echo", () => context.requestPayload);
      app.note(context, "done", { got, user: context.headers.get("x-origin") });
    });
    const qstash = new QStashClient({ baseUrl: server.url, token: USERS.default.token });
    await qstash.publishJSON({ url, body: { hi: 1 }, headers: { "x-origin": "publish" } });
    const [firstCall] = await app.waitFor("/wf/first", 1);
    assert.equal(firstCall.headers["upstash-workflow-runid"], undefined);
    const runId = JSON.parse(firstCall.answer).workflowRunId;
    const [done] = await app.waitForNote(runId, "done");
    assert.deepEqual(done.data, { got: { hi: 1 }, user: "publish" });
    await waitForRunEnd(server, runId);
  });

  test("a run that returns before any step is refused by the SDK and fails", async () => {
    const url = app.define("early", async (context) => {
      if (context.requestPayload?.allowed !== true) return "not allowed";
      await context.run("never", () => 1);
    });
    const { workflowRunId } = await client.trigger({ url, body: { allowed: false }, retries: 0 });
    await app.waitFor("/wf/early", 1);
    const [call] = app.on("/wf/early");
    assert.equal(call.status, 400);
    assert.match(call.answer, /Failed to authenticate Workflow request/);
    await waitForRunEnd(server, workflowRunId);
    const { messages } = await server.raw("GET", `/v2/dlq?source=workflow&url=${encodeURIComponent(url)}`).then((r) => r.json);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].responseStatus, 400);
  });

  test("/v2/trigger starts a run without an SDK client: one extra call for the handshake", async () => {
    const url = app.define("raw", async (context) => {
      const v = await context.run("step", () => context.requestPayload);
      app.note(context, "done", { v, user: context.headers.get("x-user") });
    });
    const res = await server.raw("POST", `/v2/trigger/${url}`, {
      headers: { "Content-Type": "application/json", "Upstash-Forward-X-User": "raw" },
      body: JSON.stringify({ via: "trigger" }),
    });
    assert.equal(res.status, 200, res.text);
    const runId = res.json.workflowRunId;
    const [done] = await app.waitForNote(runId, "done");
    assert.deepEqual(done.data, { v: { via: "trigger" }, user: "raw" });
    await waitForRunEnd(server, runId);
    const calls = app.ofRun(runId);
    assert.equal(calls.length, 3, "handshake, Init, step");
    assert.equal(calls[0].headers["upstash-workflow-unknown-sdk"], "true");
  });

  test("a trigger to something that is not a workflow fails with the documented error", async () => {
    const { workflowRunId } = await client.trigger({ url: `${app.url}/plain`, retries: 0 });
    await waitForRunEnd(server, workflowRunId);
    const { messages } = await server.raw("GET", `/v2/dlq?source=workflow&url=${encodeURIComponent(`${app.url}/plain`)}`).then((r) => r.json);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].responseBody, "just a web page");
    const logs = await server.raw("GET", `/v2/events?messageId=${messages[0].messageId}&state=ERROR`).then((r) => r.json);
    assert.equal(
      logs.events[0].error,
      "detected a non-workflow destination for trigger/invoke. make sure you are sending the request to the correct endpoint",
    );
  });
});
