// The jobs table, newest first, refreshed every few seconds, with a filter by status.

import { get, ownStatus, query } from "../api.js";
import { badge, duration, h, table, when } from "../dom.js";

const STATUSES = ["validating_files", "queued", "running", "pausing", "paused", "succeeded", "failed", "cancelled"];
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const PAGE = 100;

export function method(job) {
  return (job.method && job.method.type) || "";
}

export function jobDuration(job) {
  return duration(job.created_at, TERMINAL.has(job.status) ? job.finished_at || job.created_at : null);
}

export async function jobsView(root, { params, ctx }) {
  let status = params.get("status") || "";
  let jobs = [];
  let hasMore = false;
  let loadedOlder = false;
  const filter = h("select", { id: "status-filter", onchange: () => {
    status = filter.value;
    history.replaceState(null, "", status ? `#/jobs?status=${status}` : "#/jobs");
    draw();
  } }, h("option", { value: "" }, "all statuses"), STATUSES.map((s) => h("option", { value: s }, s)));
  filter.value = status;
  const more = h("button", { type: "button", class: "secondary", onclick: loadMore }, "Load older jobs");
  const holder = h("div");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Fine-tuning jobs"),
    h("label", {}, "Status ", filter)), holder, more);

  async function refresh() {
    // The newest page again; older pages the user loaded are kept.
    const page = await get(`/fine_tuning/jobs${query({ limit: PAGE })}`);
    const known = new Map(jobs.map((j) => [j.id, j]));
    page.data.map(ownStatus).forEach((j) => known.set(j.id, j));
    jobs = [...known.values()].sort((a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : -1));
    if (!loadedOlder) hasMore = page.has_more;
    draw();
  }

  async function loadMore() {
    const last = jobs[jobs.length - 1];
    const page = await get(`/fine_tuning/jobs${query({ limit: PAGE, after: last && last.id })}`);
    jobs = jobs.concat(page.data.map(ownStatus).filter((j) => !jobs.some((k) => k.id === j.id)));
    hasMore = page.has_more;
    loadedOlder = true;
    draw();
  }

  function draw() {
    const shown = status ? jobs.filter((j) => j.status === status) : jobs;
    holder.replaceChildren(table([
      { label: "Job", cell: (j) => h("a", { href: `#/jobs/${j.id}` }, j.id) },
      { label: "Experiment", cell: (j) => j.experiment_name || "" },
      { label: "Status", cell: (j) => badge(j.status) },
      { label: "Model", cell: (j) => j.model },
      { label: "Method", cell: method },
      { label: "Created", cell: (j) => when(j.created_at) },
      { label: "Duration", cell: jobDuration },
      { label: "Fine-tuned model", cell: (j) => j.fine_tuned_model || "" },
    ], shown, { id: "jobs-table" }));
    more.hidden = !hasMore;
  }

  await refresh();
  ctx.every(3000, refresh);
}
