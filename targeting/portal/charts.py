"""The portal's trend charts as plotly figure specifications (plain JSON: `data` and
`layout`), drawn in the browser by the plotly.js bundle written once beside the pages.

The figures are built as dictionaries rather than through `plotly.graph_objects`, whose
validation costs tens of milliseconds a figure, which a portal of a thousand charts cannot spend;
the tests check each kind against plotly's own schema.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

# ColorBrewer Dark2 and Set2 (colour-blind safe in the first few), then plotly's defaults
PALETTE = (
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf", "#bcbd22",
)  # fmt: skip
PLACE_COLOUR, PARENT_COLOUR, FORCE_COLOUR = "#08519c", "#6baed6", "#969696"
# origins drawn at first on a page's index chart (the rest are one click away in the legend)
SHOWN_ORIGINS = 6


def _values(series: pd.Series) -> list[float | None]:
    """JSON numbers, with None (a gap in the line) for a withheld or missing value."""
    values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
    return [None if math.isnan(v) else float(v) for v in values]


def _layout(title: str, y_title: str, *, y_range: Sequence[float] | None = None,
            percent: bool = False) -> dict[str, Any]:  # fmt: skip
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 15}, "x": 0, "xanchor": "left"},
        "margin": {"l": 52, "r": 12, "t": 40, "b": 40},
        "height": 300,
        "hovermode": "x unified",
        "xaxis": {"type": "date", "tickformat": "%b %Y", "showgrid": False},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", "zeroline": True},
        "legend": {"orientation": "h", "y": -0.2},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    if y_range is not None:
        layout["yaxis"]["range"] = list(y_range)
    if percent:
        layout["yaxis"]["tickformat"] = ".0%"
    return layout


def _line(dates: Sequence[str], values: pd.Series, *, name: str, colour: str,
          dash: str = "solid", visible: bool | str = True, hover: str = ".1f") -> dict[str, Any]:  # fmt: skip
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": list(dates),
        "y": _values(values),
        "line": {"color": colour, "width": 3 if dash == "solid" else 2, "dash": dash},
        "marker": {"size": 6},
        "visible": visible,
        "connectgaps": False,
        "hovertemplate": f"%{{y:{hover}}}",
    }


def measure_figure(
    lines: Sequence[tuple[str, pd.Series, str]],
    *,
    dates: Sequence[str],
    title: str,
    y_title: str,
    percent: bool = False,
) -> dict[str, Any]:
    """One measure over time for a place and its comparators: `lines` are (name, values by
    date, colour); the first is the place's own, solid; the others dotted."""
    data = [
        _line(dates, values, name=name, colour=colour, dash="solid" if i == 0 else "dot",
              hover=".1%" if percent else ".1f")
        for i, (name, values, colour) in enumerate(lines)
    ]  # fmt: skip
    return {"data": data, "layout": _layout(title, y_title, percent=percent)}


def index_figure(by_origin: pd.DataFrame, *, dates: Sequence[str], title: str) -> dict[str, Any]:
    """The representation index of each origin over time (a column per origin, a row per date),
    with parity (100) marked; the first `SHOWN_ORIGINS` columns are drawn, the rest are in the
    legend, one click away."""
    data = [
        _line(dates, by_origin[origin], name=str(origin), colour=PALETTE[i % len(PALETTE)],
              visible=True if i < SHOWN_ORIGINS else "legendonly", hover=".0f")
        for i, origin in enumerate(by_origin.columns)
    ]  # fmt: skip
    layout = _layout(title, "index (100 = parity)")
    layout["height"] = 380
    layout["shapes"] = [{
        "type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": 100, "y1": 100,
        "line": {"color": "#333333", "width": 1, "dash": "dash"},
    }]  # fmt: skip
    layout["hovermode"] = "closest"
    return {"data": data, "layout": layout}


def visits_figure(planned: pd.Series, visited: pd.Series, *, dates: Sequence[str],
                  colour: str) -> dict[str, Any]:  # fmt: skip
    """Hotspots planned by each run (bars; a reconstructed date has none) and hotspots visited
    by each date (a line, where the runs had a visited log)."""
    data: list[dict[str, Any]] = [
        {"type": "bar", "name": "planned that week", "x": list(dates), "y": _values(planned),
         "marker": {"color": colour}, "hovertemplate": "%{y:.0f}"},
    ]  # fmt: skip
    if visited.notna().any():
        data.append(_line(dates, visited, name="visited by then", colour=PALETTE[1], hover=".0f"))
    layout = _layout("Hotspots planned and visited", "hotspots")
    layout["hovermode"] = "x unified"
    return {"data": data, "layout": layout}
