/* docchat owners' page: the upload of one collection. Files chosen or dropped
 * go to POST /api/collections/<name>/documents (progress shown while they
 * travel), and the report says, file by file, what was added, updated,
 * skipped (unchanged), quarantined or failed, with the checks' findings.
 */

import { collectionPath, findingList, sendFiles } from "./owner-api.js";
import { el } from "./dom.js";

// The pipeline's outcome per file, in the words the page uses.
const OUTCOME = {
  new: "added",
  changed: "updated",
  unchanged: "skipped (unchanged)",
  quarantined: "quarantined",
  failed: "failed",
};

function report(r) {
  const box = el("div", "owner-report");
  const line =
    "Run " + r.run_id + " (" + r.status + "): " + r.new + " added, " + r.changed + " updated, " +
    r.unchanged + " skipped, " + r.quarantined + " quarantined, " + r.failed + " failed; " +
    r.chunks_written + " chunks written.";
  box.appendChild(el("p", "owner-report-summary", line));
  const files = el("ul", "owner-outcomes");
  Object.keys(r.outcomes || {}).sort().forEach(function (name) {
    const outcome = r.outcomes[name];
    const item = el("li", "owner-outcome outcome-" + outcome, name + ": " + (OUTCOME[outcome] || outcome));
    files.appendChild(item);
  });
  box.appendChild(files);
  if (r.findings && r.findings.length) {
    box.appendChild(el("p", null, "Findings of the checks:"));
    box.appendChild(findingList(r.findings));
  }
  return box;
}

// The upload form and drop zone of collection `name`; afterUpload() runs once
// a report came back (the page refreshes the runs).
export function uploadPanel(name, afterUpload) {
  const panel = el("div", "owner-upload");
  panel.appendChild(el("h3", null, "Upload documents"));
  const form = el("form", "admin-form");
  const label = el("label", null, "Files ");
  const input = el("input");
  input.type = "file";
  input.name = "files";
  input.multiple = true;
  input.required = true;
  label.appendChild(input);
  const submit = el("button", "button primary", "Upload");
  submit.type = "submit";
  const zone = el("p", "admin-drop owner-drop", "…or drop files here: they are uploaded at once.");
  const bar = el("progress");
  bar.max = 100;
  bar.value = 0;
  bar.hidden = true;
  bar.setAttribute("aria-label", "Upload progress");
  form.append(label, submit, zone, bar);
  const out = el("div", "admin-result owner-result");
  out.setAttribute("role", "status");
  panel.append(form, out);

  async function upload(files) {
    if (!files || !files.length) return;
    const data = new FormData();
    for (const file of files) data.append("files", file);
    bar.hidden = false;
    bar.value = 0;
    submit.disabled = true;
    out.textContent = "Uploading…";
    try {
      const r = await sendFiles(collectionPath(name, "/documents"), data, function (percent) {
        bar.value = percent;
        out.textContent = percent < 100 ? "Uploading… " + percent + "%" : "Uploaded; checking and indexing…";
      });
      if (r === null) {
        out.textContent = "";
        return;
      }
      out.replaceChildren(report(r));
      form.reset();
      afterUpload();
    } catch (e) {
      out.textContent = "Upload refused: " + e.message;
    } finally {
      bar.hidden = true;
      submit.disabled = false;
    }
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    upload(input.files);
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (ev) {
      ev.preventDefault();
      zone.classList.add("active");
    });
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("active"));
  zone.addEventListener("drop", function (ev) {
    ev.preventDefault();
    zone.classList.remove("active");
    if (ev.dataTransfer) upload(ev.dataTransfer.files);
  });
  return panel;
}
