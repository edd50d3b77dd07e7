// The jobs table, newest first, refreshed every few seconds, with a filter by status; tick
// jobs to compare their curves and hyperparameters side by side.

import { get, ownStatus, query } from "../api.js";
import { badge, duration, h, table, when } from "../dom.js";

const STATUSES = ["validating_files", "queued", "running", "pausing", "paused", "succeeded", "failed", "cancelled"];
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const PAGE = 100;
// A job's last logged train loss is read from its newest events: the metrics event is among
// the last few (after it come at most the saving and finishing events).
const LOSS_EVENTS = 20;
const LOSS_READS_AT_ONCE = 4;

export function method(job) {
  return (job.method && job.method.type) || "";
}

export function jobDuration(job) {
  return duration(job.created_at, TERMINAL.has(job.status) ? job.finished_at || job.created_at : null);
}

export function modelLink(id) {
  return h("a", { href: `#/models?model=${encodeURIComponent(id)}` }, id);
}

// The newest train loss a job logged (null when none): the "final loss" of a finished job.
async function lastLoss(jobId) {
  const page = await get(`/fine_tuning/jobs/${jobId}/events${query({ limit: LOSS_EVENTS })}`);
  const e = page.data.find((x) => x.type === "metrics" && x.data && typeof x.data.train_loss === "number");
  return e ? e.data.train_loss : null;
}

export async function jobsView(root, { params, ctx }) {
  let status = params.get("status") || "";
  let jobs = [];
  let hasMore = false;
  let loadedOlder = false;
  const selected = new Set();
  // job id -> last train loss; a finished job's is read once, an unfinished one's at each refresh.
  const losses = new Map();
  const filter = h("select", { id: "status-filter", onchange: () => {
    status = filter.value;
    history.replaceState(null, "", status ? `#/jobs?status=${status}` : "#/jobs");
    draw();
  } }, h("option", { value: "" }, "all statuses"), STATUSES.map((s) => h("option", { value: s }, s)));
  filter.value = status;
  const compare = h("button", { type: "button", id: "compare-jobs", class: "secondary", disabled: true, onclick: () => {
    location.hash = `#/compare?jobs=${[...selected].join(",")}`;
  } }, "Compare selected");
  const more = h("button", { type: "button", class: "secondary", onclick: loadMore }, "Load older jobs");
  const holder = h("div");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Fine-tuning jobs"),
    h("a", { href: "#/jobs/new", class: "button", id: "new-job-link" }, "New job"), compare,
    h("label", {}, "Status ", filter)), holder, more);

  async function refresh() {
    // The newest page again; older pages the user loaded are kept.
    const page = await get(`/fine_tuning/jobs${query({ limit: PAGE })}`);
    const known = new Map(jobs.map((j) => [j.id, j]));
    page.data.map(ownStatus).forEach((j) => known.set(j.id, j));
    jobs = [...known.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
    if (!loadedOlder) hasMore = page.has_more;
    draw();
    await readLosses();
  }

  async function readLosses() {
    const todo = jobs.filter((j) => j.status !== "validating_files" && j.status !== "queued"
      && (!losses.has(j.id) || !TERMINAL.has(j.status)));
    for (let i = 0; i < todo.length && ctx.alive; i += LOSS_READS_AT_ONCE) {
      const batch = todo.slice(i, i + LOSS_READS_AT_ONCE);
      const read = await Promise.all(batch.map((j) => lastLoss(j.id).catch(() => undefined)));
      batch.forEach((j, k) => { if (read[k] !== undefined) losses.set(j.id, read[k]); });
    }
    if (todo.length && ctx.alive) draw();
  }

  async function loadMore() {
    const last = jobs[jobs.length - 1];
    const page = await get(`/fine_tuning/jobs${query({ limit: PAGE, after: last && last.id })}`);
    jobs = jobs.concat(page.data.map(ownStatus).filter((j) => !jobs.some((k) => k.id === j.id)));
    hasMore = page.has_more;
    loadedOlder = true;
    draw();
    await readLosses();
  }

  function tick(job) {
    return h("input", { type: "checkbox", class: "pick", "aria-label": `select ${job.id}`, checked: selected.has(job.id),
      onchange: (e) => {
        if (e.target.checked) selected.add(job.id); else selected.delete(job.id);
        compare.disabled = selected.size < 2;
      } });
  }

  function outcome(job) {
    if (job.fine_tuned_model) return modelLink(job.fine_tuned_model);
    // The error's first line (a data error lists every bad line after it); all of it on hover
    // and on the job's page.
    if (job.error) return h("span", { class: "job-error", title: job.error.message }, job.error.message.split("\n")[0]);
    return "";
  }

  function draw() {
    const shown = status ? jobs.filter((j) => j.status === status) : jobs;
    holder.replaceChildren(table([
      { label: "", cell: tick },
      { label: "Job", cell: (j) => h("a", { href: `#/jobs/${j.id}` }, j.id) },
      { label: "Suffix", cell: (j) => j.user_provided_suffix || "" },
      // SeekrFlow's experiment names: a column only when some job has one.
      shown.some((j) => j.experiment_name) && { label: "Experiment", cell: (j) => j.experiment_name || "" },
      { label: "Status", cell: (j) => badge(j.status) },
      { label: "Model · method", cell: (j) => [j.model, h("div", { class: "muted" }, method(j))] },
      { label: "Training file", cell: (j) => j.training_file },
      { label: "Loss", class: "num loss", cell: (j) => (typeof losses.get(j.id) === "number" ? losses.get(j.id).toFixed(4) : "") },
      { label: "Created · took", class: "when", cell: (j) => [when(j.created_at), h("div", { class: "muted" }, jobDuration(j))] },
      { label: "Result", class: "outcome", cell: outcome },
    ].filter(Boolean), shown, { id: "jobs-table" }));
    compare.disabled = selected.size < 2;
    more.hidden = !hasMore;
  }

  await refresh();
  ctx.every(3000, refresh);
}
