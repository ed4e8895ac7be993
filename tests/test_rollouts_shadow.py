"""Rollouts with a shadow phase: real endpoints, real traffic, a real controller; every wait is on the record.

Blue answers a label from ``x``; a disagreeing green answers another label for every fifth ``x`` (20 %), a healthy
green the same label. The shadow time is a second or two and ``min_requests`` small.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from jupyter_mlops import Workspace
from tests.waiting import eventually

DONE = ("completed", "rolled_back", "aborted")
_names = itertools.count()


def _models() -> tuple[object, object]:
    import mlflow.pyfunc

    class Label(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [int(x) % 3 for x in model_input["x"]]

    class OffLabel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [(int(x) % 3 + 1) % 3 if int(x) % 5 == 0 else int(x) % 3 for x in model_input["x"]]

    return Label(), OffLabel()


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    os.environ["MLOPS_USER"] = "tester"
    workspace = Workspace(tmp_path_factory.mktemp("rollouts-shadow") / "ws")
    label, off = _models()
    workspace.models.register(label, "label")
    workspace.models.register(off, "offlabel")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture
def endpoint(ws) -> Iterator[str]:
    name = f"shadowroll-{next(_names)}"
    ep = ws.endpoints.create(name, auth="none")
    try:
        ep.deploy("blue", "label:1")
        ep.set_traffic({"blue": 100})
        yield name
    finally:
        ws.endpoints.delete(name)


class Traffic:
    """Requests with x = 0, 1, 2, ... from a background thread; records which deployment answered each."""

    def __init__(self, ws: Workspace, endpoint: str) -> None:
        self.url = ws.endpoints._record(endpoint).url + "/score"
        self.answered: list[str | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            body = json.dumps({"dataframe_records": [{"x": float(i)}]}).encode()
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    self.answered.append(response.headers.get("mlops-model-deployment"))
            except (urllib.error.HTTPError, OSError):
                self.answered.append(None)


def _ended(ws: Workspace, endpoint: str, timeout: float = 120.0):
    record = eventually(lambda: (r := ws.rollouts.status(endpoint)).state in DONE and r, timeout=timeout, interval=0.2)
    assert record, ws.rollouts.status(endpoint)
    return record


def _events(ws: Workspace, endpoint: str, kind: str) -> list:
    return [e for e in ws.events.tail(types=[kind], limit=500) if e.data.get("endpointName") == endpoint]


def test_a_green_that_disagrees_never_gets_live_traffic_and_is_rolled_back(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "offlabel:1")
    with Traffic(ws, endpoint) as traffic:
        started = ws.rollouts.start(
            endpoint, "green", steps=[50, 100], bake="1s", shadow="1s", guards={"agreement": 0.95, "min_requests": 40}
        )
        assert started.state == "shadow" and started.percent == 0
        mirrored = eventually(lambda: ws.endpoints.show(endpoint).mirror == {"green": 50}, timeout=60)
        done = _ended(ws, endpoint)
    assert mirrored or done.state == "rolled_back"
    assert done.state == "rolled_back" and "agreement" in done.reason, done
    assert done.figures["phase"] == "shadow" and 0.65 <= done.figures["green"]["agreement_ratio"] <= 0.92
    assert "green" not in traffic.answered and traffic.answered.count("blue") > 40
    info = ws.endpoints.show(endpoint)
    assert info.traffic == {"blue": 100} and info.mirror == {}
    (event,) = _events(ws, endpoint, "rollout.rolled_back")
    assert event.data["guard"] == "agreement" and event.data["threshold"] == 0.95
    assert event.data["figure"] == pytest.approx(done.figures["green"]["agreement_ratio"])
    assert _events(ws, endpoint, "rollout.step") == []  # never a live step


def test_a_green_that_agrees_passes_the_shadow_phase_and_completes(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "label:1")
    with Traffic(ws, endpoint) as traffic:
        started = ws.rollouts.start(
            endpoint, "green", steps=[50, 100], bake="1s", shadow="1s", guards={"min_requests": 20}
        )
        assert started.state == "shadow" and started.guards["agreement"] == 0.95
        judged = eventually(
            lambda: (r := ws.rollouts.status(endpoint)).figures and r.figures.get("phase") == "shadow" and r, timeout=60
        )
        assert judged and judged.figures["green"]["kind"] == "classifier"
        done = _ended(ws, endpoint)
    assert done.state == "completed", done
    assert ws.endpoints.show(endpoint).traffic == {"green": 100} and ws.endpoints.show(endpoint).mirror == {}
    assert sorted(e.data["percent"] for e in _events(ws, endpoint, "rollout.step")) == [50, 100]
    assert "green" in traffic.answered
