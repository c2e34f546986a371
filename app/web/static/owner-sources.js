/* docchat owners' page: the sources of one collection (schedule, last sync,
 * its counts and error, "Sync now", "Remove"; adding one is
 * owner-source-form.js's) and its latest ingest runs (uploads,
 * syncs, `docchat ingest`) with their counts and findings, through the
 * owners' routes.
 */

import { call, collectionPath, findingList, setStatus, table, when } from "./owner-api.js";
import { el } from "./dom.js";
import { sourceForm } from "./owner-source-form.js";

const POLL_MS = 1000;
const SYNC_WAIT_MS = 10 * 60 * 1000;

function schedule(s) {
  if (s.cron) return "cron " + s.cron;
  const every = s.interval_s;
  if (!every) return "on demand";
  for (const [seconds, one, many] of [[86400, "day", "days"], [3600, "hour", "hours"], [60, "minute", "minutes"]]) {
    if (every % seconds === 0) return every === seconds ? "every " + one : "every " + every / seconds + " " + many;
  }
  return "every " + every + " s";
}

function counts(c) {
  const names = ["added", "changed", "removed", "unchanged", "quarantined", "failed"];
  const shown = names.filter((n) => c && c[n]).map((n) => c[n] + " " + n);
  return shown.length ? shown.join(", ") : "—";
}

function lastSync(s) {
  if (!s.last_status) return "never synced";
  return s.last_status + (s.last_status === "running" ? "" : " · " + when(s.last_finished_at));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The panel of collection `name`: {node, refresh()}.
export function sourcesPanel(name) {
  const node = el("div", "owner-sources");
  const sourcesBox = el("div");
  const runsBox = el("div");
  node.append(
    el("h3", null, "Sources"),
    sourcesBox,
    sourceForm(name, () => refresh()),
    el("h3", null, "Latest ingest runs"),
    runsBox
  );

  // Start a sync, then follow it until it has finished (GET .../sources/<s>).
  async function syncNow(s, button) {
    button.disabled = true;
    const path = collectionPath(name, "/sources/" + encodeURIComponent(s.name));
    try {
      if ((await call("POST", path + "/sync")) === null) return;
      setStatus("Syncing " + s.name + "…");
      const deadline = Date.now() + SYNC_WAIT_MS;
      let view = s;
      while (Date.now() < deadline) {
        await sleep(POLL_MS);
        view = await call("GET", path);
        if (view === null) return;
        if (view.last_started_at !== s.last_started_at && view.last_status !== "running") break;
      }
      setStatus(s.name + ": " + view.last_status + (view.last_error ? " — " + view.last_error : ""), !!view.last_error);
    } catch (e) {
      setStatus("Could not sync " + s.name + ": " + e.message, true);
    } finally {
      button.disabled = false;
    }
    await refresh();
  }

  // Remove a source and the documents it brought (after asking).
  async function remove(s) {
    const question = "Remove the source " + s.name + " and the documents it brought into " + name + "?";
    if (!window.confirm(question)) return;
    try {
      const done = await call("DELETE", collectionPath(name, "/sources/" + encodeURIComponent(s.name)));
      if (done === null) return;
      setStatus("Removed " + s.name + " and " + done.documents_removed + " documents it brought.");
    } catch (e) {
      setStatus("Could not remove " + s.name + ": " + e.message, true);
    }
    await refresh();
  }

  function actions(s) {
    const sync = el("button", "button secondary", "Sync now");
    sync.type = "button";
    sync.setAttribute("aria-label", "Sync " + s.name + " now");
    sync.addEventListener("click", () => syncNow(s, sync));
    const drop = el("button", "button secondary", "Remove");
    drop.type = "button";
    drop.setAttribute("aria-label", "Remove " + s.name);
    drop.addEventListener("click", () => remove(s));
    const box = el("span", "owner-actions");
    box.append(sync, drop);
    return box;
  }

  async function refresh() {
    const [sources, runs] = await Promise.all([
      call("GET", collectionPath(name, "/sources")),
      call("GET", collectionPath(name, "/runs?limit=10")),
    ]);
    if (sources === null || runs === null) return;
    sourcesBox.replaceChildren(
      sources.length
        ? table(
            "owner-sources-table",
            ["Source", "Kind", "Where", "Schedule", "Last sync", "Files", "Findings", "Error", ""],
            sources.map((s) => [
              s.name,
              s.kind,
              s.config.url || s.config.path || "",
              schedule(s),
              lastSync(s),
              counts(s.last_counts),
              s.last_findings,
              s.last_error || "",
              actions(s),
            ])
          )
        : el("p", "admin-muted", "No sources yet: add a git repository or a website below, or upload files above.")
    );
    runsBox.replaceChildren(
      runs.length
        ? table(
            "owner-runs-table",
            ["Run", "Started", "Status", "Added / updated / removed", "Skipped", "Quarantined", "Failed", "Findings"],
            runs.map((r) => [
              r.id,
              when(r.started_at),
              r.status + (r.dry_run ? " (dry run)" : ""),
              r.counts.new + " / " + r.counts.changed + " / " + r.counts.deleted,
              r.counts.unchanged + r.counts.skipped,
              r.counts.quarantined,
              r.counts.failed,
              r.issues.length ? findingList(r.issues) : "none",
            ])
          )
        : el("p", "admin-muted", "No runs yet.")
    );
  }

  return { node: node, refresh: refresh };
}
