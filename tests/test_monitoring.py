"""Drift monitoring with real evidently reports over what a real endpoint collected."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import InvalidInput, NotFound, Workspace
from tests.waiting import eventually

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(400, 4)), columns=FEATURES)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, reference):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    workspace = Workspace(tmp_path_factory.mktemp("monitoring") / "ws")
    X = reference.to_numpy(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    workspace.models.register(to_onnx(model, X[:1], options={"zipmap": False}), "clf")
    ep = workspace.endpoints.create("watched", auth="none")
    ep.deploy("blue", "clf:1")
    ep.set_traffic({"blue": 100})
    yield workspace
    ep.delete()


def send(ws: Workspace, frame: pd.DataFrame) -> None:
    ep = ws.endpoints.get("watched")
    for start in range(0, len(frame), 20):
        ep.invoke({"dataframe_split": {"columns": FEATURES, "data": frame.iloc[start : start + 20].values.tolist()}})


def collected_rows(ws: Workspace) -> int:
    files = (ws.root / "collected" / "watched" / "blue").glob("*.jsonl")
    return sum(len(json.loads(line)["input"]["dataframe_split"]["data"]) for f in files for line in f.open())


def wait_collected(ws: Workspace, rows: int) -> None:
    assert eventually(lambda: collected_rows(ws) >= rows), "the collector did not write the requests"


def test_ad_hoc_drift_report(reference, tmp_path):
    shifted = reference.copy()
    shifted[["f0", "f1"]] += 1.5
    result = mlops.drift(reference, shifted)
    assert result.drifted and result.drift_share == 0.5
    assert list(result.features.columns) == ["feature", "drifted", "score", "method", "threshold"]
    assert set(result.features.query("drifted")["feature"]) == {"f0", "f1"}
    assert result.to_dict()["features"][0]["feature"] == "f0"
    same = mlops.drift(reference, reference.sample(200, random_state=1))
    assert not same.drifted and same.drift_share == 0.0
    page = result.save_html(tmp_path / "report.html").read_text()
    assert "<html" in page.lower() and len(page) > 10_000
    inline = result._repr_html_()
    assert "<iframe srcdoc=" in inline and "drift detected" in inline


def test_drift_bad_input(reference):
    with pytest.raises(InvalidInput, match="two pandas DataFrames"):
        mlops.drift(reference, [[1, 2]])
    with pytest.raises(InvalidInput, match="at least 2 rows"):
        mlops.drift(reference, reference.head(1))


def test_monitor_detects_drift_only_when_the_inputs_shift(ws, reference):
    seen = []
    ws.events.subscribe("drift-watch", callback=seen.append, types=["drift.detected"])
    monitor = ws.monitors.create("watch", "watched", reference=reference, deployment="blue", schedule="1h")
    assert monitor.features == FEATURES and monitor.thresholds == {"drift_share": 0.3}
    # unshifted traffic: no drift
    send(ws, reference.sample(200, random_state=2))
    wait_collected(ws, 200)
    calm = ws.monitors.run("watch")
    assert calm.rows == 200 and not calm.drifted and calm.alerts == []
    # shifted traffic in the next window: drift, an MLflow run with scores and the report, and an event
    shifted = reference.sample(200, random_state=3).copy()
    shifted[["f0", "f2"]] += 2.0
    send(ws, shifted)
    assert ws.monitors.pending_requests("watch") <= 10  # the run below waits for the ten requests to be written
    stormy = ws.monitors.run("watch", min_requests=10, timeout=60)
    assert stormy.rows == 200 and stormy.drifted and stormy.drift_share == 0.5
    run = ws.runs.get(stormy.run_id)
    assert run.metrics["drift_share"] == 0.5 and run.metrics["drift_score.f0"] < 0.05
    artifacts = {a.path for a in ws.client.list_artifacts(stormy.run_id, "report")}
    assert {"report/drift_report.html", "report/drift_report.json"} <= artifacts
    ws.events.deliver(timeout=3)
    [event] = seen
    assert event.data["dataDriftName"] == "watch" and event.data["runId"] == stormy.run_id
    assert event.data["driftCoefficient"] == 0.5 and sorted(event.data["drifted_features"]) == ["f0", "f2"]
    assert ws.monitors.get("watch").last_result["drifted"] is True


def test_two_schedulers_never_check_the_same_window_twice(ws, reference):
    ws.monitors.create("twice", "watched", reference=reference, schedule="30s")
    record = ws.monitors.get("twice")
    later = record.window_end + timedelta(minutes=5)
    script = (
        "import sys, json; from datetime import datetime; from jupyter_mlops import Workspace; "
        f"ws = Workspace({str(ws.root)!r}); "
        "r = ws.monitors.run('twice', now=datetime.fromisoformat(sys.argv[1])); print(json.dumps(r is not None))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, later.isoformat()], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    ran = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert sorted(ran) == [False, True]


def test_run_due_and_cli(ws, reference, tmp_path):
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)

    def cli(*args: str) -> object:
        out = subprocess.run(
            [sys.executable, "-m", "jupyter_mlops.cli", "monitor", *args, "--workspace", str(ws.root), "--json"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    created = cli("create", "cli-watch", "watched", "--reference", str(path), "--schedule", "1s")
    assert created["schedule_s"] == 1
    assert "cli-watch" in [m["name"] for m in cli("list")]
    due = cli("run", "--due")
    assert "cli-watch" in [r["monitor"] for r in due]
    assert cli("show", "cli-watch")["last_run_id"]
    cli("delete", "cli-watch")
    with pytest.raises(NotFound):
        ws.monitors.get("cli-watch")


def test_monitor_bad_input(ws, reference):
    with pytest.raises(NotFound, match="No endpoint named 'nope'"):
        ws.monitors.create("m", "nope", reference=reference)
    with pytest.raises(InvalidInput, match="no deployment 'red'"):
        ws.monitors.create("m", "watched", reference=reference, deployment="red")
    with pytest.raises(InvalidInput, match="schedule"):
        ws.monitors.create("m", "watched", reference=reference, schedule="often")
    with pytest.raises(InvalidInput, match="Unknown threshold"):
        ws.monitors.create("m", "watched", reference=reference, thresholds={"drift": 0.1})
    with pytest.raises(InvalidInput, match="not columns"):
        ws.monitors.create("m", "watched", reference=reference, features=["zz"])
    with pytest.raises(InvalidInput, match="DataFrame or a CSV"):
        ws.monitors.create("m", "watched", reference="training")
    assert not Path(ws.root / "monitors" / "m" / "x").exists()


def test_model_quality_from_labels_that_arrive_later(ws, reference):
    import urllib.request

    ws.monitors.create("quality", "watched", reference=reference, deployment="blue", schedule="1h")
    ep = ws.endpoints.get("watched")
    rows = reference.sample(30, random_state=5)
    before = collected_rows(ws)
    request_ids, truths = [], []
    for index, (_, row) in enumerate(rows.iterrows()):
        body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [row.tolist()]}}).encode()
        request = urllib.request.Request(
            ep.scoring_uri, data=body, headers={"Content-Type": "application/json", "mlops-request-id": f"r{index}"}
        )
        with urllib.request.urlopen(request) as response:
            assert response.headers["mlops-request-id"] == f"r{index}"
            predicted = json.loads(response.read())["predictions"][0]
        request_ids.append(f"r{index}")
        truths.append(predicted if index < 24 else 1 - predicted)  # 24 of 30 right
    wait_collected(ws, before + 30)
    assert ws.monitors.log_labels("watched", pd.DataFrame({"request_id": request_ids, "label": truths})) == 30
    outcome = ws.monitors.run("quality")
    assert outcome.quality == {"labelled": 30.0, "accuracy": 0.8}
    assert ws.runs.get(outcome.run_id).metrics["quality.accuracy"] == 0.8
    with pytest.raises(InvalidInput, match="request_id and label"):
        ws.monitors.log_labels("watched", pd.DataFrame({"id": [1]}))


def _lines(ws: Workspace) -> int:
    return sum(1 for f in (ws.root / "collected" / "watched" / "blue").glob("*.jsonl") for _ in f.open())


@pytest.mark.parametrize("fmt", ["parquet", "duckdb"])
def test_export_writes_a_star_schema_that_duckdb_joins_and_extends_it_with_what_is_new(ws, reference, tmp_path, fmt):
    import duckdb

    from jupyter_mlops.export import export

    before = _lines(ws)
    send(ws, reference.sample(40, random_state=7))  # two requests of 20 rows
    assert eventually(lambda: _lines(ws) == before + 2), "the collector did not write the requests"
    requests = _lines(ws)
    # labels for the two requests, and a monitor run over them (whatever other tests left in the workspace)
    newest = [
        json.loads(line) for f in (ws.root / "collected" / "watched" / "blue").glob("*.jsonl") for line in f.open()
    ]
    ids = [entry["request_id"] for entry in sorted(newest, key=lambda e: e["time"])[-2:]]
    ws.monitors.log_labels("watched", pd.DataFrame({"request_id": ids, "label": [1, 0]}))
    if not any(m.name == f"export-{fmt}" for m in ws.monitors.list()):
        ws.monitors.create(f"export-{fmt}", "watched", reference=reference, deployment="blue", schedule="1h")
    ws.monitors.run(f"export-{fmt}")
    first = export(ws, tmp_path / "bi", format=fmt)
    assert first.rows["fact_requests"] == requests and first.rows["dim_deployments"] == 1
    assert first.rows["fact_labels"] >= 2 and first.rows["fact_monitor_figures"] > 0 and first.rows["fact_events"] > 0

    if fmt == "parquet":
        db = duckdb.connect()
        for table in (t for t, count in first.rows.items() if count):  # a fact with no row yet has no file
            db.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{tmp_path}/bi/{table}/*.parquet')")
    else:
        db = duckdb.connect(str(tmp_path / "bi" / "mlops.duckdb"), read_only=True)
    joined = db.execute(
        "SELECT count(*), min(m.name), min(v.version) FROM fact_requests r "
        "JOIN dim_deployments d USING (endpoint, deployment) "
        "JOIN dim_versions v ON v.model = d.model_name AND v.version = d.model_version "
        "JOIN dim_models m ON m.name = v.model"
    ).fetchone()
    assert joined == (requests, "clf", 1)
    labelled = db.execute("SELECT count(*) FROM fact_labels JOIN fact_requests USING (request_id)").fetchone()[0]
    assert labelled == first.rows["fact_labels"]
    figures = db.execute(
        "SELECT count(DISTINCT f.monitor) FROM fact_monitor_figures f JOIN dim_monitors m USING (monitor) "
        "JOIN dim_endpoints e ON e.endpoint = m.endpoint WHERE f.figure = 'rows'"
    ).fetchone()[0]
    assert figures >= 1
    db.close()

    # Only what is new goes in next time
    send(ws, reference.sample(20, random_state=8))
    assert eventually(lambda: _lines(ws) == requests + 1), "the collector did not write the new request"
    second = export(ws, tmp_path / "bi", format=fmt)
    assert second.rows["fact_requests"] == _lines(ws) - requests and second.rows["fact_labels"] == 0
