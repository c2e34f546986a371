/* docchat API key storage and the form that asks for a key; shared by the
 * chat page and the source viewer.
 *
 * API keys (when the server has authentication on) live only in
 * sessionStorage["docchat.api_key"] (this tab only): never localStorage, a
 * cookie or a URL. api.js sends them as "Authorization: Bearer <key>".
 */

const KEY_STORAGE = "docchat.api_key"; // sessionStorage only (this tab)

let memoryKey = null; // only used where sessionStorage is unavailable

export function getKey() {
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

// A pasted key, trimmed (and without a pasted "Bearer "); null if it could
// not be sent in a header.
function normaliseKey(raw) {
  const key = String(raw === undefined || raw === null ? "" : raw)
    .trim()
    .replace(/^bearer\s+/i, "");
  return /^[\x21-\x7e]{1,512}$/.test(key) ? key : null;
}

// Wires <form id="key-form"> and the "Forget key" button.
//   onKey(key): a key was entered and stored (retry what failed).
//   onForget(): the stored key was removed.
export function createKeyPrompt(onKey, onForget) {
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
