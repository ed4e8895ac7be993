"""The notebook panels (``mlops.ui``): ipywidgets over the core, driven without a browser."""

from __future__ import annotations

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import Workspace
from tests.waiting import eventually


@pytest.fixture
def ws(tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    ws.models.register(weights, "churn", tags={"stage": "prod"})
    ws.models.register(weights, "churn", tags={"stage": "dev"})
    return ws


def test_models_panel_filters_pages_and_sets_aliases(ws, tmp_path):
    panel = mlops.ui.models(workspace=ws)
    assert "2 version(s) of 1 model(s)" in panel.summary.value
    assert panel.table.value.count("<tr>") == 3  # header + 2
    # filter by tag
    panel.filter.value = "stage=prod"
    panel.refresh()
    assert panel.table.value.count("<tr>") == 2 and "stage=prod" in panel.table.value
    # a bad filter is explained inline
    panel.filter.value = "stage=prod,,"
    panel.refresh()
    assert "TagName=TagValue" in panel.error.value and panel.table.value == ""
    # set an alias through the core
    panel.filter.value = ""
    panel.alias_target.value, panel.alias_name.value = "churn:2", "champion"
    panel.set_alias()
    assert ws.models.get("churn", "champion").version == 2
    assert panel.error.value == ""
    panel.alias_target.value = "churn"
    panel.set_alias()
    assert "NAME:VERSION" in panel.error.value


def test_models_panel_paginates(ws, tmp_path, monkeypatch):
    from jupyter_mlops.widgets import panels

    monkeypatch.setattr(panels, "PAGE_SIZE", 1)
    panel = panels.ModelsPanel(ws)
    assert panel.pages == 2 and panel.prev_button.disabled and not panel.next_button.disabled
    panel.next_button.click()
    assert panel.page == 1 and panel.next_button.disabled and "page 2 of 2" in panel.summary.value


def test_runs_panel_filters_by_experiment(ws):
    with ws.job(experiment="churn", name="train", autolog=False):
        pass
    panel = mlops.ui.runs(workspace=ws)
    assert "train" in panel.table.value and "register-churn" in panel.table.value
    assert ("churn", "churn") in panel.experiment.options
    panel.experiment.value = "churn"
    assert "train" in panel.table.value and "register-churn" not in panel.table.value
    panel.experiment.value = ""
    assert "register-churn" in panel.table.value
    assert "No experiment named" in mlops.ui.runs("nope", workspace=ws).error.value


@pytest.fixture
def served(tmp_path):
    """A workspace with an endpoint ``api`` serving a small scikit-learn classifier as ``blue`` and ``green``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    ws = Workspace(tmp_path / "served")
    X = np.random.default_rng(0).normal(size=(200, 4))
    ws.models.register(LogisticRegression().fit(X, X[:, 0] > 0), "clf")
    ep = ws.endpoints.create("api", auth="none")
    ep.deploy("blue", "clf:1")
    ep.deploy("green", "clf:1")
    ep.set_traffic({"blue": 100, "green": 0})
    yield ws
    ep.delete()


def test_endpoint_panel_changes_the_split_sends_requests_and_reads_logs(served):
    panel = mlops.ui.endpoint("api", workspace=served)
    assert "api" in panel.header.value and panel.table.value.count("<tr>") == 3
    assert (panel.traffic["blue"].value, panel.traffic["green"].value) == (100, 0)
    # a split that does not add up is refused by the core, inline, and changes nothing
    panel.traffic["blue"].value, panel.traffic["green"].value = 70, 20
    panel.apply_button.click()
    assert "sum to 0 or 100, not 90" in panel.error.value
    assert served.endpoints.show("api").traffic == {"blue": 100, "green": 0}
    # a valid one applies, with a mirror moved in the same click
    panel.traffic["blue"].value, panel.traffic["green"].value = 100, 0
    panel.mirror["green"].value = 25
    panel.apply_button.click()
    info = served.endpoints.show("api")
    assert (info.traffic, info.mirror) == ({"blue": 100, "green": 0}, {"green": 25})
    # a test request, then the live figures count it
    panel.body.value = '{"inputs": [[0.5, 0, 0, 0], [-0.5, 0, 0, 0]]}'
    panel.send_button.click()
    assert "&quot;predictions&quot;: [\n    true,\n    false" in panel.response.value
    panel.refresh()  # a rate needs two readings

    def figures_shown() -> bool:
        panel.refresh()
        return "ms</td>" in panel.table.value

    eventually(figures_shown, timeout=10, interval=0.2)
    assert "ms</td>" in panel.table.value and "No live figures" not in panel.table.value, panel.table.value
    panel.body.value = "{not json"
    panel.send_button.click()
    assert "not valid JSON" in panel.response.value
    panel.logs_button.click()
    assert "<pre" in panel.logs.value
    assert "No endpoint named" in mlops.ui.endpoint("nope", workspace=served).error.value


def test_drift_panel_shows_the_verdict_features_and_report(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    current = reference.sample(200, random_state=1).copy()
    current["a"] += 2.0
    panel = mlops.ui.drift(mlops.drift(reference, current, drift_share=0.3))
    assert "drift detected: 33% of the features drifted" in panel.summary.value
    assert panel.table.value.count("<tr") == 4  # header + a, b, c
    panel.report_button.click()
    assert panel.report.value.startswith('<iframe sandbox="allow-scripts" srcdoc=')
    # a monitor's name: its last run, or why there is none
    ws = Workspace(tmp_path / "ws")
    assert "No monitor named" in mlops.ui.drift("nope", workspace=ws).summary.value
    with pytest.raises(mlops.InvalidInput, match=r"mlops\.drift"):
        mlops.ui.drift(42)
