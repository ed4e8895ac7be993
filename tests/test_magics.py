"""The IPython magics on a bare InteractiveShell, with a real MLflow store behind them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import jupyter_mlops as mlops


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_WORKSPACE", str(tmp_path / "ws"))
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_mlops")
    yield ip
    ip.user_ns.pop("__session__", None)


def test_load_ext_does_not_import_mlflow():
    code = (
        "import sys; from IPython.core.interactiveshell import InteractiveShell; "
        "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'jupyter_mlops'); "
        "assert 'mlops_job' in ip.magics_manager.magics['cell']; assert 'mlops' in ip.magics_manager.magics['line']; "
        "heavy = [m for m in ('mlflow', 'pandas', 'sklearn', 'sqlalchemy') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mlops_job_cell_runs_in_the_user_namespace_and_is_tracked(shell):
    result = shell.run_cell("%%mlops_job --experiment magic --name first --tag owner=ana --no-autolog\nx = 21\nx * 2\n")
    assert result.success and result.result == 42
    assert shell.user_ns["x"] == 21
    [run] = mlops.runs.list("magic")
    assert run.name == "first" and run.status == "FINISHED" and run.tags["owner"] == "ana"
    cell = mlops.default_workspace().client.download_artifacts(run.run_id, "code/cell.py")
    assert Path(cell).read_text() == "x = 21\nx * 2\n"


def test_mlops_job_exception_fails_the_run_and_reaches_the_cell(shell):
    result = shell.run_cell("%%mlops_job --experiment magic --no-autolog\nraise ValueError('bad data')\n")
    assert isinstance(result.error_in_exec, ValueError)
    [run] = mlops.runs.list("magic")
    assert run.status == "FAILED"


def test_mlops_job_copies_the_notebook_it_runs_in(shell, tmp_path):
    notebook = tmp_path / "train.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    shell.user_ns["__session__"] = str(notebook)
    shell.run_cell("%%mlops_job --experiment magic --no-autolog\npass\n")
    [run] = mlops.runs.list("magic")
    names = [a.path for a in mlops.default_workspace().client.list_artifacts(run.run_id, "code")]
    assert "code/train.ipynb" in names


def test_mlops_line_magic_mirrors_the_cli(shell, tmp_path):
    (tmp_path / "m.bin").write_bytes(b"w")
    registered = shell.run_line_magic("mlops", f"models register churn {tmp_path / 'm.bin'} --tag stage=prod")
    assert registered.value.version == 1
    shell.run_line_magic("mlops", f"models register churn {tmp_path / 'm.bin'} --tag stage=dev")
    listed = shell.run_line_magic("mlops", "models list stage=prod")
    assert [(v.name, v.version) for v in listed.value] == [("churn", 1)]
    html = listed._repr_html_()
    assert "<table" in html and "churn" in html and "stage=prod" in html
    assert "churn" in repr(listed)  # text in a terminal
    runs = shell.run_line_magic("mlops", "runs list")
    assert "<table" in runs._repr_html_()


def test_mlops_line_magic_reports_bad_input_clearly(shell, capsys):
    assert shell.run_line_magic("mlops", "models lisst") is None
    assert "invalid choice: 'lisst'" in capsys.readouterr().out
    result = shell.run_cell("%mlops models list stage==prod")
    assert isinstance(result.error_in_exec, mlops.FilterSyntaxError)
