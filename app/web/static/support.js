/* docchat: the passage sentence behind each answer sentence (checks.support).
 *
 * Each answer block (paragraph, list item, table cell, heading) holding a sentence
 * of checks.support gets class "supported" or "unsupported"; hovering shows the
 * passage sentence it rests on (title), tapping or Enter opens the "Evidence" list
 * under the answer at that sentence. All text goes in through textContent (dom.js).
 */

import { el } from "./dom.js";

// Compared without Markdown marks, quotes or spacing: the rendered text drops them.
function plain(text) {
  return String(text)
    .replace(/[`*_>#[\]]/g, "")
    .replace(/[\u2018\u2019\u201c\u201d"']/g, "")
    .replace(/\s+/g, " ")
    .trim()
    .toLowerCase();
}

function hint(item) {
  if (!item.supported) {
    return "Not found in the documentation" +
      (item.passage_sentence ? ". Closest: \u201c" + item.passage_sentence + "\u201d" : ".");
  }
  return "\u201c" + item.passage_sentence + "\u201d" + (item.source ? " (" + item.source + ")" : "");
}

function evidenceList(items) {
  const box = el("details", "evidence");
  box.appendChild(el("summary", null, "Evidence for each sentence"));
  const list = el("ol", "evidence-list");
  items.forEach(function (item, i) {
    const li = el("li", item.supported ? "evidence-supported" : "evidence-unsupported");
    li.dataset.index = String(i);
    li.appendChild(el("span", "evidence-sentence", item.sentence.replace(/`/g, "")));
    if (item.supported) {
      const quote = el("q", "evidence-passage", item.passage_sentence);
      li.appendChild(quote);
      if (item.source) li.appendChild(el("span", "evidence-source", item.source));
    } else {
      li.appendChild(el("span", "evidence-missing", "Not found in the documentation."));
    }
    list.appendChild(li);
  });
  box.appendChild(list);
  return box;
}

function valid(support) {
  if (!Array.isArray(support)) return [];
  return support.filter(function (s) {
    return s && typeof s === "object" && typeof s.sentence === "string" && s.sentence.trim() !== "";
  }).map(function (s) {
    return {
      sentence: s.sentence,
      passage_sentence: typeof s.passage_sentence === "string" ? s.passage_sentence : "",
      source: typeof s.source === "string" ? s.source : "",
      supported: s.supported === true,
    };
  });
}

// Mark the answer's blocks in `body` and put the evidence list after it in `msg`;
// safe to call again (the old list is replaced). Nothing happens without support.
export function renderSupport(msg, body, support) {
  const old = msg.querySelector(".evidence");
  if (old) old.remove();
  const items = valid(support);
  if (items.length === 0) return null;
  const box = evidenceList(items);
  const blocks = Array.prototype.slice.call(body.querySelectorAll("p, li, td, th, h1, h2, h3, h4, pre"));
  items.forEach(function (item, i) {
    // The first words are enough to find the block, and survive a sentence the
    // renderer split over a link or code span.
    const start = plain(item.sentence).slice(0, 40);
    const block = blocks.find(function (b) {
      return plain(b.textContent).indexOf(start) !== -1;
    });
    if (!block) return;
    const unsupported = !item.supported || block.classList.contains("unsupported");
    block.classList.remove("supported", "unsupported");
    block.classList.add(unsupported ? "unsupported" : "supported");
    block.title = (block.title ? block.title + "\n" : "") + hint(item);
    block.tabIndex = 0;
    block.dataset.evidence = String(i);
  });
  if (!body.dataset.evidenceBound) {
    // Once per body: a finished answer may be rendered again (history reload).
    body.dataset.evidenceBound = "1";
    const open = function (event) {
      const block = event.target.closest ? event.target.closest("[data-evidence]") : null;
      const list = msg.querySelector(".evidence");
      if (block && list) openAt(list, block.dataset.evidence);
    };
    body.addEventListener("click", open);
    body.addEventListener("keydown", function (event) {
      if (event.key === "Enter") open(event);
    });
  }
  return box;
}

function openAt(box, index) {
  box.open = true;
  box.querySelectorAll(".evidence-list li").forEach(function (li) {
    li.classList.toggle("evidence-current", li.dataset.index === index);
  });
  const current = box.querySelector(".evidence-current");
  if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
}
