// Takes the README's screenshot: the overview of a server with some schedules, a queue, a
// URL group, dead letters and a dozen seconds of traffic. It goes to screenshots/console.png;
// with QSTASH_CONSOLE_SCREENSHOT=docs it replaces docs/console.png (commit it), so a plain
// test run leaves the work tree clean.

import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { REPO, SCREENSHOTS, openConsole, sleep, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

test(
  "README screenshot: the overview with traffic",
  withScreenshot("readme-screenshot", env, async () => {
    const { page, server, rx } = env;
    const client = server.client();
    await client.schedules.create({ scheduleId: "nightly-cleanup", destination: `${rx.url}/cleanup`, cron: "0 3 * * *" });
    await client.schedules.create({ scheduleId: "weekday-report", destination: `${rx.url}/report`, cron: "CRON_TZ=Europe/Berlin 0 9 * * 1-5" });
    await client.schedules.pause({ schedule: "nightly-cleanup" });
    await client.queue({ queueName: "emails" }).upsert({ parallelism: 2 });
    await client.urlGroups.addEndpoints({ name: "orders", endpoints: [{ name: "billing", url: `${rx.url}/billing` }, { url: `${rx.url}/shipping` }] });
    await client.publishJSON({ url: `${rx.url}/llm`, body: {}, delay: "2h", flowControl: { key: "openai", parallelism: 4, rate: 10 } });
    for (let i = 0; i < 3; i++) await client.publishJSON({ url: `${rx.url}/digest`, body: { i }, delay: `${10 + i}m` });
    await openConsole(env, "#/overview");
    rx.script("/webhooks/stripe", { status: 502, body: "bad gateway" }, { status: 502, body: "bad gateway" });
    await client.publishJSON({ url: `${rx.url}/webhooks/stripe`, body: {}, retries: 0 });
    await client.publishJSON({ url: `${rx.url}/webhooks/stripe`, body: {}, retries: 0 });
    await page.locator("#ov-dlq", { hasText: "2" }).waitFor();
    // Twelve seconds of uneven traffic for the sparkline; the picture is taken while it flows.
    for (let tick = 0; tick < 24; tick++) {
      const n = [4, 6, 9, 14, 10, 16, 21, 13, 8, 12, 18, 24][tick % 12] + (tick >= 12 ? 8 : 0);
      await Promise.all(Array.from({ length: n }, (_, i) => client.publishJSON({ url: `${rx.url}/orders`, body: { tick, i } })));
      await sleep(500);
    }
    await page.setViewportSize({ width: 1280, height: 960 });
    await sleep(600);
    const path = process.env.QSTASH_CONSOLE_SCREENSHOT === "docs" ? join(REPO, "docs", "console.png") : join(SCREENSHOTS, "console.png");
    await mkdir(dirname(path), { recursive: true });
    await page.screenshot({ path });
    assert.notEqual(await page.locator("#ov-rate").textContent(), "0.0");
  }),
);
