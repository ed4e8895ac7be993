"""Rollouts with real endpoints, real traffic from a background thread and a real controller process.

Bake times are a second or two and ``min_requests`` small; every wait is on the rollout's record.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace
from jupyter_mlops.cli import execute, parse
from jupyter_mlops.exceptions import Conflict
from jupyter_mlops.render import to_json
from tests.waiting import eventually, wait_gone

DONE = ("completed", "rolled_back", "aborted")
_names = itertools.count()


def _models() -> tuple[object, object]:
    """A doubler, and one that fails for a negative x (defined here so that they are saved by value)."""
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return (model_input["x"] * 2).tolist()

    class Flaky(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if (model_input["x"] < 0).any():
                raise RuntimeError("negative input")
            return (model_input["x"] * 2).tolist()

    return Doubler(), Flaky()


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    os.environ["MLOPS_USER"] = "tester"
    workspace = Workspace(tmp_path_factory.mktemp("rollouts") / "ws")
    doubler, flaky = _models()
    workspace.models.register(doubler, "calc")  # 1: blue
    workspace.models.register(doubler, "calc")  # 2: a healthy green
    workspace.models.register(flaky, "flaky")
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


@pytest.fixture
def endpoint(ws) -> Iterator[str]:
    """An endpoint whose blue serves all live traffic; deleted afterwards (its controller then ends by itself)."""
    name = f"roll-{next(_names)}"
    ep = ws.endpoints.create(name, auth="none")
    try:
        ep.deploy("blue", "calc:1")
        ep.set_traffic({"blue": 100})
        yield name
    finally:
        ws.endpoints.delete(name)


class Traffic:
    """Requests from a background thread until stopped; every ``bad_every``-th one has x = -1."""

    def __init__(self, ws: Workspace, endpoint: str, bad_every: int = 0) -> None:
        self.url = ws.endpoints._record(endpoint).url + "/score"
        self.bad_every = bad_every
        self.answers: list[tuple[int, str | None, float]] = []  # (status, deployment, x)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        for i in itertools.count(1):
            if self._stop.is_set():
                return
            self.answers.append(self.send(-1.0 if self.bad_every and i % self.bad_every == 0 else 1.0))

    def send(self, x: float) -> tuple[int, str | None, float]:
        body = json.dumps({"dataframe_records": [{"x": x}]}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("mlops-model-deployment"), x
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("mlops-model-deployment"), x
        except OSError:
            return 0, None, x


def _ended(ws: Workspace, endpoint: str, timeout: float = 120.0):
    record = eventually(lambda: (r := ws.rollouts.status(endpoint)).state in DONE and r, timeout=timeout, interval=0.2)
    assert record, ws.rollouts.status(endpoint)
    return record


def _events(ws: Workspace, endpoint: str, kind: str) -> list:
    return [e for e in ws.events.tail(types=[kind], limit=500) if e.data.get("endpointName") == endpoint]


def _traffic_sums(ws: Workspace, endpoint: str) -> set[int]:
    changes = _events(ws, endpoint, "deployment.traffic_changed")
    return {sum(e.data["traffic"].values()) for e in changes}


def test_a_healthy_green_goes_through_every_step(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "calc:2")
    with Traffic(ws, endpoint) as traffic:
        started = ws.rollouts.start(
            endpoint,
            "green",
            steps=[20, 50, 100],
            bake="1s",
            guards={"error_rate": 0.05, "min_requests": 10},
            promote="staging",
        )
        assert started.state == "running" and started.step == 1
        done = _ended(ws, endpoint)
    assert done.state == "completed", done
    assert ws.endpoints.show(endpoint).traffic == {"green": 100}
    steps = _events(ws, endpoint, "rollout.step")
    assert [(e.data["step"], e.data["percent"]) for e in steps] == [(1, 20), (2, 50), (3, 100)]
    assert steps[0].data["traffic"] == {"blue": 80, "green": 20}
    [completed] = _events(ws, endpoint, "rollout.completed")
    assert completed.data["promoted"] == "calc:2 is now @staging", completed.data
    assert ws.models.get("calc", "staging").version == 2  # through the release policy (staging is unprotected)
    assert done.figures["green"]["requests"] >= 10 and done.figures["green"]["errors"] == 0
    assert _traffic_sums(ws, endpoint) == {100}
    assert traffic.answers and {status for status, _, _ in traffic.answers} == {200}


def test_a_failing_green_is_rolled_back_at_the_first_step(ws, endpoint):
    with Traffic(ws, endpoint, bad_every=5) as traffic:
        ws.rollouts.start(
            endpoint,
            "green",
            model="flaky:1",
            steps=[20, 50, 100],
            bake="2s",
            guards={"error_rate": 0.01, "min_requests": 15},
        )
        done = _ended(ws, endpoint)
    assert done.state == "rolled_back" and done.step == 1, done
    assert "error_rate" in done.reason
    [event] = _events(ws, endpoint, "rollout.rolled_back")
    assert event.data["guard"] == "error_rate" and event.data["threshold"] == 0.01
    assert event.data["figure"] > 0.01
    assert ws.endpoints.show(endpoint).traffic == {"blue": 100}
    failed = [(status, deployment) for status, deployment, _ in traffic.answers if status != 200]
    assert failed and {deployment for _, deployment in failed} == {"green"}  # no failure outside green's share
    after = [Traffic(ws, endpoint).send(x) for x in (1.0, -1.0) * 10]
    assert {(status, deployment) for status, deployment, _ in after} == {(200, "blue")}
    assert _traffic_sums(ws, endpoint) == {100}


def test_a_killed_controller_is_replaced_by_exactly_one_and_the_rollout_completes(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "calc:2")
    ws.rollouts.start(endpoint, "green", steps=[20, 100], bake="2s", guards={"min_requests": 10})
    first = eventually(lambda: _events(ws, endpoint, "rollout.step") and ws.rollouts.list(endpoint)[0], 60)
    assert first and first.controller_pid, first
    # no traffic yet: the first step waits for its 10 requests to green, so the kill lands in the middle of it
    os.kill(first.controller_pid, signal.SIGKILL)
    wait_gone(first.controller_pid)
    # two controllers started at once: one claims the rollout, the other exits (3)
    command = [sys.executable, "-m", "jupyter_mlops.rollouts.controller", endpoint]
    command += ["--workspace", str(ws.root), "--metadata-uri", ws.metadata_uri]
    rivals = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in "ab"]
    with Traffic(ws, endpoint):
        codes = sorted(p.wait(timeout=180) for p in rivals)
        record = ws.rollouts.list(endpoint)[0]
    assert codes == [0, 3], codes
    assert record.state == "completed" and record.controller_pid in {p.pid for p in rivals}, record
    assert ws.endpoints.show(endpoint).traffic == {"green": 100}
    assert _traffic_sums(ws, endpoint) == {100}


def test_reconcile_resumes_a_rollout_whose_controller_died(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "calc:2")
    ws.rollouts.start(endpoint, "green", steps=[50, 100], bake="1s", guards={"min_requests": 5})
    first = eventually(lambda: _events(ws, endpoint, "rollout.step") and ws.rollouts.list(endpoint)[0], 60)
    assert first
    os.kill(first.controller_pid, signal.SIGKILL)  # mid-step: without traffic, the step waits for its requests
    wait_gone(first.controller_pid)
    assert ws.rollouts.reconcile() == [endpoint]  # what the Lab's server extension does every few seconds
    assert ws.rollouts.reconcile() == []  # the new controller is alive: nobody starts a third
    with Traffic(ws, endpoint):
        done = _ended(ws, endpoint)
    assert done.state == "completed" and done.controller_pid != first.controller_pid


def test_bad_input_is_refused_naming_the_problem_and_nothing_changes(ws, endpoint):
    ws.endpoints.deploy(endpoint, "green", "calc:2")
    for kwargs, expected in [
        ({"steps": []}, "empty"),
        ({"steps": [50, 20]}, "must increase"),
        ({"steps": [10, 150]}, "from 1 to 100"),
        ({"guards": {"p95_ms": 10}}, "Unknown guard 'p95_ms'"),
        ({"guards": {"agreement": 0.95}}, "give a shadow phase"),
        ({"shadow": "soon"}, "shadow time"),
        ({"shadow": "10m", "shadow_percent": 80}, "shadow_percent"),
        ({"shadow": "10m", "guards": {"agreement": 1.5}}, "out of range"),
        ({"bake": "soon"}, "bake"),
    ]:
        with pytest.raises(InvalidInput, match=expected):
            ws.rollouts.start(endpoint, "green", **kwargs)
    with pytest.raises(NotFound, match=r"No deployment 'purple'.*blue, green"):
        ws.rollouts.start(endpoint, "purple")
    with pytest.raises(NotFound):
        ws.rollouts.start("no-such-endpoint", "green")
    with pytest.raises(NotFound):
        ws.rollouts.start(endpoint, "purple", model="no-such-model:1")
    with pytest.raises(InvalidInput, match="last step of 100"):
        ws.rollouts.start(endpoint, "green", steps=[10, 50], promote=True)
    assert sorted(d.name for d in ws.endpoints.show(endpoint).deployments) == ["blue", "green"]
    assert ws.rollouts.list(endpoint) == []
    assert ws.endpoints.show(endpoint).traffic == {"blue": 100}
    # one active rollout per endpoint; pause, resume, then abort rolls back (the endpoint handle's verbs)
    ep = ws.endpoints.get(endpoint)
    ep.rollout("green", steps=[10, 100], bake="10m", guards={"min_requests": 1000})
    with pytest.raises(Conflict, match="already has an active rollout"):
        ws.rollouts.start(endpoint, "green")
    assert eventually(
        lambda: ws.endpoints.show(endpoint).traffic == {"blue": 90, "green": 10} and ep.rollout_status().percent == 10,
        timeout=60,
    ), ep.rollout_status()
    assert ep.pause().state == "paused"
    with pytest.raises(Conflict, match="paused"):
        ws.rollouts.pause(endpoint)
    assert ep.resume().state == "running"
    aborted = ep.abort()
    assert aborted.state == "aborted" and "aborted by tester" in aborted.reason
    assert ws.endpoints.show(endpoint).traffic == {"blue": 100}
    assert len(ws.rollouts.list(endpoint)) == 1
    # the CLI face: the same refusals, and the record as JSON
    with pytest.raises(InvalidInput, match="must increase"):
        execute(parse(["rollouts", "start", endpoint, "green", "--steps", "50,20"]), ws)
    with pytest.raises(InvalidInput, match="give a shadow phase"):
        execute(parse(["rollouts", "start", endpoint, "green", "--guard", "agreement=0.9"]), ws)
    shown = json.loads(to_json(execute(parse(["rollouts", "status", endpoint, "--json"]), ws).value))
    assert shown["state"] == "aborted" and shown["steps"] == [10, 100]


def test_each_split_sums_to_100_and_a_guard_trips_only_when_green_is_worse():
    from jupyter_mlops.rollouts import plan

    for percent in (1, 10, 33, 50, 99, 100):
        for baseline in ({"blue": 100}, {"a": 50, "b": 50}, {"a": 70, "b": 20, "c": 10}, {"a": 60, "green": 40}):
            split = plan.split_for(percent, "green", baseline)
            assert sum(split.values()) == 100 and split["green"] == percent, (percent, baseline, split)
    with pytest.raises(InvalidInput, match="No deployment besides green"):
        plan.split_for(10, "green", {"green": 100})
    guards = {"error_rate": 0.01, "p99_ms": 50.0}
    assert plan.tripped(guards, {"error_rate": 0.2, "p99_ms": 5}, {"requests": 100, "error_rate": 0.0}) == (
        "error_rate",
        0.2,
        0.01,
    )
    assert plan.tripped(guards, {"error_rate": 0.2}, {"requests": 100, "error_rate": 0.3}) is None  # no worse
    assert plan.tripped(guards, {"error_rate": 0.0, "p99_ms": 80}, {"requests": 0}) == ("p99_ms", 80.0, 50.0)
