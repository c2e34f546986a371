/* docchat: the one way the console and the owners' page call the API with the
 * stored key (or the session's CSRF token). The pages differ only in what a 401
 * and a 403 do, so each makes its own call with apiCall(handlers).
 */

import { errorMessage, networkErrorMessage, withKey } from "./api.js";
import { getKey } from "./auth.js";

// handlers.unauthorized(key): after a 401 (the page shows its key or sign-in
// prompt); the call then resolves to null. handlers.forbidden(): optional, after
// a 403: the Error the call throws; without it a 403 fails as any other status.
//
// The call it returns: call(method, path, body, raw) with body sent as JSON (a
// FormData as it is); resolves to the parsed body (the Response itself when raw
// and it succeeded); throws an Error with the server's message, .status and
// .body on any other failure.
export function apiCall(handlers) {
  return async function call(method, path, body, raw) {
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
      handlers.unauthorized(key);
      return null;
    }
    if (res.status === 403 && handlers.forbidden) throw handlers.forbidden();
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
  };
}
