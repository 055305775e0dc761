"""The printable job sheet: one HTML page, no scripts and no external assets.

The route is drawn from the job's GeoJSON as inline SVG (lon/lat on a local equirectangular
projection: fine over a town), over the streets around it when given (GET /basemap's
FeatureCollection, ops_api.queries.basemap), with a key that fits the kind of job, the steps
to tick off, the crew's note and sign-off lines.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any

SERVICE = "#c62828"
DEADHEAD = "#9e9e9e"
ROUTE = "#1565c0"


def _coords(features: Iterable[dict[str, Any]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for f in features:
        g = f.get("geometry") or {}
        if g.get("type") == "Point":
            out.append((float(g["coordinates"][0]), float(g["coordinates"][1])))
        elif g.get("type") == "LineString":
            out += [(float(c[0]), float(c[1])) for c in g["coordinates"]]
    return out


STREET = "#d0d4d9"
STREET_LABELS = 15   # names along at most this many of the larger streets


def _streets(streets: dict[str, Any] | None, xy: Any) -> list[str]:
    """The basemap's streets in light grey under the route, the larger named ones labelled along their line."""
    parts: list[str] = []
    named: set[str] = set()
    for f in (streets or {}).get("features", []):
        g, props = f.get("geometry") or {}, f.get("properties") or {}
        if g.get("type") != "LineString" or len(g.get("coordinates") or []) < 2:
            continue
        coords = g["coordinates"]
        if coords[0][0] > coords[-1][0]:
            coords = coords[::-1]   # names read left to right
        d = "M" + " L".join(xy(c[0], c[1]).replace(",", " ") for c in coords)
        major, name = bool(props.get("major")), str(props.get("name") or "")
        label = major and name and name not in named and len(named) < STREET_LABELS
        ident = f' id="st{len(named) + 1}"' if label else ""
        parts.append(f'<path{ident} d="{d}" fill="none" stroke="{STREET}" stroke-width="{3 if major else 1.5}"/>')
        if label:
            named.add(name)
            parts.append(f'<text font-size="8" fill="#555"><textPath href="#st{len(named)}" startOffset="50%" '
                         f'text-anchor="middle">{html.escape(name)}</textPath></text>')
    return parts


def svg_map(geojson: dict[str, Any], width: int = 680, height: int = 420,
            streets: dict[str, Any] | None = None) -> str:
    """The features as SVG: spreading in red, driving without spreading in grey, stops numbered;
    the `streets` (a basemap FeatureCollection) under them."""
    features = geojson.get("features", [])
    points = _coords(features)
    if not points:
        return "<p>No route to draw.</p>"
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    scale_x = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span_x = max((max(lons) - min(lons)) * scale_x, 1e-6)
    span_y = max(max(lats) - min(lats), 1e-6)
    pad = 20
    k = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)

    def xy(lon: float, lat: float) -> str:
        return f"{pad + (lon - min(lons)) * scale_x * k:.1f},{height - pad - (lat - min(lats)) * k:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" '
             f'aria-label="route map"><rect width="{width}" height="{height}" fill="#fafafa" stroke="#ccc"/>',
             *_streets(streets, xy)]
    for f in features:
        g, props = f.get("geometry") or {}, f.get("properties") or {}
        if g.get("type") == "LineString":
            colour = (SERVICE if props.get("service") else DEADHEAD) if "service" in props else ROUTE
            label = html.escape(f"{props.get('seq', '')} {props.get('road', '')}".strip())
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="{3 if colour == SERVICE else 2}" '
                         f'points="{" ".join(xy(c[0], c[1]) for c in g["coordinates"])}"><title>{label}</title>'
                         "</polyline>")
    for f in features:
        g, props = f.get("geometry") or {}, f.get("properties") or {}
        if g.get("type") == "Point":
            x, y = xy(*g["coordinates"][:2]).split(",")
            depot = props.get("role") == "depot" or not props.get("seq")
            text = "D" if depot else str(props.get("seq"))
            parts.append(f'<circle cx="{x}" cy="{y}" r="{8 if depot else 7}" fill="{"#222" if depot else "#fff"}" '
                         f'stroke="#222"/><text x="{x}" y="{float(y) + 3.5:.1f}" font-size="9" text-anchor="middle" '
                         f'fill="{"#fff" if depot else "#222"}">{html.escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def key(kind: str | None) -> str:
    """What the map's marks mean for this kind of job."""
    streets = f'<span style="background:{STREET}"></span>other streets'
    if kind == "bins":
        return (f'<p class=key><span style="background:{ROUTE}"></span>the collection round; D depot, '
                f"numbers: the bins in the order to empty them{streets}</p>")
    return (f'<p class=key><span style="background:{SERVICE}"></span>spread<span style="background:{DEADHEAD}">'
            f"</span>drive without spreading; D depot, numbers: the order{streets}</p>")


def job_sheet(job: dict[str, Any], *, heading: str | None = None, streets: dict[str, Any] | None = None) -> str:
    """The whole page for a job (as GET /jobs/{id} gives it) or a route plan shaped like one,
    its map over `streets` (a basemap FeatureCollection) when given."""
    esc = html.escape
    title = heading or f"Job {job.get('job_id')}: {job.get('title', '')}"
    facts = [("Kind", job.get("kind")), ("State", job.get("state")), ("Assigned to", job.get("assigned_to")),
             ("Route", job.get("route_id")), ("Plan", job.get("plan_id")), ("Truck", job.get("truck")),
             ("Created", job.get("created_at")), ("Completed", job.get("completed_at")), ("Note", job.get("note"))]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in facts if v not in (None, ""))
    steps = "".join(
        f"<tr><td class=box>{'&#10003;' if s.get('done') else '&#9633;'}</td><td>{esc(str(s.get('seq', '')))}</td>"
        f"<td>{esc(str(s.get('text', '')))}</td></tr>" for s in job.get("steps", []))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:1em auto;padding:0 .5em;color:#222;
overflow-wrap:anywhere}}svg{{max-width:100%;height:auto}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}}.box{{width:1.5em;text-align:center;font-size:1.2em}}.lines div{{border-bottom:1px solid #999;
height:2em}}.key span{{display:inline-block;width:2em;height:.3em;margin:0 .4em .2em 1em}}
@media print{{body{{margin:0}}h2{{page-break-after:avoid}}svg,tr{{page-break-inside:avoid}}}}</style></head><body>
<h1>{esc(title)}</h1><table>{rows}</table>
<h2>Route</h2>{svg_map(job.get("geojson") or {}, streets=streets)}
{key(job.get("kind"))}
<h2>Steps</h2><table><tr><th></th><th>#</th><th>What to do</th></tr>{steps}</table>
<h2>Notes</h2><div class=lines><div></div><div></div><div></div></div>
<p>Signed: ______________________ &nbsp; Date and time finished: ______________________</p>
</body></html>"""
