/* docchat chat page: the collections the person may read (a picker, shown
 * when there is more than one; a link to /collections for one she owns, when
 * signed in and not an admin) and their own past conversations (open, rename,
 * delete). chat.js asks it which collection a new question goes to and tells
 * it when a conversation was opened, created or deleted.
 *
 * Titles come from users' questions: they reach the DOM through textContent
 * only (dom.js's el), like every other untrusted string on the page.
 */

import { readError, withKey } from "./api.js";
import { getKey, signedInNonAdmin } from "./auth.js";
import { el } from "./dom.js";

// {onOpen(id), onNew()}: chat.js's handlers for a conversation picked from the
// list, and for a change of collection (which starts a new conversation).
export function createLibrary(handlers) {
  const picker = document.getElementById("collection");
  const pickerWrap = document.getElementById("collection-wrap");
  const toggle = document.getElementById("history-toggle");
  const panel = document.getElementById("history");
  const listEl = document.getElementById("history-list");
  const status = document.getElementById("history-status");
  let current = null; // the open conversation's id

  function headers(extra) {
    return withKey(Object.assign({ Accept: "application/json" }, extra || {}), getKey());
  }

  async function loadCollections() {
    if (!picker) return;
    let found = [];
    try {
      const res = await fetch("/api/collections", { headers: headers() });
      if (res.ok) found = await res.json();
    } catch (e) {
      found = [];
    }
    const chosen = picker.value;
    picker.replaceChildren();
    (Array.isArray(found) ? found : []).forEach(function (c) {
      if (!c || typeof c.name !== "string") return;
      const option = el("option", null, c.title || c.name);
      option.value = c.name;
      if (c.description) option.title = String(c.description);
      if (c.default && !chosen) option.selected = true;
      picker.appendChild(option);
    });
    if (chosen) picker.value = chosen;
    // Signed-in owners get the way to their page. Not admins (the console is
    // theirs; they "own" every collection) nor anyone with authentication off.
    const ownerLink = document.getElementById("owner-link");
    const owns = Array.isArray(found) && found.some((c) => c && c.owned === true);
    if (ownerLink) ownerLink.hidden = !(owns && signedInNonAdmin());
    // One collection (or none readable): nothing to choose.
    if (pickerWrap) pickerWrap.hidden = picker.options.length < 2;
  }

  function collection() {
    return picker && picker.value ? picker.value : null;
  }

  // Show the collection of the conversation that was opened.
  function showCollection(name) {
    if (!picker || !name) return;
    if (![].some.call(picker.options, (o) => o.value === name)) {
      const option = el("option", null, name);
      option.value = name;
      picker.appendChild(option);
    }
    picker.value = name;
  }

  function item(c) {
    const li = el("li", "history-item");
    li.dataset.id = c.id;
    const open = el("button", "history-open", c.title || "(untitled)");
    open.type = "button";
    if (c.id === current) open.setAttribute("aria-current", "true");
    const when = new Date(c.created_at);
    open.title = (c.collection ? c.collection + " · " : "") + (isNaN(when) ? "" : when.toLocaleString());
    open.addEventListener("click", function () {
      handlers.onOpen(c.id);
    });
    const rename = el("button", "history-action", "Rename");
    rename.type = "button";
    rename.setAttribute("aria-label", "Rename “" + (c.title || "untitled") + "”");
    rename.addEventListener("click", function () {
      renameConversation(c);
    });
    const remove = el("button", "history-action", "Delete");
    remove.type = "button";
    remove.setAttribute("aria-label", "Delete “" + (c.title || "untitled") + "”");
    remove.addEventListener("click", function () {
      deleteConversation(c);
    });
    li.append(open, rename, remove);
    return li;
  }

  async function refresh() {
    if (!listEl) return;
    try {
      const res = await fetch("/api/conversations", { headers: headers() });
      if (!res.ok) {
        if (status) status.textContent = res.status === 401 ? "" : await readError(res);
        listEl.replaceChildren();
        return;
      }
      const rows = await res.json();
      listEl.replaceChildren(...(Array.isArray(rows) ? rows : []).map(item));
      if (status) status.textContent = listEl.children.length ? "" : "No conversations yet.";
    } catch (e) {
      if (status) status.textContent = "Could not load your conversations.";
    }
  }

  async function renameConversation(c) {
    const title = window.prompt("New title", c.title || "");
    if (title === null || !title.trim()) return;
    const res = await fetch("/api/conversations/" + encodeURIComponent(c.id), {
      method: "PATCH",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ title: title.trim().slice(0, 200) }),
    });
    if (!res.ok && status) status.textContent = "Could not rename: " + (await readError(res));
    refresh();
  }

  async function deleteConversation(c) {
    if (!window.confirm("Delete “" + (c.title || "untitled") + "” from the server? This cannot be undone.")) return;
    const res = await fetch("/api/conversations/" + encodeURIComponent(c.id), {
      method: "DELETE",
      headers: headers(),
    });
    if (!res.ok && res.status !== 404 && status) {
      status.textContent = "Could not delete: " + (await readError(res));
    }
    if (c.id === current) handlers.onNew();
    refresh();
  }

  if (picker) {
    picker.addEventListener("change", function () {
      handlers.onNew(); // a conversation stays in its collection
    });
  }
  if (toggle && panel) {
    toggle.addEventListener("click", function () {
      const open = panel.hidden;
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) refresh();
    });
  }

  return {
    load: function () {
      loadCollections();
      refresh();
    },
    collection: collection,
    opened: function (id, name) {
      current = id;
      showCollection(name);
      if (panel && !panel.hidden) refresh();
    },
    refresh: refresh,
  };
}
