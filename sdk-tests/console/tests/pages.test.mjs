// The other pages, each through its actions: publish form, queues, URL groups, flow control,
// signing keys, clock controls, and the workflow page while the server has no workflow API.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, sleep, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

async function until(fn, what) {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test(
  "the publish form sends a message and shows it flow through",
  withScreenshot("publish", env, async () => {
    const { page, rx } = env;
    await openConsole(env, "#/publish");
    await page.getByLabel("Destination").fill(`${rx.url}/from-console`);
    await page.getByLabel("Headers").fill("X-Api-Key: secret");
    await page.getByLabel("Body").fill('{"from":"console"}');
    await page.getByRole("button", { name: "Publish" }).click();
    const row = page.getByRole("table", { name: "Published messages, live" }).locator("tbody tr").first();
    await row.locator(".badge", { hasText: "DELIVERED" }).waitFor();
    const [got] = rx.on("/from-console");
    assert.equal(got.body, '{"from":"console"}');
    assert.equal(got.headers["x-api-key"], "secret");
    assert.equal(got.headers["content-type"], "application/json");
  }),
);

test(
  "queues: create, pause and resume, lag",
  withScreenshot("queues", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/queues");
    await page.getByLabel("Queue name").fill("emails");
    await page.getByLabel("Parallelism", { exact: true }).fill("2");
    await page.getByRole("button", { name: "Create / update" }).click();
    const row = page.locator("tbody tr", { hasText: "emails" });
    await row.waitFor();
    await row.getByRole("button", { name: "Pause emails" }).click();
    await row.locator(".badge", { hasText: "paused" }).waitFor();
    await server.client().queue({ queueName: "emails" }).enqueueJSON({ url: `${rx.url}/mail`, body: { to: "a" } });
    await row.getByRole("cell", { name: "1", exact: true }).first().waitFor(); // lag 1, live
    await row.getByRole("button", { name: "Resume emails" }).click();
    await until(() => rx.on("/mail").length === 1, "the queued message");
    await row.locator(".badge", { hasText: "active" }).waitFor();
  }),
);

test(
  "URL groups: add and remove endpoints, delete the group",
  withScreenshot("url-groups", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/url-groups");
    await page.getByLabel("URL group", { exact: true }).fill("orders");
    await page.getByLabel("Endpoint URL").fill(`${rx.url}/billing`);
    await page.getByLabel("Endpoint name").fill("billing");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const group = page.getByRole("region", { name: "URL group orders" });
    await group.getByText(`${rx.url}/billing`).waitFor();
    await page.getByLabel("Endpoint URL").fill(`${rx.url}/shipping`);
    await page.getByLabel("Endpoint name").fill("");
    await page.getByRole("button", { name: "Add endpoint" }).click();
    await group.getByText(`${rx.url}/shipping`).waitFor();
    await group.getByRole("button", { name: `Remove ${rx.url}/billing from orders` }).click();
    await until(async () => (await page.getByText(`${rx.url}/billing`).count()) === 0, "the endpoint removed");
    const topic = await server.client().urlGroups.get("orders");
    assert.deepEqual(topic.endpoints.map((e) => e.url), [`${rx.url}/shipping`]);
    page.once("dialog", (d) => d.accept());
    await group.getByRole("button", { name: "Delete group" }).click();
    await page.getByText("No URL groups yet.").waitFor();
  }),
);

test(
  "flow control: a key shows its waitlist; pause, pin and reset it",
  withScreenshot("flow-control", env, async () => {
    const { page, server, rx } = env;
    const client = server.client();
    await openConsole(env, "#/flow-control");
    await page.getByText("No flow-control keys").waitFor();
    await client.publishJSON({ url: `${rx.url}/llm`, body: {}, delay: "1h", flowControl: { key: "openai", parallelism: 2 } });
    const row = page.locator("tbody tr", { hasText: "openai" });
    await row.waitFor();
    await row.getByText("0 / 2").waitFor();
    await row.getByRole("button", { name: "Pause openai" }).click();
    await row.locator(".badge", { hasText: "paused" }).waitFor();
    assert.equal((await server.raw("GET", "/v2/flowControl/openai")).json.isPaused, true);
    await row.getByRole("button", { name: "Resume openai" }).click();
    await row.locator(".badge", { hasText: "active" }).waitFor();
    await row.getByRole("button", { name: "Pin limits of openai" }).click();
    assert.equal(await page.getByLabel("Key", { exact: true }).inputValue(), "openai");
    await page.getByLabel("Parallelism", { exact: true }).fill("5");
    await page.getByLabel("Rate", { exact: true }).fill("10");
    await page.getByLabel("Period (s)").fill("60");
    await page.getByRole("button", { name: "Pin", exact: true }).click();
    await row.getByText("0 / 5 (pinned)").waitFor();
    await row.getByText("per 60 s (pinned)").waitFor();
    // Unpinned, the pinned values stay in force until a message brings a config.
    await row.getByRole("button", { name: "Unpin openai" }).click();
    await row.getByText("0 / 5", { exact: true }).waitFor();
    await row.getByRole("button", { name: "Reset the rate of openai" }).click();
    await page.getByText("Reset rate: done").waitFor();
  }),
);

test(
  "signing keys: shown with the environment lines, rotated",
  withScreenshot("keys", env, async () => {
    const { page, server } = env;
    await openConsole(env, "#/keys");
    const before = (await server.raw("GET", "/v2/keys")).json;
    await page.getByText(`QSTASH_NEXT_SIGNING_KEY=${before.next}`).waitFor();
    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Rotate keys" }).click();
    await page.getByText(`QSTASH_CURRENT_SIGNING_KEY=${before.next}`).waitFor();
    const after = (await server.raw("GET", "/v2/keys")).json;
    assert.equal(after.current, before.next);
  }),
);

test(
  "clock controls: advance, pause and resume the server clock",
  withScreenshot("clock", env, async () => {
    const { page, server } = env;
    await openConsole(env, "#/clock");
    await page.getByRole("button", { name: "Pause time" }).click();
    await page.getByText("Paused: time stands still").waitFor();
    const frozen = (await server.raw("GET", "/__qstash/clock")).json;
    assert.equal(frozen.paused, true);
    await page.getByRole("button", { name: "Advance by 1h" }).click();
    await page.getByText("Clock advanced by 1h").waitFor();
    const moved = (await server.raw("GET", "/__qstash/clock")).json;
    assert.equal(moved.now, frozen.now + 3_600_000);
    await page.getByLabel("Advance by", { exact: true }).fill("90s");
    await page.getByRole("button", { name: "Advance", exact: true }).click();
    await page.getByText("Clock advanced by 90s").waitFor();
    await page.getByRole("button", { name: "Resume time" }).click();
    await page.getByText("Running.").waitFor();
    assert.equal((await server.raw("GET", "/__qstash/clock")).json.paused, false);
  }),
);
