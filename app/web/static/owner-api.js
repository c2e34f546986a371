/* docchat owners' page: the one way it calls the owners' routes
 * (/api/collections/<name>/...), the upload with its progress, and the small
 * pieces of DOM its sections share. Every string from the server reaches the
 * DOM through textContent only (dom.js's el).
 */

import { apiCall } from "./api-call.js";
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

// A JSON request (api-call.js's): null after a 401 (the prompt is shown); a 403
// fails as any other refusal, with the server's message.
export const call = apiCall({ unauthorized: (key) => unauthorized(key) });

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
