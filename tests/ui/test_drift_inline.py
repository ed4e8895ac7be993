"""The inline drift report in a real JupyterLab notebook, in headless Chromium: evidently's report renders in the
output (its scripts run in the output's iframe) instead of staying a blank "Loading…"."""

from __future__ import annotations

import json
import urllib.request

import nbformat

from tests.ui.conftest import SCREENSHOTS, Lab

NOTEBOOK = "drift-inline.ipynb"
CELL = """\
import numpy as np
import pandas as pd
import jupyter_mlops as mlops

rng = np.random.default_rng(0)
reference = pd.DataFrame(rng.normal(size=(500, 3)), columns=["age", "income", "tenure"])
current = pd.DataFrame(rng.normal(size=(500, 3)), columns=reference.columns)
current["age"] += 1.5
mlops.drift(reference, current)
"""


def put_notebook(lab: Lab, path: str, source: str) -> None:
    """Save a one-cell notebook through the Contents API (the server's own root folder)."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    body = json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode()
    request = urllib.request.Request(
        f"{lab.url}/api/contents/{path}?token={lab.token}",
        data=body,
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


def test_drift_report_renders_inline(page, lab):
    # Given a notebook whose cell displays mlops.drift(reference, current), one column shifted
    put_notebook(lab, NOTEBOOK, CELL)
    page.evaluate(f"window.jupyterapp.commands.execute('docmanager:open', {{path: '{NOTEBOOK}'}})")
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
    # When the cell runs
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    output = page.locator(".jp-OutputArea-output", has_text="of the features drifted")
    output.wait_for(timeout=180_000)
    # Then our summary line shows, and evidently's report renders in the output's iframe (its scripts ran): the
    # drift table has a row per column with its test and verdict, and nothing is left "Loading…"
    assert "no drift: 33% of the features drifted" in output.inner_text()
    report = page.frame_locator(".jp-OutputArea-output iframe").first
    report.get_by_text("Data Drift Summary").wait_for(timeout=120_000)
    assert "Drift is detected for 33.333% of columns (1 out of 3)" in report.locator("body").inner_text()
    rows = {column: report.locator("tr", has_text=column).first.inner_text() for column in ("age", "income", "tenure")}
    assert "K-S p_value" in rows["age"] and "Not Detected" not in rows["age"] and "Detected" in rows["age"]
    assert "Not Detected" in rows["income"] and "Not Detected" in rows["tenure"]
    assert "Loading" not in report.locator("body").inner_text()
    page.set_viewport_size({"width": 1400, "height": 1000})  # room for the report next to nothing else
    page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
    page.locator(".jp-OutputArea-output iframe").first.scroll_into_view_if_needed()
    report.get_by_text("Data Drift Summary").evaluate("title => title.scrollIntoView()")  # the table, in view
    page.wait_for_timeout(500)  # the distribution sparklines finish drawing
    page.screenshot(path=SCREENSHOTS / "drift-inline.png")
