/* docchat console: the one way every section calls the admin API (the same
 * routes the CLI's actions take, audited the same), and the status line.
 */

import { errorMessage, networkErrorMessage, withKey } from "./api.js";
import { getKey } from "./auth.js";
import { tableParts } from "./dom.js";

const FORBIDDEN = "The console is for admins: your groups (or this key) do not give the admin role.";
let keyPrompt = null;

// The key or sign-in prompt a 401 shows (admin.js's).
export function usePrompt(prompt) {
  keyPrompt = prompt;
}

export function setStatus(text, isError) {
  const status = document.getElementById("admin-status");
  status.textContent = text || "";
  status.classList.toggle("error-text", !!isError);
}

// An API call with the stored key (or the session's CSRF token). Resolves to
// the parsed body, or null after asking for a key on a 401; throws an Error
// whose message is the server's on any other failure.
export async function call(method, path, body, raw) {
  const key = getKey();
  const headers = withKey({ Accept: raw ? "*/*" : "application/json" }, key);
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method: method, headers: headers, body: payload });
  } catch (e) {
    throw new Error(networkErrorMessage(e));
  }
  if (res.status === 401) {
    document.body.dataset.state = "auth";
    keyPrompt.rejected(key);
    return null;
  }
  if (res.status === 403) {
    document.body.dataset.state = "forbidden";
    throw new Error(FORBIDDEN);
  }
  if (raw && res.ok) return res;
  let parsed = null;
  try {
    parsed = await res.json();
  } catch (e) {
    parsed = null;
  }
  if (!res.ok) {
    const error = new Error(errorMessage(parsed, "Request failed (" + res.status + ")."));
    error.status = res.status;
    error.body = parsed;
    throw error;
  }
  return parsed;
}

// A table of rows of cells: text (through textContent) or nodes the sections built.
export function table(id, headings, rows) {
  document.getElementById(id).replaceChildren(...tableParts(headings, rows));
}
