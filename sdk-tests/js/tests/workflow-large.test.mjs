// Large runs through @upstash/workflow 1.3.3: step results of a few MB (on the pro quota,
// whose messages may be 10 MB), and runs whose steps array outgrows a message, which the
// server then delivers empty so the SDK fetches the steps itself (GET /v2/workflows/runs).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "@upstash/workflow";
import { USERS, startServer } from "./helpers.mjs";
import { deliveredSteps, startWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

const MB = 1024 * 1024;
let payg;
let pro;
let appPayg;
let appPro;

before(async () => {
  payg = await startServer();
  pro = await startServer({ extraArgs: ["-quota", "pro"] });
  appPayg = await startWorkflowApp(payg);
  appPro = await startWorkflowApp(pro);
});
after(async () => {
  await appPayg?.close();
  await appPro?.close();
  await payg?.stop();
  await pro?.stop();
});

describe("large runs", () => {
  test("a step result of 3 MB reaches the later steps intact (pro quota)", async () => {
    const app = appPro;
    const url = app.define("big", async (context) => {
      const big = await context.run("produce", () => "x".repeat(3 * MB) + "!");
      const size = await context.run("measure", () => big.length);
      app.note(context, "done", { size, tail: big.slice(-2) });
    });
    const client = new Client({ baseUrl: pro.url, token: USERS.default.token });
    const { workflowRunId } = await client.trigger({ url });
    const [done] = await app.waitForNote(workflowRunId, "done", 1, 30_000);
    assert.deepEqual(done.data, { size: 3 * MB + 1, tail: "x!" });
    await waitForRunEnd(pro, workflowRunId);
    app.assertNoSdkErrors();
  });

  test("a steps array over the message size is delivered empty and the SDK fetches the steps", async () => {
    const app = appPayg;
    const url = app.define("lazy", async (context) => {
      const a = await context.run("a", () => "a".repeat(600 * 1024));
      const b = await context.run("b", () => "b".repeat(600 * 1024));
      const c = await context.run("c", () => a.length + b.length);
      app.note(context, "done", { c });
    });
    const client = new Client({ baseUrl: payg.url, token: USERS.default.token });
    const { workflowRunId } = await client.trigger({ url });
    const [done] = await app.waitForNote(workflowRunId, "done", 1, 30_000);
    assert.equal(done.data.c, 1200 * 1024);
    await waitForRunEnd(payg, workflowRunId);
    const calls = app.ofRun(workflowRunId);
    assert.equal(calls.length, 4);
    assert.equal(deliveredSteps(calls[1]).length, 2, "small enough: inlined");
    assert.equal(calls[2].body, "", "over 1 MB: fetched by the SDK");
    assert.equal(calls[3].body, "");
    app.assertNoSdkErrors();
  });
});
