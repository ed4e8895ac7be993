"""REST handlers of the release gates: a version's release state (the gate's verdict, the approval), the approval
verbs, promotion (409 with what the policy misses) and the comparison of two versions. Registered in
``handlers.ROUTES``; the same base handler, so the same auth (token, XSRF) and error translation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tornado.web

from jupyter_mlops import _mlflow
from jupyter_mlops.server import models as m
from jupyter_mlops.server.handlers import MlopsHandler

if TYPE_CHECKING:
    from jupyter_mlops.records import ModelVersion
    from jupyter_mlops.workspace import Workspace


def release_state(version: ModelVersion, tags: dict[str, str]) -> m.ReleaseStateOut:
    """A version's gate verdict and approval, read from its tags (``tags``: all of them, ``mlops.*`` included)."""
    from jupyter_mlops.release import approvals as ap
    from jupyter_mlops.release.evaluate import GATE_AT_TAG, GATE_BASELINE_TAG, GATE_PASSED_TAG, GATE_RUN_TAG

    passed = tags.get(GATE_PASSED_TAG)
    baseline = tags.get(GATE_BASELINE_TAG)
    gate = m.GateOut(
        verdict="passed" if passed == "true" else "failed" if passed == "false" else "none",
        run_id=tags.get(GATE_RUN_TAG) or None,
        baseline=None if baseline in (None, "", "none") else baseline,
        evaluated_at=tags.get(GATE_AT_TAG) or None,
    )
    approval = m.ApprovalOut(
        model=version.name,
        version=version.version,
        status=tags.get(ap.STATUS_TAG),
        requested_by=tags.get(ap.REQUESTED_BY_TAG),
        requested_at=tags.get(ap.REQUESTED_AT_TAG),
        reason=tags.get(ap.REASON_TAG) or None,
        decided_by=tags.get(ap.DECIDED_BY_TAG),
        decided_at=tags.get(ap.DECIDED_AT_TAG),
        comment=tags.get(ap.COMMENT_TAG) or None,
    )
    return m.ReleaseStateOut(
        model=version.name, version=version.version, aliases=version.aliases, gate=gate, approval=approval
    )


def _one(ws: Workspace, name: str, version: str) -> m.ReleaseStateOut:
    from jupyter_mlops.release.approvals import version_tags

    record = ws.models.get(name, version)
    return release_state(record, version_tags(ws, record))


def _all(ws: Workspace, name: str) -> m.ReleaseStateList:
    """Every version of ``name`` in one registry search (the Models panel shows them all)."""
    from jupyter_mlops.registry import _version_record

    model = ws.models.get_model(name)  # 404 for an unknown model
    aliases: dict[int, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(version, []).append(alias)
    quoted = model.name.replace("\\", "\\\\").replace("'", "\\'")
    with _mlflow.translated_errors(f"model {name!r}"):
        found = ws.client.search_model_versions(f"name = '{quoted}'")
    states = []
    for raw in sorted(found, key=lambda v: int(v.version)):
        if raw.name != model.name:
            continue
        record = _version_record(raw, sorted(aliases.get(int(raw.version), [])))
        states.append(release_state(record, dict(raw.tags or {})))
    return m.ReleaseStateList(versions=states)


class ModelReleaseHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.send(await self.call(_all, self.ws, name))


class VersionReleaseHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str, version: str) -> None:
        self.send(await self.call(_one, self.ws, name, version))


class _DecisionHandler(MlopsHandler):
    """The approval verbs: each answers the version's release state after the change."""

    async def decide(self, verb: str, name: str, version: str, text: dict[str, Any]) -> None:
        def change() -> m.ReleaseStateOut:
            record = self.ws.models.get(name, version)
            getattr(self.ws.release, verb)(record.name, record.version, **text)
            return _one(self.ws, record.name, str(record.version))

        state = await self.call(change)
        self.mlops.watcher.nudge()
        self.send(state)


class ApprovalRequestHandler(_DecisionHandler):
    @tornado.web.authenticated
    async def post(self, name: str, version: str) -> None:
        await self.decide("request_approval", name, version, {"reason": self.body(m.ApprovalRequest).reason})


class ApproveHandler(_DecisionHandler):
    @tornado.web.authenticated
    async def post(self, name: str, version: str) -> None:
        await self.decide("approve", name, version, {"comment": self.body(m.DecisionRequest).comment})


class RejectHandler(_DecisionHandler):
    @tornado.web.authenticated
    async def post(self, name: str, version: str) -> None:
        await self.decide("reject", name, version, {"comment": self.body(m.DecisionRequest).comment})


class PromoteHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str, version: str) -> None:
        req = self.body(m.PromoteRequest)

        def promote() -> Any:
            record = self.ws.models.get(name, version)
            return self.ws.release.promote(record.name, record.version, req.alias, reason=req.reason)

        done = await self.call(promote)  # PromotionRefused is a Conflict: 409 with what is missing
        self.mlops.watcher.nudge()
        self.send(m.PromotionOut.model_validate(done.to_dict()))


def _reference(name: str, text: str) -> str:
    """``4`` → ``name:4``, ``champion`` → ``name@champion``; a full reference stays as it is."""
    text = text.strip()
    if text.isdigit() or text == "latest":
        return f"{name}:{text}"
    if ":" in text or "@" in text:
        return text
    return f"{name}@{text}"


class CompareHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        q = self.query(m.CompareQuery)
        report = await self.call(
            self.ws.release.compare, _reference(name, q.a), _reference(name, q.b), unchanged=q.unchanged
        )
        self.send(m.ComparisonOut.model_validate(report.to_dict()))


ROUTES: list[tuple[str, type[MlopsHandler]]] = [
    ("models/{name}/release", ModelReleaseHandler),
    ("models/{name}/compare", CompareHandler),
    ("models/{name}/versions/{version}/release", VersionReleaseHandler),
    ("models/{name}/versions/{version}/approval", ApprovalRequestHandler),
    ("models/{name}/versions/{version}/approve", ApproveHandler),
    ("models/{name}/versions/{version}/reject", RejectHandler),
    ("models/{name}/versions/{version}/promote", PromoteHandler),
]

__all__ = ["ROUTES", "release_state"]
