/* docchat citation list under an answer ("Sources").
 *
 * Titles, sections and sources are untrusted text (textContent only); a link
 * is only made from a same-origin http(s) URL or a /sources/ address built
 * here, never from a javascript: or data: URL.
 */

import { el } from "./dom.js";

// Only same-origin http(s) URLs become links; anything else (javascript:,
// data:, ...) is refused.
function safeHref(url) {
  if (typeof url !== "string" || url === "") return null;
  try {
    const u = new URL(url, window.location.href);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    if (u.origin !== window.location.origin) return null;
    return u.pathname + u.search + u.hash;
  } catch (e) {
    return null;
  }
}

function citationHref(c) {
  const direct = safeHref(c.url);
  if (direct) return direct;
  if (c.document_id !== undefined && c.document_id !== null && c.document_id !== "") {
    let href = "/sources/" + encodeURIComponent(String(c.document_id));
    if (c.chunk !== undefined && c.chunk !== null) href += "#chunk-" + encodeURIComponent(String(c.chunk));
    return href;
  }
  return null;
}

function citationLabel(c) {
  const title = c.title ? String(c.title) : c.source ? String(c.source) : "Untitled";
  let label = title;
  if (c.section) label += " — " + String(c.section);
  if (c.source) label += " (" + String(c.source) + ")";
  return label;
}

export function renderCitations(citations) {
  if (!Array.isArray(citations) || citations.length === 0) return null;
  const wrap = el("div", "citations");
  const heading = el("p", "citations-heading", "Sources");
  heading.id = "cites-" + Math.random().toString(36).slice(2, 10);
  wrap.appendChild(heading);
  const ol = el("ol", "citation-list");
  ol.setAttribute("aria-labelledby", heading.id);
  citations.forEach(function (c, idx) {
    if (!c || typeof c !== "object") return;
    const li = el("li", "citation");
    const n = Number.isInteger(c.n) ? c.n : idx + 1;
    li.value = n;
    li.dataset.n = String(n);
    const href = citationHref(c);
    const link = el(href ? "a" : "span", "citation-link", citationLabel(c));
    if (href) link.href = href;
    li.appendChild(link);
    if (typeof c.score === "number" && isFinite(c.score)) {
      const score = el("span", "citation-score", c.score.toFixed(2));
      score.title = "Retrieval score";
      li.appendChild(document.createTextNode(" "));
      li.appendChild(score);
    }
    ol.appendChild(li);
  });
  wrap.appendChild(ol);
  return wrap;
}
