"""The monitor chart, once, as a Vega-Lite v5 spec: the notebook renders it (JupyterLab's built-in Vega-Lite
renderer) and the Lab's panel can draw the same dict from the REST history, so both faces show the same chart.

One line chart per signal over time (a line per feature), its threshold as a rule, its alerts as red points, the
endpoint's deployments and traffic changes as labelled vertical rules, and a heatmap of the per-feature drift
scores (time by feature). The history's rows are inlined once, as ``values``. In the Lab's dashboard a click on
a point opens that run's evidently report (``clickable`` draws them with a pointer).
"""

from __future__ import annotations

from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
MIME = "application/vnd.vegalite.v5+json"
WIDTH = 560


def rows(history: Any) -> list[dict[str, Any]]:
    """The history frame's rows as JSON values (ISO times, no NaN)."""
    out = []
    for time, run_id, signal, feature, value, threshold, alert in history[
        ["time", "run_id", "signal", "feature", "value", "threshold", "alert"]
    ].itertuples(index=False):
        out.append(
            {
                "time": time.isoformat(),
                "run_id": run_id,
                "signal": signal,
                "feature": feature if isinstance(feature, str) else "(window)",
                "value": float(value),
                "threshold": None if threshold != threshold or threshold is None else float(threshold),
                "alert": bool(alert),
            }
        )
    return out


def monitor_chart(
    history: Any,
    *,
    title: str | None = None,
    width: int = WIDTH,
    changes: list[Any] | None = None,
    clickable: bool = False,
) -> dict[str, Any]:
    """The Vega-Lite v5 spec of a monitor's history (``ws.monitors.history(name)``); ``changes``: the endpoint's
    (``history.endpoint_changes``), drawn where they fall in the history's time span."""
    values = rows(history)
    signals = list(dict.fromkeys(v["signal"] for v in values))
    marks = _changes(changes or [], history)
    panels: list[dict[str, Any]] = [_signal_chart(s, width, marks, clickable) for s in signals]
    if any(v["signal"] == "drift_score" for v in values):
        panels.append(_heatmap(width))
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "data": {"values": values},
        "vconcat": panels or [{"mark": "text", "encoding": {"text": {"value": "No run yet"}}}],
        "resolve": {"scale": {"color": "independent"}},
        "usermeta": {"embedOptions": {"renderer": "svg"}},  # marks a reader (and a test) can find in the page
    }
    if title:
        spec["title"] = title
    return spec


def _changes(changes: list[Any], history: Any) -> list[dict[str, Any]]:
    """The changes inside the history's time span, as data values of the annotation layer."""
    if not len(history) or not changes:
        return []
    first, last = history["time"].min(), history["time"].max()
    return [{"time": c.time.isoformat(), "kind": c.kind, "label": c.label} for c in changes if first <= c.time <= last]


def _signal_chart(signal: str, width: int, changes: list[dict[str, Any]], clickable: bool) -> dict[str, Any]:
    x = {"field": "time", "type": "temporal", "title": None, "axis": {"format": "%d %b %H:%M", "labelOverlap": True}}
    y = {"field": "value", "type": "quantitative", "title": signal}
    tooltip = [{"field": f, "type": t} for f, t in _TOOLTIP]
    points: dict[str, Any] = {"x": x, "y": y, "color": {"field": "feature", "type": "nominal"}, "tooltip": tooltip}
    annotations: list[dict[str, Any]] = []
    if changes:
        at = {"field": "time", "type": "temporal"}
        annotations = [
            {
                "data": {"values": changes},
                "mark": {"type": "rule", "color": "#7b61ff", "strokeWidth": 1.5},
                "encoding": {"x": at, "tooltip": [{"field": "time", "type": "temporal"}, {"field": "label"}]},
            },
            {
                "data": {"values": changes},
                "mark": {"type": "text", "angle": 270, "align": "right", "baseline": "bottom", "dy": -3, "y": 4},
                "encoding": {"x": at, "text": {"field": "label"}, "color": {"value": "#7b61ff"}},
            },
        ]
    return {
        "title": signal,
        "width": width,
        "height": 140,
        "transform": [{"filter": {"field": "signal", "equal": signal}}],
        "layer": [
            {"mark": {"type": "line"}, "encoding": {k: points[k] for k in ("x", "y", "color")}},
            {
                "mark": {"type": "point", "filled": True, "cursor": "pointer" if clickable else "default"},
                "encoding": points,
            },
            {
                "transform": [{"filter": "datum.threshold != null"}],
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "gray"},
                "encoding": {"y": {"field": "threshold", "type": "quantitative", "aggregate": "max"}},
            },
            {
                "transform": [{"filter": "datum.alert"}],
                "mark": {"type": "point", "color": "red", "size": 80, "filled": True},
                "encoding": {"x": x, "y": y, "tooltip": tooltip},
            },
            *annotations,
        ],
    }


def _heatmap(width: int) -> dict[str, Any]:
    return {
        "title": "drift score per feature",
        "width": width,
        "transform": [{"filter": {"field": "signal", "equal": "drift_score"}}],
        "mark": "rect",
        "encoding": {
            "x": {"field": "time", "type": "ordinal", "timeUnit": "yearmonthdatehoursminutesseconds", "title": None},
            "y": {"field": "feature", "type": "nominal"},
            "color": {"field": "value", "type": "quantitative", "title": "score"},
            "tooltip": [{"field": f, "type": t} for f, t in _TOOLTIP],
        },
    }


_TOOLTIP = (("time", "temporal"), ("feature", "nominal"), ("value", "quantitative"), ("threshold", "quantitative"))


class MonitorChart:
    """A monitor's chart in a notebook: Vega-Lite where the frontend renders it, a text summary elsewhere."""

    def __init__(self, name: str, history: Any, changes: list[Any] | None = None) -> None:
        self.name = name
        self.history = history
        self.spec = monitor_chart(history, title=f"monitor {name}", changes=changes)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {MIME: self.spec, "text/plain": self.text()}

    def text(self) -> str:
        frame = self.history
        if not len(frame):
            return f"monitor {self.name}: no run yet"
        runs = frame["run_id"].nunique()
        alerts = frame[frame["alert"]]
        first, last = (f"{t:%Y-%m-%d %H:%M}" for t in (frame["time"].min(), frame["time"].max()))
        lines = [f"monitor {self.name}: {runs} run(s), {first} to {last}"]
        for signal, part in frame.groupby("signal", sort=False):
            last = part[part["time"] == part["time"].max()]
            lines.append(f"  {signal}: last {last['value'].max():.4g}, {int(part['alert'].sum())} alert(s)")
        lines.append(f"  {len(alerts)} alert(s) in all")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()
