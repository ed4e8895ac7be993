"""`jupyter mlops …` as a user runs it: real subprocesses, real store, JSON on stdout, errors on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def mlops(*args: str, ws: Path, check: bool = True, via: str = "jupyter") -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "jupyter"), "mlops"] if via == "jupyter" else [str(BIN / "mlops")]
    result = subprocess.run(
        [*command, *args, "--workspace", str(ws)],
        capture_output=True,
        text=True,
        env={**os.environ, "MLOPS_USER": "cli-user"},
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def ws(tmp_path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(2048))
    (folder / "config.json").write_text("{}")
    return folder


def test_models_lifecycle_with_json(ws, model_dir, tmp_path):
    out = mlops(
        "models", "register", "churn", str(model_dir), "--tag", "stage=prod", "--description", "v1", "--json", ws=ws
    )
    record = json.loads(out.stdout)
    assert record["name"] == "churn" and record["version"] == 1 and record["tags"] == {"stage": "prod"}
    assert record["created_by"] == "cli-user" and record["description"] == "v1"
    mlops("models", "register", "churn", str(model_dir), "--tag", "stage=dev", ws=ws, via="mlops")

    listed = json.loads(mlops("models", "list", "stage=prod", "--json", ws=ws).stdout)
    assert isinstance(listed, list) and [(v["name"], v["version"]) for v in listed] == [("churn", 1)]

    mlops("models", "tag", "churn", "2", "validated=yes", ws=ws)
    mlops("models", "alias", "churn", "champion", "2", ws=ws)
    shown = json.loads(mlops("models", "show", "churn", "champion", "--json", ws=ws).stdout)
    assert shown["version"] == 2 and shown["aliases"] == ["champion"] and shown["tags"]["validated"] == "yes"
    model = json.loads(mlops("--json", "models", "show", "churn", ws=ws).stdout)
    assert model["aliases"] == {"champion": 2} and model["latest_version"] == 2

    dest = tmp_path / "dest"
    mlops("models", "download", "churn", "1", str(dest), ws=ws)
    assert (dest / "weights.bin").read_bytes() == (model_dir / "weights.bin").read_bytes()

    refused = mlops("models", "delete", "churn", "2", ws=ws, check=False)
    assert refused.returncode == 1 and "champion" in refused.stderr and "--force" in refused.stderr
    deleted = json.loads(mlops("models", "delete", "churn", "2", "--force", "--json", ws=ws).stdout)
    assert deleted == {"name": "churn", "deleted_versions": [2]}

    text = mlops("models", "list", ws=ws).stdout
    assert text.splitlines()[0].split()[:2] == ["NAME", "VERSION"] and "churn" in text


def test_runs_list_and_show(ws, tmp_path):
    from jupyter_mlops import Workspace

    with Workspace(ws).job(experiment="cli", name="trained", autolog=False) as job:
        pass
    runs = json.loads(mlops("runs", "list", "--experiment", "cli", "--json", ws=ws).stdout)
    assert [r["run_id"] for r in runs] == [job.run_id]
    run = json.loads(mlops("runs", "show", job.run_id, "--json", ws=ws).stdout)
    assert run["name"] == "trained" and run["status"] == "FINISHED"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("models", "show", "nope"), "No model named 'nope'"),
        (("models", "list", "stage=="), "Filter syntax"),
        (("models", "register", "x", "/no/such/path"), "does not exist; nothing was registered"),
        (("models", "tag", "x", "1", "novalue"), "write it as KEY=VALUE"),
        (("models", "tag", "x", "1", "a=b"), "No model named 'x'"),
        (("runs", "list", "--experiment", "nope"), "No experiment named 'nope'"),
    ],
)
def test_errors_go_to_stderr_with_a_non_zero_exit(ws, args, expected):
    result = mlops(*args, ws=ws, check=False)
    assert result.returncode != 0
    assert expected in result.stderr and result.stdout == ""


def test_usage_errors(ws):
    result = mlops("models", "frobnicate", ws=ws, check=False)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_unreachable_tracking_server_says_which_uri_and_how_to_start_one(tmp_path):
    result = subprocess.run(
        [
            str(BIN / "jupyter"),
            "mlops",
            "models",
            "list",
            "--tracking-uri",
            "http://127.0.0.1:9",
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "http://127.0.0.1:9" in result.stderr and "mlflow server" in result.stderr


def test_help_is_fast_and_lists_the_groups():
    result = subprocess.run([str(BIN / "jupyter"), "mlops", "--help"], capture_output=True, text=True, check=True)
    assert "models" in result.stdout and "runs" in result.stdout
