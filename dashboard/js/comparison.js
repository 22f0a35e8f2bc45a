// The Comparison panel: held-out and live figures of the two types side by side, shadow
// agreement, feedback accuracy with its interval, the recommendation, the history charts and
// requests and latency from /metrics. `live` may be absent or null (a service without live
// figures yet): the panel then says "no live data yet".
import { api } from "./api.js";
import { $, el, clear, fillTable, num, pct, showError, showStatus } from "./ui.js";
import { parseProm, requestSummary } from "./prom.js";

const TYPES = ["ensemble", "classic"];
const COLORS = { ensemble: "#1f6feb", classic: "#bf8700" };
const charts = {};

function interval(ci) {
  return Array.isArray(ci) && ci.length === 2 ? pct(ci[0]) + " – " + pct(ci[1]) : "–";
}

function recall(r) {
  if (!r || typeof r !== "object") return "–";
  return Object.entries(r).map(([l, v]) => l + " " + pct(v)).join(", ");
}

function shares(s) {
  if (!s || typeof s !== "object") return "–";
  return Object.entries(s).map(([l, v]) => l + " " + pct(v)).join(", ");
}

function renderTable(c) {
  const live = c.live && typeof c.live === "object" ? c.live : null;
  const fb = live && live.feedback ? live.feedback : {};
  const h = (t) => c[t] || {};
  const f = (t) => fb[t] || null;
  const cell = (t, id, v) => ({ v: el("span", { id: id + "-" + t }, v), cls: "num" });
  const rows = [
    ["held-out: version", ...TYPES.map((t) => (c[t] ? el("code", {}, h(t).version) : "no trained version recorded"))],
    ["held-out: accuracy", ...TYPES.map((t) => cell(t, "ho-acc", pct(h(t).accuracy)))],
    ["held-out: macro F1", ...TYPES.map((t) => cell(t, "ho-f1", num(h(t).f1_score)))],
    ["held-out: training time", ...TYPES.map((t) => cell(t, "ho-time",
      typeof h(t).training_time === "number" ? num(h(t).training_time, 1) + " s" : "–"))],
    ["held-out: trained at", ...TYPES.map((t) => h(t).timestamp || "–")],
  ];
  if (live) {
    rows.push(
      ["live feedback: version", ...TYPES.map((t) => (f(t) ? el("code", {}, f(t).version) : "no feedback yet"))],
      ["live feedback: items (n)", ...TYPES.map((t) => cell(t, "live-n", f(t) ? f(t).n : 0))],
      ["live feedback: accuracy", ...TYPES.map((t) => cell(t, "live-acc", f(t) ? pct(f(t).accuracy) : "–"))],
      ["live feedback: 95 % interval", ...TYPES.map((t) => cell(t, "live-ci", f(t) ? interval(f(t).accuracy_ci95) : "–"))],
      ["live feedback: macro F1", ...TYPES.map((t) => cell(t, "live-f1", f(t) ? num(f(t).f1_macro) : "–"))],
      ["live feedback: recall", ...TYPES.map((t) => (f(t) ? recall(f(t).recall) : "–"))]);
  }
  fillTable($("cmp-table"), ["", ...TYPES], rows);
  $("cmp-live-note").textContent = live
    ? "Live figures since " + (live.since || "the first request") + "."
    : "no live data yet: the live figures (shadow scoring and feedback accuracy) appear once the service reports them.";
  const pairs = live && live.shadow && Array.isArray(live.shadow.pairs) ? live.shadow.pairs : [];
  fillTable($("cmp-shadow"),
    ["answering", "shadow", { v: "requests", cls: "num" }, { v: "agreements", cls: "num" },
     { v: "agreement", cls: "num" }, "label shares (answering / shadow)", "mean confidence"],
    pairs.map((p, i) => [
      p.answering ? p.answering.model_type + " " + p.answering.version : "–",
      p.shadow ? p.shadow.model_type + " " + p.shadow.version : "–",
      { v: el("span", { class: "shadow-requests", id: "shadow-requests-" + i }, p.requests), cls: "num" },
      { v: p.agreements, cls: "num" }, { v: pct(p.agreement), cls: "num" },
      p.label_share ? shares(p.label_share.answering) + " / " + shares(p.label_share.shadow) : "–",
      p.mean_confidence ? pct(p.mean_confidence.answering) + " / " + pct(p.mean_confidence.shadow) : "–",
    ]),
    { empty: live ? "no request shadowed yet" : "no live data yet" });
  const rec = $("cmp-recommendation");
  clear(rec);
  if (c.recommendation) {
    const r = c.recommendation;
    rec.append(el("strong", { id: "cmp-recommended" }, r.model), " ",
      el("span", { class: "muted" }, "(evidence: " + (r.evidence || "held_out") + ")"),
      el("br"), r.reason || "");
  } else {
    rec.append("No recommendation yet: both types need a trained version on record.");
  }
  return live;
}

function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  $(id).parentElement.hidden = false;
  charts[id] = new window.Chart($(id), config);
}

// No chart: the message takes its place.
function noChart(id, note, message) {
  if (charts[id]) {
    charts[id].destroy();
    delete charts[id];
  }
  $(id).parentElement.hidden = true;
  $(note).textContent = message;
}

// Both charts plot shares (F1, accuracy): never above 1.
function lineConfig(labels, datasets, yTitle) {
  return {
    type: "line",
    data: { labels, datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false, spanGaps: true,
      scales: { y: { title: { display: true, text: yTitle }, max: 1 },
                x: { ticks: { maxRotation: 60, autoSkip: true } } },
      plugins: { legend: { position: "bottom" } },
    },
  };
}

function renderHistory(hist) {
  if (!window.Chart) return noChart("chart-history", "chart-history-note", "Chart.js is not installed (libjs-chart.js).");
  if (!Array.isArray(hist) || hist.length === 0)
    return noChart("chart-history", "chart-history-note", "No training recorded yet.");
  // Versions are UTC times (20261203T164507.041Z): "12-03 16:45:07" keeps the axis readable.
  const labels = hist.map((h) => {
    const m = /^\d{4}(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)/.exec(h.version || "");
    return m ? m[1] + "-" + m[2] + " " + m[3] + ":" + m[4] + ":" + m[5] : h.version;
  });
  const datasets = TYPES.map((t) => ({
    label: t, borderColor: COLORS[t], backgroundColor: COLORS[t],
    data: hist.map((h) => (h.model_type === t && h.metrics ? h.metrics.f1_macro : null)),
  })).filter((d) => d.data.some((v) => v !== null));
  $("chart-history-note").textContent = hist.length + " trainings, oldest first.";
  chart("chart-history", lineConfig(labels, datasets, "macro F1"));
}

// Daily rows are per model version: a type's day is the feedback-weighted mean of its versions.
function renderLive(rows) {
  if (!window.Chart) return noChart("chart-live", "chart-live-note", "Chart.js is not installed (libjs-chart.js).");
  if (!Array.isArray(rows) || rows.length === 0)
    return noChart("chart-live", "chart-live-note", "no live data yet");
  const days = [...new Set(rows.map((r) => r.day))].sort();
  const agg = {};
  for (const r of rows) {
    if (typeof r.feedback_accuracy !== "number" || !r.feedback_n) continue;
    const k = r.model_type + "|" + r.day;
    agg[k] = agg[k] || { n: 0, correct: 0 };
    agg[k].n += r.feedback_n;
    agg[k].correct += r.feedback_n * r.feedback_accuracy;
  }
  const datasets = TYPES.map((t) => ({
    label: t, borderColor: COLORS[t], backgroundColor: COLORS[t],
    data: days.map((d) => (agg[t + "|" + d] ? agg[t + "|" + d].correct / agg[t + "|" + d].n : null)),
  })).filter((d) => d.data.some((v) => v !== null));
  if (datasets.length === 0)
    return noChart("chart-live", "chart-live-note", "No feedback on any day yet.");
  $("chart-live-note").textContent = days.length + " days with live figures.";
  chart("chart-live", lineConfig(days, datasets, "accuracy on feedback"));
}

function renderMetrics(text) {
  const s = requestSummary(parseProm(text));
  const statuses = Object.entries(s.byStatus).sort().map(([k, v]) => k + ": " + v).join(", ");
  $("cmp-metrics-summary").textContent = s.total + " requests answered by the workers of this instance" +
    (statuses ? " (by status " + statuses + ")" : "") + ".";
  const ms = (x) => (x === null ? "–" : x === Infinity ? "> 2.5 s" : num(x, x < 1 ? 3 : 1) + " ms");
  fillTable($("cmp-metrics"), ["route", { v: "requests", cls: "num" }, { v: "5xx", cls: "num" },
    { v: "mean", cls: "num" }, { v: "p50 ≤", cls: "num" }, { v: "p95 ≤", cls: "num" }],
    s.routes.filter((r) => r.requests > 0).map((r) => [el("code", {}, r.route),
      { v: r.requests, cls: "num" }, { v: r.errors, cls: "num" }, { v: ms(r.meanMs), cls: "num" },
      { v: ms(r.p50Ms), cls: "num" }, { v: ms(r.p95Ms), cls: "num" }]),
    { empty: "no request counted yet" });
}

export async function loadComparison() {
  const status = $("cmp-status");
  showStatus(status, "");
  const problems = [];
  const note = (what) => (e) => {
    problems.push(what + ": " + (e.detail || e.message));
    return null;
  };
  const [c, hist, metrics] = await Promise.all([
    api("/api/v1/models/comparison").catch(note("comparison")),
    api("/api/v1/models/performance/history?limit=100").catch(note("history")),
    api("/metrics", { text: true }).catch(note("metrics")),
  ]);
  let live = null;
  if (c) live = renderTable(c);
  renderHistory(hist);
  // The daily route belongs with the live figures: asked for only when the service has them.
  if (live) {
    const days = await api("/api/v1/models/live/history?days=30").catch(note("live history"));
    renderLive(days);
  } else {
    renderLive([]);
  }
  if (metrics !== null) renderMetrics(metrics);
  if (problems.length) showError(status, { detail: problems.join(" · ") });
}
