// Small DOM and formatting helpers. Text always goes in as text nodes, never as HTML: job
// names, file names and model replies are user data.

import { download } from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function table(columns, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c.label)))),
    h("tbody", {}, rows.length
      ? rows.map((r) => h("tr", c0(r), columns.map((c) => h("td", { class: c.class }, c.cell(r)))))
      : h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "Nothing yet."))));
}

function c0(row) {
  return row && row.id ? { "data-id": row.id } : {};
}

// A two-column table of names and values (hyperparameters, a data report). A value may be
// an element (a link) or a list of them.
export function facts(obj) {
  const rows = Object.entries(obj || {}).filter(([, v]) => v !== undefined && v !== null);
  return h("table", { class: "facts" }, h("tbody", {}, rows.map(([k, v]) =>
    h("tr", {}, h("th", {}, k), h("td", {}, factValue(v))))));
}

export function factValue(v) {
  if (v instanceof Node) return v;
  if (Array.isArray(v) && v.length && v.every((x) => x instanceof Node)) return v.flatMap((x, i) => (i ? [" ", x] : [x]));
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function badge(status) {
  return h("span", { class: `status status-${status}` }, status);
}

export function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toLocaleString();
}

export function duration(fromSeconds, toSeconds) {
  if (!fromSeconds) return "";
  let s = Math.max(0, Math.round((toSeconds || Date.now() / 1000) - fromSeconds));
  const hours = Math.floor(s / 3600); s -= hours * 3600;
  const minutes = Math.floor(s / 60); s -= minutes * 60;
  return hours ? `${hours}h ${minutes}m` : minutes ? `${minutes}m ${s}s` : `${s}s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

// A download: a button (the key goes in a header, see api.js download). `path` may be a
// function, read at each click (a format picked beside it); `filename` null takes the server's
// name. While the bytes come the button says how far it is (a first merged or GGUF download is
// built by the server first: "preparing"); a refused download shows the API's error beside it.
export function downloadButton(label, path, filename) {
  const button = h("button", { type: "button", class: "link download", "data-path": typeof path === "string" ? path : null });
  button.append(label);
  button.addEventListener("click", async () => {
    const old = button.parentNode && button.parentNode.querySelector(".error");
    if (old) old.remove();
    button.disabled = true;
    button.textContent = "preparing…";
    try {
      await download(typeof path === "function" ? path() : path, filename, (got, total) => {
        button.textContent = total ? `${Math.floor((100 * got) / total)}%` : bytes(got);
      });
    } catch (err) {
      button.after(errorBox(err));
    } finally {
      button.textContent = label;
      button.disabled = false;
    }
  });
  return button;
}

// A fine-tuned model's or checkpoint's weights (GET /v1/models/{id}/content, polytune's
// download route), in `format` (a string, a function read at each click, or null: the model's
// default, adapter for a LoRA and merged for a full fine-tune).
export function modelDownloadButton(label, modelId, format = null) {
  const path = () => {
    const f = typeof format === "function" ? format() : format;
    return `/models/${encodeURIComponent(modelId)}/content${f ? `?format=${encodeURIComponent(f)}` : ""}`;
  };
  const button = downloadButton(label, path, null);
  button.dataset.model = modelId;
  return button;
}
