"""The notebook panels (``mlops.ui``): ipywidgets over the core, driven without a browser."""

from __future__ import annotations

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import Workspace


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
    assert "name:version" in panel.error.value


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
