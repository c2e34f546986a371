/* docchat console: the one way every section calls the admin API (the same
 * routes the CLI's actions take, audited the same), and the status line.
 */

import { apiCall } from "./api-call.js";
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

// An API call (api-call.js's): null after asking for a key on a 401; a 403 shows
// the page's "not an admin" state.
export const call = apiCall({
  unauthorized(key) {
    document.body.dataset.state = "auth";
    keyPrompt.rejected(key);
  },
  forbidden() {
    document.body.dataset.state = "forbidden";
    return new Error(FORBIDDEN);
  },
});

// A table of rows of cells: text (through textContent) or nodes the sections built.
export function table(id, headings, rows) {
  document.getElementById(id).replaceChildren(...tableParts(headings, rows));
}
