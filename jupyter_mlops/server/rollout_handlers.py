"""REST handlers of rollouts and automations: an endpoint's rollout (its status, start, pause, resume, abort), every
rollout, and the automations with the actions they took. Each handler parses, calls one core verb, renders; the
core's errors (``InvalidInput`` 400, ``NotFound`` 404, ``Conflict`` 409) go out through the base handler.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from jupyter_mlops.server import models as m
from jupyter_mlops.server.handlers import MlopsHandler


def _rollout(record: Any) -> m.RolloutOut:
    return m.RolloutOut.model_validate(record.to_dict())


class RolloutHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.send(_rollout(await self.call(self.ws.rollouts.status, name)))

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        req = self.body(m.StartRolloutRequest)
        record = await self.call(self.ws.rollouts.start, name, **req.model_dump())
        self.mlops.watcher.nudge()
        self.send(_rollout(record), status=201)


class _RolloutVerbHandler(MlopsHandler):
    """Pause, resume and abort: each answers the rollout as it is after the verb (abort: once rolled back)."""

    verb = ""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        self.body(m.RequestModel)  # no body, or an empty one
        record = await self.call(getattr(self.ws.rollouts, self.verb), name)
        self.mlops.watcher.nudge()
        self.send(_rollout(record))


class RolloutPauseHandler(_RolloutVerbHandler):
    verb = "pause"


class RolloutResumeHandler(_RolloutVerbHandler):
    verb = "resume"


class RolloutAbortHandler(_RolloutVerbHandler):
    verb = "abort"


class RolloutsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        q = self.query(m.RolloutsQuery)
        records = await self.call(self.ws.rollouts.list, q.endpoint)
        self.send(m.RolloutList(rollouts=[_rollout(r) for r in records]))


class AutomationsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        records = await self.call(self.ws.automations.list)
        self.send(m.AutomationList(automations=[m.AutomationOut.model_validate(r.to_dict()) for r in records]))


class AutomationHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.send(m.AutomationOut.model_validate((await self.call(self.ws.automations.get, name)).to_dict()))

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        await self.call(self.ws.automations.delete, name)  # its recorded runs stay
        self.set_status(204)
        self.finish()


class AutomationRunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        q = self.query(m.AutomationRunsQuery)
        records = await self.call(self.ws.automations.runs, name, limit=q.limit)
        self.send(m.AutomationRunList(runs=[m.AutomationRunOut.model_validate(r.to_dict()) for r in records]))


ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("endpoints/{name}/rollout", RolloutHandler),
    ("endpoints/{name}/rollout/pause", RolloutPauseHandler),
    ("endpoints/{name}/rollout/resume", RolloutResumeHandler),
    ("endpoints/{name}/rollout/abort", RolloutAbortHandler),
    ("rollouts", RolloutsHandler),
    ("automations", AutomationsHandler),
    ("automations/{name}", AutomationHandler),
    ("automations/{name}/runs", AutomationRunsHandler),
]

__all__ = ["ROUTES"]
