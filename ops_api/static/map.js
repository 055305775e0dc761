// A route map drawn from GeoJSON as SVG, without tiles: lon/lat projected into the box
// (equirectangular, x scaled by cos(latitude), which is true enough across a city).
// LineStrings are the roads driven, in driving order (deadheading dashed); Points are
// numbered stops, except the depot (role "depot"), drawn as the start. Under the route, the
// streets around it (GET /basemap, the imported road network) in light grey, the larger
// ones named along their line.

const NS = "http://www.w3.org/2000/svg";
const W = 400, PAD = 16;  // drawn near its size on a phone, so labels stay legible
const MAX_LABELS = 40;   // more lines than this: numbering them would only clutter the map

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function lines(geometry) {
  if (!geometry) return [];
  if (geometry.type === "LineString") return [geometry.coordinates];
  if (geometry.type === "MultiLineString") return geometry.coordinates;
  if (geometry.type === "GeometryCollection") return geometry.geometries.flatMap(lines);
  return [];
}

function points(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Point") return [geometry.coordinates];
  if (geometry.type === "MultiPoint") return geometry.coordinates;
  if (geometry.type === "GeometryCollection") return geometry.geometries.flatMap(points);
  return [];
}

// A function [lon, lat] -> [x, y] that fits every coordinate into W x height, and the height.
export function fit(coordinates, maxHeight = 320) {
  const lons = coordinates.map((c) => c[0]);
  const lats = coordinates.map((c) => c[1]);
  const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.cos((lat0 * Math.PI) / 180);
  const minX = Math.min(...lons) * k, maxX = Math.max(...lons) * k;
  const minY = Math.min(...lats), maxY = Math.max(...lats);
  const spanX = Math.max(maxX - minX, 1e-4), spanY = Math.max(maxY - minY, 1e-4);
  const height = Math.round(Math.min(maxHeight, Math.max(160, ((W - 2 * PAD) * spanY) / spanX + 2 * PAD)));
  const scale = Math.min((W - 2 * PAD) / spanX, (height - 2 * PAD) / spanY);
  const offX = (W - scale * spanX) / 2, offY = (height - scale * spanY) / 2;
  const project = ([lon, lat]) => [offX + (lon * k - minX) * scale, height - offY - (lat - minY) * scale];
  return { project, height };
}

const STREET_LABELS = 15;   // names along at most this many streets: more would hide the route
const GRID = 0.005;          // the basemap's box, rounded out to this (degrees): one URL per job, cached

// The route's box padded by a fifth, rounded out to the grid: /basemap?bbox=... or null.
export function basemapPath(collection) {
  const all = ((collection && collection.features) || []).flatMap((f) => [...lines(f.geometry).flat(), ...points(f.geometry)])
    .filter((c) => Array.isArray(c) && Number.isFinite(c[0]) && Number.isFinite(c[1]));
  if (!all.length) return null;
  const lons = all.map((c) => c[0]), lats = all.map((c) => c[1]);
  const padX = (Math.max(...lons) - Math.min(...lons)) / 5 + GRID, padY = (Math.max(...lats) - Math.min(...lats)) / 5 + GRID;
  const down = (v) => (Math.floor(v / GRID) * GRID).toFixed(3), up = (v) => (Math.ceil(v / GRID) * GRID).toFixed(3);
  return `/basemap?bbox=${down(Math.min(...lons) - padX)},${down(Math.min(...lats) - padY)},`
         + `${up(Math.max(...lons) + padX)},${up(Math.max(...lats) + padY)}`;
}

// What the map's marks mean, for this kind of job.
export function legendFor(kind) {
  const streets = " Thin grey lines: the streets around it.";
  if (kind === "bins") {
    return "The collection round in driving order: the blue line is the way to drive, numbered circles are the bins "
           + `in the order to empty them, the green dot is the depot.${streets}`;
  }
  return `Numbers give the driving order. Solid line: spread salt; dashed: drive without spreading. The green dot is the depot.${streets}`;
}

function drawStreets(svg, project, streets) {
  const named = new Set();
  let labelled = 0;
  for (const feature of (streets && streets.features) || []) {
    const props = feature.properties || {};
    if (props.kind === "place") {
      for (const point of points(feature.geometry)) {
        const [x, y] = project(point);
        const g = svgEl("g", { class: "place" });
        g.append(svgEl("rect", { x: x - 4, y: y - 4, width: 8, height: 8 }), svgEl("text", { x: x + 7, y: y + 4 }, props.name || ""));
        svg.append(g);
      }
      continue;
    }
    for (let line of lines(feature.geometry)) {
      if (line.length < 2) continue;
      if (project(line[0])[0] > project(line[line.length - 1])[0]) line = [...line].reverse();  // names read left to right
      const d = line.map((c, i) => `${i ? "L" : "M"}${project(c).map((v) => v.toFixed(1)).join(" ")}`).join(" ");
      const path = svgEl("path", { class: `street${props.major ? " major" : ""}`, d });
      svg.append(path);
      if (props.major && props.name && !named.has(props.name) && labelled < STREET_LABELS) {
        named.add(props.name);
        labelled += 1;
        path.id = `street-${labelled}`;
        const text = svgEl("text", { class: "street-name" });
        text.append(svgEl("textPath", { href: `#street-${labelled}`, startOffset: "50%", "text-anchor": "middle" }, props.name));
        svg.append(text);
      }
    }
  }
}

// Draw the FeatureCollection into `svg` (over `streets`, a basemap FeatureCollection, if
// given); returns how many lines and stops were drawn.
export function drawRoute(svg, collection, streets) {
  const title = svg.querySelector("title");
  svg.replaceChildren(...(title ? [title] : []));
  const features = (collection && collection.features) || [];
  const all = features.flatMap((f) => [...lines(f.geometry).flat(), ...points(f.geometry)])
    .filter((c) => Array.isArray(c) && Number.isFinite(c[0]) && Number.isFinite(c[1]));
  if (!all.length) {
    svg.setAttribute("viewBox", `0 0 ${W} 120`);
    svg.append(svgEl("text", { x: W / 2, y: 60, "text-anchor": "middle" }, "No route to show for this job"));
    return { lines: 0, stops: 0 };
  }
  const { project, height } = fit(all);
  svg.setAttribute("viewBox", `0 0 ${W} ${height}`);
  svg.append(svgEl("rect", { class: "frame", x: 0.5, y: 0.5, width: W - 1, height: height - 1 }));
  if (streets) drawStreets(svg, project, streets);

  let drawn = 0;
  const stops = [];
  const depots = [];
  const labels = [];
  for (const feature of features) {
    const props = feature.properties || {};
    for (const line of lines(feature.geometry)) {
      if (line.length < 2) continue;
      const d = line.map((c, i) => `${i ? "L" : "M"}${project(c).map((v) => v.toFixed(1)).join(" ")}`).join(" ");
      const deadhead = props.service === false || props.mode === "deadhead";
      svg.append(svgEl("path", { class: `route${deadhead ? " deadhead" : ""}${props.done ? " done" : ""}`, d,
                                 "data-seq": props.seq ?? "" }));
      drawn += 1;
      const middle = Math.floor((line.length - 1) / 2);
      if (props.seq && !deadhead) labels.push({ at: line[middle], next: line[middle + 1], seq: props.seq });
    }
    const depot = props.role === "depot" || props.kind === "depot";
    for (const point of points(feature.geometry)) (depot ? depots : stops).push({ point, props });
  }
  // the start: the depot, else where the first line or stop begins
  for (const { point, props } of depots.length ? depots : [{ point: all[0], props: { name: "start" } }]) {
    const [sx, sy] = project(point);
    const start = svgEl("g", { class: "start" });
    start.append(svgEl("circle", { cx: sx, cy: sy, r: 7 }), svgEl("title", {}, props.name || "depot"));
    svg.append(start);
  }
  if (labels.length <= MAX_LABELS) {
    for (const { at, next, seq } of labels) {   // the line's number, at the middle of its middle piece
      const [ax, ay] = project(at), [bx, by] = project(next);
      svg.append(svgEl("text", { class: "seq", x: (ax + bx) / 2, y: (ay + by) / 2 }, seq));
    }
  }
  stops.forEach(({ point, props }, i) => {
    const [x, y] = project(point);
    const label = props.seq || i + 1;
    const g = svgEl("g", { class: "stop" });
    g.append(svgEl("circle", { cx: x, cy: y, r: 9 }), svgEl("text", { x, y }, label));
    const name = props.name || props.label || props.device_id;
    if (name) g.append(svgEl("title", {}, name));
    svg.append(g);
  });
  return { lines: drawn, stops: stops.length };
}
