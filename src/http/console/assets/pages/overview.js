// Overview: the selected user's messages at a glance, live from the event stream alone (no
// API call per change, so a console left open here costs the server nothing measurable).

import { fill, fmtNumber, h, pageHeader } from "../ui.js";

export const title = "Overview";

/** Delivered per second over the last few samples. */
function rate(samples, key, window = 3) {
  if (samples.length < 2) return 0;
  const last = samples[samples.length - 1];
  const first = samples[Math.max(0, samples.length - 1 - window)];
  const dt = (last.t - first.t) / 1000;
  return dt > 0 ? (last[key] - first[key]) / dt : 0;
}

/** Deliveries per second over the last minute, as an inline SVG line. */
function sparkline(samples) {
  const points = [];
  for (let i = Math.max(1, samples.length - 60); i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000 || 1;
    points.push((samples[i].delivered - samples[i - 1].delivered) / dt);
  }
  const max = Math.max(1, ...points);
  const w = 240;
  const hgt = 44;
  const step = w / Math.max(points.length - 1, 1);
  const coords = points.map((v, i) => `${(i * step).toFixed(1)},${(hgt - (v / max) * (hgt - 4) - 2).toFixed(1)}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  svg.setAttribute("aria-hidden", "true");
  const area = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
  area.setAttribute("points", coords.length ? `0,${hgt} ${coords.join(" ")} ${((points.length - 1) * step).toFixed(1)},${hgt}` : "");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(area, line);
  return svg;
}

/** A card with three figures side by side (the last 1, 5 and 15 minutes). */
function windowsCard(refs, prefix, label, href, kind) {
  const figures = [1, 5, 15].map((m) => {
    const value = h("span", { class: "mini-value", id: `ov-${prefix}${m}` });
    refs[`${prefix}${m}`] = { value, sub: h("span"), box: undefined };
    return h("div", { class: "mini" }, value, h("span", { class: "mini-label" }, m === 1 ? "last minute" : `last ${m} min`));
  });
  const box = h("a", { class: `card wide windows ${kind}`, href }, h("span", { class: "card-label" }, label), h("div", { class: "minis" }, figures));
  for (const m of [1, 5, 15]) refs[`${prefix}${m}`].box = box;
  return box;
}

/** A figure card; its value and sub-line are updated in place (focus stays where it is). */
function card(refs, key, label, { href, kind = "" } = {}) {
  const value = h("span", { class: "card-value", id: `ov-${key}` });
  const sub = h("span", { class: "card-sub" });
  refs[key] = { value, sub, box: undefined };
  const body = [h("span", { class: "card-label" }, label), value, sub];
  const box = href ? h("a", { class: `card ${kind}`, href }, body) : h("div", { class: `card ${kind}` }, body);
  refs[key].box = box;
  return box;
}

function set(refs, key, value, sub, kind) {
  const r = refs[key];
  r.value.textContent = value;
  if (sub instanceof Node) r.sub.replaceChildren(sub);
  else r.sub.textContent = sub ?? "";
  if (kind !== undefined) r.box.dataset.state = kind;
}

export function mount(ctx) {
  const refs = {};
  const totals = h("div", { class: "totals" });
  const body = h(
    "div",
    { class: "overview" },
    h(
      "section",
      { "aria-labelledby": "now-h" },
      h("h2", { id: "now-h" }, "Now"),
      h(
        "div",
        { class: "cards" },
        card(refs, "waiting", "Waiting", { href: "#/messages?state=CREATED" }),
        card(refs, "inflight", "In flight", { href: "#/messages?state=ACTIVE" }),
        card(refs, "rate", "Deliveries / s", { kind: "wide" }),
        card(refs, "dlq", "Dead letters", { href: "#/dlq" }),
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "recent-h" },
      h("h2", { id: "recent-h" }, "Recently"),
      h(
        "div",
        { class: "cards" },
        windowsCard(refs, "d", "Delivered", "#/messages?state=DELIVERED", "ok"),
        windowsCard(refs, "f", "Failed", "#/messages?state=FAILED", "bad"),
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "res-h" },
      h("h2", { id: "res-h" }, "Resources"),
      h(
        "div",
        { class: "cards" },
        card(refs, "schedules", "Active schedules", { href: "#/schedules" }),
        card(refs, "queues", "Queues", { href: "#/queues" }),
        card(refs, "groups", "URL groups", { href: "#/url-groups" }),
        card(refs, "flows", "Flow-control keys", { href: "#/flow-control" }),
      ),
    ),
    h("section", { "aria-labelledby": "tot-h" }, h("h2", { id: "tot-h" }, "Since the server started"), totals),
  );
  const workflowBox = h(
    "section",
    { "aria-labelledby": "wf-h" },
    h("h2", { id: "wf-h" }, "Workflow runs"),
    h(
      "div",
      { class: "cards" },
      card(refs, "wfActive", "Running", { href: "#/workflows?state=RUN_STARTED" }),
      card(refs, "wfSucceeded", "Succeeded", { href: "#/workflows?state=RUN_SUCCESS", kind: "ok" }),
      card(refs, "wfFailed", "Failed", { href: "#/workflows?state=RUN_FAILED", kind: "bad" }),
      card(refs, "wfCanceled", "Cancelled", { href: "#/workflows?state=RUN_CANCELED" }),
    ),
  );
  const waitingNote = h("p", { class: "muted" }, "Waiting for the live connection…");
  fill(
    ctx.main,
    pageHeader(title, h("p", { class: "lede" }, `Messages of ${ctx.user.name}, live: figures update as they change.`)),
    waitingNote,
    body,
    workflowBox,
  );

  const draw = () => {
    const s = ctx.snapshot();
    body.hidden = !s;
    waitingNote.hidden = Boolean(s);
    if (!s) return;
    const samples = ctx.samples();
    const c = s.counters;
    set(refs, "waiting", fmtNumber(s.messages.waiting), "delayed, retrying or queued");
    set(refs, "inflight", fmtNumber(s.messages.inFlight), "being delivered");
    set(refs, "rate", rate(samples, "delivered").toFixed(1), sparkline(samples));
    set(refs, "dlq", fmtNumber(s.dlq), s.dlq > 0 ? "inspect and retry" : "none", s.dlq > 0 ? "warn" : "");
    for (const r of s.recent) {
      set(refs, `d${r.minutes}`, fmtNumber(r.delivered));
      set(refs, `f${r.minutes}`, fmtNumber(r.failed));
    }
    refs.f1.box.dataset.state = s.recent.some((r) => r.failed > 0) ? "bad" : "";
    set(refs, "schedules", fmtNumber(s.schedules.active), s.schedules.paused ? `${s.schedules.paused} paused` : "none paused");
    set(refs, "queues", fmtNumber(s.queues));
    set(refs, "groups", fmtNumber(s.urlGroups));
    set(refs, "flows", fmtNumber(s.flowControlKeys));
    const wf = s.workflowRuns;
    set(refs, "wfActive", fmtNumber(wf.active), "now");
    set(refs, "wfSucceeded", fmtNumber(wf.succeeded), "since the start");
    set(refs, "wfFailed", fmtNumber(wf.failed), s.workflowDlq > 0 ? `${fmtNumber(s.workflowDlq)} in the workflow DLQ` : "since the start", wf.failed > 0 ? "warn" : "");
    set(refs, "wfCanceled", fmtNumber(wf.canceled), "since the start");
    fill(
      totals,
      [
        ["Accepted", c.accepted],
        ["Attempts", c.attempts],
        ["Delivered", c.delivered],
        ["Retried", c.retried],
        ["Failed", c.failed],
        ["Cancelled", c.cancelled],
        ["Dead-lettered", c.deadLettered],
      ].map(([k, v]) => h("div", {}, h("span", { class: "muted" }, k), h("strong", {}, fmtNumber(v)))),
    );
  };

  draw();
  return {
    update() {
      draw();
    },
    tick: draw,
  };
}
