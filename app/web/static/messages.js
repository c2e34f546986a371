/* docchat chat log entries: how a question, an answer, its typing indicator
 * and its error line look. Where they go and when is chat.js's business.
 */

import { renderCitations } from "./citations.js";
import { el } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { renderSupport } from "./support.js";

// A question as shown in the log (plain text, never Markdown).
export function userMessage(text, id) {
  const msg = el("article", "msg user");
  msg.setAttribute("aria-label", "You");
  if (id) msg.dataset.messageId = id;
  msg.appendChild(el("p", "msg-role", "You"));
  msg.appendChild(el("div", "msg-body user-text", text));
  return msg;
}

// An answer, empty until it streams in or is finished: {msg, body}.
export function assistantMessage(id) {
  const msg = el("article", "msg assistant");
  msg.setAttribute("aria-label", "docchat");
  if (id) msg.dataset.messageId = id;
  msg.appendChild(el("p", "msg-role", "docchat"));
  const body = el("div", "msg-body answer");
  msg.appendChild(body);
  return { msg: msg, body: body };
}

export function showTyping(msg, on) {
  let dots = msg.querySelector(".typing");
  if (on && !dots) {
    dots = el("div", "typing");
    dots.setAttribute("role", "status");
    dots.appendChild(el("span", "visually-hidden", "docchat is writing an answer"));
    for (let i = 0; i < 3; i++) dots.appendChild(el("span", "dot"));
    msg.appendChild(dots);
  } else if (!on && dots) {
    dots.remove();
  }
}

export function setError(msg, message) {
  let box = msg.querySelector(".msg-error");
  if (!box) {
    box = el("p", "msg-error");
    box.setAttribute("role", "alert");
    msg.appendChild(box);
  }
  box.textContent = message;
}

// A note under an answer its sources do not support (checks.grounded false): a
// warning when it is shown as written; when a passage of the docs replaced it, what
// happened; none when a notice replaced it (the notice says it). It follows why the
// answer was flagged: the passages' support, or only the model's own doubt
// (checks.flagged_by "confidence" / "self_check"), where the passages may say it plainly.
const UNSURE = ["confidence", "self_check"];

function unsureOnly(checks) {
  const why = Array.isArray(checks.flagged_by) ? checks.flagged_by : [];
  return (
    why.length > 0 &&
    why.every(function (name) {
      return UNSURE.indexOf(name) >= 0;
    })
  );
}

export function groundingWarning(checks) {
  if (!checks || typeof checks !== "object" || checks.grounded !== false) return null;
  if (checks.replaced_by === "notice") return null;
  const unsure = unsureOnly(checks);
  const note = el("p", "grounding-warning");
  note.setAttribute("role", "note");
  if (checks.replaced_by === "passage") {
    note.textContent = unsure
      ? "The model's own answer is not shown: it was not sure of it."
      : "The model's own answer was not supported by the documentation, so the passage " +
        "closest to your question is shown instead.";
  } else if (unsure) {
    const sure = Number(checks.confidence);
    note.textContent =
      "Check this answer: the model was not sure of it" +
      (Number.isFinite(sure) ? " (confidence " + sure.toFixed(2) + ")." : ".");
  } else {
    const score = Number(checks.grounding_score);
    note.textContent =
      "Check this answer: the documentation found does not clearly support it" +
      (Number.isFinite(score) ? " (grounding " + score.toFixed(2) + ")." : ".");
  }
  return note;
}

// An answer the model had not finished: cut at its length limit, or stopped
// where it began repeating itself. Not said where a notice or passage
// replaced the model's text.
function cutNote(finishReason, checks) {
  if (finishReason !== "length" && finishReason !== "repetition") return null;
  if (checks && typeof checks === "object" && checks.replaced_by) return null;
  const note = el("p", "cut-note");
  note.setAttribute("role", "note");
  note.textContent =
    finishReason === "length"
      ? "The answer reached its length limit and stops here, unfinished."
      : "The answer began repeating itself and was stopped here.";
  return note;
}

// The final answer (it replaces what was streamed) with its grounding
// warning and sources; safe to call again on the same message.
export function finishAssistant(parts, answer, citations, answeredFromDocs, checks, finishReason) {
  parts.body.replaceChildren(renderMarkdown(answer));
  // What an earlier call added goes (renderSupport replaces its own box).
  const added = ":scope > .cut-note, :scope > .grounding-warning, :scope > .citations";
  parts.msg.querySelectorAll(added).forEach(function (e) {
    e.remove();
  });
  [
    cutNote(finishReason, checks),
    groundingWarning(checks),
    renderSupport(parts.msg, parts.body, checks && checks.support),
    renderCitations(citations),
  ].forEach(function (node) {
    if (node) parts.msg.appendChild(node);
  });
  if (answeredFromDocs === false) {
    parts.msg.classList.add("notice");
    parts.body.setAttribute("role", "note");
  }
  parts.msg.classList.add("done");
  parts.msg.removeAttribute("aria-busy");
}

