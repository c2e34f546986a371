/* docchat owners' page: the sources of one collection (schedule, last sync,
 * its counts and error, "Sync now") and its latest ingest runs (uploads,
 * syncs, `docchat ingest`) with their counts and findings, through the
 * owners' routes.
 */

import { call, collectionPath, findingList, setStatus, table, when } from "./owner-api.js";
import { el } from "./dom.js";

const POLL_MS = 1000;
const SYNC_WAIT_MS = 10 * 60 * 1000;

function schedule(s) {
  if (s.cron) return "cron " + s.cron;
  if (s.interval_s) return "every " + s.interval_s + " s";
  return "on demand";
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
  node.append(el("h3", null, "Sources"), sourcesBox, el("h3", null, "Latest ingest runs"), runsBox);

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

  function syncButton(s) {
    const button = el("button", "button secondary", "Sync now");
    button.type = "button";
    button.setAttribute("aria-label", "Sync " + s.name + " now");
    button.addEventListener("click", () => syncNow(s, button));
    return button;
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
              syncButton(s),
            ])
          )
        : el("p", "admin-muted", "No sources: upload files below, or add a git repository or website through the API.")
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
