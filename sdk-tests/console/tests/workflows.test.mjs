// Workflow runs: a run of a real @upstash/workflow app (the JS SDK suite's workflow test app)
// followed live on its page: its first step, its wait, the notification sent from the
// console, the parallel group, and the run's success; then a failing run, its failure
// function and the DLQ actions.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Client as WorkflowClient } from "@upstash/workflow";
import { USERS as SDK_USERS } from "../../js/tests/helpers.mjs";
import { startWorkflowApp } from "../../js/workflow-app/app.mjs";
import { openConsole, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

test(
  "workflow runs: a run's steps appear as they complete, and the console's notify moves it on",
  withScreenshot("workflow-timeline", env, async () => {
    const { page, server } = env;
    const app = await startWorkflowApp(server, { user: SDK_USERS.default });
    try {
      const url = app.define("console-order", async (context) => {
        const order = await context.run("reserve stock", () => ({ reserved: 3 }));
        const { eventData, timeout } = await context.waitForEvent("wait for payment", `paid-${context.workflowRunId}`, {
          timeout: "1h",
        });
        const [left, right] = await Promise.all([
          context.run("charge card", () => `charged ${eventData?.amount}`),
          context.run("send email", () => "sent"),
        ]);
        return { order, timeout, left, right };
      });
      const client = new WorkflowClient({ baseUrl: server.url, token: SDK_USERS.default.token });
      const { workflowRunId } = await client.trigger({ url, body: { sku: "A-1" } });

      await openConsole(env, `#/workflows/${encodeURIComponent(workflowRunId)}`);
      const detail = page.locator("section.panel", { hasText: workflowRunId });
      // Live: the first step and the wait show without a reload while the run waits.
      await detail.locator(".step-name", { hasText: "reserve stock" }).waitFor();
      await detail.locator(".step-name", { hasText: "wait for payment" }).waitFor();
      await detail.locator(".badge", { hasText: "started" }).first().waitFor();

      // Notify from the console's own form.
      await detail.getByLabel("Event id").fill(`paid-${workflowRunId}`);
      await detail.getByLabel("Event data").fill('{"amount":42}');
      await detail.getByRole("button", { name: "Notify", exact: true }).click();

      await detail.locator(".group-parallel .step-name", { hasText: "charge card" }).waitFor();
      await detail.locator(".group-parallel .step-name", { hasText: "send email" }).waitFor();
      await detail.locator("h2 .badge", { hasText: "success" }).waitFor();
      await detail.getByText('"charged 42"').first().waitFor({ state: "attached" });

      // The list shows the run with its state.
      await page.goto(`${server.url}/#/workflows?state=RUN_SUCCESS`);
      await page.locator("a.mono", { hasText: workflowRunId }).waitFor();
      app.assertNoSdkErrors();
    } finally {
      await app.close();
    }
  }),
);

test(
  "workflow runs: a failed run shows its error and failure function, and is restarted from the console",
  withScreenshot("workflow-failed", env, async () => {
    const { page, server } = env;
    const app = await startWorkflowApp(server, { user: SDK_USERS.default });
    try {
      let attempts = 0;
      const url = app.define(
        "console-failing",
        async (context) => {
          await context.run("always fails", () => {
            attempts += 1;
            if (attempts === 1) throw new Error("card declined");
            return "ok on restart";
          });
        },
        { retries: 0, failureFunction: async () => "handled" },
      );
      const client = new WorkflowClient({ baseUrl: server.url, token: SDK_USERS.default.token });
      const { workflowRunId } = await client.trigger({ url, body: { sku: "B-2" }, retries: 0 });

      await openConsole(env, `#/workflows/${encodeURIComponent(workflowRunId)}`);
      const detail = page.locator("section.panel", { hasText: workflowRunId });
      await detail.locator("h2 .badge", { hasText: "failed" }).waitFor({ timeout: 20_000 });
      await detail.getByText("card declined").first().waitFor({ state: "attached" });
      await detail.getByRole("heading", { name: /Failure function/ }).waitFor();

      // The overview counts it among the failed runs, in the workflow DLQ (not the plain DLQ).
      await page.goto(`${server.url}/#/overview`);
      await page.locator("#ov-wfFailed", { hasText: "1" }).waitFor();
      await page.getByText("1 in the workflow DLQ").waitFor();
      assert.equal(await page.locator("#ov-dlq").textContent(), "0");
      await page.goto(`${server.url}/#/workflows/${encodeURIComponent(workflowRunId)}`);

      await detail.getByRole("button", { name: "Restart" }).click();
      const restarted = await waitForNewRun(server, workflowRunId);
      await page.goto(`${server.url}/#/workflows/${encodeURIComponent(restarted)}`);
      await page.locator("section.panel h2 .badge", { hasText: "success" }).waitFor({ timeout: 20_000 });
      assert.equal(attempts, 2);
    } finally {
      await app.close();
    }
  }),
);

async function waitForNewRun(server, oldRunId) {
  for (let i = 0; i < 200; i++) {
    const { json } = await server.raw("GET", "/v2/workflows/events?groupBy=workflowRunId&count=50");
    const other = (json?.runs ?? []).find((r) => r.workflowRunId !== oldRunId && r.workflowUrl?.includes("console-failing"));
    if (other) return other.workflowRunId;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("no restarted run appeared");
}
