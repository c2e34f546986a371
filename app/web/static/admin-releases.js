/* docchat console: adapters with their lineage (the base file they were trained on,
 * the dataset), and a candidate's gate report: each figure the gate compares against
 * the release in service (the base alone, for an adapter), from GET
 * /api/admin/gate/{kind}/{name}, the judgement `activate` makes. Activation and
 * deactivation go through the same routes as the models' and the CLI's. */

import { call, table } from "./admin-api.js";
import { activate, showModels } from "./admin-ops.js";
import { el } from "./dom.js";

function button(text, label, onClick) {
  const b = el("button", "button secondary small", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function figure(v) {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : "–";
}

async function showGate(kind, name) {
  const panel = document.getElementById("gate-report");
  panel.hidden = false;
  try {
    const g = await call("GET", "/api/admin/gate/" + kind + "/" + encodeURIComponent(name));
    if (g === null) return;
    document.getElementById("gate-title").textContent =
      "Gate report: " + g.candidate + (g.baseline ? " against " + g.baseline : " (nothing to compare with)");
    document.getElementById("gate-verdict").textContent = g.passes
      ? "The gate lets it in on its recorded figures."
      : "The gate refuses it: " + g.reasons.join("; ");
    table(
      "gate-table",
      ["Set", "Figure", g.candidate, g.baseline || "baseline", ""],
      g.rows.map((r) => [r.set, r.figure, figure(r.candidate), figure(r.baseline), r.worse ? el("strong", "error-text", "worse") : "holds"])
    );
    document.getElementById("gate-title").focus();
  } catch (e) {
    document.getElementById("gate-verdict").textContent = e.message;
  }
}

export function gateButton(kind, name) {
  return button("Gate report", "Gate report of " + name, () => showGate(kind, name));
}

function lineage(a) {
  const steps = a.training && a.training.steps ? ", " + a.training.steps + " steps" : "";
  return "trained on " + a.base_name + " (" + a.base_sha256.slice(0, 12) + ") with dataset " + a.dataset_name + " (" + a.dataset_sha256.slice(0, 12) + ")" + steps;
}

export async function showAdapters() {
  const adapters = await call("GET", "/api/admin/adapters");
  if (adapters === null) return;
  table(
    "adapters-table",
    ["Adapter", "Lineage", "Created", "State", ""],
    adapters.map(function (a) {
      const actions = el("div", "admin-inline");
      if (a.active) {
        actions.append(button("Serve the base alone", "Stop serving " + a.name, async function () {
          try {
            await call("POST", "/api/admin/adapters/deactivate");
          } catch (e) {
            document.getElementById("model-result").textContent = "Not done: " + e.message;
          }
          await showModels();
        }));
      } else if (!a.incompatible.length) {
        actions.append(button("Activate", "Activate the adapter " + a.name + " on its recorded evaluation", () => activate(a.name, false, "adapter")));
      }
      actions.append(gateButton("adapter", a.name));
      const state = a.active ? "in service" : a.incompatible.length ? "cannot serve: " + a.incompatible.join("; ") : "candidate";
      return [a.name, lineage(a), a.created_at.slice(0, 16).replace("T", " "), state, actions];
    })
  );
}
