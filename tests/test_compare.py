"""``mlops.compare``: two real jobs in a git repository, each training from a notebook on a registered dataset with
its own parameters, metrics and packages; every section of the comparison is checked against what differs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_mlops import InvalidInput, NotFound, Workspace
from jupyter_mlops import snapshot as snap

BIN = Path(sys.executable).parent
FEATURES = ["tenure", "spend"]


def _notebook(path: Path, cells: list[tuple[str, str]]) -> None:
    book = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for kind, source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(book, indent=1))


def _git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def _frame(rows: int, *, extra: bool = False):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(rows)
    frame = pd.DataFrame({"tenure": rng.normal(10, 3, rows), "spend": rng.normal(50, 10, rows)})
    if extra:
        frame["calls"] = rng.integers(0, 5, rows)
    frame["label"] = (frame["tenure"] > 10).astype(int)
    return frame


def _train(ws: Workspace, notebook: Path, dataset: int, c: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression

    with ws.job(experiment="churn", name=f"train-c{c}", notebook=notebook, autolog=False) as job:
        frame = ws.datasets.load("churn-data", dataset)
        ws.client.log_param(job.run_id, "C", str(c))
        ws.client.log_param(job.run_id, "max_iter", str(max_iter))
        ws.client.log_param(job.run_id, "solver", "lbfgs")
        model = LogisticRegression(C=c, max_iter=max_iter).fit(frame[FEATURES], frame["label"])
        ws.client.log_metric(job.run_id, "accuracy", float(model.score(frame[FEATURES], frame["label"])))
        ws.client.log_metric(job.run_id, "rows", float(len(frame)))
        return ws.models.register(model, "churn"), job.run_id


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Version 1 and 2 from two jobs (two commits, two dataset versions, two environments), version 3 from a
    file."""
    root = tmp_path_factory.mktemp("compare")
    ws = Workspace(root / "ws", metadata_uri=f"sqlite:///{root}/mlops.db")
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    notebook = repo / "train.ipynb"
    _notebook(notebook, [("markdown", "# Churn"), ("code", "C = 1.0\nmax_iter = 100"), ("code", "fit(C)")])
    _git(repo, "add", "train.ipynb")
    _git(repo, "commit", "-q", "-m", "first model")
    ws.datasets.register("churn-data", _frame(300))
    ws.datasets.register("churn-data", _frame(400, extra=True))
    v1, run1 = _train(ws, notebook, 1, 1.0, 100)

    _notebook(
        notebook,
        [("markdown", "# Churn"), ("code", "C = 0.1\nmax_iter = 200"), ("code", "fit(C)"), ("code", "report()")],
    )
    _git(repo, "commit", "-q", "-am", "stronger regularisation")
    real = snap.environment

    def other_environment() -> snap.Environment:
        env = real()
        pins = [line for line in env.requirements.splitlines() if not line.startswith("pyyaml==")]
        pins = [("numpy==0.0.1" if line.startswith("numpy==") else line) for line in pins] + ["extra-pkg==1.2"]
        return snap.Environment(env.python_version, "\n".join(sorted(pins)) + "\n", "other")

    snap.environment = other_environment
    try:
        v2, run2 = _train(ws, notebook, 2, 0.1, 200)
    finally:
        snap.environment = real

    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    frame = _frame(300)
    folder = root / "saved"
    mlflow.sklearn.save_model(LogisticRegression().fit(frame[FEATURES], frame["label"]), str(folder))
    v3 = ws.models.register(str(folder), "churn")
    return ws, repo, (v1, run1), (v2, run2), v3


def test_parameters_and_metrics_side_by_side_changed_only_unless_asked(setup):
    ws, _, (_, run1), (_, run2), _ = setup
    report = ws.models.compare("churn:1", "churn:2")
    assert (report.a.ref, report.b.ref, report.a.run_id, report.b.run_id) == ("churn:1", "churn:2", run1, run2)
    assert {p.name: (p.a, p.b) for p in report.params} == {"C": ("1.0", "0.1"), "max_iter": ("100", "200")}
    assert report.same["params"] == 1  # solver
    assert {m.name: (m.a, m.b) for m in report.metrics}["rows"] == (300.0, 400.0)
    everything = ws.release.compare("churn:1", "2", unchanged=True)
    solver = next(p for p in everything.params if p.name == "solver")
    assert (solver.a, solver.b, solver.changed) == ("lbfgs", "lbfgs", False)


def test_training_data_names_both_dataset_versions_and_how_the_profile_moved(setup):
    ws, *_ = setup
    report = ws.models.compare("churn:1", "churn:2")
    [data] = report.data
    d1, d2 = ws.datasets.get("churn-data", 1), ws.datasets.get("churn-data", 2)
    assert data.name == "churn-data"
    assert (data.a.ref, data.a.digest, data.a.rows) == ("churn-data:1", d1.digest, 300)
    assert (data.b.ref, data.b.digest, data.b.rows) == ("churn-data:2", d2.digest, 400)
    assert "rows 300 → 400" in data.notes
    assert "columns added: calls" in data.notes
    assert any(n.startswith("tenure: mean ") for n in data.notes)


def test_environment_lists_packages_added_removed_and_changed(setup):
    ws, *_ = setup
    env = ws.models.compare("churn:1", "churn:2").environment
    packages = {p.name: (p.a, p.b) for p in env.packages}
    assert packages["extra-pkg"] == (None, "1.2")
    assert packages["pyyaml"][1] is None and packages["pyyaml"][0]
    assert packages["numpy"][1] == "0.0.1" and packages["numpy"][0] != "0.0.1"
    assert len(packages) == 3
    assert env.source_a == env.source_b == "run:environment/requirements.txt"
    assert env.python_a == env.python_b == sys.version.split()[0]


def test_code_shows_both_commits_and_their_diff(setup):
    ws, repo, *_ = setup
    code = ws.models.compare("churn:1", "churn:2").code
    first, second = _git(repo, "rev-list", "--reverse", "HEAD").split()
    assert (code.commit_a, code.commit_b, code.repository) == (first, second, str(repo.resolve()))
    assert "train.ipynb" in code.stat
    removed = [line for line in code.diff.splitlines() if line.startswith("-") and "C = 1.0" in line]
    added = [line for line in code.diff.splitlines() if line.startswith("+") and "C = 0.1" in line]
    assert removed and added, code.diff
    assert code.note is None


def test_notebook_cells_compared_cell_by_cell(setup):
    ws, *_ = setup
    nb = ws.models.compare("churn:1", "churn:2").notebook
    assert nb.artifact_a == nb.artifact_b == "code/train.ipynb"
    assert [(c.change, c.index_a, c.index_b) for c in nb.cells] == [("modified", 1, 1), ("added", None, 3)]
    modified, added = nb.cells
    assert "-C = 1.0" in modified.diff and "+C = 0.1" in modified.diff
    assert "+max_iter = 200" in modified.diff
    assert added.source_b == "report()" and added.cell_type == "code"


def test_a_version_without_a_run_compares_what_it_has_and_says_what_is_missing(setup):
    ws, *_ = setup
    report = ws.models.compare("churn:2", "churn:3")
    assert report.b.run_id is None
    assert any("churn:3: no training run" in m for m in report.missing)
    assert {p.name: p.b for p in report.params} == {"C": None, "max_iter": None, "solver": None}
    assert report.environment.source_b == "model:requirements.txt"
    # the model's own requirements (mlflow, scikit-learn, ...) against the job's whole environment: the same pins
    assert report.environment.packages and report.same["packages"] >= 2
    assert "scikit-learn" not in {p.name for p in report.environment.packages if p.a and p.b}
    assert report.notebook.note == "no notebook logged by the run of side b"
    assert report.code.commit_b is None


def test_rendered_as_text_html_and_json(setup):
    ws, *_ = setup
    report = ws.models.compare("churn:1", "churn:2")
    text = str(report)
    assert text.splitlines()[0].startswith("churn:1 (run ") and "→ churn:2" in text.splitlines()[0]
    for heading in ("Parameters: 2 differ, 1 the same", "Training data", "Environment: python", "Code: commit"):
        assert heading in text
    assert "cell 1 (code) modified" in text and "cell 3 (code) added" in text
    page = report._repr_html_()
    assert page.count("<table") >= 3 and "mlops-compare-modified" in page and "+C = 0.1" in page
    data = json.loads(json.dumps(report.to_dict()))
    assert data["notebook"]["cells"][0]["change"] == "modified"
    assert data["a"]["ref"] == "churn:1"


def test_bad_references_name_what_is_wrong(setup):
    ws, *_ = setup
    with pytest.raises(InvalidInput, match="both churn:1: compare two different versions"):
        ws.models.compare("churn:1", "1")
    with pytest.raises(NotFound):
        ws.models.compare("churn:1", "churn:99")
    with pytest.raises(InvalidInput):
        ws.models.compare("churn:1", "not a ref!")


def test_cli_compare_prints_the_report_and_json(setup):
    ws, *_ = setup
    args = [str(BIN / "jupyter-mlops"), "--workspace", str(ws.root), "--metadata-uri", ws.metadata_uri]
    done = subprocess.run([*args, "models", "compare", "churn:1", "churn:2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Parameters: 2 differ" in done.stdout
    done = subprocess.run([*args, "models", "compare", "churn:1", "churn:2", "--json"], capture_output=True, text=True)
    assert json.loads(done.stdout)["params"][0]["name"] == "C"
    done = subprocess.run([*args, "models", "compare", "churn:1", "churn:1"], capture_output=True, text=True)
    assert done.returncode != 0 and "compare two different versions" in done.stderr
