// A message published through the SDK appears live in the log tail; its page shows every
// attempt (status, next retry) and "Deliver now" hurries the waiting retry.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

test(
  "a published message appears live, and its page shows its attempts",
  withScreenshot("messages-live", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/messages");
    await page.getByText("No log entries match").waitFor();

    rx.script("/flaky", { status: 500, body: "boom" });
    const { messageId } = await server.client().publishJSON({ url: `${rx.url}/flaky`, body: { order: 42 }, retries: 2 });

    // No reload: the row arrives through the live stream.
    const link = page.getByRole("link", { name: messageId }).first();
    await link.waitFor();
    await page.locator("tr", { hasText: messageId }).filter({ hasText: "RETRY" }).first().waitFor();
    await link.click();

    await page.getByRole("heading", { name: `Message ${messageId}` }).waitFor();
    await page.getByRole("heading", { name: "Attempts (1)" }).waitFor();
    const attempts = page.getByRole("table", { name: "Delivery attempts" });
    await attempts.getByText("500", { exact: true }).waitFor();
    await attempts.getByText(/next retry/).waitFor();
    // The body is shown pretty-printed as JSON.
    await page.getByText('"order": 42').waitFor();

    // The retry is minutes away: deliver it now.
    await page.getByRole("button", { name: "Deliver now" }).click();
    await page.getByRole("heading", { name: "Attempts (2)" }).waitFor();
    await attempts.getByText("200", { exact: true }).waitFor();
    await page.locator(".page-head .badge", { hasText: "DELIVERED" }).waitFor();
    assert.equal(rx.on("/flaky").length, 2);

    // The response of the first attempt can be inspected.
    await attempts.getByText("Response", { exact: true }).first().click();
    await attempts.getByText("boom").waitFor();
  }),
);

test(
  "the log tail filters by state and by message id",
  withScreenshot("messages-filter", env, async () => {
    const { page, server, rx } = env;
    rx.script("/bad", { status: 404 });
    const client = server.client();
    const { messageId: good } = await client.publishJSON({ url: `${rx.url}/good`, body: { a: 1 } });
    const { messageId: bad } = await client.publishJSON({ url: `${rx.url}/bad`, body: { a: 2 }, retries: 0 });
    await openConsole(env, "#/messages");
    await page.getByRole("link", { name: bad }).first().waitFor();
    await page.getByLabel("State").selectOption("FAILED");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.getByRole("link", { name: bad }).first().waitFor();
    assert.equal(await page.getByRole("link", { name: good }).count(), 0);
    assert.match(page.url(), /state=FAILED/);

    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByLabel("Message id").fill(good);
    await page.getByLabel("Message id").press("Enter");
    await page.getByRole("link", { name: good }).first().waitFor();
    assert.equal(await page.getByRole("link", { name: bad }).count(), 0);
  }),
);
