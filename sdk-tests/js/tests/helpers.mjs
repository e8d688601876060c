// Shared helpers for the end-to-end tests: start the real `qstash dev` binary, drive its
// controllable clock, and run a local HTTP receiver that verifies every delivery with the
// official SDK's `Receiver`.
//
// Nothing here mocks the server: every test talks to the binary named by $QSTASH_BIN.

import { after, afterEach, before } from "node:test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import { Client, QstashError, Receiver } from "@upstash/qstash";

// The four predefined users of the dev server (shared/seed/qstash/howto/local-development.mdx).
export const USERS = {
  default: {
    token: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
    currentSigningKey: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
    nextSigningKey: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
  },
  testUser1: {
    token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
    currentSigningKey: "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
    nextSigningKey: "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
  },
  testUser2: {
    token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjIiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
    currentSigningKey: "sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
    nextSigningKey: "sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
  },
  testUser3: {
    token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjMiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
    currentSigningKey: "sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
    nextSigningKey: "sig_7GFR4YaDshFcqsxWRZpRB161jguD",
  },
};

const READY_TIMEOUT_MS = 15_000;
export const WAIT_TIMEOUT_MS = 10_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** For assert.rejects: the SDK threw a QstashError with this HTTP status. */
export const isStatus = (status) => (error) => {
  if (!(error instanceof QstashError)) throw new Error(`expected a QstashError, got ${error}`);
  if (error.status !== status) throw new Error(`expected status ${status}, got ${error.status}: ${error.message}`);
  return true;
};

/**
 * Registers the usual per-file fixture: one server and `receivers` signature-verifying
 * receivers (1 or 2), started before the tests and stopped after them; every test ends by
 * checking that all its deliveries verified. `set` receives `{server, rx, rx2, client}` once
 * they are up (`rx2` only with two receivers).
 */
export function useServerAndReceiver(set, { receivers = 1 } = {}) {
  let server;
  const rxs = [];
  before(async () => {
    server = await startServer();
    for (let i = 0; i < receivers; i++) rxs.push(await startReceiver());
    set({ server, rx: rxs[0], rx2: rxs[1], client: server.client() });
  });
  after(async () => {
    for (const r of rxs) await r.close();
    await server?.stop();
  });
  afterEach(() => rxs.forEach((r) => r.assertAllVerified()));
}

/** Base64 (standard alphabet) helpers for callback bodies and log entries. */
export const toBase64 = (text) => Buffer.from(text, "utf8").toString("base64");
export const fromBase64 = (text) => Buffer.from(text, "base64").toString("utf8");

/** Polls `fn` until it returns a truthy value; throws after `timeout` ms naming `what`. */
export async function waitUntil(fn, { timeout = WAIT_TIMEOUT_MS, interval = 25, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await sleep(interval);
  }
}

// ------------------------------------------------------------------------------------------
// The server process
// ------------------------------------------------------------------------------------------

const running = new Set();
function killAll() {
  for (const child of running) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  running.clear();
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    killAll();
    process.exit(1);
  });
}

/**
 * Spawns `$QSTASH_BIN dev -port 0 -clock-control`, waits (bounded) for the readiness line and
 * the `QSTASH_URL=` line, and returns a handle. Call `stop()` in an after() hook.
 */
export async function startServer({ extraArgs = [] } = {}) {
  const bin = process.env.QSTASH_BIN;
  if (!bin) {
    throw new Error(
      "QSTASH_BIN is not set: point it at the qstash binary, e.g. QSTASH_BIN=$PWD/../../target/debug/qstash",
    );
  }
  // QSTASH_TEST_DATA_DIR=1: every server keeps its state in a fresh directory (-data-dir),
  // so the same tests check that persistence changes nothing the SDK sees.
  const dataDir = process.env.QSTASH_TEST_DATA_DIR === "1" ? mkdtempSync(join(tmpdir(), "qstash-sdk-")) : null;
  const dataArgs = dataDir ? ["-data-dir", dataDir] : [];
  const child = spawn(bin, ["dev", "-port", "0", "-clock-control", ...dataArgs, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, QSTASH_DEV: "" },
  });
  running.add(child);
  let output = "";
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });

  const url = await new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => {
      fail(new Error(`qstash dev did not become ready within ${READY_TIMEOUT_MS} ms`));
    }, READY_TIMEOUT_MS);
    function fail(error) {
      clearTimeout(timer);
      child.kill("SIGKILL");
      error.message += `\n--- stdout ---\n${output}\n--- stderr ---\n${stderr.slice(-4000)}`;
      reject(error);
    }
    child.on("error", (error) => fail(new Error(`cannot spawn ${bin}: ${error.message}`)));
    child.on("exit", (code, signal) => fail(new Error(`qstash dev exited early (code ${code}, signal ${signal})`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      output += chunk;
      if (/is running\./.test(output)) ready = true;
      const match = ready && output.match(/^QSTASH_URL=(http:\/\/\S+)\s*$/m);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners("exit");
        resolve(match[1]);
      }
    });
  });
  // Keep draining stdout so the server never blocks on a full pipe.
  child.stdout.on("data", () => {});

  const server = {
    url,
    process: child,
    get output() {
      return output;
    },
    get stderr() {
      return stderr;
    },
    client(user = USERS.default, options = {}) {
      return new Client({ baseUrl: url, token: user.token, devMode: false, enableTelemetry: false, ...options });
    },
    /** A raw request to the server (for the routes the SDK has no method for). */
    async raw(method, path, { token = USERS.default.token, headers = {}, body } = {}) {
      const response = await fetch(url + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...headers },
        body,
      });
      const text = await response.text();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.status, text, json, headers: response.headers };
    },
    async clock() {
      const res = await server.raw("GET", "/__qstash/clock");
      if (res.status !== 200) throw new Error(`GET /__qstash/clock -> ${res.status} ${res.text}`);
      return res.json;
    },
    /** Moves the server clock forward, e.g. advance("12s"). */
    async advance(by) {
      const res = await server.raw("POST", `/__qstash/clock/advance?by=${encodeURIComponent(by)}`);
      if (res.status < 200 || res.status >= 300) {
        throw new Error(`clock advance by ${by} -> ${res.status} ${res.text}`);
      }
      return res.json;
    },
    /**
     * Waits (bounded by `timeout`) until none of the user's messages is due now, in flight or
     * held at a gate: POST /__qstash/idle. Throws with what is still moving on a timeout.
     */
    async waitIdle({ timeout = "10s", token } = {}) {
      const res = await server.raw("POST", `/__qstash/idle?timeout=${encodeURIComponent(timeout)}`, { token });
      if (res.status !== 200) throw new Error(`wait idle -> ${res.status} ${res.text}`);
      return res.json;
    },
    /** Wipes the user's state (or every user's, with all: true): POST /__qstash/reset. */
    async reset({ all = false, token } = {}) {
      const res = await server.raw("POST", `/__qstash/reset${all ? "?all=true" : ""}`, { token });
      if (res.status !== 200) throw new Error(`reset -> ${res.status} ${res.text}`);
    },
    async stop() {
      running.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

// ------------------------------------------------------------------------------------------
// Log helpers (through the SDK's client.logs)
// ------------------------------------------------------------------------------------------

/** All log entries of one message, oldest first, following the cursor to the end. */
export async function messageLogs(client, messageId) {
  const entries = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const res = await client.logs({ filter: { messageId }, cursor, count: 100 });
    entries.push(...res.logs);
    cursor = res.cursor;
    if (!cursor) return entries.reverse();
  }
  throw new Error("logs pagination did not end after 100 pages");
}

/** All log entries matching a `client.logs` filter, newest first, following the cursor. */
export async function logsWhere(client, filter) {
  const entries = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const res = await client.logs({ filter, cursor, count: 1000 });
    entries.push(...res.logs);
    cursor = res.cursor;
    if (!cursor) return entries;
  }
  throw new Error("logs pagination did not end after 100 pages");
}

/** The states of a message in the order they happened. */
export async function messageStates(client, messageId) {
  return (await messageLogs(client, messageId)).map((entry) => entry.state);
}

/** Waits until the message's logs contain `state` `times` times; returns the states. */
export async function waitForState(client, messageId, state, { times = 1, timeout = WAIT_TIMEOUT_MS } = {}) {
  let states = [];
  try {
    return await waitUntil(
      async () => {
        states = await messageStates(client, messageId);
        return states.filter((s) => s === state).length >= times ? states : false;
      },
      { timeout, interval: 30, what: `${times}x ${state} in the logs of ${messageId}` },
    );
  } catch (error) {
    error.message += ` (states so far: ${JSON.stringify(states)})`;
    throw error;
  }
}

// ------------------------------------------------------------------------------------------
// The receiver
// ------------------------------------------------------------------------------------------

/**
 * A local endpoint on 127.0.0.1:<ephemeral>. Every request is recorded and its
 * Upstash-Signature checked with the SDK's Receiver against the exact URL that was called.
 * Replies can be scripted per path: rx.script("/p", {status: 500}) answers the next request
 * to /p with 500 (each scripted reply is used once, then the default 200 applies).
 */
export async function startReceiver({
  currentSigningKey = USERS.default.currentSigningKey,
  nextSigningKey = USERS.default.nextSigningKey,
  host = "127.0.0.1", // the host name put in rx.url (the socket is always bound to 127.0.0.1)
} = {}) {
  const requests = [];
  const scripts = new Map();
  const waiters = new Set();
  const keys = { currentSigningKey, nextSigningKey };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", async () => {
      const rawBody = Buffer.concat(chunks);
      const body = rawBody.toString("utf8");
      const calledUrl = `${rx.url}${req.url}`;
      const path = req.url.split("?")[0];
      const signature = req.headers["upstash-signature"];
      let verifyError;
      if (!signature) {
        verifyError = "missing Upstash-Signature header";
      } else {
        try {
          const receiver = new Receiver({ ...keys, devMode: false });
          const ok = await receiver.verify({ signature, body, url: calledUrl });
          if (ok !== true) verifyError = `Receiver.verify returned ${ok}`;
        } catch (error) {
          verifyError = `${error.name}: ${error.message}`;
        }
      }
      const queue = scripts.get(path);
      const reply = (queue && queue.shift()) || {};
      const record = {
        method: req.method,
        path,
        target: req.url,
        url: calledUrl,
        headers: req.headers,
        body,
        rawBody,
        signature,
        verifyError,
        reply,
        at: Date.now(),
        doneAt: undefined,
      };
      requests.push(record);
      for (const waiter of waiters) waiter();
      if (reply.delayMs) await sleep(reply.delayMs);
      if (reply.hang) return; // never answer (the server's timeout must fire)
      res.writeHead(reply.status ?? 200, { "Content-Type": "text/plain", ...(reply.headers ?? {}) });
      res.end(reply.body ?? "ok", () => {
        record.doneAt = Date.now(); // when the answer was handed to the socket
        for (const waiter of waiters) waiter();
      });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();

  const rx = {
    url: `http://${host}:${port}`,
    requests,
    keys,
    /** Sets the signing keys used to verify from now on (after a rotation). */
    setKeys(next) {
      Object.assign(keys, next);
    },
    script(path, ...replies) {
      if (!scripts.has(path)) scripts.set(path, []);
      scripts.get(path).push(...replies);
    },
    on(path) {
      return requests.filter((r) => r.path === path);
    },
    /** Waits until at least `n` requests reached `path` (any path if null); returns them. */
    async waitFor(path, n = 1, { timeout = WAIT_TIMEOUT_MS } = {}) {
      const matching = () => (path === null ? requests : rx.on(path));
      if (matching().length >= n) return matching();
      return await new Promise((resolve, reject) => {
        const check = () => {
          if (matching().length >= n) {
            cleanup();
            resolve(matching());
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeout} ms waiting for ${n} request(s) to ${path}; got ${matching().length}`));
        }, timeout);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    /** Asserts that `path` still has exactly `n` requests after `ms` of silence. */
    async assertQuiet(path, n, ms = 300) {
      await sleep(ms);
      const got = rx.on(path).length;
      if (got !== n) throw new Error(`expected ${n} request(s) to ${path}, got ${got}`);
    },
    /** Every recorded delivery must have passed Receiver.verify. */
    assertAllVerified() {
      const bad = requests.filter((r) => r.verifyError !== undefined);
      if (bad.length > 0) {
        throw new Error(
          `signature verification failed for ${bad.length} deliver${bad.length === 1 ? "y" : "ies"}: ` +
            bad.map((r) => `${r.method} ${r.target}: ${r.verifyError}`).join("; "),
        );
      }
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return rx;
}

/** A unique path per call so tests sharing a receiver never see each other's deliveries. */
let pathCounter = 0;
export function uniquePath(name) {
  pathCounter += 1;
  return `/${name}-${pathCounter}-${Math.random().toString(36).slice(2, 8)}`;
}
