/* docchat source viewer: /sources/<document_id>#chunk-<ord>, the module
 * entry of source.html.
 *
 * Document text is untrusted: it only reaches the DOM via textContent.
 * The API key (when the server wants one) is shared with the chat page through
 * sessionStorage["docchat.api_key"] (this tab only; never localStorage); the
 * key handling itself is in auth.js.
 */

import { errorMessage, networkErrorMessage, refusalMessage, withKey } from "./api.js";
import { createKeyPrompt, getKey, loadSession } from "./auth.js";
import { el } from "./dom.js";

function documentIdFromPath(pathname) {
  const m = /^\/sources\/(.+?)\/?$/.exec(pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch (e) {
    return m[1];
  }
}

function highlightFromHash(scroll) {
  document.querySelectorAll(".chunk.highlight").forEach(function (n) {
    n.classList.remove("highlight");
    n.removeAttribute("aria-current");
  });
  let hash = window.location.hash.slice(1);
  if (!hash) return;
  try {
    hash = decodeURIComponent(hash);
  } catch (e) {
    /* keep raw */
  }
  const target = document.getElementById(hash);
  if (!target || !target.classList.contains("chunk")) return;
  target.classList.add("highlight");
  target.setAttribute("aria-current", "location");
  if (scroll) {
    target.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
  }
}

function render(doc) {
  const titleEl = document.getElementById("doc-title");
  const sourceEl = document.getElementById("doc-source");
  const chunksEl = document.getElementById("chunks");

  const title = doc.title ? String(doc.title) : doc.source ? String(doc.source) : "Untitled document";
  titleEl.textContent = title;
  document.title = title + " · docchat";
  sourceEl.replaceChildren();
  if (doc.source) {
    sourceEl.appendChild(document.createTextNode("Source: "));
    sourceEl.appendChild(el("code", null, doc.source));
  }

  const chunks = Array.isArray(doc.chunks) ? doc.chunks : [];
  chunksEl.replaceChildren();
  chunks.forEach(function (c, idx) {
    if (!c || typeof c !== "object") return;
    const ord = Number.isInteger(c.ord) ? c.ord : idx;
    const block = el("section", "chunk");
    block.id = "chunk-" + ord;
    block.tabIndex = -1;
    block.dataset.ord = String(ord);
    const head = el("h2", "chunk-heading");
    const section = c.section ? String(c.section) : "";
    head.appendChild(el("span", "chunk-section", section || "Part " + (ord + 1)));
    const anchor = el("a", "chunk-anchor", "#" + ord);
    anchor.href = "#chunk-" + ord;
    anchor.setAttribute("aria-label", "Link to part " + (ord + 1));
    head.appendChild(anchor);
    block.setAttribute("aria-label", (section || "Part " + (ord + 1)) + " (part " + (ord + 1) + ")");
    block.appendChild(head);
    block.appendChild(el("div", "chunk-text", c.text || ""));
    chunksEl.appendChild(block);
  });

  if (chunks.length === 0) {
    document.getElementById("doc-status").textContent = "This document has no content.";
  }
}

let keyPrompt = null;

function init() {
  keyPrompt = createKeyPrompt(load, null);
  loadSession().then(load);
}

async function load() {
  const status = document.getElementById("doc-status");
  const titleEl = document.getElementById("doc-title");
  const id = documentIdFromPath(window.location.pathname);
  status.textContent = "";
  status.classList.remove("error-text");
  if (!id) {
    titleEl.textContent = "Document not found";
    status.textContent = "No document id in the address.";
    document.body.dataset.state = "error";
    return;
  }
  const key = getKey();
  document.body.dataset.state = "loading";
  titleEl.textContent = "Loading document…";
  try {
    const res = await fetch("/api/documents/" + encodeURIComponent(id), {
      headers: withKey({ Accept: "application/json" }, key),
    });
    if (res.status === 401) {
      titleEl.textContent = "API key required";
      document.title = "API key required · docchat";
      document.body.dataset.state = "auth";
      keyPrompt.rejected(key);
      return;
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      titleEl.textContent = res.status === 404 ? "Document not found" : "Could not load document";
      status.textContent =
        refusalMessage(res, "This key may not read documents.") ||
        errorMessage(body, "Request failed (" + res.status + ").");
      status.classList.add("error-text");
      document.body.dataset.state = "error";
      return;
    }
    render(body || {});
    document.body.dataset.state = "ready";
    highlightFromHash(true);
  } catch (e) {
    titleEl.textContent = "Could not load document";
    status.textContent = networkErrorMessage(e);
    status.classList.add("error-text");
    document.body.dataset.state = "error";
  }
}

window.addEventListener("hashchange", function () {
  highlightFromHash(true);
});

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
