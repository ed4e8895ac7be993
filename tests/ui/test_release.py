"""The release gates in a real JupyterLab: a version's gate and approval badges, Approve then Promote from the Models
panel (the alias moves), and the comparison of the candidate with the champion in a main-area tab."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jupyter_mlops import Workspace
from tests.ui.test_panels import open_section

SHOTS = Path("/tmp")  # looked at by a person, not kept with the sources
MODEL = "rel-churn"  # a model no other test of this Lab uses


@pytest.fixture
def ws(lab) -> Workspace:
    return Workspace(lab.workspace)


def _notebook(path: Path, c: float) -> Path:
    cells = [("markdown", "# Churn"), ("code", f"C = {c}\nmodel = fit(C)")]
    book = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for kind, source in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(book))
    return path


def _train(ws: Workspace, folder: Path, c: float) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    notebook = _notebook(folder / "train.ipynb", c)
    weights = folder / "weights.bin"
    weights.write_bytes(f"weights {c}".encode())
    with ws.job(experiment=MODEL, name=f"train-{c}", notebook=notebook, autolog=False) as job:
        ws.client.log_param(job.run_id, "C", str(c))
        ws.client.log_metric(job.run_id, "accuracy", 0.8 if c == 1.0 else 0.85)
        return ws.models.register(weights, MODEL).version


def _gate(ws: Workspace, version: int) -> None:
    """A passed gate recorded the way ``evaluate`` records one (its own run, then the version's tags)."""
    from jupyter_mlops.release.evaluate import GATE_PASSED_TAG, RUN_CANDIDATE_TAG, tag_version

    tags = {RUN_CANDIDATE_TAG: f"{MODEL}:{version}", GATE_PASSED_TAG: "true"}
    run = ws.client.create_run(ws.experiment_id("gates"), run_name="gate", tags=tags)
    ws.client.set_terminated(run.info.run_id)
    tag_version(
        ws, MODEL, version, passed=True, run_id=run.info.run_id, baseline=None, baseline_alias=None,
        evaluated_at=datetime.now(timezone.utc), failures=[],
    )  # fmt: skip


def test_approve_then_promote_moves_the_alias_and_the_comparison_opens(page, ws, tmp_path):
    # Given a champion (gated, approved, promoted) and a candidate that passed its gate and awaits approval
    champion = _train(ws, tmp_path / "first", 1.0)
    _gate(ws, champion)
    ws.release.request_approval(MODEL, champion, reason="first model")
    ws.release.approve(MODEL, champion, comment="baseline")
    ws.release.promote(MODEL, champion, "champion", reason="first release")
    candidate = _train(ws, tmp_path / "second", 0.1)
    _gate(ws, candidate)
    ws.release.request_approval(MODEL, candidate, reason="better accuracy")

    models = open_section(page, "Models")  # the other sections collapsed: room for the versions
    page.evaluate("window.jupyterapp.commands.execute('jupyter-mlops:refresh')")
    group = models.locator(".jp-mlops-group", has=page.locator(".jp-mlops-group-name", has_text=MODEL))
    row = group.locator(f'.jp-mlops-version[data-version="{candidate}"]')
    # Then the candidate shows its gate verdict and that it awaits approval; the champion holds the alias
    row.locator('[data-gate="passed"]').wait_for(timeout=30_000)
    row.locator('[data-approval="PendingApproval"]').wait_for()
    group.locator(f'.jp-mlops-version[data-version="{champion}"] .jp-mlops-alias', has_text="@champion").wait_for()

    # When the candidate is compared with the champion, the report opens in a main-area tab
    row.locator(".jp-mlops-compare-button").click()
    report = page.locator("#jp-main-dock-panel .jp-mlops-compare-report")
    report.wait_for(timeout=60_000)
    assert page.locator(".lm-TabBar-tab", has_text=f"Compare {MODEL}:{champion} → {candidate}").count() == 1
    assert "Parameters: 1 differ" in report.locator('[data-section="params"] h3').inner_text()
    assert report.locator('[data-section="params"] td').all_inner_texts() == ["C", "1.0", "0.1"]
    cell = report.locator(".jp-mlops-compare-modified")
    assert "cell 1 (code) modified" in cell.inner_text()
    assert "-C = 1.0" in cell.inner_text() and "+C = 0.1" in cell.inner_text()
    page.screenshot(path=SHOTS / "mlops-compare-tab.png")

    # When the reviewer approves it with a comment
    row.locator(".jp-mlops-approve").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("textarea").fill("looked at the confusion matrix")
    dialog.locator(".jp-mod-accept").click()
    # Then it shows as approved, with who and why in its tooltip
    badge = row.locator('[data-approval="Approved"]')
    badge.wait_for(timeout=30_000)
    assert "looked at the confusion matrix" in badge.get_attribute("title")

    page.screenshot(path=SHOTS / "mlops-models-approved.png")
    # When they promote it to champion with a reason
    row.locator(".jp-mlops-promote").click()
    dialog = page.locator(".jp-Dialog")
    assert dialog.locator("input.jp-mlops-release-alias").input_value() == "champion"
    dialog.locator("textarea").fill("May retrain")
    dialog.locator(".jp-mod-accept").click()
    # Then the alias moves to the candidate, and the registry agrees
    row.locator(".jp-mlops-alias", has_text="@champion").wait_for(timeout=30_000)
    group.locator(f'.jp-mlops-version[data-version="{champion}"] .jp-mlops-alias').wait_for(state="detached")
    assert ws.models.get_model(MODEL).aliases["champion"] == candidate
    models.locator(".jp-mlops-message", has_text=f"now points at version {candidate}").wait_for()
    page.screenshot(path=SHOTS / "mlops-models-release.png")
