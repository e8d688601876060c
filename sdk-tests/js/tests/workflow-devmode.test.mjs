// A workflow in the SDK's dev mode, as the README tells a new user: QSTASH_DEV=true and no
// other configuration. `serve` then talks to http://127.0.0.1:<QSTASH_DEV_PORT> with user
// 1's token and verifies every delivery with user 1's hard-coded keys.
//
// Safety net as in devmode.test.mjs: outbound HTTPS is blocked, so a failed health probe
// (which would make the SDK download the official binary) fails the test instead.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { syncBuiltinESMExports } from "node:module";
import { Client } from "@upstash/workflow";
import { startServer } from "./helpers.mjs";
import { startWorkflowApp, waitForRunEnd } from "../workflow-app/app.mjs";

const blocked = () => {
  throw new Error("outbound HTTPS is blocked in the dev-mode test");
};
https.get = blocked;
https.request = blocked;
syncBuiltinESMExports();

let server;
let app;

before(async () => {
  server = await startServer();
  process.env.QSTASH_DEV = "true";
  process.env.QSTASH_DEV_PORT = new URL(server.url).port;
  for (const name of ["QSTASH_URL", "QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY"]) {
    delete process.env[name];
  }
  app = await startWorkflowApp(server, { useProcessEnv: true });
});
after(async () => {
  delete process.env.QSTASH_DEV;
  delete process.env.QSTASH_DEV_PORT;
  await app?.close();
  await server?.stop();
});

test("QSTASH_DEV=true alone: trigger, steps verified with the dev keys, completion", async () => {
  const url = app.define("dev", async (context) => {
    const a = await context.run("a", () => 1);
    const b = await context.run("b", () => a + 1);
    app.note(context, "done", { b, payload: context.requestPayload });
  });
  const client = new Client({});
  const { workflowRunId } = await client.trigger({ url, body: { dev: true } });
  const [done] = await app.waitForNote(workflowRunId, "done");
  assert.deepEqual(done.data, { b: 2, payload: { dev: true } });
  await waitForRunEnd(server, workflowRunId);
  const calls = app.ofRun(workflowRunId);
  assert.equal(calls.length, 3);
  assert.ok(calls.every((c) => c.status === 200 && c.headers["upstash-signature"]));
  app.assertNoSdkErrors();
});
