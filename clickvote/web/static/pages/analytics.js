// Votes over time, for the environment, one group, or one item; the votes each abuse layer
// refused, per day.
import { api, state } from "../api.js";
import { $, $$, esc, fmt } from "../dom.js";
import { drawChart, hourStart, toSeries } from "../chart.js";
import { loadPanel } from "../panel.js";
import { shell } from "../shell.js";

// The server's dateRange values, each drawn in buckets of `bucket` hours.
const RANGES = {
  "1d": { hours: 24, label: "Last 24 hours", bucket: 1 },
  "7d": { hours: 168, label: "Last 7 days", bucket: 1 },
  "30d": { hours: 720, label: "Last 30 days", bucket: 24 },
  "1y": { hours: 8760, label: "Last 12 months", bucket: 168 },
};
const PER = { 1: "hourly", 24: "daily", 168: "weekly" };

function pageHtml(sel) {
  return '<div class="page-head"><div class="grow"><h1>Analytics</h1><p>Every vote, un-vote and change, hour by hour.</p></div>' +
    '<div class="seg" id="range-seg" role="group" aria-label="Date range">' +
    Object.keys(RANGES).map((r) => `<button type="button" data-range="${r}" aria-pressed="${r === sel.range}">${r}</button>`).join("") +
    "</div></div>" +
    '<div class="grid cols-4" id="stats" style="margin-bottom:20px"></div>' +
    '<div class="panel"><div class="chart-head"><div class="grow"><h2 style="margin:0" id="chart-title">Votes</h2><span class="muted" id="chart-sub"></span></div>' +
    '<label class="switch">Group <select id="f-group" aria-label="Group"><option value="">All groups</option></select></label>' +
    '<label class="switch">Item <select id="f-item" aria-label="Item"><option value="">All items</option></select></label></div>' +
    '<div class="chart" id="chart"></div></div>' +
    '<div class="panel"><h2>Refused votes</h2><p class="muted">Per day (UTC), by the layer that refused them (Settings · Abuse control).</p><div id="refusals"></div></div>';
}

const LAYERS = [["token", "Voter token"], ["ipWindow", "Address + browser"], ["rateLimit", "Rate limit"], ["proofOfWork", "Proof of work"]];

// GET /analytics/refusals: [{day, dayStart, token, ipWindow, rateLimit, proofOfWork}]
function drawRefusals(rows, box) {
  if (!rows.length) {
    box.innerHTML = '<p class="muted" id="no-refusals">No votes refused.</p>';
    return;
  }
  box.innerHTML = '<table id="refusal-table"><thead><tr><th>Day</th>' + LAYERS.map(([, l]) => `<th class="num">${esc(l)}</th>`).join("") +
    "</tr></thead><tbody>" + rows.map((r) => `<tr><td>${esc(r.day)}</td>` +
      LAYERS.map(([k]) => `<td class="num" data-layer="${k}">${fmt(r[k])}</td>`).join("") + "</tr>").join("") + "</tbody></table>";
}

const option = (value, selected) => `<option value="${esc(value)}"${value === selected ? " selected" : ""}>${esc(value)}</option>`;

function drawStats(sel, rows, groupCount) {
  const range = RANGES[sel.range], days = range.hours / 24;
  let total = 0, peak = null;
  for (const r of rows) {
    total += r.count;
    if (!peak || r.count > peak.count) peak = r;
  }
  const busiest = peak ? hourStart(peak.hour) : "no votes yet";
  const envName = state.me.currentEnv.name;
  const stats = [
    ["Votes", fmt(total), range.label.toLowerCase()],
    ["Busiest hour", peak ? fmt(peak.count) : "—", busiest],
    ["Per day", (total / days).toFixed(total / days < 10 ? 1 : 0), "on average"],
    sel.group ? ["Items", String($("#f-item").options.length - 1), "voted on in " + sel.group] : ["Groups", fmt(groupCount), "in " + envName],
  ];
  $("#stats").innerHTML = stats.map(([label, value, sub]) =>
    `<div class="stat"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div><div class="sub">${esc(sub)}</div></div>`).join("");
}

export function pageAnalytics() {
  const q = new URLSearchParams(location.search);
  const sel = { range: RANGES[q.get("range")] ? q.get("range") : "7d", group: q.get("group") || "", voteTo: q.get("voteTo") || "" };
  shell(pageHtml(sel));
  let groupCount = 0;

  const syncUrl = () => {
    const p = new URLSearchParams();
    if (sel.range !== "7d") p.set("range", sel.range);
    if (sel.group) p.set("group", sel.group);
    if (sel.voteTo) p.set("voteTo", sel.voteTo);
    history.replaceState(null, "", "/analytics" + (p.toString() ? "?" + p : ""));
  };

  // GET /votes/{name}/to: the items of a group, as strings
  const loadItems = async () => {
    const s = $("#f-item");
    s.innerHTML = '<option value="">All items</option>';
    s.disabled = !sel.group;
    if (!sel.group) return;
    const items = await api("GET", "/votes/" + encodeURIComponent(sel.group) + "/to").catch(() => []); // the chart shows errors
    s.innerHTML = '<option value="">All items</option>' + items.map((v) => option(v, sel.voteTo)).join("");
  };

  // GET /analytics/data: [{hour, count}]
  const load = () => {
    const range = RANGES[sel.range];
    delete $("#chart").dataset.total; // the total of the chart drawn, none while loading
    const p = new URLSearchParams({ dateRange: sel.range });
    if (sel.group) p.set("group", sel.group);
    if (sel.voteTo) p.set("voteTo", sel.voteTo);
    return loadPanel($("#chart"), "/analytics/data?" + p, (rows, box) => {
      drawChart(box, toSeries(rows, range), range);
      drawStats(sel, rows, groupCount);
      loadPanel($("#refusals"), "/analytics/refusals?dateRange=" + sel.range, drawRefusals);
      $("#chart-title").textContent = (sel.group || "All groups") + (sel.voteTo ? " · " + sel.voteTo : "");
      $("#chart-sub").textContent = `${range.label} · ${PER[range.bucket]} totals`;
    }, { height: 300 });
  };

  for (const b of $$("#range-seg button")) {
    b.onclick = () => {
      sel.range = b.dataset.range;
      for (const x of $$("#range-seg button")) x.setAttribute("aria-pressed", String(x === b));
      syncUrl();
      load();
    };
  }
  $("#f-group").onchange = (ev) => {
    sel.group = ev.target.value;
    sel.voteTo = "";
    syncUrl();
    loadItems().then(load);
  };
  $("#f-item").onchange = (ev) => {
    sel.voteTo = ev.target.value;
    syncUrl();
    load();
  };

  // GET /votes/: the groups to choose from, then the chart
  loadPanel($("#chart"), "/votes/?page=1&limit=100", async (groups) => {
    groupCount = groups.total;
    $("#f-group").innerHTML = '<option value="">All groups</option>' + groups.items.map((g) => option(g.name, sel.group)).join("");
    await loadItems();
    load();
  }, { height: 300 });
}
