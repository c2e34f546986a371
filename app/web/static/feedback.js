/* docchat feedback widget under a finished answer: thumbs up / down, then an
 * optional comment, sent to POST /api/messages/<id>/feedback.
 */

import { getKey } from "./auth.js";
import { readError, refusalMessage, withKey } from "./api.js";
import { el } from "./dom.js";

const FEEDBACK_FORBIDDEN = "This key may not give feedback."; // on a 403
const COMMENT_MAX = 1000; // the server's limit (app/store/feedback.py)

// Drawn, not an emoji: minimal systems have no emoji font. (Feather icons, MIT.)
const THUMB_UP =
  "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3";
const THUMB_DOWN =
  "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17";

function thumbIcon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "feedback-icon");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const shape = document.createElementNS(ns, "path");
  shape.setAttribute("d", path);
  svg.appendChild(shape);
  return svg;
}

// Thumbs up / down under a finished answer msg, then an optional comment.
// `given` is the feedback this key already gave it (from the conversation view).
// On a 401, requireKey(usedKey, retry) asks for a key and retries once one is
// entered (the chat controller owns the key form and the composer's state).
// DOM hooks: .feedback[data-state=idle|sending|saved|error][data-rating],
// button.feedback-up / .feedback-down (aria-pressed), form.feedback-comment.
export function renderFeedback(msg, given, requireKey) {
  const old = msg.querySelector(".feedback");
  if (old) old.remove();
  const messageId = msg.dataset.messageId;
  if (!messageId) return;
  let rating = given && (given.rating === "up" || given.rating === "down") ? given.rating : null;

  const box = el("div", "feedback");
  box.dataset.state = "idle";
  const row = el("div", "feedback-row");
  const label = el("span", "feedback-label", "Was this answer helpful?");
  label.id = "fb-" + Math.random().toString(36).slice(2, 10);
  const group = el("div", "feedback-buttons");
  group.setAttribute("role", "group");
  group.setAttribute("aria-labelledby", label.id);
  const up = el("button", "button secondary feedback-button feedback-up");
  const down = el("button", "button secondary feedback-button feedback-down");
  up.appendChild(thumbIcon(THUMB_UP));
  up.appendChild(document.createTextNode(" Yes"));
  down.appendChild(thumbIcon(THUMB_DOWN));
  down.appendChild(document.createTextNode(" No"));
  up.type = "button";
  down.type = "button";
  up.title = "Helpful";
  down.title = "Not helpful";
  group.appendChild(up);
  group.appendChild(down);
  const status = el("span", "feedback-status");
  status.setAttribute("role", "status");
  row.appendChild(label);
  row.appendChild(group);
  row.appendChild(status);
  box.appendChild(row);

  const commentForm = el("form", "feedback-comment");
  commentForm.hidden = true;
  commentForm.setAttribute("autocomplete", "off");
  const commentLabel = el("label", "visually-hidden", "Comment on this answer (optional)");
  const comment = el("input", "feedback-comment-input");
  comment.type = "text";
  comment.maxLength = COMMENT_MAX;
  comment.placeholder = "What was wrong or missing? (optional)";
  comment.id = label.id + "-comment";
  commentLabel.htmlFor = comment.id;
  comment.value = given && typeof given.comment === "string" ? given.comment : "";
  const sendComment = el("button", "button secondary feedback-send", "Send comment");
  sendComment.type = "submit";
  commentForm.appendChild(commentLabel);
  commentForm.appendChild(comment);
  commentForm.appendChild(sendComment);
  box.appendChild(commentForm);

  const show = function () {
    up.setAttribute("aria-pressed", rating === "up" ? "true" : "false");
    down.setAttribute("aria-pressed", rating === "down" ? "true" : "false");
    box.dataset.rating = rating || "";
  };

  const busy = function (on) {
    up.disabled = on;
    down.disabled = on;
    sendComment.disabled = on;
  };

  const send = async function (chosen, withComment) {
    const key = getKey();
    box.dataset.state = "sending";
    status.textContent = "Saving…";
    busy(true);
    try {
      const res = await fetch("/api/messages/" + encodeURIComponent(messageId) + "/feedback", {
        method: "POST",
        headers: withKey({ "Content-Type": "application/json", Accept: "application/json" }, key),
        body: JSON.stringify({ rating: chosen, comment: comment.value.trim() || null }),
      });
      if (res.status === 401) {
        box.dataset.state = "idle";
        status.textContent = "";
        requireKey(key, function () {
          send(chosen, withComment);
        });
        return;
      }
      if (!res.ok) {
        box.dataset.state = "error";
        status.textContent = refusalMessage(res, FEEDBACK_FORBIDDEN) || (await readError(res));
        return;
      }
      const data = await res.json();
      rating = data && data.rating ? String(data.rating) : chosen;
      comment.value = data && typeof data.comment === "string" ? data.comment : "";
      show();
      box.dataset.state = "saved";
      status.textContent = withComment ? "Thanks, your comment was sent." : "Thanks for the feedback.";
      commentForm.hidden = withComment;
      if (!withComment && !comment.value) comment.focus({ preventScroll: true });
    } catch (e) {
      box.dataset.state = "error";
      status.textContent = "Feedback not sent: " + (e && e.message ? e.message : "network error");
    } finally {
      busy(false);
    }
  };

  up.addEventListener("click", function () {
    send("up", false);
  });
  down.addEventListener("click", function () {
    send("down", false);
  });
  commentForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (rating) send(rating, true);
  });

  show();
  msg.appendChild(box);
}
