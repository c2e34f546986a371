/* docchat console: /admin, the module entry. It holds the tabs, the one way
 * every section calls the admin API (the same routes the CLI's actions take,
 * audited the same), and the sign-in or key prompt. Each section lives in its
 * own module; none holds logic the API does not.
 *
 * Every string from the server reaches the DOM through textContent only
 * (dom.js's el); nothing here builds markup from text.
 */

import { setStatus, usePrompt } from "./admin-api.js";
import { createKeyPrompt, loadSession } from "./auth.js";
import { showHealth } from "./admin-health.js";
import { showCollections, showKeys } from "./admin-access.js";
import { showAudit, showModels } from "./admin-ops.js";
import { showBackups } from "./admin-backups.js";
import { showAnswers } from "./admin-answers.js";

const SECTIONS = {
  health: showHealth,
  collections: showCollections,
  answers: showAnswers,
  models: showModels,
  keys: showKeys,
  backups: showBackups,
  audit: showAudit,
};

async function open(name) {
  document.querySelectorAll(".admin-tab").forEach(function (tab) {
    tab.setAttribute("aria-pressed", tab.dataset.tab === name ? "true" : "false");
  });
  Object.keys(SECTIONS).forEach(function (other) {
    document.getElementById("tab-" + other).hidden = other !== name;
  });
  setStatus("Loading…");
  document.body.dataset.state = "loading";
  try {
    await SECTIONS[name]();
    if (document.body.dataset.state === "loading") {
      document.body.dataset.state = "ready";
      setStatus("");
    }
  } catch (e) {
    setStatus(e && e.message ? e.message : String(e), true);
    if (document.body.dataset.state === "loading") document.body.dataset.state = "error";
  }
}

function current() {
  const pressed = document.querySelector('.admin-tab[aria-pressed="true"]');
  return pressed ? pressed.dataset.tab : "health";
}

function init() {
  const keyPrompt = createKeyPrompt(
    function () {
      open(current());
    },
    function () {
      open(current());
    }
  );
  usePrompt(keyPrompt);
  document.querySelectorAll(".admin-tab").forEach(function (tab) {
    tab.addEventListener("click", function () {
      open(tab.dataset.tab);
    });
  });
  const wanted = window.location.hash.replace("#", "");
  loadSession().then(function (session) {
    if (session.oidc && !session.signed_in) {
      keyPrompt.show();
      document.body.dataset.state = "auth";
      return;
    }
    open(SECTIONS[wanted] ? wanted : "health");
  });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
