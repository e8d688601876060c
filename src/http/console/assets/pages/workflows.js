// Workflow runs (GET /v2/workflows/events?groupBy=workflowRunId): list by state, a run's
// timeline of steps (sequential and parallel groups, sleeps, calls, waits, invokes, errors),
// its failure function; cancel, notify, resume and restart. When the server has no workflow
// API yet (404), the page says so.

import { ApiError, del, get, post, seg } from "../api.js";
import {
  act, badge, button, dl, errorBox, field, fill, fmtDuration, fmtTime, h, headersTable, input, pageHeader,
  select, table, throttle,
} from "../ui.js";

export const title = "Workflow runs";

const STATES = ["RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED", "RUN_CANCELED"];

function runBadge(state) {
  return badge((state ?? "").replace("RUN_", "").toLowerCase(), (state ?? "").toLowerCase());
}

function stepBadge(state) {
  return badge((state ?? "").replace("STEP_", "").toLowerCase(), (state ?? "").toLowerCase());
}

function text(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

function pre(value) {
  const t = text(value);
  return t === undefined ? undefined : h("pre", { class: "small", tabindex: "0" }, t);
}

function stepDetails(s) {
  return dl([
    ["Type", s.stepType],
    ["Call type", s.callType],
    ["Output", pre(s.out)],
    ["Sleep for", s.sleepFor !== undefined ? fmtDuration(Number(s.sleepFor) * 1000) : undefined],
    ["Sleep until", s.sleepUntil && fmtTime(Number(s.sleepUntil) * 1000)],
    ["Call", s.callUrl && h("code", { class: "wrap" }, `${s.callMethod ?? "GET"} ${s.callUrl}`)],
    ["Call headers", s.callHeaders && headersTable(s.callHeaders, "Call headers")],
    ["Call body", pre(s.callBody)],
    ["Response status", s.callResponseStatus],
    ["Response headers", s.callResponseHeaders && headersTable(s.callResponseHeaders, "Call response headers")],
    ["Response body", pre(s.callResponseBody)],
    ["Waits for event", s.waitEventId && h("code", {}, s.waitEventId)],
    ["Wait timeout", s.waitTimeoutDuration ?? (s.waitTimeoutDeadline && fmtTime(Number(s.waitTimeoutDeadline) * 1000))],
    ["Timed out", s.waitTimeout !== undefined ? String(s.waitTimeout) : undefined],
    ["Invoked run", s.invokedWorkflowRunId && h("a", { href: `#/workflows/${encodeURIComponent(s.invokedWorkflowRunId)}` }, s.invokedWorkflowRunId)],
    ["Invoked URL", s.invokedWorkflowUrl],
    ["Invoke body", pre(s.invokedWorkflowRunBody)],
    ["Message", s.messageId && h("a", { href: `#/messages/${encodeURIComponent(s.messageId)}`, class: "mono" }, s.messageId)],
  ]);
}

function stepCard(s) {
  const name = s.stepName ?? (s.stepId !== undefined ? `step ${s.stepId}` : s.messageId ?? "step");
  return h(
    "li",
    { class: "step" },
    h(
      "details",
      {},
      h(
        "summary",
        {},
        h("span", { class: "step-name" }, name),
        " ",
        s.stepType ? h("span", { class: "muted" }, s.stepType) : null,
        " ",
        s.state ? stepBadge(s.state) : null,
        s.createdAt ? h("span", { class: "muted small" }, ` ${fmtTime(s.createdAt)}`) : null,
      ),
      stepDetails(s),
      s.errors?.length
        ? h(
            "div",
            {},
            h("h4", {}, "Errors"),
            s.errors.map((e) => h("div", { class: "error-box" }, `${e.status ?? ""} ${e.error ?? ""}`, e.body ? pre(e.body) : null, e.time ? h("div", { class: "muted small" }, fmtTime(e.time)) : null)),
          )
        : null,
    ),
  );
}

function timeline(run) {
  const groups = run.steps ?? [];
  if (groups.length === 0) return h("p", { class: "empty" }, "No steps recorded yet.");
  return h(
    "ol",
    { class: "timeline" },
    groups.map((g) =>
      h(
        "li",
        { class: `group group-${g.type}` },
        h("span", { class: "group-label" }, g.type === "parallel" ? `parallel (${g.steps?.length ?? 0})` : g.type === "next" ? "in progress" : "step"),
        h("ul", { class: g.type === "parallel" ? "steps parallel" : "steps" }, (g.steps ?? []).map(stepCard)),
      ),
    ),
  );
}

export function mount(ctx) {
  const runId = ctx.params[0];
  const state = ctx.query.get("state") ?? "";
  const filter = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter workflow runs" },
    field("State", select("state", [["", "any"], ...STATES], state)),
    field("Run id", input("workflowRunId", { value: ctx.query.get("workflowRunId") ?? "" })),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Apply")),
  );
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ctx.setQuery({ state: filter.elements.state.value, workflowRunId: filter.elements.workflowRunId.value.trim() });
  });
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const detail = h("section", { class: "panel", hidden: true });
  fill(ctx.main, pageHeader(title), filter, list, detail);

  const drawDetail = (run) => {
    detail.hidden = !run;
    if (!run) return;
    const id = run.workflowRunId;
    const notify = h(
      "form",
      { class: "inline-form", "aria-label": "Notify this run" },
      field("Event id", input("eventId", { required: true })),
      field("Event data", input("data", { placeholder: "JSON or text" })),
      h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn" }, "Notify")),
    );
    notify.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const eventId = notify.elements.eventId.value.trim();
      act("Notify", () => post(`/v2/notify/${seg(id)}/${seg(eventId)}`, { body: notify.elements.data.value })).then(refresh.now);
    });
    const ff = run.failureFunction;
    fill(
      detail,
      h("h2", { tabindex: "-1" }, "Run ", h("code", {}, id), " ", runBadge(run.workflowState)),
      h(
        "div",
        { class: "actions" },
        run.workflowState === "RUN_STARTED"
          ? button("Cancel run", () => confirm(`Cancel ${id}?`) && act("Cancel", () => del(`/v2/workflows/runs/${seg(id)}`, { query: { cancel: "true" } })).then(refresh.now), { class: "btn danger" })
          : null,
        run.dlqId ? button("Resume", () => act("Resume", () => post("/v2/workflows/dlq/resume", { query: { dlqIds: run.dlqId } })).then(refresh.now)) : null,
        run.dlqId ? button("Restart", () => act("Restart", () => post("/v2/workflows/dlq/restart", { query: { dlqIds: run.dlqId } })).then(refresh.now)) : null,
      ),
      dl([
        ["URL", h("code", { class: "wrap" }, run.workflowUrl)],
        ["Started", fmtTime(run.workflowRunCreatedAt)],
        ["Completed", run.workflowRunCompletedAt && fmtTime(run.workflowRunCompletedAt)],
        ["Invoked by", run.invoker && h("a", { href: `#/workflows/${encodeURIComponent(run.invoker.workflowRunId)}` }, run.invoker.workflowRunId)],
        ["Result", pre(run.workflowRunResponse)],
        ["Labels", (run.labels ?? (run.label ? [run.label] : [])).join(", ")],
        ["DLQ id", run.dlqId],
      ]),
      h("h3", {}, "Timeline"),
      timeline(run),
      ff
        ? h(
            "div",
            {},
            h("h3", {}, "Failure function ", ff.state ? badge(ff.state, ff.state.toLowerCase()) : null),
            dl([
              ["URL", ff.url],
              ["Message", ff.messageId],
              ["Failing status", ff.failStatus],
              ["Failing response", pre(ff.failResponse)],
              ["Its response", ff.responseStatus],
              ["Its response body", pre(ff.responseBody)],
            ]),
          )
        : null,
      h("h3", {}, "Notify"),
      notify,
    );
  };

  const refresh = throttle(async () => {
    let res;
    try {
      res = await get("/v2/workflows/events", {
        groupBy: "workflowRunId",
        count: 50,
        state: state || undefined,
        workflowRunId: runId ?? ctx.query.get("workflowRunId") ?? undefined,
      });
    } catch (error) {
      const unavailable = error instanceof ApiError && error.status === 404;
      fill(list, unavailable ? h("p", { class: "empty", id: "workflows-unavailable" }, "The workflow API is not available on this server yet, so there are no workflow runs to show.") : errorBox(error));
      return;
    }
    const runs = res?.runs ?? [];
    const rows = runs.map((r) => [
      h("a", { href: `#/workflows/${encodeURIComponent(r.workflowRunId)}`, class: "mono" }, r.workflowRunId),
      runBadge(r.workflowState),
      h("span", { class: "url" }, r.workflowUrl),
      fmtTime(r.workflowRunCreatedAt),
      r.workflowRunCompletedAt ? fmtDuration(r.workflowRunCompletedAt - r.workflowRunCreatedAt) : "running",
    ]);
    fill(list, table("Workflow runs", ["Run", "State", "URL", "Started", "Took"], rows, { empty: "No workflow runs yet." }));
    drawDetail(runId ? runs.find((r) => r.workflowRunId === runId) : undefined);
  }, 1000);

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.logSeq !== prev.logSeq) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
