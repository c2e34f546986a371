/* docchat console: models (the registry, activation through the gate with its
 * reasons, rollback) and the audit trail (filters, CSV). */

import { call, setStatus, table } from "./admin-api.js";
import { el } from "./dom.js";
import { gateButton, showAdapters } from "./admin-releases.js";

// The recorded gate figures, set by set: what the gate compares with the release
// in service.
function gateSummary(report) {
  if (!report || !Array.isArray(report.sets)) return "not evaluated";
  const parts = report.sets.map(function (s) {
    const a = s.answers || {};
    const name = String(s.file || "").split("/").pop();
    const figures = [];
    if (typeof a.expected === "number") figures.push("expected " + a.expected.toFixed(2));
    if (typeof a.grounded === "number") figures.push("grounded " + a.grounded.toFixed(2));
    if (typeof a.first_token_p95_s === "number") figures.push("first token p95 " + a.first_token_p95_s.toFixed(1) + " s");
    return name + ": " + (figures.join(", ") || "measured");
  });
  return parts.join("; ") || "evaluated";
}

function result(text, isError) {
  const out = document.getElementById("model-result");
  out.textContent = text;
  out.classList.toggle("error-text", !!isError);
}

async function pollJob(job) {
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 2000));
    const now = await call("GET", "/api/admin/model-jobs/" + encodeURIComponent(job.id));
    if (now === null) return;
    if (now.status !== "running") {
      result(now.status + (now.problems && now.problems.length ? ": " + now.problems.join("; ") : ""), now.status !== "activated");
      await showModels();
      return;
    }
    result("Measuring " + job.model + " on the gate's question sets…");
  }
}

// A model or an adapter ("adapter"), through the same gated route the CLI's takes.
export async function activate(name, measure, kind) {
  result("Activating " + name + "…");
  try {
    const out = await call("POST", "/api/admin/" + (kind || "model") + "s/" + encodeURIComponent(name) + "/activate", { evaluate: measure });
    if (out === null) return;
    if (out.id && out.status) await pollJob(out);
    else result(name + " is in service.");
  } catch (e) {
    result("Refused: " + e.message, true);
  }
  await showModels();
}

export async function showModels() {
  const models = await call("GET", "/api/admin/models");
  if (models === null) return;
  table(
    "models-table",
    ["Model", "Quantization", "Size", "Gate figures", "State", ""],
    models.map(function (m) {
      const actions = el("div", "admin-inline");
      if (!m.active) {
        const now = el("button", "button secondary small", "Activate");
        now.type = "button";
        now.setAttribute("aria-label", "Activate " + m.name + " on its recorded evaluation");
        now.addEventListener("click", () => activate(m.name, false));
        const measure = el("button", "button secondary small", "Measure and activate");
        measure.type = "button";
        measure.setAttribute("aria-label", "Measure " + m.name + " and activate it if the gate passes");
        measure.addEventListener("click", () => activate(m.name, true));
        actions.append(now, measure, gateButton("model", m.name));
      }
      return [
        m.name + (m.adapter ? " + " + m.adapter : ""),
        m.quantization,
        Math.round(m.size_bytes / 1048576) + " MiB",
        gateSummary(m.eval_report),
        m.active ? "in service" : "",
        actions,
      ];
    })
  );
  await showAdapters();
}

async function rollback() {
  result("Rolling back…");
  try {
    const out = await call("POST", "/api/admin/models/rollback");
    if (out !== null) result("Rolled back: " + out.name + " is in service.");
  } catch (e) {
    result("Not rolled back: " + e.message, true);
  }
  await showModels();
}

function auditQuery() {
  const form = document.getElementById("audit-filter");
  const params = new URLSearchParams();
  if (form.actor.value.trim()) params.set("actor", form.actor.value.trim());
  if (form.action.value.trim()) params.set("action", form.action.value.trim());
  if (form.since.value) params.set("since", form.since.value + "T00:00:00");
  return params;
}

export async function showAudit() {
  const params = auditQuery();
  params.set("limit", "200");
  const events = await call("GET", "/api/admin/audit?" + params.toString());
  if (events === null) return;
  table(
    "audit-table",
    ["When", "Who", "What", "Target", "Outcome", "Why"],
    events.map((e) => [e.created_at.slice(0, 19).replace("T", " "), e.actor, e.action, e.target, e.outcome, e.reason || ""])
  );
  setStatus(events.length + " events");
}

async function downloadCsv() {
  try {
    const res = await call("GET", "/api/admin/audit.csv?" + auditQuery().toString(), undefined, true);
    if (res === null) return;
    const url = URL.createObjectURL(await res.blob());
    const link = el("a");
    link.href = url;
    link.download = "docchat-audit.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    setStatus(e.message, true);
  }
}

document.getElementById("model-rollback").addEventListener("click", rollback);
document.getElementById("audit-filter").addEventListener("submit", function (ev) {
  ev.preventDefault();
  showAudit().catch((e) => setStatus(e.message, true));
});
document.getElementById("audit-csv").addEventListener("click", downloadCsv);
