// One job: status and actions, live loss (and reward) curves from its metrics events, the
// results of the evals it asked for (polytune_eval: one event per finished run), the
// events, checkpoints and hyperparameters. Polls once a second until the job has finished.

import { get, ownStatus, post, query } from "../api.js";
import { Curve } from "../chart.js";
import { badge, downloadButton, errorBox, facts, h, modelDownloadButton, table, when } from "../dom.js";
import { TERMINAL, jobDuration, method, modelLink } from "./jobs.js";

// Which action each status allows (domain/job.py's transitions, as the API enforces them).
const ACTIONS = {
  cancel: new Set(["validating_files", "queued", "running", "pausing", "paused"]),
  pause: new Set(["queued", "running"]),
  resume: new Set(["paused"]),
};
const LOSS_SERIES = [
  { key: "train_loss", label: "train loss" },
  { key: "valid_loss", label: "validation loss" },
  { key: "full_valid_loss", label: "full validation loss" },
  // Token accuracy, when the trainer logs it (supervised jobs), on its own 0-1 axis.
  { key: "train_mean_token_accuracy", label: "train accuracy", scale: "ratio", dash: [6, 4] },
  { key: "valid_mean_token_accuracy", label: "validation accuracy", scale: "ratio", dash: [2, 3] },
];
const REWARD_SERIES = [
  { key: "reward", label: "reward" },
  { key: "reward_min", label: "reward min" },
  { key: "reward_max", label: "reward max" },
  { key: "valid_reward", label: "validation reward" },
];
const EVENTS_PAGE = 200;

export async function jobView(root, { args: [id], ctx }) {
  const events = []; // oldest first
  const seen = new Set();
  let job = null;

  const status = h("span", { id: "job-status" });
  const buttons = Object.fromEntries(Object.keys(ACTIONS).map((action) => [action,
    h("button", { type: "button", id: `${action}-job`, class: action === "cancel" ? "danger" : "",
      onclick: () => act(action) }, action[0].toUpperCase() + action.slice(1))]));
  const actionError = h("div");
  const summary = h("div", { id: "job-summary" });
  const lossBox = h("div", { id: "loss-chart", class: "chart", dataset: { points: "0" } });
  // Shown once a step is logged: a job that failed before training has no chart to show.
  const lossSection = h("section", { hidden: true }, h("h2", {}, "Loss"), lossBox);
  const rewardBox = h("div", { id: "reward-chart", class: "chart", dataset: { points: "0" } });
  const rewardSection = h("section", { hidden: true }, h("h2", {}, "Reward"), rewardBox);
  const showMetrics = h("input", { type: "checkbox", id: "show-metrics", onchange: () => drawEvents() });
  const eventsBox = h("div", { id: "job-events" });
  const checkpointsBox = h("div", { id: "job-checkpoints" });
  const checkpointsSection = h("section", {}, h("h2", {}, "Checkpoints"), checkpointsBox);
  const hyperBox = h("div", { id: "job-hyperparameters" });
  const evalsBox = h("div", { id: "job-evals" });
  // Shown once an eval run of the job has finished (docs/evals.md).
  const evalsSection = h("section", { hidden: true }, h("h2", {}, "Evals"), evalsBox);

  root.append(
    h("p", {}, h("a", { href: "#/jobs" }, "← all jobs")),
    h("div", { class: "page-head" }, h("h1", {}, id), status,
      h("div", { class: "actions" }, Object.values(buttons))),
    actionError, summary,
    lossSection,
    rewardSection,
    evalsSection,
    checkpointsSection,
    h("section", {}, h("h2", {}, "Hyperparameters"), hyperBox),
    h("section", {}, h("div", { class: "page-head" }, h("h2", {}, "Events"),
      h("label", {}, showMetrics, " show metrics events")), eventsBox),
  );
  const loss = new Curve(lossBox, { title: "", series: LOSS_SERIES, yLabel: "loss" });
  const reward = new Curve(rewardBox, { title: "", series: REWARD_SERIES, yLabel: "reward" });
  ctx.onStop(() => { loss.destroy(); reward.destroy(); });

  // Events come newest first: read pages until one we already hold, then add them in order.
  async function newEvents() {
    const fresh = [];
    let after = null;
    for (;;) {
      const page = await get(`/fine_tuning/jobs/${id}/events${query({ limit: EVENTS_PAGE, after })}`);
      const unseen = [];
      for (const e of page.data) {
        if (seen.has(e.id)) break;
        unseen.push(e);
      }
      fresh.push(...unseen);
      if (unseen.length < page.data.length || !page.has_more || !page.data.length) break;
      after = page.data[page.data.length - 1].id;
    }
    fresh.reverse().forEach((e) => { seen.add(e.id); events.push(e); });
    return fresh.length;
  }

  // One row per step: a step's training and validation metrics may come in separate events.
  function metrics() {
    const byStep = new Map();
    for (const e of events) {
      if (e.type !== "metrics" || !e.data || typeof e.data.step !== "number") continue;
      byStep.set(e.data.step, { ...(byStep.get(e.data.step) || {}), ...e.data });
    }
    return [...byStep.values()].sort((a, b) => a.step - b.step);
  }

  // The eval runner's event for each finished run the job asked for: its data names the run,
  // its model and counts (services/eval_runner.py), newest last.
  function drawEvals() {
    const results = events.filter((e) => e.data && e.data.run_id && e.data.result_counts);
    evalsSection.hidden = !results.length;
    if (!results.length) return;
    const runLink = (e) => `#/evals/${encodeURIComponent(e.data.eval_id)}/runs/${encodeURIComponent(e.data.run_id)}`;
    evalsBox.replaceChildren(table([
      { label: "Run", cell: (e) => h("a", { href: runLink(e) }, e.data.run_id) },
      { label: "Model", cell: (e) => e.data.model || "" },
      { label: "Status", cell: (e) => badge(e.data.status) },
      { label: "Pass rate", cell: (e) => (e.data.status === "completed" ? `${Math.round(100 * e.data.pass_rate)}%` : "") },
      { label: "Passed", cell: (e) => `${e.data.result_counts.passed} of ${e.data.result_counts.total}` },
      { label: "Errored", cell: (e) => e.data.result_counts.errored },
      { label: "Per criterion", cell: (e) => (e.data.per_testing_criteria_results || [])
        .map((c) => `${c.testing_criteria}: ${c.passed}/${c.passed + c.failed}`).join(", ") },
      { label: "Finished", cell: (e) => when(e.created_at) },
    ], results, { id: "job-evals-table" }));
  }

  function drawEvents() {
    const shown = events.filter((e) => showMetrics.checked || e.type !== "metrics").slice().reverse();
    eventsBox.replaceChildren(table([
      { label: "Time", cell: (e) => when(e.created_at) },
      { label: "Level", cell: (e) => e.level },
      { label: "Message", cell: (e) => e.message },
    ], shown, { class: "events" }));
  }

  function drawJob() {
    status.replaceChildren(badge(job.status));
    status.dataset.status = job.status;
    // Only the actions the status allows are shown: a finished job has none.
    for (const [action, button] of Object.entries(buttons)) button.hidden = !ACTIONS[action].has(job.status);
    const progress = job.total_steps ? `${job.trained_steps || 0} / ${job.total_steps}` : null;
    summary.replaceChildren(facts({
      model: job.model,
      experiment: job.experiment_name,
      method: method(job),
      "fine-tuned model": job.fine_tuned_model
        && [modelLink(job.fine_tuned_model), modelDownloadButton("download", job.fine_tuned_model)],
      created: when(job.created_at),
      finished: when(job.finished_at),
      duration: jobDuration(job),
      "steps trained": progress,
      "trained tokens": job.trained_tokens,
      "training file": job.training_file,
      "validation file": job.validation_file,
      "result files": job.result_files && job.result_files.length
        ? job.result_files.map((f) => downloadButton(`${f} ⤓`, `/files/${f}/content`, `${id}-results.csv`)) : null,
      error: job.error ? `${job.error.message}${job.error.param ? ` (param: ${job.error.param})` : ""}` : null,
    }));
    if (job.fine_tuned_model) {
      summary.append(h("p", {}, h("a", { href: `#/models?model=${encodeURIComponent(job.fine_tuned_model)}` },
        "Chat with the fine-tuned model")));
    }
    // A grader the SDK's types can't hold comes under polytune_reinforcement (translate.py).
    const m = job.method && (job.method[method(job)] || job.method.polytune_reinforcement);
    hyperBox.replaceChildren(facts({
      ...(job.hyperparameters || {}),
      ...((m && m.hyperparameters) || {}),
      ...(m && m.grader ? { grader: m.grader } : {}),
      seed: job.seed,
      suffix: job.user_provided_suffix,
    }));
    if (job.data_report) hyperBox.append(h("h3", {}, "Data"), facts(job.data_report));
  }

  async function drawCheckpoints() {
    const page = await get(`/fine_tuning/jobs/${id}/checkpoints${query({ limit: 100 })}`);
    checkpointsBox.replaceChildren(table([
      { label: "Step", cell: (c) => c.step_number },
      { label: "Model", cell: (c) => h("a", { href: `#/models?model=${encodeURIComponent(c.fine_tuned_model_checkpoint)}` },
        c.fine_tuned_model_checkpoint) },
      { label: "Train loss", cell: (c) => fixed(c.metrics.train_loss) },
      { label: "Validation loss", cell: (c) => fixed(c.metrics.valid_loss) },
      { label: "Created", cell: (c) => when(c.created_at) },
      // Its weights in the model's default format (the Models page offers the others).
      { label: "", cell: (c) => modelDownloadButton("download", c.fine_tuned_model_checkpoint) },
    ], page.data, { id: "checkpoints-table" }));
    // A job that ended with none (failed or cancelled early) will never have one.
    checkpointsSection.hidden = !page.data.length && TERMINAL.has(job.status);
  }

  let checkpointsSeen = -1;
  // Bumped by each action: a poll that read the job before the action must not draw it over
  // the action's answer (a cancelled job showing "running" again for a second).
  let version = 0;
  async function refresh() {
    const asked = version;
    const fetched = ownStatus(await get(`/fine_tuning/jobs/${id}`));
    if (asked === version) {
      job = fetched;
      drawJob();
    }
    if (await newEvents()) {
      const rows = metrics();
      lossSection.hidden = false; // laid out before uPlot measures its width
      loss.update(rows);
      lossSection.hidden = !loss.points;
      const rewarded = rows.some((r) => typeof r.reward === "number");
      rewardSection.hidden = !rewarded;
      if (rewarded) reward.update(rows);
      drawEvals();
      drawEvents();
    }
    // Checkpoints are few and come with events: re-read them only when an event arrived.
    if (events.length !== checkpointsSeen) {
      checkpointsSeen = events.length;
      await drawCheckpoints();
    }
    return TERMINAL.has(job.status);
  }

  async function act(action) {
    actionError.replaceChildren();
    try {
      version += 1;
      job = ownStatus(await post(`/fine_tuning/jobs/${id}/${action}`));
      drawJob();
      poll();
    } catch (err) {
      actionError.append(errorBox(err));
    }
  }

  // One poll loop at a time; it ends when the job has finished (an action restarts it).
  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    try {
      for (;;) {
        let done = false;
        try {
          done = await refresh();
        } catch (err) {
          ctx.fail(err); // shown, and polling goes on: a server restart is not the job's end
        }
        if (done || !ctx.alive) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      polling = false;
    }
  }
  await refresh();
  if (!TERMINAL.has(job.status)) poll();
}

function fixed(v) {
  return typeof v === "number" ? v.toFixed(4) : "";
}
