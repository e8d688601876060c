// Signing keys: the current and next key, for Receiver configuration; rotate.

import { get, post } from "../api.js";
import { act, button, errorBox, fill, h, pageHeader } from "../ui.js";

export const title = "Signing keys";

export function mount(ctx) {
  const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  fill(
    ctx.main,
    pageHeader(title, h("p", { class: "lede" }, `Every delivery to ${ctx.user.name}'s endpoints is signed with the current key; receivers accept the current or the next one.`)),
    box,
  );
  const load = async () => {
    let keys;
    try {
      keys = await get("/v2/keys");
    } catch (error) {
      fill(box, errorBox(error));
      return;
    }
    fill(
      box,
      h(
        "pre",
        { class: "env", tabindex: "0", "aria-label": "Environment variables" },
        `QSTASH_URL=${location.origin}\nQSTASH_TOKEN=${ctx.user.token}\nQSTASH_CURRENT_SIGNING_KEY=${keys.current}\nQSTASH_NEXT_SIGNING_KEY=${keys.next}`,
      ),
      h(
        "div",
        { class: "actions" },
        button(
          "Rotate keys",
          () =>
            confirm("Rotate? The next key becomes current and a new next key is created; receivers must be updated.") &&
            act("Rotate", () => post("/v2/keys/rotate"), { success: "Rotated: the next key is now current" }).then(load),
          { class: "btn danger" },
        ),
      ),
      ctx.user.index === 0
        ? h("p", { class: "muted" }, "Note: the JS SDK's dev mode recognises this server by the default user's original keys; after a rotation it stops doing so until a restart.")
        : null,
    );
  };
  load();
  return {};
}
