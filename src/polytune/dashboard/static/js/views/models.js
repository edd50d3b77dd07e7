// Models the API serves (base and fine-tuned, each fine-tuned one linked to the job that made
// it and downloadable in a format picked beside it), and a small playground that chats with a chat model through /v1/chat/completions.

import { get, organization, post } from "../api.js";
import { errorBox, h, modelDownloadButton, table, when } from "../dom.js";

// GET /v1/models/{id}/content's formats (docs/export.md); "default" sends none: adapter for a
// LoRA fine-tune, merged for a full one.
const FORMATS = ["adapter", "merged", "gguf"];

export async function modelsView(root, { params }) {
  const [models, org] = await Promise.all([get("/models").then((page) => page.data), organization()]);
  // Image models answer /v1/images/generations, not chat: the playground offers the others.
  const chatModels = models.filter((m) => m.model_type !== "image");
  const picker = h("select", { id: "chat-model" }, chatModels.map((m) => h("option", { value: m.id }, m.id)));
  if (chatModels.some((m) => m.id === params.get("model"))) picker.value = params.get("model");
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
      { label: "Type", cell: (m) => m.model_type || "" },
      // A key sees the base models and its own organization's: the id is shown by its name.
      { label: "Owned by", cell: (m) => (m.owned_by === org.id ? org.name : m.owned_by) },
      { label: "Made by job", cell: (m) => (m.fine_tuning_job_id
        ? h("a", { href: `#/jobs/${m.fine_tuning_job_id}` }, m.fine_tuning_job_id) : "") },
      { label: "Created", cell: (m) => when(m.created) },
      { label: "Download", cell: (m) => (m.fine_tuning_job_id ? downloadControl(m) : "") },
    ], models, { id: "models-table" }),
    h("section", { class: "card" },
      h("div", { class: "page-head" }, h("h2", {}, "Playground"),
        h("button", { type: "button", class: "link", onclick: clear }, "new chat")),
      h("div", { class: "inline" }, h("label", {}, "model ", picker), h("label", {}, "max tokens ", maxTokens)),
      h("p", { class: "muted", id: "chat-note" }, `Chat models only (${chatModels.length} of ${models.length}); `,
        "image models generate through /v1/images/generations."),
      system, log,
      h("form", { id: "chat-form", class: "inline", onsubmit: chat }, input, send)),
  );
  picker.addEventListener("change", clear);

  // The weights of a fine-tuned model or checkpoint: the format the server defaults to, or one
  // picked; a format the model cannot have is refused by the API, its message shown here.
  function downloadControl(m) {
    const format = h("select", { class: "download-format", "aria-label": `format of ${m.id}` },
      h("option", { value: "" }, "default"), FORMATS.map((f) => h("option", { value: f }, f)));
    return h("span", { class: "row-actions" }, format, " ",
      modelDownloadButton("download", m.id, () => format.value));
  }

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
      if (content.trim()) {
        say("assistant", content);
      } else {
        // Say so, rather than an empty bubble that looks like a broken page.
        say("assistant", h("i", { class: "muted empty-reply" },
          `(empty reply: the model produced no text; finish_reason ${reply.choices[0].finish_reason})`));
      }
    } catch (err) {
      messages.pop();
      log.append(errorBox(err));
    } finally {
      send.disabled = false;
      input.focus();
    }
  }
}
