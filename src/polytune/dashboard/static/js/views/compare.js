// Compare runs (#/compare?jobs=a,b,c): their loss, validation and reward curves overlaid (one
// colour per job; validation dashed) and their settings side by side, differences marked.
// Unfinished jobs are re-read every few seconds.

import { get, ownStatus, query } from "../api.js";
import { COLORS, Curve } from "../chart.js";
import { errorBox, factValue, h } from "../dom.js";
import { TERMINAL, method } from "./jobs.js";

const EVENTS_PAGE = 200;
const CURVES = [
  { id: "compare-loss", title: "Loss", yLabel: "loss", metrics: [["train_loss", "train", null], ["valid_loss", "validation", [6, 4]]] },
  { id: "compare-reward", title: "Reward", yLabel: "reward", metrics: [["reward", "reward", null], ["valid_reward", "validation", [6, 4]]] },
];

// Every metrics event of a job, one row per step (a step's train and validation events merged).
async function metricsOf(id) {
  const byStep = new Map();
  let after = null;
  for (;;) {
    const page = await get(`/fine_tuning/jobs/${id}/events${query({ limit: EVENTS_PAGE, after })}`);
    for (const e of page.data) {
      if (e.type === "metrics" && e.data && typeof e.data.step === "number") {
        byStep.set(e.data.step, { ...e.data, ...(byStep.get(e.data.step) || {}) });
      }
    }
    if (!page.has_more || !page.data.length) break;
    after = page.data[page.data.length - 1].id;
  }
  return byStep;
}

// The settings a run was made with, flat: what the side-by-side table compares.
function settings(job, metrics) {
  const m = job.method && (job.method[method(job)] || job.method.polytune_reinforcement);
  const last = [...metrics.values()].sort((a, b) => b.step - a.step).find((r) => typeof r.train_loss === "number");
  return {
    status: job.status, model: job.model, method: method(job), suffix: job.user_provided_suffix,
    "training file": job.training_file, "validation file": job.validation_file,
    ...(job.hyperparameters || {}), ...((m && m.hyperparameters) || {}), ...(m && m.grader ? { grader: m.grader } : {}),
    seed: job.seed, "steps trained": job.trained_steps, "final train loss": last ? last.train_loss.toFixed(4) : null,
    "fine-tuned model": job.fine_tuned_model,
  };
}

export async function compareView(root, { params, ctx }) {
  const ids = (params.get("jobs") || "").split(",").filter(Boolean);
  root.append(h("p", {}, h("a", { href: "#/jobs" }, "← all jobs")),
    h("div", { class: "page-head" }, h("h1", {}, `Compare ${ids.length} runs`)));
  if (ids.length < 2) {
    root.append(errorBox("Pick two or more jobs in the jobs table to compare them."));
    return;
  }
  const boxes = CURVES.map((c) => h("div", { id: c.id, class: "chart", dataset: { points: "0" } }));
  const sections = CURVES.map((c, i) => h("section", { hidden: true }, h("h2", {}, c.title), boxes[i]));
  const table = h("div", { id: "compare-settings" });
  root.append(...sections, h("section", {}, h("h2", {}, "Settings"), table));
  const series = (c) => ids.flatMap((id, j) => c.metrics.map(([key, label, dash]) => ({
    key: `${j}:${key}`, label: `${id} ${label}`, color: COLORS[j % COLORS.length], dash })));
  const curves = CURVES.map((c, i) => new Curve(boxes[i], { title: "", series: series(c), yLabel: c.yLabel }));
  ctx.onStop(() => curves.forEach((c) => c.destroy()));

  const runs = new Map(); // id -> {job, metrics}
  async function refresh() {
    const todo = ids.filter((id) => !runs.has(id) || !TERMINAL.has(runs.get(id).job.status));
    if (!todo.length) return true;
    await Promise.all(todo.map(async (id) => {
      const [job, metrics] = await Promise.all([get(`/fine_tuning/jobs/${id}`).then(ownStatus), metricsOf(id)]);
      runs.set(id, { job, metrics });
    }));
    draw();
    return ids.every((id) => TERMINAL.has(runs.get(id).job.status));
  }

  function draw() {
    // One row per step over all the runs; each run's values under its own keys ("0:train_loss").
    const rows = new Map();
    ids.forEach((id, j) => {
      for (const [step, r] of runs.get(id).metrics) {
        const row = rows.get(step) || { step };
        for (const [k, v] of Object.entries(r)) if (typeof v === "number") row[`${j}:${k}`] = v;
        rows.set(step, row);
      }
    });
    const sorted = [...rows.values()].sort((a, b) => a.step - b.step);
    curves.forEach((curve, i) => {
      sections[i].hidden = false; // laid out before uPlot measures its width
      curve.update(sorted);
      sections[i].hidden = !curve.points;
    });
    drawSettings();
  }

  function drawSettings() {
    const all = ids.map((id) => settings(runs.get(id).job, runs.get(id).metrics));
    const keys = [...new Set(all.flatMap((s) => Object.keys(s)))].filter((k) => all.some((s) => s[k] !== undefined && s[k] !== null));
    const shown = (v) => (v === undefined || v === null ? "" : factValue(v));
    table.replaceChildren(h("table", { class: "compare" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), ids.map((id, j) => h("th", {},
        h("span", { class: "swatch", style: `background:${COLORS[j % COLORS.length]}` }), " ",
        h("a", { href: `#/jobs/${id}` }, id))))),
      h("tbody", {}, keys.map((k) => {
        const texts = all.map((s) => JSON.stringify(s[k] ?? null));
        return h("tr", { class: new Set(texts).size > 1 ? "differs" : "", "data-key": k }, h("th", {}, k),
          all.map((s) => h("td", {}, shown(s[k]))));
      }))));
  }

  try {
    if (!(await refresh())) ctx.every(3000, async () => { await refresh(); });
  } catch (err) {
    root.append(errorBox(err));
  }
}
