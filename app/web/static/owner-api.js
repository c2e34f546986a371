/* docchat owners' page: the one way it calls the owners' routes
 * (/api/collections/<name>/...), the upload with its progress, and the small
 * pieces of DOM its sections share. Every string from the server reaches the
 * DOM through textContent only (dom.js's el).
 */

import { errorMessage, networkErrorMessage, withKey } from "./api.js";
import { getKey } from "./auth.js";
import { el, tableParts } from "./dom.js";
import { sendFiles as upload } from "./upload.js";

let unauthorized = function () {};

// What to do when a request was refused for want of a key or a session
// (owner.js's key or sign-in prompt), given the key that was used.
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function setStatus(text, isError) {
  const status = document.getElementById("owner-status");
  status.textContent = text || "";
  status.classList.toggle("error-text", !!isError);
}

export function collectionPath(name, rest) {
  return "/api/collections/" + encodeURIComponent(name) + (rest || "");
}

function failure(status, body) {
  const error = new Error(errorMessage(body, "Request failed (" + status + ")."));
  error.status = status;
  return error;
}

// A JSON request (body: sent as JSON when given) with the stored key (or the
// session's CSRF token): the parsed body; null after a 401 (the prompt is
// shown); an Error with the server's message and .status otherwise.
export async function call(method, path, body) {
  const key = getKey();
  const headers = withKey({ Accept: "application/json" }, key);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new Error(networkErrorMessage(e));
  }
  if (res.status === 401) {
    unauthorized(key);
    return null;
  }
  let parsed = null;
  try {
    parsed = await res.json();
  } catch (e) {
    parsed = null;
  }
  if (!res.ok) throw failure(res.status, parsed);
  return parsed;
}

// POST a form of files with the upload's progress: the run's report, null after
// a 401 (the prompt is shown), or a rejection with the server's message.
export function sendFiles(path, data, progress) {
  return upload(path, data, progress, (key) => unauthorized(key));
}

// A table of rows of cells: text (through textContent) or nodes.
export function table(className, headings, rows) {
  const t = el("table", "admin-table " + className);
  t.append(...tableParts(headings, rows));
  return t;
}

// A list of findings ("source: reason"), the first 20 shown.
export function findingList(findings) {
  const list = el("ul", "admin-findings");
  const lines = (findings || []).map((f) => f.source + ": " + f.reason);
  lines.slice(0, 20).forEach((line) => list.appendChild(el("li", null, line)));
  if (lines.length > 20) list.appendChild(el("li", "admin-muted", "… " + (lines.length - 20) + " more"));
  return list;
}

export function when(iso) {
  return iso ? iso.slice(0, 16).replace("T", " ") : "never";
}
