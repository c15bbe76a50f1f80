// The stores page: the querier's sources from /api/v1/stores, one table per component type,
// with health, last check, last error, external label sets and time range.
"use strict";

function labelSets(sets) {
  if (!sets || !sets.length) return el("span", { class: "muted" }, "none");
  return el("div", {}, sets.map((set) => el("div", {},
    Object.entries(set).map(([k, v]) => el("span", { class: "label" }, `${k}=${JSON.stringify(v)}`)))));
}

function storeTable(type, stores) {
  return el("div", { class: "panel", "data-type": type },
    el("h2", {}, `${type} (${stores.length})`),
    el("table", { class: "stores" },
      el("thead", {}, el("tr", {}, ["Endpoint", "Status", "Last check", "Last error", "Label sets", "Min time", "Max time"].map((h) => el("th", {}, h)))),
      el("tbody", {}, stores.map((s) => el("tr", { class: "store", "data-name": s.name },
        el("td", { class: "mono name" }, s.name),
        el("td", {}, s.lastError ? el("span", { class: "badge down" }, "DOWN") : el("span", { class: "badge up" }, "UP")),
        el("td", { class: "mono" }, s.lastCheck ? formatTime(Date.parse(s.lastCheck)) : "never"),
        el("td", { class: "mono last-error" }, s.lastError || ""),
        el("td", {}, labelSets(s.labelSets)),
        el("td", { class: "mono" }, formatTime(s.minTime)),
        el("td", { class: "mono" }, formatTime(s.maxTime)))))));
}

async function load() {
  const main = document.getElementById("main");
  try {
    const body = await api("/api/v1/stores");
    const types = Object.keys(body.data).sort();
    main.replaceChildren(...(types.length
      ? types.map((t) => storeTable(t, body.data[t]))
      : [el("p", { class: "muted" }, "No stores yet.")]));
  } catch (e) {
    main.replaceChildren(el("div", { id: "error", class: "error" }, "Error loading stores: " + e.message));
  }
}

load();
