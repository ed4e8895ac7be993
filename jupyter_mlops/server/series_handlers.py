"""REST handler of an endpoint's live figures over time, with the dashboard chart the notebook shows for them.
Registered in ``handlers.ROUTES``; the same base handler, so the same auth (token, XSRF) and error translation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import tornado.web
from pydantic import Field

from jupyter_mlops.server import models as m
from jupyter_mlops.server.handlers import MlopsHandler

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


class SeriesQuery(m.RequestModel):
    since: datetime | None = Field(default=None, description="ISO 8601: the intervals that ended then or later")


def endpoint_history(ws: Workspace, name: str, since: datetime | None) -> m.EndpointHistory:
    from jupyter_mlops.deploy import series
    from jupyter_mlops.deploy.dashboard import endpoint_spec

    found = ws.endpoints.points(name, since=since)  # NotFound: 404
    return m.EndpointHistory(
        endpoint=name,
        points=[m.LivePointOut.model_validate(p.to_dict()) for p in found],
        chart=endpoint_spec(name, series.frame(found)),
    )


class EndpointHistoryHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        q = self.query(SeriesQuery)
        self.send(await self.call(endpoint_history, self.ws, name, q.since))


ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("endpoints/{name}/history", EndpointHistoryHandler),
]
