/* docchat owners' page: /collections, the module entry. Lists the
 * collections the caller owns (GET /api/collections, those marked owned),
 * each with its upload (owner-upload.js), its sources and its runs
 * (owner-sources.js). Everything shown comes from the owners' routes, which
 * decide who owns what; a reader who owns nothing sees only a sentence.
 */

import { call, onUnauthorized, setStatus } from "./owner-api.js";
import { createKeyPrompt, loadSession } from "./auth.js";
import { el } from "./dom.js";
import { uploadPanel } from "./owner-upload.js";
import { sourcesPanel } from "./owner-sources.js";

const NONE = "You own no collection. An admin makes owners (docchat collections grant NAME --owner group:…); then you upload into it and manage its sources here.";

function section(c) {
  const box = el("section", "admin-section owner-collection");
  box.dataset.collection = c.name;
  const heading = el("h2", null, c.title || c.name);
  box.appendChild(heading);
  if (c.description) box.appendChild(el("p", "doc-source", c.description));
  const sources = sourcesPanel(c.name);
  box.append(
    uploadPanel(c.name, () => sources.refresh().catch((e) => setStatus(e.message, true))),
    sources.node
  );
  return { node: box, refresh: sources.refresh };
}

async function load() {
  const owned = document.getElementById("owned");
  document.body.dataset.state = "loading";
  setStatus("Loading…");
  try {
    const found = await call("GET", "/api/collections");
    if (found === null) return;
    const mine = found.filter((c) => c.owned);
    const sections = mine.map(section);
    owned.replaceChildren(...sections.map((s) => s.node));
    await Promise.all(sections.map((s) => s.refresh()));
    setStatus(mine.length ? "" : NONE);
    document.body.dataset.state = mine.length ? "ready" : "none";
  } catch (e) {
    owned.replaceChildren();
    setStatus(e.message, true);
    document.body.dataset.state = "error";
  }
}

function init() {
  const prompt = createKeyPrompt(load, load);
  onUnauthorized(function (key) {
    document.body.dataset.state = "auth";
    setStatus("");
    prompt.rejected(key);
  });
  loadSession().then(load);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
