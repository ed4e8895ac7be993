"""REST handlers of a monitor's history: its figures as a series, with the chart the notebook shows for them.
Registered in ``handlers.ROUTES``; the same base handler, so the same auth (token, XSRF) and error translation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import tornado.web
from pydantic import Field

from jupyter_mlops.server import models as m
from jupyter_mlops.server.handlers import MlopsHandler

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


class HistoryQuery(m.RequestModel):
    since: str | None = Field(default=None, max_length=64, description="ISO 8601: windows that ended then or later")
    signal: str | None = Field(
        default=None, max_length=64, description="One signal: drift_score, prediction_drift, ..."
    )


def monitor_history(ws: Workspace, name: str, since: str | None, signal: str | None) -> m.MonitorHistory:
    """The figures, and the chart with the endpoint's changes marked; its points open their run's report in the
    Lab (``GET monitors/{name}/report?run=RUN_ID``)."""
    from jupyter_mlops.monitoring.charts import monitor_chart
    from jupyter_mlops.monitoring.history import endpoint_changes, frame_figures

    frame = ws.monitors.history(name, since=since, signal=signal)  # NotFound: 404; a bad time: 400
    figures = [m.MonitorFigureOut.model_validate(f.to_dict()) for f in frame_figures(frame)]
    changes = endpoint_changes(ws, ws.monitors.get(name).endpoint, since=since)
    chart = monitor_chart(frame, title=f"monitor {name}", changes=changes, clickable=True)
    return m.MonitorHistory(monitor=name, figures=figures, chart=chart)


class MonitorHistoryHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        q = self.query(HistoryQuery)
        self.send(await self.call(monitor_history, self.ws, name, q.since, q.signal))


ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("monitors/{name}/history", MonitorHistoryHandler),
]

__all__ = ["ROUTES", "monitor_history"]
