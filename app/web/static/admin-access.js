/* docchat console: collections (readers, create, grant, revoke, delete, upload,
 * ingest runs) and API keys (create shows the key once, revoke). */

import { call, setStatus, table } from "./admin-api.js";
import { el } from "./dom.js";
import { showQuarantine } from "./admin-quarantine.js";
import { sendFiles } from "./upload.js";

function button(text, onClick, label) {
  const b = el("button", "button secondary small", text);
  b.type = "button";
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

async function act(doing, reload) {
  try {
    await doing();
    setStatus("");
  } catch (e) {
    setStatus(e.message, true);
  }
  await reload();
}

function readerCell(c) {
  const cell = el("div", "admin-readers");
  c.readers.forEach(function (r) {
    const label = r.kind === "everyone" ? "everyone" : r.kind + ": " + r.label;
    const chip = el("span", "admin-chip", label);
    const who = r.kind === "everyone" ? "" : r.subject;
    chip.appendChild(
      button("×", () => act(() => call("DELETE", "/api/admin/collections/" + encodeURIComponent(c.name) + "/readers/" + r.kind + "?who=" + encodeURIComponent(who)), showCollections), "Revoke " + label + " from " + c.name)
    );
    cell.appendChild(chip);
  });
  if (!c.readers.length) cell.appendChild(el("span", "admin-muted", "admins only"));
  const form = el("form", "admin-inline");
  const kind = el("select");
  kind.setAttribute("aria-label", "Reader kind for " + c.name);
  ["group", "user", "key", "everyone"].forEach(function (k) {
    const o = el("option", null, k);
    o.value = k;
    kind.appendChild(o);
  });
  const who = el("input");
  who.placeholder = "group, e-mail or key";
  who.setAttribute("aria-label", "Reader to grant " + c.name);
  const grant = el("button", "button secondary small", "Grant");
  grant.type = "submit";
  form.append(kind, who, grant);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    act(() => call("POST", "/api/admin/collections/" + encodeURIComponent(c.name) + "/readers", { kind: kind.value, who: who.value.trim() }), showCollections);
  });
  cell.appendChild(form);
  return cell;
}

function sourceRow(s) {
  const counts = s.last_counts || {};
  const last = s.last_status
    ? s.last_status + (s.last_finished_at ? " at " + s.last_finished_at.slice(0, 16).replace("T", " ") : "")
    : "never synced";
  const changed = ["added", "changed", "removed", "failed", "quarantined"]
    .filter((k) => counts[k])
    .map((k) => counts[k] + " " + k)
    .join(", ");
  return [
    s.name,
    s.kind,
    s.collection,
    !s.enabled ? "disabled" : s.cron ? "cron " + s.cron : s.interval_s ? "every " + Math.round(s.interval_s / 60) + " min" : "on demand",
    last + (changed ? " (" + changed + ")" : "") + (s.last_error ? ": " + s.last_error : ""),
    s.next_run_at ? s.next_run_at.slice(0, 16).replace("T", " ") : "",
    button("Sync now", () => act(() => call("POST", "/api/admin/sources/" + encodeURIComponent(s.name) + "/sync"), showCollections), "Sync " + s.name + " now"),
  ];
}

export async function showCollections() {
  const [collections, runs, sources] = await Promise.all([
    call("GET", "/api/admin/collections"),
    call("GET", "/api/admin/ingest-runs?limit=20"),
    call("GET", "/api/admin/sources"),
  ]);
  if (collections === null || runs === null || sources === null) return;
  table("sources-table", ["Source", "Kind", "Collection", "Schedule", "Last sync", "Next", ""], sources.map(sourceRow));
  table(
    "collections-table",
    ["Collection", "Documents", "Readers", ""],
    collections.map((c) => [
      c.title && c.title !== c.name ? c.name + " — " + c.title : c.name,
      c.documents,
      readerCell(c),
      button("Delete", function () {
        if (!window.confirm("Delete " + c.name + " with its documents and vectors? This cannot be undone.")) return;
        act(() => call("DELETE", "/api/admin/collections/" + encodeURIComponent(c.name)), showCollections);
      }, "Delete " + c.name),
    ])
  );
  const target = document.getElementById("upload-collection");
  const chosen = target.value;
  target.replaceChildren(...collections.map(function (c) {
    const o = el("option", null, c.name);
    o.value = c.name;
    return o;
  }));
  if (chosen) target.value = chosen;
  table(
    "runs-table",
    ["Run", "Collection", "Started", "Status", "New / changed / deleted", "Failed", "Quarantined", "Findings"],
    runs.map((r) => [
      r.id,
      r.collection,
      r.started_at.slice(0, 16).replace("T", " "),
      r.status,
      r.counts.new + " / " + r.counts.changed + " / " + r.counts.deleted,
      r.counts.failed,
      r.counts.quarantined,
      findingList(r.issues.map((f) => f.source + ": " + f.reason)),
    ])
  );
  await showQuarantine(showCollections);
}

function findingList(lines) {
  const list = el("ul", "admin-findings");
  lines.slice(0, 20).forEach((line) => list.appendChild(el("li", null, line)));
  if (lines.length > 20) list.appendChild(el("li", "admin-muted", "… " + (lines.length - 20) + " more"));
  return list;
}

async function upload(ev) {
  if (ev) ev.preventDefault();
  const form = document.getElementById("collection-upload");
  if (!form.files.files.length) return;
  const data = new FormData();
  for (const file of form.files.files) data.append("files", file);
  data.append("collection", form.collection.value);
  const out = document.getElementById("upload-result");
  const bar = document.getElementById("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  out.textContent = "Uploading…";
  try {
    const r = await sendFiles("/api/documents", data, function (percent) {
      bar.value = percent;
      out.textContent = percent < 100 ? "Uploading… " + percent + "%" : "Uploaded; ingesting (checks, chunks, embeddings)…";
    });
    out.replaceChildren(
      el("p", null, "Run " + r.run_id + " (" + r.status + "): " + r.new + " new, " + r.changed + " changed, " + r.unchanged + " unchanged, " + r.failed + " failed, " + r.quarantined + " quarantined, " + r.chunks_written + " chunks."),
      findingList(r.findings.map((f) => f.source + ": " + f.reason))
    );
    const into = form.collection.value;
    form.reset(); // the files; the collection chosen stays
    form.collection.value = into;
  } catch (e) {
    out.textContent = "Upload refused: " + e.message;
  } finally {
    bar.hidden = true;
  }
  await showCollections();
}

// Files dropped on the zone are uploaded into the collection chosen above.
function dropZone() {
  const zone = document.getElementById("upload-drop");
  const input = document.querySelector("#collection-upload input[type=file]");
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (ev) {
      ev.preventDefault();
      zone.classList.add("active");
    });
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("active"));
  zone.addEventListener("drop", function (ev) {
    ev.preventDefault();
    zone.classList.remove("active");
    if (!ev.dataTransfer || !ev.dataTransfer.files.length) return;
    input.files = ev.dataTransfer.files;
    upload();
  });
}

export async function showKeys() {
  const keys = await call("GET", "/api/admin/keys");
  if (keys === null) return;
  table(
    "keys-table",
    ["Name", "Id", "Scope", "Collections", "Created", "Last used", "State", ""],
    keys.map((k) => [
      k.name,
      k.id,
      k.scope,
      k.collections ? k.collections.join(", ") : "not limited",
      k.created_at.slice(0, 10),
      k.last_used_at ? k.last_used_at.slice(0, 16).replace("T", " ") : "never",
      k.state,
      k.state === "active"
        ? button("Revoke", function () {
            if (!window.confirm("Revoke the key " + k.name + "? It stops working at once.")) return;
            act(() => call("DELETE", "/api/admin/keys/" + encodeURIComponent(k.id)), showKeys);
          }, "Revoke " + k.name)
        : "",
    ])
  );
}

async function createKey(ev) {
  ev.preventDefault();
  const form = ev.target;
  const collections = form.collections.value.split(",").map((c) => c.trim()).filter(Boolean);
  const body = { name: form.name.value.trim(), scope: form.scope.value, collections: collections.length ? collections : null };
  if (form.expires.value) body.expires_days = Number(form.expires.value);
  const out = document.getElementById("key-created");
  try {
    const made = await call("POST", "/api/admin/keys", body);
    if (made === null) return;
    const shown = el("code", "admin-secret", made.key);
    shown.id = "new-key";
    out.replaceChildren(el("p", null, "Key " + made.name + " created. It is shown this once: copy it now."), shown);
    form.reset();
  } catch (e) {
    out.textContent = "Not created: " + e.message;
  }
  await showKeys();
}

async function createCollection(ev) {
  ev.preventDefault();
  const form = ev.target;
  const body = { name: form.name.value.trim(), title: form.title.value.trim(), everyone: form.everyone.checked };
  await act(() => call("POST", "/api/admin/collections", body), showCollections);
  form.reset();
}

document.getElementById("collection-create").addEventListener("submit", createCollection);
document.getElementById("collection-upload").addEventListener("submit", upload);
dropZone();
document.getElementById("key-create").addEventListener("submit", createKey);
