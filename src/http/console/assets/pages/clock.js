// The server clock (with -clock-control): see it, pause or resume it, move it forward so due
// retries, delays and cron ticks happen now.

import { get, post } from "../api.js";
import { act, button, errorBox, field, fill, fmtTime, h, input, pageHeader } from "../ui.js";

export const title = "Clock";

export function mount(ctx) {
  if (!ctx.config.clockControl) {
    fill(ctx.main, pageHeader(title), h("p", { class: "empty" }, "Clock control is off. Start the server with -clock-control to move its time from here."));
    return {};
  }
  const now = h("output", { class: "clock-now", id: "clock-now" });
  const state = h("p", { class: "muted" });
  const controls = h("div", { class: "actions" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Advance the clock" },
    field("Advance by", input("by", { required: true, placeholder: "e.g. 12s, 5m, 1h" })),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Advance")),
  );
  const advance = (by) => act(`Advance ${by}`, () => post("/__qstash/clock/advance", { query: { by } }), { success: `Clock advanced by ${by}` });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    advance(form.elements.by.value.trim());
  });
  fill(
    ctx.main,
    pageHeader(title, h("p", { class: "lede" }, "The clock is shared by all users. Signatures keep using the system time.")),
    h("div", { class: "panel" }, h("span", { class: "muted" }, "Server time"), now, state),
    controls,
    form,
    h("div", { class: "actions" }, ["10s", "1m", "10m", "1h", "1d"].map((by) => button(`+${by}`, () => advance(by), { "aria-label": `Advance by ${by}` }))),
  );
  const draw = () => {
    const s = ctx.snapshot();
    now.textContent = fmtTime(ctx.serverNow());
    const paused = s?.clock.paused;
    state.textContent = paused ? "Paused: time stands still until you resume." : "Running.";
    if (controls.dataset.paused !== String(paused)) {
      controls.dataset.paused = String(paused);
      fill(
        controls,
        paused
          ? button("Resume time", () => act("Resume", () => post("/__qstash/clock/resume")))
          : button("Pause time", () => act("Pause", () => post("/__qstash/clock/pause"))),
      );
    }
  };
  get("/__qstash/clock").catch((error) => fill(controls, errorBox(error)));
  draw();
  return { update: draw, tick: draw };
}
