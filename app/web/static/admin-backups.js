/* docchat console: snapshots (/api/admin/backups, as `docchat backup list|create|
 * verify`): those in backup.folder, take one (retention: backup.keep), verify one,
 * and when snapshots were taken, from the audit trail. Restoring stays a CLI command:
 * the server is stopped first. */

import { call, table } from "./admin-api.js";
import { el } from "./dom.js";

function result(text, isError) {
  const out = document.getElementById("backup-result");
  out.textContent = text;
  out.classList.toggle("error-text", !!isError);
}

function size(bytes) {
  return (bytes / 1048576).toFixed(1) + " MiB";
}

async function verify(name) {
  result("Verifying " + name + " (every file's hash)…");
  try {
    const out = await call("POST", "/api/admin/backups/" + encodeURIComponent(name) + "/verify");
    if (out !== null) result(name + ": ok, signed with key " + out.signed_by_key + ", " + out.facts.files + " files checked.");
  } catch (e) {
    result("Refused: " + e.message, true);
  }
}

export async function showBackups() {
  const b = await call("GET", "/api/admin/backups");
  if (b === null) return;
  const form = document.getElementById("backup-create");
  form.hidden = !b.folder;
  document.getElementById("backups-where").textContent = b.folder
    ? "Snapshots in " + b.folder + "; " + (b.keep ? "the newest " + b.keep + " are kept." : "all are kept (backup.keep is not set).")
    : "backup.folder is not set: the server knows no snapshots (docs/backup.md).";
  table(
    "backups-table",
    ["Snapshot", "Taken", "docchat", "Schema", "Collections (records)", "Files", "Size", ""],
    b.snapshots.reverse().map(function (s) {
      const f = s.facts;
      const check = el("button", "button secondary small", "Verify");
      check.type = "button";
      check.setAttribute("aria-label", "Verify " + s.name);
      check.addEventListener("click", () => verify(s.name));
      if (f.error) return [s.name, f.error, "", "", "", "", "", ""];
      return [s.name, f.created_at.replace("T", " "), f.docchat_version, f.schema_revision, f.collections + " (" + f.records + ")", f.files, size(f.size_bytes), check];
    })
  );
  table(
    "backups-history",
    ["When", "Who", "Snapshot", "Outcome"],
    b.history.map((e) => [e.created_at.slice(0, 19).replace("T", " "), e.actor, e.target, e.outcome])
  );
}

async function take(ev) {
  ev.preventDefault();
  const form = ev.target;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  result("Taking a snapshot (database, vectors, files)…");
  try {
    const out = await call("POST", "/api/admin/backups", { with_models: form.with_models.checked });
    if (out !== null) result("Snapshot " + out.name + " taken: " + out.facts.files + " files, " + size(out.facts.size_bytes) + "." + (out.pruned.length ? " Deleted by retention: " + out.pruned.join(", ") + "." : ""));
  } catch (e) {
    result("No snapshot: " + e.message, true);
  } finally {
    button.disabled = false;
  }
  await showBackups();
}

document.getElementById("backup-create").addEventListener("submit", take);
