/* docchat source viewer: /sources/<document_id>#chunk-<ord>
 *
 * Document text is untrusted: it only reaches the DOM via textContent.
 * The API key (when the server wants one) is shared with the chat page through
 * sessionStorage["docchat.api_key"] (this tab only; never localStorage).
 */
(function () {
  "use strict";

  const KEY_STORAGE = "docchat.api_key"; // sessionStorage only (this tab)

  /* API key helpers: a copy of the block in chat.js (no build step). */

  let memoryKey = null; // only used where sessionStorage is unavailable

  function getKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || null;
    } catch (e) {
      return memoryKey;
    }
  }

  function setKey(key) {
    try {
      window.sessionStorage.setItem(KEY_STORAGE, key);
      memoryKey = null;
    } catch (e) {
      memoryKey = key; // kept in this page only
    }
  }

  function forgetKey() {
    memoryKey = null;
    try {
      window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) {
      /* nothing stored */
    }
  }

  // Request headers plus the key (when there is one) as a bearer token.
  function withKey(headers, key) {
    if (key) headers.Authorization = "Bearer " + key;
    return headers;
  }

  // A pasted key, trimmed (and without a pasted "Bearer "); null if it could
  // not be sent in a header.
  function normaliseKey(raw) {
    const key = String(raw === undefined || raw === null ? "" : raw)
      .trim()
      .replace(/^bearer\s+/i, "");
    return /^[\x21-\x7e]{1,512}$/.test(key) ? key : null;
  }

  function retryAfterSeconds(response) {
    const raw = (response.headers.get("Retry-After") || "").trim();
    if (/^\d+$/.test(raw)) return parseInt(raw, 10);
    const when = raw ? Date.parse(raw) : NaN;
    if (!isNaN(when)) return Math.max(0, Math.ceil((when - Date.now()) / 1000));
    return null;
  }

  function rateLimitMessage(response) {
    const seconds = retryAfterSeconds(response);
    return seconds === null
      ? "Too many requests — try again later"
      : "Too many requests — try again in " + seconds + " s";
  }

  // Wires <form id="key-form"> and the "Forget key" button.
  //   onKey(key): a key was entered and stored (retry what failed).
  //   onForget(): the stored key was removed.
  function createKeyPrompt(onKey, onForget) {
    const form = document.getElementById("key-form");
    const input = document.getElementById("api-key");
    const error = document.getElementById("key-error");
    const forgetBtn = document.getElementById("forget-key");

    function refresh() {
      if (forgetBtn) forgetBtn.hidden = !getKey();
    }

    function setMessage(message) {
      if (!error) return;
      error.textContent = message || "";
      error.hidden = !message;
    }

    function show(message) {
      refresh();
      if (!form) return;
      setMessage(message);
      form.hidden = false;
      input.value = "";
      input.focus();
    }

    function hide() {
      if (!form) return;
      form.hidden = true;
      setMessage("");
      input.value = "";
    }

    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        const key = normaliseKey(input.value);
        if (!key) {
          setMessage("That does not look like an API key.");
          input.focus();
          return;
        }
        setKey(key);
        hide();
        refresh();
        onKey(key);
      });
    }

    if (forgetBtn) {
      forgetBtn.addEventListener("click", function () {
        forgetKey();
        refresh();
        if (onForget) onForget();
      });
    }

    refresh();
    return {
      show: show,
      hide: hide,
      refresh: refresh,
      visible: function () {
        return !!form && !form.hidden;
      },
      focus: function () {
        if (form && !form.hidden) input.focus();
      },
      // A request made with usedKey got a 401: drop that key if it is still
      // the stored one and ask for another.
      rejected: function (usedKey) {
        if (usedKey && getKey() === usedKey) forgetKey();
        show(usedKey ? "That key was not accepted." : "");
      },
    };
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function documentIdFromPath(pathname) {
    const m = /^\/sources\/(.+?)\/?$/.exec(pathname);
    if (!m) return null;
    try {
      return decodeURIComponent(m[1]);
    } catch (e) {
      return m[1];
    }
  }

  function errorMessage(body, fallback) {
    if (body && typeof body === "object") {
      if (body.error && typeof body.error === "object" && body.error.message) return String(body.error.message);
      if (typeof body.detail === "string") return body.detail;
    }
    return fallback;
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
    load();
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
        if (res.status === 403) status.textContent = "This key may not read documents.";
        else if (res.status === 429) status.textContent = rateLimitMessage(res);
        else status.textContent = errorMessage(body, "Request failed (" + res.status + ").");
        status.classList.add("error-text");
        document.body.dataset.state = "error";
        return;
      }
      render(body || {});
      document.body.dataset.state = "ready";
      highlightFromHash(true);
    } catch (e) {
      titleEl.textContent = "Could not load document";
      status.textContent = "Network error: " + (e && e.message ? e.message : "request failed");
      status.classList.add("error-text");
      document.body.dataset.state = "error";
    }
  }

  window.addEventListener("hashchange", function () {
    highlightFromHash(true);
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
