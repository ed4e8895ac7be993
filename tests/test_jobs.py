"""Tracked jobs against a real MLflow store: what a run records, failures, nesting."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import jupyter_mlops as mlops
from jupyter_mlops import InvalidInput, Workspace
from jupyter_mlops.jobs import current_job


def _artifacts(ws: Workspace, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in ws.client.list_artifacts(run_id, path or None):
        found |= _artifacts(ws, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_job_records_code_environment_user_and_autologged_metrics(workspace: Workspace):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    # When a block trains a model inside a job
    with workspace.job(experiment="jobs", name="fit", tags={"team": "risk"}, source="model.fit(X, y)") as job:
        LogisticRegression(max_iter=300).fit(X, y)
        digest = job.log_dataset(X, name="iris-train")
    # Then the run holds the code, the environment, the user, the tags and what autologging saw
    run = workspace.runs.get(job.run_id)
    assert run.status == "FINISHED" and run.name == "fit" and run.experiment == "jobs"
    assert run.user == "tester" and run.tags["team"] == "risk"
    assert run.params["max_iter"] == "300"
    assert 0.9 < run.metrics["training_accuracy_score"] <= 1.0
    raw = workspace.client.get_run(job.run_id)
    assert len(raw.data.tags["mlops.env_hash"]) == 64
    assert raw.data.tags["mlops.python_version"].count(".") == 2
    files = _artifacts(workspace, job.run_id)
    assert {"code/cell.py", "environment/requirements.txt"} <= files
    requirements = workspace.client.download_artifacts(job.run_id, "environment/requirements.txt")
    assert "mlflow==" in Path(requirements).read_text()
    # and the dataset with its digest and context
    inputs = raw.inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("iris-train", digest)]
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_failure_marks_the_run_failed_keeps_the_traceback_and_reraises(workspace: Workspace):
    job = workspace.job(experiment="jobs", autolog=False)
    with pytest.raises(ZeroDivisionError), job:
        1 / 0  # noqa: B018
    run = workspace.runs.get(job.run_id)
    assert run.status == "FAILED"
    traceback_file = workspace.client.download_artifacts(job.run_id, "error/traceback.txt")
    text = Path(traceback_file).read_text()
    assert "ZeroDivisionError" in text and "1 / 0" in text


def test_jobs_nest(workspace: Workspace):
    with workspace.job(experiment="jobs", name="outer", autolog=False) as outer:
        with workspace.job(experiment="jobs", name="inner", autolog=False) as inner:
            pass
        assert current_job() is outer
    assert workspace.runs.get(inner.run_id).parent_run_id == outer.run_id
    assert workspace.runs.get(outer.run_id).parent_run_id is None
    assert workspace.runs.get(outer.run_id).status == "FINISHED"


def test_git_commit_branch_and_uncommitted_diff(local_workspace: Workspace, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "feature")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (repo / "train.py").write_text("print(1)\n")
    git("add", ".")
    git("commit", "-qm", "first")
    (repo / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(repo)
    with local_workspace.job(autolog=False) as job:
        pass
    tags = local_workspace.client.get_run(job.run_id).data.tags
    assert tags["mlflow.source.git.commit"] == git("rev-parse", "HEAD")
    assert tags["mlflow.source.git.branch"] == "feature"
    assert tags["mlops.git_dirty"] == "true"
    diff = Path(local_workspace.client.download_artifacts(job.run_id, "code/uncommitted.diff")).read_text()
    assert "-print(1)" in diff and "+print(2)" in diff


def test_notebook_copy_when_the_notebook_is_known(local_workspace: Workspace, tmp_path):
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    with local_workspace.job(notebook=notebook, autolog=False) as job:
        pass
    assert "code/analysis.ipynb" in _artifacts(local_workspace, job.run_id)
    assert local_workspace.client.get_run(job.run_id).data.tags["mlflow.source.name"] == str(notebook)


def test_log_dataset_outside_a_job_is_a_clear_error():
    import pandas as pd

    with pytest.raises(InvalidInput, match="needs a running job"):
        mlops.log_dataset(pd.DataFrame({"a": [1]}), name="x")


def test_module_level_job_uses_the_default_workspace(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setenv("MLOPS_WORKSPACE", str(tmp_path / "env-ws"))
    ws = mlops.use_workspace()
    with mlops.job(experiment="module", autolog=False) as job:
        digest = mlops.log_dataset(pd.DataFrame({"a": [1, 2]}), name="tiny", context="evaluation")
    assert ws.root == (tmp_path / "env-ws").resolve()
    assert [r.run_id for r in mlops.runs.list("module")] == [job.run_id]
    assert digest


def test_no_autolog_turns_autologging_off_for_that_job_only(local_workspace: Workspace):
    from sklearn.linear_model import LinearRegression

    X, y = [[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]
    with local_workspace.job(experiment="autolog") as on:
        LinearRegression().fit(X, y)
    with local_workspace.job(experiment="autolog", autolog=False) as off:
        LinearRegression().fit(X, y)
    with local_workspace.job(experiment="autolog") as on_again:
        LinearRegression().fit(X, y)
    params = {job: local_workspace.runs.get(job.run_id).params for job in (on, off, on_again)}
    assert params[on] and params[on_again] and params[off] == {}
