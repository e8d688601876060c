// Flow-control keys: waitlist, parallelism and rate in use; pause/resume, pin, unpin, reset.

import { get, post, seg } from "../api.js";
import { act, badge, button, field, errorBox, fill, formValues, h, input, pageHeader, table, throttle } from "../ui.js";

export const title = "Flow control";

export function mount(ctx) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const pinForm = h(
    "form",
    { class: "inline-form", "aria-label": "Pin limits of a key" },
    field("Key", input("key", { required: true })),
    field("Parallelism", input("parallelism", { type: "number", min: "1", inputmode: "numeric" })),
    field("Rate", input("rate", { type: "number", min: "1", inputmode: "numeric" })),
    field("Period (s)", input("period", { type: "number", min: "1", inputmode: "numeric" })),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Pin")),
  );
  pinForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(pinForm);
    act("Pin", () => post(`/v2/flowControl/${seg(v.key)}/pin`, { query: { parallelism: v.parallelism, rate: v.rate, period: v.period } })).then(refresh.now);
  });
  fill(
    ctx.main,
    pageHeader(title, h("p", { class: "lede" }, "Limits per key across all destinations. Pinned limits override what messages ask for.")),
    list,
    h("h2", {}, "Pin limits"),
    pinForm,
  );

  const refresh = throttle(async () => {
    let keys;
    try {
      keys = await get("/v2/flowControl");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    const rows = keys.map((k) => {
      const key = k.flowControlKey;
      const path = `/v2/flowControl/${seg(key)}`;
      return [
        h("code", {}, key),
        String(k.waitListSize),
        `${k.parallelismCount} / ${k.parallelismMax || "∞"}${k.isPinnedParallelism ? " (pinned)" : ""}`,
        `${k.rateCount} / ${k.rateMax || "∞"} per ${k.ratePeriod || 1} s${k.isPinnedRate ? " (pinned)" : ""}`,
        k.isPaused ? badge("paused", "paused") : badge("active", "active"),
        h(
          "span",
          { class: "actions" },
          k.isPaused
            ? button("Resume", () => act("Resume", () => post(`${path}/resume`)).then(refresh.now), { "aria-label": `Resume ${key}` })
            : button("Pause", () => act("Pause", () => post(`${path}/pause`)).then(refresh.now), { "aria-label": `Pause ${key}` }),
          button(
            "Pin…",
            () => {
              pinForm.elements.key.value = key;
              pinForm.elements.parallelism.focus();
            },
            { "aria-label": `Pin limits of ${key}` },
          ),
          k.isPinnedParallelism || k.isPinnedRate
            ? button("Unpin", () => act("Unpin", () => post(`${path}/unpin`, { query: { parallelism: "true", rate: "true" } })).then(refresh.now), { "aria-label": `Unpin ${key}` })
            : null,
          button("Reset rate", () => act("Reset rate", () => post(`${path}/resetRate`)).then(refresh.now), { "aria-label": `Reset the rate of ${key}` }),
        ),
      ];
    });
    fill(list, table("Flow-control keys", ["Key", "Waitlist", "Parallelism (in use / max)", "Rate (this period / max)", "State", "Actions"], rows, { empty: "No flow-control keys. Publish with Upstash-Flow-Control-Key to create one." }));
  }, 1000);

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.flowControlKeys !== prev.flowControlKeys || s.logSeq !== prev.logSeq) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
