// Helpers every page uses: DOM building, API calls, time and duration formatting.
"use strict";

/** Builds an element: el("td", {class: "x"}, "text", child, ...). */
function el(tag, attrs, ...children) {
  const e = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** GETs an API path; resolves to `data`, rejects with the API's error text. */
async function api(path, params) {
  const url = params ? path + "?" + new URLSearchParams(params) : path;
  let resp;
  try {
    resp = await fetch(url);
  } catch (e) {
    throw new Error("request failed: " + e.message);
  }
  let body;
  try {
    body = await resp.json();
  } catch (e) {
    throw new Error(`HTTP ${resp.status}: the answer is not JSON`);
  }
  if (body.status !== "success") {
    throw new Error(body.error || `HTTP ${resp.status}`);
  }
  return body;
}

const DURATION_UNITS = { y: 365 * 86400, w: 7 * 86400, d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };

/** Parses a Prometheus duration ("1h30m", "5m", "2d") into seconds; null when invalid. */
function parseDuration(text) {
  const s = (text || "").trim();
  if (!s) return null;
  const re = /(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)/y;
  let total = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return null;
    total += parseFloat(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  return total > 0 ? total : null;
}

/** Seconds as a short Prometheus duration ("1h30m"). */
function formatDuration(seconds) {
  let s = Math.round(seconds);
  if (s <= 0) return "0s";
  let out = "";
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    if (s >= n) {
      out += Math.floor(s / n) + u;
      s %= n;
    }
  }
  return out;
}

/** A timestamp in milliseconds as "YYYY-MM-DD HH:MM:SS" UTC. */
function formatTime(ms) {
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return ms > 0 ? "+∞" : "−∞";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

/** Parses "YYYY-MM-DD HH:MM[:SS]" (UTC) or an RFC 3339 time into milliseconds; null when invalid. */
function parseTime(text) {
  const s = (text || "").trim();
  if (!s) return null;
  const iso = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(s) ? s.replace(" ", "T") + "Z" : s;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** A label set as PromQL text: name{a="b", ...}. */
function formatLabels(metric) {
  const name = metric.__name__ || "";
  const pairs = Object.entries(metric)
    .filter(([k]) => k !== "__name__")
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return pairs.length || !name ? `${name}{${pairs.join(", ")}}` : name;
}

/** Distinct colors for series, cycled. */
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
  "#4f46e5", "#65a30d", "#0d9488", "#b45309"];

function color(i) {
  return PALETTE[i % PALETTE.length];
}

/** A floating tooltip shared by the charts. */
const tooltip = {
  node: null,
  show(text, ev) {
    if (!this.node) this.node = document.body.appendChild(el("div", { id: "tooltip" }));
    this.node.textContent = text;
    this.node.classList.remove("hidden");
    this.node.style.left = ev.clientX + 12 + "px";
    this.node.style.top = ev.clientY + 12 + "px";
  },
  hide() {
    if (this.node) this.node.classList.add("hidden");
  },
};
