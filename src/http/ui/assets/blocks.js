// The bucket page: the blocks of /api/v1/blocks on a timeline, one lane per resolution and
// external label set (as Thanos's bucket web groups them), each block a bar spanning its
// time range, stacked by compaction level; details on hover and in the list below.
"use strict";

const RESOLUTIONS = { 0: "raw", 300000: "5m", 3600000: "1h" };

function resolutionName(ms) {
  return RESOLUTIONS[ms] || formatDuration(ms / 1000);
}

function blockLabels(b) {
  return (b.thanos && b.thanos.labels) || {};
}

function blockResolution(b) {
  return (b.thanos && b.thanos.downsample && b.thanos.downsample.resolution) || 0;
}

function describe(b) {
  const st = b.stats || {};
  return [
    b.ulid,
    `level ${b.compaction ? b.compaction.level : "?"} · resolution ${resolutionName(blockResolution(b))}`,
    `${formatTime(b.minTime)} → ${formatTime(b.maxTime)} (${formatDuration((b.maxTime - b.minTime) / 1000)})`,
    `${st.numSeries ?? "?"} series · ${st.numSamples ?? "?"} samples · ${st.numChunks ?? "?"} chunks`,
    `source ${(b.thanos && b.thanos.source) || "?"} · ${b.promlake ? "parquet" : "native TSDB"}`,
  ].join("\n");
}

/** Groups blocks by (resolution, labels), sorted. */
function groups(blocks) {
  const by = new Map();
  for (const b of blocks) {
    const labels = formatLabels(blockLabels(b));
    const key = `${blockResolution(b)} ${labels}`;
    if (!by.has(key)) by.set(key, { resolution: blockResolution(b), labels, blocks: [] });
    by.get(key).blocks.push(b);
  }
  return [...by.values()].sort((a, b) => a.resolution - b.resolution || a.labels.localeCompare(b.labels));
}

function timeline(blocks, select) {
  const min = Math.min(...blocks.map((b) => b.minTime));
  const max = Math.max(...blocks.map((b) => b.maxTime));
  const width = Math.max(document.getElementById("main").clientWidth - 64, 600);
  const left = 8;
  const right = 8;
  const x = (t) => left + ((t - min) / Math.max(max - min, 1)) * (width - left - right);
  const lane = 16;
  const svg = el("svg:svg", { class: "timeline", width });
  let y = 4;
  for (const g of groups(blocks)) {
    svg.append(el("svg:text", { x: left, y: y + 11 }, `${resolutionName(g.resolution)} ${g.labels}`));
    y += 16;
    // Rows by compaction level, highest on top; overlapping blocks of a level get extra rows.
    const levels = [...new Set(g.blocks.map((b) => (b.compaction && b.compaction.level) || 1))].sort((a, b) => b - a);
    for (const level of levels) {
      const rows = [];
      for (const b of g.blocks.filter((b) => ((b.compaction && b.compaction.level) || 1) === level)) {
        let r = rows.findIndex((end) => end <= b.minTime);
        if (r < 0) r = rows.push(0) - 1;
        rows[r] = b.maxTime;
        const fill = `hsl(${210 + level * 25}, 70%, ${60 - Math.min(level, 5) * 4}%)`;
        const rect = el("svg:rect", {
          class: "block", "data-ulid": b.ulid, x: x(b.minTime), y: y + r * lane,
          width: Math.max(x(b.maxTime) - x(b.minTime) - 1, 2), height: lane - 3, fill,
          onmousemove: (ev) => tooltip.show(describe(b), ev),
          onmouseleave: () => tooltip.hide(),
          onclick: () => select(b.ulid),
        });
        svg.append(rect);
      }
      y += rows.length * lane;
    }
    y += 8;
  }
  svg.append(el("svg:text", { x: left, y: y + 12 }, formatTime(min)),
    el("svg:text", { x: width - right, y: y + 12, "text-anchor": "end" }, formatTime(max)));
  svg.setAttribute("height", y + 18);
  return svg;
}

function blockTable(blocks) {
  return el("table", { id: "blocks" },
    el("thead", {}, el("tr", {}, ["ULID", "Level", "Resolution", "Labels", "Min time", "Max time", "Duration", "Series", "Samples", "Chunks", "Source"].map((h) => el("th", {}, h)))),
    el("tbody", {}, blocks.map((b) => el("tr", { class: "block-row", "data-ulid": b.ulid, title: describe(b) },
      el("td", { class: "mono ulid" }, b.ulid),
      el("td", {}, (b.compaction && b.compaction.level) || ""),
      el("td", {}, resolutionName(blockResolution(b))),
      el("td", { class: "mono" }, formatLabels(blockLabels(b))),
      el("td", { class: "mono" }, formatTime(b.minTime)),
      el("td", { class: "mono" }, formatTime(b.maxTime)),
      el("td", {}, formatDuration((b.maxTime - b.minTime) / 1000)),
      el("td", { class: "value" }, (b.stats && b.stats.numSeries) ?? ""),
      el("td", { class: "value samples" }, (b.stats && b.stats.numSamples) ?? ""),
      el("td", { class: "value" }, (b.stats && b.stats.numChunks) ?? ""),
      el("td", {}, (b.thanos && b.thanos.source) || "")))));
}

async function load() {
  const main = document.getElementById("main");
  let body;
  try {
    body = await api("/api/v1/blocks");
  } catch (e) {
    main.replaceChildren(el("div", { id: "error", class: "error" }, "Error loading blocks: " + e.message));
    return;
  }
  const blocks = body.data.blocks || [];
  const header = el("p", { class: "muted", id: "summary" },
    `${blocks.length} blocks · refreshed ${formatTime(Date.parse(body.data.refreshedAt))}`);
  if (!blocks.length) {
    main.replaceChildren(header, el("p", {}, "The bucket holds no blocks."));
    return;
  }
  const table = blockTable(blocks);
  const select = (ulid) => {
    for (const r of main.querySelectorAll("[data-ulid]")) r.classList.toggle("selected", r.dataset.ulid === ulid);
    const row = table.querySelector(`tr[data-ulid="${ulid}"]`);
    if (row) row.scrollIntoView({ block: "nearest" });
  };
  main.replaceChildren(header, el("div", { class: "panel" }, timeline(blocks, select)), el("div", { class: "panel" }, table));
}

load();
