// Switching users: each user sees only their own messages, counters and dead letters.

import assert from "node:assert/strict";
import { test } from "node:test";
import { USERS, chooseUser, openConsole, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

test(
  "switching users keeps them isolated",
  withScreenshot("users", env, async () => {
    const { page, server, rx } = env;
    const { messageId: mine } = await server.client().publishJSON({ url: `${rx.url}/default`, body: {}, delay: "1h" });
    const { messageId: theirs } = await server.client(USERS.testUser1).publishJSON({ url: `${rx.url}/user1`, body: {}, delay: "1h" });

    await openConsole(env, "#/messages");
    await page.getByRole("link", { name: mine }).waitFor();
    assert.equal(await page.getByRole("link", { name: theirs }).count(), 0);

    await chooseUser(page, "testUser1");
    await page.getByRole("link", { name: theirs }).waitFor();
    assert.equal(await page.getByRole("link", { name: mine }).count(), 0);

    // The other user's message page is not found for this user.
    await page.goto(`${server.url}/#/messages/${mine}`);
    await page.getByText(`No message ${mine} for testUser1`).waitFor();

    // The overview counts this user's messages only, and the choice survives a reload.
    await page.goto(`${server.url}/#/overview`);
    await page.locator("#ov-waiting", { hasText: "1" }).waitFor();
    assert.equal(await page.getByLabel("User", { exact: true }).inputValue(), "1");
    await server.client(USERS.testUser1).publishJSON({ url: `${rx.url}/user1`, body: {}, delay: "1h" });
    await page.locator("#ov-waiting", { hasText: "2" }).waitFor();

    await chooseUser(page, "defaultUser");
    await page.locator("#ov-waiting", { hasText: "1" }).waitFor();
  }),
);
