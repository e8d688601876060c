// Schedules: next runs in the schedule's time zone, pause and resume, run now, delete.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, sleep, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

test(
  "pause, resume and run a schedule now from the console",
  withScreenshot("schedules", env, async () => {
    const { page, server, rx } = env;
    const client = server.client();
    await client.schedules.create({
      scheduleId: "morning-report",
      destination: `${rx.url}/report`,
      cron: "CRON_TZ=America/New_York 0 9 * * *",
      body: JSON.stringify({ report: "daily" }),
    });
    await openConsole(env, "#/schedules");
    const row = page.locator("tr[data-schedule='morning-report']");
    await row.waitFor();
    await row.locator("li", { hasText: "America/New_York" }).waitFor();
    // Three upcoming runs, each at 09:00 New York time.
    assert.equal(await row.locator("ul.plain li").filter({ hasText: /09:00:00/ }).count(), 3);

    await row.getByRole("button", { name: "Pause morning-report" }).click();
    await row.locator(".badge", { hasText: "paused" }).waitFor();
    assert.equal((await client.schedules.get("morning-report")).isPaused, true);

    await row.getByRole("button", { name: "Run morning-report now" }).click();
    for (let i = 0; i < 100 && rx.on("/report").length < 1; i++) await sleep(50);
    const [delivery] = rx.on("/report");
    assert.equal(delivery.headers["upstash-schedule-id"], "morning-report");
    assert.equal(delivery.body, '{"report":"daily"}');
    // The run shows as the last run, with its message.
    await row.locator("a.mono").waitFor();

    await row.getByRole("button", { name: "Resume morning-report" }).click();
    await row.locator(".badge", { hasText: "active" }).waitFor();
    assert.equal((await client.schedules.get("morning-report")).isPaused, false);

    page.once("dialog", (d) => d.accept());
    await row.getByRole("button", { name: "Delete morning-report" }).click();
    await page.getByText("No schedules.").waitFor();
  }),
);
