// Schedules: cron, destination, the next run times in the schedule's own time zone, the last
// run and its messages; pause/resume, run now, delete.

import { del, get, patch, post, seg } from "../api.js";
import { act, badge, button, errorBox, fill, fmtRelative, fmtTime, h, pageHeader, table, throttle } from "../ui.js";

export const title = "Schedules";

const UPCOMING = 3;

function lastRun(s) {
  if (!s.lastScheduleTime) return h("span", { class: "muted" }, "never");
  const states = Object.entries(s.lastScheduleStates ?? {});
  return h(
    "div",
    {},
    fmtTime(s.lastScheduleTime),
    states.map(([id, st]) => h("div", {}, h("a", { href: `#/messages/${encodeURIComponent(id)}`, class: "mono small" }, id), " ", badge(st, st.toLowerCase()))),
    s.error ? h("div", { class: "error-text" }, s.error) : null,
  );
}

export function mount(ctx) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  fill(
    ctx.main,
    pageHeader(title, h("p", { class: "lede" }, "Run times are shown in each schedule's time zone (CRON_TZ, UTC by default).")),
    list,
  );
  const upcoming = new Map();

  const refresh = throttle(async () => {
    let schedules;
    try {
      schedules = await get("/v2/schedules");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    // Next run times, computed by the server from the schedule's cron (first 50 schedules).
    await Promise.all(
      schedules.slice(0, 50).map(async (s) => {
        try {
          upcoming.set(s.scheduleId, await get(`/__qstash/schedules/${seg(s.scheduleId)}/upcoming`, { count: UPCOMING }));
        } catch {
          upcoming.delete(s.scheduleId);
        }
      }),
    );
    const rows = schedules.map((s) => {
      const up = upcoming.get(s.scheduleId);
      const toggle = s.isPaused
        ? button("Resume", () => act("Resume", () => patch(`/v2/schedules/${seg(s.scheduleId)}/resume`)).then(refresh.now), { "aria-label": `Resume ${s.scheduleId}` })
        : button("Pause", () => act("Pause", () => patch(`/v2/schedules/${seg(s.scheduleId)}/pause`)).then(refresh.now), { "aria-label": `Pause ${s.scheduleId}` });
      return h(
        "tr",
        { "data-schedule": s.scheduleId },
        h("td", {}, h("code", {}, s.scheduleId)),
        h("td", {}, h("code", {}, s.cron)),
        h("td", { class: "url" }, s.destination, s.queueName ? h("div", { class: "muted" }, `queue ${s.queueName}`) : null),
        h("td", {}, s.isPaused ? badge("paused", "paused") : badge("active", "active")),
        h(
          "td",
          { class: "nowrap" },
          up
            ? h(
                "ul",
                { class: "plain", "aria-label": `Next runs (${up.timeZone})` },
                up.times.map((t) => h("li", {}, fmtTime(t, up.timeZone), " ", h("span", { class: "muted" }, fmtRelative(t, ctx.serverNow())))),
                h("li", { class: "muted small" }, up.timeZone),
              )
            : "",
          s.isPaused ? h("div", { class: "muted small" }, "(skipped while paused)") : null,
        ),
        h("td", {}, lastRun(s)),
        h(
          "td",
          {},
          h(
            "div",
            { class: "actions" },
            toggle,
          button(
            "Run now",
            () =>
              act("Run now", () => post(`/__qstash/schedules/${seg(s.scheduleId)}/run`), { success: `${s.scheduleId}: published now` }).then(refresh.now),
            { "aria-label": `Run ${s.scheduleId} now` },
          ),
          button(
            "Delete",
            () => confirm(`Delete schedule ${s.scheduleId}?`) && act("Delete", () => del(`/v2/schedules/${seg(s.scheduleId)}`)).then(refresh.now),
            { class: "btn danger", "aria-label": `Delete ${s.scheduleId}` },
          ),
          ),
        ),
      );
    });
    fill(
      list,
      table("Schedules", ["Id", "Cron", "Destination", "State", "Next runs", "Last run", "Actions"], rows, {
        empty: "No schedules. Create one with POST /v2/schedules/<destination> and an Upstash-Cron header, or the SDK's schedules.create().",
      }),
    );
  }, 1500);

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.logSeq !== prev.logSeq || s.schedules.total !== prev.schedules.total || s.schedules.paused !== prev.schedules.paused) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
