/* docchat console: answers. The thumbs-down queue (GET /api/admin/feedback), each
 * with the whole conversation behind it (GET /api/conversations/{id}, which an admin
 * may read), and the curated answers gone stale since their sources changed
 * (GET /api/admin/examples?status=stale), refreshed or dropped through the curation
 * routes `docchat curate` shares. Accepting or correcting answers is the review page. */

import { call, table } from "./admin-api.js";
import { el } from "./dom.js";

function button(text, label, onClick) {
  const b = el("button", "button secondary small", text);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

function note(text, isError) {
  const out = document.getElementById("stale-result");
  out.textContent = text;
  out.classList.toggle("error-text", !!isError);
}

async function openConversation(id) {
  const panel = document.getElementById("answers-conversation");
  panel.replaceChildren(el("p", "admin-muted", "Loading the conversation…"));
  panel.hidden = false;
  try {
    const c = await call("GET", "/api/conversations/" + encodeURIComponent(id));
    if (c === null) return;
    const list = el("ol", "admin-conversation");
    c.messages.forEach(function (m) {
      const item = el("li", "admin-turn " + m.role);
      const who = m.role === "user" ? "Question" : "Answer" + (m.status !== "complete" ? " (" + m.status + ")" : "");
      item.appendChild(el("strong", null, who + ": "));
      item.appendChild(el("span", null, m.content || ""));
      const sources = (m.citations || []).map((x) => x.source).filter(Boolean);
      if (sources.length) item.appendChild(el("div", "admin-muted", "Sources: " + sources.join(", ")));
      list.appendChild(item);
    });
    const heading = el("h3", null, "Conversation: " + (c.title || c.id));
    heading.id = "conversation-title";
    panel.replaceChildren(heading, el("p", "admin-muted", c.collection + " · started " + c.created_at.slice(0, 16).replace("T", " ")), list);
    heading.tabIndex = -1;
    heading.focus();
  } catch (e) {
    panel.replaceChildren(el("p", "error-text", e.message));
  }
}

async function curate(example, verb) {
  if (verb === "drop" && !window.confirm("Drop the curated answer to " + JSON.stringify(example.question) + "?")) return;
  try {
    const out = await call("POST", "/api/admin/examples/" + encodeURIComponent(example.id) + "/" + verb);
    if (out !== null) note((verb === "refresh" ? "Refreshed" : "Dropped") + ": " + example.question + " (" + out.status + ").");
  } catch (e) {
    note("Not done: " + e.message, true);
  }
  await showAnswers();
}

export async function showAnswers() {
  const [down, stale] = await Promise.all([
    call("GET", "/api/admin/feedback?rating=down&limit=50"),
    call("GET", "/api/admin/examples?status=stale"),
  ]);
  if (down === null || stale === null) return;
  table(
    "answers-down",
    ["Rated", "Question", "Answer", "Comment", ""],
    down.map((f) => [
      f.created_at.slice(0, 16).replace("T", " "),
      f.question || "",
      f.answer_excerpt,
      f.comment || "",
      button("Open", "Open the conversation of " + (f.question || f.message_id), () => openConversation(f.conversation_id)),
    ])
  );
  table(
    "answers-stale",
    ["Question", "Collection", "Why stale", "Reviewer", ""],
    stale.map(function (x) {
      const actions = el("div", "admin-inline");
      actions.append(
        button("Refresh", "Refresh the curated answer to " + x.question, () => curate(x, "refresh")),
        button("Drop", "Drop the curated answer to " + x.question, () => curate(x, "drop"))
      );
      return [x.question, x.collection, x.stale_reason || "", x.reviewer || "", actions];
    })
  );
  document.getElementById("answers-counts").textContent =
    down.length + " thumbs-down (newest first), " + stale.length + " stale curated answers.";
}
