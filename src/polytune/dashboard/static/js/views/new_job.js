// A new fine-tuning job: training data (a file already uploaded, or one uploaded here, its
// validation report shown as it comes), a chat model, a method, the hyperparameters (each
// "auto" until changed, with what auto means), then POST /v1/fine_tuning/jobs and the job page.

import { get, post, query } from "../api.js";
import { errorBox, h } from "../dom.js";
import { uploadForm } from "./upload.js";

// Each method's hyperparameters as OpenAI's API takes them, with what "auto" resolves to when
// the job is queued (services/hyperparameters.py).
const COMMON = [
  ["n_epochs", "3; more for small files, so the model sees enough examples; fewer for big ones"],
  ["batch_size", "the largest power of two up to examples / 6 (1 to 64), fewer for long examples"],
  ["learning_rate_multiplier", "√(batch_size / 8) between 0.5 and 1, times the model's base rate"],
];
const HYPERPARAMETERS = {
  supervised: COMMON,
  dpo: [...COMMON, ["beta", "0.1 (how far the model may move from the reference)"]],
  reinforcement: [
    ...COMMON.map(([k, v]) => [k, k === "n_epochs" ? "as for supervised, at most 3" : v]),
    ["compute_multiplier", "1.0 (4 completions sampled per prompt)"],
    ["eval_samples", "4 completions per validation prompt"],
    ["eval_interval", "once per epoch"],
    ["max_completion_tokens", "the model's context length"],
  ],
};
const GRADER_EXAMPLE = JSON.stringify({
  type: "string_check", name: "answer", input: "{{sample.output_text}}",
  reference: "{{item.answer}}", operation: "eq",
}, null, 2);

export async function newJobView(root) {
  const [models, files] = await Promise.all([get("/models"), get(`/files${query({ purpose: "fine-tune", limit: 500 })}`)]);
  const usable = files.data.filter((f) => f.status === "processed");
  const fileOptions = (none) => [none && h("option", { value: "" }, none),
    ...usable.map((f) => h("option", { value: f.id }, `${f.filename} (${f.id})`))];
  const training = h("select", { id: "job-training-file", required: true }, fileOptions("— pick a file —"));
  const validation = h("select", { id: "job-validation-file" }, fileOptions("none"));
  const model = h("select", { id: "job-model" }, models.data.filter((m) => m.model_type !== "image")
    .map((m) => h("option", { value: m.id }, m.id)));
  const method = h("select", { id: "job-method", onchange: drawHyperparameters },
    Object.keys(HYPERPARAMETERS).map((m) => h("option", { value: m }, m)));
  const hyperBox = h("div", { id: "job-hp" });
  const grader = h("textarea", { id: "job-grader", rows: 7, spellcheck: "false" }, GRADER_EXAMPLE);
  const graderBox = h("label", { class: "field", hidden: true }, "grader (JSON)", grader);
  const suffix = h("input", { id: "job-suffix", placeholder: "optional, in the model's name", maxlength: 64 });
  const seed = h("input", { id: "job-seed", placeholder: "random", inputmode: "numeric" });
  const message = h("div", { id: "job-create-error" });
  const upload = uploadForm({ id: "job-upload", purpose: "fine-tune", onDone: (file) => {
    if (file.status !== "processed") return;
    for (const select of [training, validation]) select.append(h("option", { value: file.id }, `${file.filename} (${file.id})`));
    training.value = file.id;
  } });

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "New fine-tuning job")),
    h("section", { class: "card" }, h("h2", {}, "Training data"),
      h("p", { class: "muted" }, "Upload a JSONL file: every row is checked before the answer comes; or pick one uploaded before."),
      upload,
      h("div", { class: "grid" },
        h("label", { class: "field" }, "training file", training),
        h("label", { class: "field" }, "validation file", validation))),
    h("form", { id: "new-job", class: "card", onsubmit: submit },
      h("div", { class: "grid" },
        h("label", { class: "field" }, "model", model),
        h("label", { class: "field" }, "method", method),
        h("label", { class: "field" }, "suffix", suffix),
        h("label", { class: "field" }, "seed", seed)),
      h("h2", {}, "Hyperparameters"),
      h("p", { class: "muted" }, "Left at auto, each is chosen from the data when the job is queued; the job page shows the values used."),
      hyperBox, graderBox,
      h("div", { class: "inline" }, h("button", { type: "submit", id: "create-job" }, "Create job")),
      message),
  );
  drawHyperparameters();

  function drawHyperparameters() {
    const old = Object.fromEntries([...hyperBox.querySelectorAll("input")].map((i) => [i.name, i.value]));
    hyperBox.replaceChildren(h("table", { class: "facts hp-form" }, h("tbody", {},
      HYPERPARAMETERS[method.value].map(([name, rule]) => h("tr", {},
        h("th", {}, h("label", { for: `hp-${name}` }, name)),
        h("td", {}, h("input", { id: `hp-${name}`, name, value: old[name] || "auto", size: 8 })),
        h("td", { class: "muted" }, `auto: ${rule}`))))));
    graderBox.hidden = method.value !== "reinforcement";
  }

  // "auto" (or blank) stays "auto"; a number is sent as one; anything else is sent as typed,
  // and the API's 400 names the field.
  function value(text) {
    const t = text.trim();
    if (!t || t === "auto") return "auto";
    return t !== "" && !Number.isNaN(Number(t)) ? Number(t) : t;
  }

  async function submit(event) {
    event.preventDefault();
    message.replaceChildren();
    const hyperparameters = Object.fromEntries([...hyperBox.querySelectorAll("input")]
      .map((i) => [i.name, value(i.value)]).filter(([, v]) => v !== "auto"));
    const body = { model: model.value, training_file: training.value,
      method: { type: method.value, [method.value]: { hyperparameters } } };
    if (validation.value) body.validation_file = validation.value;
    if (suffix.value.trim()) body.suffix = suffix.value.trim();
    if (seed.value.trim()) body.seed = value(seed.value);
    if (method.value === "reinforcement") {
      try {
        body.method.reinforcement.grader = JSON.parse(grader.value);
      } catch (err) {
        message.append(errorBox(`The grader is not valid JSON: ${err.message}`));
        return;
      }
    }
    try {
      const job = await post("/fine_tuning/jobs", body);
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      message.append(errorBox(err));
    }
  }
}
