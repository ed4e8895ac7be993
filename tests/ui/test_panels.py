"""The Endpoints, Pipelines and Monitors panels, deploy from Models, a run's notebook and the drift notification, in
a real JupyterLab driven by headless Chromium against real endpoints (screenshots in tests/ui/screenshots/)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from tests.ui.conftest import SCREENSHOTS
from tests.waiting import eventually

SIDEBAR_TAB = '.jp-SideBar [data-id="jp-mlops-sidebar"]'
FEATURES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(scope="module")
def ws(lab) -> Workspace:
    return Workspace(lab.workspace)


@pytest.fixture(scope="module")
def reference():
    import numpy as np
    import pandas as pd

    return pd.DataFrame(np.random.default_rng(0).normal(size=(300, 4)), columns=FEATURES)


@pytest.fixture(scope="module")
def endpoint(ws, reference) -> Iterator[str]:
    """``churn-api`` serving a small scikit-learn classifier (``clf:1``) as ``blue`` (all traffic) and ``green``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(reference.to_numpy(), (reference["f0"] > 0).astype(int))
    ws.models.register(model, "clf")
    ep = ws.endpoints.create("churn-api")
    ep.deploy("blue", "clf:1")
    ep.deploy("green", "clf:1")
    ep.set_traffic({"blue": 100, "green": 0})
    yield "churn-api"
    ep.delete()


def open_section(page, label: str):
    """Open the MLOps sidebar with only the section ``label`` expanded (the others collapsed)."""
    if not page.locator("#jp-mlops-sidebar").is_visible():
        page.click(SIDEBAR_TAB)
        page.wait_for_selector("#jp-mlops-sidebar", state="visible")
    sidebar = page.locator("#jp-mlops-sidebar")
    titles = sidebar.locator(".lm-AccordionPanel-title")
    for index in range(titles.count()):
        title = titles.nth(index)
        expanded = title.get_attribute("aria-expanded") == "true"
        if expanded != (title.get_attribute("aria-label") == f"{label} Section"):
            title.click()
    section = sidebar.locator(f"#jp-mlops-{label.lower()}")
    section.wait_for(state="visible")
    return section


def refresh_all(page) -> None:
    page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")


def dark_screenshot(page, name: str) -> None:
    """The page as it is, in JupyterLab's dark theme (then back to light)."""
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached", timeout=20_000)
    page.wait_for_timeout(500)
    page.screenshot(path=SCREENSHOTS / name)
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.wait_for_selector("body[data-jp-theme-light='true']", state="attached", timeout=20_000)


def wait_until(condition, timeout: float = 30, what: str = "the condition") -> None:
    assert eventually(condition, timeout, interval=0.2), f"{what} did not happen within {timeout} s"


def test_endpoints_panel_shows_the_endpoint_and_changes_its_traffic(page, ws, endpoint, reference):
    # Given a real endpoint with two deployments, blue taking all the traffic
    panel = open_section(page, "Endpoints")
    refresh_all(page)
    card = panel.locator(f'[data-endpoint="{endpoint}"]')
    card.locator('[data-deployment="green"]').wait_for()
    assert card.get_by_label("Traffic of blue").input_value() == "100"
    assert "clf:1" in card.locator('[data-deployment="blue"]').inner_text()
    # When the split typed does not add up to 100; Then the panel says so and Apply stays disabled
    card.get_by_label("Traffic of blue").fill("70")
    card.get_by_label("Traffic of green").fill("20")
    card.get_by_text("Traffic must add up to 100% (now 90%).").wait_for()
    assert card.get_by_role("button", name="Apply").is_disabled()
    page.screenshot(path=SCREENSHOTS / "endpoints-invalid-split.png")
    # When it does and Apply is clicked; Then the real endpoint has the new split
    card.get_by_label("Traffic of green").fill("30")
    card.get_by_role("button", name="Apply").click()
    card.get_by_text("Applied: blue 70% · green 30%.").wait_for(timeout=30_000)
    assert ws.endpoints.show(endpoint).traffic == {"blue": 70, "green": 30}
    # When requests keep arriving; Then a request rate and the latency show within a few polls
    rows = reference.head(5).to_numpy().tolist()
    live = card.locator('[data-deployment="blue"] .jp-mlops-live')
    for _ in range(30):
        ws.endpoints.invoke(endpoint, {"inputs": rows})

    def busy() -> bool:
        ws.endpoints.invoke(endpoint, {"inputs": rows})
        text = live.inner_text()
        return "p50 \u2013" not in text and not text.startswith(("0.00", "\u2013"))

    wait_until(busy, timeout=30, what="a request rate and latency for blue")
    assert re.fullmatch(r"[\d.]+ req/s\s+p50 [\d.]+ m?s\s+p99 [\d.]+ m?s", live.inner_text()), live.inner_text()
    # And a test request from the panel answers with the predictions
    card.get_by_text("Test request").click()
    card.get_by_label(f"Test request body for {endpoint}").fill(json.dumps({"inputs": rows[:2]}))
    card.get_by_role("button", name="Send").click()
    response = card.get_by_label("Response")
    response.wait_for()
    assert json.loads(response.inner_text()) == {"predictions": [int(r[0] > 0) for r in rows[:2]]}
    # And the router's log reads back
    card.get_by_role("button", name="Show logs").click()
    card.locator(".jp-mlops-log-text").wait_for()
    page.screenshot(path=SCREENSHOTS / "endpoints.png")
    dark_screenshot(page, "endpoints-dark.png")
    # A bad body is explained, not sent
    card.get_by_label(f"Test request body for {endpoint}").fill("{inputs")
    card.get_by_role("button", name="Send").click()
    card.locator(".jp-mlops-response-error", has_text="not valid JSON").wait_for()


def test_deploy_a_model_version_from_the_models_panel(page, ws, endpoint):
    # Given the registered clf:1; When the user deploys it from the Models panel as "red"
    models = open_section(page, "Models")
    refresh_all(page)
    version = models.locator(".jp-mlops-group", has_text="clf").locator('.jp-mlops-version[data-version="1"]')
    version.get_by_role("button", name="deploy").click()
    dialog = page.locator(".jp-Dialog")
    assert dialog.get_by_label("Endpoint").input_value() == endpoint
    dialog.get_by_label("Deployment name").fill("red")
    page.screenshot(path=SCREENSHOTS / "deploy-dialog.png")
    dialog.get_by_role("button", name="Deploy").click()
    # Then the Endpoints panel opens on the new deployment, which the real endpoint has
    endpoints = page.locator("#jp-mlops-endpoints")
    endpoints.locator('[data-deployment="red"]').wait_for(timeout=60_000)
    endpoints.locator(".jp-mlops-message-info", has_text="Deployed clf:1 to churn-api/red").wait_for()
    assert "red" in {d.name for d in ws.endpoints.show(endpoint).deployments}
    # And a deployment name the server refuses is explained
    open_section(page, "Models")
    version.get_by_role("button", name="deploy").click()
    dialog.get_by_label("Deployment name").fill("Not Valid!")
    dialog.get_by_role("button", name="Deploy").click()
    endpoints.locator(".jp-mlops-message-error", has_text="not a valid deployment name").wait_for(timeout=30_000)


def test_drift_notification_opens_the_report_and_the_monitors_panel_lists_it(page, ws, endpoint, reference):
    page.click(SIDEBAR_TAB)
    page.wait_for_selector("#jp-mlops-events .jp-mlops-dot-on", timeout=10_000)  # the event stream is connected
    # Given a monitor over the endpoint, and shifted requests in its window
    ws.monitors.create("churn-drift", endpoint, reference=reference, schedule="1h")
    shifted = reference.sample(120, random_state=1).copy()
    shifted[["f0", "f1"]] += 3.0
    for start in range(0, 120, 30):
        ws.endpoints.invoke(endpoint, {"inputs": shifted.iloc[start : start + 30].to_numpy().tolist()})
    wait_until(lambda: _collected_rows(ws, endpoint) >= 120, what="the collection of 120 rows")
    # When the monitor runs (emitting drift.detected)
    assert ws.monitors.run("churn-drift").drifted
    # Then a notification says so
    toast = page.locator(".Toastify__toast", has_text="Drift detected by monitor churn-drift")
    toast.wait_for(timeout=20_000)
    # (the window also holds the earlier tests' requests: repeated rows, which drift too)
    assert re.search(r"churn-drift: \d+% of the features drifted \(f0, f1", toast.inner_text())
    page.wait_for_timeout(800)  # the toast's slide-in
    page.screenshot(path=SCREENSHOTS / "drift-notification.png")
    # And the Monitors panel lists the monitor with its last result
    monitors = open_section(page, "Monitors")
    row = monitors.locator('[data-monitor="churn-drift"]')
    row.locator(".jp-mlops-drift-text", has_text=re.compile(r"^drift: \d+% of features drifted$")).wait_for()
    page.screenshot(path=SCREENSHOTS / "monitors.png")
    dark_screenshot(page, "monitors-dark.png")
    # When the notification's button is clicked; Then the evidently report opens in a main-area tab
    toast.get_by_role("button", name="Open report").click()
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="Drift: churn-drift")
    tab.wait_for()
    frame = page.locator("#jp-main-dock-panel .jp-mlops-report iframe")
    frame.wait_for()
    assert frame.get_attribute("sandbox") == "allow-scripts"
    wait_until(lambda: len(frame.get_attribute("srcdoc") or "") > 10_000, what="the report")
    page.wait_for_timeout(3000)  # the report's scripts draw its charts
    page.screenshot(path=SCREENSHOTS / "drift-report.png")
    # And the panel's button opens the same tab (no second one)
    row.get_by_role("button", name="Report").click()
    assert page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text="Drift: churn-drift").count() == 1


def _collected_rows(ws: Workspace, endpoint: str) -> int:
    files = (ws.root / "collected" / endpoint).glob("*/*.jsonl")
    return sum(len(json.loads(line)["input"]["inputs"]) for f in files for line in f.open())


def test_pipelines_panel_shows_step_states_and_jobs_open_the_executed_notebook(page, ws, tmp_path):
    # Given a pipeline run where one step succeeded and one failed
    from jupyter_mlops.pipelines import run

    run(_two_steps(tmp_path / "pipeline"), workspace=ws)
    # Then the Pipelines panel lists it with the state of each step
    pipelines = open_section(page, "Pipelines")
    refresh_all(page)
    group = pipelines.locator('[data-pipeline="nightly"]')
    group.locator('[data-step="prepare"][data-state="succeeded"]').wait_for()
    assert group.locator('[data-step="train"]').get_attribute("data-state") == "failed"
    page.screenshot(path=SCREENSHOTS / "pipelines.png")
    dark_screenshot(page, "pipelines-dark.png")
    # When the user opens the code of the prepare step's run from the Jobs panel
    jobs = open_section(page, "Jobs")
    step = jobs.locator(".jp-mlops-run", has_text="prepare").first
    step.get_by_role("button", name="code").click()
    # Then the executed notebook opens (a copy: the artifact store is outside the server root), with its output
    notebook = page.locator("#jp-main-dock-panel .jp-NotebookPanel:visible")
    notebook.locator(".jp-OutputArea-output", has_text="prepared").wait_for(timeout=30_000)
    tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
    assert tab.inner_text().strip().endswith("-prepare.ipynb")
    page.screenshot(path=SCREENSHOTS / "jobs-open-notebook.png")


def _two_steps(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for step, code in (("prepare", "print('prepared')"), ("train", "raise RuntimeError('no data')")):
        cell = {"cell_type": "code", "id": "c0", "metadata": {}, "execution_count": None, "outputs": [], "source": code}
        kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
        document = {"cells": [cell], "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
        (folder / f"{step}.ipynb").write_text(json.dumps(document))
    spec = folder / "pipeline.yaml"
    spec.write_text("name: nightly\nsteps:\n  prepare: {notebook: prepare.ipynb}\n  train: {notebook: train.ipynb}\n")
    return spec


def test_a_cell_job_shows_its_source(page, ws):
    # Given a job that ran a cell (no notebook)
    with ws.job(experiment="adhoc", name="cell-job", source="x = 41\nprint(x + 1)\n", autolog=False):
        pass
    jobs = open_section(page, "Jobs")
    refresh_all(page)
    # When its code is asked for; Then a dialog shows the cell
    jobs.locator(".jp-mlops-run", has_text="cell-job").get_by_role("button", name="code").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("pre.jp-mlops-code", has_text="print(x + 1)").wait_for()
    page.screenshot(path=SCREENSHOTS / "jobs-cell-source.png")
    dialog.get_by_role("button", name="Close").click()


def test_a_failed_deployment_notifies_and_shows_the_endpoint(page, ws, endpoint, tmp_path):
    from jupyter_mlops import MlopsError

    page.click(SIDEBAR_TAB)
    page.wait_for_selector("#jp-mlops-events .jp-mlops-dot-on", timeout=10_000)
    # Given a registered version that is no model at all; When it is deployed, the deployment fails to load
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"not a model")
    ws.models.register(weights, "broken")
    with pytest.raises(MlopsError, match="failed to load"):
        ws.endpoints.deploy(endpoint, "broken", "broken:1")
    # Then a notification says so, and its button shows the endpoint with the failed deployment
    toast = page.locator(".Toastify__toast", has_text=f"Deployment {endpoint}/broken of broken:1 failed")
    toast.wait_for(timeout=20_000)
    toast.get_by_role("button", name="Show endpoint").click()
    card = page.locator(f'#jp-mlops-endpoints [data-endpoint="{endpoint}"].jp-mlops-selected')
    card.wait_for()
    card.locator('[data-deployment="broken"] .jp-mlops-deployment-error').wait_for()
    open_section(page, "Endpoints")  # the card, with the room to read it
    card.locator('[data-deployment="broken"]').scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "deployment-failed.png")
