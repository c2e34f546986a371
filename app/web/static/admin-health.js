/* docchat console: health over time, drawn as small SVG line charts from
 * /api/admin/health (the database and this server's alerts: no Prometheus
 * needed). Each chart is also a table for screen readers. */

import { call } from "./admin-api.js";
import { el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 320;
const H = 110;
const PAD = 24;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  Object.keys(attrs).forEach((k) => node.setAttribute(k, String(attrs[k])));
  return node;
}

// A series' normal range (the anomaly monitor's baseline, low to high) as a shaded
// area, one polygon per run of hours that have one.
function drawBand(graphic, band, cls, x, y) {
  let run = [];
  const flush = function () {
    if (run.length) {
      const upper = run.map((p) => x(p.i).toFixed(1) + "," + y(p.b.high).toFixed(1));
      const lower = run.slice().reverse().map((p) => x(p.i).toFixed(1) + "," + y(p.b.low).toFixed(1));
      graphic.appendChild(svg("polygon", { points: upper.concat(lower).join(" "), class: "band " + cls }));
    }
    run = [];
  };
  band.forEach(function (b, i) {
    if (b) run.push({ i: i, b: b });
    else flush();
  });
  flush();
}

// One chart: series [{label, values, cls, band?}] over the hours; `max` fixes the top
// (1 for shares), else the largest value.
function chart(title, hours, series, max, unit) {
  const figure = el("figure", "admin-chart");
  figure.appendChild(el("figcaption", null, title));
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const highs = series.flatMap((s) => (s.band || []).filter(Boolean).map((b) => b.high));
  const top = max || Math.max(1, ...values, ...highs);
  const graphic = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title });
  graphic.appendChild(svg("line", { x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, class: "axis" }));
  const topLabel = svg("text", { x: 0, y: 10, class: "tick" });
  topLabel.textContent = (top % 1 ? top.toFixed(2) : top) + (unit || "");
  graphic.appendChild(topLabel);
  const step = (W - PAD) / Math.max(1, hours.length - 1);
  const x = (i) => PAD + i * step;
  const y = (v) => H - PAD - (v / top) * (H - PAD - 12);
  series.forEach((s) => s.band && drawBand(graphic, s.band, s.cls, x, y));
  series.forEach(function (s) {
    let d = "";
    s.values.forEach(function (v, i) {
      if (v === null) return;
      const x = PAD + i * step;
      const y = H - PAD - (v / top) * (H - PAD - 12);
      d += (d ? " L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      if (s.values[i - 1] === null || i === 0) graphic.appendChild(svg("circle", { cx: x, cy: y, r: 1.5, class: s.cls }));
    });
    if (d) graphic.appendChild(svg("path", { d: d, class: "line " + s.cls }));
  });
  figure.appendChild(graphic);
  const legend = el("p", "admin-legend");
  series.forEach((s) => legend.appendChild(el("span", "key " + s.cls, s.label)));
  if (series.some((s) => s.band && s.band.some(Boolean))) legend.appendChild(el("span", "key band", "shaded: normal range"));
  figure.appendChild(legend);
  // The figures themselves, for whoever does not see the lines.
  const data = el("table", "visually-hidden");
  const head = el("tr");
  head.appendChild(el("th", null, "hour"));
  series.forEach(function (s) {
    head.appendChild(el("th", null, s.label));
    if (s.band) head.appendChild(el("th", null, s.label + " normal range"));
  });
  data.appendChild(head);
  hours.forEach(function (h, i) {
    const row = el("tr");
    row.appendChild(el("td", null, h.at));
    series.forEach(function (s) {
      row.appendChild(el("td", null, s.values[i] === null ? "-" : String(s.values[i])));
      if (s.band) row.appendChild(el("td", null, s.band[i] ? s.band[i].low + " to " + s.band[i].high : "-"));
    });
    data.appendChild(row);
  });
  figure.appendChild(data);
  return figure;
}

// Chunks written per hour by each source (a source's name, "upload", "ingest"): the
// four busiest drawn (the table below lists every run).
function volumeChart(hours, runs) {
  const starts = hours.map((h) => Date.parse(h.at));
  const totals = {};
  runs.forEach((r) => (totals[r.source] = (totals[r.source] || 0) + r.chunks_written));
  const named = Object.keys(totals).sort((a, b) => totals[b] - totals[a]).slice(0, 4);
  const byName = {};
  named.forEach((n) => (byName[n] = hours.map(() => 0)));
  runs.forEach(function (r) {
    const at = Date.parse(r.at);
    const i = starts.findIndex((s, k) => at >= s && (k === starts.length - 1 || at < starts[k + 1]));
    if (i >= 0 && byName[r.source]) byName[r.source][i] += r.chunks_written;
  });
  return chart("Chunks ingested per hour, by source", hours, named.map((n, k) => ({ label: n, values: byName[n], cls: "s" + (k + 1) })));
}

export async function showHealth() {
  const health = await call("GET", "/api/admin/health?hours=48");
  if (health === null) return;
  const hours = health.hours;
  const pick = (name) => hours.map((h) => (h[name] === undefined ? null : h[name]));
  const band = (name) => health.baselines[name];
  document.getElementById("health-charts").replaceChildren(
    chart("Answers per hour", hours, [{ label: "answers", values: pick("answers"), cls: "s1" }]),
    chart("Time per answer (s)", hours, [
      { label: "p50", values: pick("seconds_p50"), cls: "s1", band: band("seconds_p50") },
      { label: "p95", values: pick("seconds_p95"), cls: "s2" },
    ], 0, " s"),
    chart("Refused and ungrounded (share)", hours, [
      { label: "refused", values: pick("refused"), cls: "s1", band: band("refused") },
      { label: "ungrounded", values: pick("ungrounded"), cls: "s2", band: band("ungrounded") },
    ], 1),
    chart("Thumbs-down (share of ratings)", hours, [{ label: "down", values: pick("down"), cls: "s2", band: band("down") }], 1),
    volumeChart(hours, health.ingest)
  );
  const firing = health.firing.length ? "Firing now: " + health.firing.join(", ") : "No alert firing.";
  document.getElementById("health-firing").textContent =
    firing + " Questions refused with a full queue since start: " + health.queue_rejections + ".";
  const alerts = document.getElementById("health-alerts");
  alerts.replaceChildren(
    ...(health.alerts.length
      ? health.alerts.map((a) => el("li", null, (a.time || "") + " " + a.alert + " " + a.status + " (" + a.value + ")"))
      : [el("li", "admin-muted", "none sent since this server started")])
  );
  const table = document.getElementById("health-ingest");
  const head = el("tr");
  ["Started", "Collection", "Source", "Status", "New", "Changed", "Deleted", "Failed", "Chunks"].forEach((h) => head.appendChild(el("th", null, h)));
  table.replaceChildren(
    head,
    ...health.ingest.map(function (r) {
      const row = el("tr");
      [r.at.slice(0, 16).replace("T", " "), r.collection, r.source, r.status, r.new, r.changed, r.deleted, r.failed, r.chunks_written].forEach((v) =>
        row.appendChild(el("td", null, String(v)))
      );
      return row;
    })
  );
}
