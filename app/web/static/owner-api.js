/* docchat owners' page: the one way it calls the owners' routes
 * (/api/collections/<name>/...), the upload with its progress, and the small
 * pieces of DOM its sections share. Every string from the server reaches the
 * DOM through textContent only (dom.js's el).
 */

import { errorMessage, networkErrorMessage, withKey } from "./api.js";
import { getKey } from "./auth.js";
import { el } from "./dom.js";

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

// POST a form of files with the upload's progress (fetch cannot report it):
// resolves to the run's report (null after a 401), rejects with the server's
// message.
export function sendFiles(path, data, progress) {
  return new Promise(function (resolve, reject) {
    const key = getKey();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const headers = withKey({ Accept: "application/json" }, key);
    Object.keys(headers).forEach((h) => xhr.setRequestHeader(h, headers[h]));
    xhr.upload.addEventListener("progress", function (ev) {
      if (ev.lengthComputable) progress(Math.round((100 * ev.loaded) / ev.total));
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 401) {
        unauthorized(key);
        resolve(null);
        return;
      }
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (e) {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(failure(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new Error("The upload did not reach the server.")));
    xhr.send(data);
  });
}

// A table of rows of cells: text (through textContent) or nodes.
export function table(className, headings, rows) {
  const t = el("table", "admin-table " + className);
  const tr = el("tr");
  headings.forEach((h) => tr.appendChild(el("th", null, h)));
  const head = el("thead");
  head.appendChild(tr);
  const body = el("tbody");
  rows.forEach(function (cells) {
    const row = el("tr");
    cells.forEach(function (c) {
      const td = el("td");
      if (c instanceof Node) td.appendChild(c);
      else td.textContent = c === null || c === undefined ? "" : String(c);
      row.appendChild(td);
    });
    body.appendChild(row);
  });
  t.append(head, body);
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
