/* docchat Markdown subset -> DOM, for answers on the chat page.
 *
 *   ```fenced code```, `inline code`, **bold** (across inline code too), "- " / "* "
 *   bullets, "1. " numbered lists, "# " headings, "> " quotes (their insides rendered
 *   the same way), "| a | b |" tables with a "| --- |" row, paragraphs, bare lines.
 *   Links and images are left as plain text.
 *
 * No HTML is ever parsed: every piece of the text reaches the DOM through
 * el()/createTextNode, so model output cannot inject markup.
 */

import { el } from "./dom.js";

// Append inline content (`code` and **bold**) of one line to parent. Code spans are
// set aside first (as numbered placeholders), so bold may hold code and a "**" inside
// code stays code.
function appendInline(parent, text) {
  const codes = [];
  let flat = "";
  let i = 0;
  text = String(text).replace(/[\u0000\u0001]/g, "");
  while (i < text.length) {
    if (text[i] === "`") {
      // Count the opening backtick run and look for a matching closing run.
      let run = 1;
      while (text[i + run] === "`") run++;
      const fence = "`".repeat(run);
      const end = text.indexOf(fence, i + run);
      if (end !== -1 && end > i + run) {
        flat += "\u0000" + codes.length + "\u0001";
        codes.push(text.slice(i + run, end));
        i = end + run;
        continue;
      }
      flat += fence;
      i += run;
      continue;
    }
    flat += text[i];
    i++;
  }
  const re = /\*\*(?=\S)([\s\S]*?\S)\*\*/g;
  let last = 0;
  let m;
  while ((m = re.exec(flat)) !== null) {
    if (m.index > last) appendFlat(parent, flat.slice(last, m.index), codes);
    const strong = el("strong");
    appendFlat(strong, m[1], codes);
    parent.appendChild(strong);
    last = m.index + m[0].length;
  }
  if (last < flat.length) appendFlat(parent, flat.slice(last), codes);
}

// Text with code placeholders back as text nodes and <code> elements.
function appendFlat(parent, flat, codes) {
  flat.split(/\u0000(\d+)\u0001/).forEach(function (part, n) {
    if (n % 2 === 1) parent.appendChild(el("code", "md-code", codes[parseInt(part, 10)]));
    else if (part) parent.appendChild(document.createTextNode(part));
  });
}

const FENCE_RE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const BULLET_RE = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED_RE = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const HEADING_RE = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const QUOTE_RE = /^\s{0,3}>\s?(.*)$/;
const TABLE_RE = /^\s{0,3}\|.*\|\s*$/;
const TABLE_RULE_RE = /^\s{0,3}\|(\s*:?-{2,}:?\s*\|)+\s*$/;

function tableCells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map(function (c) {
    return c.trim();
  });
}

// A quoted passage keeps its source's wrapping: a long line followed by more of the
// same paragraph is one line of prose broken at the source's width, not a line break.
function softWrapped(previous, line) {
  return previous.length >= 60 && previous.indexOf(" | ") < 0 && line.indexOf(" | ") < 0;
}

export function renderMarkdown(text, options) {
  const soft = Boolean(options && options.soft);
  const frag = document.createDocumentFragment();
  const lines = String(text === undefined || text === null ? "" : text)
    .replace(/\r\n?/g, "\n")
    .split("\n");

  let para = null; // current <p>
  let list = null; // current <ul>/<ol>
  let lastItem = null; // last <li> (for continuation lines)

  const closeBlocks = function () {
    para = null;
    list = null;
    lastItem = null;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];

    // Fenced code block (an unterminated fence runs to the end: streaming).
    const fence = FENCE_RE.exec(line);
    if (fence) {
      closeBlocks();
      const marker = fence[1];
      const body = [];
      let j = i + 1;
      while (j < lines.length) {
        const close = lines[j].trim();
        if (close.length >= marker.length && close === marker[0].repeat(close.length)) break;
        body.push(lines[j]);
        j++;
      }
      const pre = el("pre", "md-pre");
      const code = el("code", null, body.join("\n"));
      if (fence[2]) code.dataset.lang = fence[2];
      pre.appendChild(code);
      frag.appendChild(pre);
      i = j; // skip the closing fence (or run past the end)
      continue;
    }

    if (line.trim() === "") {
      closeBlocks();
      continue;
    }

    // A quote: its lines, without their marker, rendered as Markdown of their own.
    if (QUOTE_RE.test(line)) {
      closeBlocks();
      const inner = [];
      let j = i;
      while (j < lines.length && QUOTE_RE.test(lines[j])) {
        inner.push(QUOTE_RE.exec(lines[j])[1]);
        j++;
      }
      const quote = el("blockquote", "md-quote");
      quote.appendChild(renderMarkdown(inner.join("\n"), { soft: true }));
      frag.appendChild(quote);
      i = j - 1;
      continue;
    }

    // A table: a header row, a rule row, then body rows.
    if (TABLE_RE.test(line) && i + 1 < lines.length && TABLE_RULE_RE.test(lines[i + 1])) {
      closeBlocks();
      const table = el("table", "md-table");
      const head = el("thead");
      const headRow = el("tr");
      tableCells(line).forEach(function (c) {
        const th = el("th");
        appendInline(th, c);
        headRow.appendChild(th);
      });
      head.appendChild(headRow);
      table.appendChild(head);
      const body = el("tbody");
      let j = i + 2;
      while (j < lines.length && TABLE_RE.test(lines[j])) {
        const tr = el("tr");
        tableCells(lines[j]).forEach(function (c) {
          const td = el("td");
          appendInline(td, c);
          tr.appendChild(td);
        });
        body.appendChild(tr);
        j++;
      }
      table.appendChild(body);
      frag.appendChild(table);
      i = j - 1;
      continue;
    }

    const heading = HEADING_RE.exec(line);
    if (heading) {
      closeBlocks();
      const h = el("p", "md-heading md-h" + heading[1].length);
      const strong = el("strong");
      appendInline(strong, heading[2]);
      h.appendChild(strong);
      frag.appendChild(h);
      continue;
    }

    const bullet = BULLET_RE.exec(line);
    const numbered = bullet ? null : NUMBERED_RE.exec(line);
    if (bullet || numbered) {
      const tag = bullet ? "UL" : "OL";
      if (!list || list.tagName !== tag) {
        para = null;
        list = el(tag.toLowerCase(), "md-list");
        if (numbered && numbered[1] !== "1") list.start = parseInt(numbered[1], 10);
        frag.appendChild(list);
      }
      lastItem = el("li");
      appendInline(lastItem, bullet ? bullet[1] : numbered[2]);
      list.appendChild(lastItem);
      continue;
    }

    // Indented continuation of a list item.
    if (lastItem && /^\s+\S/.test(line)) {
      lastItem.appendChild(el("br"));
      appendInline(lastItem, line.trim());
      continue;
    }

    // Bare line: part of the current paragraph, separated by a line break.
    list = null;
    lastItem = null;
    if (!para) {
      para = el("p", "md-p");
      frag.appendChild(para);
    } else if (soft && softWrapped(lines[i - 1], line)) {
      para.appendChild(document.createTextNode(" "));
    } else {
      para.appendChild(el("br"));
    }
    appendInline(para, line);
  }

  const root = el("div", "md");
  root.appendChild(frag);
  return root;
}
