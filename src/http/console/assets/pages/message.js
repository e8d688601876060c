// One message: its options, headers and body, every delivery attempt (status, duration,
// response), the next retry, and its whole event log; cancel it or deliver it now. Read from
// GET /v2/messages/{id} while it is unfinished and from its log entries (GET /v2/events)
// always, so a finished message stays inspectable as long as the log keeps it.

import { ApiError, del, get, post, seg } from "../api.js";
import {
  act, base64ToBytes, bodyView, button, dl, errorBox, fill, fmtDuration, fmtRelative, fmtTime, h, headersTable, pageHeader,
  table, throttle,
} from "../ui.js";
import { stateBadge } from "./messages.js";

export const title = "Message";

const FINAL = new Set(["DELIVERED", "FAILED", "CANCELED"]);

async function allEvents(id) {
  const out = [];
  let cursor;
  for (let i = 0; i < 50; i++) {
    const res = await get("/v2/events", { messageId: id, count: 100, cursor });
    out.push(...(res.events ?? []));
    cursor = res.cursor;
    if (!cursor) break;
  }
  return out.reverse(); // oldest first
}

/** Pairs each ACTIVE entry with the entry that ended its attempt. */
export function attemptsOf(events) {
  const attempts = [];
  let current;
  for (const e of events) {
    if (e.state === "ACTIVE") {
      current = { n: attempts.length + 1, start: e.time };
      attempts.push(current);
    } else if (current && !current.end && ["ERROR", "DELIVERED", "FAILED", "CANCELED"].includes(e.state)) {
      current.end = e.time;
      current.state = e.state === "ERROR" ? "ERROR" : e.state;
      current.status = e.responseStatus;
      current.headers = e.responseHeader ?? e.responseHeaders;
      current.body = e.responseBody;
      current.error = e.error;
      if (e.state === "ERROR" && e.nextDeliveryTime) current.next = e.nextDeliveryTime;
    } else if (current && e.state === "RETRY" && e.nextDeliveryTime) {
      current.next = e.nextDeliveryTime;
    }
  }
  return attempts;
}

function optionsOf(m) {
  const flow = m.flowControlKey
    ? `${m.flowControlKey} (${[m.parallelism && `parallelism ${m.parallelism}`, m.rate && `rate ${m.rate}/${m.period ?? 1}s`].filter(Boolean).join(", ") || "no limits"})`
    : undefined;
  return dl([
    ["Destination", h("code", { class: "wrap" }, m.url)],
    ["Method", m.method],
    ["URL group", m.topicName && `${m.topicName}${m.endpointName ? ` (endpoint ${m.endpointName})` : ""}`],
    ["Queue", m.queueName && h("a", { href: "#/queues" }, m.queueName)],
    ["Schedule", m.scheduleId && h("a", { href: "#/schedules" }, m.scheduleId)],
    ["Created", fmtTime(m.createdAt)],
    ["Not before", m.notBefore && m.notBefore !== m.createdAt ? `${fmtTime(m.notBefore)} (${fmtRelative(m.notBefore)})` : undefined],
    ["Retries", m.maxRetries],
    ["Retry delay", m.retryDelayExpression && h("code", {}, m.retryDelayExpression)],
    ["Timeout", m.timeout !== undefined ? `${m.timeout}` : undefined],
    ["Callback", m.callback && h("code", { class: "wrap" }, m.callback)],
    ["Failure callback", m.failureCallback && h("code", { class: "wrap" }, m.failureCallback)],
    ["Labels", (m.labels ?? []).join(", ")],
    ["Flow control", flow],
    ["Caller IP", m.callerIP ?? m.callerIp],
  ]);
}

export function mount(ctx) {
  const id = ctx.params[0];
  const actions = h("div", { class: "actions" });
  const content = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  fill(ctx.main, pageHeader(h("span", {}, "Message ", h("code", {}, id)), actions), content);

  const load = throttle(async () => {
    let events;
    let pending;
    try {
      [events, pending] = await Promise.all([
        allEvents(id),
        get(`/v2/messages/${seg(id)}`).catch((e) => {
          if (e instanceof ApiError && e.status === 404) return undefined;
          throw e;
        }),
      ]);
    } catch (error) {
      fill(content, errorBox(error));
      return;
    }
    if (events.length === 0 && !pending) {
      fill(actions);
      fill(content, h("p", { class: "empty" }, `No message ${id} for ${ctx.user.name}: it belongs to another user, or the event log no longer holds it.`));
      return;
    }
    const last = events[events.length - 1];
    const state = last?.state ?? "CREATED";
    const finished = FINAL.has(state);
    const m = pending ?? events[0];
    const bodyBytes = events[0]?.body !== undefined ? base64ToBytes(events[0].body) : new TextEncoder().encode(pending?.body ?? "");
    const waitingUntil = !finished && (state === "CREATED" || state === "RETRY") ? (last.nextDeliveryTime ?? m.notBefore) : undefined;

    fill(
      actions,
      stateBadge(state),
      !finished && waitingUntil > ctx.serverNow()
        ? button("Deliver now", () => act("Deliver now", () => post(`/__qstash/messages/${seg(id)}/deliver`)).then(load.now), { class: "btn" })
        : null,
      !finished
        ? button(
            "Cancel message",
            () => confirm(`Cancel ${id}?`) && act("Cancel", () => del(`/v2/messages/${seg(id)}`)).then(load.now),
            { class: "btn danger" },
          )
        : null,
    );

    const attempts = attemptsOf(events);
    const attemptRows = attempts.map((a) =>
      h(
        "tr",
        {},
        h("td", {}, `#${a.n}`),
        h("td", {}, fmtTime(a.start)),
        h("td", {}, a.end ? stateBadge(a.state) : stateBadge("ACTIVE")),
        h("td", {}, a.status !== undefined ? h("code", {}, String(a.status || "no response")) : "…"),
        h("td", {}, a.end ? fmtDuration(a.end - a.start) : "in flight"),
        h(
          "td",
          {},
          a.error ?? "",
          a.next ? h("div", { class: "muted" }, `next retry ${fmtTime(a.next)} (${fmtRelative(a.next, ctx.serverNow())})`) : "",
          a.end && (a.headers || a.body)
            ? h(
                "details",
                {},
                h("summary", {}, "Response"),
                headersTable(a.headers, "Response headers"),
                bodyView(base64ToBytes(a.body), { label: "Response body" }),
              )
            : "",
        ),
      ),
    );

    fill(
      content,
      waitingUntil
        ? h("p", { class: "note" }, `${state === "RETRY" ? "Next retry" : "First attempt"} ${fmtTime(waitingUntil)} (${fmtRelative(waitingUntil, ctx.serverNow())}).`)
        : null,
      h("section", { "aria-labelledby": "att-h" }, h("h2", { id: "att-h" }, `Attempts (${attempts.length})`), table("Delivery attempts", ["#", "Started", "Result", "Status", "Duration", "Details"], attemptRows, { empty: "No attempt yet." })),
      h("section", { "aria-labelledby": "opt-h" }, h("h2", { id: "opt-h" }, "Options"), optionsOf(m)),
      h("section", { "aria-labelledby": "hdr-h" }, h("h2", { id: "hdr-h" }, "Headers"), headersTable(m.header)),
      h("section", { "aria-labelledby": "body-h" }, h("h2", { id: "body-h" }, "Body"), bodyView(bodyBytes)),
      h(
        "section",
        { "aria-labelledby": "log-h" },
        h("h2", { id: "log-h" }, "Event log"),
        table(
          "Event log of this message, oldest first",
          ["Time", "State", "Details"],
          events.map((e) => [fmtTime(e.time), stateBadge(e.state), [e.responseStatus !== undefined ? `status ${e.responseStatus} ` : "", e.error ?? "", e.nextDeliveryTime ? ` next ${fmtTime(e.nextDeliveryTime)}` : ""].join("")]),
        ),
      ),
    );
  }, 700);

  load();
  return {
    update(s, prev) {
      if (!prev || s.logSeq !== prev.logSeq) load();
    },
    destroy() {
      load.cancel();
    },
  };
}
