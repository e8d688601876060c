// Messages and logs: a live tail of the event log (GET /v2/events) with the API's filters.
// When the live overview says the log moved, the newest page is read again.

import { get } from "../api.js";
import {
  badge, base64ToBytes, button, errorBox, field, fill, fmtRelative, fmtTime, formValues, h, input, localToMs, msToLocal,
  pageHeader, select, table, throttle,
} from "../ui.js";

export const title = "Messages & logs";

export const STATES = ["CREATED", "ACTIVE", "RETRY", "ERROR", "DELIVERED", "FAILED", "CANCEL_REQUESTED", "CANCELED"];
const FILTERS = ["state", "messageId", "url", "label", "queueName", "scheduleId", "topicName", "fromDate", "toDate"];
const PAGE = 50;

const key = (e) => `${e.messageId}|${e.state}|${e.time}`;

export function stateBadge(state) {
  return badge(state, state.toLowerCase());
}

function outcome(e) {
  if (e.responseStatus !== undefined) {
    const bytes = base64ToBytes(e.responseBody);
    const text = new TextDecoder().decode(bytes.slice(0, 80));
    return h("span", {}, h("code", {}, String(e.responseStatus)), text ? ` ${text}` : "", e.error ? h("span", { class: "muted" }, ` · ${e.error}`) : "");
  }
  if (e.error) return e.error;
  if (e.nextDeliveryTime) return `next attempt ${fmtRelative(e.nextDeliveryTime)}`;
  return "";
}

export function mount(ctx) {
  const q = ctx.query;
  const filters = Object.fromEntries(FILTERS.map((f) => [f, q.get(f) ?? ""]));
  const live = h("input", { type: "checkbox", id: "live-tail", checked: q.get("paused") !== "1" });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the event log" },
    field("State", select("state", [["", "any"], ...STATES, ["IN_PROGRESS", "IN_PROGRESS (active, retry, error)"]], filters.state)),
    field("Message id", input("messageId", { value: filters.messageId, placeholder: "msg_…" })),
    field("URL", input("url", { value: filters.url, placeholder: "https://…" })),
    field("Label", input("label", { value: filters.label })),
    field("Queue", input("queueName", { value: filters.queueName })),
    field("Schedule", input("scheduleId", { value: filters.scheduleId })),
    field("URL group", input("topicName", { value: filters.topicName })),
    field("From", h("input", { type: "datetime-local", name: "fromDate", value: msToLocal(filters.fromDate) })),
    field("To", h("input", { type: "datetime-local", name: "toDate", value: msToLocal(filters.toDate) })),
    h(
      "div",
      { class: "field actions" },
      h("button", { type: "submit", class: "btn primary" }, "Apply filters"),
      button("Clear", () => ctx.setQuery({})),
    ),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    v.fromDate = localToMs(v.fromDate);
    v.toDate = localToMs(v.toDate);
    ctx.setQuery(v);
  });
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const list = h("div", { class: "log-list" });
  const more = h("div");
  fill(
    ctx.main,
    pageHeader(title, h("label", { class: "toggle" }, live, " Live tail")),
    form,
    status,
    list,
    more,
  );

  let entries = [];
  let seen = new Set();
  let older;
  const query = (cursor) => ({ ...filters, count: PAGE, cursor });

  const draw = (fresh = new Set()) => {
    const rows = entries.map((e) =>
      h(
        "tr",
        { class: fresh.has(key(e)) ? "fresh" : "" },
        h("td", { class: "nowrap" }, h("time", { datetime: new Date(e.time).toISOString(), title: fmtRelative(e.time, ctx.serverNow()) }, fmtTime(e.time))),
        h("td", {}, stateBadge(e.state)),
        h("td", {}, h("a", { href: `#/messages/${encodeURIComponent(e.messageId)}`, class: "mono" }, e.messageId)),
        h("td", { class: "url" }, e.topicName ? `${e.topicName} → ` : "", e.url, e.queueName ? h("span", { class: "muted" }, ` (queue ${e.queueName})`) : ""),
        h("td", { class: "outcome" }, outcome(e)),
      ),
    );
    fill(list, table("Event log, newest first", ["Time", "State", "Message", "Destination", "Outcome"], rows, { empty: "No log entries match. Publish something (see Publish) and it shows up here live." }));
    fill(more, older ? button("Load older entries", loadOlder) : null);
  };

  const refresh = throttle(async () => {
    try {
      const res = await get("/v2/events", query());
      const page = res.events ?? [];
      const fresh = new Set(page.map(key).filter((k) => seen.size > 0 && !seen.has(k)));
      // Keep the older pages already loaded below the newest one.
      const newest = new Set(page.map(key));
      const tail = entries.filter((e) => !newest.has(key(e)) && page.length > 0 && e.time <= page[page.length - 1].time);
      entries = [...page, ...(tail.length ? tail : [])];
      if (!tail.length) older = res.cursor;
      for (const e of page) seen.add(key(e));
      status.textContent = `${entries.length} entries shown${live.checked ? ", updating live" : ", paused"}.`;
      draw(fresh);
    } catch (error) {
      fill(list, errorBox(error));
    }
  }, 500);

  async function loadOlder() {
    try {
      const res = await get("/v2/events", query(older));
      entries = [...entries, ...(res.events ?? [])];
      for (const e of res.events ?? []) seen.add(key(e));
      older = res.cursor;
      draw();
    } catch (error) {
      fill(more, errorBox(error));
    }
  }

  live.addEventListener("change", () => {
    if (live.checked) refresh();
    status.textContent = live.checked ? "Updating live." : "Paused: new entries are not shown until you resume.";
  });
  refresh();
  return {
    update(s, prev) {
      if (live.checked && (!prev || s.logSeq !== prev.logSeq)) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
