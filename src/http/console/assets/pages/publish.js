// Publish a test message (URL or URL group, optionally through a queue) and watch it flow:
// the published messages' latest states update live below the form.

import { api, get } from "../api.js";
import { errorBox, field, fill, fmtTime, formValues, h, input, pageHeader, select, table, throttle } from "../ui.js";
import { stateBadge } from "./messages.js";

export const title = "Publish";

/** "Name: value" lines → headers; plain names are forwarded to the destination. */
export function parseHeaderLines(textValue) {
  const out = {};
  for (const line of textValue.split("\n")) {
    const at = line.indexOf(":");
    if (at <= 0) continue;
    const name = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    const keep = /^upstash-/i.test(name) || /^content-type$/i.test(name);
    out[keep ? name : `Upstash-Forward-${name}`] = value;
  }
  return out;
}

export function mount(ctx) {
  const form = h(
    "form",
    { class: "publish-form", "aria-label": "Publish a message" },
    field("Destination", input("destination", { required: true, placeholder: "http://localhost:3000/api/job or a URL group name", value: ctx.query.get("destination") ?? "" }), "A URL, or the name of a URL group."),
    h(
      "div",
      { class: "grid" },
      field("Method", select("method", ["POST", "GET", "PUT", "PATCH", "DELETE"], "POST")),
      field("Delay", input("delay", { placeholder: "e.g. 10s, 5m" })),
      field("Retries", input("retries", { type: "number", min: "0", max: String(ctx.config.maxRetries), inputmode: "numeric", placeholder: "3" })),
      field("Queue", input("queue", { placeholder: "optional: enqueue" })),
      field("Label", input("label")),
      field("Content-Type", input("contentType", { value: "application/json" })),
      field("Callback", input("callback", { placeholder: "optional URL" })),
      field("Failure callback", input("failureCallback", { placeholder: "optional URL" })),
    ),
    field("Headers", h("textarea", { name: "headers", rows: "3", placeholder: "X-Api-Key: secret\nUpstash-Timeout: 30s" }), "One \"Name: value\" per line. Plain names are forwarded to the destination; Upstash-* headers configure delivery."),
    field("Body", h("textarea", { name: "body", rows: "6", spellcheck: "false" }, '{"hello": "world"}')),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn primary" }, "Publish")),
  );
  const result = h("div", { "aria-live": "polite" });
  const tracked = [];
  fill(ctx.main, pageHeader(title, h("p", { class: "lede" }, `Sends through POST /v2/publish as ${ctx.user.name}.`)), form, result);

  const drawTracked = async () => {
    if (tracked.length === 0) return;
    const rows = await Promise.all(
      tracked.map(async (t) => {
        try {
          const res = await get("/v2/events", { messageId: t.id, count: 1 });
          t.last = res.events?.[0];
        } catch {
          // keep the last known state
        }
        return [
          h("a", { href: `#/messages/${encodeURIComponent(t.id)}`, class: "mono" }, t.id),
          h("span", { class: "url" }, t.url),
          t.last ? stateBadge(t.last.state) : "…",
          t.last ? fmtTime(t.last.time) : "",
        ];
      }),
    );
    fill(result, h("h2", {}, "Published"), table("Published messages, live", ["Message", "Destination", "Latest state", "At"], rows));
  };
  const refresh = throttle(drawTracked, 500);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const headers = parseHeaderLines(form.elements.headers.value);
    if (v.contentType) headers["Content-Type"] = v.contentType;
    if (v.method) headers["Upstash-Method"] = v.method;
    if (v.delay) headers["Upstash-Delay"] = v.delay;
    if (v.retries !== "") headers["Upstash-Retries"] = v.retries;
    if (v.label) headers["Upstash-Label"] = v.label;
    if (v.callback) headers["Upstash-Callback"] = v.callback;
    if (v.failureCallback) headers["Upstash-Failure-Callback"] = v.failureCallback;
    const path = v.queue ? `/v2/enqueue/${encodeURIComponent(v.queue)}/${v.destination}` : `/v2/publish/${v.destination}`;
    try {
      const res = await api("POST", path, { headers, body: form.elements.body.value });
      const items = Array.isArray(res) ? res : [{ ...res, url: v.destination }];
      for (const item of items) tracked.unshift({ id: item.messageId, url: item.url ?? v.destination });
      tracked.splice(10);
      await drawTracked();
    } catch (error) {
      fill(result, errorBox(error));
    }
  });

  return {
    update(s, prev) {
      if (!prev || s.logSeq !== prev.logSeq) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
