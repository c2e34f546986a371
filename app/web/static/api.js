/* docchat API requests, shared by both pages: how a request carries the API
 * key (or the sign-in session's CSRF token), and how a failed response or
 * request reads as a one-line message.
 */

import { withSession } from "./auth.js";

// Request headers plus the key (when there is one) as a bearer token, else
// the sign-in session's CSRF token (when signed in; the cookie goes by itself).
// Headers stay a plain object: callers (and tests) read them back as one.
export function withKey(headers, key) {
  if (key) headers.Authorization = "Bearer " + key;
  else withSession(headers);
  return headers;
}

// The message in an error body: the server's {error: {message}} shape first,
// then FastAPI's {detail} shapes; fallback when there is none.
export function errorMessage(body, fallback) {
  if (body && typeof body === "object") {
    if (body.error && typeof body.error === "object" && body.error.message) return String(body.error.message);
    if (typeof body.error === "string") return body.error;
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      const parts = body.detail
        .map(function (d) {
          return d && d.msg ? String(d.msg) : "";
        })
        .filter(Boolean);
      if (parts.length) return parts.join("; ");
    }
    if (body.detail && typeof body.detail === "object" && body.detail.message) return String(body.detail.message);
  }
  return fallback;
}

// The message of a failed response whose body has not been read yet.
export async function readError(response) {
  const fallback = "Request failed (" + response.status + (response.statusText ? " " + response.statusText : "") + ").";
  let text = "";
  try {
    text = await response.text();
  } catch (e) {
    return fallback;
  }
  try {
    return errorMessage(JSON.parse(text), fallback);
  } catch (e) {
    return fallback;
  }
}

// A request that never got a response (fetch threw).
export function networkErrorMessage(e) {
  return "Network error: " + (e && e.message ? e.message : "request failed");
}

function retryAfterSeconds(response) {
  const raw = (response.headers.get("Retry-After") || "").trim();
  if (/^\d+$/.test(raw)) return parseInt(raw, 10);
  const when = raw ? Date.parse(raw) : NaN;
  if (!isNaN(when)) return Math.max(0, Math.ceil((when - Date.now()) / 1000));
  return null;
}

export function rateLimitMessage(response) {
  const seconds = retryAfterSeconds(response);
  return seconds === null
    ? "Too many requests — try again later"
    : "Too many requests — try again in " + seconds + " s";
}

// The message for a request the server refused with a 403 or 429 (null for
// any other status). forbiddenMessage says what the key may not do on the
// calling page ("This key may not use the chat.", ...).
export function refusalMessage(response, forbiddenMessage) {
  if (response.status === 403) return forbiddenMessage;
  if (response.status === 429) return rateLimitMessage(response);
  return null;
}
