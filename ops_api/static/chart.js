// A small time-series line chart drawn as SVG: no library. Lines break where readings are
// missing (a gap longer than `maxGapS`), so an outage shows as a gap, not a straight line.

const NS = "http://www.w3.org/2000/svg";
const W = 360, H = 150, LEFT = 34, RIGHT = 6, TOP = 8, BOTTOM = 20;  // about a phone's width

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A step of 1, 2 or 5 x 10^n giving about `count` ticks over [lo, hi].
function niceStep(lo, hi, count) {
  const raw = Math.max((hi - lo) / count, 1e-9);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 5, 10].find((m) => m * power >= raw) * power;
  return unit;
}

// Path data for one series: "M x y L x y ..." restarting with M after a gap.
export function pathData(points, x, y, maxGapMs) {
  let d = "";
  let last = null;
  for (const [t, v] of points) {
    if (v === null || v === undefined || Number.isNaN(v)) { last = null; continue; }
    const cmd = last === null || t - last > maxGapMs ? "M" : "L";
    d += `${cmd}${x(t).toFixed(1)} ${y(v).toFixed(1)} `;
    last = t;
  }
  return d.trim();
}

// Draw `series` ([{key, cls, label}]) of `points` ([{ts, [key]: number}]) into `svg`.
// Options: fromMs/toMs (the time window), unit (axis label), floor/ceiling (fixed y limits).
export function drawChart(svg, points, series, { fromMs, toMs, unit = "", floor, ceiling, maxGapS = 1800 } = {}) {
  const title = svg.querySelector("title");
  svg.replaceChildren(...(title ? [title] : []));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const rows = points.map((p) => ({ t: Date.parse(p.ts), p })).filter((r) => !Number.isNaN(r.t));
  const values = rows.flatMap((r) => series.map((s) => r.p[s.key])).filter((v) => typeof v === "number");
  if (!values.length) {
    svg.append(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No readings in this period"));
    return;
  }
  const t0 = fromMs ?? Math.min(...rows.map((r) => r.t));
  const t1 = toMs ?? Math.max(...rows.map((r) => r.t));
  let lo = floor ?? Math.min(...values);
  let hi = ceiling ?? Math.max(...values);
  if (hi - lo < 2) { lo -= 1; hi += 1; }
  const step = niceStep(lo, hi, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const x = (t) => LEFT + ((t - t0) / Math.max(t1 - t0, 1)) * (W - LEFT - RIGHT);
  const y = (v) => TOP + (1 - (v - lo) / (hi - lo)) * (H - TOP - BOTTOM);

  for (let v = lo; v <= hi + step / 2; v += step) {
    svg.append(svgEl("line", { class: "axis", x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { x: LEFT - 4, y: y(v) + 4, "text-anchor": "end" }, `${+v.toFixed(1)}${unit}`));
  }
  const day = new Date(t0);
  day.setHours(24, 0, 0, 0);  // the first local midnight after the start
  for (let t = day.getTime(); t < t1; t += 86_400_000) {
    svg.append(svgEl("line", { class: "axis", x1: x(t), x2: x(t), y1: TOP, y2: H - BOTTOM }));
    const label = new Date(t).toLocaleDateString(undefined, { weekday: "short" });
    svg.append(svgEl("text", { x: x(t) + 3, y: H - 8 }, label));
  }
  for (const s of series) {
    const d = pathData(rows.map((r) => [r.t, r.p[s.key]]), x, y, maxGapS * 1000);
    if (d) svg.append(svgEl("path", { class: `series ${s.cls}`, d, "data-series": s.key }));
  }
}
