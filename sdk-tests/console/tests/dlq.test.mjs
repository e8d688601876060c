// Dead letters: a message fails into the DLQ and appears live; inspect the failing response,
// retry it with an override, and delete several at once.

import assert from "node:assert/strict";
import { test } from "node:test";
import { openConsole, sleep, useConsole, withScreenshot } from "./helpers.mjs";

const env = useConsole(() => {});

async function failedEntries(server) {
  return (await server.raw("GET", "/v2/dlq")).json.messages;
}

test(
  "a failed message lands in the DLQ live, is inspected and retried from the console",
  withScreenshot("dlq-retry", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/dlq");
    await page.getByText("The dead-letter queue is empty").waitFor();

    rx.script("/pay", { status: 503, body: "payment service down" }, { status: 200 });
    const { messageId } = await server.client().publishJSON({ url: `${rx.url}/pay`, body: { amount: 5 }, retries: 0 });

    const row = page.locator("tbody tr", { hasText: "/pay" });
    await row.waitFor();
    await page.locator("#nav-dlq", { hasText: "1" }).waitFor();
    const [entry] = await failedEntries(server);
    assert.equal(entry.messageId, messageId);

    await row.getByRole("button", { name: `Inspect ${entry.dlqId}` }).click();
    const detail = page.locator("section.panel", { hasText: "Last response: 503" });
    await detail.getByText("payment service down").waitFor();

    // Retry with an override: no retries for the new message.
    await page.getByLabel("Retries", { exact: true }).fill("0");
    await detail.getByRole("button", { name: "Retry", exact: true }).click();
    await page.getByText("Retried: a new message was published").waitFor();
    await page.getByText("The dead-letter queue is empty").waitFor();
    assert.deepEqual(await failedEntries(server), []);

    // The retry was delivered, as a new message with the override applied.
    for (let i = 0; i < 100 && rx.on("/pay").length < 2; i++) await sleep(50);
    assert.equal(rx.on("/pay").length, 2);
    const logs = await server.client().logs({ filter: { url: `${rx.url}/pay`, state: "DELIVERED" } });
    assert.equal(logs.logs.length, 1);
    assert.notEqual(logs.logs[0].messageId, messageId);
    assert.equal(logs.logs[0].maxRetries, 0);
  }),
);

test(
  "several dead letters are selected and deleted at once",
  withScreenshot("dlq-bulk", env, async () => {
    const { page, server, rx } = env;
    await openConsole(env, "#/dlq");
    const client = server.client();
    for (const n of [1, 2, 3]) {
      rx.script(`/gone-${n}`, { status: 410 });
      await client.publishJSON({ url: `${rx.url}/gone-${n}`, body: { n }, retries: 0 });
    }
    await page.locator("tbody tr").nth(2).waitFor();
    // Filter by status first: all three match.
    await page.getByLabel("Response status").fill("410");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator("tbody tr").nth(2).waitFor();
    await page.getByLabel("Select all shown").check();
    await page.getByText("3 selected").waitFor();
    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Delete selected" }).click();
    await page.getByText("The dead-letter queue is empty").waitFor();
    assert.deepEqual(await failedEntries(server), []);
  }),
);
