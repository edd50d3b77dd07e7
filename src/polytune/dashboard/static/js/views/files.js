// Files: upload, list with each file's validation status and what validation found
// (status_details: the data report, or the first bad row's line and field), delete.

import { del, get, post, query } from "../api.js";
import { badge, bytes, errorBox, h, table, when } from "../dom.js";

const PURPOSES = ["fine-tune", "user_data", "vision"];

export async function filesView(root, { ctx }) {
  const holder = h("div");
  const message = h("div");
  const chooser = h("input", { type: "file", id: "upload-file", required: true });
  const purpose = h("select", { id: "upload-purpose" }, PURPOSES.map((p) => h("option", { value: p }, p)));
  const form = h("form", { id: "upload-form", class: "inline", onsubmit: upload },
    chooser, h("label", {}, "purpose ", purpose), h("button", { type: "submit" }, "Upload"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Files")), form, message, holder);

  async function upload(event) {
    event.preventDefault();
    message.replaceChildren();
    const body = new FormData();
    body.append("purpose", purpose.value);
    body.append("file", chooser.files[0]);
    try {
      const f = await post("/files", body);
      message.append(h("p", { class: f.status === "error" ? "error" : "ok" },
        `${f.filename}: ${f.status}${f.status_details ? ` — ${f.status_details}` : ""}`));
      form.reset();
      await refresh();
    } catch (err) {
      message.append(errorBox(err));
    }
  }

  async function remove(file) {
    if (!confirm(`Delete ${file.filename} (${file.id})?`)) return;
    try {
      await del(`/files/${file.id}`);
      await refresh();
    } catch (err) {
      message.replaceChildren(errorBox(err));
    }
  }

  async function refresh() {
    const page = await get(`/files${query({ limit: 500 })}`);
    holder.replaceChildren(table([
      { label: "File", cell: (f) => f.id },
      { label: "Name", cell: (f) => f.filename },
      { label: "Purpose", cell: (f) => f.purpose },
      { label: "Size", cell: (f) => bytes(f.bytes) },
      { label: "Created", cell: (f) => when(f.created_at) },
      { label: "Validation", cell: (f) => badge(f.status) },
      { label: "Details", class: "details", cell: (f) => f.status_details || "" },
      { label: "", cell: (f) => h("button", { type: "button", class: "link", onclick: () => remove(f) }, "delete") },
    ], page.data, { id: "files-table" }));
  }

  await refresh();
  ctx.every(5000, refresh);
}
