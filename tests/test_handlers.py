"""The REST face (``/mlops/api/``) in-process, with pytest-jupyter's ``jp_fetch``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.httpclient
import yaml

from jupyter_mlops.server.handlers import ROUTES, MlopsHandler
from tests.waiting import eventually

pytest_plugins = ("pytest_jupyter.jupyter_server",)
SPEC = Path(__file__).parent.parent / "jupyter_mlops" / "server" / "openapi.yaml"


@pytest.fixture
def jp_server_config(tmp_path):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_mlops": True}},
        "MlopsServerApp": {"workspace_dir": str(tmp_path / "ws"), "run_poll_interval": 0.2},
    }


@pytest.fixture
def ctx(jp_serverapp):
    return jp_serverapp.web_app.settings["mlops"]


@pytest.fixture
def ws(ctx):
    return ctx.workspace


@pytest.fixture
def registered(ws, tmp_path):
    """A model ``churn`` with two versions tagged stage=dev and stage=prod; returns the first version's run id."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00\x01weights")
    first = ws.models.register(weights, "churn", tags={"stage": "dev"})
    ws.models.register(weights, "churn", tags={"stage": "prod", "team": "risk"})
    return first.run_id


async def fetch(jp_fetch, *parts, method="GET", body=None, params=None, headers=None):
    """jp_fetch that returns (status, json) instead of raising on 4xx."""
    kwargs = {"method": method, "params": params or {}, "raise_error": False}
    if body is not None:
        kwargs["body"] = json.dumps(body) if not isinstance(body, (str, bytes)) else body
    if headers is not None:
        kwargs["headers"] = headers
    response = await jp_fetch("mlops", "api", *parts, **kwargs)
    text = response.body.decode() if response.body else ""
    return response.code, (json.loads(text) if text else None)


# -- models ----------------------------------------------------------------------------------------------------------
async def test_list_models_and_filter(jp_fetch, registered):
    # Given two versions of churn; When we list all, then filter by tag
    code, data = await fetch(jp_fetch, "models")
    assert code == 200
    assert [(v["name"], v["version"]) for v in data["versions"]] == [("churn", 1), ("churn", 2)]
    code, data = await fetch(jp_fetch, "models", params={"filter": "stage=prod"})
    # Then only the matching version comes back, with its public tags
    assert code == 200
    assert [v["version"] for v in data["versions"]] == [2]
    assert data["versions"][0]["tags"] == {"stage": "prod", "team": "risk"}


async def test_bad_filter_is_400_with_the_syntax(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", params={"filter": "stage=prod,,"})
    assert code == 400
    assert data["error"] == "FilterSyntaxError"
    assert "TagName=TagValue" in data["message"]


async def test_bad_query_value_is_400(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", params={"include_archived": "maybe"})
    assert code == 400 and "include_archived" in data["message"]


async def test_get_model_and_version(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", "churn")
    assert code == 200
    assert data["model"]["latest_version"] == 2
    assert [v["version"] for v in data["versions"]] == [1, 2]
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "1")
    assert code == 200 and data["tags"] == {"stage": "dev"}


async def test_unknown_model_and_version_are_404(jp_fetch, registered):
    code, data = await fetch(jp_fetch, "models", "chrun")
    assert code == 404 and "churn" in data["message"]  # the suggestion
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "9")
    assert code == 404 and "Versions: 1, 2" in data["message"]
    response = await jp_fetch("mlops", "api", "nothing-here", raise_error=False)
    assert response.code == 404


async def test_register_from_run(jp_fetch, ctx, registered):
    # Given the run that holds version 1's files; When we register its model folder as a new version
    queue = ctx.events.subscribe()
    await ctx.watcher.start()
    body = {"source": f"runs:/{registered}/model", "tags": {"stage": "candidate"}, "description": "from the UI"}
    code, data = await fetch(jp_fetch, "models", "churn", "versions", method="POST", body=body)
    # Then version 3 exists with the tags, and the core's model.registered event reached the stream
    assert code == 201
    assert (data["version"], data["tags"], data["description"]) == (3, {"stage": "candidate"}, "from the UI")
    event = await asyncio.wait_for(queue.get(), timeout=30)
    assert (event.type, event.specversion, event.subject) == ("model.registered", "1.0", "models/churn/versions/3")


@pytest.mark.parametrize(
    "body",
    [
        {"source": "/tmp/some/file"},  # not a runs:/ URI
        {"tags": {"a": "b"}},  # no source
        {"source": "runs:/abc/model", "unknown": 1},  # unknown field
        {"source": "runs:/abc/model", "tags": ["a"]},  # tags not an object
        "{not json",
    ],
)
async def test_register_bad_body_is_400(jp_fetch, registered, body):
    code, data = await fetch(jp_fetch, "models", "churn", "versions", method="POST", body=body)
    assert code == 400, data
    assert data["message"]


async def test_register_from_unknown_run_is_404(jp_fetch, registered):
    body = {"source": "runs:/0123456789abcdef0123456789abcdef/model"}
    code, data = await fetch(jp_fetch, "models", "churn", "versions", method="POST", body=body)
    assert code == 404, data


async def test_patch_tags_and_archive(jp_fetch, registered):
    code, data = await fetch(
        jp_fetch, "models", "churn", "versions", "1", method="PATCH", body={"tags": {"validated": "yes"}}
    )
    assert code == 200 and data["tags"] == {"stage": "dev", "validated": "yes"}
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "1", method="PATCH", body={"archived": True})
    assert code == 200 and data["archived"] is True
    code, data = await fetch(jp_fetch, "models")
    assert [v["version"] for v in data["versions"]] == [2]  # archived versions are hidden by default
    code, data = await fetch(jp_fetch, "models", params={"include_archived": "true"})
    assert [v["version"] for v in data["versions"]] == [1, 2]
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "1", method="PATCH", body={"archived": "x"})
    assert code == 400


async def test_alias_set_read_and_delete(jp_fetch, ctx, registered):
    queue = ctx.events.subscribe()
    await ctx.watcher.start()
    code, data = await fetch(jp_fetch, "models", "churn", "aliases", "champion", method="PUT", body={"version": 2})
    assert code == 200 and data["aliases"] == ["champion"]
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "champion")
    assert code == 200 and data["version"] == 2
    code, _ = await fetch(jp_fetch, "models", "churn", "aliases", "champion", method="DELETE")
    assert code == 204
    moves = [(await asyncio.wait_for(queue.get(), timeout=30)).data for _ in range(2)]
    assert [(e["alias"], e["modelVersion"]) for e in moves] == [("champion", "2"), ("champion", None)]
    code, _ = await fetch(jp_fetch, "models", "churn", "aliases", "champion", method="DELETE")
    assert code == 404
    code, data = await fetch(jp_fetch, "models", "churn", "aliases", "3", method="PUT", body={"version": 1})
    assert code == 400 and "reads as a version" in data["message"]
    code, data = await fetch(jp_fetch, "models", "churn", "aliases", "x", method="PUT", body={"version": 0})
    assert code == 400


async def test_delete_version_in_use_is_409(jp_fetch, ws, registered):
    # Given an active deployment serving churn:1
    from jupyter_mlops.store.schema import Deployment

    with ws.store.session() as session:
        session.add(Deployment(endpoint="scoring", name="blue", model_name="churn", model_version=1))
    # When we delete it; Then 409 names the deployment, and nothing was deleted
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "1", method="DELETE")
    assert code == 409
    assert data["error"] == "ModelInUseError"
    assert "scoring/blue" in data["message"] and data["data"]["deployments"] == ["scoring/blue"]
    assert (await fetch(jp_fetch, "models", "churn", "versions", "1"))[0] == 200
    # And an unused version deletes
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", method="DELETE")
    assert code == 200 and data == {"name": "churn", "deleted": [2]}


async def test_delete_aliased_version_needs_force(jp_fetch, ws, registered):
    ws.models.set_alias("churn", "champion", 2)
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", method="DELETE")
    assert code == 409 and "champion" in data["message"]
    code, data = await fetch(jp_fetch, "models", "churn", "versions", "2", method="DELETE", params={"force": "true"})
    assert code == 200 and data["deleted"] == [2]


# -- runs ------------------------------------------------------------------------------------------------------------
async def test_runs_list_filter_and_get(jp_fetch, ws):
    with ws.job(experiment="churn", name="train", autolog=False) as job:
        ws.client.log_metric(job.run_id, "auc", 0.91)
    with pytest.raises(ZeroDivisionError), ws.job(experiment="other", name="broken", autolog=False):
        raise ZeroDivisionError("boom")
    code, data = await fetch(jp_fetch, "runs", params={"experiment": "churn"})
    assert code == 200
    assert [(r["name"], r["status"], r["metrics"]) for r in data["runs"]] == [("train", "FINISHED", {"auc": 0.91})]
    code, data = await fetch(jp_fetch, "runs", params={"max_results": "1"})
    assert code == 200 and len(data["runs"]) == 1
    code, data = await fetch(jp_fetch, "runs", job.run_id)
    assert code == 200 and data["experiment"] == "churn" and data["duration_s"] >= 0
    code, data = await fetch(jp_fetch, "runs", params={"experiment": "nope"})
    assert code == 404 and "churn" in data["message"]
    for bad in ("0", "x", "5000"):
        code, _ = await fetch(jp_fetch, "runs", params={"max_results": bad})
        assert code == 400
    code, _ = await fetch(jp_fetch, "runs", "0123456789abcdef0123456789abcdef")
    assert code == 404
    code, _ = await fetch(jp_fetch, "runs", "not-a-run")
    assert code == 400


# -- endpoints, monitors, pipelines ----------------------------------------------------------------------------------
FEATURES = ["f0", "f1", "f2", "f3"]


def _classifier(ws):
    """A small scikit-learn classifier on four features, registered as ``clf:1``; returns the training frame."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 4)), columns=FEATURES)
    ws.models.register(LogisticRegression().fit(frame.to_numpy(), (frame["f0"] > 0).astype(int)), "clf")
    return frame


async def _in_thread(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def test_endpoint_routes_deploy_split_mirror_invoke_logs_and_monitor(jp_fetch, ws):
    # Given an endpoint with no deployment yet and a registered classifier
    reference = _classifier(ws)
    await _in_thread(ws.endpoints.create, "churn-api")
    try:
        # When two deployments of clf:1 are added through the API
        for name in ("blue", "green"):
            code, data = await fetch(
                jp_fetch, "endpoints", "churn-api", "deployments", method="POST", body={"name": name, "model": "clf:1"}
            )
            assert code == 201, data
            assert (data["name"], data["model"], data["status"], data["traffic"]) == (name, "clf:1", "active", 0)
        # Then the endpoint lists both, with no traffic yet
        code, data = await fetch(jp_fetch, "endpoints")
        assert code == 200
        [endpoint] = data["endpoints"]
        assert [d["name"] for d in endpoint["deployments"]] == ["blue", "green"] and endpoint["auth"] == "key"
        # When the split is set; Then the real endpoint has it
        body = {"traffic": {"blue": 70, "green": 30}}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", method="PATCH", body=body)
        assert code == 200, data
        assert data["traffic"] == {"blue": 70, "green": 30}
        assert ws.endpoints.show("churn-api").traffic == {"blue": 70, "green": 30}
        # And a split that does not sum to 100, or a mirror on a live deployment, is a 400 that says why
        code, data = await fetch(
            jp_fetch, "endpoints", "churn-api", method="PATCH", body={"traffic": {"blue": 70, "green": 20}}
        )
        assert code == 400 and "sum to 0 or 100, not 90" in data["message"]
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", method="PATCH", body={"mirror": {"green": 10}})
        assert code == 400 and "either live or mirrored" in data["message"]
        code, data = await fetch(
            jp_fetch, "endpoints", "churn-api", method="PATCH", body={"traffic": {"blue": 100, "nope": 0}}
        )
        assert code == 400 and "nope" in data["message"]
        # When all live traffic goes to blue and green gets a mirror in one change
        body = {"traffic": {"blue": 100, "green": 0}, "mirror": {"green": 20}}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", method="PATCH", body=body)
        assert code == 200, data
        assert (data["traffic"], data["mirror"]) == ({"blue": 100, "green": 0}, {"green": 20})
        # And back: green live again, no mirror (the mirror must go first)
        body = {"traffic": {"blue": 50, "green": 50}, "mirror": {}}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", method="PATCH", body=body)
        assert code == 200, data
        # When test requests go through the API; Then the predictions come back, and the live figures count them
        rows = reference.head(3).to_numpy().tolist()
        for _ in range(5):
            code, data = await fetch(
                jp_fetch, "endpoints", "churn-api", "invoke", method="POST", body={"data": {"inputs": rows}}
            )
            assert code == 200, data
            assert len(data["response"]["predictions"]) == 3
        code, data = await fetch(jp_fetch, "endpoints", "churn-api")
        live = {d["name"]: d["live"] for d in data["deployments"]}
        assert live["blue"]["requests"] + live["green"]["requests"] == 5
        assert any(s["p50_ms"] is not None and s["p99_ms"] >= s["p50_ms"] for s in live.values())
        code, data = await fetch(
            jp_fetch, "endpoints", "churn-api", "invoke", method="POST", body={"data": {"inputs": rows}}
        )
        code, data = await fetch(jp_fetch, "endpoints", "churn-api")
        assert sum(d["live"]["rate_per_s"] > 0 for d in data["deployments"]) == 1  # since the previous reading
        # And a request the model cannot read is the endpoint's 400, a deployment it lacks a 404
        code, data = await fetch(
            jp_fetch, "endpoints", "churn-api", "invoke", method="POST", body={"data": {"nothing": 1}}
        )
        assert code == 400 and data["message"]
        body = {"data": {"inputs": rows}, "deployment": "red"}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", "invoke", method="POST", body=body)
        assert code == 404 and "red" in data["message"]
        # The router's log reads back
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", "logs", params={"lines": "50"})
        assert code == 200 and data["endpoint"] == "churn-api" and isinstance(data["text"], str)
        # Deploying a model that does not exist, or not named NAME:VERSION, says so
        body = {"name": "red", "model": "clf:9"}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", "deployments", method="POST", body=body)
        assert code == 404 and "Versions: 1" in data["message"]
        body = {"name": "red", "model": "clf"}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", "deployments", method="POST", body=body)
        assert code == 400 and "NAME:VERSION" in data["message"]
        body = {"name": "Red!", "model": "clf:1"}
        code, data = await fetch(jp_fetch, "endpoints", "churn-api", "deployments", method="POST", body=body)
        assert code == 400 and "deployment name" in data["message"]

        # -- monitors over what the endpoint collected
        code, data = await fetch(jp_fetch, "monitors")
        assert code == 200 and data == {"monitors": []}
        await _in_thread(ws.monitors.create, "churn-drift", "churn-api", reference=reference, schedule="1h")
        code, data = await fetch(jp_fetch, "monitors", "churn-drift", "report")
        assert code == 404 and "has not run yet" in data["message"]
        shifted = reference.sample(100, random_state=1).copy()
        shifted[["f0", "f1"]] += 3.0
        for start in range(0, 100, 25):
            await _in_thread(
                ws.endpoints.invoke, "churn-api", {"inputs": shifted.iloc[start : start + 25].values.tolist()}
            )
        await _in_thread(_wait_collected, ws, "churn-api", 100)
        result = await _in_thread(ws.monitors.run, "churn-drift")
        assert result.drifted
        code, data = await fetch(jp_fetch, "monitors")
        [monitor] = data["monitors"]
        assert monitor["name"] == "churn-drift" and monitor["last_result"]["drifted"] is True
        assert monitor["last_result"]["drift_share"] == 0.5 and monitor["last_run_id"] == result.run_id
        code, data = await fetch(jp_fetch, "monitors", "churn-drift")
        assert code == 200 and data["endpoint"] == "churn-api"
        response = await jp_fetch("mlops", "api", "monitors", "churn-drift", "report")
        assert response.code == 200 and response.headers["Content-Type"].startswith("text/html")
        assert "<html" in response.body.decode().lower()
        assert "sandbox" in response.headers["Content-Security-Policy"]
    finally:
        await _in_thread(ws.endpoints.delete, "churn-api")


def _wait_collected(ws, endpoint: str, rows: int) -> None:
    def count() -> int:
        files = (ws.root / "collected" / endpoint).glob("*/*.jsonl")
        return sum(len(json.loads(line)["input"]["inputs"]) for f in files for line in f.open())

    assert eventually(lambda: count() >= rows), f"the collector did not write {rows} rows"


@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", ("endpoints", "nope"), None),
        ("PATCH", ("endpoints", "nope"), {"traffic": {"blue": 100}}),
        ("POST", ("endpoints", "nope", "invoke"), {"data": {"inputs": [[1, 2]]}}),
        ("GET", ("endpoints", "nope", "logs"), None),
        ("POST", ("endpoints", "nope", "deployments"), {"name": "blue", "model": "clf:1"}),
        ("GET", ("monitors", "nope"), None),
        ("GET", ("monitors", "nope", "report"), None),
        ("GET", ("pipelines", "nope", "runs"), None),
        ("GET", ("runs", "0123456789abcdef0123456789abcdef", "code"), None),
    ],
)
async def test_unknown_resources_are_404_with_a_message(jp_fetch, method, parts, body):
    code, data = await fetch(jp_fetch, *parts, method=method, body=body)
    assert code == 404, data
    assert data["message"] and data["error"] == "NotFound"


@pytest.mark.parametrize(
    ("method", "parts", "body", "params", "says"),
    [
        ("PATCH", ("endpoints", "e"), {"traffic": {"blue": "lots"}}, None, "traffic.blue"),
        ("PATCH", ("endpoints", "e"), {"traffic": [1]}, None, "traffic"),
        ("PATCH", ("endpoints", "e"), {"split": {}}, None, "split"),
        ("PATCH", ("endpoints", "e"), "{not json", None, "not valid JSON"),
        ("POST", ("endpoints", "e", "invoke"), {}, None, "data"),
        ("POST", ("endpoints", "e", "invoke"), {"data": 1, "deployment": 3}, None, "deployment"),
        ("POST", ("endpoints", "e", "deployments"), {"name": "blue"}, None, "model"),
        ("GET", ("endpoints", "e", "logs"), None, {"lines": "0"}, "lines"),
        ("GET", ("pipelines", "p", "runs"), None, {"max_results": "x"}, "max_results"),
        ("GET", ("runs", "not-a-run", "code"), None, None, "not a run id"),
    ],
)
async def test_bad_input_is_400_naming_the_field(jp_fetch, method, parts, body, params, says):
    code, data = await fetch(jp_fetch, *parts, method=method, body=body, params=params)
    assert code == 400, data
    assert says in data["message"]


async def test_pipelines_list_runs_with_step_states(jp_fetch, ws, tmp_path):
    # Given no pipeline yet
    code, data = await fetch(jp_fetch, "pipelines")
    assert code == 200 and data == {"pipelines": []}
    # When a pipeline of two steps runs, one of them failing
    spec = _two_steps(tmp_path / "pipe")
    from jupyter_mlops.pipelines import run

    await _in_thread(run, spec, workspace=ws)
    # Then it is listed, and its run has the state of each step
    code, data = await fetch(jp_fetch, "pipelines")
    [pipeline] = data["pipelines"]
    assert (pipeline["name"], pipeline["runs"], pipeline["last_status"]) == ("nightly", 1, "FAILED")
    code, data = await fetch(jp_fetch, "pipelines", "nightly", "runs")
    [run_out] = data["runs"]
    assert run_out["steps"] == {"prepare": "succeeded", "train": "failed"}
    # And the step's executed notebook is readable through its run
    step_runs = [r for r in ws.runs.list("nightly") if r.name and "prepare" in r.name]
    code, data = await fetch(jp_fetch, "runs", step_runs[0].run_id, "code")
    assert code == 200 and data["notebook_artifact"] == "notebook/prepare.ipynb"
    assert data["notebook"]["cells"][-1]["outputs"]  # executed: it has the printed output


def _two_steps(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for step, code in (("prepare", "print('prepared')"), ("train", "raise RuntimeError('no data')")):
        cells = [
            {"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None, "outputs": [], "source": code}
        ]
        kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
        document = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
        (folder / f"{step}.ipynb").write_text(json.dumps(document))
    spec = folder / "pipeline.yaml"
    spec.write_text("name: nightly\nsteps:\n  prepare: {notebook: prepare.ipynb}\n  train: {notebook: train.ipynb}\n")
    return spec


async def test_run_code_of_a_cell_job(jp_fetch, ws, tmp_path):
    # Given a job that kept a cell's source and a copy of its notebook
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with ws.job(experiment="adhoc", name="cell", source="x = 1\n", notebook=notebook, autolog=False) as job:
        pass
    # When its code is asked for; Then both come back (the artifact store is outside the server root here)
    code, data = await fetch(jp_fetch, "runs", job.run_id, "code")
    assert code == 200
    assert (data["cell"], data["notebook_artifact"]) == ("x = 1\n", "code/analysis.ipynb")
    assert data["notebook"]["nbformat"] == 4 and data["contents_path"] is None


# -- events ----------------------------------------------------------------------------------------------------------
async def test_event_stream_carries_failed_runs(jp_fetch, jp_http_port, jp_base_url, jp_auth_header, ws, ctx):
    # Given a client listening on the stream
    received: list[str] = []
    got_it = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        received.append(chunk.decode())
        if "run.failed" in "".join(received):
            got_it.set()

    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}mlops/api/events"
    request = tornado.httpclient.HTTPRequest(
        url, headers=jp_auth_header, streaming_callback=on_chunk, request_timeout=20
    )
    stream = asyncio.ensure_future(tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False))
    await _until(lambda: ctx.events.listening)
    # When a job fails
    await asyncio.get_running_loop().run_in_executor(None, _failing_job, ws)
    # Then a CloudEvent run.failed arrives as an SSE data line
    try:
        await asyncio.wait_for(got_it.wait(), timeout=15)
    except asyncio.TimeoutError:
        raise AssertionError(f"no run.failed event; the stream said {received!r}") from None
    stream.cancel()
    lines = [line for line in "".join(received).splitlines() if line.startswith("data: ")]
    event = json.loads(lines[-1][len("data: ") :])
    assert event["type"] == "run.failed" and event["data"]["experiment"] == "nightly"
    # And the recent events route lists it
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        url + "/recent", headers=jp_auth_header, raise_error=False
    )
    assert response.code == 200 and json.loads(response.body)["events"][-1]["type"] == "run.failed"
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        url + "/recent?limit=0", headers=jp_auth_header, raise_error=False
    )
    assert response.code == 400 and "limit" in json.loads(response.body)["message"]


async def _until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.02)


def _failing_job(ws) -> None:
    try:
        with ws.job(experiment="nightly", name="broken", autolog=False):
            raise RuntimeError("boom")
    except RuntimeError:
        pass


# -- auth ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", ("models",), None),
        ("GET", ("models", "churn"), None),
        ("GET", ("models", "churn", "versions", "1"), None),
        ("POST", ("models", "churn", "versions"), {"source": "runs:/abc/model"}),
        ("PATCH", ("models", "churn", "versions", "1"), {"archived": True}),
        ("DELETE", ("models", "churn", "versions", "1"), None),
        ("PUT", ("models", "churn", "aliases", "a"), {"version": 1}),
        ("DELETE", ("models", "churn", "aliases", "a"), None),
        ("GET", ("models", "churn", "release"), None),
        ("GET", ("models", "churn", "compare"), None),
        ("GET", ("models", "churn", "versions", "1", "release"), None),
        ("POST", ("models", "churn", "versions", "1", "approval"), {}),
        ("POST", ("models", "churn", "versions", "1", "approve"), {}),
        ("POST", ("models", "churn", "versions", "1", "reject"), {}),
        ("POST", ("models", "churn", "versions", "1", "promote"), {"alias": "champion"}),
        ("GET", ("runs",), None),
        ("GET", ("runs", "abc"), None),
        ("GET", ("events",), None),
        ("GET", ("events", "recent"), None),
        ("GET", ("runs", "abc", "code"), None),
        ("GET", ("endpoints",), None),
        ("GET", ("endpoints", "e"), None),
        ("PATCH", ("endpoints", "e"), {"traffic": {"blue": 100}}),
        ("POST", ("endpoints", "e", "invoke"), {"data": {}}),
        ("GET", ("endpoints", "e", "logs"), None),
        ("POST", ("endpoints", "e", "deployments"), {"name": "blue", "model": "clf:1"}),
        ("GET", ("pipelines",), None),
        ("GET", ("pipelines", "p", "runs"), None),
        ("GET", ("monitors",), None),
        ("GET", ("monitors", "m"), None),
        ("GET", ("monitors", "m", "report"), None),
    ],
)
async def test_every_route_needs_a_token(jp_fetch, registered, method, parts, body):
    for headers in ({"Authorization": "token wrong"}, {"Authorization": ""}):
        code, _ = await fetch(jp_fetch, *parts, method=method, body=body, headers=headers)
        assert code == 403, (method, parts, headers)


async def browser_session(jp_fetch, jp_serverapp) -> tuple[dict[str, str], str]:
    """A browser's headers (the login cookie, obtained with the token through the login form) and its XSRF token."""
    no_token = {"Authorization": ""}
    form = await jp_fetch("login", method="GET", headers=no_token)
    xsrf = next(c.split(";")[0].split("=", 1)[1] for c in form.headers.get_list("Set-Cookie") if c.startswith("_xsrf"))
    login = await jp_fetch(
        "login",
        method="POST",
        body=f"_xsrf={xsrf}&password={jp_serverapp.identity_provider.token}",
        headers={**no_token, "Cookie": f"_xsrf={xsrf}"},
        follow_redirects=False,
        raise_error=False,
    )
    cookies = "; ".join(c.split(";")[0] for c in login.headers.get_list("Set-Cookie")) + f"; _xsrf={xsrf}"
    browser = {"Authorization": "", "Cookie": cookies}
    return browser, xsrf


async def test_change_with_cookie_but_no_xsrf_is_403(jp_fetch, jp_serverapp, registered):
    # Given a browser session: the login cookie, obtained with the token through the login form
    browser, xsrf = await browser_session(jp_fetch, jp_serverapp)
    assert (await fetch(jp_fetch, "models", headers=browser))[0] == 200  # the cookie alone reads
    # When it deletes without the X-XSRFToken header; Then 403 and nothing changed
    code, _ = await fetch(jp_fetch, "models", "churn", "versions", "1", method="DELETE", headers=browser)
    assert code == 403
    assert (await fetch(jp_fetch, "models", "churn", "versions", "1"))[0] == 200
    # And with the header it may
    with_xsrf = {**browser, "X-XSRFToken": xsrf}
    code, _ = await fetch(jp_fetch, "models", "churn", "versions", "1", method="DELETE", headers=with_xsrf)
    assert code == 200


# -- the spec --------------------------------------------------------------------------------------------------------
def test_every_route_is_in_the_openapi_spec():
    spec = yaml.safe_load(SPEC.read_text())
    for template, handler in ROUTES:
        path = "/" + template
        assert path in spec["paths"], f"{path} missing from openapi.yaml"
        ours = [k for k in handler.__mro__ if issubclass(k, MlopsHandler) and k is not MlopsHandler]  # shared verbs too
        verbs = {v for v in ("get", "post", "put", "patch", "delete") if any(v in vars(k) for k in ours)}
        assert verbs == set(spec["paths"][path]) - {"parameters"}, path
        for name in re.findall(r"\{(\w+)\}", template):
            declared = [_resolve(spec, p)["name"] for p in spec["paths"][path].get("parameters", [])]
            assert name in declared, (path, name)
    documented = {p.lstrip("/") for p in spec["paths"]}
    assert documented == {t for t, _ in ROUTES}, "openapi.yaml documents routes the server does not have"


def _resolve(spec: dict, item: dict) -> dict:
    if "$ref" not in item:
        return item
    node = spec
    for part in item["$ref"].lstrip("#/").split("/"):
        node = node[part]
    return node


# -- the spec against a live server ----------------------------------------------------------------------------------
def test_schemathesis_finds_no_server_error_and_no_spec_violation(tmp_path):
    """A real ``jupyter server`` (subprocess, private Jupyter folders): schemathesis fuzzes every operation but the
    endless event stream, with a few examples each; no 500 and every response matches the spec."""
    from jupyter_mlops import Workspace

    ws = Workspace(tmp_path / "ws")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"weights")
    ws.models.register(weights, "churn", tags={"stage": "prod"})
    ws.models.register(weights, "churn", tags={"stage": "dev"})
    with ws.job(experiment="churn", name="train", autolog=False):
        pass
    token, port = secrets.token_hex(16), _free_port()
    dirs = {name: tmp_path / name for name in ("config", "data", "runtime", "root")}
    for folder in dirs.values():
        folder.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_TRACKING"))},
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
    }
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [
            str(bin_dir / "jupyter"),
            "server",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={dirs['root']}",
            f"--MlopsServerApp.workspace_dir={tmp_path / 'ws'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("wb"),
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/status?token={token}", server)
        result = subprocess.run(
            [
                str(bin_dir / "schemathesis"),
                "run",
                str(SPEC),
                "--url",
                f"http://127.0.0.1:{port}/mlops/api",
                "-H",
                f"Authorization: token {token}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--exclude-operation-id",
                "streamEvents",
                "--max-examples",
                "8",
                "--seed",
                "20261126",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,  # hypothesis and schemathesis keep their caches in the working folder
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "jupyter server exited"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


# -- installation ----------------------------------------------------------------------------------------------------
def test_install_enables_both_extensions(tmp_path):
    """After ``make venv`` (pip install -e .): both lists say the extension is enabled and OK."""
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "c"), "JUPYTER_DATA_DIR": str(tmp_path / "d")}
    jupyter = str(Path(sys.executable).with_name("jupyter"))

    def listing(*args: str) -> str:
        done = subprocess.run([jupyter, *args], capture_output=True, text=True, env=env, timeout=120)
        return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)

    labextensions = listing("labextension", "list")
    assert re.search(r"jupyter-mlops v0\.1\.0 enabled\s+OK", labextensions), labextensions
    server_extensions = listing("server", "extension", "list")
    assert re.search(r"jupyter_mlops enabled", server_extensions), server_extensions
    assert re.search(r"jupyter_mlops 0\.1\.0 OK", server_extensions), server_extensions


# -- hostile input: never a 500, nothing left behind -------------------------------------------------------------------
DEEP_JSON = "[" * 10_000 + "]" * 10_000
HUGE_INT = '{"version": ' + "9" * 5000 + "}"


async def _raw(jp_fetch, *parts, method="GET", body=None, headers=None):
    headers = headers or ({"Content-Type": "application/json"} if body is not None else None)
    response = await jp_fetch("mlops", "api", *parts, method=method, body=body, headers=headers, raise_error=False)
    text = response.body.decode() if response.body else ""
    return response.code, (json.loads(text) if text else None)


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("POST", ("models", "churn", "versions")),
        ("PATCH", ("models", "churn", "versions", "1")),
        ("PUT", ("models", "churn", "aliases", "champion")),
        ("PATCH", ("endpoints", "scoring")),
        ("POST", ("endpoints", "scoring", "invoke")),
        ("POST", ("endpoints", "scoring", "deployments")),
    ],
)
@pytest.mark.parametrize("body", [DEEP_JSON, HUGE_INT, '{"source": "\\ud800"}', "\x00\xff"])
async def test_hostile_bodies_are_400_on_every_changing_route(jp_fetch, registered, method, parts, body):
    code, data = await _raw(jp_fetch, *parts, method=method, body=body)
    assert 400 <= code < 500, (code, data)
    assert data["error"] in ("InvalidInput", "NotFound") and data["message"]


async def test_wrong_content_type_is_415_and_changes_nothing(jp_fetch, ws, registered):
    body = json.dumps({"version": 1})
    code, data = await _raw(
        jp_fetch,
        "models",
        "churn",
        "aliases",
        "champion",
        method="PUT",
        body=body,
        headers={"Content-Type": "text/csv"},
    )
    assert code == 415 and "application/json" in data["message"]
    assert ws.models.get_model("churn").aliases == {}


async def test_wrong_method_is_405_with_a_json_body(jp_fetch, registered):
    code, data = await _raw(jp_fetch, "models", method="DELETE")
    assert code == 405 and data["message"]


@pytest.mark.parametrize(
    "parts",
    [
        ("models", "churn", "versions", "9999999999999999999999"),
        ("models", "churn", "versions", "0"),
        ("models", "ch\u00fcrn\nx"),
        ("models", "ch\u00fcrn", "versions", "1"),
        ("runs", "not-a-run\u00e9"),
        ("endpoints", "x" * 5000),
    ],
)
async def test_hostile_path_parameters_are_4xx(jp_fetch, registered, parts):
    quoted = [urllib.parse.quote(p, safe="") for p in parts]
    code, data = await _raw(jp_fetch, *quoted)
    assert 400 <= code < 500, (code, data)


@pytest.mark.parametrize("name", ["ch\u00fcrn", "line\nbreak", "star*", "x" * 5000])
async def test_registering_under_a_bad_name_creates_nothing(jp_fetch, ws, registered, name):
    body = json.dumps({"source": f"runs:/{registered}/model"})
    code, data = await _raw(jp_fetch, "models", urllib.parse.quote(name, safe=""), "versions", method="POST", body=body)
    assert code == 400 and "valid model name" in data["message"]
    assert [m.name for m in ws.models.list_models()] == ["churn"]
    assert len(ws.models.list("name=churn")) == 2  # the retry of a client never makes a second version


async def test_the_server_marks_a_dead_runners_pipeline_run_killed_by_itself(jp_serverapp, ws, tmp_path):
    """Nobody lists anything: the server's periodic task notices the killed runner (``reconcile_interval``)."""
    from tests.test_pipelines import _notebook, _wait_for_running_step

    app = next(e for e in jp_serverapp.extension_manager.extension_apps["jupyter_mlops"])
    assert app._reconciler is not None and app.reconcile_interval <= 5
    _notebook(tmp_path / "slow.ipynb", "out = ''", "import time\ntime.sleep(120)")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text("name: server-watched\nsteps:\n  slow: {notebook: slow.ipynb, outputs: {out: out/slow.txt}}\n")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ws.experiment_id, "warm-up")  # the stores exist before two processes open them
    command = [sys.executable, "-m", "jupyter_mlops.cli", "pipeline", "run", str(spec), "--workspace", str(ws.root)]
    runner = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_id = await loop.run_in_executor(None, _wait_for_running_step, ws, "server-watched", 120)
        runner.kill()
        runner.wait(timeout=30)
    finally:
        runner.kill()
    await _until(lambda: ws.client.get_run(run_id).info.status == "KILLED", timeout=60)
