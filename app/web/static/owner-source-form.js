/* docchat owners' page: adding a git repository or a website to a collection
 * (POST /api/collections/<name>/sources). Owners name no credential or key: a
 * private repository is an admin's to add, and the API says so.
 */

import { call, collectionPath } from "./owner-api.js";
import { el } from "./dom.js";

// The setting that holds each kind's address (docs/sources.md).
const TARGET = { git: "url", website: "start_url" };
const SCHEDULES = [
  ["0", "on demand"],
  ["3600", "every hour"],
  ["86400", "every day"],
];

function labelled(text, input) {
  const label = el("label", null, text + " ");
  label.appendChild(input);
  return label;
}

function select(name, options) {
  const box = el("select");
  box.name = name;
  options.forEach(function ([value, text]) {
    const option = el("option", null, text);
    option.value = value;
    box.appendChild(option);
  });
  return box;
}

// The form of collection `name`; afterAdd() runs once a source was added.
export function sourceForm(name, afterAdd) {
  const form = el("form", "admin-form owner-add-source");
  form.appendChild(el("h3", null, "Add a source"));
  const sourceName = el("input");
  sourceName.name = "name";
  sourceName.required = true;
  sourceName.maxLength = 63;
  sourceName.pattern = "[A-Za-z0-9._\\-]+";
  const kind = select("kind", [
    ["git", "git repository"],
    ["website", "website"],
  ]);
  const address = el("input");
  address.name = "address";
  address.required = true;
  address.placeholder = "https://…";
  const every = select("every", SCHEDULES);
  const submit = el("button", "button primary", "Add");
  submit.type = "submit";
  const out = el("p", "owner-add-result");
  out.setAttribute("role", "status");
  form.append(
    labelled("Name", sourceName),
    labelled("Kind", kind),
    labelled("Address", address),
    labelled("Sync", every),
    submit,
    out
  );
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const body = {
      name: sourceName.value.trim(),
      kind: kind.value,
      config: { [TARGET[kind.value]]: address.value.trim() },
      interval_s: Number(every.value),
    };
    submit.disabled = true;
    try {
      const added = await call("POST", collectionPath(name, "/sources"), body);
      if (added === null) return;
      out.textContent = "Added " + added.name + ": sync it now to fill the collection.";
      form.reset();
      await afterAdd();
    } catch (e) {
      out.textContent = "Not added: " + e.message;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}
