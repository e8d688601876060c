// The console shell: user selection, hash routing between pages, and the live connection.
// Live updates: one EventSource on /__qstash/console/stream sends the user's overview
// (counters, sizes, log sequence) whenever it changes; each page decides what to re-fetch.

import { get, setToken } from "./api.js";
import { errorBox, fill, h } from "./ui.js";
import * as overview from "./pages/overview.js";
import * as messages from "./pages/messages.js";
import * as message from "./pages/message.js";
import * as dlq from "./pages/dlq.js";
import * as schedules from "./pages/schedules.js";
import * as queues from "./pages/queues.js";
import * as urlGroups from "./pages/url-groups.js";
import * as flowControl from "./pages/flow-control.js";
import * as workflows from "./pages/workflows.js";
import * as publish from "./pages/publish.js";
import * as keys from "./pages/keys.js";
import * as clock from "./pages/clock.js";

const PAGES = {
  overview,
  messages,
  message,
  dlq,
  schedules,
  queues,
  "url-groups": urlGroups,
  "flow-control": flowControl,
  workflows,
  publish,
  keys,
  clock,
};

const USER_KEY = "qstash-console-user";
const SAMPLES = 120;

const app = {
  config: undefined,
  user: undefined,
  snapshot: undefined,
  receivedAt: 0,
  samples: [],
  source: undefined,
  page: undefined,
  route: "",
};

/** The server clock's current reading (it may be advanced or paused with -clock-control). */
export function serverNow() {
  const s = app.snapshot;
  if (!s) return Date.now();
  return s.clock.paused ? s.clock.now : s.clock.now + (Date.now() - app.receivedAt);
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let name = parts[0] || "overview";
  let params = parts.slice(1);
  if (name === "messages" && params.length > 0) name = "message";
  return { name, params, query: new URLSearchParams(qs) };
}

function markNav(name) {
  const section = name === "message" ? "messages" : name;
  for (const a of document.querySelectorAll("#nav a")) {
    const target = a.getAttribute("href").slice(2);
    if (target === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function render({ focus = true } = {}) {
  const { name, params, query } = parseHash();
  app.page?.destroy?.();
  app.page = undefined;
  const main = document.getElementById("main");
  const mod = PAGES[name];
  markNav(name);
  if (!mod) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/overview" }, "Back to the overview")));
    return;
  }
  document.title = `${mod.title} · QStash dev console`;
  const container = h("div", { class: `page page-${name}` });
  fill(main, container);
  const ctx = {
    main: container,
    params,
    query,
    config: app.config,
    user: app.user,
    snapshot: () => app.snapshot,
    samples: () => app.samples,
    serverNow,
    /** Replaces the hash query (filters) and re-renders the page. */
    setQuery(values) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
      const base = location.hash.split("?")[0] || "#/overview";
      const next = qs.toString() ? `${base}?${qs}` : base;
      if (next === location.hash) render({ focus: false });
      else location.hash = next;
    },
  };
  try {
    app.page = mod.mount(ctx) ?? {};
  } catch (error) {
    fill(container, errorBox(error));
  }
  if (focus) container.querySelector("h1")?.focus();
}

function setLive(text, kind) {
  const el = document.getElementById("live");
  el.textContent = text;
  el.className = `live live-${kind}`;
}

function connect() {
  app.source?.close();
  app.snapshot = undefined;
  app.samples = [];
  setLive("connecting…", "wait");
  const url = `/__qstash/console/stream?qstash_token=${encodeURIComponent(app.user.token)}`;
  const source = new EventSource(url);
  app.source = source;
  source.addEventListener("overview", (event) => {
    const previous = app.snapshot;
    app.snapshot = JSON.parse(event.data);
    app.receivedAt = Date.now();
    setLive("live", "ok");
    const dlqCount = document.getElementById("nav-dlq");
    dlqCount.textContent = app.snapshot.dlq > 0 ? String(app.snapshot.dlq) : "";
    dlqCount.setAttribute("aria-label", `${app.snapshot.dlq} entries`);
    app.page?.update?.(app.snapshot, previous);
  });
  source.onerror = () => setLive("reconnecting…", "wait");
}

/** One sample a second of the counters, for rates and the overview's sparkline. */
function sample() {
  const s = app.snapshot;
  if (!s) return;
  app.samples.push({ t: Date.now(), delivered: s.counters.delivered, accepted: s.counters.accepted, failed: s.counters.failed });
  if (app.samples.length > SAMPLES) app.samples.shift();
  app.page?.tick?.();
}

function chooseUser(index) {
  app.user = { ...app.config.users[index], index };
  setToken(app.user.token);
  localStorage.setItem(USER_KEY, app.user.name);
  document.getElementById("user-select").value = String(index);
  connect();
}

async function start() {
  try {
    app.config = await get("/console/config.json");
  } catch (error) {
    fill(document.getElementById("main"), errorBox(error));
    return;
  }
  const selectEl = document.getElementById("user-select");
  fill(selectEl, app.config.users.map((u, i) => h("option", { value: String(i) }, i === 0 ? `${u.name} (default)` : u.name)));
  const saved = app.config.users.findIndex((u) => u.name === localStorage.getItem(USER_KEY));
  chooseUser(saved >= 0 ? saved : 0);
  selectEl.addEventListener("change", () => {
    chooseUser(Number(selectEl.value));
    render({ focus: false });
  });
  document.getElementById("nav-clock").hidden = !app.config.clockControl;
  window.addEventListener("hashchange", () => render());
  setInterval(sample, 1000);
  render({ focus: false });
}

start();
