/* docchat API key storage and the form that asks for a key, or, where the
 * server has sign-in (OpenID Connect) configured, the sign-in session; shared
 * by the chat page, the source viewer and the review page.
 *
 * API keys (when the server has authentication on) live only in
 * sessionStorage["docchat.api_key"] (this tab only): never localStorage, a
 * cookie or a URL. api.js sends them as "Authorization: Bearer <key>".
 *
 * With sign-in, no key is asked for: the browser holds an HttpOnly session
 * cookie this code never sees, and every change (POST, DELETE) carries the
 * session's CSRF token from /auth/session in an X-CSRF-Token header.
 */

// What /auth/session said: {oidc, signed_in, user, scope, csrf_token}.
let session = { oidc: false, signed_in: false };

// Ask the server whether sign-in is on and who is signed in; shows it in
// the header (#who, #sign-out) where the page has them.
export async function loadSession() {
  try {
    const res = await fetch("/auth/session", { headers: { Accept: "application/json" } });
    if (res.ok) session = await res.json();
  } catch (e) {
    /* the API calls will say what is wrong */
  }
  renderSession();
  return session;
}

export function signInEnabled() {
  return !!session.oidc;
}

// Whether a person is signed in without the admin scope (admins have the console).
export function signedInNonAdmin() {
  return !!session.signed_in && session.scope !== "admin";
}

// Headers plus the CSRF token of the sign-in session, where there is one.
export function withSession(headers) {
  if (session.csrf_token) headers["X-CSRF-Token"] = session.csrf_token;
  return headers;
}

function here() {
  return window.location.pathname + window.location.search + window.location.hash;
}

function loginHref() {
  return "/auth/login?return_to=" + encodeURIComponent(here());
}

function renderSession() {
  const who = document.getElementById("who");
  const out = document.getElementById("sign-out");
  const forget = document.getElementById("forget-key");
  if (session.oidc && forget) forget.hidden = true;
  if (who) {
    who.hidden = !session.signed_in;
    who.textContent = session.signed_in ? "Signed in as " + session.user.name : "";
    if (session.signed_in) who.title = (session.user.groups || []).join(", ");
  }
  if (out) {
    out.hidden = !session.signed_in;
    if (!out.dataset.wired) {
      out.dataset.wired = "1";
      out.addEventListener("click", signOut);
    }
  }
}

async function signOut() {
  let target = "/";
  try {
    const res = await fetch("/auth/logout", {
      method: "POST",
      headers: withSession({ Accept: "application/json" }),
    });
    if (res.ok) target = (await res.json()).redirect || "/";
  } catch (e) {
    /* go home anyway */
  }
  session = { oidc: true, signed_in: false };
  window.location.assign(target);
}

// The sign-in prompt that stands where the key form would: a link to the
// provider that comes back to this very page.
function showSignIn(message) {
  let panel = document.getElementById("signin-panel");
  if (!panel) {
    panel = document.createElement("div");
    panel.id = "signin-panel";
    panel.className = "key-form signin-panel";
    const title = document.createElement("p");
    title.className = "key-title";
    title.textContent = "Sign in to use docchat";
    const text = document.createElement("p");
    text.id = "signin-message";
    text.className = "key-help";
    const link = document.createElement("a");
    link.id = "sign-in";
    link.className = "button primary";
    link.textContent = "Sign in";
    panel.append(title, text, link);
    const anchor = document.getElementById("key-form");
    if (anchor && anchor.parentNode) anchor.parentNode.insertBefore(panel, anchor);
    else document.body.prepend(panel);
  }
  panel.hidden = false;
  document.getElementById("sign-in").href = loginHref();
  document.getElementById("signin-message").textContent =
    message || "Sign in with your company account.";
}

function hideSignIn() {
  const panel = document.getElementById("signin-panel");
  if (panel) panel.hidden = true;
}

const KEY_STORAGE = "docchat.api_key"; // sessionStorage only (this tab)

let memoryKey = null; // only used where sessionStorage is unavailable

export function getKey() {
  if (session.oidc) return null; // the session cookie stands for the person
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
    if (session.oidc) {
      showSignIn(message);
      return;
    }
    if (!form) return;
    setMessage(message);
    form.hidden = false;
    input.value = "";
    input.focus();
  }

  function hide() {
    hideSignIn();
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
      const panel = document.getElementById("signin-panel");
      return (!!form && !form.hidden) || (!!panel && !panel.hidden);
    },
    focus: function () {
      if (form && !form.hidden) input.focus();
    },
    // A request made with usedKey got a 401: drop that key if it is still
    // the stored one and ask for another.
    rejected: function (usedKey) {
      if (session.oidc) {
        show(session.signed_in ? "Your session has ended: sign in again." : "");
        return;
      }
      if (usedKey && getKey() === usedKey) forgetKey();
      show(usedKey ? "That key was not accepted." : "");
    },
  };
}
