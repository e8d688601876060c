// Queues: lag, parallelism and paused state; pause/resume, change parallelism, delete.

import { del, get, post, seg } from "../api.js";
import { act, badge, button, errorBox, field, fill, fmtTime, formValues, h, input, pageHeader, table, throttle } from "../ui.js";

export const title = "Queues";

export function mount(ctx) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Create or update a queue" },
    field("Queue name", input("queueName", { required: true, pattern: "[A-Za-z0-9._\\-]+" })),
    field("Parallelism", input("parallelism", { type: "number", min: "1", value: "1", inputmode: "numeric" })),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Create / update")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    act("Save queue", () => post("/v2/queues", { json: { queueName: v.queueName, parallelism: Number(v.parallelism || 1) } })).then(refresh.now);
  });
  fill(ctx.main, pageHeader(title), list, h("h2", {}, "Create or update"), form);

  const refresh = throttle(async () => {
    let queues;
    try {
      queues = await get("/v2/queues");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    const rows = queues.map((q) => [
      h("code", {}, q.name),
      String(q.lag),
      String(q.parallelism),
      q.paused ? badge("paused", "paused") : badge("active", "active"),
      fmtTime(q.updatedAt),
      h(
        "span",
        { class: "actions" },
        q.paused
          ? button("Resume", () => act("Resume", () => post(`/v2/queues/${seg(q.name)}/resume`)).then(refresh.now), { "aria-label": `Resume ${q.name}` })
          : button("Pause", () => act("Pause", () => post(`/v2/queues/${seg(q.name)}/pause`)).then(refresh.now), { "aria-label": `Pause ${q.name}` }),
        h("a", { class: "btn", href: `#/messages?queueName=${encodeURIComponent(q.name)}` }, "Logs"),
        button(
          "Delete",
          () => confirm(`Delete queue ${q.name}? Its waiting messages are cancelled.`) && act("Delete", () => del(`/v2/queues/${seg(q.name)}`)).then(refresh.now),
          { class: "btn danger", "aria-label": `Delete ${q.name}` },
        ),
      ),
    ]);
    fill(list, table("Queues", ["Name", "Lag", "Parallelism", "State", "Updated", "Actions"], rows, { empty: "No queues. Enqueue with POST /v2/enqueue/<queue>/<destination> or create one below." }));
  }, 1000);

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.queues !== prev.queues || s.logSeq !== prev.logSeq) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
