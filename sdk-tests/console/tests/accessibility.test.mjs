// Accessibility and layout: every control of every page has a label, the console works from
// the keyboard, and a narrow window gets a single column without horizontal scrolling.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

const PAGES = ["overview", "messages", "dlq", "schedules", "queues", "url-groups", "flow-control", "workflows", "publish", "keys", "clock"];

/** Visible form controls without an accessible name, and buttons without text. */
async function unlabelled(page) {
  return page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll("input, select, textarea, button")) {
      if (el.offsetParent === null) continue;
      const named =
        el.tagName === "BUTTON"
          ? (el.textContent.trim() || el.getAttribute("aria-label"))
          : (el.labels?.length > 0 || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby"));
      if (!named) bad.push(el.outerHTML.slice(0, 120));
    }
    return bad;
  });
}

test(
  "every control on every page has a label",
  withScreenshot("a11y-labels", env, async () => {
    const { page, server, rx } = env;
    // Some content, so tables with per-row controls are drawn.
    rx.script("/x", { status: 500 });
    await server.client().publishJSON({ url: `${rx.url}/x`, body: {}, retries: 0 });
    await server.client().schedules.create({ scheduleId: "s1", destination: `${rx.url}/s`, cron: "* * * * *" });
    await openConsole(env);
    for (const name of PAGES) {
      await page.goto(`${server.url}/#/${name}`);
      await page.locator("main h1").waitFor();
      await page.waitForTimeout(150);
      assert.deepEqual(await unlabelled(page), [], `unlabelled controls on ${name}`);
      assert.equal(await page.locator("main h1").count(), 1, `one h1 on ${name}`);
    }
  }),
);

test(
  "the console works from the keyboard",
  withScreenshot("a11y-keyboard", env, async () => {
    const { page } = env;
    // A fresh load, so Tab starts at the top of the document.
    await page.goto("about:blank");
    await openConsole(env, "#/overview");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    // Tab to the navigation's "Dead letters" and open it with Enter.
    let found = false;
    for (let i = 0; i < 20 && !found; i++) {
      await page.keyboard.press("Tab");
      found = await page.evaluate(() => document.activeElement.textContent.trim().startsWith("Dead letters"));
    }
    assert.ok(found, "the navigation is reachable with Tab");
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/dlq/);
    // Focus moves to the new page's heading, so screen readers announce it.
    await page.waitForFunction(() => document.activeElement?.tagName === "H1");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Dead letters");
    assert.match(await page.locator('nav a[aria-current="page"]').textContent(), /^Dead letters/);
    // Filters submit with Enter from any field.
    await page.getByLabel("Response status").fill("500");
    await page.getByLabel("Response status").press("Enter");
    await page.waitForURL(/responseStatus=500/);
  }),
);

test(
  "a narrow window shows one column without horizontal scrolling",
  withScreenshot("narrow", env, async () => {
    const { page, server } = env;
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const name of ["overview", "messages", "dlq", "schedules", "publish"]) {
        await page.goto(`${server.url}/#/${name}`);
        await page.locator("main h1").waitFor();
        await page.waitForTimeout(150);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        assert.ok(overflow <= 1, `${name} scrolls sideways by ${overflow}px`);
      }
      const nav = await page.locator("nav").boundingBox();
      const main = await page.locator("main").boundingBox();
      assert.ok(nav.y + nav.height <= main.y + 1, "the navigation sits above the page");
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
  }),
);
