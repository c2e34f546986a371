/* docchat console: files in quarantine (kept out of the index as duplicates), with
 * why, and release (index it anyway) or drop (forget it), each with the admin's
 * reason: /api/admin/quarantine, as `docchat quarantine` does it. */

import { call, table } from "./admin-api.js";
import { el } from "./dom.js";

function result(text, isError) {
  const out = document.getElementById("quarantine-result");
  out.textContent = text;
  out.classList.toggle("error-text", !!isError);
}

async function decide(q, verb, why, reload) {
  if (!why) {
    result("Say why you " + verb + " " + q.source + ": it is kept in the audit trail.", true);
    return;
  }
  if (verb === "drop" && !window.confirm("Drop " + q.source + " from quarantine?" + (q.uploaded ? " Its uploaded copy is deleted." : ""))) return;
  result((verb === "release" ? "Releasing " : "Dropping ") + q.source + "…");
  try {
    const out = await call("POST", "/api/admin/quarantine/" + q.finding + "/" + verb, { reason: why });
    if (out === null) return;
    if (verb === "release") result("Released " + q.source + ": run " + out.run_id + " (" + out.status + "), " + out.chunks_written + " chunks.");
    else result("Dropped " + q.source + (out.deleted ? "; its uploaded copy is deleted." : "."));
  } catch (e) {
    result("Not done: " + e.message, true);
  }
  await reload();
}

function actions(q, reload) {
  const form = el("form", "admin-inline");
  const why = el("input");
  why.name = "why";
  why.maxLength = 500;
  why.placeholder = "why";
  why.setAttribute("aria-label", "Why release or drop " + q.source);
  const release = el("button", "button secondary small", "Release");
  release.type = "submit";
  release.setAttribute("aria-label", "Release " + q.source + " into " + q.collection);
  const drop = el("button", "button secondary small", "Drop");
  drop.type = "button";
  drop.setAttribute("aria-label", "Drop " + q.source);
  form.append(why, release, drop);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    decide(q, "release", why.value.trim(), reload);
  });
  drop.addEventListener("click", () => decide(q, "drop", why.value.trim(), reload));
  return form;
}

export async function showQuarantine(reload) {
  const found = await call("GET", "/api/admin/quarantine");
  if (found === null) return;
  table(
    "quarantine-table",
    ["File", "Collection", "Run", "Since", "Why", ""],
    found.map((q) => [q.source, q.collection, q.run_id, q.at.slice(0, 16).replace("T", " "), q.reason, actions(q, reload || showQuarantine)])
  );
  document.getElementById("quarantine-empty").hidden = found.length > 0;
}
