"""The Endpoint dashboard in a real JupyterLab: opened from the Endpoints panel, it draws the endpoint's stored live
figures with JupyterLab's own Vega renderer (one point per stored figure), and fits a 1280x800 window."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from jupyter_mlops.deploy import series
from tests.tiny_model import ROWS, onnx_classifier
from tests.ui.test_panels import open_section, wait_until
from tests.waiting import eventually

SHOTS = Path("/tmp")  # looked at by a person, not kept with the sources


@pytest.fixture
def endpoint(lab, tmp_path, monkeypatch):
    monkeypatch.setenv(series.INTERVAL_ENV, "0.5")  # the endpoint's supervisor inherits it
    ws = Workspace(lab.workspace)
    ws.models.register(onnx_classifier(tmp_path / "m.onnx"), "dash-model")
    ep = ws.endpoints.create("dash-api", auth="none")
    ep.deploy("blue", "dash-model:1")
    ep.set_traffic({"blue": 100})
    yield ws, ep
    ws.endpoints.delete("dash-api")


def _score(url: str) -> None:
    request = urllib.request.Request(url, json.dumps({"inputs": ROWS}).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def test_the_endpoint_dashboard_draws_every_stored_figure(page, endpoint):
    ws, ep = endpoint
    # Given an endpoint that served requests over at least three intervals
    for _ in range(3):
        done = len(ws.endpoints.history("dash-api"))
        for _ in range(10):
            _score(ep.scoring_uri)
        assert eventually(lambda d=done: len(ws.endpoints.history("dash-api")) > d, timeout=30)
    assert eventually(lambda: ws.endpoints.history("dash-api")["requests"].sum() == 30, timeout=30)
    table = ws.endpoints.history("dash-api")
    stored = len(table)
    # When its dashboard is opened from the Endpoints panel
    panel = open_section(page, "Endpoints")
    page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")
    card = panel.locator('[data-endpoint="dash-api"]')
    card.wait_for(timeout=30_000)
    card.locator("button", has_text="Dashboard").click()
    view = page.locator("#jp-main-dock-panel .jp-mlops-dashboard")
    view.locator(".vega-embed svg.marks").wait_for(timeout=60_000)
    # Then the tab draws what was stored when it was read: one point per figure in the rate charts, one per
    # latency quantile measured
    caption = view.locator(".jp-mlops-dashboard-summary").inner_text()  # what it read: "N interval(s) ..., M point(s)"
    intervals, points = int(caption.split(" interval(s)")[0]), int(caption.split(", ")[1].split(" point(s)")[0])
    drawn = ws.endpoints.history("dash-api").iloc[:points]  # the supervisor went on writing meanwhile
    assert intervals == drawn["time"].nunique() and points >= stored
    symbols = view.locator(".mark-symbol.role-mark path").count()
    expected = 2 * points + int(drawn["p50_ms"].notna().sum() + drawn["p99_ms"].notna().sum())
    assert symbols == expected, (symbols, expected)
    assert page.locator(".lm-TabBar-tab", has_text="Endpoint dash-api").count() == 1
    # And it fits the window without scrolling sideways
    fits = view.evaluate("node => node.scrollWidth <= node.clientWidth")
    assert fits, view.evaluate("node => [node.scrollWidth, node.clientWidth]")
    page.screenshot(path=SHOTS / "mlops-endpoint-dashboard.png")


FEATURES = ["f0", "f1", "f2"]


def test_the_monitor_dashboard_draws_every_run_with_its_thresholds(page, lab, tmp_path):
    import numpy as np
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    # Given a monitor of a real endpoint that ran three times, the last on shifted inputs (an alert)
    ws = Workspace(lab.workspace)
    reference = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 3)), columns=FEATURES)
    X = reference.to_numpy(np.float32)
    clf = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    ws.models.register(to_onnx(clf, X[:1], options={"zipmap": False}), "dash-clf")
    ep = ws.endpoints.create("dash-watched", auth="none")
    try:
        ep.deploy("blue", "dash-clf:1")
        ep.set_traffic({"blue": 100})
        ws.monitors.create("dash-drift", "dash-watched", reference=reference, schedule="1h")
        sent = 0
        for run, shift in enumerate((0.0, 0.0, 2.0)):
            if run == 1:
                ep.set_traffic({"blue": 100})  # a traffic change between the first two runs: an annotation
            frame = reference.sample(100, random_state=sent) + shift
            for start in range(0, 100, 25):
                ep.invoke(
                    {"dataframe_split": {"columns": FEATURES, "data": frame.iloc[start : start + 25].values.tolist()}}
                )
            sent += 100
            assert eventually(lambda n=sent: _collected(ws) >= n, timeout=60), "the collector did not write them"
            assert ws.monitors.run("dash-drift") is not None
        history = ws.monitors.history("dash-drift")
        assert history["alert"].any()
        # When its dashboard is opened from the Monitors panel
        panel = open_section(page, "Monitors")
        page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")
        row = panel.locator('[data-monitor="dash-drift"]')
        row.locator("button", has_text="Dashboard").click()
        view = page.locator("#jp-main-dock-panel .jp-mlops-dashboard", has_text="3 run(s)")
        view.locator(".vega-embed svg.marks").wait_for(timeout=60_000)
        # Then every stored figure is a point, each alert is marked again in red, each signal with a threshold
        # draws it as a rule, and each per-feature drift score is a cell of the heatmap
        assert view.locator(".jp-mlops-dashboard-summary").inner_text() == f"3 run(s), {len(history)} figure(s)"
        symbols = view.locator(".mark-symbol.role-mark path").count()
        assert symbols == len(history) + int(history["alert"].sum()), (symbols, len(history))
        with_threshold = history[history["threshold"].notna()]["signal"].nunique()
        signals = history["signal"].nunique()
        # and the traffic change is a labelled rule on every signal's chart
        assert view.locator(".mark-rule.role-mark line").count() == with_threshold + signals
        assert view.locator(".mark-text.role-mark text", has_text="traffic blue 100").count() == signals
        drift_scores = len(history[history["signal"] == "drift_score"])
        assert view.locator(".mark-rect.role-mark path").count() == drift_scores
        assert view.evaluate("node => node.scrollWidth <= node.clientWidth")
        page.screenshot(path=SHOTS / "mlops-monitor-dashboard.png")
        # And a click on a point of the first run opens that run's evidently report in a tab of its own
        first_run = history["run_id"].iloc[0]
        view.locator(".mark-symbol.role-mark path").first.click(force=True)  # lines may cross it: click it anyway
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=f"Drift: dash-drift (run {first_run[:8]})")
        tab.wait_for(timeout=60_000)
        title = f"Drift report of monitor dash-drift, run {first_run}"
        frame = page.locator(f'#jp-main-dock-panel .jp-mlops-report iframe[title="{title}"]')
        frame.wait_for()
        wait_until(lambda: len(frame.get_attribute("srcdoc") or "") > 10_000, what="the run's report")
    finally:
        ws.endpoints.delete("dash-watched")


def _collected(ws: Workspace) -> int:
    """The input rows the endpoint's collector wrote so far."""
    files = (ws.root / "collected" / "dash-watched" / "blue").glob("*.jsonl")
    return sum(len(json.loads(line)["input"]["dataframe_split"]["data"]) for f in files for line in f.open())
