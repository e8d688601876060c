// Helpers for the console's end-to-end tests: start the real `qstash dev` binary ($QSTASH_BIN),
// a local receiver, and the system's headless Chromium (driven by playwright-core; no browser
// download: CHROMIUM_BIN or /usr/bin/chromium). Every test gets a fresh browser profile and
// leaves a screenshot in screenshots/ when it fails.

import { after, before } from "node:test";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@upstash/qstash";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
export const SCREENSHOTS = join(HERE, "..", "screenshots");
export const REPO = join(HERE, "..", "..", "..");

export const USERS = {
  default: { name: "defaultUser", token: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=" },
  testUser1: { name: "testUser1", token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9" },
};

/** The flags Chromium needs here: headless, no sandbox (root), and no background traffic. */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** Spawns `$QSTASH_BIN dev -port 0 -clock-control` and waits for its QSTASH_URL line. */
export async function startServer() {
  const bin = process.env.QSTASH_BIN;
  if (!bin) throw new Error("QSTASH_BIN is not set: point it at the qstash binary (e.g. ../../target/debug/qstash)");
  const child = spawn(bin, ["dev", "-port", "0", "-clock-control"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, QSTASH_DEV: "" } });
  children.add(child);
  let output = "";
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`qstash dev not ready after 15 s\n${output}\n${stderr}`)), 15_000);
    child.on("exit", (code) => reject(new Error(`qstash dev exited early (${code})\n${stderr}`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const match = /is running\./.test(output) && output.match(/^QSTASH_URL=(http:\/\/\S+)\s*$/m);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve(match[1]);
      }
    });
  });
  child.stdout.on("data", () => {});
  return {
    url,
    get output() {
      return output;
    },
    client(user = USERS.default) {
      return new Client({ baseUrl: url, token: user.token, devMode: false, enableTelemetry: false });
    },
    async raw(method, path, { token = USERS.default.token, headers = {}, body } = {}) {
      const res = await fetch(url + path, { method, headers: { Authorization: `Bearer ${token}`, ...headers }, body });
      const text = await res.text();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    },
    async stop() {
      children.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * A receiver on 127.0.0.1 that records requests; `script(path, ...replies)` sets the next
 * answers for a path ({status, body}), 200 "ok" otherwise.
 */
export async function startReceiver() {
  const requests = [];
  const scripts = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const path = req.url.split("?")[0];
      requests.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const reply = scripts.get(path)?.shift() ?? {};
      res.writeHead(reply.status ?? 200, { "Content-Type": "text/plain", ...(reply.headers ?? {}) });
      res.end(reply.body ?? "ok");
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    on: (path) => requests.filter((r) => r.path === path),
    script(path, ...replies) {
      scripts.set(path, [...(scripts.get(path) ?? []), ...replies]);
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A fresh headless Chromium profile; returns {context, page, close}. */
export async function openBrowser({ width = 1280, height = 860 } = {}) {
  const profile = await mkdtemp(join(tmpdir(), "qstash-console-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width, height },
    colorScheme: "light",
    reducedMotion: "reduce",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Registers one server, one receiver and one browser for a test file. */
export function useConsole(set) {
  const env = {};
  before(async () => {
    env.server = await startServer();
    env.rx = await startReceiver();
    env.browser = await openBrowser();
    env.page = env.browser.page;
    set(env);
  });
  after(async () => {
    await env.browser?.close();
    await env.rx?.close();
    await env.server?.stop();
  });
  return env;
}

/**
 * Wraps a test body: on failure, saves a full-page screenshot (screenshots/<name>.png) and the
 * page's JavaScript errors into the error message.
 */
export function withScreenshot(name, env, body) {
  return async (t) => {
    try {
      await body(t);
    } catch (error) {
      try {
        await mkdir(SCREENSHOTS, { recursive: true });
        const file = join(SCREENSHOTS, `${name.replace(/[^a-z0-9-]+/gi, "-")}.png`);
        await env.page.screenshot({ path: file, fullPage: true });
        error.message += `\n(screenshot: ${file})`;
      } catch {
        // no page to capture
      }
      if (env.browser?.errors.length) error.message += `\n(page errors: ${env.browser.errors.join(" | ")})`;
      throw error;
    }
  };
}

/** Opens the console at `hash` (e.g. "#/dlq") and waits for the live connection. */
export async function openConsole(env, hash = "#/overview") {
  await env.page.goto(`${env.server.url}/${hash}`);
  await env.page.getByText("live", { exact: true }).waitFor();
}

/** Chooses a user in the header's select. */
export async function chooseUser(page, name) {
  await page.getByLabel("User", { exact: true }).selectOption({ label: name === "defaultUser" ? "defaultUser (default)" : name });
  await page.getByText("live", { exact: true }).waitFor();
}
