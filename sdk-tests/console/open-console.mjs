// Keeps a headless Chromium on a server's console overview until the server goes away; used
// to measure what an open console costs (benches/with-console.sh). Prints how many live
// updates the page received.
//
//   node open-console.mjs http://127.0.0.1:PORT [server-pid]

import { openBrowser, sleep } from "./tests/helpers.mjs";

const [url, pid] = process.argv.slice(2);
const alive = () => {
  if (!pid) return true;
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
};

const browser = await openBrowser();
const { page } = browser;
await page.addInitScript(() => {
  // Count the overview events the page receives.
  window.__updates = 0;
  const Original = window.EventSource;
  window.EventSource = class extends Original {
    constructor(...args) {
      super(...args);
      this.addEventListener("overview", () => window.__updates++);
    }
  };
});
await page.goto(`${url}/console#/overview`);
await page.getByText("live", { exact: true }).waitFor({ timeout: 15_000 });
console.error(`console open on ${url}`);
let stop = false;
for (const s of ["SIGTERM", "SIGINT"]) process.on(s, () => (stop = true));
while (!stop && alive()) await sleep(250);
const updates = await page.evaluate(() => window.__updates).catch(() => "?");
console.error(`console closed after ${updates} live updates`);
await browser.close();
process.exit(0);
