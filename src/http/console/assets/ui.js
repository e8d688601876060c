// Small DOM and formatting helpers shared by the pages. No framework: pages build elements
// with h() and replace what changed.

/** Creates an element: h("a", {href: "#/x", class: "btn", onclick: fn}, "text", child, [more]). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "selected" || key === "disabled" || key === "hidden") el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/input pairs. */
export const nextId = (prefix = "f") => `${prefix}-${++uid}`;

/** A labelled form control: field("URL", h("input", {name: "url"}), "hint"). */
export function field(label, control, hint) {
  const id = control.id || nextId();
  control.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint && h("small", { id: hintId, class: "muted" }, hint));
}

export function input(name, props = {}) {
  return h("input", { name, type: "text", autocomplete: "off", spellcheck: "false", ...props });
}

export function select(name, options, value, props = {}) {
  return h(
    "select",
    { name, ...props },
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, label);
    }),
  );
}

export function button(label, onclick, props = {}) {
  return h("button", { type: "button", class: "btn", onclick, ...props }, label);
}

/** A table with a header row; `rows` are arrays of cells (nodes or text). */
export function table(caption, headers, rows, { empty = "Nothing here yet." } = {}) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption && h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((r) => (r instanceof Node ? r : h("tr", {}, r.map((c) => h("td", {}, c)))))),
    ),
  );
}

/** A definition list of [term, value] pairs, skipping empty values. */
export function dl(pairs) {
  return h(
    "dl",
    { class: "kv" },
    pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
  );
}

export function badge(text, kind = String(text).toLowerCase()) {
  return h("span", { class: `badge b-${kind.replace(/[^a-z0-9_-]/g, "")}` }, text);
}

// ---------------------------------------------------------------------------------------
// Formatting

export function fmtTime(ms, timeZone) {
  if (ms === undefined || ms === null || ms === "") return "";
  const d = new Date(Number(ms));
  const opts = { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (timeZone) opts.timeZone = timeZone;
  return new Intl.DateTimeFormat(undefined, opts).format(d);
}

/** "in 5 min", "3 s ago", relative to `now` (ms, the server clock when known). */
export function fmtRelative(ms, now = Date.now()) {
  const diff = Number(ms) - now;
  const abs = Math.abs(diff);
  const text = fmtDuration(abs);
  if (abs < 1000) return "now";
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

export function fmtDuration(ms) {
  ms = Number(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.floor(m)} min ${Math.round(s % 60)} s`;
  const hrs = m / 60;
  if (hrs < 48) return `${Math.floor(hrs)} h ${Math.round(m % 60)} min`;
  return `${Math.round(hrs / 24)} d`;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtNumber(n) {
  return new Intl.NumberFormat().format(Number(n ?? 0));
}

// ---------------------------------------------------------------------------------------
// Bodies and headers

export function base64ToBytes(b64) {
  if (!b64) return new Uint8Array();
  try {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return new TextEncoder().encode(b64);
  }
}

/** A body shown as pretty JSON, text, or a hex dump (binary), with its size. */
export function bodyView(bytes, { label = "Body" } = {}) {
  if (!bytes || bytes.length === 0) return h("p", { class: "muted" }, `${label}: empty`);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = undefined;
  }
  let kind = "binary";
  let shown;
  if (text !== undefined) {
    kind = "text";
    shown = text;
    try {
      const parsed = JSON.parse(text);
      if (parsed !== null && typeof parsed === "object") {
        shown = JSON.stringify(parsed, null, 2);
        kind = "JSON";
      }
    } catch {
      // plain text
    }
  } else {
    shown = hexDump(bytes.slice(0, 1024)) + (bytes.length > 1024 ? "\n…" : "");
  }
  return h(
    "figure",
    { class: "body" },
    h("figcaption", {}, `${label} · ${kind} · ${fmtBytes(bytes.length)}`),
    h("pre", { tabindex: "0" }, shown),
  );
}

function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = Array.from(bytes.slice(i, i + 16));
    const hex = row.map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(6, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n");
}

/** A header map ({name: [values]} or {name: value}) as a table. */
export function headersTable(map, caption = "Headers") {
  const rows = [];
  for (const [name, values] of Object.entries(map ?? {})) {
    for (const v of Array.isArray(values) ? values : [values]) rows.push([h("code", {}, name), h("code", { class: "wrap" }, v)]);
  }
  return table(caption, ["Header", "Value"], rows, { empty: "No headers." });
}

// ---------------------------------------------------------------------------------------
// Feedback

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast t-${kind}` }, message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/** Runs an action, reporting success or the API's error message. */
export async function act(label, fn, { success } = {}) {
  try {
    const result = await fn();
    toast(success ?? `${label}: done`);
    return result;
  } catch (error) {
    toast(`${label} failed: ${error.message}`, "error");
    return undefined;
  }
}

export function errorBox(error) {
  return h("div", { class: "error-box", role: "alert" }, error.message ?? String(error));
}

/**
 * Wraps an async refresh so it never runs twice at once and at most once per `ms`; calls in
 * between are coalesced into one trailing run.
 */
export function throttle(fn, ms) {
  let running = false;
  let pending = false;
  let last = 0;
  let timer;
  const run = async () => {
    timer = undefined;
    if (running) {
      pending = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await fn();
    } finally {
      running = false;
      if (pending) {
        pending = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = setTimeout(run, wait);
  };
  schedule.cancel = () => clearTimeout(timer);
  /** Runs as soon as possible (after the user acted), not after the throttle's wait. */
  schedule.now = () => {
    clearTimeout(timer);
    timer = undefined;
    last = 0;
    schedule();
  };
  return schedule;
}

/** Reads a form's named controls into an object of trimmed strings. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === "string" ? v.trim() : v;
  return out;
}

/** "2026-12-03T14:05" (datetime-local) → unix ms, or "" when empty. */
export function localToMs(value) {
  if (!value) return "";
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? "" : t;
}

export function msToLocal(ms) {
  if (!ms) return "";
  const d = new Date(Number(ms));
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function pageHeader(title, ...extra) {
  return h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, title), extra);
}
