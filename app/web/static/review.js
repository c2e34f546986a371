/* docchat review page: /static/review.html, the module entry.
 *
 * Lists rated answers (GET /api/admin/review) with the question, the answer,
 * its passages, the rating and comment side by side; Accept and Correct call
 * POST /api/admin/messages/<id>/accept and /correct. Every string from the
 * server (questions, answers, passages, comments) reaches the DOM through
 * textContent only (dom.js); the key handling is auth.js's.
 */

import { errorMessage, networkErrorMessage, refusalMessage, withKey } from "./api.js";
import { createKeyPrompt, getKey, loadSession } from "./auth.js";
import { el } from "./dom.js";

const FORBIDDEN = "This key may not review answers: an admin key is needed.";
let keyPrompt = null;

function setStatus(text, isError) {
  const status = document.getElementById("review-status");
  status.textContent = text || "";
  status.classList.toggle("error-text", !!isError);
}

// A request with the stored key; null (after asking for a key) on a 401.
async function call(method, path, body) {
  const key = getKey();
  const headers = withKey({ Accept: "application/json" }, key);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method: method,
    headers: headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) {
    document.body.dataset.state = "auth";
    keyPrompt.rejected(key);
    return null;
  }
  let parsed = null;
  try {
    parsed = await res.json();
  } catch (e) {
    parsed = null;
  }
  if (!res.ok) {
    throw new Error(refusalMessage(res, FORBIDDEN) || errorMessage(parsed, "Request failed (" + res.status + ")."));
  }
  return parsed;
}

function passageList(passages) {
  const list = el("ol", "citation-list");
  passages.forEach(function (p) {
    const item = el("li", "review-passage");
    const where = p.section ? p.source + " — " + p.section : p.source;
    item.appendChild(el("div", "citation-score", where || "(unknown source)"));
    item.appendChild(el("div", "chunk-text", p.text || "(the document is gone)"));
    list.appendChild(item);
  });
  return list;
}

function card(item) {
  const block = el("section", "chunk review-item");
  const head = el("h2", "chunk-heading");
  head.appendChild(el("span", "chunk-section", item.question || "(no question)"));
  block.appendChild(head);

  const rating = item.rating === "up" ? "👍 helpful" : "👎 not helpful";
  const meta = rating + (item.given_by ? " · " + item.given_by : "") + " · " + item.rated_at.slice(0, 16).replace("T", " ");
  block.appendChild(el("p", "doc-source", meta));
  if (item.comment) block.appendChild(el("blockquote", "review-comment", item.comment));

  const sides = el("div", "review-sides");
  const answer = el("div", "review-answer");
  answer.appendChild(el("h3", "citations-heading", "Answer"));
  answer.appendChild(el("div", "chunk-text", item.answer || "(empty: " + item.answer_status + ")"));
  // A curated answer teaches the model: an unfinished one should be corrected, not accepted.
  const unfinished = { length: "it reached its length limit", repetition: "it began repeating itself" };
  if (unfinished[item.finish_reason]) {
    answer.appendChild(el("p", "cut-note", "Unfinished: " + unfinished[item.finish_reason] + ". Correct it to curate it."));
  }
  const sources = el("div", "review-sources");
  sources.appendChild(el("h3", "citations-heading", "Sources"));
  sources.appendChild(item.passages.length ? passageList(item.passages) : el("p", null, "No passages."));
  sides.appendChild(answer);
  sides.appendChild(sources);
  block.appendChild(sides);

  const state = el("p", "status-line", item.example_id ? "Curated (" + item.example_status + "): " + item.example_id : "");
  const actions = el("div", "review-actions");
  const accept = el("button", "button primary", "Accept");
  accept.type = "button";
  const correctBox = el("textarea", "feedback-comment-input");
  correctBox.rows = 4;
  correctBox.placeholder = "The answer it should have given";
  correctBox.setAttribute("aria-label", "Corrected answer");
  const correct = el("button", "button secondary", "Correct");
  correct.type = "button";

  async function act(path, body, done) {
    accept.disabled = correct.disabled = true;
    try {
      const example = await call("POST", "/api/admin/messages/" + encodeURIComponent(item.message_id) + path, body);
      if (example) state.textContent = done + ": example " + example.id;
    } catch (e) {
      state.textContent = e && e.message ? e.message : networkErrorMessage(e);
    } finally {
      accept.disabled = correct.disabled = false;
    }
  }

  accept.addEventListener("click", function () {
    act("/accept", undefined, "Accepted");
  });
  correct.addEventListener("click", function () {
    const text = correctBox.value.trim();
    if (!text) {
      state.textContent = "Write the corrected answer first.";
      correctBox.focus();
      return;
    }
    act("/correct", { answer: text }, "Corrected");
  });
  actions.appendChild(accept);
  actions.appendChild(correctBox);
  actions.appendChild(correct);
  block.appendChild(actions);
  block.appendChild(state);
  return block;
}

async function load() {
  const items = document.getElementById("items");
  const params = new URLSearchParams();
  const rating = document.getElementById("rating").value;
  if (rating) params.set("rating", rating);
  if (document.getElementById("pending").checked) params.set("pending", "true");
  setStatus("Loading…");
  document.body.dataset.state = "loading";
  try {
    const found = await call("GET", "/api/admin/review?" + params.toString());
    if (found === null) return;
    items.replaceChildren();
    found.forEach(function (item) {
      items.appendChild(card(item));
    });
    setStatus(found.length ? found.length + " rated answers" : "Nothing to review.");
    document.body.dataset.state = "ready";
  } catch (e) {
    setStatus(e && e.message ? e.message : networkErrorMessage(e), true);
    document.body.dataset.state = "error";
  }
}

function init() {
  keyPrompt = createKeyPrompt(load, load);
  document.getElementById("rating").addEventListener("change", load);
  document.getElementById("pending").addEventListener("change", load);
  loadSession().then(load);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
