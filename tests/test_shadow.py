"""Shadow comparison of mirrored traffic: real endpoints (two worker processes), real HTTP, waits on conditions.

Each model answers from ``x`` so what the mirror should find is known: the same label, a different label for
every fifth ``x``, a constant offset, an error for a negative ``x``.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace
from jupyter_mlops.cli import execute, parse
from jupyter_mlops.deploy.shadow import compare, kind_of
from jupyter_mlops.render import to_json
from tests.waiting import eventually

_names = itertools.count()


def _models() -> dict[str, object]:
    import mlflow.pyfunc

    class Label(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [int(x) % 3 for x in model_input["x"]]

    class OffLabel(mlflow.pyfunc.PythonModel):  # disagrees on every fifth x; fails on a negative one
        def predict(self, context, model_input, params=None):
            if (model_input["x"] < 0).any():
                raise RuntimeError("negative input")
            return [(int(x) % 3 + 1) % 3 if int(x) % 5 == 0 else int(x) % 3 for x in model_input["x"]]

    class Regressor(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return (model_input["x"] * 2.0).tolist()

    class Offset(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return (model_input["x"] * 2.0 + 0.25).tolist()

    return {"label": Label(), "offlabel": OffLabel(), "reg": Regressor(), "offset": Offset()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Iterator[Workspace]:
    os.environ["MLOPS_USER"] = "tester"
    workspace = Workspace(tmp_path_factory.mktemp("shadow") / "ws")
    for name, model in _models().items():
        workspace.models.register(model, name)
    yield workspace
    for info in workspace.endpoints.list():
        workspace.endpoints.delete(info.name)


def _send(url: str, x: float) -> tuple[int, object]:
    body = json.dumps({"dataframe_records": [{"x": x}]}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _first(answer: object) -> object:
    assert isinstance(answer, dict), answer
    return answer["predictions"][0]


def _mirrored(ws: Workspace, live: str, mirror: str, xs: list[float]) -> tuple[str, list[tuple[int, object]]]:
    """An endpoint of two workers: ``live`` serves all traffic, ``mirror`` gets 50 % mirrored; ``xs`` sent."""
    name = f"shadow-{next(_names)}"
    ep = ws.endpoints.create(name, auth="none", instances=2)
    ep.deploy("blue", f"{live}:1")
    ep.deploy("green", f"{mirror}:1")
    ep.set_traffic({"blue": 100})
    ep.set_mirror({"green": 50})
    url = ep.scoring_uri
    answers = [_send(url, x) for x in xs]
    return name, answers


def _settled(ws: Workspace, name: str, at_least: int):
    """The report once at least ``at_least`` mirrored requests were compared."""

    def ready():
        report = ws.endpoints.get(name).shadow_report("green")
        return report.requests >= at_least and report

    report = eventually(ready, timeout=60, interval=0.2)
    assert report, ws.endpoints.get(name).shadow_report("green")
    return report


def test_the_comparison_reads_kinds_from_the_outputs():
    assert [kind_of(v) for v in (1, "a", True, 1.5, [0.2, 0.8], {"a": 0.1}, None)] == [
        "label",
        "label",
        "label",
        "numeric",
        "probabilities",
        "probabilities",
        "other",
    ]
    found = compare([[0.1, 0.9], [0.7, 0.3]], [[0.2, 0.8], [0.2, 0.8]])  # rows of probabilities: argmax 1, 0 vs 1, 1
    assert (found.labels, found.agree, found.probability_rows) == (2, 1, 2)
    assert found.probability_diff == pytest.approx(0.1 + 0.5)
    assert compare({"predictions": [1.0, 2.0]}, [1.5, 1.0]).diffs == [0.5, 1.0]
    assert compare([1, 2], [1]).mismatched == 2


def test_a_classifier_pair_that_agrees_everywhere(ws):
    xs = [float(i) for i in range(120)]
    name, answers = _mirrored(ws, "label", "label", xs)
    assert [_first(a) for _, a in answers] == [int(x) % 3 for x in xs]
    report = _settled(ws, name, 20)
    assert report.kind == "classifier" and report.agreement_ratio == 1.0 and report.errors == 0
    assert report.mirror_percent == 50 and report.abs_diff_mean is None
    text = urllib.request.urlopen(ws.endpoints.get(name).scoring_uri.rsplit("/score", 1)[0] + "/metrics").read()
    metrics = text.decode()
    assert 'mlops_shadow_requests_total{deployment="green"}' in metrics
    assert 'mlops_shadow_agreement_ratio{deployment="green"} 1.0' in metrics
    ws.endpoints.delete(name)


def test_a_mirror_that_disagrees_on_a_known_share_and_fails_on_negatives(ws):
    xs = [float(i) for i in range(400)] + [-1.0] * 40
    name, answers = _mirrored(ws, "label", "offlabel", xs)
    assert all(status == 200 for status, _ in answers)  # the live answers do not see the mirror's errors
    assert [_first(a) for _, a in answers] == [int(x) % 3 for x in xs]  # live answers unchanged
    report = _settled(ws, name, 150)
    assert report.compared > 100 and 0.1 <= 1 - report.agreement_ratio <= 0.3, report
    assert report.errors >= 5 and report.error_rate == pytest.approx(report.errors / report.requests)
    assert report.p99_ms is not None and report.p50_ms is not None
    metrics = urllib.request.urlopen(ws.endpoints.get(name).scoring_uri.rsplit("/score", 1)[0] + "/metrics").read()
    assert 'mlops_shadow_errors_total{deployment="green"}' in metrics.decode()
    shown = json.loads(to_json(execute(parse(["endpoints", "shadow", name, "green", "--json"]), ws).value))
    assert shown["deployment"] == "green" and shown["kind"] == "classifier" and shown["requests"] >= report.requests
    with pytest.raises(NotFound, match="No deployment 'purple'"):
        ws.endpoints.get(name).shadow_report("purple")
    with pytest.raises(InvalidInput, match="receives no mirrored traffic"):
        ws.endpoints.get(name).shadow_report("blue")
    ws.endpoints.delete(name)


def test_a_regressor_pair_with_a_constant_offset(ws):
    xs = [float(i) for i in range(160)]
    name, answers = _mirrored(ws, "reg", "offset", xs)
    assert [_first(a) for _, a in answers] == [x * 2.0 for x in xs]
    report = _settled(ws, name, 30)
    assert report.kind == "regressor" and report.agreement_ratio is None
    assert report.abs_diff_mean == pytest.approx(0.25) and report.abs_diff_p95 == pytest.approx(0.25)
    metrics = urllib.request.urlopen(ws.endpoints.get(name).scoring_uri.rsplit("/score", 1)[0] + "/metrics").read()
    assert 'mlops_shadow_abs_diff_mean{deployment="green"} 0.25' in metrics.decode()
    assert 'mlops_shadow_abs_diff_p95{deployment="green"} 0.25' in metrics.decode()
    ws.endpoints.delete(name)
