/* docchat: POST a form of files with the upload's progress (fetch cannot report
 * it), for the console's and the owners' uploads alike.
 */

import { errorMessage, withKey } from "./api.js";
import { getKey } from "./auth.js";

// Resolves to the run's report; rejects with the server's message (and .status).
// With `unauthorized`, a 401 calls it with the key used and resolves to null
// (the page shows its key or sign-in prompt) instead of rejecting.
export function sendFiles(path, data, progress, unauthorized) {
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
      if (xhr.status === 401 && unauthorized) {
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
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      const error = new Error(errorMessage(body, "Request failed (" + xhr.status + ")."));
      error.status = xhr.status;
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new Error("The upload did not reach the server.")));
    xhr.send(data);
  });
}
