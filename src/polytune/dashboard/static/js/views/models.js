// Models the API serves (base and fine-tuned), and a small playground that chats with one
// through /v1/chat/completions.

import { get, post } from "../api.js";
import { errorBox, h, table, when } from "../dom.js";

export async function modelsView(root, { params }) {
  const models = (await get("/models")).data;
  const picker = h("select", { id: "chat-model" }, models.map((m) => h("option", { value: m.id }, m.id)));
  if (params.get("model")) picker.value = params.get("model");
  const system = h("input", { id: "chat-system", placeholder: "system prompt (optional)" });
  const input = h("input", { id: "chat-input", placeholder: "Say something…", required: true, autocomplete: "off" });
  const maxTokens = h("input", { id: "chat-max-tokens", type: "number", min: 1, max: 1024, value: 64 });
  const log = h("div", { id: "chat-log", class: "chat-log" });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");
  let messages = [];

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Models")),
    table([
      { label: "Model", cell: (m) => h("a", { href: `#/models?model=${encodeURIComponent(m.id)}` }, m.id) },
      { label: "Owned by", cell: (m) => m.owned_by },
      { label: "Created", cell: (m) => when(m.created) },
    ], models, { id: "models-table" }),
    h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h2", {}, "Playground"),
        h("button", { type: "button", class: "link", onclick: clear }, "new chat")),
      h("div", { class: "inline" }, h("label", {}, "model ", picker), h("label", {}, "max tokens ", maxTokens)),
      system, log,
      h("form", { id: "chat-form", class: "inline", onsubmit: chat }, input, send)),
  );
  picker.addEventListener("change", clear);

  function clear() {
    messages = [];
    log.replaceChildren();
  }

  function say(role, text) {
    log.append(h("div", { class: `msg msg-${role}` }, h("b", {}, role), " ", text));
    log.scrollTop = log.scrollHeight;
  }

  async function chat(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    messages.push({ role: "user", content: text });
    say("user", text);
    send.disabled = true;
    try {
      const sys = system.value.trim() ? [{ role: "system", content: system.value.trim() }] : [];
      const reply = await post("/chat/completions", {
        model: picker.value, messages: [...sys, ...messages], max_tokens: Number(maxTokens.value) || 64,
      });
      const content = reply.choices[0].message.content || "";
      messages.push({ role: "assistant", content });
      say("assistant", content);
    } catch (err) {
      messages.pop();
      log.append(errorBox(err));
    } finally {
      send.disabled = false;
      input.focus();
    }
  }
}
