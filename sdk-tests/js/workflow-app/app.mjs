// A workflow test app: `serve` and `serveMany` from the published @upstash/workflow package
// on a plain Node HTTP server, as a user would write one. Tests define their workflows with
// `app.define(name, routeFunction, options)` (served at /wf/<name>) and
// `app.defineMany(group, {id: createWorkflow(...)})` (served at /many/<group>/<id>).
//
// Every request the app gets is recorded (path, headers, body, the SDK's answer), and route
// functions write what they see to a journal with `app.note(context, kind, data)`. The app
// also serves a third-party API for `context.call` (/third/..., scriptable replies), a
// failure URL (/failure/...) and an endpoint that is not a workflow (/plain).
//
// Every workflow request is verified by the SDK's own Receiver (the signing keys are in the
// env given to `serve`): a delivery with a bad signature makes `serve` answer 500.

import http from "node:http";
import { serve } from "@upstash/workflow";
import { serveMany } from "@upstash/workflow/cloudflare";
import { after, afterEach, before } from "node:test";
import { Client } from "@upstash/workflow";
import { USERS, WAIT_TIMEOUT_MS, sleep, startServer, waitUntil } from "../tests/helpers.mjs";

/** The env `serve` reads: the server's URL, the user's token and signing keys. */
export function workflowEnv(server, user = USERS.default) {
  return {
    QSTASH_URL: server.url,
    QSTASH_TOKEN: user.token,
    QSTASH_CURRENT_SIGNING_KEY: user.currentSigningKey,
    QSTASH_NEXT_SIGNING_KEY: user.nextSigningKey,
  };
}

async function toWebRequest(req, baseUrl) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const rawBody = Buffer.concat(chunks);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  const request = new Request(baseUrl + req.url, {
    method: req.method,
    headers,
    body: hasBody ? rawBody : undefined,
  });
  return { request, rawBody };
}

/** The apps running, so waitForRunEnd can wait for their answers too. */
const running = new Set();

/**
 * Starts the app on 127.0.0.1:<ephemeral>. `env` is what `serve` reads (default: the
 * server's URL, token and keys of `user`); pass `env: undefined` explicitly with
 * `useProcessEnv: true` to let the SDK read process.env (dev mode).
 */
export async function startWorkflowApp(server, { user = USERS.default, useProcessEnv = false } = {}) {
  const env = useProcessEnv ? undefined : workflowEnv(server, user);
  const routes = new Map();
  const groups = new Map();
  const scripts = new Map();
  const requests = [];
  const journal = [];
  const waiters = new Set();
  const changed = () => waiters.forEach((w) => w());

  const httpServer = http.createServer(async (req, res) => {
    const path = req.url.split("?")[0];
    const { request, rawBody } = await toWebRequest(req, app.url);
    const record = {
      method: req.method,
      path,
      target: req.url,
      headers: req.headers,
      body: rawBody.toString("utf8"),
      at: Date.now(),
      status: undefined,
      answer: undefined,
      doneAt: undefined,
    };
    requests.push(record);
    changed();
    let response;
    try {
      response = await route(path, request);
    } catch (error) {
      response = new Response(`app error: ${error?.stack ?? error}`, { status: 599 });
    }
    const text = await response.text();
    record.status = response.status;
    record.answer = text;
    record.doneAt = Date.now();
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(text);
    changed();
  });

  async function route(path, request) {
    if (path.startsWith("/wf/")) {
      const handler = routes.get(path.slice(4));
      if (handler) return await handler(request);
    }
    if (path.startsWith("/many/")) {
      const [group] = path.slice(6).split("/");
      const handler = groups.get(group);
      if (handler) return await handler(request, env ?? process.env);
    }
    if (path.startsWith("/third/") || path.startsWith("/failure/")) {
      const queue = scripts.get(path);
      const reply = (queue && queue.shift()) || {};
      if (reply.delayMs) await sleep(reply.delayMs);
      return new Response(reply.body ?? JSON.stringify({ ok: true, path }), {
        status: reply.status ?? 200,
        headers: { "Content-Type": "application/json", ...(reply.headers ?? {}) },
      });
    }
    if (path === "/plain") return new Response("just a web page", { status: 200 });
    return new Response("no such route", { status: 404 });
  }

  await new Promise((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const app = {
    url: `http://127.0.0.1:${httpServer.address().port}`,
    requests,
    journal,
    env,
    /** Serves `routeFunction` at /wf/<name>; returns its URL. */
    /** `options.intercept(request)` may answer a request in the SDK's place (a Response). */
    define(name, routeFunction, options = {}) {
      const { intercept, ...serveOptions } = options;
      const { handler } = serve(routeFunction, { ...(env ? { env } : {}), ...serveOptions });
      routes.set(name, intercept ? async (request) => (await intercept(request)) ?? (await handler(request)) : handler);
      return `${app.url}/wf/${name}`;
    },
    /** Serves a group of workflows (serveMany) at /many/<group>/<id>; returns their URLs. */
    defineMany(group, workflows, options = {}) {
      groups.set(group, serveMany(workflows, options).fetch);
      return Object.fromEntries(Object.keys(workflows).map((id) => [id, `${app.url}/many/${group}/${id}`]));
    },
    /** Records what a route function saw, under its run id. */
    note(context, kind, data) {
      journal.push({ runId: context.workflowRunId, kind, data, at: Date.now() });
      changed();
    },
    notes(runId, kind) {
      return journal.filter((j) => j.runId === runId && (kind === undefined || j.kind === kind));
    },
    /** Waits until `runId` has `n` notes of `kind`; returns them. */
    async waitForNote(runId, kind, n = 1, timeout = WAIT_TIMEOUT_MS) {
      return await waitUntil(() => (app.notes(runId, kind).length >= n ? app.notes(runId, kind) : false), {
        timeout,
        interval: 10,
        what: `${n} '${kind}' note(s) of ${runId} (journal: ${JSON.stringify(journal.filter((j) => j.runId === runId).map((j) => j.kind))})`,
      });
    },
    /** Requests to `path` (exact, without query), in arrival order. */
    on(path) {
      return requests.filter((r) => r.path === path);
    },
    /** Requests that belong to run `runId` (by the header the server sets). */
    ofRun(runId) {
      return requests.filter((r) => r.headers["upstash-workflow-runid"] === runId);
    },
    /** Waits until `path` got `n` requests, all answered; returns them. */
    async waitFor(path, n, timeout = WAIT_TIMEOUT_MS) {
      return await waitUntil(
        () => {
          const got = app.on(path);
          return got.length >= n && got.every((r) => r.status !== undefined) ? got : false;
        },
        { timeout, interval: 10, what: `${n} answered request(s) to ${path} (got ${app.on(path).length})` },
      );
    },
    /** The next request to `path` (a third-party or failure route) gets `reply`. */
    script(path, ...replies) {
      if (!scripts.has(path)) scripts.set(path, []);
      scripts.get(path).push(...replies);
    },
    /** Workflow requests the SDK answered with something else than 2xx/4xx it chose. */
    assertNoSdkErrors() {
      const bad = requests.filter((r) => r.status === 599 || /Failed to verify/.test(r.answer ?? ""));
      if (bad.length) {
        throw new Error(`the SDK rejected or crashed on: ${bad.map((r) => `${r.target} -> ${r.status} ${r.answer}`).join("; ")}`);
      }
    },
    async close() {
      running.delete(app);
      httpServer.closeAllConnections?.();
      await new Promise((resolve) => httpServer.close(resolve));
    },
  };
  running.add(app);
  return app;
}

/**
 * For a test file: a server, a workflow app on it and a workflow client of the default user,
 * started before the file's tests and stopped after them; after each test, the app checks
 * that the SDK rejected or crashed on nothing. `ready` resolves to `{ server, app, client }`
 * (await it in the file's own `before`: hooks of a file may start before this one ended).
 */
export function useWorkflowApp() {
  const shared = {};
  let started;
  shared.ready = new Promise((resolve, reject) => (started = { resolve, reject }));
  before(async () => {
    try {
      shared.server = await startServer();
      shared.app = await startWorkflowApp(shared.server);
      shared.client = new Client({ baseUrl: shared.server.url, token: USERS.default.token });
      started.resolve(shared);
    } catch (error) {
      started.reject(error);
      throw error;
    }
  });
  after(async () => {
    await shared.app?.close();
    await shared.server?.stop();
  });
  afterEach(() => shared.app.assertNoSdkErrors());
  return shared;
}

/** The JSON array a step delivery carried, each entry's body decoded. */
export function deliveredSteps(record) {
  if (!record.body) return [];
  return JSON.parse(record.body).map((e) => ({ ...e, decoded: Buffer.from(e.body, "base64").toString("utf8") }));
}

/**
 * Polls GET /v2/workflows/runs/{id} until the run has ended (404), then waits until every
 * call of the run the running apps got is answered: the SDK ends the run from inside its
 * last call, so the server can say "ended" before that call's answer is written.
 */
export async function waitForRunEnd(server, runId, timeout = WAIT_TIMEOUT_MS) {
  await waitUntil(async () => (await server.raw("GET", `/v2/workflows/runs/${runId}`)).status === 404, {
    timeout,
    interval: 20,
    what: `run ${runId} to end`,
  });
  await waitUntil(() => [...running].every((app) => app.ofRun(runId).every((r) => r.status !== undefined)), {
    timeout,
    interval: 10,
    what: `the calls of run ${runId} to be answered`,
  });
}
