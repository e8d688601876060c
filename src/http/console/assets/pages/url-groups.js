// URL groups: their endpoints; add and remove endpoints, delete a group.

import { api, del, get, post, seg } from "../api.js";
import { act, button, errorBox, field, fill, fmtTime, formValues, h, input, pageHeader, table, throttle } from "../ui.js";

export const title = "URL groups";

export function mount(ctx) {
  const list = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Add an endpoint" },
    field("URL group", input("group", { required: true })),
    field("Endpoint URL", input("url", { required: true, type: "url", placeholder: "http://localhost:3000/hook" })),
    field("Endpoint name", input("name")),
    h("div", { class: "field actions" }, h("button", { type: "submit", class: "btn primary" }, "Add endpoint")),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    const endpoint = v.name ? { name: v.name, url: v.url } : { url: v.url };
    act("Add endpoint", () => post(`/v2/topics/${seg(v.group)}/endpoints`, { json: { endpoints: [endpoint] } })).then(refresh.now);
  });
  fill(ctx.main, pageHeader(title, h("p", { class: "lede" }, "Publishing to a group sends one message to each endpoint.")), list, h("h2", {}, "Add an endpoint (creates the group)"), form);

  const refresh = throttle(async () => {
    let groups;
    try {
      groups = await get("/v2/topics");
    } catch (error) {
      fill(list, errorBox(error));
      return;
    }
    fill(
      list,
      groups.length === 0
        ? h("p", { class: "empty" }, "No URL groups yet.")
        : groups.map((g) =>
            h(
              "section",
              { class: "panel", "aria-label": `URL group ${g.name}` },
              h(
                "div",
                { class: "panel-head" },
                h("h2", {}, h("code", {}, g.name)),
                h("span", { class: "muted" }, `updated ${fmtTime(g.updatedAt)}`),
                h(
                  "span",
                  { class: "actions" },
                  h("a", { class: "btn", href: `#/messages?topicName=${encodeURIComponent(g.name)}` }, "Logs"),
                  button("Delete group", () => confirm(`Delete URL group ${g.name}?`) && act("Delete", () => del(`/v2/topics/${seg(g.name)}`)).then(refresh.now), { class: "btn danger" }),
                ),
              ),
              table(
                `Endpoints of ${g.name}`,
                ["Name", "URL", ""],
                (g.endpoints ?? []).map((e) => [
                  e.name ?? h("span", { class: "muted" }, "—"),
                  h("code", { class: "wrap" }, e.url),
                  button(
                    "Remove",
                    () => act("Remove endpoint", () => api("DELETE", `/v2/topics/${seg(g.name)}/endpoints`, { json: { endpoints: [{ url: e.url }] } })).then(refresh.now),
                    { "aria-label": `Remove ${e.url} from ${g.name}` },
                  ),
                ]),
                { empty: "No endpoints." },
              ),
            ),
          ),
    );
  }, 1000);

  refresh();
  return {
    update(s, prev) {
      if (!prev || s.urlGroups !== prev.urlGroups) refresh();
    },
    destroy() {
      refresh.cancel();
    },
  };
}
