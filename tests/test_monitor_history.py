"""A monitor's history in the metadata store, prediction drift, and the chart spec, over real endpoints."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import jupyter_mlops as mlops
from jupyter_mlops import InvalidInput, NotFound, Workspace
from jupyter_mlops.monitoring.charts import MIME, monitor_chart
from jupyter_mlops.monitoring.history import metric_name
from tests.waiting import eventually

FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(0).normal(size=(1000, 4)), columns=FEATURES)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, reference):
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    workspace = Workspace(tmp_path_factory.mktemp("history") / "ws")
    X = reference.to_numpy(np.float32)
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    workspace.models.register(to_onnx(model, X[:1], options={"zipmap": False}), "clf")
    ep = workspace.endpoints.create("watched", auth="none")
    ep.deploy("blue", "clf:1")
    ep.set_traffic({"blue": 100})
    yield workspace
    for name in [e.name for e in workspace.endpoints.list()]:
        workspace.endpoints.delete(name)


def send(ws: Workspace, endpoint: str, frame: pd.DataFrame) -> None:
    ep = ws.endpoints.get(endpoint)
    columns = [str(c) for c in frame.columns]
    for start in range(0, len(frame), 50):
        rows = frame.iloc[start : start + 50].astype(object).to_numpy().tolist()
        ep.invoke({"dataframe_split": {"columns": columns, "data": rows}})


def collected(ws: Workspace, endpoint: str) -> int:
    files = (ws.root / "collected" / endpoint).glob("*/*.jsonl")
    return sum(len(json.loads(line)["input"]["dataframe_split"]["data"]) for f in files for line in f.open())


def wait_collected(ws: Workspace, endpoint: str, rows: int) -> None:
    assert eventually(lambda: collected(ws, endpoint) >= rows), "the collector did not write the requests"


def test_history_rows_prediction_drift_and_its_event(ws, reference):
    seen = []
    ws.events.subscribe("prediction-watch", callback=seen.append, types=["prediction_drift.detected"])
    ws.monitors.create("hist", "watched", reference=reference, deployment="blue", schedule="1h")
    assert (ws.root / "monitors" / "hist" / "reference_predictions.parquet").is_file()

    # Given calm traffic, then traffic whose f0 shifted (the model's answer follows f0)
    send(ws, "watched", reference.sample(600, random_state=2))
    wait_collected(ws, "watched", 600)
    calm = ws.monitors.run("hist")
    ws.endpoints.set_traffic("watched", {"blue": 100})  # a traffic change between the runs (a chart annotation)
    shifted = reference.sample(600, random_state=3).copy()
    shifted["f0"] += 2.0
    send(ws, "watched", shifted)
    wait_collected(ws, "watched", 1200)
    stormy = ws.monitors.run("hist")

    # Then the calm run's outputs match the reference predictions and the stormy run's do not
    assert calm.prediction_drift is not None and calm.prediction_drift < 0.1 and calm.notes == []
    assert stormy.prediction_drift > 0.1
    history = ws.monitors.history("hist")
    assert list(history.columns) == ["time", "run_id", "signal", "feature", "value", "threshold", "alert"]
    assert history["run_id"].unique().tolist() == [calm.run_id, stormy.run_id]
    per_run = history.groupby("run_id").size()
    # rows, drift_share, 4 x (drift_score, null_rate, out_of_range_share), prediction_drift
    assert per_run[calm.run_id] == per_run[stormy.run_id] == 1 + 1 + 4 * 3 + 1
    prediction = history.query("signal == 'prediction_drift'")
    assert prediction["feature"].tolist() == ["prediction", "prediction"]
    assert prediction["alert"].tolist() == [False, True] and set(prediction["threshold"]) == {0.1}
    assert bool(history.query("signal == 'drift_share'")["alert"].iloc[-1]) is stormy.drifted

    # And every figure is the MLflow metric of its run
    for run in (calm, stormy):
        metrics = ws.runs.get(run.run_id).metrics
        part = history[history["run_id"] == run.run_id]
        for signal, feature, value in part[["signal", "feature", "value"]].itertuples(index=False):
            assert metrics[metric_name(signal, feature)] == pytest.approx(value), (signal, feature)

    # And since= keeps the later window only, signal= one signal; at the top level too
    later = ws.monitors.history("hist", since=stormy.window_start + (stormy.window_end - stormy.window_start) / 2)
    assert later["run_id"].unique().tolist() == [stormy.run_id]
    assert ws.monitors.history("hist", since=stormy.window_end.isoformat())["run_id"].nunique() == 1
    assert set(ws.monitors.history("hist", signal="drift_score")["signal"]) == {"drift_score"}
    with pytest.raises(InvalidInput, match="ISO 8601"):
        ws.monitors.history("hist", since="yesterday")
    with pytest.raises(NotFound):
        ws.monitors.history("nope")
    import jupyter_mlops.workspace as workspaces

    previous = workspaces._default
    mlops.use_workspace(ws.root)
    try:
        assert len(mlops.monitors.history("hist")) == len(history)
    finally:
        workspaces._default = previous

    # And the drift crossing emitted prediction_drift.detected once, in drift.detected's style
    ws.events.deliver(timeout=3)
    [event] = seen
    assert event.data["dataDriftName"] == "hist" and event.data["runId"] == stormy.run_id
    assert event.data["drifted_outputs"] == ["prediction"]
    assert event.data["driftCoefficient"] == pytest.approx(stormy.prediction_drift)
    assert event.data["baseDatasetId"].endswith("reference_predictions.parquet")

    # And the chart: a line chart per signal with its threshold rule and alert points, and the heatmap
    chart = mlops.ui.monitor("hist", workspace=ws)
    bundle = chart._repr_mimebundle_()
    spec = bundle[MIME]
    assert "2 run(s)" in bundle["text/plain"]
    assert spec["$schema"].endswith("/vega-lite/v5.json")
    assert len(spec["data"]["values"]) == len(history)
    panels = spec["vconcat"]
    signals = list(dict.fromkeys(history["signal"]))
    assert [p["title"] for p in panels] == [*signals, "drift score per feature"]
    for panel in panels[:-1]:
        marks = [layer["mark"]["type"] for layer in panel["layer"]]
        assert marks == ["line", "point", "rule", "point", "rule", "text"]
        assert panel["layer"][3]["transform"] == [{"filter": "datum.alert"}]
        # the traffic change between the two runs, and not the deployment made before the first
        assert [c["label"] for c in panel["layer"][4]["data"]["values"]] == ["traffic blue 100"]
        assert panel["layer"][1]["mark"]["cursor"] == "default"  # a click opens a report in the Lab only
    assert panels[-1]["mark"] == "rect" and panels[-1]["encoding"]["y"]["field"] == "feature"
    alerts = [v for v in spec["data"]["values"] if v["alert"]]
    assert len(alerts) == int(history["alert"].sum()) > 0
    json.dumps(spec, allow_nan=False)  # a spec the frontend can parse: no NaN

    # And deleting the monitor deletes its history
    ws.monitors.delete("hist")
    ws.monitors.create("hist", "watched", reference=reference, schedule="1h")
    assert ws.monitors.history("hist").empty
    assert monitor_chart(ws.monitors.history("hist"))["vconcat"][0]["mark"] == "text"
    ws.monitors.delete("hist")


def test_prediction_drift_is_skipped_with_the_reason_when_no_model_can_score(ws, reference):
    ws.endpoints.create("empty", auth="none")
    ws.monitors.create("nomodel", "empty", reference=reference, schedule="1h")
    from jupyter_mlops.monitoring.predictions import reference_predictions

    frame, why = reference_predictions(ws.root / "monitors" / "nomodel")
    assert frame is None and "no deployment" in why
    # the window is scored all the same, once requests arrive: here on the other endpoint's model
    ws.monitors.delete("nomodel")


def test_categorical_and_numeric_columns_end_to_end(ws):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"plan": rng.choice(["basic", "pro", "team"], 800), "usage": rng.gamma(2.0, 10.0, 800)})
    target = frame["usage"] * 2 + frame["plan"].map({"basic": 0, "pro": 30, "team": 60})
    encode = ColumnTransformer([("plan", OneHotEncoder(), ["plan"])], remainder="passthrough")
    ws.models.register(make_pipeline(encode, LinearRegression()).fit(frame, target), "spend")
    ep = ws.endpoints.create("spend-api", auth="none")
    ep.deploy("blue", "spend:1")
    ep.set_traffic({"blue": 100})
    ws.monitors.create("spend", "spend-api", reference=frame, schedule="1h")

    moved = frame.sample(400, random_state=1).copy()
    moved["plan"] = "team"  # a categorical shift that moves the (numeric) predictions too
    send(ws, "spend-api", moved)
    wait_collected(ws, "spend-api", 400)
    run = ws.monitors.run("spend")

    history = ws.monitors.history("spend")
    scores = history.query("signal == 'drift_score'").set_index("feature")
    assert set(scores.index) == {"plan", "usage"}
    assert bool(scores.loc["plan", "alert"]) and not bool(scores.loc["usage", "alert"])
    assert "out_of_range_share" not in set(history.query("feature == 'plan'")["signal"])  # numbers only
    [prediction] = history.query("signal == 'prediction_drift'").itertuples()
    assert prediction.feature == "prediction" and prediction.alert and run.prediction_drift == prediction.value
    spec = monitor_chart(history)
    assert {"plan", "usage"} <= {v["feature"] for v in spec["data"]["values"]}
