"""Plotly figures of the overview, built with plotly.graph_objects and shipped to the page as JSON.

Colours come from :class:`cctv_monitor.statuses.DeviceStatus` so charts, tiles and badges agree. The JSON
goes into a ``data-figure`` attribute (escaped by Jinja) and ``static/charts.js`` draws it with the
plotly.js served by the app, so no inline script is needed (strict CSP) and nothing loads from a CDN.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date
from typing import Any, Callable, Mapping, Sequence

import plotly.graph_objects as go

from cctv_monitor.statuses import DeviceStatus
from dashboards.i18n import rule_label, translate
from dashboards.queries import AGENCY_BAR_STATUSES, compliance_rate

FONT = "Sarabun, Laksaman, 'TH Sarabun New', 'Noto Sans Thai', Garuda, sans-serif"


def _layout(fig: go.Figure, title: str, *, height: int = 340) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.01}, height=height, margin={"l": 50, "r": 20, "t": 50, "b": 50},
                      font={"family": FONT, "size": 14}, paper_bgcolor="white", plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.2})
    return fig


#: Figures kept per (builder, language, input data); building one with plotly costs 20-150 ms of CPU
#: (validation of every property, then serialisation) while the same counts repeat for every user until
#: a scan or an edit changes them. Keyed by the data itself, an entry can never be stale.
FIGURE_CACHE_SIZE = 256
_cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()
_cache_lock = threading.Lock()


def to_json(fig: go.Figure) -> str:
    """Figure as plotly JSON for the ``data-figure`` attribute."""
    return fig.to_json()


def _frozen(value: Any) -> Any:
    """``value`` with mappings as item tuples in their order (the order shapes the figure), for a cache key."""
    if isinstance(value, Mapping):
        return tuple((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def cached_json(build: Callable[..., go.Figure], data: Any, lang: str, *args: Any) -> str:
    """``to_json(build(data, *args, lang))``, reused while ``data``, ``args`` and ``lang`` are the same."""
    key = (build.__name__, lang, repr(_frozen([data, args])))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    text = to_json(build(data, *args, lang))
    with _cache_lock:
        _cache[key] = text
        while len(_cache) > FIGURE_CACHE_SIZE:
            _cache.popitem(last=False)
    return text


def agency_bars(rows: Sequence[Mapping[str, Any]], lang: str) -> go.Figure:
    """Stacked bars per agency: compliant / non-compliant / unregistered / missing / offline / unreachable."""
    names = [(r["name_th"] if lang == "th" else (r["name_en"] or r["name_th"])) or translate("unknown", lang)
             for r in rows]
    fig = go.Figure()
    for status in AGENCY_BAR_STATUSES:
        st = DeviceStatus(status)
        fig.add_trace(go.Bar(name=st.label(lang), x=names, y=[r["counts"].get(status, 0) for r in rows],
                             marker_color=st.color))
    fig.update_layout(barmode="stack", yaxis_title=translate("devices", lang))
    return _layout(fig, translate("chart_by_agency", lang), height=380)


def trend(series: Mapping[date, Mapping[str, int]], lang: str) -> go.Figure:
    """Compliance rate per day (line) over devices per status per day (stacked areas)."""
    days = list(series)
    fig = go.Figure()
    for status in DeviceStatus.group("evaluated"):
        st = DeviceStatus(status)
        fig.add_trace(go.Scatter(name=st.label(lang), x=days, y=[series[d].get(status, 0) for d in days],
                                 # one day (the first scan) has no area to fill: show its stacked points
                                 mode="lines+markers" if len(days) == 1 else "lines", stackgroup="devices",
                                 line={"width": 0.5, "color": st.color}, marker={"size": 9}))
    fig.add_trace(go.Scatter(name=translate("compliance_rate", lang), x=days,
                             y=[compliance_rate(series[d]) for d in days], mode="lines+markers" if len(days) < 40
                             else "lines", yaxis="y2", line={"color": "#1565c0", "width": 2}))
    fig.update_layout(yaxis={"title": translate("devices", lang)},
                      yaxis2={"title": translate("compliance_rate", lang), "overlaying": "y", "side": "right",
                              "range": [0, 100]},
                      xaxis={"type": "date"})
    if lang == "th":
        # Axis ticks in the Buddhist era: plotly has no BE calendar, so label ticks ourselves.
        ticks = _be_ticks(days)
        if ticks:
            fig.update_xaxes(tickvals=[t[0] for t in ticks], ticktext=[t[1] for t in ticks])
    return _layout(fig, translate("chart_trend", lang), height=380)


def _be_ticks(days: Sequence[date]) -> list[tuple[date, str]]:
    from dashboards.i18n import THAI_MONTHS_SHORT

    if not days:
        return []
    first, last = days[0], days[-1]
    span = (last - first).days
    ticks = []
    if span <= 31:
        step = max(1, span // 8 or 1)
        for i, d in enumerate(days):
            if i % step == 0:
                ticks.append((d, f"{d.day} {THAI_MONTHS_SHORT[d.month - 1]} {(d.year + 543) % 100:02d}"))
        return ticks
    cursor = date(first.year, first.month, 1)
    step = 1 if span <= 200 else 2
    while cursor <= last:
        if cursor >= first:
            ticks.append((cursor, f"{THAI_MONTHS_SHORT[cursor.month - 1]} {(cursor.year + 543) % 100:02d}"))
        month = cursor.month - 1 + step
        cursor = date(cursor.year + month // 12, month % 12 + 1, 1)
    return ticks


def pie(rows: Sequence[tuple[str | None, int]], title_key: str, lang: str) -> go.Figure:
    """Donut of a mix (resolution or codec)."""
    labels = [label or translate("unknown", lang) for label, _ in rows]
    fig = go.Figure(go.Pie(labels=labels, values=[c for _, c in rows], hole=0.45, sort=False,
                           textinfo="label+percent"))
    fig.update_layout(showlegend=False)
    return _layout(fig, translate(title_key, lang), height=320)


def findings_bars(rows: Sequence[tuple[str, int]], lang: str) -> go.Figure:
    """Horizontal bars of the most frequent active findings."""
    rows = list(reversed(rows))
    fig = go.Figure(go.Bar(x=[c for _, c in rows], y=[rule_label(r, lang) for r, _ in rows], orientation="h",
                           marker_color="#c62828", customdata=[r for r, _ in rows]))
    fig.update_layout(xaxis_title=translate("count", lang), margin={"l": 260})
    fig = _layout(fig, translate("chart_findings", lang), height=340)
    fig.update_layout(margin={"l": 260})
    return fig
