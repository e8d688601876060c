// Dead letters: list with the API's filters, inspect the failing response, retry (optionally
// overriding retries, delay, retry delay, method, timeout, label) or delete, one or many.

import { del, get, post, seg } from "../api.js";
import {
  act, base64ToBytes, bodyView, button, dl, errorBox, field, fill, fmtTime, formValues, h, headersTable, input, localToMs,
  msToLocal, pageHeader, select, table, throttle,
} from "../ui.js";

export const title = "Dead letters";

const FILTERS = ["messageId", "url", "topicName", "queueName", "scheduleId", "label", "responseStatus", "fromDate", "toDate"];

/** The override headers of a retry, from the overrides form. */
function overrideHeaders(form) {
  const v = formValues(form);
  const out = {};
  if (v.retries !== "") out["Upstash-Retries"] = v.retries;
  if (v.delay) out["Upstash-Delay"] = v.delay;
  if (v.retryDelay) out["Upstash-Retry-Delay"] = v.retryDelay;
  if (v.method) out["Upstash-Method"] = v.method;
  if (v.timeout) out["Upstash-Timeout"] = v.timeout;
  if (v.label) out["Upstash-Label"] = v.label;
  return out;
}

function overridesForm() {
  return h(
    "form",
    { class: "overrides", "aria-label": "Retry overrides" },
    h("p", { class: "muted" }, "Overrides for retries (leave empty to keep what the message was published with):"),
    h(
      "div",
      { class: "grid" },
      field("Retries", input("retries", { type: "number", min: "0", inputmode: "numeric" })),
      field("Delay", input("delay", { placeholder: "e.g. 10s" })),
      field("Retry delay", input("retryDelay", { placeholder: "e.g. 1000 * retried" })),
      field("Method", select("method", [["", "keep"], "GET", "POST", "PUT", "PATCH", "DELETE"], "")),
      field("Timeout", input("timeout", { placeholder: "e.g. 30s" })),
      field("Label", input("label")),
    ),
  );
}

export function mount(ctx) {
  const q = ctx.query;
  const filters = Object.fromEntries(FILTERS.map((f) => [f, q.get(f) ?? ""]));
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter dead letters" },
    field("Message id", input("messageId", { value: filters.messageId })),
    field("URL", input("url", { value: filters.url })),
    field("URL group", input("topicName", { value: filters.topicName })),
    field("Queue", input("queueName", { value: filters.queueName })),
    field("Schedule", input("scheduleId", { value: filters.scheduleId })),
    field("Label", input("label", { value: filters.label })),
    field("Response status", input("responseStatus", { value: filters.responseStatus, inputmode: "numeric", placeholder: "e.g. 500" })),
    field("From", h("input", { type: "datetime-local", name: "fromDate", value: msToLocal(filters.fromDate) })),
    field("To", h("input", { type: "datetime-local", name: "toDate", value: msToLocal(filters.toDate) })),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Apply filters"), button("Clear", () => ctx.setQuery({}))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    v.fromDate = localToMs(v.fromDate);
    v.toDate = localToMs(v.toDate);
    ctx.setQuery(v);
  });
  const overrides = overridesForm();
  const bulk = h("div", { class: "bulk actions" });
  const list = h("div");
  const detail = h("section", { class: "panel", "aria-live": "polite", hidden: true });
  fill(ctx.main, pageHeader(title), form, overrides, bulk, list, detail);

  let entries = [];
  let cursor;
  const selected = new Set();
  let inspecting = ctx.params[0];

  const retry = (ids) =>
    act(
      ids.length === 1 ? "Retry" : `Retry ${ids.length}`,
      () => post("/v2/dlq/retry", { query: { dlqIds: ids }, headers: overrideHeaders(overrides) }),
      { success: ids.length === 1 ? "Retried: a new message was published" : `Retried ${ids.length} messages` },
    ).then(() => {
      ids.forEach((i) => selected.delete(i));
      refresh.now();
    });
  const remove = (ids) =>
    confirm(`Delete ${ids.length} dead letter${ids.length === 1 ? "" : "s"}?`) &&
    act(ids.length === 1 ? "Delete" : `Delete ${ids.length}`, () => (ids.length === 1 ? del(`/v2/dlq/${seg(ids[0])}`) : del("/v2/dlq", { query: { dlqIds: ids } }))).then(() => {
      ids.forEach((i) => selected.delete(i));
      if (ids.includes(inspecting)) inspecting = undefined;
      refresh.now();
    });

  const drawBulk = () => {
    const ids = [...selected];
    fill(
      bulk,
      h("span", { class: "muted" }, `${ids.length} selected`),
      button("Retry selected", () => retry(ids), { disabled: ids.length === 0 }),
      button("Delete selected", () => remove(ids), { class: "btn danger", disabled: ids.length === 0 }),
    );
  };

  const drawDetail = () => {
    const e = entries.find((x) => x.dlqId === inspecting);
    detail.hidden = !e;
    if (!e) return;
    const responseBytes = e.responseBodyBase64 ? base64ToBytes(e.responseBodyBase64) : new TextEncoder().encode(e.responseBody ?? "");
    const bodyBytes = e.bodyBase64 ? base64ToBytes(e.bodyBase64) : new TextEncoder().encode(e.body ?? "");
    fill(
      detail,
      h("h2", { tabindex: "-1", id: "dlq-detail-h" }, "Dead letter ", h("code", {}, e.dlqId)),
      h(
        "div",
        { class: "actions" },
        button("Retry", () => retry([e.dlqId]), { class: "btn primary" }),
        button("Delete", () => remove([e.dlqId]), { class: "btn danger" }),
        h("a", { class: "btn", href: `#/messages/${encodeURIComponent(e.messageId)}` }, "Message history"),
        button("Close", () => {
          inspecting = undefined;
          drawDetail();
        }),
      ),
      dl([
        ["Message", h("code", {}, e.messageId)],
        ["Destination", h("code", { class: "wrap" }, e.url)],
        ["Method", e.method],
        ["Failed", fmtTime(Number(e.dlqId.split("-")[0]))],
        ["Error", e.error],
        ["Retries", e.maxRetries],
        ["Queue", e.queueName],
        ["Schedule", e.scheduleId],
        ["Labels", (e.labels ?? []).join(", ")],
      ]),
      h("h3", {}, `Last response: ${e.responseStatus || "none"}`),
      headersTable(e.responseHeader ?? e.responseHeaders, "Response headers"),
      bodyView(responseBytes, { label: "Response body" }),
      h("h3", {}, "Message"),
      headersTable(e.header),
      bodyView(bodyBytes),
    );
  };

  const draw = () => {
    const all = h("input", {
      type: "checkbox",
      "aria-label": "Select all shown",
      checked: entries.length > 0 && entries.every((e) => selected.has(e.dlqId)),
      onchange: (ev) => {
        for (const e of entries) ev.target.checked ? selected.add(e.dlqId) : selected.delete(e.dlqId);
        draw();
      },
    });
    const rows = entries.map((e) =>
      h(
        "tr",
        { class: e.dlqId === inspecting ? "current" : "" },
        h(
          "td",
          {},
          h("input", {
            type: "checkbox",
            "aria-label": `Select ${e.dlqId}`,
            checked: selected.has(e.dlqId),
            onchange: (ev) => {
              ev.target.checked ? selected.add(e.dlqId) : selected.delete(e.dlqId);
              drawBulk();
            },
          }),
        ),
        h("td", { class: "nowrap" }, fmtTime(Number(e.dlqId.split("-")[0]))),
        h("td", {}, h("code", {}, String(e.responseStatus || "—"))),
        h("td", { class: "url" }, e.url),
        h("td", {}, e.error ?? ""),
        h(
          "td",
          { class: "nowrap" },
          button("Inspect", () => {
            inspecting = e.dlqId;
            draw();
            detail.querySelector("h2")?.focus();
          }, { "aria-label": `Inspect ${e.dlqId}` }),
          " ",
          button("Retry", () => retry([e.dlqId]), { "aria-label": `Retry ${e.dlqId}` }),
        ),
      ),
    );
    fill(
      list,
      entries.length === 0
        ? h("p", { class: "empty" }, "The dead-letter queue is empty. Messages land here when their retries are exhausted.")
        : table("Dead letters, newest first", [all, "Failed", "Status", "Destination", "Error", "Actions"], rows),
      cursor ? button("Load more", loadMore) : null,
    );
    drawBulk();
    drawDetail();
  };

  const refresh = throttle(async () => {
    try {
      const res = await get("/v2/dlq", { ...filters, count: 100 });
      entries = res.messages ?? [];
      cursor = res.cursor;
      for (const id of [...selected]) if (!entries.some((e) => e.dlqId === id)) selected.delete(id);
      draw();
    } catch (error) {
      fill(list, errorBox(error));
    }
  }, 1000);

  async function loadMore() {
    const res = await get("/v2/dlq", { ...filters, count: 100, cursor });
    entries = [...entries, ...(res.messages ?? [])];
    cursor = res.cursor;
    draw();
  }

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.dlq !== prev.dlq || s.counters.deadLettered !== prev.counters.deadLettered) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
