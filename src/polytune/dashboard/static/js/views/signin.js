// Sign in with an API key: checked against the API (listing models needs a valid key) before
// it is kept in sessionStorage.

import { ApiError, get, session } from "../api.js";
import { errorBox, h } from "../dom.js";

// What every polytune key starts with (services/keys.py KEY_PREFIX; a test holds them equal).
export const KEY_PREFIX = "pt-";

export async function signInView(root) {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off", placeholder: `${KEY_PREFIX}…`, required: true });
  const status = h("div", { class: "form-status" });
  const form = h("form", { id: "sign-in", class: "card narrow", onsubmit: submit },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API key (", h("code", {}, "polytune keys create --org NAME"), "). It stays in this tab only."),
    h("label", { for: "api-key" }, "API key"), input,
    h("button", { type: "submit" }, "Sign in"),
    status);
  root.append(form);
  input.focus();

  async function submit(event) {
    event.preventDefault();
    status.replaceChildren();
    session.signIn(input.value.trim());
    try {
      await get("/models");
    } catch (err) {
      session.signOut();
      status.append(errorBox(err instanceof ApiError && err.status === 401 ? "That key was not accepted." : err));
      return;
    }
    location.hash = "#/jobs";
  }
}
