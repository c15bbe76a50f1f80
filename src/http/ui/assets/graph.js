// The query page: expression with history, time range, step, Execute; a Graph tab
// (/api/v1/query_range drawn as SVG lines with a legend) and a Table tab (/api/v1/query).
// The URL carries the view (g0.expr, g0.tab, g0.range_input, g0.end_input, g0.step_input) so
// a link reproduces it, as in Prometheus.
"use strict";

const HISTORY_KEY = "promlake.history";
const HISTORY_MAX = 50;

const ui = {};

function buildPage() {
  const main = document.getElementById("main");
  ui.expr = el("textarea", { id: "expr", placeholder: "Expression (press Shift+Enter for newlines)", spellcheck: "false" });
  ui.history = el("select", { id: "history", title: "Previous expressions" });
  ui.execute = el("button", { id: "execute", class: "primary" }, "Execute");
  ui.range = el("input", { id: "range", class: "short", title: "Range (e.g. 1h, 30m, 2d)" });
  ui.end = el("input", { id: "end", class: "time", placeholder: "end: now", title: "End time, UTC (YYYY-MM-DD HH:MM:SS)" });
  ui.step = el("input", { id: "step", class: "short", placeholder: "step: auto", title: "Resolution step (e.g. 15s); empty: automatic" });
  ui.tabGraph = el("button", { id: "tab-graph" }, "Graph");
  ui.tabTable = el("button", { id: "tab-table" }, "Table");
  ui.error = el("div", { id: "error", class: "error hidden" });
  ui.info = el("div", { id: "info", class: "muted" });
  ui.graph = el("div", { id: "graph" });
  ui.legend = el("ul", { id: "legend", class: "legend" });
  ui.table = el("table", { id: "table" });
  ui.graphPane = el("div", { id: "graph-pane" }, ui.graph, ui.legend);
  ui.tablePane = el("div", { id: "table-pane" }, ui.table);
  main.append(
    el("div", { class: "panel" },
      el("div", { class: "row" }, ui.expr, ui.execute),
      el("div", { class: "row" }, el("label", {}, "History "), ui.history)),
    el("div", { class: "panel" },
      el("div", { class: "row tabs" }, ui.tabGraph, ui.tabTable,
        el("span", { style: "width:16px" }),
        el("label", {}, "Range "), ui.range, el("label", {}, "End "), ui.end,
        el("label", {}, "Step "), ui.step),
      ui.error, ui.info, ui.graphPane, ui.tablePane));

  ui.execute.addEventListener("click", execute);
  ui.expr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      execute();
    }
  });
  ui.history.addEventListener("change", () => {
    if (ui.history.value) ui.expr.value = ui.history.value;
    ui.history.selectedIndex = 0;
    ui.expr.focus();
  });
  ui.tabGraph.addEventListener("click", () => selectTab("graph", true));
  ui.tabTable.addEventListener("click", () => selectTab("table", true));
}

// --- URL and history -------------------------------------------------------------------

function readUrl() {
  const p = new URLSearchParams(location.search);
  ui.expr.value = p.get("g0.expr") || "";
  ui.range.value = p.get("g0.range_input") || "1h";
  ui.end.value = p.get("g0.end_input") || "";
  ui.step.value = p.get("g0.step_input") || "";
  ui.tab = p.get("g0.tab") === "table" || p.get("g0.tab") === "1" ? "table" : "graph";
}

function writeUrl() {
  const p = new URLSearchParams();
  p.set("g0.expr", ui.expr.value);
  p.set("g0.tab", ui.tab);
  p.set("g0.range_input", ui.range.value);
  if (ui.end.value.trim()) p.set("g0.end_input", ui.end.value.trim());
  if (ui.step.value.trim()) p.set("g0.step_input", ui.step.value.trim());
  history.replaceState(null, "", "?" + p);
}

function loadHistory() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(list) ? list.filter((x) => typeof x === "string") : [];
  } catch (e) {
    return [];
  }
}

function remember(expr) {
  const list = [expr, ...loadHistory().filter((x) => x !== expr)].slice(0, HISTORY_MAX);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(list));
  } catch (e) {
    // Storage full or disabled: history is a convenience.
  }
  renderHistory();
}

function renderHistory() {
  const list = loadHistory();
  ui.history.replaceChildren(el("option", { value: "" }, list.length ? `${list.length} previous expression${list.length === 1 ? "" : "s"}` : "no history yet"),
    ...list.map((x) => el("option", { value: x }, x)));
}

// --- execution --------------------------------------------------------------------------

function selectTab(tab, run) {
  ui.tab = tab;
  ui.tabGraph.classList.toggle("active", tab === "graph");
  ui.tabTable.classList.toggle("active", tab === "table");
  ui.graphPane.classList.toggle("hidden", tab !== "graph");
  ui.tablePane.classList.toggle("hidden", tab !== "table");
  if (run && ui.expr.value.trim()) execute();
}

function showError(msg) {
  ui.error.textContent = msg;
  ui.error.classList.toggle("hidden", !msg);
}

/** The query's time window: [start, end] in seconds and the step in seconds. */
function window_() {
  const range = parseDuration(ui.range.value);
  if (range === null) throw new Error(`invalid range ${JSON.stringify(ui.range.value)}: use a duration such as 1h or 30m`);
  let end = Date.now() / 1000;
  if (ui.end.value.trim()) {
    const t = parseTime(ui.end.value);
    if (t === null) throw new Error(`invalid end time ${JSON.stringify(ui.end.value)}: use YYYY-MM-DD HH:MM:SS (UTC)`);
    end = t / 1000;
  }
  let step = Math.max(Math.round(range / 250), 1);
  if (ui.step.value.trim()) {
    step = parseDuration(ui.step.value);
    if (step === null) throw new Error(`invalid step ${JSON.stringify(ui.step.value)}: use a duration such as 15s`);
  }
  return { start: end - range, end, step };
}

let generation = 0;

async function execute() {
  const expr = ui.expr.value.trim();
  writeUrl();
  showError("");
  if (!expr) return;
  remember(expr);
  const gen = ++generation;
  let w;
  try {
    w = window_();
  } catch (e) {
    showError(e.message);
    return;
  }
  ui.info.textContent = "Loading…";
  ui.execute.disabled = true;
  const started = performance.now();
  try {
    let body;
    if (ui.tab === "graph") {
      body = await api("/api/v1/query_range", { query: expr, start: w.start, end: w.end, step: w.step });
      if (gen !== generation) return;
      drawGraph(body.data, w);
      ui.info.textContent = `${body.data.result.length} series · step ${formatDuration(w.step)} · ${Math.round(performance.now() - started)} ms`;
    } else {
      body = await api("/api/v1/query", { query: expr, time: w.end });
      if (gen !== generation) return;
      drawTable(body.data);
      ui.info.textContent = `at ${formatTime(w.end * 1000)} · ${Math.round(performance.now() - started)} ms`;
    }
    if (body.warnings && body.warnings.length) showError("Warnings:\n" + body.warnings.join("\n"));
  } catch (e) {
    if (gen !== generation) return;
    ui.info.textContent = "";
    if (ui.tab === "graph") {
      ui.graph.replaceChildren();
      ui.legend.replaceChildren();
    } else {
      ui.table.replaceChildren();
    }
    showError("Error executing query: " + e.message);
  } finally {
    ui.execute.disabled = false;
  }
}

// --- table ------------------------------------------------------------------------------

function drawTable(data) {
  const rows = [];
  switch (data.resultType) {
    case "vector":
      for (const s of data.result) rows.push([formatLabels(s.metric), s.value[1]]);
      break;
    case "matrix":
      for (const s of data.result) rows.push([formatLabels(s.metric), s.values.map((v) => `${v[1]} @${v[0]}`).join("\n")]);
      break;
    case "scalar":
    case "string":
      rows.push([data.resultType, data.result[1]]);
      break;
  }
  ui.table.replaceChildren(
    el("thead", {}, el("tr", {}, el("th", {}, "Series"), el("th", {}, "Value"))),
    el("tbody", {}, rows.length
      ? rows.map(([l, v]) => el("tr", { class: "result" }, el("td", { class: "labels" }, l), el("td", { class: "value" }, v)))
      : el("tr", {}, el("td", { colspan: 2, class: "muted" }, "Empty query result"))));
}

// --- graph ------------------------------------------------------------------------------

/** About `count` round tick values covering [lo, hi]. */
function niceTicks(lo, hi, count) {
  const span = hi - lo;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}

/** Time ticks (seconds) at round intervals for [lo, hi]. */
function timeTicks(lo, hi, count) {
  const steps = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
  const step = steps.find((s) => (hi - lo) / s <= count) || 604800 * Math.ceil((hi - lo) / count / 604800);
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(t);
  return { ticks, step };
}

function formatTick(t, step) {
  const iso = new Date(t * 1000).toISOString();
  if (step >= 86400) return iso.slice(5, 10);
  if (step >= 60) return iso.slice(11, 16);
  return iso.slice(11, 19);
}

function formatValue(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(6)));
}

function drawGraph(data, w) {
  const series = data.result.map((s, i) => ({
    name: formatLabels(s.metric),
    color: color(i),
    points: s.values.map(([t, v]) => [Number(t), Number(v)]),
  }));
  const width = Math.max(ui.graph.clientWidth || 0, 600);
  const height = 320;
  const m = { left: 64, right: 16, top: 10, bottom: 28 };
  const svg = el("svg:svg", { id: "chart", width, height, viewBox: `0 0 ${width} ${height}` });
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (lo === Infinity) {
    lo = 0;
    hi = 1;
  } else if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const yTicks = niceTicks(lo, hi, 5);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks[yTicks.length - 1]);
  const x = (t) => m.left + ((t - w.start) / (w.end - w.start)) * (width - m.left - m.right);
  const y = (v) => height - m.bottom - ((v - lo) / (hi - lo)) * (height - m.top - m.bottom);

  for (const v of yTicks) {
    svg.append(el("svg:line", { class: "grid", x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }),
      el("svg:text", { x: m.left - 6, y: y(v) + 4, "text-anchor": "end" }, formatValue(v)));
  }
  const { ticks, step } = timeTicks(w.start, w.end, Math.floor((width - m.left) / 90));
  for (const t of ticks) {
    svg.append(el("svg:line", { class: "grid", x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom }),
      el("svg:text", { x: x(t), y: height - m.bottom + 16, "text-anchor": "middle" }, formatTick(t, step)));
  }
  svg.append(el("svg:line", { class: "axis", x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom }),
    el("svg:line", { class: "axis", x1: m.left, x2: m.left, y1: m.top, y2: height - m.bottom }));

  const paths = series.map((s) => {
    // A gap longer than 1.5 steps breaks the line, as Prometheus's graph does.
    let d = "";
    let prev = null;
    for (const [t, v] of s.points) {
      if (!Number.isFinite(v)) {
        prev = null;
        continue;
      }
      d += (prev === null || t - prev > w.step * 1.5 ? "M" : "L") + x(t).toFixed(1) + "," + y(v).toFixed(1);
      prev = t;
    }
    if (s.points.length === 1 && d) d += "h1";
    const path = el("svg:path", { class: "series", d, stroke: s.color, "data-series": s.name });
    path.append(el("svg:title", {}, s.name));
    svg.append(path);
    return path;
  });
  ui.graph.replaceChildren(series.length ? svg : el("p", { class: "muted" }, "Empty query result"));
  ui.legend.replaceChildren(...series.map((s, i) =>
    el("li", {
      class: "legend-item",
      onmouseenter: () => paths.forEach((p, j) => p.classList.toggle("dim", j !== i)),
      onmouseleave: () => paths.forEach((p) => p.classList.remove("dim")),
    }, el("span", { class: "swatch", style: `background:${s.color}` }), s.name)));

  svg.addEventListener("mousemove", (ev) => {
    const rect = svg.getBoundingClientRect();
    const t = w.start + ((ev.clientX - rect.left - m.left) / (width - m.left - m.right)) * (w.end - w.start);
    if (t < w.start || t > w.end) return tooltip.hide();
    const lines = [formatTime(t * 1000)];
    for (const s of series.slice(0, 10)) {
      const p = nearest(s.points, t);
      if (p && Math.abs(p[0] - t) <= w.step) lines.push(`${s.name}: ${p[1]}`);
    }
    tooltip.show(lines.join("\n"), ev);
  });
  svg.addEventListener("mouseleave", () => tooltip.hide());
}

/** The point of sorted `points` closest in time to `t`. */
function nearest(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  if (hi < 0) return null;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  const a = points[lo];
  const b = points[lo - 1];
  return b && Math.abs(b[0] - t) < Math.abs(a[0] - t) ? b : a;
}

buildPage();
readUrl();
renderHistory();
selectTab(ui.tab, false);
if (ui.expr.value.trim()) execute();
