"""The Endpoint dashboard as one Vega-Lite v5 spec: the same picture in a notebook (JupyterLab renders the
``application/vnd.vegalite.v5+json`` mime type natively) and in the Lab's main area (through the same renderer).

Four charts over time, one colour per deployment: request rate, error rate, p50/p99 latency, and the traffic
split as a stacked area (the mirrored share drawn dashed beside it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
MIME = "application/vnd.vegalite.v5+json"
WIDTH = 340  # two charts side by side fit a 1280-wide Lab with its sidebar open


def endpoint_spec(name: str, table: pd.DataFrame) -> dict[str, Any]:
    """The dashboard of endpoint ``name`` from its ``history()`` frame."""
    values = [
        {
            "time": row.time.isoformat(),
            "deployment": row.deployment,
            "request_rate": round(float(row.request_rate), 4),
            "error_rate": round(float(row.error_rate), 4),
            "p50_ms": None if row.p50_ms != row.p50_ms else row.p50_ms,  # NaN is not JSON
            "p99_ms": None if row.p99_ms != row.p99_ms else row.p99_ms,
            "traffic": int(row.traffic),
            "mirror": int(row.mirror),
        }
        for row in table.itertuples(index=False)
    ]
    x = {"field": "time", "type": "temporal", "title": None, "axis": {"format": "%H:%M:%S", "labelOverlap": True}}
    colour = {"field": "deployment", "type": "nominal", "title": "deployment"}

    def line(field: str, title: str, fmt: str) -> dict[str, Any]:
        return {
            "title": title,
            "width": WIDTH,
            "height": 140,
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": x,
                "y": {"field": field, "type": "quantitative", "title": None, "axis": {"format": fmt}},
                "color": colour,
                "tooltip": [x, colour, {"field": field, "type": "quantitative", "format": fmt}],
            },
        }

    latency = {
        "title": "latency (ms): p50 solid, p99 dashed",
        "width": WIDTH,
        "height": 140,
        "transform": [{"fold": ["p50_ms", "p99_ms"], "as": ["quantile", "ms"]}],
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": x,
            "y": {"field": "ms", "type": "quantitative", "title": None},
            "color": colour,
            "strokeDash": {"field": "quantile", "type": "nominal", "legend": None},
            "tooltip": [x, colour, {"field": "quantile"}, {"field": "ms", "type": "quantitative", "format": ".1f"}],
        },
    }
    split = {
        "title": "traffic split (%)",
        "width": WIDTH,
        "height": 140,
        "layer": [
            {
                "mark": {"type": "area", "interpolate": "step-after", "opacity": 0.8},
                "encoding": {
                    "x": x,
                    "y": {"field": "traffic", "type": "quantitative", "stack": "zero", "title": None},
                    "color": colour,
                    "tooltip": [x, colour, {"field": "traffic"}, {"field": "mirror"}],
                },
            },
            {
                "transform": [{"filter": "datum.mirror > 0"}],
                "mark": {"type": "line", "strokeDash": [4, 3], "interpolate": "step-after"},
                "encoding": {"x": x, "y": {"field": "mirror", "type": "quantitative"}, "color": colour},
            },
        ],
    }
    return {
        "$schema": SCHEMA,
        "title": f"endpoint {name}",
        "data": {"values": values},
        "vconcat": [
            {"hconcat": [line("request_rate", "requests per second", ".2f"), line("error_rate", "error rate", ".1%")]},
            {"hconcat": [latency, split]},
        ],
        "config": {"view": {"stroke": None}, "legend": {"orient": "bottom"}},
        "usermeta": {"embedOptions": {"renderer": "svg"}},  # marks a reader (and a test) can find in the page
    }


class EndpointChart:
    """An endpoint's dashboard in a notebook: Vega-Lite where the frontend renders it, a text summary elsewhere."""

    def __init__(self, name: str, history: pd.DataFrame) -> None:
        self.name = name
        self.history = history
        self.spec = endpoint_spec(name, history)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {MIME: self.spec, "text/plain": self.text()}

    def text(self) -> str:
        frame = self.history
        if not len(frame):
            return f"endpoint {self.name}: no figures yet (one is written per interval while it serves)"
        first, last = (f"{t:%Y-%m-%d %H:%M}" for t in (frame["time"].min(), frame["time"].max()))
        lines = [f"endpoint {self.name}: {frame['time'].nunique()} interval(s), {first} to {last}"]
        for deployment, part in frame.groupby("deployment", sort=True):
            p99 = part["p99_ms"].max()
            worst = "-" if p99 != p99 else f"{p99:.1f} ms"
            lines.append(
                f"  {deployment}: {int(part['requests'].sum())} requests, {int(part['errors'].sum())} errors, "
                f"worst p99 {worst}, now {int(part['traffic'].iloc[-1])}% of traffic"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()
