"""The Endpoint dashboard in a real JupyterLab: opened from the Endpoints panel, it draws the endpoint's stored live
figures with JupyterLab's own Vega renderer (one point per stored figure), and fits a 1280x800 window."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from jupyter_mlops.deploy import series
from tests.ui.test_panels import open_section
from tests.waiting import eventually

SHOTS = Path("/tmp")  # looked at by a person, not kept with the sources
ROWS = [[0.0, 1.0], [1.0, 0.0]]


def _onnx_model(path: Path) -> Path:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = np.array(ROWS, dtype=np.float32)
    path.write_bytes(to_onnx(LogisticRegression().fit(X, [0, 1]), X[:1], options={"zipmap": False}).SerializeToString())
    return path


@pytest.fixture
def endpoint(lab, tmp_path, monkeypatch):
    monkeypatch.setenv(series.INTERVAL_ENV, "0.5")  # the endpoint's supervisor inherits it
    ws = Workspace(lab.workspace)
    ws.models.register(_onnx_model(tmp_path / "m.onnx"), "dash-model")
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
