// Files: upload (the validation report shown as it comes), list with each file's validation
// status and what validation found (status_details: the data report, or the lines and fields
// that are wrong, one a line), download, delete.

import { del, get, query } from "../api.js";
import { badge, bytes, downloadButton, errorBox, h, table, when } from "../dom.js";
import { uploadForm } from "./upload.js";

export async function filesView(root, { ctx }) {
  const holder = h("div");
  const message = h("div");
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Files")),
    uploadForm({ id: "upload-form", onDone: () => refresh() }), message, holder);

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
      { label: "Details", class: "details report", cell: (f) => f.status_details || "" },
      { label: "", cell: (f) => h("span", { class: "row-actions" },
        downloadButton("download", `/files/${f.id}/content`, f.filename), " ",
        h("button", { type: "button", class: "link", onclick: () => remove(f) }, "delete")) },
    ], page.data, { id: "files-table" }));
  }

  await refresh();
  ctx.every(5000, refresh);
}
