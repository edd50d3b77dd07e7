// The upload form the Files page and the New job page share: the bytes go up with a progress
// bar, then the server checks every row before it answers, and the answer is shown as it
// comes: the file's status and its report (or the lines and fields that are wrong).

import { uploadWithProgress } from "../api.js";
import { badge, errorBox, h } from "../dom.js";

export const PURPOSES = ["fine-tune", "user_data", "vision"];

// onDone(file) after each answered upload (processed or error). `purpose` fixes the purpose
// (the New job page uploads training data); otherwise the form offers a choice.
export function uploadForm({ id, onDone, purpose = null }) {
  const chooser = h("input", { type: "file", id: `${id}-file`, required: true });
  const purposeField = purpose ? null
    : h("select", { id: `${id}-purpose` }, PURPOSES.map((p) => h("option", { value: p }, p)));
  const progress = h("progress", { id: `${id}-progress`, max: 1, value: 0, hidden: true });
  const stage = h("span", { id: `${id}-stage`, class: "muted" });
  const report = h("div", { id: `${id}-report`, class: "upload-report" });
  const send = h("button", { type: "submit" }, "Upload");
  const form = h("form", { id, class: "inline", onsubmit: submit },
    chooser, purposeField && h("label", {}, "purpose ", purposeField), send, progress, stage);

  async function submit(event) {
    event.preventDefault();
    report.replaceChildren();
    const body = new FormData();
    body.append("purpose", purpose || purposeField.value);
    body.append("file", chooser.files[0]);
    progress.hidden = false;
    progress.value = 0;
    send.disabled = true;
    stage.textContent = "uploading…";
    try {
      const file = await uploadWithProgress("/files", body, (done) => {
        progress.value = done;
        stage.textContent = done < 1 ? `uploading ${Math.round(done * 100)}%` : "uploaded; validating every row…";
      });
      stage.textContent = "";
      report.append(fileReport(file));
      form.reset();
      onDone(file);
    } catch (err) {
      stage.textContent = "";
      report.append(errorBox(err));
    } finally {
      progress.hidden = true;
      send.disabled = false;
    }
  }

  return h("div", { class: "uploader" }, form, report);
}

// What validation said about one file; its line breaks kept (one problem a line).
export function fileReport(file) {
  return h("div", { class: `file-report ${file.status === "error" ? "error" : "ok"}`, "data-status": file.status },
    h("div", {}, badge(file.status), " ", h("b", {}, file.filename), " ", h("code", {}, file.id)),
    file.status_details ? h("div", { class: "report" }, file.status_details) : null);
}
