// Evals (OpenAI's Evals API, docs/evals.md): the evals, an eval's runs side by side (one per
// model: base vs fine-tuned, with each criterion's pass rate), and a run's output items, each
// sample next to the item it answered (the expected answer is in the item).

import { get, query } from "../api.js";
import { badge, facts, h, table, when } from "../dom.js";

function rate(passed, total) {
  return total ? `${Math.round((100 * passed) / total)}%` : "";
}

function runRate(run) {
  return rate(run.result_counts.passed, run.result_counts.total);
}

export async function evalsView(root) {
  const evals = (await get(`/evals${query({ order: "desc", limit: 100 })}`)).data;
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Evals")),
    table([
      { label: "Eval", cell: (e) => h("a", { href: `#/evals/${encodeURIComponent(e.id)}` }, e.name || e.id) },
      { label: "Criteria", cell: (e) => e.testing_criteria.map((c) => `${c.name} (${c.type})`).join(", ") },
      { label: "Created", cell: (e) => when(e.created_at) },
    ], evals, { id: "evals-table" }),
  );
}

export async function evalView(root, { args, ctx }) {
  const id = args[0];
  const ev = await get(`/evals/${encodeURIComponent(id)}`);
  const runsBox = h("div", { id: "eval-runs" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, ev.name || ev.id)),
    facts({ id: ev.id, created: when(ev.created_at), criteria: ev.testing_criteria.map((c) => c.name).join(", ") }),
    h("section", { class: "card" }, h("h2", {}, "Runs"), runsBox),
  );
  const draw = async () => {
    const runs = (await get(`/evals/${encodeURIComponent(id)}/runs${query({ order: "desc", limit: 100 })}`)).data;
    const perCriterion = ev.testing_criteria.map((c) => ({
      label: c.name,
      cell: (r) => {
        const found = r.per_testing_criteria_results.find((x) => x.testing_criteria === c.name);
        return found ? rate(found.passed, found.passed + found.failed) : "";
      },
    }));
    runsBox.replaceChildren(table([
      { label: "Run", cell: (r) => h("a", { href: `#/evals/${encodeURIComponent(id)}/runs/${encodeURIComponent(r.id)}` }, r.name || r.id) },
      { label: "Model", cell: (r) => r.model || "(waiting for its job)" },
      { label: "Status", cell: (r) => badge(r.status) },
      { label: "Items", cell: (r) => r.result_counts.total },
      { label: "Pass rate", cell: runRate, class: "pass-rate" },
      ...perCriterion,
      { label: "Created", cell: (r) => when(r.created_at) },
    ], runs, { id: "runs-table" }));
    return runs.some((r) => r.status === "queued" || r.status === "in_progress");
  };
  if (await draw()) ctx.every(2000, draw);
}

export async function runView(root, { args, params, ctx }) {
  const [evalId, runId] = args;
  const base = `/evals/${encodeURIComponent(evalId)}/runs/${encodeURIComponent(runId)}`;
  const head = h("div", { id: "run-head" });
  const items = h("div", { id: "run-items" });
  const filter = params.get("status") || "";
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Eval run"),
      h("a", { href: `#/evals/${encodeURIComponent(evalId)}` }, "all runs")),
    head,
    h("section", { class: "card" }, h("h2", {}, "Output items"),
      h("div", { class: "inline" }, ["", "pass", "fail"].map((s) => h("a", {
        href: `#${base}${query({ status: s })}`, class: s === filter ? "active" : undefined,
      }, s || "all"))),
      items),
  );
  const draw = async () => {
    const run = await get(base);
    head.replaceChildren(facts({
      run: run.id, model: run.model, status: run.status, "pass rate": runRate(run), ...run.result_counts,
      error: run.error && run.error.message ? run.error.message : undefined,
    }), table([
      { label: "Criterion", cell: (c) => c.testing_criteria },
      { label: "Passed", cell: (c) => c.passed },
      { label: "Failed", cell: (c) => c.failed },
    ], run.per_testing_criteria_results, { id: "criteria-table" }));
    const page = (await get(`${base}/output_items${query({ status: filter, limit: 200 })}`)).data;
    items.replaceChildren(table([
      { label: "#", cell: (o) => o.datasource_item_id },
      { label: "Status", cell: (o) => badge(o.status) },
      { label: "Item (expected)", cell: (o) => JSON.stringify(o.datasource_item) },
      { label: "Sample", cell: (o) => (o.sample.output[0] || {}).content || o.sample.error.message },
      { label: "Results", cell: (o) => o.results.map((r) => `${r.name}: ${r.passed ? "pass" : "fail"} (${r.score})`).join(", ") },
    ], page, { id: "items-table" }));
    return run.status === "queued" || run.status === "in_progress";
  };
  if (await draw()) ctx.every(2000, draw);
}
