/* docchat Markdown subset -> DOM, for answers on the chat page.
 *
 *   ```fenced code```, `inline code`, **bold**, "- " / "* " bullets,
 *   "1. " numbered lists, "# " headings, paragraphs, bare lines.
 *   Links and images are left as plain text.
 *
 * No HTML is ever parsed: every piece of the text reaches the DOM through
 * el()/createTextNode, so model output cannot inject markup.
 */

import { el } from "./dom.js";

// Append inline content (`code` and **bold**) of one line to parent.
function appendInline(parent, text) {
  let i = 0;
  let plain = "";
  const flush = function () {
    if (plain) {
      appendBold(parent, plain);
      plain = "";
    }
  };
  while (i < text.length) {
    if (text[i] === "`") {
      // Count the opening backtick run and look for a matching closing run.
      let run = 1;
      while (text[i + run] === "`") run++;
      const fence = "`".repeat(run);
      const end = text.indexOf(fence, i + run);
      if (end !== -1 && end > i + run) {
        flush();
        parent.appendChild(el("code", "md-code", text.slice(i + run, end)));
        i = end + run;
        continue;
      }
      plain += fence;
      i += run;
      continue;
    }
    plain += text[i];
    i++;
  }
  flush();
}

function appendBold(parent, text) {
  const re = /\*\*(?=\S)([\s\S]*?\S)\*\*/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    parent.appendChild(el("strong", null, m[1]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

const FENCE_RE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const BULLET_RE = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED_RE = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const HEADING_RE = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;

export function renderMarkdown(text) {
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
    } else {
      para.appendChild(el("br"));
    }
    appendInline(para, line);
  }

  const root = el("div", "md");
  root.appendChild(frag);
  return root;
}
