// The overview updates live from the event stream.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

const text = async (page, id) => (await page.locator(`#${id}`).textContent()).trim();

test(
  "the overview's figures follow the traffic without a reload",
  withScreenshot("overview-live", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/overview");
    assert.equal(await text(page, "ov-waiting"), "0");
    const client = server.client();
    await client.publishJSON({ url: `${rx.url}/later`, body: {}, delay: "1h" });
    await page.locator("#ov-waiting", { hasText: "1" }).waitFor();
    rx.script("/broken", { status: 500 });
    await client.publishJSON({ url: `${rx.url}/broken`, body: {}, retries: 0 });
    await page.locator("#ov-dlq", { hasText: "1" }).waitFor();
    await page.locator("#ov-f1", { hasText: "1" }).waitFor();
    await page.locator("#nav-dlq", { hasText: "1" }).waitFor();
    await client.publishJSON({ url: `${rx.url}/fine`, body: {} });
    await page.locator("#ov-d1", { hasText: "1" }).waitFor();
    await page.getByRole("link", { name: /Dead letters/ }).first().click();
    await page.getByRole("heading", { name: "Dead letters" }).waitFor();
  }),
);
