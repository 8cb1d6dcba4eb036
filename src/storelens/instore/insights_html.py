"""The insights report as one HTML file a manager can mail: nothing to fetch, nothing to install.

Heatmaps are embedded as base64 PNG data URIs and charts are inline SVG drawn here,
so the file opens the same offline, in a mail client's preview or years later.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import timedelta
from html import escape
from zoneinfo import ZoneInfo

from storelens.instore.insights import StoreInsights
from storelens.instore.zone_traffic import ZoneTraffic

__all__ = ["KIND_TITLES", "HeatPicture", "insights_html", "visits_sales_svg"]

HeatPicture = tuple[str, bytes]
"""(caption, PNG bytes)."""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;
max-width:1100px;padding:16px;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%;font-size:.9rem;display:block;overflow-x:auto}
th,td{padding:4px 8px;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
.finding{padding:8px 12px;margin:8px 0;border-left:4px solid #888;background:#f7f7f7}
.high_traffic_low_sales{border-color:#c0392b}.cold_zone{border-color:#2874a6}
.point_of_interest{border-color:#b9770e}.new_product_spot{border-color:#1e8449}
.kind{font-size:.75rem;text-transform:uppercase;color:#666}
img{max-width:100%;height:auto;border:1px solid #ddd}
figure{margin:12px 0}figcaption{font-size:.85rem;color:#555}
"""

KIND_TITLES = {
    "high_traffic_low_sales": "High traffic, low sales",
    "cold_zone": "Cold zone",
    "point_of_interest": "Point of interest",
    "new_product_spot": "Where a new product is seen most",
}


def _num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def visits_sales_svg(rows: Sequence[ZoneTraffic], width: int = 640) -> str:
    """Horizontal bars: visits per zone, with units sold per 100 visits written beside them."""
    shown = [r for r in rows if r.visits or r.units]
    if not shown:
        return ""
    bar_h, label_w, gap = 18, 170, 6
    top = max(r.visits for r in shown) or 1
    span = width - label_w - 150
    height = len(shown) * (bar_h + gap) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-label="Visits and sales per zone">',
        f'<text x="{label_w}" y="12" font-size="11" fill="#555">visits (bar) and units '
        "sold per 100 visits</text>",
    ]
    for i, r in enumerate(shown):
        y = 20 + i * (bar_h + gap)
        w = max(1, round(span * r.visits / top))
        rate = r.sales_per_100_visits
        note = f"{r.visits:,}" + ("" if rate is None else f" · {rate:.1f} units/100")
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{escape(r.name)}</text>"
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#5b8def"/>'
            f'<text x="{label_w + w + 6}" y="{y + 13}" font-size="11" fill="#333">'
            f"{escape(note)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(rows: Sequence[ZoneTraffic], with_period: bool) -> str:
    heads = ["zone", *(["period"] if with_period else [])]
    heads += ["visits", "unique", "mean dwell s", "median dwell s", "passers-by", "stoppers"]
    heads += ["units", "revenue", "units/100 visits", "revenue/visitor-min"]
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in heads), "</tr></thead><tbody>"]
    for r in rows:
        cells = [escape(r.name), *([escape(r.period)] if with_period else [])]
        cells += [_num(r.visits), _num(r.unique_visitors), _num(r.mean_dwell_s)]
        cells += [_num(r.median_dwell_s), _num(r.passers_by), _num(r.stoppers)]
        cells += [_num(r.units), _num(r.revenue, 2), _num(r.sales_per_100_visits)]
        cells += [_num(r.revenue_per_visitor_minute, 2)]
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def insights_html(
    insights: StoreInsights, heat: Sequence[HeatPicture] = (), heat_note: str | None = None
) -> str:
    """The whole report; ``heat`` pictures are embedded in the order given."""
    last_day = (insights.until - timedelta(days=1)).astimezone(ZoneInfo(insights.timezone))
    period = f"{insights.since:%Y-%m-%d} to {last_day:%Y-%m-%d}"
    title = f"{insights.store_name}: store insights, {period}"
    body = [f"<h1>{escape(title)}</h1>"]
    body.append(
        f"<p>Times in {escape(insights.timezone)}. A stopper stayed "
        f"{insights.settings.stop_s:g} s or more; staff are left out.</p>"
    )
    body.append("<h2>Findings</h2>")
    if not insights.findings:
        body.append("<p>Nothing stands out in this period.</p>")
    for f in insights.findings:
        body.append(
            f'<div class="finding {f.kind}"><div class="kind">{KIND_TITLES[f.kind]}</div>'
            f"{escape(f.sentence)}</div>"
        )
    body.append("<h2>Zone traffic against sales</h2>")
    body.append(visits_sales_svg(insights.zones))
    body.append(_table(insights.zones, with_period=False))
    body.append("<h2>Where people spend time</h2>")
    if heat_note:
        body.append(f"<p>{escape(heat_note)}</p>")
    for caption, png in heat:
        data = base64.b64encode(png).decode("ascii")
        body.append(
            f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    body.append("<h2>By daypart</h2>")
    body.append(_table([r for r in insights.by_daypart if r.visits or r.units], True))
    body.append("<h2>By day</h2>")
    body.append(_table([r for r in insights.by_day if r.visits or r.units], True))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
