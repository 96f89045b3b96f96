// The analytics chart: hourly vote counts into buckets, drawn as SVG bars or a line.
import { $, esc, fmt } from "./dom.js";

const HOUR = 3600000;

// rows: GET /analytics/data, [{hour: ms of the UTC hour, count}] -> [{t, v}], every bucket of
// the range (range.bucket hours each) up to the current hour, empty ones 0.
export function toSeries(rows, range, now = Date.now()) {
  const step = range.bucket * HOUR, end = Math.floor(now / HOUR) * HOUR + HOUR, start = end - range.hours * HOUR;
  const n = Math.ceil(range.hours / range.bucket);
  const out = Array.from({ length: n }, (_, i) => ({ t: start + i * step, v: 0 }));
  for (const r of rows) {
    const idx = Math.min(n - 1, Math.floor((r.hour - start) / step));
    if (idx >= 0) out[idx].v += r.count;
  }
  return out;
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v)), m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

const dayKey = (t) => new Date(t).toDateString(); // the local calendar day

function label(t, range) {
  const d = new Date(t);
  if (range.hours <= 24) return d.toLocaleTimeString(undefined, { hour: "numeric" });
  if (range.bucket === 1) return d.toLocaleDateString(undefined, { weekday: "short", day: "numeric" });
  return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

// The buckets that get an x-axis label, at most `room` of them, each label once. Hourly
// buckets over days are labelled where a local day starts (the first bucket starting in it:
// in a zone with a half-hour offset no bucket starts at midnight), so a day is named once.
export function ticks(series, range, room) {
  let marks = series.map((_, i) => i);
  if (range.bucket === 1 && range.hours > 24) {
    marks = marks.filter((i) => i > 0 && dayKey(series[i].t) !== dayKey(series[i - 1].t));
  }
  const every = Math.max(1, Math.ceil(marks.length / Math.max(2, room)));
  const out = [], seen = new Set();
  for (let k = 0; k < marks.length; k += every) {
    const text = label(series[marks[k]].t, range);
    if (!seen.has(text)) out.push([marks[k], text]);
    seen.add(text);
  }
  return out;
}

// The local start of an hour bucket, with its minutes where the zone's offset has some
// ("Dec 3, 4:30 PM" in India), never rounded to a whole hour it doesn't start at.
export function hourStart(t) {
  const d = new Date(t), minute = d.getMinutes() ? { minute: "2-digit" } : {};
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric", ...minute });
}

function when(t, range) {
  const d = new Date(t);
  if (range.bucket === 1) return hourStart(t);
  return (range.bucket === 24 ? "" : "Week of ") + d.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
}

function bars(series, x, y, base, bw) {
  return series.map((p, j) => {
    if (!p.v) return "";
    const h = Math.max(2, base - y(p.v)), left = x(j) + bw * 0.15, w = Math.max(1, bw * 0.7), r = Math.min(4, w / 2);
    return `<path class="bar" d="M${left},${base}V${base - h + r}q0,-${r} ${r},-${r}h${w - 2 * r}q${r},0 ${r},${r}V${base}Z"/>`;
  }).join("");
}

function line(series, x, y, base, bw) {
  const pts = series.map((p, j) => [x(j) + bw / 2, y(p.v)]);
  const d = pts.map((p, j) => (j ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1)).join("");
  const last = pts[pts.length - 1][0].toFixed(1), first = pts[0][0].toFixed(1);
  return `<path class="area" d="${d}L${last},${base}L${first},${base}Z"/><path class="line" d="${d}"/>`;
}

export function drawChart(el, series, range) {
  const W = Math.max(280, el.clientWidth || 800), H = el.clientHeight || 320;
  const pad = { l: 44, r: 12, t: 14, b: 30 }, cw = W - pad.l - pad.r, ch = H - pad.t - pad.b;
  const total = series.reduce((a, p) => a + p.v, 0), max = Math.max(0, ...series.map((p) => p.v));
  const top = niceMax(max), n = series.length, bw = cw / n, base = pad.t + ch;
  const y = (v) => pad.t + ch - (v / top) * ch, x = (j) => pad.l + j * bw;
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Votes chart: ${esc(range.label)}, ${fmt(total)} votes">` +
    '<defs><linearGradient id="cv-bar" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stop-color="var(--accent-2)"/><stop offset="1" stop-color="var(--accent)"/></linearGradient>' +
    '<linearGradient id="cv-area" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stop-color="var(--accent)" stop-opacity=".35"/><stop offset="1" stop-color="var(--accent)" stop-opacity="0"/></linearGradient></defs>';
  for (let k = 0; k <= 4; k++) {
    const gv = (top / 4) * k, gy = y(gv);
    svg += `<line class="grid-line" x1="${pad.l}" x2="${W - pad.r}" y1="${gy}" y2="${gy}"/>` +
      `<text class="axis y" x="${pad.l - 8}" y="${gy + 4}" text-anchor="end">${gv % 1 ? gv.toFixed(1) : fmt(gv)}</text>`;
  }
  for (const [i, text] of ticks(series, range, Math.floor(cw / 64))) {
    if (x(i) + bw / 2 > W - 16) continue; // would run off the right edge
    svg += `<text class="axis x" x="${x(i) + bw / 2}" y="${H - 8}" text-anchor="middle">${esc(text)}</text>`;
  }
  svg += n <= 60 ? bars(series, x, y, base, bw) : line(series, x, y, base, bw);
  if (!max) svg += `<text class="nodata" x="${pad.l + cw / 2}" y="${pad.t + ch / 2}">No votes in this period yet</text>`;
  svg += `<line class="cursor" id="cursor" y1="${pad.t}" y2="${base}" x1="-10" x2="-10" opacity="0"/>` +
    `<rect id="hit" x="${pad.l}" y="${pad.t}" width="${cw}" height="${ch}" fill="transparent"/></svg><div class="tip" id="tip"></div>`;
  el.innerHTML = svg;
  el.dataset.total = String(total);
  const tip = $("#tip", el), cur = $("#cursor", el), svgEl = $("svg", el), hit = $("#hit", el);
  hit.addEventListener("mousemove", (ev) => {
    const rect = svgEl.getBoundingClientRect(), sx = (ev.clientX - rect.left) * (W / rect.width);
    const j = Math.min(n - 1, Math.max(0, Math.floor((sx - pad.l) / bw))), p = series[j], cx = x(j) + bw / 2;
    cur.setAttribute("x1", cx);
    cur.setAttribute("x2", cx);
    cur.setAttribute("opacity", "1");
    tip.innerHTML = `<b>${fmt(p.v)}</b> ${p.v === 1 ? "vote" : "votes"}<br>${esc(when(p.t, range))}`;
    tip.style.left = (cx * rect.width) / W + "px";
    tip.style.top = (y(p.v) * rect.height) / H + "px";
    tip.classList.add("on");
  });
  hit.addEventListener("mouseleave", () => {
    tip.classList.remove("on");
    cur.setAttribute("opacity", "0");
  });
  el.redraw = () => drawChart(el, series, range);
}

let resizing = null;
window.addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => $("#chart")?.redraw?.(), 150);
});
